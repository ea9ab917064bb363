"""Parameters, FLOPs and MACs of any functional Keras model: the ONE counter of the package.

Per call of every layer (nested models and each call of a shared layer included), the layer's
rule (`tf_rethink.pruning.rules`) gives its cost; this module only sums over the graph view.
FLOPs follow the reference's convention A (`cifar/l1-norm-pruning/compute_flops.py`, paper spec
section 5): multiplies and adds both counted; conv (2 kh kw C_in / g + [bias]) C_out H W, linear
2 in out + out, BatchNorm2d 2 per input element (BatchNorm1d 0), a ReLU module 1 per element on
every call (a fused relu too), Max/AvgPool k^2 per output element, global pools H W per output
element, Upsample 12 per output element; residual additions, concatenations, padding, inline
pools and channel gathers are free. Where the reference has no such module the rules state their
extension (depthwise, separable and transposed convs, LayerNorm, other nonlinearities, tensor
arithmetic); layer types whose rule is unknown or probed count 0 and are named in one warning.

`params` counts every weight except non-parameter state (BN moving mean / variance, the
bookkeeping variables of TF-MOT wrappers): PyTorch's `parameters()`. `macs` counts the
multiply-accumulates of convs and dense layers (what Li et al. and the paper's tables print).
`sparse=True` is convention B (`cifar/weight-level/count_flops.py`): the conv term counts only
nonzero kernel weights, and params exclude zero conv weights (`print_model_param_nums`).
"""
import dataclasses
import logging
from typing import Optional, Sequence

import numpy as np

from tf_rethink.pruning.graph import view
from tf_rethink.pruning.rules import RULES, Ctx, channels, full
from tf_rethink.pruning.rules.probe import ProbedRule
from tf_rethink.util.errors import UsageError

_log = logging.getLogger(__name__)
_warned = set()


@dataclasses.dataclass(frozen=True)
class Counts:
  """params: weights without non-parameter state; flops: convention A (or B); macs."""
  params: int
  flops: int
  macs: int


def count(model, input_shape: Optional[Sequence[int]] = None, sparse: bool = False) -> Counts:
  """Params, FLOPs and MACs per image of a functional (or built Sequential) Keras model.

  Args:
    model: a tf_keras or Keras 3 model.
    input_shape: (H, W, C) to count at, when it differs from the model's (or that has unknown
      dimensions); the model is then rebuilt (fresh weights) on that input.
    sparse: convention B for weight-masked models (see the module docstring).
  """
  graph = view(model)
  if input_shape is not None:
    wanted = (None,) + tuple(int(d) for d in input_shape)
    if len(graph.inputs) != 1:
      raise UsageError("input_shape= works for single-input models only")
    if wanted != graph.shape(graph.inputs[0]):
      from tf_rethink.pruning.surgery import rebuild  # pylint: disable=import-outside-toplevel
      model = rebuild(model, copy_weights=sparse, input_shapes=[wanted])
      graph = view(model)
  flops = macs = 0
  unknown = set()
  for call in graph.calls:
    for t in call.inputs + call.outputs:
      if None in graph.shape(t)[1:]:
        raise UsageError(f"layer {call.site!r} has an unknown shape {graph.shape(t)}; pass "
                         "input_shape=(H, W, C) to flops.count")
    rule = RULES.rule_for(call, graph)
    if rule is None or isinstance(rule, ProbedRule) or not rule.counted:
      unknown.add(call.kind)
      continue
    ctx = Ctx(call, graph, tuple(full(channels(graph.shape(t))) for t in call.inputs))
    cost = rule.cost(ctx, sparse)
    flops += cost.flops
    macs += cost.macs
  new = sorted(unknown - _warned)
  if new:
    _warned.update(new)
    _log.warning("flops.count: layer types not counted (0 FLOPs): %s", ", ".join(new))
  return Counts(params=count_params(model, sparse, graph), flops=int(flops), macs=int(macs))


def count_params(model, sparse: bool = False, graph=None) -> int:
  """All parameters (each variable once): every layer's rule says which of its variables are
  parameters. `sparse`: minus the zero weights of conv kernels."""
  graph = graph or view(model)
  seen, total = set(), 0
  for key in graph.keys():
    layer = graph.layer(key)
    rule = RULES.lookup(layer)
    variables = (rule.parameters(layer) if rule is not None else
                 list(getattr(layer, "weights", ())))
    for v in variables:
      if id(v) in seen:
        continue
      seen.add(id(v))
      total += int(np.prod(v.shape))
    if sparse and rule is not None:
      total -= rule.zero_parameters(layer)
  return total
