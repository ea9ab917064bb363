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
"""
import os

from tf_rethink.pruning.plan import Plan
from tf_rethink.train import strategy
from tf_rethink.train.registry import REGIMES
from tf_rethink.util.errors import UsageError


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
