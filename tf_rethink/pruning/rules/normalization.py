"""Per-channel normalizations and affine layers: their channel-sized weights follow the channels.

* BatchNormalization (channels last): gamma, beta, moving mean / variance keep the incoming
  channels; params count gamma and beta only (PyTorch `parameters()`); FLOPs 2 per input element
  on tensors with spatial axes (the reference's BatchNorm2d; BatchNorm1d on (N, C) counts 0).
* LayerNormalization over the channel axis: gamma / beta follow the channels; the statistics of
  the smaller layer are over the kept channels (what the masked full-size model computes too,
  `masked_call`). FLOPs 2 per element (like BN; the reference has no LayerNorm).
* Normalization (per-channel mean / variance) and Rescaling with per-channel scale / offset slice
  their vectors; with scalars they pass channels on. Both free in convention A (preprocessing).
* PReLU: per-channel slopes (last axis, possibly shared over space) follow the channels.
* GroupNormalization, UnitNormalization: statistics over several channels, so they need all of
  them (their inputs stay unpruned).
"""
import numpy as np

from tf_rethink.pruning.rules.base import Cost, Ctx, Cut, Pointwise, Rule, prod, take
from tf_rethink.pruning.rules.book import RULES


def _last_axis(c: Ctx, axis) -> bool:
  rank = len(c.in_shapes[0])
  axes = [axis] if isinstance(axis, int) else list(axis)
  return [a % rank for a in axes] == [rank - 1]


def _per_channel_cut(c: Ctx) -> Cut:
  """A normalization over the channel axis: every weight vector follows the kept channels."""
  if not _last_axis(c, c.layer.axis):
    c.refuse(f"normalizes axis {c.layer.axis}, not the channels (last) axis")
  ins = c.ins[0]
  return Cut(out=ins, weights=lambda w: [take(v, ins) for v in w])


class BatchNormRule(Pointwise):
  """BatchNormalization over the last axis."""

  def cut(self, c: Ctx) -> Cut:
    return _per_channel_cut(c)

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    shape = c.in_shapes[0]
    return Cost(flops=2 * prod(shape[1:]) if len(shape) > 2 else 0)

  def parameters(self, layer) -> list:
    stats = {id(v) for v in (layer.moving_mean, layer.moving_variance)}
    return [v for v in layer.weights if id(v) not in stats]


class LayerNormRule(Rule):
  """LayerNormalization over the channel axis (see the module docstring)."""

  def cut(self, c: Ctx) -> Cut:
    return _per_channel_cut(c)

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    return Cost(flops=2 * prod(c.in_shapes[0][1:]))

  def masked_call(self, c: Ctx, args, kwargs, masks):
    """LayerNorm of the kept channels only (mean and variance over them), zero elsewhere."""
    del kwargs
    x = np.asarray(args[0], np.float64)
    m = np.asarray(masks[0], np.float64)
    n = m.sum()
    mean = (x * m).sum(-1, keepdims=True) / n
    var = (np.square(x - mean) * m).sum(-1, keepdims=True) / n
    y = (x - mean) / np.sqrt(var + c.layer.epsilon)
    weights = c.layer.get_weights()
    if c.layer.scale:
      y = y * weights.pop(0)
    if c.layer.center:
      y = y + weights.pop(0)
    return (y * m).astype(np.float32)


class PerChannelVectorsRule(Pointwise):
  """Normalization / Rescaling: config or weight vectors of the channel count are sliced."""

  def __init__(self, config_keys, free: bool = True):
    self.config_keys = tuple(config_keys)
    self.free = free

  def cut(self, c: Ctx) -> Cut:
    n, ins = c.n_in, c.ins[0]
    axis = c.config.get("axis", -1)
    if axis is not None and not _last_axis(c, axis) and not c.inputs_full():
      c.refuse(f"works on axis {axis}, not the channels (last) axis")
    config = {}
    for key in self.config_keys:
      value = c.config.get(key)
      if value is not None and np.ndim(value) and np.shape(value)[-1] == n and n > 1:
        config[key] = take(value, ins).tolist()

    def weights(w):
      return [take(v, ins) if np.ndim(v) and np.shape(v)[-1] == n and n > 1 else v for v in w]
    return Cut(out=ins, config=config, weights=weights)


class PReLURule(Pointwise):
  def cut(self, c: Ctx) -> Cut:
    ins = c.ins[0]
    n = c.n_in

    def weights(w):
      return [take(v, ins) if np.shape(v)[-1] == n else v for v in w]
    return Cut(out=ins, weights=weights)

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    return Cost(flops=prod(c.in_shapes[0][1:]))


class AllChannelsRule(Rule):
  """Layers whose every output depends on several input channels: inputs must stay whole."""

  def cut(self, c: Ctx) -> Cut:
    if not c.inputs_full():
      c.refuse("mixes several channels (statistics over groups of channels); leave its inputs "
               "unpruned")
    return Cut(out=c.full_out)

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    return Cost(flops=2 * prod(c.in_shapes[0][1:]))


RULES.register(BatchNormRule(), "BatchNormalization")
RULES.register(LayerNormRule(), "LayerNormalization")
RULES.register(PerChannelVectorsRule(("mean", "variance")), "Normalization")
RULES.register(PerChannelVectorsRule(("scale", "offset")), "Rescaling")
RULES.register(PReLURule(), "PReLU")
RULES.register(AllChannelsRule(), "GroupNormalization", "UnitNormalization")
