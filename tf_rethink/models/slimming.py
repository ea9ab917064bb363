"""The Network Slimming models of the reference (`cifar/network-slimming/models/`, spec 4.1, 4.3, 4.4).

* `vgg19_slim` (`models/vgg.py`): cfg `[64, 64, 'M', 128, 128, 'M', 256 x4, 'M', 512 x4, 'M',
  512 x4]`, every conv 3x3 pad 1 without bias + BN + ReLU, 'M' a 2x2/2 max-pool; the 2x2 map is
  averaged inline (`InlineGlobalAveragePooling2D`, not counted by FLOPs convention A) and a SINGLE
  Linear(cfg[-1] -> classes) follows. Init (spec 3.3): conv N(0, 2/(9 C_out)), BN gamma 0.5 /
  beta 0, Linear N(0, 0.01) with bias 0.
* `preresnet164` (`models/preresnet.py`), and `preresnet110` (n = (depth - 2) // 9 = 12, the
  weight-level formula, built here with the same channel-selection blocks): pre-activation
  bottlenecks, see `preresnet`.
* `densenet40` (`models/densenet.py`): growth 12, no bottleneck, no compression, see `densenet`.

PreResNet and DenseNet put a `ChannelSelection` (all channels until a plan narrows it) after
every BatchNormalization whose output is not pruned physically; init: conv He fan-out normal,
BN gamma 0.5 / beta 0, Linear PyTorch default.
"""
import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.models.registry import MODELS, ModelSpec
from tf_rethink.util.widths import scale_width
from tf_rethink.models.channel_gather import ChannelGather
from tf_rethink.models.layers import (InlineAveragePooling2D, InlineGlobalAveragePooling2D,
                                      he_fan_out, torch_linear_initializers)
from tf_rethink.models.vgg import CIFAR_CFGS, _check_cfg, _features

L = keras.layers


@keras.utils.register_keras_serializable(package="tf_rethink")
class ChannelSelection(ChannelGather):
  """Network Slimming's `channel_selection` (reference `models/channel_selection.py`, spec 4.3).

  Placed right after a full-width BatchNormalization, it passes only the channels the global
  threshold kept (`indices`; None = all), so the BN keeps normalising the whole residual stream
  or concatenation while the consuming conv reads fewer input channels. The reference stores the
  0/1 vector as an `nn.Parameter` that gets no gradient; here the kept indices are config (no
  weights), so params exclude them as spec 6/D1 requires, and it costs 0 FLOPs (the reference
  counter does not hook it). Surgery narrows `indices` (the `ChannelGather` rule).
  """


def _bn(name):
  return L.BatchNormalization(momentum=0.9, epsilon=1e-5,
                              gamma_initializer=keras.initializers.Constant(0.5), name=name)


def _linear(x, num_classes, torch_default):
  if torch_default:
    kernel_init, bias_init = torch_linear_initializers(int(x.shape[-1]))
  else:
    kernel_init = keras.initializers.RandomNormal(stddev=0.01)
    bias_init = "zeros"
  return L.Dense(num_classes, kernel_initializer=kernel_init, bias_initializer=bias_init,
                 name="logits")(x)


def vgg_slim(widths, *, input_shape, num_classes, width_multiplier=1.0, name="vgg19_slim"):
  """Slimming CIFAR VGG: convs + BN(gamma 0.5) + ReLU, inline average pool, one Linear."""
  del width_multiplier  # every width is in `widths`
  _check_cfg(widths, 16, name)
  inputs = keras.Input(shape=input_shape, name="input")
  x = _features(inputs, widths, batch_norm=True, use_bias=False, gamma=0.5)
  x = InlineGlobalAveragePooling2D(name="avgpool")(x)
  return keras.Model(inputs, _linear(x, num_classes, False), name=name)


def _conv(x, filters, kernel, stride, name):
  padding = "same"
  if stride != 1:  # PyTorch's symmetric padding 1 (spec 3.5)
    x = L.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    padding = "valid"
  return L.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False,
                  kernel_initializer=he_fan_out(), name=name)(x)


def preresnet_default_cfg(depth):
  """[16,16,16] + [64,16,16]*(n-1) + [64,32,32] + [128,32,32]*(n-1) + [128,64,64] +
  [256,64,64]*(n-1) + [256]: per block (after BN1, after BN2, after BN3), then the final BN."""
  n = (depth - 2) // 9
  cfg = []
  for stage, planes in enumerate((16, 32, 64)):
    first_in = 16 if stage == 0 else 2 * planes
    cfg += [first_in, planes, planes] + [4 * planes, planes, planes] * (n - 1)
  return cfg + [256]


