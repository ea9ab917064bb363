"""Every shipped flagfile names a registered model and method (an unregistered one only fails
when someone runs the command)."""
import os

from tf_rethink.study import tables
from tf_rethink.models import MODELS
from tf_rethink.pruning import METHODS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_flagfile_names_a_registered_model_and_method():
  index = tables.flagfile_index(os.path.join(ROOT, "flags"))
  rows = [(path, fl) for path, fl in index if not path.startswith(os.path.join("flags", "common"))]
  assert len(rows) > 40  # the paper-table and arch-search rows were found
  bad = []
  for path, fl in rows:
    for flag, registry in (("model", MODELS), ("method", METHODS)):
      if fl.get(flag) not in registry:
        bad.append(f"{path}: --{flag}={fl.get(flag)}")
  assert not bad, "unregistered (or missing) in flagfiles:\n" + "\n".join(bad)
