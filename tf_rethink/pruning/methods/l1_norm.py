"""L1-norm filter pruning (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017).

Paper rule (spec 2.1; reference `cifar/l1-norm-pruning/vggprune.py`, `res56prune.py`,
`res110prune.py`, `imagenet/l1-norm-pruning/prune.py`): score each output filter of a conv by
sum |W| over (kh, kw, in); in each pruned layer keep the int(n * (1 - p)) highest-scoring filters
(ties: argsort order). Rankings are independent per layer and computed on the trained large model;
no data is used.

Variants are per-layer prune RATIOS, resolved against the actual model, so they also apply to
width-multiplied models; on full-width models they give exactly the widths of spec 2.1:
* vgg16 "A": conv1 and conv8..conv13 at half width.
* resnet56/resnet110 "A"/"B", resnet34 "A"/"B": only the first conv of each residual block
  (`stage{s}_block{b}_conv1`). Layer ids count convs from 1 (stem) in module order (for resnet34
  only 3x3 convs), so the first conv of global block g (1-based) has id 2g; ids in the skip list
  are not pruned, the others lose the ratio of their stage.
`ratio=p` instead prunes every producer (conv of any kind: plain, grouped, separable, transposed;
dense) whose output is not coupled to a merge, a layer needing all its inputs or the model output
(user models and other registered models): the paper's rule, Li et al. prune only the first conv
of a residual block. With `prune_coupled` (the default of the Python API `tf_rethink.prune`) it
also prunes the channel GROUPS of `groups.channel_groups` (all convs summed by one residual stage,
a squeeze-and-excite conv with the conv it rescales, the layers a shared layer reads): a group is
scored per channel by the SUM of its members' filter L1 norms (a separable conv's pointwise
kernel, a transposed conv's output filters), the int(n * (1 - p)) best channel indices are kept
(whole conv groups for grouped convs pruned by groups, equally many per conv group for balanced
ones: `select.top_in_group`), and the plan lists every member with those same indices. Groups that
touch a layer the engine cannot follow, the network input or the model output stay unpruned; one
summary line says how many and why (`GroupReport.summary`).
"""
import dataclasses
import logging
import re
from typing import Dict, Mapping, Optional, Tuple

from tf_rethink.pruning.graph import view
from tf_rethink.pruning.groups import channel_groups
from tf_rethink.pruning.methods.base import Option, Pruner
from tf_rethink.pruning.methods.registry import METHODS
from tf_rethink.pruning.plan import Plan
from tf_rethink.pruning.rules import RULES
from tf_rethink.pruning.scores import l1_norm
from tf_rethink.pruning.select import top_in_group, top_ratio
from tf_rethink.util.errors import UsageError

_log = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class LayerRatios:
  """A variant given as layer name -> prune ratio (the model must have exactly `convs` convs)."""
  ratios: Mapping[str, float]
  convs: int

  def resolve(self, model) -> Dict[str, float]:
    names = set(view(model).keys())
    expected = {f"conv{i}" for i in range(1, self.convs + 1)}
    if not expected <= names or f"conv{self.convs + 1}" in names:
      raise UsageError(f"model {model.name!r} does not have the layers conv1..conv{self.convs} "
                       "this variant was defined for")
    return dict(self.ratios)


_BLOCK_CONV1 = re.compile(r"^stage(\d+)_block(\d+)_conv1$")


@dataclasses.dataclass(frozen=True)
class BlockRatios:
  """A ResNet variant: first conv of every block, skip list by layer id, one ratio per stage.

  Attributes:
    blocks: residual blocks per stage the model must have (e.g. (9, 9, 9) for ResNet-56).
    skip_ids: layer ids left unpruned; the first conv of global block g (1-based) has id 2g.
    stage_ratios: prune ratio of each stage.
  """
  blocks: Tuple[int, ...]
  skip_ids: Tuple[int, ...]
  stage_ratios: Tuple[float, ...]

  def resolve(self, model) -> Dict[str, float]:
    found = sorted((tuple(map(int, m.groups())), key) for key in view(model).keys()
                   for m in [_BLOCK_CONV1.match(key)] if m)
    per_stage = [sum(1 for (s, _), _ in found if s == stage)
                 for stage in range(1, len(self.blocks) + 1)]
    if tuple(per_stage) != self.blocks or len(found) != sum(self.blocks):
      raise UsageError(f"model {model.name!r} has residual blocks {per_stage} per stage, not the "
                       f"{list(self.blocks)} this variant was defined for")
    ratios = {}
    for g, ((stage, _), name) in enumerate(found, start=1):
      if 2 * g not in self.skip_ids:
        ratios[name] = self.stage_ratios[stage - 1]
    return ratios


