"""PrunePlan: normalization, widths, JSON round trip, validation; Pruner option checks."""
import pytest

from tf_rethink.util.errors import UsageError
from tf_rethink.pruning import METHODS, PrunePlan, Pruner


def test_plan_normalizes_sorts_and_counts_widths():
  plan = PrunePlan("vgg16", {"conv8": [5, 1, 3], "conv1": (2, 0)}, method="l1_norm", variant="A")
  assert plan.keep == {"conv1": (0, 2), "conv8": (1, 3, 5)}
  assert list(plan.keep) == ["conv1", "conv8"]
  assert plan.widths() == {"conv1": 2, "conv8": 3}


def test_plan_json_round_trip_restores_tuples_and_sorts_keys():
  plan = PrunePlan("resnet56", {"b": (3, 7), "a": (0,)}, dropped_blocks=("stage1_block2",),
                   method="l1_norm", variant="B")
  text = plan.to_json()
  assert text.index('"dropped_blocks"') < text.index('"keep"') < text.index('"model"')
  assert text.index('"a"') < text.index('"b"')
  again = PrunePlan.from_json(text)
  assert again == plan
  assert again.keep["b"] == (3, 7) and isinstance(again.keep["b"], tuple)
  assert again.dropped_blocks == ("stage1_block2",)


@pytest.mark.parametrize("keep, match", [
    ({"conv1": ()}, "keeps no channel of layer 'conv1'"),
    ({"conv1": (1, 1)}, "repeats channel indices"),
    ({"conv1": (-1, 2)}, "negative"),
])
def test_plan_rejects_bad_indices(keep, match):
  with pytest.raises(UsageError, match=match):
    PrunePlan("", keep)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"keep": {}, "colour": 1}'])
def test_plan_from_bad_json(text):
  with pytest.raises(UsageError):
    PrunePlan.from_json(text)


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
