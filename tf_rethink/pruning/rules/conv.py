"""Convolutions and dense layers: the producers of new channels, and depthwise / grouped maps.

Surgery follows the reference scripts (`cifar/l1-norm-pruning/vggprune.py`, `res56prune.py`):
copy the kept output filters of a pruned layer and the kept input rows of the next one. Kernels in
the Keras layout: Conv (k..., C_in / groups, C_out), Dense (C_in, C_out), Conv transpose
(k..., C_out, C_in), depthwise (k..., C_in, multiplier), separable = depthwise (k..., C_in, m) then
pointwise (1.., C_in m, C_out).

FLOPs (reference convention A, `compute_flops.py`): conv (2 kh kw C_in / g + [bias]) C_out H W;
dense 2 in out + [bias] out per position; a fused ReLU adds 1 per output element (it stands for
the reference's separate nn.ReLU module), any other fused nonlinearity too (an extension: the
reference models have none). Extensions for layers the reference never counts: depthwise as a
conv with g = C_in; separable = its depthwise part (no bias) + its pointwise conv; transposed
conv 2 kh kw C_in C_out H_in W_in (+ [bias] per output element). Convention B (`sparse`): the
conv term counts nonzero kernel weights only.

Grouped convolutions (`Conv*D(groups=g)`, g > 1; a = C_in / g inputs and b = C_out / g outputs per
group):
* g == C_in (a depthwise conv written as a grouped conv, e.g. ConvNeXt): output i*b+j comes from
  input i, channels follow the input like `DepthwiseConv2D`;
* a == b (RegNet, ResNeXt): pruned by whole groups: group k's inputs and outputs go together
  (`ties`: the a input channels of a group), groups becomes the number of groups kept;
* a != b: a producer whose outputs are pruned within groups, the same number in each (`balance`),
  with its inputs kept whole.
"""
import numpy as np

from tf_rethink.pruning.rules.base import (MAP, PRODUCER, Cost, Ctx, Cut, Rule, expand, full, prod,
                                           take)
from tf_rethink.pruning.rules.book import RULES


_PLAIN = {"Conv1D", "Conv2D", "Conv3D"}
_NOT_PLAIN = {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D",
              "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"}


def is_conv(layer) -> bool:
  """A plain convolution (not transposed, depthwise or separable), subclasses included."""
  names = {cls.__name__ for cls in type(layer).__mro__}
  return bool(names & _PLAIN) and not names & _NOT_PLAIN


def _activation_flops(layer, out_elems: int) -> int:
  """Convention A's separate ReLU module (and, as an extension, any fused nonlinearity)."""
  act = getattr(layer, "activation", None)
  name = getattr(act, "__name__", "") if act is not None else ""
  return 0 if name in ("", "linear", "softmax", "log_softmax") else out_elems


def _bias(layer) -> bool:
  return bool(getattr(layer, "use_bias", False))


