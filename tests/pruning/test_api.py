"""The public API: tf_rethink.prune / apply_plan / channel_groups."""
import subprocess
import sys

import numpy as np
import pytest

import tf_rethink
import tf_rethink.pruning

from tests import helpers
from tf_rethink.util.errors import UsageError
from tf_rethink.pruning import PrunePlan

X8 = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)


def test_import_tf_rethink_does_not_import_tensorflow():
  code = ("import sys, os, tf_rethink; assert 'tensorflow' not in sys.modules; "
          "assert 'TF_USE_LEGACY_KERAS' not in os.environ; assert 'prune' in dir(tf_rethink); "
          "print('ok')")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PATH": "/usr/bin", "PYTHONPATH": ":".join(sys.path)})
  assert out.stdout.strip() == "ok"
  assert tf_rethink.prune.__module__ == "tf_rethink.api"   # resolved lazily on first access
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    tf_rethink.nope  # pylint: disable=pointless-statement


def test_plan_json_reapplies_to_a_fresh_model_of_the_same_architecture(tmp_path):
  model = helpers.randomize(helpers.residual_net(), seed=1)
  small, plan = tf_rethink.prune(model, ratio=0.5)
  assert plan.widths() == {"conv1": 4, "stage1_block1_conv2": 4, "stage1_block2_conv2": 4,
                           "stage1_block1_conv1": 3, "stage1_block2_conv1": 3}
  assert (plan.method, plan.variant) == ("l1_norm", "ratio=0.5")
  path = tmp_path / "plan.json"
  path.write_text(plan.to_json())
  fresh = helpers.randomize(helpers.residual_net(), seed=2)
  for given in (plan, plan.to_json(), str(path)):
    again = tf_rethink.apply_plan(fresh, given)
    assert [w.shape for w in again.get_weights()] == [w.shape for w in small.get_weights()]
  helpers.assert_shrink_matches_mask(fresh, PrunePlan.from_json(path.read_text()), X8)
  scratch = tf_rethink.apply_plan(fresh, plan, copy_weights=False)
  assert scratch.count_params() == small.count_params()


@pytest.mark.parametrize("method, kw", [("magnitude", {"ratio": 0.5}),
                                        ("sparse_structure_selection", {"variant": None,
                                                                        "ratio": None})])
def test_prune_without_copying_weights_works_for_every_plan_kind(method, kw):
  """The first round's bug: copy_weights=False called channel surgery for every method."""
  model = helpers.randomize(helpers.residual_net(), seed=3)
  if method == "sparse_structure_selection":   # a trained scale at 0 removes stage1_block2
    model = tf_rethink.pruning.METHODS.get(method)().prepare(model)
    model.get_layer("stage1_block2_scale").scale.assign(0.0)
  small, plan = tf_rethink.prune(model, method=method, copy_weights=False, **kw)
  assert small is not model and small.count_params() > 0
  if method == "magnitude":
    assert plan.sparse and plan.global_sparsity() > 0.45
  else:
    assert plan.dropped_blocks == ("stage1_block2",)
    assert "stage1_block2_add" not in [l.name for l in small.layers]


def test_coupled_false_keeps_the_papers_rule_and_unknown_method_is_a_usage_error():
  model = helpers.randomize(helpers.residual_net())
  _, plan = tf_rethink.prune(model, ratio=0.5, coupled=False)
  assert sorted(plan.keep) == ["stage1_block1_conv1", "stage1_block2_conv1"]
  with pytest.raises(UsageError, match="unknown pruning method 'nope'"):
    tf_rethink.prune(model, method="nope")
