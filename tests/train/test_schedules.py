"""Step lr by epoch: base * gamma ** (milestones <= epoch), resume-safe, constant without steps."""
import numpy as np

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.train.optimizer import SGD
from tf_rethink.train.schedules import StepLR, StepSchedule, lr_at_epoch

E = 160
CIFAR = (int(0.5 * E), int(0.75 * E))


def _expected(epoch):
  return 0.1 if epoch < 80 else 0.01 if epoch < 120 else 0.001


def test_cifar_160_epochs():
  assert CIFAR == (80, 120)
  for epoch in [0, 1, 79, 80, 81, 119, 120, 159]:
    np.testing.assert_allclose(lr_at_epoch(epoch, 0.1, CIFAR, 0.1), _expected(epoch), rtol=1e-12)
    np.testing.assert_allclose(float(lr_at_epoch(tf.constant(epoch), 0.1, CIFAR, 0.1)),
                               _expected(epoch), rtol=1e-6)


def test_constant_without_milestones_and_other_gamma():
  assert [lr_at_epoch(e, 0.001) for e in (0, 5, 39)] == [0.001] * 3
  np.testing.assert_allclose(float(lr_at_epoch(tf.constant(39), 0.001)), 0.001, rtol=1e-6)
  # SFP-like: x0.2 at 60, 120, 160.
  np.testing.assert_allclose([lr_at_epoch(e, 0.1, (60, 120, 160), 0.2) for e in (59, 60, 130, 199)],
                             [0.1, 0.02, 0.004, 0.0008], rtol=1e-12)


def test_step_schedule_counts_epochs_by_steps():
  sched = StepSchedule(0.1, CIFAR, 0.1, steps_per_epoch=782)
  for epoch in [0, 79, 80, 119, 120, 159]:
    for step in (epoch * 782, epoch * 782 + 781):
      np.testing.assert_allclose(float(sched(step)), _expected(epoch), rtol=1e-6)
  assert StepSchedule.from_config(sched.get_config()).get_config() == sched.get_config()


def test_steplr_callback_sets_optimizer_lr_and_logs_it():
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  model.compile(SGD(0.5), loss="mse")
  seen = []

  class Probe(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
      seen.append((float(self.model.optimizer.learning_rate), logs["learning_rate"]))

  x = np.ones((4, 2), "float32")
  # initial_epoch=2 is what a resume does: the lr follows the epoch counter only.
  model.fit(x, x[:, :1], epochs=5, initial_epoch=2, verbose=0,
            callbacks=[StepLR(0.5, (1, 4), 0.1), Probe()])
  np.testing.assert_allclose(seen, [(0.05, 0.05), (0.05, 0.05), (0.005, 0.005)], rtol=1e-6)
