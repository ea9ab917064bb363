"""Physical removal of channels (`shrink`) and its mask-implementation twin (`mask`).

Surgery follows the reference scripts (`cifar/l1-norm-pruning/vggprune.py`, `res56prune.py`):
build the smaller model from the pruned widths, copy the kept output filters of each pruned conv,
the matching input channels of the next conv, the kept BatchNorm entries (gamma, beta, moving
mean and variance), and the kept input rows of the first dense layer. Here the smaller model is a
clone of the full one with new channel counts, so layer names and all other settings stay.

Per-layer-type knowledge is one rule function per type in `RULES`; a new layer type is one
`@RULES.register(MyLayer)` function returning a `groups.Cut`.
"""
import numpy as np

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.models.layers import OptionAShortcut
from tf_rethink.pruning import groups
from tf_rethink.pruning.base import PrunePlan
from tf_rethink.pruning.groups import Ctx, Cut, full

L = keras.layers
RULES = groups.Rules()


def _removed(kept, n):
  return np.setdiff1d(np.arange(n), np.asarray(kept, dtype=np.int64))


def _zero(array, removed, axis=-1):
  array = np.array(array, copy=True)
  index = [slice(None)] * array.ndim
  index[axis] = removed
  array[tuple(index)] = 0
  return array


def _producer(c: Ctx, n: int, in_axis: int, out_axis: int, count_key: str) -> Cut:
  """Conv/dense: output = plan.keep (or all), kernel sliced on the input and output axes."""
  out = c.keep if c.keep is not None else full(n)
  ins = c.ins[0]

  def slice_(w):
    kernel = np.take(np.take(w[0], ins, axis=in_axis), out, axis=out_axis)
    return [kernel] + [np.take(b, out, axis=-1) for b in w[1:]]

  def mask(w):
    # The removed inputs' rows too: whatever reaches them (e.g. sigmoid(0) = 0.5) is ignored.
    removed = _removed(out, n)
    kernel = _zero(_zero(w[0], removed, out_axis), _removed(ins, w[0].shape[in_axis]), in_axis)
    return [kernel] + [_zero(b, removed) for b in w[1:]]
  return Cut(out=out, config={count_key: len(out)}, slice=slice_, mask=mask)


@RULES.register(L.Conv1D, L.Conv2D, L.Conv3D, prunable=True)
def _conv(c: Ctx) -> Cut:
  if c.layer.groups != 1 and (c.keep is not None or not c.inputs_full()):
    raise UsageError(f"surgery cannot prune grouped conv {c.describe()} (groups="
                     f"{c.layer.groups}); leave it and its inputs unpruned")
  return _producer(c, c.layer.filters, in_axis=-2, out_axis=-1, count_key="filters")


@RULES.register(L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose, prunable=True)
def _conv_transpose(c: Ctx) -> Cut:
  return _producer(c, c.layer.filters, in_axis=-1, out_axis=-2, count_key="filters")


@RULES.register(L.Dense, prunable=True)
def _dense(c: Ctx) -> Cut:
  return _producer(c, c.layer.units, in_axis=0, out_axis=-1, count_key="units")


def _expand(ins, multiplier):
  return tuple(i * multiplier + j for i in ins for j in range(multiplier))


@RULES.register(L.DepthwiseConv1D, L.DepthwiseConv2D)
def _depthwise(c: Ctx) -> Cut:
  """Output channel i*m+j comes from input channel i: the output follows the input."""
  m = c.layer.depth_multiplier
  ins, out = c.ins[0], _expand(c.ins[0], m)
  n_out = c.out_shape[-1]

  def slice_(w):
    return [np.take(w[0], ins, axis=-2)] + [np.take(b, out) for b in w[1:]]

  def mask(w):
    removed = _removed(out, n_out)
    return [_zero(w[0], _removed(ins, w[0].shape[-2]), -2)] + [_zero(b, removed) for b in w[1:]]
  return Cut(out=out, slice=slice_, mask=mask)


