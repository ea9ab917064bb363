"""Every random stream of training (order, crop, flip) is keyed by (seed, run, epoch): a resumed
run sees exactly the batches of an uninterrupted one and ends with bit-identical weights."""
import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tf_keras as keras

from tf_rethink.data.pipeline import from_arrays
from tf_rethink.train.strategy import make_strategy
from tf_rethink.train.trainer import TrainSpec, train
from tests.train.test_trainer import Crash, CrashAt, EpochCounter

N, BATCH = 48, 16


def _arrays():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 255, (N, 28, 28, 1), dtype=np.uint8)
  return images, rng.integers(0, 10, N).astype(np.int32)


def _labels():
  return _arrays()[1]


def _data(seed=3):
  images, labels = _arrays()
  train_ds = from_arrays(images, labels, "embedded", batch_size=BATCH, seed=seed,
                                  train=True)
  test_ds = from_arrays(images[:16], labels[:16], "embedded", batch_size=16, seed=seed,
                                 train=False)
  return train_ds, test_ds


def _batches(ds):
  return [(x.numpy(), y.numpy()) for x, y in ds]


def test_epochs_are_keyed_by_seed_run_and_epoch_not_by_history():
  train_ds, _ = _data()
  assert train_ds.steps_per_epoch == 3
  whole = _batches(train_ds.for_epochs(0, 3, "baseline"))
  assert len(whole) == 9
  for _ in range(2):   # iterating the shared dataset first changes nothing
    _batches(train_ds)
  tail = _batches(train_ds.for_epochs(1, 2, "baseline"))
  for (x, y), (x2, y2) in zip(whole[3:], tail):
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
  # Each epoch reorders and redraws; another run name or seed gives other batches.
  assert not np.array_equal(whole[0][0], whole[3][0])
  other = _batches(train_ds.for_epochs(0, 1, "scratch_e"))
  assert not np.array_equal(whole[0][0], other[0][0])
  assert not np.array_equal(whole[0][0], _batches(_data(seed=4)[0].for_epochs(0, 1,
                                                                               "baseline"))[0][0])
  # One epoch holds every example once (a permutation, the last batch the remainder).
  assert [len(y) for _, y in whole[:3]] == [16, 16, 16]
  assert sorted(np.concatenate([y for _, y in whole[:3]]).tolist()) == sorted(_labels().tolist())


def _model():
  keras.utils.set_random_seed(0)
  inputs = keras.Input((28, 28, 1))
  x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(10)(x))


def _run(run_dir, callbacks=()):
  train_ds, test_ds = _data()
  spec = TrainSpec(epochs=3, lr=0.05, batch_size=BATCH, weight_decay=1e-4, milestones=(2,))
  return train(_model, train_ds, test_ds, spec, strategy=make_strategy("one_device"),
               run_dir=str(run_dir), extra_callbacks=callbacks, verbose=0)


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
  full = _run(tmp_path / "a" / "baseline")
  with pytest.raises(Crash):
    _run(tmp_path / "b" / "baseline", callbacks=[CrashAt(1)])
  counter = EpochCounter()
  resumed = _run(tmp_path / "b" / "baseline", callbacks=[counter])
  assert counter.epochs == [1, 2]
  for a, b in zip(full.model.get_weights(), resumed.model.get_weights()):
    np.testing.assert_array_equal(a, b)
  assert full.history["loss"] == resumed.history["loss"]
  assert full.history["val_accuracy"] == resumed.history["val_accuracy"]
