"""Plain tensor arithmetic in a functional graph: tf_keras' `TFOpLambda` layers (`x + 3`,
`x * se`, `tf.nn.relu6(x)`, `tf.clip_by_value`) and Keras 3's `keras.ops` operations.

One rule for both, by the op's name (tf_keras: `layer.symbol`, e.g. `__operators__.add`,
`math.multiply`; Keras 3: the operation's class, e.g. `Add`, `HardSigmoid`):
* unary elementwise ops (activations, abs, exp, cast, clip, ...): channels pass;
* binary elementwise ops (add, subtract, multiply, divide, maximum, minimum, pow): a merge of
  their same-width tensor arguments (coupled like `Add`), a broadcasting one-channel tensor is not
  coupled, and a constant with a per-channel last axis is sliced with the channels;
* reductions (mean, sum, max, ...) over axes other than the channels pass them; over the channel
  axis they need all of them; softmax over the channels likewise.
Anything else is left to `probe`. FLOPs: 1 per output element for arithmetic and nonlinear ops
(an extension: the reference counts no functional op), input elements for reductions, 0 for
cast / identity.
"""
import re

from tf_rethink.pruning.graph import Ref, map_structure
from tf_rethink.pruning.rules.base import (MAP, MERGE, Cost, Ctx, Cut, Rule, channels,
                                           elementwise_cost, prod, slice_channel_vector)
from tf_rethink.pruning.rules.book import RULES
from tf_rethink.pruning.rules.elementwise import merge_cut

UNARY = {"relu", "relu6", "elu", "selu", "sigmoid", "hard_sigmoid", "tanh", "silu", "swish",
         "hard_silu", "hard_swish", "gelu", "softplus", "softsign", "exp", "log", "log1p",
         "abs", "absolute", "negative", "neg", "square", "sqrt", "rsqrt", "erf", "sign", "floor",
         "ceil", "round", "leaky_relu", "reciprocal", "log_sigmoid", "mish", "celu", "sin",
         "cos", "clip", "clip_by_value", "cast", "identity", "stop_gradient", "convert_to_tensor"}
FREE = {"cast", "identity", "stop_gradient", "convert_to_tensor"}
BINARY = {"add", "add_v2", "subtract", "sub", "multiply", "mul", "truediv", "true_divide",
          "divide", "div", "floordiv", "floor_divide", "maximum", "minimum", "pow", "power",
          "squared_difference", "divide_no_nan", "multiply_no_nan", "radd", "rsub", "rmul",
          "rtruediv", "rpow"}
REDUCE = {"reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "mean", "sum",
          "max", "min", "prod", "amax", "amin", "reduce_logsumexp", "logsumexp"}
SOFTMAX = {"softmax", "log_softmax"}
KNOWN = UNARY | BINARY | REDUCE | SOFTMAX


def op_name(layer) -> str:
  """`math.multiply` / `__operators__.add` / class `HardSigmoid` -> multiply / add / hard_sigmoid."""
  symbol = getattr(layer, "symbol", None)
  if symbol is None:
    name = type(layer).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("relu_6", "relu6")
  return symbol.split(".")[-1].lower()


def _axes(c: Ctx):
  """The reduction / softmax axes of the call (None: all)."""
  axis = getattr(c.layer, "axis", "absent")
  if axis == "absent":
    args, kwargs = c.call.args
    axis = kwargs.get("axis", args[1] if len(args) > 1 and not isinstance(args[1], Ref) else None)
  if axis is None:
    return None
  rank = len(c.in_shapes[0])
  return [int(a) % rank for a in (axis if isinstance(axis, (list, tuple)) else [axis])]


class OpRule(Rule):
  """See the module docstring."""

  def role_of(self, c: Ctx) -> str:
    if op_name(c.layer) in BINARY and c.n_out > 1:
      aligned = [s for s in c.in_shapes if channels(s) == c.n_out]
      if len(aligned) >= 2:
        return MERGE
    return MAP

  def cut(self, c: Ctx) -> Cut:
    name = op_name(c.layer)
    if name not in KNOWN:
      c.refuse("is an operation the rule book does not know")
    if name in REDUCE or name in SOFTMAX:
      axes = _axes(c)
      rank = len(c.in_shapes[0])
      if (axes is None or rank - 1 in axes) and not c.inputs_full():
        c.refuse("reduces or normalizes over the channels; leave its inputs unpruned")
      if axes is None or rank - 1 in axes:
        return Cut(out=c.full_out)
      return Cut(out=c.ins[0])
    n = c.n_out
    aligned = [i for i, s in zip(c.ins, c.in_shapes) if channels(s) == n and n > 1]
    if not aligned:    # only broadcasting tensors: the op's constants make the channels
      if not c.inputs_full():
        c.refuse("broadcasts a one-channel tensor against constants of its own")
      return Cut(out=c.full_out)
    cut = merge_cut(c) if len(aligned) > 1 else Cut(out=aligned[0])
    out = cut.out
    if out == tuple(range(n)):
      return cut
    return Cut(out=out, args=lambda recorded: map_structure(
        lambda v: v if isinstance(v, Ref) else slice_channel_vector(v, out, n), recorded))

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    name = op_name(c.layer)
    if name in FREE or name not in KNOWN:
      return Cost()
    if name in REDUCE:
      return Cost(flops=prod(c.in_shapes[0][1:]))
    return elementwise_cost(c)


def known(layer) -> bool:
  return op_name(layer) in KNOWN


_KERAS3_OPS = {
    "numpy": ["Add", "Subtract", "Multiply", "Divide", "TrueDivide", "FloorDivide", "Maximum",
              "Minimum", "Power", "Abs", "Absolute", "Exp", "Log", "Log1p", "Negative",
              "Square", "Sqrt", "Sign", "Floor", "Ceil", "Round", "Clip", "Tanh", "Sin", "Cos",
              "Mean", "Sum", "Max", "Min", "Prod", "Amax", "Amin", "Reciprocal"],
    "nn": ["Relu", "Relu6", "Sigmoid", "HardSigmoid", "Silu", "HardSilu", "Gelu", "Elu", "Selu",
           "Softplus", "Softsign", "LeakyRelu", "LogSigmoid", "Celu", "Softmax", "LogSoftmax"],
    "math": ["Logsumexp", "Rsqrt", "Erf"],
    "core": ["Cast", "StopGradient", "ConvertToTensor"],
}

RULES.register(OpRule(), "tf_keras:tf_keras.src.layers.core.tf_op_layer.TFOpLambda",
               *[f"keras3:keras.src.ops.{module}.{cls}" for module, classes in _KERAS3_OPS.items()
                 for cls in classes])

__all__ = ["OpRule", "known", "op_name"]