@RULES.register(L.SeparableConv1D, L.SeparableConv2D, prunable=True)
def _separable(c: Ctx) -> Cut:
  """Depthwise (kh, kw, in, m) then pointwise (1, 1, in*m, out) + bias (out)."""
  n = c.layer.filters
  ins, mid = c.ins[0], _expand(c.ins[0], c.layer.depth_multiplier)
  out = c.keep if c.keep is not None else full(n)

  def slice_(w):
    return ([np.take(w[0], ins, axis=-2), np.take(np.take(w[1], mid, axis=-2), out, axis=-1)]
            + [np.take(b, out) for b in w[2:]])

  def mask(w):
    removed = _removed(out, n)
    pointwise = _zero(_zero(w[1], removed), _removed(mid, w[1].shape[-2]), -2)
    return ([_zero(w[0], _removed(ins, w[0].shape[-2]), -2), pointwise]
            + [_zero(b, removed) for b in w[2:]])
  return Cut(out=out, config={"filters": len(out)}, slice=slice_, mask=mask)


@RULES.register(L.BatchNormalization)
def _batch_norm(c: Ctx) -> Cut:
  """gamma, beta, moving mean and variance keep the incoming channels; mask zeroes gamma/beta."""
  rank = len(c.in_shapes[0])
  if list(c.layer.axis) not in ([rank - 1], [-1]):
    raise UsageError(f"surgery handles channels-last BatchNormalization only; {c.describe()} "
                     f"normalizes axis {c.layer.axis}")
  ins, n = c.ins[0], c.in_shapes[0][-1]
  affine = int(c.layer.scale) + int(c.layer.center)

  def slice_(w):
    return [np.take(v, ins) for v in w]

  def mask(w):
    removed = _removed(ins, n)
    return [_zero(v, removed) if i < affine else v for i, v in enumerate(w)]
  return Cut(out=ins, slice=slice_, mask=mask)


