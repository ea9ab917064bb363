"""Custom layers and initializers of the model zoo (serializable, `package="tf_rethink"`).

* `OptionAShortcut`: the parameter-free residual shortcut of He et al. (2016), "option A", as
  written in the L1-norm reference (`cifar/l1-norm-pruning/models/resnet.py`,
  `downsample_basic_block`): AvgPool 2x2/2, then zero channels appended after the input channels.
* `InlineGlobalAveragePooling2D`: a global average pool that the FLOPs counter (convention A,
  paper spec section 5) does not count, because the reference computes it inline in `forward`
  (`nn.AvgPool2d(2)(x)` in the CIFAR VGG) where the hook-based counter cannot see it.
* `InlineAveragePooling2D`: likewise an uncounted AveragePooling2D, for the DenseNet transitions'
  functional `F.avg_pool2d(out, 2)` (`densenet40`, `densenet_bc100`).
* `torch_linear_initializers(fan_in)`: PyTorch's default `nn.Linear` initialization.
"""
import math

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.pruning.rules import RULES, Ctx, Cut, Free, Rule

def he_fan_out():
  """He-normal initializer on fan-out, untruncated: N(0, 2/(kh*kw*C_out)) (spec 3.3)."""
  return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def torch_linear_initializers(fan_in):
  """PyTorch's default nn.Linear init: weight and bias ~ U(+-1/sqrt(fan_in)) (spec 3.3).

  Returns (kernel_initializer, bias_initializer). The kernel part is fan-in aware
  (VarianceScaling(1/3, fan_in, uniform) has limit sqrt(3 * (1/3) / fan_in)); the bias bound is
  fixed at build time from `fan_in`.
  """
  bound = 1.0 / math.sqrt(max(1, fan_in))
  return (keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform"),
          keras.initializers.RandomUniform(-bound, bound))


@keras.utils.register_keras_serializable(package="tf_rethink")
class OptionAShortcut(keras.layers.Layer):
  """Option-A residual shortcut: AvgPool(pool_size, pool_size) then zero-pad channels.

  Reference (L1-norm, `downsample_basic_block`): `AvgPool2d(2, 2)(x)`, then
  `cat([x, zeros], dim=1)` up to `out_channels`: the input channels come first, zeros last.
  It has no weights, so surgery never changes it (the block's second conv, which feeds the add,
  is never pruned).

  Quirk (spec 7.1): the reference rebuilds the tensor from `x.data`, so no gradient flows through
  it. `detach=True` reproduces that with `tf.stop_gradient`; the default (False) lets gradients
  flow, as the paper describes option A.

  Args:
    out_channels: channels after zero padding (>= input channels).
    pool_size: average-pool window and stride (2 in every reference model); 'valid' padding, so
      odd spatial sizes floor as in PyTorch.
    detach: stop gradients through the shortcut (reference quirk).
  """

  def __init__(self, out_channels, pool_size=2, detach=False, **kwargs):
    super().__init__(**kwargs)
    self.out_channels = int(out_channels)
    self.pool_size = int(pool_size)
    self.detach = bool(detach)

  def build(self, input_shape):
    in_channels = int(input_shape[-1])
    if in_channels > self.out_channels:
      raise ValueError(f"{self.name}: input has {in_channels} channels, more than "
                       f"out_channels={self.out_channels}")
    super().build(input_shape)

  def call(self, inputs):
    x = inputs
    if self.pool_size > 1:
      x = tf.nn.avg_pool2d(x, self.pool_size, self.pool_size, "VALID")
    extra = self.out_channels - x.shape[-1]
    if extra:
      x = tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])
    if self.detach:
      x = tf.stop_gradient(x)
    return x

  def compute_output_shape(self, input_shape):
    shape = tf.TensorShape(input_shape).as_list()
    p = self.pool_size
    spatial = [None if d is None else (d - p) // p + 1 for d in shape[1:3]]
    return tf.TensorShape([shape[0]] + spatial + [self.out_channels])

  def get_prunable_weights(self):
    """No weights: lets TF-MOT `prune_low_magnitude` wrap whole models that contain it."""
    return []

  def get_config(self):
    config = super().get_config()
    config.update(out_channels=self.out_channels, pool_size=self.pool_size, detach=self.detach)
    return config


@keras.utils.register_keras_serializable(package="tf_rethink")
class InlineGlobalAveragePooling2D(keras.layers.GlobalAveragePooling2D):
  """Global average pooling that FLOPs convention A does not count.

  The L1-norm CIFAR VGG (`cifar/l1-norm-pruning/models/vgg.py`) averages its 2x2 map with an
  `nn.AvgPool2d(2)` created inside `forward`, which the reference counter's module hooks miss
  (spec section 5, "not counted"). This subclass computes exactly GlobalAveragePooling2D (equal to
  AvgPool(2) on the 2x2 map of a 32x32 input, and defined for any input size); only
  `tf_rethink.flops.count` treats it differently. Being a GlobalAveragePooling2D subclass, surgery
  and channel-coupling code handle it like any GAP.
  """

  def get_prunable_weights(self):
    """No weights: lets TF-MOT `prune_low_magnitude` wrap whole models that contain it."""
    return []


@keras.utils.register_keras_serializable(package="tf_rethink")
class InlineAveragePooling2D(keras.layers.AveragePooling2D):
  """An average pool that FLOPs convention A does not count: DenseNet's transition pools with
  the functional `F.avg_pool2d(out, 2)`, which the reference counter's module hooks miss."""


class _FixedLayoutRule(Rule):
  """Surgery rule of `OptionAShortcut`: its zero channels are appended after the input channels,
  so its inputs must keep all their channels (in the CIFAR ResNets only the first conv of a
  block is prunable); free in convention A (the reference's zero-padding shortcut)."""

  def cut(self, c: Ctx) -> Cut:
    if not c.inputs_full():
      c.refuse("needs all its input channels (option-A zero padding); do not prune the layers "
               "feeding it")
    return Cut(out=c.full_out)


RULES.register_class(_FixedLayoutRule(), OptionAShortcut)
# Inline pools: channel-wise like their base classes, but free in convention A.
RULES.register_class(Free(), InlineGlobalAveragePooling2D, InlineAveragePooling2D)
