"""Reader for the original IDX files of (Fashion-)MNIST (LeCun's format, gzip-compressed or not).

Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, arXiv 1708.07747; Zalando Research, MIT licence) ships as
four IDX files; Debian's `dataset-fashion-mnist` package installs them in `DEFAULT_IDX_DIR`.
"""
import gzip
import os
from typing import Tuple

import numpy as np

from tf_rethink.util import errors

DEFAULT_IDX_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
HOW_TO_GET = ("install the IDX files with `apt-get install dataset-fashion-mnist` (goes to "
              f"{DEFAULT_IDX_DIR}) or pass --idx_dir=DIR holding train-images-idx3-ubyte.gz etc.")


def find_file(idx_dir: str, stem: str) -> str | None:
  """Returns the path of `stem` or `stem.gz` in `idx_dir`, None when neither exists."""
  for name in (stem + ".gz", stem):
    path = os.path.join(idx_dir, name)
    if os.path.isfile(path):
      return path
  return None


def has_split(idx_dir: str | None, split: str) -> bool:
  """True when both IDX files of `split` are in `idx_dir`."""
  return bool(idx_dir) and all(find_file(idx_dir, stem) for stem in FILES[split])


def read_idx(path: str) -> np.ndarray:
  """Parses one IDX file (big-endian header: 2 zero bytes, dtype code 0x08 = uint8, rank, dims)."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    data = f.read()
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
    raise errors.DataUnavailableError(f"{path} is not a uint8 IDX file; {HOW_TO_GET}")
  rank = data[3]
  dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=rank, offset=4))
  array = np.frombuffer(data, np.uint8, offset=4 + 4 * rank)
  if array.size != int(np.prod(dims)):
    raise errors.DataUnavailableError(f"{path} is truncated ({array.size} of {int(np.prod(dims))} "
                                      f"bytes); {HOW_TO_GET}")
  return array.reshape(dims)


def load(idx_dir: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
  """Returns (images uint8 [N, 28, 28, 1], labels int32 [N]) of `split` ("train" or "test")."""
  if split not in FILES:
    raise errors.UsageError(f"unknown split {split!r}; choose 'train' or 'test'")
  paths = [find_file(idx_dir, stem) for stem in FILES[split]]
  if not all(paths):
    raise errors.DataUnavailableError(f"Fashion-MNIST {split} IDX files not found in {idx_dir}; "
                                      f"{HOW_TO_GET}")
  images, labels = (read_idx(p) for p in paths)
  if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
    raise errors.DataUnavailableError(f"IDX files in {idx_dir} have shapes {images.shape} and "
                                      f"{labels.shape}; {HOW_TO_GET}")
  return images[..., None], labels.astype(np.int32)
