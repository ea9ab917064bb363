"""L1NormPruner: hand-set kernels, generic ratio mode, the paper's variants on registered models."""
import numpy as np
import pytest

import tf_rethink  # noqa: F401

from tests import helpers
from tf_rethink.util.errors import UsageError
from tf_rethink.models import MODELS
from tf_rethink.pruning import METHODS
from tf_rethink.pruning.methods.l1_norm import L1NormPruner
from tf_rethink.pruning.plan import Plan as PrunePlan

CIFAR = dict(input_shape=(32, 32, 3), num_classes=10)


def _set_filter_norms(layer, norms):
  kernel = np.zeros(layer.get_weights()[0].shape, np.float32)
  per = kernel[..., 0].size
  for j, n in enumerate(norms):
    signs = np.where(np.arange(per) % 2 == 0, 1.0, -1.0).reshape(kernel[..., 0].shape)
    kernel[..., j] = signs * n / per      # sum |W| = n, mixed signs (sum W would be ~0)
  layer.set_weights([kernel] + layer.get_weights()[1:])


def test_hand_set_kernels_choose_the_largest_l1_filters():
  model = helpers.vgg_like()
  _set_filter_norms(model.get_layer("conv1"), [5, 1, 7, 3, 9, 2, 8, 4])
  _set_filter_norms(model.get_layer("conv2"), [1, 6, 6, 2, 0.5, 3])   # tie 6/6, both kept
  _set_filter_norms(model.get_layer("conv3"), [10, 1, 9, 2, 8, 3, 7, 4, 6, 5])
  plan = L1NormPruner(ratio=0.5).select(model, model_name="")
  convs = {k: v for k, v in plan.keep.items() if k.startswith("conv")}
  assert convs == {"conv1": (0, 2, 4, 6), "conv2": (1, 2, 5), "conv3": (0, 2, 4, 6, 8)}
  assert len(plan.keep["fc1"]) == 6     # the hidden Dense is a producer too: int(12 * 0.5)
  assert (plan.method, plan.variant, plan.model) == ("l1_norm", "ratio=0.5", "")
  plan = L1NormPruner(ratio=0.75).select(model)   # int(6 * 0.25) = 1 of tie 6/6: larger index
  assert plan.keep["conv2"] == (2,)


def test_ratio_mode_skips_convs_coupled_to_residual_adds():
  model = helpers.randomize(helpers.residual_net())
  plan = METHODS.get("l1_norm")(ratio=0.5).select(model)
  assert plan.widths() == {"stage1_block1_conv1": 3, "stage1_block2_conv1": 3}
  helpers.assert_shrink_matches_mask(model, plan, np.ones((2, 8, 8, 3), np.float32))


def test_unsupported_model_or_variant_lists_supported_ones():
  with pytest.raises(UsageError, match=r"no variant 'C' for model 'vgg_like'.*resnet56: A, B"):
    L1NormPruner(variant="C").select(helpers.vgg_like())
  with pytest.raises(UsageError, match="vgg16: A"):
    L1NormPruner(variant="A").select(helpers.vgg_like(), model_name="resnet20")


def test_variant_rejects_a_model_of_another_depth():
  model = MODELS.get("resnet20").build(width_multiplier=0.25, **CIFAR)
  with pytest.raises(UsageError, match=r"blocks \[3, 3, 3\] per stage, not the \[9, 9, 9\]"):
    L1NormPruner(variant="A").select(model, model_name="resnet56")


def _block_widths(model, plan, blocks):
  widths = plan.widths()
  return [widths.get(f"stage{s}_block{b}_conv1",
                     model.get_layer(f"stage{s}_block{b}_conv1").filters)
          for s, n in enumerate(blocks, start=1) for b in range(1, n + 1)]


SPEC_WIDTHS = {   # paper spec 2.1, "resulting per-block widths"
    ("resnet56", "A"): [14] * 7 + [16, 14] + [32] + [28] * 8 + [64] + [57] * 7 + [64],
    ("resnet56", "B"): [6] * 7 + [16, 16] + [32] + [22] * 6 + [32, 22] + [64] + [57] * 7 + [64],
    ("resnet110", "A"): [8] * 17 + [16] + [32] * 18 + [64] * 18,
    ("resnet110", "B"): [8] * 17 + [16] + [32] + [19] * 17 + [64] + [44] * 17,
    ("resnet34", "A"): [64, 44, 44, 128, 89, 89, 128, 256, 179, 179, 179, 179, 256, 512, 512, 512],
    ("resnet34", "B"): [64, 32, 32, 128, 51, 51, 128, 256, 153, 153, 153, 153, 256, 512, 512, 512],
}
BLOCKS = {"resnet56": (9, 9, 9), "resnet110": (18, 18, 18), "resnet34": (3, 4, 6, 3)}


@pytest.mark.parametrize("name, variant", sorted(SPEC_WIDTHS))
def test_resnet_variant_widths_equal_spec_on_full_width_models(name, variant):
  shape = dict(input_shape=(64, 64, 3), num_classes=10) if name == "resnet34" else CIFAR
  model = MODELS.get(name).build(**shape)
  plan = L1NormPruner(variant=variant).select(model, model_name=name)
  assert _block_widths(model, plan, BLOCKS[name]) == SPEC_WIDTHS[(name, variant)]
  assert (plan.model, plan.variant) == (name, variant)


