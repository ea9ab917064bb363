"""The shipped Fashion-MNIST subset: shapes, balance, size, and a reproducible rebuild."""
import importlib.util
import os
import sys

import numpy as np
import pytest

from tf_rethink.data import embedded
from tf_rethink.data import idx

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_HAS_IDX = all(idx.has_split(idx.DEFAULT_IDX_DIR, s) for s in ("train", "test"))


def _build_tool():
  name = "build_embedded_dataset"
  if name not in sys.modules:
    spec = importlib.util.spec_from_file_location(name, os.path.join(_REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
  return sys.modules[name]


def test_npz_is_small_and_has_promised_arrays():
  assert os.path.getsize(embedded.PATH) < 6_000_000
  for split, n in (("train", 10_000), ("test", 2_000)):
    images, labels = embedded.load(split)
    assert images.shape == (n, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (n,) and np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [n // 10] * 10)
    assert 0 < images.mean() < 255 and images.max() > 200  # real images, not zeros


def test_npz_metadata_is_consistent():
  meta = embedded.metadata()
  assert int(meta["seed"]) == embedded.SEED
  assert str(meta["content_sha256"]) == embedded.content_sha256(meta)
  for split, size in (("train", 60_000), ("test", 10_000)):
    ind = meta[f"{split}_indices"]
    assert np.all(np.diff(ind) > 0) and ind[0] >= 0 and ind[-1] < size
  assert len(meta["source_sha256"]) == 4


def test_select_indices_is_balanced_and_seeded():
  labels = np.repeat(np.arange(10), 30)[np.random.default_rng(3).permutation(300)]
  a = embedded.select_indices(labels, 5, seed=1)
  np.testing.assert_array_equal(a, embedded.select_indices(labels, 5, seed=1))
  assert not np.array_equal(a, embedded.select_indices(labels, 5, seed=2))
  np.testing.assert_array_equal(np.bincount(labels[a]), [5] * 10)
  with pytest.raises(ValueError, match="fewer than"):
    embedded.select_indices(labels, 31)


def test_write_atomically_leaves_only_the_output(tmp_path):
  tool = _build_tool()
  out = tmp_path / "sub" / "x.npz"
  tool.write_atomically({"a": np.arange(5)}, str(out))
  assert os.listdir(out.parent) == ["x.npz"]
  assert os.stat(out).st_mode & 0o044  # readable by others, unlike mkstemp's 0600
  np.testing.assert_array_equal(np.load(out)["a"], np.arange(5))


@pytest.mark.skipif(not _HAS_IDX, reason=f"Fashion-MNIST IDX files not in {idx.DEFAULT_IDX_DIR}")
def test_rebuild_from_idx_matches_shipped_file():
  rebuilt = _build_tool().build_arrays(idx.DEFAULT_IDX_DIR)
  shipped = embedded.metadata()
  assert sorted(rebuilt) == sorted(shipped)
  for key, value in rebuilt.items():
    np.testing.assert_array_equal(value, shipped[key], err_msg=key)
