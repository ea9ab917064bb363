"""Step learning-rate schedule by epoch (paper spec 3.1-3.4).

The reference uses `lr = base * gamma ** (number of milestones <= epoch)` (0-based epochs), e.g.
CIFAR: base 0.1, gamma 0.1, milestones (int(0.5 E), int(0.75 E)) = (80, 120) for E = 160, so
lr = 0.1 for epochs 0..79, 0.01 for 80..119, 0.001 from 120. Scratch-B scales the milestones with
its epoch budget (`regimes.lr_milestones`). Empty milestones give a constant lr (fine-tuning).

The lr depends only on the epoch (or step) counter, never on Python state, so a resumed run
gets exactly the lr of an uninterrupted one. `lr_at_epoch` is the ONE implementation of the
rule; the callback and the step-driven `LearningRateSchedule` both call it.
"""
from typing import Sequence

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras


def lr_at_epoch(epoch, base_lr: float, milestones: Sequence[int] = (), gamma: float = 0.1):
  """base_lr * gamma ** (number of milestones <= epoch); `epoch` is 0-based, int or tensor.

  Returns a Python float for a Python `epoch`, else a float32 tensor.
  """
  if not tf.is_tensor(epoch):
    return float(base_lr) * float(gamma) ** sum(1 for m in milestones if int(m) <= int(epoch))
  if not milestones:
    return tf.constant(base_lr, tf.float32)
  passed = tf.reduce_sum(tf.cast(
      tf.cast(epoch, tf.int64) >= tf.constant(list(milestones), tf.int64), tf.float64))
  return tf.cast(tf.constant(base_lr, tf.float64) * tf.constant(gamma, tf.float64) ** passed,
                 tf.float32)


@keras.utils.register_keras_serializable(package="tf_rethink")
class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
  """`lr_at_epoch` driven by the optimizer's step counter: epoch = step // steps_per_epoch."""

  def __init__(self, base_lr: float, milestones: Sequence[int] = (), gamma: float = 0.1,
               steps_per_epoch: int = 1):
    if steps_per_epoch < 1:
      raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    self.base_lr = float(base_lr)
    self.milestones = tuple(int(m) for m in milestones)
    self.gamma = float(gamma)
    self.steps_per_epoch = int(steps_per_epoch)

  def __call__(self, step):
    epoch = tf.cast(step, tf.int64) // self.steps_per_epoch
    return lr_at_epoch(epoch, self.base_lr, self.milestones, self.gamma)

  def get_config(self):
    return {"base_lr": self.base_lr, "milestones": list(self.milestones), "gamma": self.gamma,
            "steps_per_epoch": self.steps_per_epoch}


class StepLR(keras.callbacks.Callback):
  """Sets the optimizer's lr to `lr_at_epoch(epoch)` at the start of every epoch.

  Works without knowing steps_per_epoch. Because `fit` restarts at the restored epoch after a
  resume, the lr is that of the uninterrupted run. Adds `learning_rate` to the epoch logs
  (TensorBoard and History record it) when placed before them in the callback list.
  """

  def __init__(self, base_lr: float, milestones: Sequence[int] = (), gamma: float = 0.1):
    super().__init__()
    self.base_lr = float(base_lr)
    self.milestones = tuple(int(m) for m in milestones)
    self.gamma = float(gamma)
    self._lr = self.base_lr

  def on_epoch_begin(self, epoch, logs=None):
    self._lr = lr_at_epoch(epoch, self.base_lr, self.milestones, self.gamma)
    self.model.optimizer.learning_rate = self._lr

  def on_epoch_end(self, epoch, logs=None):
    if logs is not None:
      logs["learning_rate"] = self._lr
