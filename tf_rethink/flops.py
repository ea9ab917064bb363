"""Parameters, FLOPs and MACs of any tf_keras functional model: the ONE counter of the package.

FLOPs follow the reference's convention A (`cifar/l1-norm-pruning/compute_flops.py`, paper spec
section 5), per image, multiplies and adds both counted:

* Conv (groups g): (2 kh kw C_in / g + [bias]) C_out H_out W_out.
* DepthwiseConv2D (a conv with g = C_in): (2 kh kw + [bias]) C_out H_out W_out.
* SeparableConv2D: its depthwise conv (no bias) plus its pointwise 1x1 conv.
* Dense: 2 in out + [bias] out, per position.
* BatchNormalization on 4-D tensors: 2 per input element. On 2-D tensors (BatchNorm1d): 0.
* ReLU layer, Activation('relu'), a conv/dense with activation='relu' (standing for the
  reference's separate nn.ReLU module): 1 per element, on every call of the layer.
* MaxPooling / AveragePooling: pool_h pool_w per output element.
* GlobalAverage/MaxPooling: H W per output element (the reference's nn.AvgPool2d(8) / (7)
  modules pool the whole map).
* 0 for InlineGlobalAveragePooling2D (the CIFAR VGG's inline `nn.AvgPool2d(2)`), Add,
  Concatenate, padding, OptionAShortcut, Flatten, Dropout, Softmax, ...: the reference counts only
  hooked modules, so inline pools, additions, concatenations and zero-padding shortcuts are free.

Unknown layer types count 0 and are named in one warning. `params` counts every weight except
BatchNormalization moving mean / variance (PyTorch `parameters()`); `macs` counts conv and dense
multiply-accumulates only (kh kw C_in / g C_out H_out W_out + in out), the quantity Li et al. and
the paper's tables print. The walk uses the static shapes of the model's graph: no data is run.
"""
import dataclasses
import logging
import math

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.models.channel_gather import ChannelGather
from tf_rethink.models.layers import (InlineAveragePooling2D, InlineGlobalAveragePooling2D,
                                      OptionAShortcut)

_log = logging.getLogger(__name__)
_warned = set()

L = keras.layers
_CONVS = (L.Conv1D, L.Conv2D, L.Conv3D)
_TRANSPOSED = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_POOLS = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
          L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D)
_GLOBAL_POOLS = (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
                 L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D)
# Layers convention A does not count (inline ops, reshapes, merges, regularizers).
_FREE = (L.InputLayer, L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum,
         L.Concatenate, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D, L.Cropping1D,
         L.Cropping2D, L.Cropping3D, L.Flatten, L.Reshape, L.Permute, L.Dropout, L.SpatialDropout1D,
         L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout,
         L.AlphaDropout, L.Softmax, L.Rescaling, L.Normalization, L.Lambda, L.Identity,
         OptionAShortcut, InlineGlobalAveragePooling2D, L.ActivityRegularization,
         ChannelGather, InlineAveragePooling2D)


@dataclasses.dataclass(frozen=True)
class Counts:
  """params: weights without BN moving statistics; flops: convention A; macs: conv+dense MACs."""
  params: int
  flops: int
  macs: int


def _prod(values):
  return int(math.prod(int(v) for v in values))


def _is_relu(fn):
  return fn is keras.activations.relu or getattr(fn, "__name__", "") == "relu"


def _nonzero(layer) -> int:
  """Nonzero kernel entries of a conv, or of a TF-MOT wrapper's conv times its mask."""
  kernel = layer.layer.kernel if isinstance(layer, L.Wrapper) else layer.kernel
  if hasattr(layer, "pruning_vars"):
    kernel = kernel * layer.pruning_vars[0][1]
  return int(tf.math.count_nonzero(kernel))


def _sparse_conv(layer, out_shape, flops, macs):
  """Convention B (spec 5, `cifar/weight-level/count_flops.py`): the conv term counts nonzero
  weights only, (2 nnz(W) + [bias] C_out) H_out W_out; macs nnz(W) H_out W_out."""
  sparse_macs = _nonzero(layer) * _prod(out_shape[:-1])
  return flops - 2 * (macs - sparse_macs), sparse_macs


