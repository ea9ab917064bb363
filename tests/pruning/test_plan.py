"""The plan protocol: normalization, one-file JSON round trip with arrays inline, schema checks,
matching another instance by graph position; the Pruner interface and registry."""
import json

import numpy as np
import pytest

import tf_rethink
import tf_keras as keras

from tests import helpers
from tf_rethink.pruning import METHODS, Pruner
from tf_rethink.pruning.plan import Plan, PrunePlan, Reconstruction
from tf_rethink.util.errors import UsageError

X8 = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)


def test_plan_normalizes_sorts_and_counts_widths():
  plan = PrunePlan("vgg16", {"conv8": [5, 1, 3], "conv1": (2, 0)}, method="l1_norm", variant="A")
  assert plan.keep == {"conv1": (0, 2), "conv8": (1, 3, 5)}
  assert list(plan.keep) == ["conv1", "conv8"]
  assert plan.widths() == {"conv1": 2, "conv8": 3}
  assert not plan.sparse and "2 layers pruned" in plan.summary()


def test_one_file_round_trip_keeps_masks_reconstructions_and_positions(tmp_path):
  rng = np.random.default_rng(1)
  masks = {"conv1": rng.random((3, 3, 3, 8)) > 0.5}
  kernel = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
  plan = Plan(model="m", keep={"b": (3, 7), "a": (0,)}, dropped_blocks=("stage1_block2",),
              method="x", variant="y", masks=masks,
              reconstruction={"conv2": Reconstruction(kernel, "abc")},
              signature="sig", positions={"a": 3, "b": 5}, notes=("n1",))
  path = tmp_path / "plan.json"
  plan.save(str(path))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]    # one artifact
  again = Plan.load(str(path))
  assert again == plan and again.keep["b"] == (3, 7) and isinstance(again.keep["b"], tuple)
  np.testing.assert_array_equal(again.masks["conv1"], masks["conv1"])
  np.testing.assert_array_equal(again.reconstruction["conv2"].kernel, kernel)
  assert again.reconstruction["conv2"].source == "abc" and again.positions == {"a": 3, "b": 5}
  data = json.loads(path.read_text())
  assert data["keep"] == {"a": [0], "b": [3, 7]} and "plan (x, y)" in data["summary"]


@pytest.mark.parametrize("keep, match", [
    ({"conv1": ()}, "keeps no channel of layer 'conv1'"),
    ({"conv1": (1, 1)}, "repeats channel indices"),
    ({"conv1": (-1, 2)}, "negative"),
    ({"conv1": ("a", "b")}, "must be integers"),
    ({"conv1": (1.5,)}, "must be integers"),
])
def test_plan_rejects_bad_indices(keep, match):
  with pytest.raises(UsageError, match=match):
    PrunePlan("", keep)


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"),
    ('{"keep": {}, "colour": 1}', "unknown keys"), ('{"model": "m"}', "no 'keep'"),
    ('{"keep": {"c": "012"}}', "list of integers"), ('{"keep": []}', "'keep' must be a JSON"),
    ('{"keep": {}, "masks": {"c": {"shape": [2], "kept": 1, "bits": "!!"}}}', "mask of 'c'"),
    ('{"kind": "mask", "masks_file": "../../etc/passwd", "layers": []}', "older tf_rethink"),
    ('{"format": "other/9", "keep": {}}', "format 'other/9'"),
])
def test_plan_from_bad_json_is_one_line_usage_error(text, match):
  with pytest.raises(UsageError, match=match) as e:
    Plan.from_json(text, source="plan.json")
  assert "\n" not in str(e.value) and "plan.json" in str(e.value)


def test_load_of_missing_or_binary_file_is_usage_error(tmp_path):
  with pytest.raises(UsageError, match="cannot read the plan"):
    Plan.load(str(tmp_path / "none.json"))
  (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00\x01")
  with pytest.raises(UsageError, match="cannot read the plan"):
    Plan.load(str(tmp_path / "bin.json"))


def _auto_named_net():
  """Layers without names: a second instance gets other auto-generated names."""
  inp = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(6, 3, padding="same")(inp)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.Conv2D(5, 3, padding="same")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inp, keras.layers.Dense(3)(x))


def test_plan_reapplies_to_an_instance_named_differently_by_graph_position():
  model = helpers.randomize(_auto_named_net(), seed=1)
  small, plan = tf_rethink.prune(model, ratio=0.5)
  twin = _auto_named_net()                       # conv2d_2, ... instead of conv2d, ...
  twin.set_weights(model.get_weights())
  assert not set(plan.keep) <= {l.name for l in twin.layers}
  again = tf_rethink.apply_plan(twin, plan.to_json())
  np.testing.assert_allclose(again(X8).numpy(), small(X8).numpy(), rtol=1e-6, atol=1e-6)
  assert [l.name for l in again.layers] == [l.name for l in twin.layers]


def test_a_different_architecture_is_refused_in_one_line():
  _, plan = tf_rethink.prune(helpers.randomize(_auto_named_net()), ratio=0.5)
  with pytest.raises(UsageError, match="architecture is not the plan's") as e:
    tf_rethink.apply_plan(helpers.vgg_like(), plan)
  assert "\n" not in str(e.value)


def test_methods_registry_and_pruner_options():
  assert "l1_norm" in METHODS.names()
  cls = METHODS.get("l1_norm")
  assert issubclass(cls, Pruner) and cls.name == "l1_norm" and "ICLR 2017" in cls.citation
  with pytest.raises(UsageError, match="does not take option"):
    cls(ratio=0.5, colour="red")
  assert cls().variant == "A"  # the paper's first predefined target is the default
  with pytest.raises(UsageError, match="not both"):
    cls(variant="A", ratio=0.5)
  for bad in (0.0, 1.0, -0.2, 1.5):
    with pytest.raises(UsageError, match=r"ratio must be in \(0, 1\)"):
      cls(ratio=bad)
  assert {METHODS.get(n).plan_kind for n in METHODS.names()} == {"channels", "blocks", "weights"}
