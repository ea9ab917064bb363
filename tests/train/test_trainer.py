"""train(): resume after a crash equals an uninterrupted run; finished runs are reused."""
import glob
import json
import os

import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.train.strategy import make_strategy
from tf_rethink.train.trainer import TrainSpec, train
from tests.helpers import tiny_convnet, tiny_dataset

SPEC = TrainSpec(epochs=4, lr=0.1, batch_size=8, weight_decay=1e-3, milestones=(1, 3))


def _build():
  return tiny_convnet()


def _data():
  return tiny_dataset(32)


class Crash(Exception):
  pass


class CrashAt(keras.callbacks.Callback):
  """Raises in the middle of epoch `epoch` (0-based), after weights already changed."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch, self.current = epoch, -1

  def on_epoch_begin(self, epoch, logs=None):
    self.current = epoch

  def on_train_batch_end(self, batch, logs=None):
    if self.current == self.epoch and batch == 1:
      raise Crash()


class EpochCounter(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.epochs = []

  def on_epoch_begin(self, epoch, logs=None):
    self.epochs.append(epoch)


def _state(result):
  m = result.model
  return m.get_weights() + [v.numpy() for v in m.optimizer.variables]


def _run(run_dir, callbacks=(), spec=SPEC, strategy=None):
  train_ds, test_ds = _data()
  return train(_build, train_ds, test_ds, spec, strategy=strategy or make_strategy("one_device"),
               run_dir=str(run_dir), extra_callbacks=callbacks, verbose=0,
               scalars={"params": 123, "flops": 456})


def test_resume_after_crash_equals_uninterrupted(tmp_path):
  full = _run(tmp_path / "full")
  with pytest.raises(Crash):
    _run(tmp_path / "resumed", callbacks=[CrashAt(2)])
  assert os.path.isdir(tmp_path / "resumed" / "backup")
  assert not os.path.exists(tmp_path / "resumed" / "final.weights.h5")
  counter = EpochCounter()
  resumed = _run(tmp_path / "resumed", callbacks=[counter])
  assert counter.epochs == [2, 3]  # continued at the epoch after the last completed one
  a, b = _state(full), _state(resumed)
  assert len(a) == len(b) == len(full.model.get_weights()) + 1 + 5  # iterations, 5 momenta
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
  assert int(resumed.model.optimizer.iterations.numpy()) == 4 * 4
  h = resumed.history
  np.testing.assert_allclose(h["learning_rate"], [0.1, 0.01, 0.01, 0.001], rtol=1e-6)
  np.testing.assert_allclose(h["val_accuracy"], full.history["val_accuracy"], atol=1e-6)
  assert resumed.epochs == 4 and len(h["loss"]) == 4
  assert resumed.test_accuracy == h["val_accuracy"][-1]
  assert resumed.best_test_accuracy == max(h["val_accuracy"])
  np.testing.assert_allclose(h["val_best_accuracy"], np.maximum.accumulate(h["val_accuracy"]))
  assert h["loss"][-1] < h["loss"][0]
  # Finished: backup removed, final weights + result written, TensorBoard logs present.
  run = tmp_path / "resumed"
  assert not os.path.exists(run / "backup")
  with open(run / "train_result.json") as f:
    saved = json.load(f)
  assert saved["best_test_accuracy"] == resumed.best_test_accuracy and saved["epochs"] == 4
  assert glob.glob(str(run / "tb" / "train" / "events.*"))
  assert glob.glob(str(run / "tb" / "validation" / "events.*"))


def _tags(logdir):
  tags = set()
  for path in glob.glob(os.path.join(logdir, "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  return tags


def test_finished_run_is_reused_without_training(tmp_path):
  first = _run(tmp_path)
  tags = _tags(str(tmp_path / "tb" / "train"))
  assert {"params", "flops", "epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= tags
  assert {"epoch_accuracy", "epoch_best_accuracy"} <= _tags(str(tmp_path / "tb" / "validation"))
  counter = EpochCounter()
  again = _run(tmp_path, callbacks=[counter, CrashAt(0)])
  assert counter.epochs == []
  for x, y in zip(first.model.get_weights(), again.model.get_weights()):
    np.testing.assert_array_equal(x, y)
  assert again.history == first.history
  assert (again.test_accuracy, again.best_test_accuracy, again.epochs) == (
      first.test_accuracy, first.best_test_accuracy, 4)
  with pytest.raises(UsageError, match="different TrainSpec"):
    _run(tmp_path, spec=TrainSpec(epochs=5, lr=0.1, batch_size=8, weight_decay=1e-3))


def test_corrupt_checkpoint_is_a_one_line_usage_error(tmp_path):
  with pytest.raises(Crash):
    _run(tmp_path, callbacks=[CrashAt(1)])
  data = glob.glob(str(tmp_path / "backup" / "chief" / "*.data-*"))
  assert data
  with open(data[0], "r+b") as f:
    f.truncate(7)
  with pytest.raises(UsageError) as e:
    _run(tmp_path)
  assert "corrupt" in str(e.value) and "delete" in str(e.value) and "\n" not in str(e.value)


def test_train_under_mirrored_two_cpus_resumes(tmp_path):
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
  with pytest.raises(Crash):
    _run(tmp_path, callbacks=[CrashAt(1)], strategy=make_strategy("mirrored", devices=cpus))
  counter = EpochCounter()
  result = _run(tmp_path, callbacks=[counter], strategy=make_strategy("mirrored", devices=cpus))
  assert counter.epochs == [1, 2, 3] and result.epochs == 4
  assert result.model.distribute_strategy.num_replicas_in_sync == 2
  assert result.history["loss"][-1] < result.history["loss"][0]


def test_soft_label_training_is_evaluated_on_int_labels(tmp_path):
  """A run trained on one-hot/soft labels (MixUp, CutMix) reports the test set's true accuracy."""
  train_ds, test_ds = _data()
  soft_train = train_ds.map(lambda x, y: (x, 0.9 * tf.one_hot(y, 3) + 0.1 / 3))
  spec = TrainSpec(epochs=2, lr=0.1, batch_size=8, weight_decay=1e-3)
  result = train(_build, soft_train, test_ds, spec, strategy=make_strategy("one_device"),
                 run_dir=str(tmp_path / "soft"), verbose=0)
  x, y = next(iter(test_ds))
  want = np.mean(np.argmax(result.model(x, training=False).numpy(), axis=1) == y.numpy())
  assert result.test_accuracy == pytest.approx(want)
  assert result.history["loss"][-1] < result.history["loss"][0]


def test_output_off_a_terminal_is_one_line_per_epoch(tmp_path, capsys):
  train_ds, test_ds = _data()
  spec = TrainSpec(epochs=2, lr=0.1, batch_size=8, weight_decay=1e-3)
  train(_build, train_ds, test_ds, spec, strategy=make_strategy("one_device"),
        run_dir=str(tmp_path / "quiet_log"))   # verbose=None: pytest's stdout is no terminal
  out = capsys.readouterr().out
  assert "\r" not in out and "\x08" not in out
  lines = [l for l in out.splitlines() if " epoch " in l]
  assert [l.split(":")[0] for l in lines] == ["quiet_log epoch 1/2", "quiet_log epoch 2/2"]
  assert "val_accuracy" in lines[0] and "lr 0.1" in lines[0]
