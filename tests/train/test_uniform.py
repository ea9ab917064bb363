"""The `uniform_e` regime's architecture (train/uniform.py): the uniformly pruned model with the
plan's parameter count (structured), or random masks at the plan's sparsity (weights)."""
import types

import numpy as np

import tf_rethink  # noqa: F401
from tf_rethink.models import MODELS
from tf_rethink.pruning.plan import Plan
from tf_rethink.study import arch_patterns as ap
from tf_rethink.train import uniform
from tf_rethink import flops

SHAPE = (16, 16, 1)


def _ctx(plan, seed=1):
  def build():
    return MODELS.get("vgg11").build(input_shape=SHAPE, num_classes=10, width_multiplier=0.25)
  return types.SimpleNamespace(config=types.SimpleNamespace(model="vgg11", seed=seed),
                               build_full=build, plan=plan)


def test_structured_uniform_plan_has_the_pruned_params_and_one_keep_ratio():
  full = _ctx(None).build_full()
  convs = ap.prunable_convs(full)
  widths = ap.full_widths(full, convs)
  # A very non-uniform pruned architecture: the first half of the convs at 25%, the rest full.
  keep = {n: tuple(range(max(1, widths[n] // 4))) for n in convs[:len(convs) // 2]}
  pruned = Plan(model="vgg11", keep=keep, method="test")
  ctx = _ctx(pruned)
  plan = uniform.uniform_plan(ctx)
  target = flops.count_params(pruned.apply(full, copy_weights=False))
  got = flops.count_params(plan.apply(full, copy_weights=False))
  assert abs(got - target) / target < 0.05, (got, target)
  ratios = {round(len(plan.keep.get(n, range(widths[n]))) / widths[n], 1) for n in convs}
  assert len(ratios) <= 2, ratios   # one keep ratio, up to rounding of small widths
  assert plan.keep != pruned.keep


def test_sparse_uniform_plan_keeps_the_plans_global_sparsity_at_random():
  full = _ctx(None).build_full()
  rng = np.random.default_rng(0)
  masks = {}
  for i, n in enumerate(ap.all_convs(full)):   # layer sparsities from 10% to 90%
    shape = tuple(full.get_layer(n).kernel.shape)
    masks[n] = rng.random(shape) > (0.1 + 0.8 * i / max(1, len(ap.all_convs(full)) - 1))
  pruned = Plan(model="vgg11", masks=masks, method="test")
  plan = uniform.uniform_plan(_ctx(pruned, seed=3))
  assert plan.sparse
  assert abs(plan.global_sparsity() - pruned.global_sparsity()) < 0.01
  per_layer = [1 - m.mean() for m in plan.masks.values()]
  assert max(per_layer) - min(per_layer) < 0.01   # the same sparsity in every layer
  again = uniform.uniform_plan(_ctx(pruned, seed=3))
  assert all((again.masks[n] == plan.masks[n]).all() for n in plan.masks)   # seeded