_PASS_THROUGH = [
    "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU", "Dropout", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D"]


@RULES.register(*[getattr(L, n) for n in _PASS_THROUGH if hasattr(L, n)])
def _pass_through(c: Ctx) -> Cut:
  """Channel-wise (or channel-independent) layers: output channels = input channels."""
  return Cut(out=c.ins[0])


@RULES.register(L.Activation)
def _activation(c: Ctx) -> Cut:
  """Elementwise activations pass channels on; softmax over channels needs all of them."""
  name = getattr(c.layer.activation, "__name__", "")
  if "softmax" in name and not c.inputs_full():
    raise UsageError(f"{c.describe()} normalizes over channels; leave its inputs unpruned")
  return Cut(out=c.ins[0])


@RULES.register(L.Rescaling)
def _rescaling(c: Ctx) -> Cut:
  """A scalar scale/offset passes channels on (per-channel vectors would need slicing)."""
  if (np.ndim(c.layer.scale) or np.ndim(c.layer.offset)) and not c.inputs_full():
    raise UsageError(f"{c.describe()} has per-channel scale/offset; leave its inputs unpruned")
  return Cut(out=c.ins[0])


@RULES.register(L.PReLU)
def _prelu(c: Ctx) -> Cut:
  """Per-channel slopes (last axis, possibly shared over space) follow the incoming channels."""
  ins = c.ins[0]
  return Cut(out=ins, slice=lambda w: [np.take(w[0], ins, axis=-1)])


@RULES.register(L.Reshape)
def _reshape(c: Ctx) -> Cut:
  """Reshape that only adds or drops unit dims around the channels (SE blocks: GAP output
  (C,) -> (1, 1, C)) keeps the channels; any other reshape needs all of its input."""
  src = [int(d) for d in c.in_shapes[0][1:]]
  dst = [int(d) for d in c.out_shape[1:]]
  if src[-1] == dst[-1] and all(d == 1 for d in src[:-1] + dst[:-1]):
    ins = c.ins[0]
    return Cut(out=ins, config={"target_shape": tuple(dst[:-1]) + (len(ins),)})
  if not c.inputs_full():
    raise UsageError(f"{c.describe()} mixes channels with other axes ({src} -> {dst}); leave "
                     "its inputs unpruned")
  return Cut(out=c.full_out)


@RULES.register(L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, couples=True)
def _merge(c: Ctx) -> Cut:
  """Elementwise merges couple their inputs: all must keep the same channels. An input with one
  channel broadcasts (e.g. a spatial attention map) and is not coupled."""
  n = int(c.out_shape[-1])
  aligned = [i for i, s in zip(c.ins, c.in_shapes) if int(s[-1]) == n or n == 1]
  if len(set(aligned)) != 1:
    kept = ", ".join(f"{len(i)} of {s[-1]}" for i, s in zip(c.ins, c.in_shapes))
    raise UsageError(f"merge layer {c.describe()} gets inputs with different kept channels "
                     f"({kept}); prune the branches feeding a merge identically or not at all")
  return Cut(out=aligned[0])


@RULES.register(L.Concatenate)
def _concatenate(c: Ctx) -> Cut:
  """Channel concatenation: input k's channel i is output channel offset_k + i."""
  rank = len(c.out_shape)
  if c.layer.axis not in (-1, rank - 1):
    raise UsageError(f"surgery handles channel (last-axis) concatenation only; {c.describe()} "
                     f"concatenates axis {c.layer.axis}")
  offsets = np.cumsum([0] + [int(s[-1]) for s in c.in_shapes[:-1]])
  return Cut(out=tuple(int(o) + i for o, ins in zip(offsets, c.ins) for i in ins))


@RULES.register(L.Flatten)
def _flatten(c: Ctx) -> Cut:
  """Channels-last flatten: position p, channel i -> feature p*C + i (then a Dense drops rows)."""
  if c.layer.data_format != "channels_last":
    raise UsageError(f"surgery handles channels-last Flatten only; {c.describe()} is "
                     f"{c.layer.data_format}")
  shape = c.in_shapes[0]
  channels, positions = int(shape[-1]), int(np.prod(shape[1:-1]))
  ins = c.ins[0]
  return Cut(out=tuple(p * channels + i for p in range(positions) for i in ins))


@RULES.register(OptionAShortcut)
def _fixed_width(c: Ctx) -> Cut:
  """Layers whose channel layout is fixed (option-A zero padding): inputs must be unpruned."""
  if not c.inputs_full():
    raise UsageError(f"layer {c.describe()} needs all its input channels; do not prune the "
                     "layers feeding it (in the CIFAR ResNets only the first conv of a block is "
                     "prunable)")
  return Cut(out=c.full_out)


def _check_plan(plan):
  if not isinstance(plan, PrunePlan):
    raise TypeError(f"expected a PrunePlan, got {type(plan).__name__}")
  if plan.dropped_blocks:
    raise NotImplementedError("surgery does not remove residual blocks (dropped_blocks) yet")


def shrink(model: keras.Model, plan: PrunePlan, *, copy_weights: bool = True) -> keras.Model:
  """The physically smaller functional model that keeps the channels of `plan`.

  Layer names and configs are those of `model` except channel counts (filters/units). With
  `copy_weights` the surviving weights are copied (the "Fine-tuned" starting point); without,
  every layer keeps the fresh initialization of its initializers (Scratch-E / Scratch-B).

  Raises:
    UsageError: the plan does not fit the model (see `groups.propagate`).
  """
  _check_plan(plan)
  channels = groups.propagate(model, plan.keep, RULES)

  def clone(layer):
    config = layer.get_config()
    if layer.name in channels:
      config.update(channels[layer.name].cut.config)
    return type(layer).from_config(config)

  small = keras.models.clone_model(model, clone_function=clone)
  if copy_weights:
    for name, lc in channels.items():
      weights = lc.layer.get_weights()
      if not weights:
        continue
      if lc.cut.slice is not None:
        weights = lc.cut.slice(weights)
      small.get_layer(name).set_weights(weights)
  return small


def mask(model: keras.Model, plan: PrunePlan) -> None:
  """Zeroes, in place, the removed output channels' effect (mask implementation, spec 7.4).

  Each pruned layer's removed filters (kernel and bias) and the gamma and beta of the
  BatchNormalization after it are set to zero, so a removed channel outputs exactly zero after BN
  and, in inference mode, `model` computes what `shrink(model, plan)` computes.
  """
  _check_plan(plan)
  for lc in groups.propagate(model, plan.keep, RULES).values():
    if lc.changed and lc.cut.mask is not None:
      lc.layer.set_weights(lc.cut.mask(lc.layer.get_weights()))


def prunable_layers(model: keras.Model, predicate=None):
  """Prunable layers whose output channels are not coupled (see `groups.prunable_layers`)."""
  return groups.prunable_layers(model, RULES, predicate)