def conv_cost(layer, n_in: int, out_shape, kernel=None) -> Cost:
  """Convention A of a (grouped) conv call; with `kernel` (its effective, possibly masked
  kernel) convention B: the conv term counts the kernel's nonzero weights only. Channels-first
  convs are counted too (`n_in` must then be the channel count of the input's axis 1)."""
  g = int(getattr(layer, "groups", 1) or 1)
  elems = prod(out_shape[1:])
  c_out = int(getattr(layer, "filters", out_shape[-1]))
  positions = elems // max(c_out, 1)
  if kernel is None:
    macs = prod(layer.kernel_size) * (n_in // g) * c_out * positions
  else:
    macs = int(np.count_nonzero(kernel)) * positions
  return Cost(flops=2 * macs + (elems if _bias(layer) else 0) + _activation_flops(layer, elems),
              macs=macs)


def _in_channels(c: Ctx) -> int:
  shape = c.in_shapes[0]
  return int(shape[1]) if c.config.get("data_format") == "channels_first" else c.n_in


def _channels_last(c: Ctx) -> None:
  """Surgery follows channels-last layers (the channel axis of every tensor is the last one)."""
  if c.config.get("data_format", "channels_last") != "channels_last":
    c.refuse(f"is {c.config['data_format']}; the engine cuts channels-last layers only")


def _conv_out(keep, n):
  return keep if keep is not None else full(n)


class ConvRule(Rule):
  """Conv1D / Conv2D / Conv3D, grouped or not (see the module docstring)."""

  def _groups(self, c: Ctx):
    g = int(getattr(c.layer, "groups", 1) or 1)
    a, b = c.n_in // g, c.n_out // g
    return g, a, b

  def role_of(self, c: Ctx) -> str:
    g, a, b = self._groups(c)
    if g > 1 and (a == 1 or a == b):
      return MAP
    return PRODUCER

  def channel_map(self, c: Ctx):
    g, a, b = self._groups(c)
    if g > 1 and a == 1:      # output i*b+j from input i
      return [(0, j // b) for j in range(c.n_out)]
    if g > 1 and a == b:      # output j stands for input j (whole groups go together: ties)
      return [(0, j) for j in range(c.n_out)]
    return None

  def ties(self, c: Ctx):
    g, a, b = self._groups(c)
    if g > 1 and a == b and a > 1:
      return [tuple(range(k * a, (k + 1) * a)) for k in range(g)]
    return ()

  def balance(self, c: Ctx):
    g, a, b = self._groups(c)
    return b if g > 1 and a != b and a != 1 else None

  def cut(self, c: Ctx) -> Cut:
    _channels_last(c)
    g, a, b = self._groups(c)
    ins = c.ins[0]
    if g == 1:
      out = _conv_out(c.keep, c.n_out)
      return Cut(out=out, config={"filters": len(out)},
                 weights=lambda w: [take(take(w[0], ins, -2), out, -1)] +
                 [take(v, out) for v in w[1:]])
    if a == 1:       # depthwise as a grouped conv: group i = input channel i, b outputs each
      out = expand(ins, b)
      return Cut(out=out, config={"filters": len(out), "groups": len(ins)},
                 weights=lambda w: [take(w[0], out, -1)] + [take(v, out) for v in w[1:]])
    if a == b:       # whole groups, chosen through the input ties
      kept = sorted({i // a for i in ins})
      if len(ins) != len(kept) * a:
        c.refuse(f"(groups={g}) can only lose whole groups of {a} input channels")
      out = tuple(k * b + j for k in kept for j in range(b))
      return Cut(out=out, config={"filters": len(out), "groups": len(kept)},
                 weights=lambda w: [take(w[0], out, -1)] + [take(v, out) for v in w[1:]])
    if not c.inputs_full():
      c.refuse(f"(groups={g}, {a} inputs -> {b} outputs per group) needs all its input channels")
    out = _conv_out(c.keep, c.n_out)
    counts = {sum(1 for o in out if o // b == k) for k in range(g)}
    if len(counts) != 1 or 0 in counts:
      c.refuse(f"(groups={g}) must keep the same number of output channels in each group")
    return Cut(out=out, config={"filters": len(out)},
               weights=lambda w: [take(w[0], out, -1)] + [take(v, out) for v in w[1:]])

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    kernel = np.asarray(c.layer.get_weights()[0]) if sparse else None
    return conv_cost(c.layer, _in_channels(c), c.out_shape, kernel)

  def kernel(self, layer):
    return np.asarray(layer.get_weights()[0])

  def zero_parameters(self, layer) -> int:
    kernel = self.kernel(layer)
    return int(kernel.size - np.count_nonzero(kernel))

  def fold(self, layer, weights, scale, shift):
    bias = weights[1] if _bias(layer) else np.zeros(weights[0].shape[-1])
    return [weights[0] * scale, bias * scale + shift]


class ConvTransposeRule(Rule):
  """Conv1DTranspose / Conv2DTranspose / Conv3DTranspose: kernel (k..., C_out, C_in)."""
  role = PRODUCER

  def cut(self, c: Ctx) -> Cut:
    _channels_last(c)
    if int(getattr(c.layer, "groups", 1) or 1) != 1:
      c.refuse("is a grouped transposed conv")
    ins, out = c.ins[0], _conv_out(c.keep, c.n_out)
    return Cut(out=out, config={"filters": len(out)},
               weights=lambda w: [take(take(w[0], ins, -1), out, -2)] +
               [take(v, out) for v in w[1:]])

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    in_positions = prod(c.in_shapes[0][1:-1])
    macs = prod(c.layer.kernel_size) * c.n_in * c.n_out * in_positions
    elems = prod(c.out_shape[1:])
    return Cost(flops=2 * macs + (elems if _bias(c.layer) else 0) +
                _activation_flops(c.layer, elems), macs=macs)

  def kernel(self, layer):
    return np.asarray(layer.get_weights()[0]).swapaxes(-1, -2)

  def fold(self, layer, weights, scale, shift):
    bias = weights[1] if _bias(layer) else np.zeros(weights[0].shape[-2])
    return [weights[0] * scale[:, None], bias * scale + shift]


class DenseRule(Rule):
  """Dense on the last axis of any rank (an MLP head, a transformer FFN)."""
  role = PRODUCER

  def cut(self, c: Ctx) -> Cut:
    ins, out = c.ins[0], _conv_out(c.keep, c.n_out)
    return Cut(out=out, config={"units": len(out)},
               weights=lambda w: [take(take(w[0], ins, 0), out, -1)] +
               [take(v, out) for v in w[1:]])

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    positions = prod(c.in_shapes[0][1:-1])
    macs = c.n_in * c.n_out * positions
    elems = c.n_out * positions
    return Cost(flops=2 * macs + (elems if _bias(c.layer) else 0) +
                _activation_flops(c.layer, elems), macs=macs)

  def kernel(self, layer):
    return np.asarray(layer.get_weights()[0])

  def fold(self, layer, weights, scale, shift):
    bias = weights[1] if _bias(layer) else np.zeros(weights[0].shape[-1])
    return [weights[0] * scale, bias * scale + shift]


class DepthwiseRule(Rule):
  """DepthwiseConv1D / DepthwiseConv2D: output channel i*m+j comes from input channel i."""

  def cut(self, c: Ctx) -> Cut:
    _channels_last(c)
    m = int(c.layer.depth_multiplier)
    ins = c.ins[0]
    out = expand(ins, m)
    return Cut(out=out, weights=lambda w: [take(w[0], ins, -2)] + [take(v, out) for v in w[1:]])

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    elems = prod(c.out_shape[1:])
    macs = prod(c.layer.kernel_size) * elems
    return Cost(flops=2 * macs + (elems if _bias(c.layer) else 0) +
                _activation_flops(c.layer, elems), macs=macs)

  def fold(self, layer, weights, scale, shift):
    kernel = weights[0]
    bias = weights[1] if _bias(layer) else np.zeros(kernel.shape[-2] * kernel.shape[-1])
    return [kernel * scale.reshape(kernel.shape[-2:]), bias * scale + shift]


class SeparableRule(Rule):
  """SeparableConv1D / SeparableConv2D: depthwise (k..., C, m), pointwise (1.., C m, C_out)."""
  role = PRODUCER

  def cut(self, c: Ctx) -> Cut:
    _channels_last(c)
    m = int(c.layer.depth_multiplier)
    ins, out = c.ins[0], _conv_out(c.keep, c.n_out)
    mid = expand(ins, m)
    return Cut(out=out, config={"filters": len(out)},
               weights=lambda w: [take(w[0], ins, -2), take(take(w[1], mid, -2), out, -1)] +
               [take(v, out) for v in w[2:]])

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    positions = prod(c.out_shape[1:-1])
    mid = c.n_in * int(c.layer.depth_multiplier)
    macs = (prod(c.layer.kernel_size) * mid + mid * c.n_out) * positions
    elems = c.n_out * positions
    return Cost(flops=2 * macs + (elems if _bias(c.layer) else 0) +
                _activation_flops(c.layer, elems), macs=macs)

  def kernel(self, layer):
    return np.asarray(layer.get_weights()[1])

  def fold(self, layer, weights, scale, shift):
    bias = weights[2] if _bias(layer) else np.zeros(weights[1].shape[-1])
    return [weights[0], weights[1] * scale, bias * scale + shift]


class EmbeddingRule(Rule):
  """Embedding (vocabulary, dim): a producer of `dim` channels (its columns); 0 FLOPs (a gather,
  as the reference counts none)."""
  role = PRODUCER

  def cut(self, c: Ctx) -> Cut:
    out = _conv_out(c.keep, c.n_out)
    return Cut(out=out, config={"output_dim": len(out)},
               weights=lambda w: [take(v, out, -1) for v in w])

  def kernel(self, layer):
    return np.asarray(layer.get_weights()[0])


RULES.register(ConvRule(), "Conv1D", "Conv2D", "Conv3D")
RULES.register(EmbeddingRule(), "Embedding")
RULES.register(ConvTransposeRule(), "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
RULES.register(DenseRule(), "Dense")
RULES.register(DepthwiseRule(), "DepthwiseConv1D", "DepthwiseConv2D")
RULES.register(SeparableRule(), "SeparableConv1D", "SeparableConv2D")