def _layer_counts(layer, in_shape, out_shape, unknown, sparse=False):
  """(flops, macs) of one call of `layer` with batch-less shapes in_shape -> out_shape."""
  if isinstance(layer, L.Wrapper) and not isinstance(layer, (L.Bidirectional, L.TimeDistributed)):
    flops, macs = _layer_counts(layer.layer, in_shape, out_shape, unknown)  # e.g. TF-MOT wrappers
    if sparse and isinstance(layer.layer, _CONVS) and macs:
      flops, macs = _sparse_conv(layer, out_shape, flops, macs)
    return flops, macs
  flops = macs = 0
  out_elems = _prod(out_shape) if isinstance(out_shape, tuple) else 0
  if isinstance(layer, L.SeparableConv2D):
    c_in, spatial = in_shape[-1], _prod(out_shape[:-1])
    mid = c_in * layer.depth_multiplier
    k = _prod(layer.kernel_size)
    macs = (k * mid + mid * out_shape[-1]) * spatial
    flops = 2 * macs + (out_shape[-1] * spatial if layer.use_bias else 0)
  elif isinstance(layer, L.DepthwiseConv2D):
    k = _prod(layer.kernel_size)
    macs = k * out_elems
    flops = 2 * macs + (out_elems if layer.use_bias else 0)
  elif isinstance(layer, _CONVS) and not isinstance(layer, _TRANSPOSED):
    k = _prod(layer.kernel_size) * in_shape[-1] // getattr(layer, "groups", 1)
    macs = k * out_elems
    flops = 2 * macs + (out_elems if layer.use_bias else 0)
    if sparse:
      flops, macs = _sparse_conv(layer, out_shape, flops, macs)
  elif isinstance(layer, L.Dense):
    positions = _prod(in_shape[:-1])
    macs = in_shape[-1] * layer.units * positions
    flops = 2 * macs + (layer.units * positions if layer.use_bias else 0)
  elif isinstance(layer, L.BatchNormalization):
    flops = 2 * _prod(in_shape) if len(in_shape) == 3 else 0  # BatchNorm2d only
  elif isinstance(layer, L.ReLU):
    flops = _prod(in_shape)
  elif isinstance(layer, L.Activation):
    flops = _prod(in_shape) if _is_relu(layer.activation) else 0
  elif isinstance(layer, _POOLS) and not isinstance(layer, _FREE):
    flops = _prod(layer.pool_size) * out_elems
  elif isinstance(layer, _GLOBAL_POOLS) and not isinstance(layer, InlineGlobalAveragePooling2D):
    flops = _prod(in_shape)  # H*W per output element
  elif not isinstance(layer, _FREE):
    unknown.add(type(layer).__name__)
  if macs and _is_relu(getattr(layer, "activation", None)):
    flops += out_elems  # a fused ReLU stands for the reference's separate nn.ReLU module
  return flops, macs


def _strip_batch(shape):
  if isinstance(shape, tuple) and (not shape or not isinstance(shape[0], (tuple, list))):
    return tuple(shape[1:])
  return [_strip_batch(tuple(s)) for s in shape]


def _walk(model, unknown, sparse=False):
  """Sums (flops, macs) over every call node of the functional `model` (nested models too)."""
  flops = macs = 0
  for layer in model.layers:
    for index, node in enumerate(layer._inbound_nodes):  # pylint: disable=protected-access
      key = f"{layer.name}_ib-{index}"
      if key not in model._network_nodes or node.is_input:  # pylint: disable=protected-access
        continue
      if isinstance(layer, keras.Model):
        f, m = _walk(layer, unknown, sparse)
      else:
        in_shape = _strip_batch(node.input_shapes)
        out_shape = _strip_batch(node.output_shapes)
        for shape in (in_shape, out_shape):
          if isinstance(shape, tuple) and None in shape:
            raise UsageError(f"layer {layer.name} has unknown shape {shape}; pass "
                             "input_shape=(H, W, C) to flops.count")
        f, m = _layer_counts(layer, in_shape, out_shape, unknown, sparse)
      flops += f
      macs += m
  return flops, macs


def count_params(model, sparse=False):
  """All weights except BN moving mean / variance (each variable once).

  Bookkeeping variables a wrapper adds around its layer (e.g. the masks and thresholds of TF-MOT
  `prune_low_magnitude`) are not parameters of the network and are skipped too. `sparse`: minus
  the zero conv weights (the weight-level reference's `print_model_param_nums`).
  """
  stats = set()
  zeros, wrapped = 0, set()
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if sparse and isinstance(getattr(layer, "layer", None), _CONVS):
      wrapped.add(id(layer.layer))  # a wrapper comes before its layer: count it with its mask
      zeros += _prod(layer.layer.kernel.shape) - _nonzero(layer)
    elif sparse and isinstance(layer, _CONVS) and id(layer) not in wrapped:
      zeros += _prod(layer.kernel.shape) - _nonzero(layer)
    if isinstance(layer, L.BatchNormalization):
      stats.update(id(v) for v in (layer.moving_mean, layer.moving_variance))
    elif isinstance(layer, L.Wrapper) and not isinstance(layer, (L.Bidirectional,
                                                                 L.TimeDistributed)):
      inner = {id(v) for v in layer.layer.weights}
      stats.update(id(v) for v in layer.non_trainable_weights if id(v) not in inner)
  seen, total = set(), 0
  for v in model.weights:
    if id(v) not in seen and id(v) not in stats:
      seen.add(id(v))
      total += _prod(v.shape)
  return total - zeros


def count(model, input_shape=None, sparse=False) -> Counts:
  """Params, convention-A FLOPs and MACs per image of a functional tf_keras model.

  Args:
    model: a functional (or built Sequential) tf_keras model.
    input_shape: (H, W, C) to count at, when it differs from the model's input shape or that
      has unknown dimensions; the model is then cloned (fresh weights) on that input.
    sparse: convention B (spec 5) for masked (weight-level pruned) models: conv FLOPs, MACs and
      params count only the nonzero conv weights (a TF-MOT wrapper's kernel times its mask);
      equal to convention A for a model without zero conv weights.
  """
  if not getattr(model, "_is_graph_network", False):
    raise UsageError(f"flops.count needs a functional tf_keras model, got {type(model).__name__}; "
                     "build it with the functional API or give a Sequential model an Input")
  if input_shape is not None and tuple(input_shape) != tuple(model.input_shape[1:]):
    model = keras.models.clone_model(model, input_tensors=keras.Input(shape=tuple(input_shape)))
  unknown = set()
  flops, macs = _walk(model, unknown, sparse)
  new = sorted(unknown - _warned)
  if new:
    _warned.update(new)
    _log.warning("flops.count: layer types not counted (0 FLOPs): %s", ", ".join(new))
  return Counts(params=count_params(model, sparse), flops=int(flops), macs=int(macs))
