"""A NaN/inf loss stops training at once in one line (epoch, step, lr); the last good epoch's
checkpoint stays, no final weights or result are written."""
import os

import pytest

from tf_rethink.train.strategy import make_strategy
from tf_rethink.train.trainer import TrainSpec, train
from tf_rethink.util.errors import DivergedError
from tests.helpers import tiny_convnet, tiny_dataset
from tests.train.test_trainer import EpochCounter


def _run(run_dir, lr, epochs=3, callbacks=()):
  train_ds, test_ds = tiny_dataset(32)
  spec = TrainSpec(epochs=epochs, lr=lr, batch_size=8, weight_decay=0.0, milestones=())
  return train(tiny_convnet, train_ds, test_ds, spec, strategy=make_strategy("one_device"),
               run_dir=str(run_dir), verbose=0, extra_callbacks=callbacks)


def test_huge_lr_stops_at_the_first_bad_step(tmp_path):
  with pytest.raises(DivergedError) as e:
    _run(tmp_path, lr=1e30)
  message = str(e.value)
  assert "\n" not in message
  assert "diverged" in message and "epoch 1" in message and "lr 1e+30" in message
  assert "step " in message
  assert not os.path.exists(tmp_path / "final.weights.h5")
  assert not os.path.exists(tmp_path / "train_result.json")


class LrBomb(EpochCounter):
  """Sets the lr to 1e30 from epoch `at` on (after the StepLR callback set it)."""

  def __init__(self, at):
    super().__init__()
    self.at = at

  def on_epoch_begin(self, epoch, logs=None):
    super().on_epoch_begin(epoch, logs)
    if epoch >= self.at:
      self.model.optimizer.learning_rate.assign(1e30)


def test_the_last_good_epoch_is_kept_and_resumes(tmp_path):
  with pytest.raises(DivergedError, match="epoch 2"):
    _run(tmp_path, lr=0.05, callbacks=[LrBomb(1)])
  assert os.path.isdir(tmp_path / "backup")        # epoch 1's checkpoint
  assert not os.path.exists(tmp_path / "train_result.json")
  counter = EpochCounter()
  result = _run(tmp_path, lr=0.05, callbacks=[counter])   # the same run, now without the bomb
  assert counter.epochs == [1, 2]
  assert result.epochs == 3 and all(v == v for v in result.history["loss"])
