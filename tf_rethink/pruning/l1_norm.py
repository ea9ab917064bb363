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
`ratio=p` instead prunes every conv whose output is not coupled to a residual merge, a fixed-width
layer or the model output (user models and other registered models): the paper's rule, Li et al.
prune only the first conv of a residual block. With `prune_coupled` (the default of the Python API
`tf_rethink.prune`) it also prunes the channel GROUPS of `coupling.channel_groups` (all convs
summed by one residual stage, a squeeze-and-excite conv with the conv it rescales): a group is
scored per channel by the SUM of its members' filter L1 norms, the int(n * (1 - p)) best channel
indices are kept, and the plan lists every member with those same indices. Groups that touch a
layer the engine cannot follow (Lambda, custom layers without a rule, a reshape that mixes
channels), the network input or the model output stay unpruned and are logged by layer name.
"""
import dataclasses
import logging
import re
from typing import Dict, Mapping, Optional, Tuple

from tf_rethink.util.errors import UsageError
from tf_rethink.pruning import METHODS, coupling, surgery
from tf_rethink.pruning.base import Option, PrunePlan, Pruner
from tf_rethink.pruning.scores import l1_norm
from tf_rethink.pruning.select import top_ratio

import tf_keras as keras

_log = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class LayerRatios:
  """A variant given as layer name -> prune ratio (the model must have exactly `convs` convs)."""
  ratios: Mapping[str, float]
  convs: int

  def resolve(self, model) -> Dict[str, float]:
    names = {layer.name for layer in model.layers}
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
    found = sorted((tuple(map(int, m.groups())), layer.name) for layer in model.layers
                   for m in [_BLOCK_CONV1.match(layer.name)] if m)
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
  """The kernel with output channels on the last axis (None for layers without one)."""
  weights = layer.get_weights()
  if isinstance(layer, keras.layers.SeparableConv2D):
    return weights[1]            # pointwise (1, 1, in * m, out)
  if isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                        keras.layers.Conv3DTranspose)):
    return weights[0].swapaxes(-1, -2)
  return weights[0] if weights and weights[0].ndim >= 2 else None


def _is_conv(layer) -> bool:
  return (isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D))
          and not isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                                     keras.layers.Conv3DTranspose)))


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
    """Layer name -> prune ratio for this variant/ratio on `model`."""
    if self.ratio is not None:
      return {n: self.ratio for n in surgery.prunable_layers(model, _is_conv)}
    name = model_name or model.name
    spec = VARIANTS.get(name, {}).get(self.variant)
    if spec is None:
      raise UsageError(f"l1_norm has no variant {self.variant!r} for model {name!r}; supported: "
                       f"{supported_variants()} (or prune any model by a ratio: --prune_ratio=p, "
                       "ratio=p in Python)")
    return spec.resolve(model)

  def select(self, model, data=None, *, model_name: str = "") -> PrunePlan:
    """Keeps, per layer, the int(n*(1-p)) filters with the largest sum |W| over (kh, kw, in).

    `data` is ignored (the criterion is data-free). Layers with ratio 0 are left out of the plan.
    """
    del data
    if self.ratio is None:
      model_name = model_name or model.name   # the variant was looked up under this name
    if self.ratio is not None:
      keep = self._select_groups(model)
      return PrunePlan(model=model_name, keep=keep, method=self.name,
                       variant=f"ratio={self.ratio:g}")
    keep = {}
    for name, ratio in self.layer_ratios(model, model_name).items():
      if ratio > 0:
        kernel = model.get_layer(name).get_weights()[0]
        keep[name] = top_ratio(l1_norm(kernel), ratio)
    variant = self.variant if self.variant is not None else f"ratio={self.ratio:g}"
    return PrunePlan(model=model_name, keep=keep, method=self.name, variant=variant)

  def _select_groups(self, model) -> Dict[str, Tuple[int, ...]]:
    """Ratio mode: each prunable group with a conv member (singletons only unless
    `prune_coupled`) keeps the top int(n*(1-p)) of its summed per-channel L1 norms."""
    report = coupling.channel_groups(model, surgery.RULES)
    if report.skipped:
      _log.warning("l1_norm: channels reaching %s are left unpruned (no surgery rule)",
                   ", ".join(f"{n} ({why})" for n, why in report.skipped.items()))
    keep = {}
    for group in report.prunable():
      layers = [model.get_layer(n) for n in group.members]
      if not any(_is_conv(l) for l in layers) or (len(layers) > 1 and not self.prune_coupled):
        continue
      kernels = [k for k in map(filter_kernel, layers) if k is not None]
      if not kernels:
        continue
      idx = top_ratio(sum(l1_norm(k) for k in kernels), self.ratio)
      keep.update({n: idx for n in group.members})
    return keep
