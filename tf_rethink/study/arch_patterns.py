"""Pruned architectures as design patterns (Liu et al., ICLR 2019, section 5 / spec 2.9).

Everything here is computation on models, plans and masks (no training):
* Uniform channel pruning: every prunable conv keeps the same fraction r of its channels,
  k = max(1, round(w * r)); `uniform_plan_matching` finds r by bisection so that the freshly built
  architecture's parameter count is the closest achievable to a target (a pruned plan's).
* Stages: the layers that share a feature-map size (output H x W), numbered in order (VGG-16 on
  32x32: {conv1-2}, {conv3-4}, {conv5-7}, {conv8-10}, {conv11-13}).
* Structured patterns: per-layer keep ratio (kept / full width) and per-stage keep ratio (mean of
  the stage's per-layer ratios; averaged over runs by `mean_patterns`).
* Guided pruning: a plan in which every prunable conv of stage s keeps round(w * ratio_s) channels
  (`guided_plan`); "transferred" when the ratios come from another model or dataset (VGG-16 ->
  VGG-19: both have 5 stages, matched by index).
* Unstructured patterns: per-layer and per-stage sparsity, and per stage the keep probability of
  each kernel position (kh x kw, averaged over input/output channels and the stage's layers).
* Uniform sparsification (`random_masks`): each layer keeps exactly n - round(n * s) weights chosen
  uniformly at random; guided sparsification (`guided_masks`): each weight kept independently
  with its stage's probability for its kernel position (spec 2.9.5, our reconstruction).
"""
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np


from tf_rethink import flops as flops_lib
from tf_rethink.util.errors import UsageError
from tf_rethink.pruning.graph import view
from tf_rethink.pruning.groups import channel_groups
from tf_rethink.pruning.plan import Plan
from tf_rethink.pruning.rules.conv import is_conv



def prunable_convs(model) -> List[str]:
  """The convs whose output channels can be pruned on their own (surgery's rule), in order."""
  graph = view(model)
  return [n for n in channel_groups(graph).uncoupled() if is_conv(graph.layer(n))]


def all_convs(model) -> List[str]:
  graph = view(model)
  return [key for key in graph.keys() if is_conv(graph.layer(key))]


def stages(model, names: Optional[Sequence[str]] = None) -> Dict[str, int]:
  """Layer name -> stage index (0-based), stages = distinct output H x W in order of appearance."""
  names = list(names) if names is not None else all_convs(model)
  sizes: List[Tuple] = []
  out = {}
  for name in names:
    size = tuple(model.get_layer(name).output_shape[1:-1])
    if size not in sizes:
      sizes.append(size)
    out[name] = sizes.index(size)
  return out


def full_widths(model, names: Sequence[str]) -> Dict[str, int]:
  return {n: int(model.get_layer(n).output_shape[-1]) for n in names}


def scaled(width: int, ratio: float) -> int:
  """Channels kept by a layer of `width` at keep ratio `ratio`: max(1, round(width * ratio))."""
  return max(1, min(width, int(round(width * ratio))))


def width_plan(widths: Mapping[str, int], full: Mapping[str, int], *, model_name: str = "",
               method: str = "", variant: str = "") -> Plan:
  """A plan keeping the first k channels of each layer (which ones is irrelevant for scratch
  training); layers at full width are left out."""
  keep = {n: tuple(range(k)) for n, k in widths.items() if k < full[n]}
  return Plan(model=model_name, keep=keep, method=method, variant=variant)


class ParamCounter:
  """Parameters of the freshly built architecture of a plan (cached per plan; the full model is
  built once)."""

  def __init__(self, build_full: Callable[[], object]):
    self.full = build_full()
    self._cache: Dict[Tuple, int] = {}

  def __call__(self, plan: Plan) -> int:
    key = tuple(sorted((k, len(v)) for k, v in plan.keep.items()))
    if key not in self._cache:
      small = plan.apply(self.full, copy_weights=False) if plan.keep else self.full
      self._cache[key] = flops_lib.count_params(small)
    return self._cache[key]


def uniform_widths(full: Mapping[str, int], ratio: float) -> Dict[str, int]:
  return {n: scaled(w, ratio) for n, w in full.items()}


def uniform_plan_matching(counter: ParamCounter, target_params: int, *, model_name: str = "",
                          iterations: int = 40) -> Tuple[Plan, float]:
  """The uniform plan (same keep ratio in every prunable conv) whose parameter count is closest
  to `target_params`, by bisection over the ratio; returns (plan, ratio)."""
  names = prunable_convs(counter.full)
  if not names:
    raise UsageError(f"model {counter.full.name!r} has no prunable convs for uniform pruning")
  full = full_widths(counter.full, names)

  def plan_at(r):
    return width_plan(uniform_widths(full, r), full, model_name=model_name, method="uniform",
                      variant=f"ratio={r:.4f}")
  lo, hi = 0.0, 1.0
  for _ in range(iterations):
    mid = (lo + hi) / 2
    if counter(plan_at(mid)) >= target_params:
      hi = mid
    else:
      lo = mid
  best = min((lo, hi), key=lambda r: (abs(counter(plan_at(r)) - target_params), r))
  return plan_at(best), best


