"""CIFAR ResNet-20/32/56/110 of the L1-norm reference (`cifar/l1-norm-pruning/models/resnet.py`).

Spec 4.2: depth = 6n + 2. Stem conv3x3(3 -> 16) + BN + ReLU; three stages of n basic blocks with
stage widths 16/32/64, stride 2 in conv1 of the first block of stages 2 and 3. Block: conv3x3
(in -> widths[b], stride) + BN + ReLU, conv3x3(widths[b] -> stage width) + BN, add the shortcut,
ReLU. The shortcut is the identity, or option A (`OptionAShortcut`: AvgPool 2x2/2 then zero
channels) where the shape changes. Head: average pool over the 8x8 map (a counted
GlobalAveragePooling2D, as the reference's `nn.AvgPool2d(8)` module) + Linear(64 -> classes).

Widths: one int per block, the first conv's output width (L1-norm prunes only those, spec 2.1).
Stride-2 convs use ZeroPadding2D(1) + 'valid' (`..._conv1_pad`), matching PyTorch's symmetric
padding (TF 'same' pads bottom/right only, spec 3.5). Init (spec 3.3): conv N(0, 2/(9 C_out)),
BN gamma 1 / beta 0, Linear PyTorch default U(+-1/sqrt(fan_in)) for weight and bias.
"""
import tf_rethink  # noqa: F401
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.models.registry import MODELS, ModelSpec
from tf_rethink.util.widths import scale_width
from tf_rethink.models.layers import OptionAShortcut, he_fan_out, torch_linear_initializers

DEPTHS = (20, 32, 56, 110)
STAGE_WIDTHS = (16, 32, 64)


def bn(name):
  return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def conv3x3(x, filters, stride, name):
  """3x3 conv, PyTorch padding 1: 'same' at stride 1, explicit symmetric pad at stride 2."""
  padding = "same"
  if stride != 1:
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    padding = "valid"
  return keras.layers.Conv2D(filters, 3, strides=stride, padding=padding, use_bias=False,
                             kernel_initializer=he_fan_out(), name=name)(x)


def cifar_resnet(widths, *, input_shape, num_classes, depth, width_multiplier=1.0,
                 detach_downsample_shortcut=False, name=None):
  """Builds the option-A CIFAR ResNet.

  Args:
    widths: 3n ints, the output widths of each block's conv1.
    detach_downsample_shortcut: reproduce the reference's `x.data` shortcut (no gradient through
      the two downsampling shortcuts, spec 7.1). Default off.
  """
  name = name or f"resnet{depth}"
  if (depth - 2) % 6:
    raise UsageError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
  n = (depth - 2) // 6
  if len(widths) != 3 * n or not all(isinstance(w, int) and w > 0 for w in widths):
    raise UsageError(f"{name} widths need {3 * n} positive ints (one per block), got {widths}")
  planes = [scale_width(p, width_multiplier) for p in STAGE_WIDTHS]
  inputs = keras.Input(shape=input_shape, name="input")
  x = conv3x3(inputs, planes[0], 1, "conv1")
  x = bn("bn1")(x)
  x = keras.layers.ReLU(name="relu1")(x)
  in_planes = planes[0]
  for s in range(3):
    for b in range(n):
      stride = 2 if (s > 0 and b == 0) else 1
      p = f"stage{s + 1}_block{b + 1}"
      y = conv3x3(x, widths[s * n + b], stride, f"{p}_conv1")
      y = bn(f"{p}_bn1")(y)
      y = keras.layers.ReLU(name=f"{p}_relu1")(y)
      y = conv3x3(y, planes[s], 1, f"{p}_conv2")
      y = bn(f"{p}_bn2")(y)
      shortcut = x
      if stride != 1 or in_planes != planes[s]:
        shortcut = OptionAShortcut(planes[s], pool_size=2, detach=detach_downsample_shortcut,
                                   name=f"{p}_shortcut")(x)
      x = keras.layers.Add(name=f"{p}_add")([y, shortcut])
      x = keras.layers.ReLU(name=f"{p}_relu2")(x)
      in_planes = planes[s]
  x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
  kernel_init, bias_init = torch_linear_initializers(in_planes)
  outputs = keras.layers.Dense(num_classes, kernel_initializer=kernel_init,
                               bias_initializer=bias_init, name="logits")(x)
  return keras.Model(inputs, outputs, name=name)


def _register(depth):
  n = (depth - 2) // 6

  def builder(widths, **kwargs):
    return cifar_resnet(widths, depth=depth, **kwargs)

  MODELS.add(f"resnet{depth}", ModelSpec(
      f"resnet{depth}", "cifar", lambda: [w for w in STAGE_WIDTHS for _ in range(n)], builder))


for _depth in DEPTHS:
  _register(_depth)
