"""`ChannelGather`: a block input read through a fixed subset of its channels.

Regression-based pruning (He et al., ICCV 2017; spec 2.3) lets the first 1x1 conv of a ResNet-50
bottleneck read only some channels of the block input ("feature map sampling"); the reference
(`imagenet/regression-pruning/models/resnet_2x.py`) implements it with a `channel_selection`
layer holding a fixed 0/1 mask (`filter.pkl`) and gathering the selected channels. This layer is
that gather with the selected indices in its config: `indices=None` passes every channel (the
unpruned model), and surgery (`tf_rethink.pruning.data_driven`) narrows `indices`. It has no
weights and costs 0 FLOPs in the reference's convention A (gathers are not counted, spec 5).
"""
import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.pruning.rules import PRODUCER, RULES, Ctx, Cut, Rule, full


@keras.utils.register_keras_serializable(package="tf_rethink")
class ChannelGather(keras.layers.Layer):
  """Output channel i is input channel `indices[i]` (last axis); all channels when None.

  Args:
    indices: input channel indices to pass, in order (None: all).
  """

  def __init__(self, indices=None, **kwargs):
    super().__init__(**kwargs)
    self.indices = None if indices is None else [int(i) for i in indices]

  def build(self, input_shape):
    n = int(input_shape[-1])
    if self.indices is not None and not all(0 <= i < n for i in self.indices):
      raise ValueError(f"{self.name}: indices must lie in [0, {n}), got {self.indices[:8]}...")
    super().build(input_shape)

  def call(self, inputs):
    if self.indices is None:
      return tf.identity(inputs)
    return tf.gather(inputs, self.indices, axis=-1)

  def compute_output_shape(self, input_shape):
    shape = tf.TensorShape(input_shape).as_list()
    if self.indices is not None:
      shape[-1] = len(self.indices)
    return tf.TensorShape(shape)

  def get_prunable_weights(self):
    """No weights: lets TF-MOT `prune_low_magnitude` wrap whole models that contain it."""
    return []

  def get_config(self):
    config = super().get_config()
    config.update(indices=self.indices)
    return config


class _GatherRule(Rule):
  """Surgery rule of `ChannelGather`: a producer whose plan entry keeps output POSITIONS; its
  indices follow its (possibly pruned) input. Free in convention A (gathers are not counted)."""
  role = PRODUCER

  def cut(self, c: Ctx) -> Cut:
    orig = c.layer.indices if c.layer.indices is not None else list(range(c.n_in))
    keep = c.keep if c.keep is not None else full(len(orig))
    position = {ch: i for i, ch in enumerate(c.ins[0])}
    missing = [orig[k] for k in keep if orig[k] not in position]
    if missing:
      c.refuse(f"selects input channels {missing[:5]} that the plan removes; leave its input "
               "unpruned")
    config = {}
    if c.layer.indices is not None or keep != full(len(orig)) or not c.inputs_full():
      config = {"indices": [position[orig[k]] for k in keep]}
    return Cut(out=keep, config=config)


RULES.register_class(_GatherRule(), ChannelGather)