def uniform_like(anchor: Plan, full, seed: int, *, counter: Optional[ParamCounter] = None,
                 model_name: str = "") -> Plan:
  """The uniform counterpart of `anchor` (a pruned plan of the model `full`): structured, the
  uniform plan with the closest parameter count (`uniform_plan_matching`, needs `counter`);
  weight masks, every conv at `anchor`'s global sparsity at random (`random_masks`, `seed`)."""
  if anchor.sparse:
    return random_masks(full, anchor.global_sparsity(), seed, model_name=model_name)
  return uniform_plan_matching(counter, counter(anchor), model_name=model_name)[0]


def layer_keep_ratios(model, plan: Plan, names: Optional[Sequence[str]] = None
                      ) -> Dict[str, float]:
  """Layer -> kept / full output channels (1.0 for layers the plan leaves alone)."""
  names = list(names) if names is not None else prunable_convs(model)
  full = full_widths(model, names)
  return {n: len(plan.keep[n]) / full[n] if n in plan.keep else 1.0 for n in names}


def stage_keep_ratios(model, plan: Plan) -> List[float]:
  """Per stage, the mean keep ratio of its prunable convs (spec 2.9.4)."""
  ratios = layer_keep_ratios(model, plan)
  st = stages(model, list(ratios))
  return [float(np.mean([r for n, r in ratios.items() if st[n] == s]))
          for s in range(max(st.values()) + 1)]


def guided_plan(model, stage_ratios: Sequence[float], *, model_name: str = "",
                method: str = "guided", variant: str = "") -> Plan:
  """Every prunable conv of stage s keeps round(w * stage_ratios[s]) channels."""
  names = prunable_convs(model)
  st = stages(model, names)
  n_stages = max(st.values()) + 1
  if n_stages != len(stage_ratios):
    raise UsageError(f"model {model.name!r} has {n_stages} stages but the pattern has "
                     f"{len(stage_ratios)}; transfer patterns between models with as many stages")
  full = full_widths(model, names)
  widths = {n: scaled(full[n], stage_ratios[st[n]]) for n in names}
  return width_plan(widths, full, model_name=model_name, method=method, variant=variant)


def layer_sparsity(plan: Plan) -> Dict[str, float]:
  return plan.sparsity()


def stage_sparsity(model, plan: Plan) -> List[float]:
  """Per stage, pruned weights / all weights of its masked convs."""
  st = stages(model, list(plan.masks))
  out = []
  for s in range(max(st.values()) + 1):
    ms = [m for n, m in plan.masks.items() if st[n] == s]
    out.append(float(1.0 - sum(m.sum() for m in ms) / sum(m.size for m in ms)))
  return out


def kernel_position_keep(model, plan: Plan) -> List[np.ndarray]:
  """Per stage, a (kh, kw) array: the fraction of kept weights at each kernel position (over
  the input and output channels of the stage's convs, weighted by their sizes; spec 2.9.3)."""
  st = stages(model, list(plan.masks))
  out = []
  for s in range(max(st.values()) + 1):
    ms = [m for n, m in plan.masks.items() if st[n] == s]
    shapes = {m.shape[:-2] for m in ms}
    if len(shapes) != 1:
      raise UsageError(f"stage {s} mixes kernel sizes {sorted(shapes)}; position patterns need "
                       "one kernel size per stage")
    kept = sum(m.sum(axis=(-2, -1)) for m in ms).astype(np.float64)
    total = sum(m.shape[-2] * m.shape[-1] for m in ms)
    out.append(kept / total)
  return out


def random_masks(model, sparsity: Union[float, Mapping[str, float]], seed: int = 0, *,
                 model_name: str = "") -> Plan:
  """Uniform random sparsification: each conv keeps exactly n - round(n * s) of its n weights,
  uniformly at random (s per layer, or the same for every conv)."""
  rng = np.random.default_rng(seed)
  masks = {}
  for name in all_convs(model):
    s = sparsity if isinstance(sparsity, (int, float)) else sparsity.get(name)
    if s is None:
      continue
    shape = tuple(model.get_layer(name).kernel.shape)
    n = int(np.prod(shape))
    flat = np.ones(n, dtype=bool)
    flat[rng.permutation(n)[:int(round(n * float(s)))]] = False
    masks[name] = flat.reshape(shape)
  return Plan(model=model_name, masks=masks, method="uniform_random", variant=f"seed={seed}")


def guided_masks(model, position_keep: Sequence[np.ndarray], seed: int = 0, *,
                 model_name: str = "", method: str = "guided") -> Plan:
  """Guided sparsification: each weight of a conv in stage s at kernel position (i, j) is kept
  independently with probability position_keep[s][i, j]."""
  names = all_convs(model)
  st = stages(model, names)
  if max(st.values()) + 1 != len(position_keep):
    raise UsageError(f"model {model.name!r} has {max(st.values()) + 1} stages but the pattern has "
                     f"{len(position_keep)}")
  rng = np.random.default_rng(seed)
  masks = {}
  for name in names:
    shape = tuple(model.get_layer(name).kernel.shape)
    p = np.asarray(position_keep[st[name]], dtype=np.float64)
    if p.shape != shape[:-2]:
      raise UsageError(f"{name}: kernel {shape[:-2]} does not fit the pattern's {p.shape}")
    masks[name] = rng.random(shape) < p[..., None, None]
  return Plan(model=model_name, masks=masks, method=method, variant=f"seed={seed}")


def mean_patterns(patterns: Sequence[Sequence]) -> List:
  """Element-wise mean over runs of per-stage patterns (lists of floats or arrays)."""
  return [np.mean(np.stack([np.asarray(p[s], dtype=np.float64) for p in patterns]), axis=0)
          for s in range(len(patterns[0]))]