VARIANTS: Dict[str, Dict[str, object]] = {
    "vgg16": {"A": LayerRatios({"conv1": 0.5, **{f"conv{i}": 0.5 for i in range(8, 14)}}, 13)},
    "resnet56": {
        "A": BlockRatios((9, 9, 9), (16, 20, 38, 54), (0.1, 0.1, 0.1)),
        "B": BlockRatios((9, 9, 9), (16, 18, 20, 34, 38, 54), (0.6, 0.3, 0.1)),
    },
    "resnet110": {
        "A": BlockRatios((18, 18, 18), (36,), (0.5, 0.0, 0.0)),
        "B": BlockRatios((18, 18, 18), (36, 38, 74), (0.5, 0.4, 0.3)),
    },
    "resnet34": {
        "A": BlockRatios((3, 4, 6, 3), (2, 8, 14, 16, 26, 28, 30, 32), (0.3, 0.3, 0.3, 0.0)),
        "B": BlockRatios((3, 4, 6, 3), (2, 8, 14, 16, 26, 28, 30, 32), (0.5, 0.6, 0.4, 0.0)),
    },
}


def supported_variants() -> str:
  return "; ".join(f"{m}: {', '.join(sorted(v))}" for m, v in sorted(VARIANTS.items()))


def filter_kernel(layer):
  """The layer's kernel with output channels on the last axis (its rule's `kernel`), or None."""
  rule = RULES.lookup(layer)
  return rule.kernel(layer) if rule is not None else None


@METHODS.register("l1_norm")
class L1NormPruner(Pruner):
  """L1-norm filter pruning with a predefined target (Li et al., ICLR 2017).

  Args:
    variant: "A" or "B" (paper's predefined architectures, see `VARIANTS`).
    ratio: alternatively, prune this fraction (0 < p < 1) of every uncoupled conv.
  """
  name = "l1_norm"
  citation = "Li et al., Pruning Filters for Efficient ConvNets, ICLR 2017 (arXiv 1608.08710)"
  options = {"prune_coupled": Option(bool, False, "l1_norm ratio mode: also prune convs coupled "
                                     "by residual/SE merges, as groups (summed L1 norms, same "
                                     "indices in every member); off = the paper's rule")}

  def __init__(self, *, variant: Optional[str] = None, ratio: Optional[float] = None,
               prune_coupled: bool = False, **kwargs):
    self.prune_coupled = bool(prune_coupled)
    if variant is not None and ratio is not None:
      raise UsageError("l1_norm takes a variant (A/B, for "
                       f"{supported_variants()}) or a ratio (0 < p < 1), not both")
    if variant is None and ratio is None:
      variant = "A"  # the paper's first predefined target; models without variants need a ratio
    if ratio is not None and not 0.0 < float(ratio) < 1.0:
      raise UsageError(f"l1_norm ratio must be in (0, 1), got {ratio}")
    super().__init__(variant=None if variant is None else str(variant).upper(),
                     ratio=None if ratio is None else float(ratio), **kwargs)

  def layer_ratios(self, model, model_name: str = "") -> Dict[str, float]:
    """Layer key -> prune ratio of this variant on `model` (variant mode)."""
    name = model_name or model.name
    spec = VARIANTS.get(name, {}).get(self.variant)
    if spec is None:
      raise UsageError(f"l1_norm has no variant {self.variant!r} for model {name!r}; supported: "
                       f"{supported_variants()} (or prune any model by a ratio: --prune_ratio=p, "
                       "ratio=p in Python)")
    return spec.resolve(model)

  def select(self, model, data=None, *, model_name: str = "") -> Plan:
    """Keeps, per layer (or channel group), the int(n*(1-p)) filters with the largest sum |W|
    over (kh, kw, in) (summed over a group's members). `data` is ignored (the criterion is
    data-free). Layers with ratio 0 are left out of the plan."""
    del data
    model_name = model_name or ("" if self.ratio is not None else model.name)
    if self.ratio is not None:
      keep, variant = self._select_groups(model), self.describe(f"ratio={self.ratio:g}")
    else:
      graph = view(model)
      keep = {}
      for key, ratio in self.layer_ratios(model, model_name).items():
        if ratio > 0:
          keep[key] = top_ratio(l1_norm(filter_kernel(graph.layer(key))), ratio, self.round_to)
      variant = self.describe(self.variant)
    return Plan(model=model_name, keep=keep, method=self.name, variant=variant).stamped(model)

  def _select_groups(self, model) -> Dict[str, Tuple[int, ...]]:
    """Ratio mode: every prunable group with a kernel (singletons only unless `prune_coupled`)
    keeps the top of its summed per-channel L1 norms (`select.top_in_group`)."""
    graph = view(model)
    report = channel_groups(graph)
    if report.skipped:
      _log.warning("l1_norm: %s", report.summary())
    elif any(not g.prunable for g in report.groups):
      _log.info("l1_norm: %s", report.summary())
    keep = {}
    for group in report.prunable():
      if len(group.members) > 1 and not self.prune_coupled:
        continue
      kernels = [k for k in (filter_kernel(graph.layer(n)) for n in group.members)
                 if k is not None]
      if not kernels:
        continue
      idx = top_in_group(sum(l1_norm(k) for k in kernels), self.ratio, group, self.round_to)
      keep.update({n: idx for n in group.members})
    return keep
