"""Which directories an export may replace: only its own earlier exports.

Rule: every directory `export_and_verify` / `export_serving` writes holds the marker file
`MARKER`; an existing path without it (a user's file or directory) is refused in one line and
never deleted or moved.
"""
import os

from tf_rethink.util.errors import UsageError

MARKER = ".tf_rethink_export"


def check_replaceable(path: str) -> None:
  """UsageError unless `path` is absent or an earlier export (a directory holding `MARKER`)."""
  if os.path.lexists(path) and not (os.path.isdir(path) and
                                    os.path.isfile(os.path.join(path, MARKER))):
    raise UsageError(f"refusing to export to {path}: it exists and is not a tf_rethink export "
                     f"(no {MARKER} in it); move it away or pass another path")


def is_export(path: str) -> bool:
  """Whether `path` is a finished export."""
  return os.path.isfile(os.path.join(path, MARKER))


def mark(directory: str) -> None:
  """Marks a fully written export directory as ours."""
  with open(os.path.join(directory, MARKER), "w") as f:
    f.write("written by tf_rethink.export\n")
