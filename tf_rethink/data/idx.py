"""Reader for the original IDX files of (Fashion-)MNIST (LeCun's format, gzip-compressed or not).

Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, arXiv 1708.07747; Zalando Research, MIT licence) ships as
four IDX files; Debian's `dataset-fashion-mnist` package installs them in `DEFAULT_IDX_DIR`.
"""
import gzip
import hashlib
import os
import zlib
from typing import Tuple

import numpy as np

from tf_rethink.util import errors

DEFAULT_IDX_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
# sha256 of the DECOMPRESSED official files (Xiao et al.'s release, as Debian ships it): a file
# of the official size whose bytes differ is damaged (a re-gzipped copy still matches).
OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte": (47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": (60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": (7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": (10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
_MAGIC = {name: (_IMAGES_MAGIC if "images" in name else _LABELS_MAGIC) for name in OFFICIAL_SHA256}
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


def _read_bytes(path: str) -> bytes:
  """The file's bytes, gunzipped for `.gz`; a damaged gzip stream or an unreadable file is a
  one-line DataUnavailableError."""
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      return f.read()
  except (EOFError, gzip.BadGzipFile, zlib.error) as e:
    raise errors.DataUnavailableError(f"{path} is not a complete gzip file ({type(e).__name__}: "
                                      f"{e}); {HOW_TO_GET}") from None
  except OSError as e:
    raise errors.DataUnavailableError(f"cannot read {path} ({e.strerror or e}); "
                                      f"{HOW_TO_GET}") from None


def read_idx(path: str) -> np.ndarray:
  """Parses one IDX file (big-endian header: 2 zero bytes, dtype code 0x08 = uint8, rank, dims).

  Checked before trusted: the gzip stream, the header (uint8, rank 1-3, and for the official
  names the IDX magic of images 2051 / labels 2049), the size against the header's dims, and a
  file of an official name and size against the official sha256 (`OFFICIAL_SHA256`)."""
  data = _read_bytes(path)
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or not 1 <= data[3] <= 3:
    raise errors.DataUnavailableError(f"{path} is not a uint8 IDX file; {HOW_TO_GET}")
  stem = os.path.basename(path)[:-3] if path.endswith(".gz") else os.path.basename(path)
  magic = int.from_bytes(data[:4], "big")
  if stem in _MAGIC and magic != _MAGIC[stem]:
    raise errors.DataUnavailableError(f"{path} has IDX magic {magic}, expected {_MAGIC[stem]} "
                                      f"for {stem}; {HOW_TO_GET}")
  rank = data[3]
  if len(data) < 4 + 4 * rank:
    raise errors.DataUnavailableError(f"{path} is truncated inside its header; {HOW_TO_GET}")
  dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=rank, offset=4))
  if stem in OFFICIAL_SHA256 and len(data) == OFFICIAL_SHA256[stem][0]:
    digest = hashlib.sha256(data).hexdigest()
    if digest != OFFICIAL_SHA256[stem][1]:
      raise errors.DataUnavailableError(f"{path} has the official size but not the official "
                                        f"content (sha256 {digest[:16]}...); it is damaged; "
                                        f"{HOW_TO_GET}")
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
