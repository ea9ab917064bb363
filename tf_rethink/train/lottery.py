"""The lottery-ticket regime (Frankle & Carbin, ICLR 2019), as compared in Liu et al. (ICLR 2019,
section 6; spec 2.8).

Winning ticket: theta_0, the large model's ORIGINAL initial weights (saved by the baseline regime
to baseline/init.weights.h5, like the reference's `init.pth.tar`), under the plan: the pruned
mask for unstructured pruning (`--method=magnitude`, trained with the fixed mask) or the kept
channels for structured pruning (e.g. `--method=l1_norm`: the initial model shrunk with the plan,
equivalent to the reference's masked full-size model with the leak of spec 7.4 fixed). It trains
E epochs on the large model's schedule and initial lr (`--lr`: the paper compares 0.1 and 0.01).
`--regime=lottery` then runs `scratch_e`: the same plan with a new random initialization.

Iterative pruning (`--lottery_rounds=n`, an option of `--method=magnitude`): round 1 trains the
ticket of the one-shot plan; each further round prunes `--prune_ratio` of the REMAINING conv weights of the
previous round's trained ticket (reference `cifar_prune_iterative.py`), rewinds the survivors to
theta_0 and retrains; final sparsity 1 - (1 - p)^n. Rounds run in lottery/round<k>/ (their plans
in lottery/round<k>/plan.json); the last round is the regime's result, and its plan is the one
the following `scratch_e` uses.

`lottery_random` (`--regime=lottery_random`, after a lottery run in the same workdir): the
ticket's control at EQUAL distribution. A second draw theta_0' of the large model's own
initializers (seed + RANDOM_INIT_SEED_OFFSET; saved to lottery_random/init.weights.h5) under the
same plan, trained exactly like the ticket. It differs from the ticket only in which sample of the
initial distribution survives, while `scratch_e` also changes the distribution: masked convs
re-drawn N(0, 2/n), n = nnz / C_in (the reference's sparse re-scaling: at density d the variance
is 1/d times theta_0's), structured plans a fresh pruned model with its own (smaller) fan-out.
"""
import os

from tf_rethink.pruning.plan import Plan
from tf_rethink.train import strategy
from tf_rethink.train.registry import REGIMES
from tf_rethink.util import fs
from tf_rethink.util.errors import UsageError

RANDOM_INIT_SEED_OFFSET = 7919   # lottery_random's theta_0' seed = --seed + this


@REGIMES.register("lottery")
def lottery(ctx):
  init = ctx.init_weights()
  if not os.path.exists(init):
    raise UsageError(f"{init} is missing (the baseline's initial weights, saved when a baseline "
                     "starts); run the lottery regime in a new --workdir")
  rounds = int(ctx.config.method_options.get("lottery_rounds", 1))
  spec = ctx.scheduled_spec(ctx.config.epochs)
  result = None
  for r in range(1, rounds + 1):
    name = "lottery" if rounds == 1 else os.path.join("lottery", f"round{r}")
    if r > 1:
      path = os.path.join(ctx.run_dir(name), "plan.json")
      if os.path.exists(path):
        ctx.plan = Plan.load(path)
      else:   # every worker selects (it reads the trained model); the chief's plan is used
        plan = ctx.pruner.select(result.model, ctx.train_ds, model_name=ctx.config.model)
        ctx.plan = Plan.from_json(strategy.broadcast_text(ctx.strategy, plan.to_json()),
                                  source=path)
        if strategy.is_chief(ctx.strategy):
          ctx.plan.save(path)
    result = ctx.fit(name, lambda: ctx.build_pruned_inherited(init), spec,
                     extra_callbacks=ctx.pruned_callbacks(name))
  return result


@REGIMES.register("lottery_random")
def lottery_random(ctx):
  """A fresh theta_0' (same initializers as theta_0, another seed) under the plan, like the ticket."""
  import tf_keras as keras  # pylint: disable=import-outside-toplevel
  path = os.path.join(ctx.run_dir("lottery_random"), "init.weights.h5")
  if not os.path.exists(path):
    keras.utils.set_random_seed(ctx.config.seed + RANDOM_INIT_SEED_OFFSET)
    model = ctx.pruner.prepare(ctx.build_full())
    if ctx.strategy.extended.should_checkpoint:
      with fs.atomic_path(path) as tmp:
        model.save_weights(tmp)
    keras.utils.set_random_seed(ctx.config.seed)
  return ctx.fit("lottery_random", lambda: ctx.build_pruned_inherited(path),
                 ctx.scheduled_spec(ctx.config.epochs),
                 extra_callbacks=ctx.pruned_callbacks("lottery_random"))
