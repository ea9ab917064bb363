"""Builds tf_rethink/data/embedded_fashion_mnist.npz from the original Fashion-MNIST IDX files.

  python tools/build_embedded_dataset.py [--idx_dir=/usr/share/datasets/fashion-mnist] [--output=...]

Picks 1,000 train / 200 test images per class with a fixed seed (`embedded.select_indices`) and
stores them with np.savez_compressed, together with the source indices, the seed, the sha256 of the
four source files and of the array contents, so a rebuild can be checked against the shipped file.
"""
import hashlib
import os
import sys

from absl import app
from absl import flags
import numpy as np

# Runnable from a source checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rethink.data import embedded
from tf_rethink.data import idx
from tf_rethink.util import fs



def _define_flags() -> None:
  """The command's flags, defined only when it runs as a program: importing `build_arrays` and
  `write_atomically` (as the tests do) then adds nothing to the process's absl flags, where
  `--idx_dir` belongs to `tf_rethink.run.main`."""
  flags.DEFINE_string("idx_dir", idx.DEFAULT_IDX_DIR, "directory of the Fashion-MNIST IDX files")
  flags.DEFINE_string("output", embedded.PATH, "where to write the npz")


def _file_sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def build_arrays(idx_dir: str) -> dict:
  """Returns the arrays the npz holds (deterministic given the IDX files)."""
  arrays = {}
  sources = []
  for split, per_class in embedded.PER_CLASS.items():
    images, labels = idx.load(idx_dir, split)
    chosen = embedded.select_indices(labels, per_class)
    arrays[f"x_{split}"] = np.ascontiguousarray(images[chosen])
    arrays[f"y_{split}"] = labels[chosen].astype(np.uint8)
    arrays[f"{split}_indices"] = chosen
    for stem in idx.FILES[split]:
      path = idx.find_file(idx_dir, stem)
      sources.append(f"{os.path.basename(path)} {_file_sha256(path)}")
  arrays["seed"] = np.array(embedded.SEED, np.int64)
  arrays["source_sha256"] = np.array(sources)
  arrays["content_sha256"] = np.array(embedded.content_sha256(arrays))
  return arrays


def write_atomically(arrays: dict, output: str) -> None:
  """Writes the npz through `fs.atomic_path` (never a partial file)."""
  with fs.atomic_path(output) as tmp:
    np.savez_compressed(tmp, **arrays)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; use --idx_dir and --output")
  output = flags.FLAGS.output
  arrays = build_arrays(flags.FLAGS.idx_dir)
  write_atomically(arrays, output)
  print(f"wrote {output} ({os.path.getsize(output) / 2**20:.2f} MiB, "
        f"content sha256 {arrays['content_sha256']})")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
