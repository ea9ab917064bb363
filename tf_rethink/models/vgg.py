"""VGG with BatchNorm for CIFAR (L1-norm reference) and torchvision VGG-16 for ImageNet.

CIFAR (`cifar/l1-norm-pruning/models/vgg.py`, spec 4.1): every cfg int is a 3x3 conv (pad 1, no
bias) + BN + ReLU, 'M' a 2x2/2 max-pool; the last stage has no pool. The reference then averages
the 2x2 map with an inline `nn.AvgPool2d(2)`; here `avgpool` is an `InlineGlobalAveragePooling2D`
(identical on 32x32 inputs, defined for any size, e.g. 28x28x1, and skipped by the FLOPs counter
as the reference counter skips the inline pool). Classifier: Linear(cfg[-1] -> 512) + BN1d + ReLU +
Linear(512 -> classes). Init (spec 3.3): conv N(0, 2/(9 C_out)), BN2d gamma 0.5 / beta 0, Linear
N(0, 0.01) with bias 0. The reference fills only BatchNorm2d with 0.5, so `fc1_bn` keeps gamma 1.

ImageNet (`vgg16_imagenet`, torchvision `vgg16`, no BN, spec 4.6): convs with bias + ReLU, five
pools, then Flatten of the 7x7x512 map (224x224 input) into fc1 (25088 -> 4096) + ReLU + Dropout
0.5, fc2 (4096) + ReLU + Dropout 0.5, logits. No GAP (torchvision's AdaptiveAvgPool2d(7) is the
identity at 224 and the counter ignores it): at other input sizes fc1's input width follows the
map size. Init: conv Kaiming-normal fan-out with bias 0, Linear N(0, 0.01) with bias 0.
"""
import tf_rethink  # noqa: F401
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.models.registry import MODELS, ModelSpec
from tf_rethink.util.widths import scale_width
from tf_rethink.models.layers import InlineGlobalAveragePooling2D, he_fan_out

CIFAR_CFGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512],
}
IMAGENET_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                      512, 512, 512, "M"]


def _bn(name, gamma=1.0):
  return keras.layers.BatchNormalization(
      momentum=0.9, epsilon=1e-5, gamma_initializer=keras.initializers.Constant(gamma), name=name)


def _dense_init():
  # A fresh initializer per layer: tf_keras repeats the values of a reused unseeded instance.
  return dict(kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
              bias_initializer="zeros")


def _check_cfg(widths, n_convs, name):
  convs = [w for w in widths if w != "M"]
  if len(convs) != n_convs or not all(isinstance(w, int) and w > 0 for w in convs):
    raise UsageError(f"{name} widths need {n_convs} positive ints (and 'M' pools), got {widths}")


def _features(x, widths, *, batch_norm, use_bias, gamma=1.0):
  """conv{i} (+ conv{i}_bn) + conv{i}_relu per int, pool{j} per 'M'."""
  i = j = 0
  for w in widths:
    if w == "M":
      j += 1
      x = keras.layers.MaxPooling2D(2, 2, name=f"pool{j}")(x)
      continue
    i += 1
    x = keras.layers.Conv2D(int(w), 3, padding="same", use_bias=use_bias,
                            kernel_initializer=he_fan_out(), name=f"conv{i}")(x)
    if batch_norm:
      x = _bn(f"conv{i}_bn", gamma)(x)
    x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
  return x


def cifar_vgg(widths, *, input_shape, num_classes, width_multiplier=1.0, fc_width=512,
              name="vgg"):
  """L1-norm CIFAR VGG with BN; `fc_width` (512) is scaled by `width_multiplier`."""
  inputs = keras.Input(shape=input_shape, name="input")
  x = _features(inputs, widths, batch_norm=True, use_bias=False, gamma=0.5)
  x = InlineGlobalAveragePooling2D(name="avgpool")(x)
  x = keras.layers.Dense(scale_width(fc_width, width_multiplier), name="fc1", **_dense_init())(x)
  x = _bn("fc1_bn")(x)
  x = keras.layers.ReLU(name="fc1_relu")(x)
  outputs = keras.layers.Dense(num_classes, name="logits", **_dense_init())(x)
  return keras.Model(inputs, outputs, name=name)


def imagenet_vgg16(widths, *, input_shape, num_classes, width_multiplier=1.0,
                   fc_widths=(4096, 4096), dropout=0.5, name="vgg16_imagenet"):
  """torchvision VGG-16 (no BN); fc widths scaled by `width_multiplier`."""
  _check_cfg(widths, 13, name)
  inputs = keras.Input(shape=input_shape, name="input")
  x = _features(inputs, widths, batch_norm=False, use_bias=True)
  x = keras.layers.Flatten(name="flatten")(x)
  for k, w in enumerate(fc_widths, start=1):
    x = keras.layers.Dense(scale_width(w, width_multiplier), name=f"fc{k}", **_dense_init())(x)
    x = keras.layers.ReLU(name=f"fc{k}_relu")(x)
    x = keras.layers.Dropout(dropout, name=f"fc{k}_dropout")(x)
  outputs = keras.layers.Dense(num_classes, name="logits", **_dense_init())(x)
  return keras.Model(inputs, outputs, name=name)


def _register_cifar(depth):
  name = f"vgg{depth}"
  n_convs = sum(1 for w in CIFAR_CFGS[depth] if w != "M")

  def builder(widths, **kwargs):
    _check_cfg(widths, n_convs, name)
    return cifar_vgg(widths, name=name, **kwargs)

  MODELS.add(name, ModelSpec(name, "cifar", lambda: list(CIFAR_CFGS[depth]), builder))


for _depth in sorted(CIFAR_CFGS):
  _register_cifar(_depth)

MODELS.add("vgg16_imagenet", ModelSpec("vgg16_imagenet", "imagenet",
                                       lambda: list(IMAGENET_VGG16_CFG), imagenet_vgg16))
