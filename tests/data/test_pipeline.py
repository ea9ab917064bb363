"""pipeline(): batching, normalization, determinism under a seed, limit, tfds-backed datasets."""
import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from tf_rethink import data
from tf_rethink.util import errors
from tf_rethink.data import augment
from tf_rethink.data import embedded
from tf_rethink.data import tfds_source


def _first(ds):
  return next(iter(ds))


def test_eval_pipeline_is_normalized_and_in_file_order():
  x_test, y_test = embedded.load("test")
  ds = data.pipeline("embedded", "test", batch_size=500, seed=0)
  assert ds.element_spec[0].dtype == tf.float32 and ds.element_spec[1].dtype == tf.int32
  images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
  images, labels = np.concatenate(images), np.concatenate(labels)
  assert images.shape == (2000, 28, 28, 1)
  np.testing.assert_array_equal(labels, y_test)
  np.testing.assert_allclose(images, (x_test / 255 - 0.2860) / 0.3530, atol=1e-5)
  assert abs(images.mean()) < 0.05 and abs(images.std() - 1) < 0.05


def test_same_seed_same_batches_different_seed_differs():
  make = lambda seed: data.pipeline("embedded", "train", batch_size=32, seed=seed, limit=256)
  a, b, c = _first(make(1)), _first(make(1)), _first(make(2))
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[1], c[1])


def test_each_epoch_reshuffles_reproducibly():
  ds1 = data.pipeline("embedded", "train", batch_size=64, seed=3, limit=64)
  ds2 = data.pipeline("embedded", "train", batch_size=64, seed=3, limit=64)
  epochs1 = [_first(ds1)[0].numpy() for _ in range(2)]
  epochs2 = [_first(ds2)[0].numpy() for _ in range(2)]
  assert not np.array_equal(epochs1[0], epochs1[1])
  for e1, e2 in zip(epochs1, epochs2):
    np.testing.assert_array_equal(e1, e2)


def test_train_pipeline_augments_every_example_of_the_epoch():
  x, y = embedded.load("train")
  images, labels = _first(data.pipeline("embedded", "train", batch_size=100, seed=0, limit=100))
  assert sorted(labels.numpy()) == sorted(y[:100])  # a permutation of the first 100 examples
  pixels = np.rint(images.numpy() * 0.3530 * 255 + 0.2860 * 255)
  changed = [not any(np.array_equal(p, o) for o in x[:100]) for p in pixels]
  assert sum(changed) > 80  # almost every example is shifted or flipped


def test_limit_and_remainder():
  assert data.num_examples("embedded", "train") == 10_000
  assert data.num_examples("embedded", "test", limit=100) == 100
  assert data.num_examples("embedded", "test", limit=10**6) == 2000
  sizes = [len(y) for _, y in data.pipeline("embedded", "train", batch_size=32, seed=0, limit=100)]
  assert sizes == [32, 32, 32, 4]
  with pytest.raises(errors.UsageError, match="limit"):
    data.pipeline("embedded", "test", batch_size=8, seed=0, limit=0)


def test_distributes_over_two_devices():
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  ds = data.pipeline("embedded", "test", batch_size=10, seed=0, limit=25)
  total = 0
  for batch in strategy.experimental_distribute_dataset(ds):
    total += sum(int(tf.shape(t)[0]) for t in strategy.experimental_local_results(batch[1]))
  assert total == 25


@pytest.mark.parametrize("name, shape", [("cifar10", (32, 32, 3)), ("imagenet2012", (224, 224, 3))])
@pytest.mark.parametrize("train", [True, False])
def test_tfds_datasets_with_mocked_records(name, shape, train, tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  with tfds.testing.mock_data(num_examples=6), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True), \
       mock.patch.object(tfds_source, "num_examples", return_value=6):
    batches = list(data.pipeline(name, "test", batch_size=4, seed=0, train=train, data_dir=str(tmp_path)))
  assert [tuple(x.shape) for x, _ in batches] == [(4,) + shape, (2,) + shape]
  info = data.info(name)
  lo = (0 - np.array(info.mean)) / np.array(info.std)
  hi = (1 - np.array(info.mean)) / np.array(info.std)
  x = np.concatenate([b[0] for b in batches])
  assert np.all(x >= lo - 1e-3) and np.all(x <= hi + 1e-3)
  assert all(b[1].dtype == tf.int32 for b in batches)
  assert np.all(np.concatenate([b[1] for b in batches]) < info.num_classes)


def _resident_mb():
  import ctypes
  import gc
  gc.collect()
  ctypes.CDLL("libc.so.6").malloc_trim(0)
  with open("/proc/self/status") as f:
    return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024.0


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux /proc")
def test_in_memory_training_set_is_resident_once():
  """from_arrays keeps ONE copy of the examples once the numpy array is dropped (tf.data's graph
  rewrite, off there, would keep a second: 2.3 copies measured with it on)."""
  from tf_rethink.data.pipeline import from_arrays
  before = _resident_mb()
  images = np.random.default_rng(0).integers(0, 256, (65536, 32, 32, 3), dtype=np.uint8)
  size_mb = images.nbytes / 2**20  # 192 MiB
  ds = from_arrays(images, np.zeros(65536, np.int64), "cifar10", batch_size=64, seed=0, train=True)
  del images
  iterator = iter(ds)
  first = next(iterator)
  for _ in range(7):
    next(iterator)
  copies = (_resident_mb() - before) / size_mb
  assert first[0].shape == (64, 32, 32, 3) and first[0].dtype == tf.float32
  assert 0.9 < copies < 1.5, copies


def test_from_arrays_matches_the_registered_pipeline_and_repeats():
  x, y = embedded.load("test")
  ds = data.pipeline("embedded", "test", batch_size=50, seed=4, limit=100)
  from tf_rethink.data.pipeline import from_arrays
  same = from_arrays(x[:100], y[:100], "embedded", batch_size=50, seed=4, train=False)
  for (a, la), (b, lb) in zip(ds, same):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(la.numpy(), lb.numpy())
  looped = from_arrays(x[:100], y[:100], "embedded", batch_size=64, seed=4, train=True,
                       repeat=True, drop_remainder=True)
  assert [int(b[1].shape[0]) for b in looped.take(4)] == [64] * 4  # 256 > 100: it repeats
  with pytest.raises(errors.UsageError, match="100 images but 99 labels"):
    from_arrays(x[:100], y[:99], "embedded", batch_size=8, seed=0, train=False)
