"""The paper's training regimes (Liu et al., ICLR 2019, section 3), one function each.

Every regime starts from the pruned architecture as data (a `Plan`: it rebuilds the pruned model,
fresh or with inherited weights, and says which callbacks its training needs), never from a live
pruning object:
  - baseline:  the large model, E epochs, lr drops x0.1 at 50% and 75% of E (CIFAR) or every E/3
               epochs (ImageNet).
  - finetune:  the pruned model inherits the surviving weights of the trained large model and trains
               for `finetune_epochs` at the constant `finetune_lr` (CIFAR reference: 40 epochs at
               0.001, the last lr of the large model's schedule).
  - scratch_e: the pruned architecture, freshly initialized, E epochs on the large model's schedule.
  - scratch_b: the same, for the large model's compute budget:
               E_B = int(E * FLOPs(large) / FLOPs(pruned)), FLOPs in the reference's convention A;
               with a cap c (the reference's ImageNet rule, c = 2): a ratio >= c trains int(E * c).
               lr milestones scale with E_B.
  - lottery:   the winning ticket (train/lottery.py): the large model's INITIAL weights under the
               plan, E epochs on the large model's schedule; compared with scratch_e.
"""
import dataclasses
import os
from typing import Callable, Optional, Tuple

from tf_rethink import flops
from tf_rethink.train import speed
from tf_rethink.train import strategy
from tf_rethink.util import fs
from tf_rethink.train import trainer
from tf_rethink.train.registry import REGIMES
INIT_WEIGHTS = "init.weights.h5"


def scratch_b_epochs(base_epochs: int, flops_full: int, flops_pruned: int,
                     cap: Optional[float] = None) -> int:
  """The Scratch-B budget: epochs scaled by the FLOPs ratio, capped (spec 3.4)."""
  ratio = flops_full / flops_pruned
  if cap and ratio >= cap:
    return int(base_epochs * cap)
  return int(base_epochs * ratio)


def lr_milestones(epochs: int, schedule: str) -> Tuple[int, ...]:
  """Epochs at which the lr drops x0.1: CIFAR at int(E/2), int(3E/4); ImageNet every int(E/3)."""
  if schedule == "cifar":
    return (int(epochs * 0.5), int(epochs * 0.75))
  if schedule == "imagenet":
    step = max(1, epochs // 3)
    return tuple(range(step, epochs, step))
  raise ValueError(f"unknown lr schedule {schedule!r}")


@dataclasses.dataclass
class Context:
  """What every regime needs: the settings, the data and the two architectures."""
  config: "object"                      # tf_rethink.run.config.Config
  lr_schedule: str                      # "cifar" | "imagenet"
  strategy: "object"
  build_full: Callable                  # () -> freshly initialized large model
  train_ds: "object"
  test_ds: "object"
  run_dir: Callable[[str], str]         # regime name -> its run directory
  plan: "object" = None                 # pruning.plan.Plan, set after pruning
  pruner: "object" = None               # the method: prepares and trains the large model
  baseline_weights: Optional[str] = None
  flops_full: int = 0
  flops_pruned: int = 0
  scratch_b_cap: Optional[float] = None

  def spec(self, epochs: int, lr: float, milestones: Tuple[int, ...]) -> "trainer.TrainSpec":
    c = self.config
    return trainer.TrainSpec(epochs=epochs, lr=lr, batch_size=c.batch_size,
                             weight_decay=c.weight_decay, milestones=milestones,
                             momentum=c.momentum)

  def scheduled_spec(self, epochs: int) -> "trainer.TrainSpec":
    return self.spec(epochs, self.config.lr, lr_milestones(epochs, self.lr_schedule))

  @property
  def sparse(self) -> bool:
    """Whether pruned models are counted in FLOPs convention B (weight masks)."""
    return bool(self.plan is not None and self.plan.sparse)

  def fit(self, name: str, build_model: Callable, spec,
          extra_callbacks=()) -> "trainer.TrainResult":
    """Trains `build_model()` in the regime's run directory; TensorBoard gets the params and
    FLOPs of the model actually trained (convention B for weight-masked pruned models)."""
    sparse = self.sparse and name != "baseline"
    return trainer.train(build_model, self.train_ds, self.test_ds, spec, strategy=self.strategy,
                         run_dir=self.run_dir(name),
                         scalars=lambda model: dataclasses.asdict(flops.count(model,
                                                                              sparse=sparse)),
                         extra_callbacks=extra_callbacks, verbose=self.config.verbose,
                         speed=speed.from_config(self.config))

  def build_pruned_fresh(self):
    return self.plan.build_fresh(self.build_full)

  def build_pruned_inherited(self, weights: Optional[str] = None):
    """The pruned model with the weights in `weights` (default: the trained baseline's)."""
    full = self.pruner.prepare(self.build_full())  # the trained model's architecture
    full.load_weights(weights or self.baseline_weights)
    return self.plan.apply(full)

  def pruned_callbacks(self, name: str):
    """The plan's callbacks for training a pruned model (e.g. TF-MOT's mask steps)."""
    return self.plan.callbacks(self.pruning_log_dir(name))

  def pruning_log_dir(self, name: str) -> Optional[str]:
    """TensorBoard directory of the pruning callbacks; None (no summaries) on a worker that is
    not the chief (`strategy.is_chief`)."""
    if not strategy.is_chief(self.strategy):
      return None
    return os.path.join(self.run_dir(name), "tb", "pruning")

  def init_weights(self) -> str:
    """Where the baseline's initial weights (theta_0, for the lottery regime) are saved."""
    return os.path.join(self.run_dir("baseline"), INIT_WEIGHTS)


@REGIMES.register("baseline")
def baseline(ctx: Context):
  """The large model; the method's `prepare`/`callbacks` add its sparsity training, if any.

  Its initial weights are saved once to baseline/init.weights.h5 (theta_0 of the lottery regime),
  like the reference's `init.pth.tar` written right before training.
  """
  def build():
    model = ctx.pruner.prepare(ctx.build_full())  # theta_0 of the model that trains
    path = ctx.init_weights()
    if not os.path.exists(path):   # every worker saves (multi_worker), the chief keeps it
      with strategy.written_by_chief(ctx.strategy, path) as tmp:
        model.save_weights(tmp)
    return model
  return ctx.fit("baseline", build, ctx.scheduled_spec(ctx.config.epochs),
                 extra_callbacks=ctx.pruner.callbacks(log_dir=ctx.pruning_log_dir("baseline")))


@REGIMES.register("finetune")
def finetune(ctx: Context):
  c = ctx.config
  epochs = c.finetune_epochs or max(1, round(c.epochs / 4))
  lr = c.finetune_lr or c.lr * 0.01
  return ctx.fit("finetune", ctx.build_pruned_inherited, ctx.spec(epochs, lr, ()),
                 extra_callbacks=ctx.pruned_callbacks("finetune"))


@REGIMES.register("scratch_e")
def scratch_e(ctx: Context):
  return ctx.fit("scratch_e", ctx.build_pruned_fresh, ctx.scheduled_spec(ctx.config.epochs),
                 extra_callbacks=ctx.pruned_callbacks("scratch_e"))


@REGIMES.register("scratch_b")
def scratch_b(ctx: Context):
  epochs = scratch_b_epochs(ctx.config.epochs, ctx.flops_full, ctx.flops_pruned, ctx.scratch_b_cap)
  return ctx.fit("scratch_b", ctx.build_pruned_fresh, ctx.scheduled_spec(epochs),
                 extra_callbacks=ctx.pruned_callbacks("scratch_b"))
