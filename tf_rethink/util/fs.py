"""Files: the ONE atomic-write helper of the package, and small readers.

An interrupted run (a crash, SIGKILL, a full disk) leaves either the old file or the new one,
never half a file: everything is written to a temporary name in the target's own directory (so
the final `os.replace` is a rename within one file system) and renamed only once complete. A
failed write removes its temporary file.
"""
import contextlib
import json
import os
import shutil
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """Yields a temporary path beside `path`; on a clean exit it is renamed to `path`.

  For writers that take a file name (h5 weights, npz archives). The temporary name ends with
  `path`'s own name, so writers that choose a format by the ending (Keras: `.weights.h5`; NumPy:
  `.npz`) write the same format.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=f"-{os.path.basename(path)}")
  os.close(fd)
  try:
    yield tmp
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; the result is an ordinary file
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` atomically."""
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically."""
  write_bytes(path, text.encode("utf-8"))


def write_json(path: str, obj) -> None:
  """Writes `obj` as indented JSON with sorted keys, atomically."""
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str):
  with open(path) as f:
    return json.load(f)


def replace_dir(tmp_dir: str, final_dir: str) -> None:
  """Moves a fully written `tmp_dir` to `final_dir`, replacing an older copy only at the end.

  The older copy is first renamed to a fresh hidden name of our own (never `<final>.old`, which
  may be someone's), then deleted; callers decide whether `final_dir` may be replaced at all."""
  old = None
  if os.path.lexists(final_dir):
    old = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(final_dir)),
                           prefix=f".{os.path.basename(final_dir)}.old-")
    os.replace(final_dir, old)   # a directory replaces the empty one just made
  os.replace(tmp_dir, final_dir)
  if old:
    shutil.rmtree(old, ignore_errors=True)


def partial_dir(final_dir: str) -> str:
  """A fresh, empty hidden directory beside `final_dir` to write its new version into
  (`.<name>.partial-XXXX`); leftovers of an interrupted writer are removed first (they are ours
  by name, and one writer per workdir holds the lock)."""
  parent = os.path.dirname(os.path.abspath(final_dir))
  os.makedirs(parent, exist_ok=True)
  prefix = f".{os.path.basename(final_dir)}.partial-"
  for name in os.listdir(parent):
    if name.startswith(prefix) or name.startswith(f".{os.path.basename(final_dir)}.old-"):
      shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
  return tempfile.mkdtemp(dir=parent, prefix=prefix)


def dir_size(path: str) -> int:
  """Total bytes of the files under `path`."""
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)
