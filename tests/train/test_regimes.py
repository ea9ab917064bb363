"""Scratch-B budgets and lr milestones, computed from our own models, plan and FLOPs counter."""
import pytest

from tf_rethink import flops
from tf_rethink.models import MODELS
from tf_rethink.pruning import METHODS
from tf_rethink.train import regimes


@pytest.mark.parametrize("model,variant,epochs,milestones", [
    ("vgg16", "A", 243, (121, 182)),
    ("resnet56", "A", 178, (89, 133)),
    ("resnet56", "B", 220, (110, 165)),
    ("resnet110", "A", 190, (95, 142)),
    ("resnet110", "B", 260, (130, 195)),
])
def test_scratch_b_epochs_match_reference(model, variant, epochs, milestones):
  full = MODELS.get(model).build(input_shape=(32, 32, 3), num_classes=10)
  plan = METHODS.get("l1_norm")(variant=variant).select(full, None, model_name=model)
  pruned = plan.apply(full, copy_weights=False)
  got = regimes.scratch_b_epochs(160, flops.count(full).flops, flops.count(pruned).flops)
  assert got == epochs
  assert regimes.lr_milestones(got, "cifar") == milestones


def test_scratch_b_cap_imagenet_rule():
  # ThiNet-50: ratio 2.24 >= 2 -> 180 epochs; ThiNet-70: ratio 1.569 -> int(90 * 1.569) = 141.
  assert regimes.scratch_b_epochs(90, 8214, 3674, cap=2.0) == 180
  assert regimes.scratch_b_epochs(90, 8_214_000, 5_235_000, cap=2.0) == 141
  assert regimes.scratch_b_epochs(90, 8214, 3674, cap=None) == int(90 * 8214 / 3674)


def test_lr_milestones():
  assert regimes.lr_milestones(160, "cifar") == (80, 120)
  assert regimes.lr_milestones(90, "imagenet") == (30, 60)
  assert regimes.lr_milestones(141, "imagenet") == (47, 94)
  assert regimes.lr_milestones(180, "imagenet") == (60, 120)
