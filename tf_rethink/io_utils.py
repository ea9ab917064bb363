"""Atomic file output: a run interrupted at any moment leaves either the old file or the new one."""
import json
import os
import shutil
import tempfile


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file in the same directory and os.replace."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path: str, obj) -> None:
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str):
  with open(path) as f:
    return json.load(f)


def replace_dir(tmp_dir: str, final_dir: str) -> None:
  """Moves a fully written `tmp_dir` to `final_dir`, replacing an older copy only at the end."""
  old = None
  if os.path.exists(final_dir):
    old = final_dir + ".old"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(final_dir, old)
  os.replace(tmp_dir, final_dir)
  if old:
    shutil.rmtree(old, ignore_errors=True)


def dir_size(path: str) -> int:
  """Total bytes of the files under `path`."""
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)
