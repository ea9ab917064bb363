"""The `uniform_e` regime: the pruned architecture's control in "pruning as architecture search"
(Liu et al., ICLR 2019, section 5, Figures 3-4; spec 2.9).

Rule: the uniformly pruned architecture with the SAME parameter count as the plan, trained from
scratch for E epochs like Scratch-E. Structured plans: every prunable conv keeps the same fraction
of its channels, the fraction found by bisection so the fresh model's parameter count is the
closest achievable to the pruned one's (`study.arch_patterns.uniform_like`, the same rule
tools/arch_search.py's `uniform` kind uses). Weight
(sparse) plans: every masked layer keeps the same fraction of its weights, chosen at random, at the
plan's global sparsity (`arch_patterns.random_masks`, seeded by --seed). The paper's claim is that
the architecture a method finds (Network Slimming; for weights, magnitude pruning) beats the
uniform one at equal parameters; `--regime=uniform_e` after `--regime=all` in the same workdir
gives the pair (scratch_e vs uniform_e). Its plan is saved to uniform_e/plan.json.
"""
import os

from tf_rethink.pruning.plan import Plan
from tf_rethink.study import arch_patterns
from tf_rethink.train import strategy
from tf_rethink.train.registry import REGIMES

PLAN_JSON = "plan.json"


def uniform_plan(ctx) -> Plan:
  """The uniform architecture matching ctx.plan (module docstring)."""
  counter = arch_patterns.ParamCounter(ctx.build_full)   # builds the full model once
  return arch_patterns.uniform_like(ctx.plan, counter.full, ctx.config.seed, counter=counter,
                                    model_name=ctx.config.model)


@REGIMES.register("uniform_e")
def uniform_e(ctx):
  path = os.path.join(ctx.run_dir("uniform_e"), PLAN_JSON)
  if os.path.exists(path):      # a resumed run keeps the architecture it started with
    plan = Plan.load(path)
  else:
    plan = uniform_plan(ctx)
    if strategy.is_chief(ctx.strategy):
      os.makedirs(os.path.dirname(path), exist_ok=True)
      plan.save(path)
  pruned_plan, ctx.plan = ctx.plan, plan
  try:
    return ctx.fit("uniform_e", ctx.build_pruned_fresh, ctx.scheduled_spec(ctx.config.epochs),
                   extra_callbacks=ctx.pruned_callbacks("uniform_e"))
  finally:
    ctx.plan = pruned_plan
