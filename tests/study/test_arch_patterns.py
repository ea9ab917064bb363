"""Architecture-search patterns: uniform matching, stage patterns, random and guided masks."""
import numpy as np
import pytest

import tf_rethink  # noqa: F401
from tf_rethink.study import arch_patterns as ap
from tf_rethink.util.errors import UsageError
from tf_rethink.models import MODELS
from tf_rethink.pruning.plan import Plan

SHAPE = (16, 16, 1)   # VGG stages at 16, 8, 4, 2, 1


def _build(name="vgg11", m=0.25):
  return lambda: MODELS.get(name).build(input_shape=SHAPE, num_classes=10, width_multiplier=m)


def test_stages_group_layers_by_feature_map_size():
  model = _build("vgg16")()
  st = ap.stages(model)
  assert [st[f"conv{i}"] for i in range(1, 14)] == [0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]


@pytest.mark.parametrize("stage_ratios", [(1.0, 0.8, 0.5, 0.3, 0.2), (0.4, 0.4, 0.9, 0.9, 0.1)])
def test_uniform_matches_target_params_within_one_channel_per_layer(stage_ratios):
  counter = ap.ParamCounter(_build())
  target_plan = ap.guided_plan(counter.full, stage_ratios)
  target = counter(target_plan)
  plan, ratio = ap.uniform_plan_matching(counter, target)
  names = ap.prunable_convs(counter.full)
  full = ap.full_widths(counter.full, names)
  widths = {n: len(plan.keep.get(n, range(full[n]))) for n in names}
  # Same keep ratio in every layer (the rounding rule), and the count is bracketed by one channel
  # less / more in every layer.
  assert widths == ap.uniform_widths(full, ratio)
  less = ap.width_plan({n: max(1, w - 1) for n, w in widths.items()}, full)
  more = ap.width_plan({n: min(full[n], w + 1) for n, w in widths.items()}, full)
  assert counter(less) <= target <= counter(more)
  assert counter(plan) != counter(less) and counter(plan) != counter(more)


def test_stage_keep_ratios_of_a_hand_built_plan():
  model = _build("vgg16")()   # widths at 0.25: 16,16 | 32,32 | 64x3 | 128x3 | 128x3
  plan = Plan("vgg16", {"conv1": range(8), "conv2": range(16), "conv3": range(8),
                             "conv4": range(24), "conv8": range(32), "conv12": range(64)})
  got = ap.stage_keep_ratios(model, plan)
  np.testing.assert_allclose(got, [0.75, 0.5, 1.0, 0.75, (1 + 0.5 + 1) / 3])
  guided = ap.guided_plan(model, got)
  assert guided.widths()["conv1"] == 12 and guided.widths()["conv3"] == 16
  assert "conv5" not in guided.keep and guided.widths()["conv9"] == 96


def test_transferred_guided_plan_vgg16_to_vgg19_and_stage_mismatch():
  vgg19 = _build("vgg19")()
  plan = ap.guided_plan(vgg19, [1.0, 0.5, 0.5, 0.25, 0.25])
  w = plan.widths()
  assert w["conv3"] == 16 and w["conv9"] == 32 and w["conv16"] == 32 and "conv1" not in w
  with pytest.raises(UsageError, match="stages"):
    ap.guided_plan(vgg19, [0.5, 0.5])


def _hand_masks(model):
  """conv1: only the centre of every 3x3 kernel; conv2: the first row; others all kept."""
  masks = {}
  for name in ap.all_convs(model):
    shape = tuple(model.get_layer(name).kernel.shape)
    m = np.ones(shape, dtype=bool)
    if name == "conv1":
      m[:] = False
      m[1, 1] = True
    if name == "conv2":
      m[1:] = False
    masks[name] = m
  return Plan(model="vgg11", masks=masks)


def test_unstructured_patterns_of_hand_built_masks():
  model = _build()()      # vgg11: conv1 stage 0, conv2 stage 1, conv3-4 stage 2, ...
  plan = _hand_masks(model)
  sp = ap.layer_sparsity(plan)
  assert sp["conv1"] == pytest.approx(8 / 9) and sp["conv2"] == pytest.approx(6 / 9)
  assert sp["conv3"] == 0.0
  assert ap.stage_sparsity(model, plan)[:3] == pytest.approx([8 / 9, 6 / 9, 0.0])
  pos = ap.kernel_position_keep(model, plan)
  np.testing.assert_allclose(pos[0], [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
  np.testing.assert_allclose(pos[1], [[1, 1, 1], [0, 0, 0], [0, 0, 0]])
  np.testing.assert_allclose(pos[2], np.ones((3, 3)))


@pytest.mark.parametrize("sparsity", [0.9, {"conv1": 0.5, "conv2": 0.75, "conv5": 0.3}])
def test_random_masks_have_the_requested_sparsity_per_layer(sparsity):
  model = _build()()
  plan = ap.random_masks(model, sparsity, seed=3)
  wanted = sparsity if isinstance(sparsity, dict) else {n: sparsity for n in ap.all_convs(model)}
  assert set(plan.masks) == set(wanted)
  for name, s in wanted.items():
    m = plan.masks[name]
    assert m.shape == tuple(model.get_layer(name).kernel.shape)
    assert m.size - m.sum() == int(round(m.size * s))
  again = ap.random_masks(model, sparsity, seed=3)
  assert all(np.array_equal(plan.masks[n], again.masks[n]) for n in plan.masks)


def test_guided_masks_follow_position_probabilities():
  model = _build("vgg16", 0.5)()
  probs = [np.full((3, 3), p) for p in (0.9, 0.7, 0.5, 0.3, 0.1)]
  probs[4][1, 1] = 1.0
  plan = ap.guided_masks(model, probs, seed=0)
  pos = ap.kernel_position_keep(model, plan)
  for want, got in zip(probs, pos):
    np.testing.assert_allclose(got, want, atol=0.05)
  assert (pos[4][1, 1]) == 1.0
