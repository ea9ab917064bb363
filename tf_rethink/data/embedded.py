"""The shipped default dataset: a class-balanced subset of Fashion-MNIST, so runs work offline.

10,000 train images (1,000 per class) from the 60,000 training images and 2,000 test images (200
per class) from the 10,000 test images, uint8 28x28x1, picked by `select_indices` with a fixed seed
and rebuilt by `tools/build_embedded_dataset.py`. Fashion-MNIST: Xiao, Rasul, Vollgraf 2017
(arXiv 1708.07747), Zalando Research, MIT licence.
"""
import hashlib
import os
from typing import Dict, Tuple

import numpy as np

from tf_rethink.util import errors

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "embedded_fashion_mnist.npz")
SEED = 20190506  # fixed: the subset must be the same on every build
PER_CLASS = {"train": 1000, "test": 200}
NUM_CLASSES = 10


def select_indices(labels: np.ndarray, per_class: int, seed: int = SEED) -> np.ndarray:
  """Returns sorted indices with exactly `per_class` examples of each class, chosen uniformly.

  One numpy PCG64 generator seeded with `seed` draws the classes in order 0..9, so the subset
  depends only on the labels and the seed.
  """
  rng = np.random.default_rng(seed)
  chosen = []
  for c in range(NUM_CLASSES):
    candidates = np.flatnonzero(labels == c)
    if len(candidates) < per_class:
      raise ValueError(f"class {c} has {len(candidates)} examples, fewer than {per_class}")
    chosen.append(rng.choice(candidates, size=per_class, replace=False))
  return np.sort(np.concatenate(chosen)).astype(np.int32)


def content_sha256(arrays: Dict[str, np.ndarray]) -> str:
  """sha256 over the raw bytes of the image/label arrays (independent of zip timestamps)."""
  h = hashlib.sha256()
  for key in ("x_train", "y_train", "x_test", "y_test"):
    a = np.ascontiguousarray(arrays[key])
    h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def _load(path: str, keys=None) -> Dict[str, np.ndarray]:
  """Reads `keys` (default: all) from the npz. Not cached: the pipeline converts the arrays into
  one TensorFlow tensor and a cached numpy copy would keep a second copy of the dataset alive."""
  if not os.path.isfile(path):
    raise errors.DataUnavailableError(f"embedded dataset {path} is missing; rebuild it with "
                                      "`python tools/build_embedded_dataset.py` or reinstall tf_rethink")
  with np.load(path, allow_pickle=False) as f:
    return {k: f[k] for k in (keys or f.files)}


def load(split: str, path: str = PATH) -> Tuple[np.ndarray, np.ndarray]:
  """Returns (images uint8 [N, 28, 28, 1], labels int32 [N]) of `split` ("train" or "test")."""
  if split not in PER_CLASS:
    raise errors.UsageError(f"unknown split {split!r}; choose 'train' or 'test'")
  arrays = _load(path, (f"x_{split}", f"y_{split}"))
  return arrays[f"x_{split}"], arrays[f"y_{split}"]


def metadata(path: str = PATH) -> Dict[str, np.ndarray]:
  """All arrays in the npz (images, labels, source indices, seed, sha256s)."""
  return _load(path)
