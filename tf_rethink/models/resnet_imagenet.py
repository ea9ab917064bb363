"""torchvision-layout ResNet-18/34 (basic blocks) and ResNet-50 (bottlenecks) for ImageNet.

Spec 4.6 (L1-norm `imagenet/l1-norm-pruning/resnet.py`; ThiNet / Regression / SSS ResNet-50):
stem conv7x7/2 (pad 3) + BN + ReLU + maxpool 3x3/2 (pad 1); stages of [2,2,2,2] / [3,4,6,3] /
[3,4,6,3] blocks with stage widths 64/128/256/512 (x4 outputs for bottlenecks); stride 2 in the
first block of stages 2-4: in conv1 of a basic block, in the 3x3 conv2 of a bottleneck
(torchvision). Projection shortcut (`..._downsample_conv` 1x1 with the stride + `..._downsample_bn`)
where the shape changes. Head: average pool over the final map (counted by convention A like the
reference's `nn.AvgPool2d(7)` module) + Linear -> classes.

PyTorch's symmetric padding is reproduced with ZeroPadding2D + 'valid' wherever the stride is 2
(`conv1_pad`, `pool1_pad`, `..._conv{k}_pad`), since TF 'same' pads bottom/right only (spec 3.5).
The max-pool pads with zeros instead of PyTorch's -inf: its input comes out of a ReLU (>= 0) and
every 3x3/2 window holds at least one real element, so the maximum is the same.

Widths: basic blocks, one int per block (conv1's width; L1-norm ResNet-34, spec 2.1);
bottlenecks, two ints per block, flat `[b1_conv1, b1_conv2, b2_conv1, ...]` (ThiNet/Regression
prune the first two convs); conv2 of a basic block and conv3 of a bottleneck keep the stage width.
Init (spec 3.3): conv N(0, 2/(k*k*C_out)), BN gamma 1 / beta 0, Linear PyTorch default.
"""
import tf_rethink  # noqa: F401
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.models.registry import MODELS, ModelSpec
from tf_rethink.util.widths import scale_width
from tf_rethink.models.channel_gather import ChannelGather
from tf_rethink.models.layers import he_fan_out, torch_linear_initializers

STAGE_WIDTHS = (64, 128, 256, 512)
CONFIGS = {  # name: (block kind, blocks per stage)
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


def _bn(name):
  return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def _conv(x, filters, kernel, stride, name, use_bias=False):
  """Conv with PyTorch padding (kernel // 2); explicit symmetric zero padding when stride > 1."""
  padding = "same"
  if stride != 1:
    padding = "valid"
    if kernel // 2:
      x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
  return keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=use_bias,
                             kernel_initializer=he_fan_out(), name=name)(x)


def _block(x, p, widths, out_channels, stride, kind, downsample_bias, input_selection=False):
  """One residual block; `widths` are the prunable inner widths of this block."""
  if kind == "basic":
    convs = [(widths[0], 3, stride), (out_channels, 3, 1)]
  else:
    convs = [(widths[0], 1, 1), (widths[1], 3, stride), (out_channels, 1, 1)]
  y = x
  if input_selection:  # the Regression ResNet-50-2x reads a subset of the block input (spec 2.3)
    y = ChannelGather(name=f"{p}_select")(y)
  for k, (filters, kernel, s) in enumerate(convs, start=1):
    y = _conv(y, filters, kernel, s, f"{p}_conv{k}")
    y = _bn(f"{p}_bn{k}")(y)
    if k < len(convs):
      y = keras.layers.ReLU(name=f"{p}_relu{k}")(y)
  shortcut = x
  if stride != 1 or x.shape[-1] != out_channels:
    shortcut = keras.layers.Conv2D(out_channels, 1, strides=stride, use_bias=downsample_bias,
                                   kernel_initializer=he_fan_out(),
                                   name=f"{p}_downsample_conv")(x)
    shortcut = _bn(f"{p}_downsample_bn")(shortcut)
  x = keras.layers.Add(name=f"{p}_add")([y, shortcut])
  return keras.layers.ReLU(name=f"{p}_relu{len(convs)}")(x)


def imagenet_resnet(widths, *, input_shape, num_classes, blocks, kind, width_multiplier=1.0,
                    downsample_bias=False, input_selection=False, name="resnet"):
  """Builds a torchvision-layout ResNet.

  Args:
    widths: per-block prunable widths (module docstring); pairs are flattened.
    blocks: blocks per stage; kind: "basic" or "bottleneck".
    downsample_bias: bias on the 1x1 projection conv (the ThiNet / Regression ResNet-50 files).
    input_selection: a `ChannelGather` (`..._select`, all channels until pruned) before each
      block's conv1 (the Regression ResNet-50-2x, spec 2.3).
  """
  flat = [w for item in widths for w in (item if isinstance(item, (list, tuple)) else [item])]
  per_block = 1 if kind == "basic" else 2
  if len(flat) != per_block * sum(blocks) or not all(isinstance(w, int) and w > 0 for w in flat):
    raise UsageError(f"{name} widths need {per_block * sum(blocks)} positive ints "
                     f"({per_block} per block), got {widths}")
  expansion = 1 if kind == "basic" else 4
  inputs = keras.Input(shape=input_shape, name="input")
  x = _conv(inputs, scale_width(64, width_multiplier), 7, 2, "conv1")
  x = _bn("bn1")(x)
  x = keras.layers.ReLU(name="relu1")(x)
  x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
  x = keras.layers.MaxPooling2D(3, 2, name="pool1")(x)
  i = 0
  for s, n in enumerate(blocks):
    out_channels = scale_width(STAGE_WIDTHS[s], width_multiplier) * expansion
    for b in range(n):
      stride = 2 if (s > 0 and b == 0) else 1
      x = _block(x, f"stage{s + 1}_block{b + 1}", flat[i:i + per_block], out_channels, stride,
                 kind, downsample_bias, input_selection)
      i += per_block
  x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
  kernel_init, bias_init = torch_linear_initializers(x.shape[-1])
  outputs = keras.layers.Dense(num_classes, kernel_initializer=kernel_init,
                               bias_initializer=bias_init, name="logits")(x)
  return keras.Model(inputs, outputs, name=name)


def _register(name, kind, blocks):
  per_block = 1 if kind == "basic" else 2

  def default_widths():
    return [STAGE_WIDTHS[s] for s, n in enumerate(blocks) for _ in range(n * per_block)]

  def builder(widths, **kwargs):
    return imagenet_resnet(widths, blocks=blocks, kind=kind, name=name, **kwargs)

  MODELS.add(name, ModelSpec(name, "imagenet", default_widths, builder))


for _name, (_kind, _blocks) in CONFIGS.items():
  _register(_name, _kind, _blocks)
