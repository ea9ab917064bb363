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


def test_tensorboard_counts_follow_the_plan_of_each_lottery_round(tmp_path, monkeypatch):
  """The first round's bug: params/FLOPs logged for scratch_e after iterative lottery rounds were
  the one-shot plan's (a shared mutable Context); now each run logs the model it trains."""
  import types  # pylint: disable=import-outside-toplevel
  from tests.helpers import randomize, vgg_like  # pylint: disable=import-outside-toplevel
  from tf_rethink.train import trainer  # pylint: disable=import-outside-toplevel
  from tf_rethink.train.strategy import make_strategy  # pylint: disable=import-outside-toplevel
  logged = {}

  def fake_train(build_model, train_ds, test_ds, spec, *, strategy, run_dir, scalars=None,
                 **kwargs):
    with strategy.scope():
      model = build_model()
    logged[run_dir] = scalars(model)
    return types.SimpleNamespace(model=model)
  monkeypatch.setattr(trainer, "train", fake_train)
  pruner = METHODS.get("magnitude")(ratio=0.5, lottery_rounds=2)
  config = types.SimpleNamespace(epochs=2, lr=0.1, batch_size=8, weight_decay=1e-4, momentum=0.9,
                                 model="", verbose=0, method_options={"lottery_rounds": 2})
  ctx = regimes.Context(config=config, lr_schedule="cifar", strategy=make_strategy("one_device"),
                        build_full=vgg_like, train_ds=None, test_ds=None,
                        run_dir=lambda name: str(tmp_path / name), pruner=pruner)
  regimes.REGIMES.get("baseline")(ctx)
  ctx.baseline_weights = ctx.init_weights()
  ctx.plan = pruner.select(randomize(vgg_like(), 3))
  regimes.REGIMES.get("lottery")(ctx)
  regimes.REGIMES.get("scratch_e")(ctx)
  round1, round2 = (logged[str(tmp_path / "lottery" / f"round{r}")] for r in (1, 2))
  scratch = logged[str(tmp_path / "scratch_e")]
  assert round2["flops"] < round1["flops"]          # the second round pruned more weights
  assert scratch == round2 != round1                 # scratch_e trains the last round's plan
  assert logged[str(tmp_path / "baseline")]["flops"] > round1["flops"]