def test_vgg16_a_widths_equal_spec_cfg():
  model = MODELS.get("vgg16").build(**CIFAR)
  plan = L1NormPruner(variant="a").select(model, model_name="vgg16")
  widths = plan.widths()
  got = [widths.get(f"conv{i}", model.get_layer(f"conv{i}").filters) for i in range(1, 14)]
  assert got == [32, 64, 128, 128, 256, 256, 256, 256, 256, 256, 256, 256, 256]
  assert sorted(widths, key=lambda n: int(n[4:])) == ["conv1"] + [f"conv{i}" for i in range(8, 14)]


def test_vgg16_a_on_width_quarter_model_shrink_matches_mask():
  model = helpers.randomize(MODELS.get("vgg16").build(input_shape=(16, 16, 3), num_classes=10,
                                                      width_multiplier=0.25))
  plan = L1NormPruner(variant="A").select(model, model_name="vgg16")
  assert plan.widths()["conv1"] == 8 and plan.widths()["conv13"] == 64   # half of 16 and 128
  x = np.random.default_rng(5).normal(size=(2, 16, 16, 3)).astype(np.float32)
  small = helpers.assert_shrink_matches_mask(model, plan, x)
  assert small.get_layer("fc1").get_weights()[0].shape[0] == 64
  again = PrunePlan.from_json(plan.to_json()).apply(
      MODELS.get("vgg16").build(input_shape=(16, 16, 3), num_classes=10, width_multiplier=0.25))
  assert again.count_params() == small.count_params()


@pytest.mark.parametrize("variant", ["A", "B"])
def test_resnet56_half_width_variants_shrink_matches_mask(variant):
  model = helpers.randomize(MODELS.get("resnet56").build(width_multiplier=0.5, **CIFAR))
  plan = L1NormPruner(variant=variant).select(model, model_name="resnet56")
  stage1 = 3 if variant == "B" else 7      # int(8 * 0.4), int(8 * 0.9)
  assert plan.widths()["stage1_block1_conv1"] == stage1
  assert plan.widths()["stage3_block2_conv1"] == 28      # int(32 * 0.9)
  x = np.random.default_rng(6).normal(size=(2, 32, 32, 3)).astype(np.float32)
  helpers.assert_shrink_matches_mask(model, plan, x)


def test_ratio_mode_on_registered_resnet_prunes_only_block_first_convs():
  model = MODELS.get("resnet20").build(width_multiplier=0.5, **CIFAR)
  plan = L1NormPruner(ratio=0.5).select(model, model_name="resnet20")
  assert sorted(plan.keep) == sorted([f"stage{s}_block{b}_conv1" for s in (1, 2, 3)
                                      for b in (1, 2, 3)])
  assert plan.widths()["stage2_block1_conv1"] == 8


def test_variant_falls_back_to_the_model_name():
  model = MODELS.get("resnet56").build(width_multiplier=0.25, **CIFAR)
  plan = L1NormPruner(variant="B").select(model)
  assert plan.model == "resnet56" and plan.widths()["stage1_block1_conv1"] == 1  # int(4*.4)=1


FLOPS_SPEC = [  # paper spec 2.1 table (reference counting convention), physical pruned models
    ("vgg16", "A", 413_364_234, 5_397_034),
    ("resnet56", "A", 226_390_090, 773_336),
    ("resnet56", "B", 183_137_866, 735_712),
    pytest.param("resnet110", "A", 428_291_338, 1_688_522, marks=pytest.mark.slow),
    pytest.param("resnet110", "B", 312_745_738, 1_168_424, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, variant, flops, params", FLOPS_SPEC)
def test_pruned_full_width_models_have_the_spec_flops_and_params(name, variant, flops, params):
  from tf_rethink import flops as flops_lib  # pylint: disable=import-outside-toplevel
  model = MODELS.get(name).build(**CIFAR)
  plan = L1NormPruner(variant=variant).select(model, model_name=name)
  counts = flops_lib.count(plan.apply(model, copy_weights=False))
  assert round(counts.flops / 1e4) == round(flops / 1e4)   # spec prints 226.39 M etc.
  assert round(counts.params / 1e3) == round(params / 1e3)  # spec prints 0.773 M etc.


@pytest.mark.parametrize("name, multiplier", [
    ("vgg16_imagenet", 1 / 16), ("resnet18", 0.125),
    pytest.param("resnet50", 0.125, marks=pytest.mark.slow)])
def test_ratio_mode_on_imagenet_models_shrink_matches_mask(name, multiplier):
  model = helpers.randomize(MODELS.get(name).build(input_shape=(64, 64, 3), num_classes=7,
                                                   width_multiplier=multiplier))
  plan = L1NormPruner(ratio=0.5).select(model, model_name=name)
  coupled = [n for n in plan.keep if n.endswith(("_downsample_conv", "_conv3"))
             or (name == "resnet18" and n.endswith("_conv2"))]
  assert plan.keep and not coupled   # convs feeding a residual add are never pruned
  x = np.random.default_rng(7).normal(size=(2, 64, 64, 3)).astype(np.float32)
  helpers.assert_shrink_matches_mask(model, plan, x)
