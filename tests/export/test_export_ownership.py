"""Exports replace only their own earlier exports; a user's path is refused and left as it was;
a failed export leaves no partial directory."""
import os

import numpy as np
import pytest

from tf_rethink import export
from tf_rethink.export import ownership
from tf_rethink.util.errors import UsageError
from tests.helpers import tiny_convnet

SAMPLE = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)


def _leftovers(parent):
  return [n for n in os.listdir(parent) if ".partial-" in n or ".old-" in n]


def test_export_replaces_its_own_export_and_refuses_a_users_directory(tmp_path):
  model = tiny_convnet()
  path = str(tmp_path / "out")
  export.export_and_verify(model, path, SAMPLE)
  assert ownership.is_export(path)
  export.export_and_verify(model, path, SAMPLE)   # an earlier export of ours: replaced
  assert ownership.is_export(path) and not _leftovers(tmp_path)
  mine = tmp_path / "mine"
  mine.mkdir()
  (mine / "notes.txt").write_text("my notes")
  with pytest.raises(UsageError, match="not a tf_rethink export"):
    export.export_serving(model, str(mine), SAMPLE)
  assert os.listdir(mine) == ["notes.txt"] and (mine / "notes.txt").read_text() == "my notes"
  (tmp_path / "file").write_text("x")
  with pytest.raises(UsageError, match="not a tf_rethink export"):
    export.export_and_verify(model, str(tmp_path / "file"), SAMPLE)
  assert (tmp_path / "file").read_text() == "x"
  assert not os.path.exists(str(tmp_path / "file") + ".old")


def test_a_failed_export_leaves_no_partial_directory_and_the_old_export(tmp_path):
  model = tiny_convnet()
  path = str(tmp_path / "out")
  export.export_serving(model, path, SAMPLE)
  before = sorted(os.listdir(path))
  with pytest.raises(RuntimeError, match="disagrees"):
    export.export_serving(model, path, SAMPLE, atol=-1.0)   # no output can be this close
  assert sorted(os.listdir(path)) == before and ownership.is_export(path)
  assert not _leftovers(tmp_path)
