"""Unstructured weight-level magnitude pruning (Han et al., "Learning both Weights and Connections
for Efficient Neural Networks", NIPS 2015), as re-implemented by Liu et al. (ICLR 2019, spec 2.7).

Rule of the Rethinking reference (`cifar/weight-level/cifar_prune.py`, `imagenet/weight-level/
prune.py`): ONE-SHOT and GLOBAL over the conv kernels only (dense and BN weights are never
pruned): concatenate |w| of all conv kernels, sort, threshold = value at index int(total * p),
keep |w| > threshold (`weight_masks.global_magnitude_masks`; on an already masked model the index is
#zeros + int(#nonzero * p), the iterative rule of `cifar_prune_iterative.py`). Han et al. prune
per layer (quality x std), iteratively, FC layers too: the paper follows the reference, and so do
we. p = --prune_ratio (paper: 30%..95% of all conv weights).

Regimes: the plan carries the masks (`Plan.masks`). Fine-tune keeps the mask fixed on the
inherited weights; Scratch-E/B re-initialize the conv kernels N(0, 2/n) with n = nnz / C_in
(spec 3.3) and train with the same fixed mask (TF-MOT wrappers, `weight_masks.wrap`); shapes stay
(the masked dense model, the paper's point). Params and FLOPs of the masked model count only
nonzero conv weights (`Plan.sparse`, flops convention B), so Scratch-B trains
int(E * FLOPs(dense) / FLOPs(sparse)) epochs: the reference's intended ratio (its scripts compute
the FLOPs before loading the mask and get 1, spec 7.2). Export strips the wrappers
(`strip_pruning`); the zeros stay in the SavedModel. TF-MOT needs tf_keras models.
"""
from typing import ClassVar, Dict

from tf_rethink.pruning import weight_masks
from tf_rethink.pruning.graph import require_tf_keras
from tf_rethink.pruning.methods.base import Option, Pruner
from tf_rethink.pruning.methods.registry import METHODS
from tf_rethink.pruning.plan import Plan
from tf_rethink.util.errors import UsageError


@METHODS.register("magnitude")
class MagnitudePruner(Pruner):
  """Global one-shot magnitude pruning of conv weights; `lottery_rounds` > 1 makes the lottery
  regime iterative (each round prunes `prune_ratio` of the remaining weights, spec 2.8)."""
  name: ClassVar[str] = "magnitude"
  citation: ClassVar[str] = ("Han et al., Learning both Weights and Connections for Efficient "
                             "Neural Networks, NIPS 2015")
  options: ClassVar[Dict[str, Option]] = {
      "lottery_rounds": Option(int, 1, "Lottery regime: prune/rewind/retrain rounds, each "
                               "pruning --prune_ratio of the remaining conv weights (1 = "
                               "one-shot; final sparsity 1 - (1 - p)^rounds)."),
  }
  plan_kind: ClassVar[str] = "weights"

  def __init__(self, *, variant=None, ratio=None, lottery_rounds: int = 1, **kwargs):
    if variant:
      raise UsageError(f"--method=magnitude has no variants (got --variant={variant}); pass "
                       "--prune_ratio, e.g. 0.8")
    if lottery_rounds < 1:
      raise UsageError(f"--lottery_rounds={lottery_rounds} must be >= 1")
    super().__init__(variant=None, ratio=ratio, **kwargs)
    if self.round_to != 1:
      raise UsageError("--round_to rounds kept channel counts; --method=magnitude prunes single "
                       "weights (leave --round_to at 1)")
    self.lottery_rounds = int(lottery_rounds)

  def select(self, model, data=None, *, model_name: str = "") -> Plan:
    """Keeps the conv weights with |w| > the global threshold at index int(total * p) (index
    #zeros + int(#nonzero * p) when `model` is already masked); `data` is not used."""
    del data
    require_tf_keras(model, "--method=magnitude (TF-MOT)")
    if self.ratio is None:
      raise UsageError("--method=magnitude needs --prune_ratio, the fraction of conv weights to "
                       "remove (paper: 0.3 to 0.95)")
    kernels = weight_masks.conv_kernels(model)
    if not kernels:
      raise UsageError(f"model {model.name!r} has no conv layers for magnitude pruning")
    return Plan(model=model_name, masks=weight_masks.global_magnitude_masks(kernels, self.ratio),
                method=self.name, variant=f"ratio={self.ratio}").stamped(model)


def sparsity_report(model) -> Dict[str, float]:
  """Layer name -> measured fraction of exact zeros in each conv kernel, and "global" overall."""
  kernels = weight_masks.conv_kernels(model)
  out = {k: float((v == 0).mean()) for k, v in kernels.items()}
  total = sum(v.size for v in kernels.values())
  out["global"] = float(sum(int((v == 0).sum()) for v in kernels.values()) / max(1, total))
  return out


def format_report(report: Dict[str, float]) -> str:
  """One line: global sparsity, then each layer's."""
  layers = ", ".join(f"{k} {100 * v:.1f}%" for k, v in report.items() if k != "global")
  return f"conv weight sparsity: global {100 * report['global']:.2f}% ({layers})"


__all__ = ["MagnitudePruner", "sparsity_report", "format_report"]