def preresnet(widths, *, input_shape, num_classes, depth, width_multiplier=1.0, name=None):
  """Pre-activation bottleneck ResNet with channel selection (spec 4.3).

  Block `stage{s}_block{b}`: `_bn1` (full stream) -> `_select` -> `_relu1` -> `_conv1` (1x1) ->
  `_bn2` -> `_relu2` -> `_conv2` (3x3, stride) -> `_bn3` -> `_relu3` -> `_conv3` (1x1, 4 planes);
  `_add` with the raw input, or with `_downsample_conv` (1x1, stride, no BN) in the first block of
  every stage; no ReLU after the add. Head: `bn` -> `select` -> `relu` -> `avgpool` (counted, the
  reference's nn.AvgPool2d(8) module) -> `logits`.

  Args:
    widths: the reference cfg (3 per block + 1). Entries 2 and 3 of a block are the widths of
      `_conv1` and `_conv2`; the selection entries (1st of a block, last) must be the full stream
      width: narrower selections come from a plan (surgery), not from widths.
  """
  name = name or f"preresnet{depth}"
  if (depth - 2) % 9:
    raise UsageError(f"PreResNet depth must be 9n+2, got {depth}")
  n = (depth - 2) // 9
  if len(widths) != 9 * n + 1 or not all(isinstance(w, int) and w > 0 for w in widths):
    raise UsageError(f"{name} widths need {9 * n + 1} positive ints (3 per block + 1), got "
                     f"{widths}")
  planes = [scale_width(p, width_multiplier) for p in (16, 32, 64)]
  inputs = keras.Input(shape=input_shape, name="input")
  x = _conv(inputs, planes[0], 3, 1, "conv1")
  i = 0
  for s in range(3):
    for b in range(n):
      stride = 2 if (s > 0 and b == 0) else 1
      p = f"stage{s + 1}_block{b + 1}"
      y = _bn(f"{p}_bn1")(x)
      y = ChannelSelection(name=f"{p}_select")(y)
      y = L.ReLU(name=f"{p}_relu1")(y)
      y = _conv(y, widths[i + 1], 1, 1, f"{p}_conv1")
      y = _bn(f"{p}_bn2")(y)
      y = L.ReLU(name=f"{p}_relu2")(y)
      y = _conv(y, widths[i + 2], 3, stride, f"{p}_conv2")
      y = _bn(f"{p}_bn3")(y)
      y = L.ReLU(name=f"{p}_relu3")(y)
      y = _conv(y, 4 * planes[s], 1, 1, f"{p}_conv3")
      shortcut = x
      if b == 0:
        shortcut = L.Conv2D(4 * planes[s], 1, strides=stride, use_bias=False,
                            kernel_initializer=he_fan_out(), name=f"{p}_downsample_conv")(x)
      x = L.Add(name=f"{p}_add")([y, shortcut])
      i += 3
  x = _bn("bn")(x)
  x = ChannelSelection(name="select")(x)
  x = L.ReLU(name="relu")(x)
  x = L.GlobalAveragePooling2D(name="avgpool")(x)
  return keras.Model(inputs, _linear(x, num_classes, True), name=name)


def densenet_default_cfg(depth=40, growth=12):
  """39 entries for depth 40: stage s, [2k + 12k s + k j for j = 0..n] (selection widths)."""
  n = (depth - 4) // 3
  return [2 * growth + n * growth * s + growth * j for s in range(3) for j in range(n + 1)]


def densenet(widths, *, input_shape, num_classes, depth=40, growth=12, width_multiplier=1.0,
             name=None):
  """DenseNet (basic layers, no compression) with a selection after every BN (spec 4.4).

  Dense layer `stage{s}_layer{j}`: `_bn` -> `_select` -> `_relu` -> `_conv` (3x3 -> growth) ->
  `_concat` [input, new]. Transition `trans{s}`: `_bn` -> `_select` -> `_relu` -> `_conv` (1x1,
  same width) -> `_pool` (2x2 average, inline: not counted). Head: `bn` -> `select` -> `relu` ->
  `avgpool` (counted) -> `logits`. Conv outputs (growth, transition widths) are never pruned.

  Args:
    widths: the reference cfg (3n+3 selection widths); they must be the full widths (narrower
      selections come from a plan). `growth` is scaled by `width_multiplier`.
  """
  name = name or f"densenet{depth}"
  n = (depth - 4) // 3
  k = scale_width(growth, width_multiplier)
  if len(widths) != 3 * n + 3:
    raise UsageError(f"{name} widths need {3 * n + 3} ints (the selection widths), got "
                     f"{len(widths)}")
  inputs = keras.Input(shape=input_shape, name="input")
  x = L.Conv2D(2 * k, 3, padding="same", use_bias=False, kernel_initializer=he_fan_out(),
               name="conv1")(inputs)

  def bn_select_relu(x, p):
    x = _bn(f"{p}bn")(x)
    x = ChannelSelection(name=f"{p}select")(x)
    return L.ReLU(name=f"{p}relu")(x)

  for s in range(3):
    for j in range(n):
      p = f"stage{s + 1}_layer{j + 1}_"
      y = bn_select_relu(x, p)
      y = L.Conv2D(k, 3, padding="same", use_bias=False, kernel_initializer=he_fan_out(),
                   name=f"{p}conv")(y)
      x = L.Concatenate(name=f"{p}concat")([x, y])
    if s < 2:
      p = f"trans{s + 1}_"
      width = int(x.shape[-1])
      x = bn_select_relu(x, p)
      x = L.Conv2D(width, 1, use_bias=False, kernel_initializer=he_fan_out(), name=f"{p}conv")(x)
      x = InlineAveragePooling2D(2, name=f"{p}pool")(x)
  x = bn_select_relu(x, "")
  x = L.GlobalAveragePooling2D(name="avgpool")(x)
  return keras.Model(inputs, _linear(x, num_classes, True), name=name)


MODELS.add("vgg19_slim", ModelSpec("vgg19_slim", "cifar", lambda: list(CIFAR_CFGS[19]),
                                   lambda widths, **kw: vgg_slim(widths, **kw)))


def _register_preresnet(depth):
  MODELS.add(f"preresnet{depth}", ModelSpec(
      f"preresnet{depth}", "cifar", lambda: preresnet_default_cfg(depth),
      lambda widths, **kw: preresnet(widths, depth=depth, **kw)))


for _depth in (110, 164):
  _register_preresnet(_depth)

MODELS.add("densenet40", ModelSpec("densenet40", "cifar", densenet_default_cfg,
                                   lambda widths, **kw: densenet(widths, depth=40, **kw)))
