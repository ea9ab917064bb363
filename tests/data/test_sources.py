"""IDX reader, dataset registry and the errors for data that is not on this machine."""
import gzip
import os

import numpy as np
import pytest

from tf_rethink import data
from tf_rethink.util import errors
from tf_rethink.data import idx

_HAS_IDX = all(idx.has_split(idx.DEFAULT_IDX_DIR, s) for s in ("train", "test"))


def _write_idx(path, array):
  header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_round_trips_a_synthetic_file(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
  labels = rng.integers(0, 10, 7, dtype=np.uint8)
  _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
  _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
  x, y = idx.load(str(tmp_path), "test")
  np.testing.assert_array_equal(x[..., 0], images)
  np.testing.assert_array_equal(y, labels)
  assert data.num_examples("fashion_mnist", "test", idx_dir=str(tmp_path)) == 7
  batches = list(data.pipeline("fashion_mnist", "test", batch_size=4, seed=0, idx_dir=str(tmp_path)))
  assert [len(b[1]) for b in batches] == [4, 3]
  np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), labels)


def test_idx_reader_rejects_a_non_idx_file(tmp_path):
  path = tmp_path / "bad.gz"
  with gzip.open(path, "wb") as f:
    f.write(b"not an idx file")
  with pytest.raises(errors.DataUnavailableError, match="not a uint8 IDX file"):
    idx.read_idx(str(path))


@pytest.mark.skipif(not _HAS_IDX, reason=f"Fashion-MNIST IDX files not in {idx.DEFAULT_IDX_DIR}")
def test_idx_reader_reads_full_fashion_mnist():
  x, y = idx.load(idx.DEFAULT_IDX_DIR, "train")
  assert x.shape == (60_000, 28, 28, 1) and x.dtype == np.uint8
  np.testing.assert_array_equal(np.bincount(y), [6000] * 10)
  assert abs(x.mean() / 255 - 0.2860) < 1e-3 and abs(x.std() / 255 - 0.3530) < 1e-3
  assert data.num_examples("fashion_mnist", "train") == 60_000
  assert data.num_examples("fashion_mnist", "test") == 10_000


def test_registry_entries():
  assert data.DATASETS.names() == ["cifar10", "cifar100", "embedded", "fashion_mnist", "imagenet2012"]
  expected = {"embedded": (10, (28, 28, 1), "mnist"), "fashion_mnist": (10, (28, 28, 1), "mnist"),
              "cifar10": (10, (32, 32, 3), "cifar"), "cifar100": (100, (32, 32, 3), "cifar"),
              "imagenet2012": (1000, (224, 224, 3), "imagenet")}
  for name, (classes, shape, family) in expected.items():
    info = data.info(name)
    assert (info.name, info.num_classes, info.input_shape, info.family) == (name, classes, shape, family)
    assert len(info.mean) == len(info.std) == shape[-1]
  assert data.info("cifar10").mean == (0.4914, 0.4822, 0.4465)


def test_unknown_names_are_usage_errors():
  with pytest.raises(errors.UsageError, match="choose one of: cifar10, cifar100, embedded"):
    data.info("mnist")
  with pytest.raises(errors.UsageError, match="'train', 'test'|train, test"):
    data.pipeline("embedded", "validation", batch_size=8, seed=0)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_unprepared_says_how_to_get_it(tmp_path, name):
  with pytest.raises(errors.DataUnavailableError) as e:
    data.pipeline(name, "train", batch_size=8, seed=0, data_dir=str(tmp_path))
  message = str(e.value)
  assert "\n" not in message and str(tmp_path) in message
  assert f"tfds.builder('{name}', data_dir='DIR').download_and_prepare()" in message
  assert "--data_dir=DIR" in message
  with pytest.raises(errors.DataUnavailableError):
    data.num_examples(name, "test", data_dir=str(tmp_path))


def test_imagenet_unprepared_says_where_the_tars_go(tmp_path):
  with pytest.raises(errors.DataUnavailableError, match=r"ILSVRC2012_img_train.tar .*DIR/downloads/manual"):
    data.num_examples("imagenet2012", "test", data_dir=str(tmp_path))


def test_missing_data_dir_and_idx_dir(tmp_path):
  with pytest.raises(errors.DataUnavailableError, match="does not exist"):
    data.num_examples("cifar10", "test", data_dir=str(tmp_path / "nope"))
  with pytest.raises(errors.DataUnavailableError, match="apt-get install dataset-fashion-mnist"):
    data.pipeline("fashion_mnist", "train", batch_size=8, seed=0, idx_dir=str(tmp_path))


def test_fashion_mnist_without_idx_files_or_tfds(tmp_path, monkeypatch):
  monkeypatch.setattr(idx, "DEFAULT_IDX_DIR", str(tmp_path / "absent"))
  with pytest.raises(errors.DataUnavailableError, match="nor prepared by tfds") as e:
    data.num_examples("fashion_mnist", "train", data_dir=str(tmp_path))
  assert "\n" not in str(e.value) and "--idx_dir" in str(e.value)
