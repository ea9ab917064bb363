"""Shared machinery of the data-driven methods (ThiNet, regression-based feature reconstruction).

Both prune the output channels of a layer i with the statistics of the layer that consumes them,
layer i+1 (see `sampling`: consumers, streaming Gram matrices with bounded memory; ThiNet samples
10 images per class and 10 locations each, He et al. 5000 images and 10 locations each). All
selection and least-squares steps work on the Gram matrices (vectorized, no loop over samples);
a method subclasses `DataDrivenPruner` with its selection rule, and `shrink` folds the
reconstructed consumer kernels into the physically pruned model.

Deviation (documented): the papers prune layer by layer and re-sample the already-pruned model
before the next layer (ThiNet also fine-tunes in between); here every layer's statistics come from
the same pass over the unpruned model, so the layers are pruned and reconstructed independently.
The architecture (what the paper's Scratch-E/B regimes train) is unaffected; the fine-tuned
starting point is a one-shot approximation of the sequential one.
"""
import dataclasses
import logging
import time
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.models.channel_gather import ChannelGather
from tf_rethink.pruning import surgery
from tf_rethink.pruning.base import PrunePlan, Pruner
from tf_rethink.pruning.groups import Ctx, Cut, full
from tf_rethink.pruning.scores import l1_norm
from tf_rethink.pruning.select import kept_count, top_k
from tf_rethink.pruning.sampling import (  # noqa: F401  (re-exported)
    Statistics, consumer_kernel, find_consumer, fingerprint, sample_statistics)

_log = logging.getLogger(__name__)
L = keras.layers


@surgery.RULES.register(ChannelGather, prunable=True)
def _gather_rule(c: Ctx) -> Cut:
  """A `ChannelGather` keeps output positions `keep`; its indices follow its (pruned) input."""
  n_in = int(c.in_shapes[0][-1])
  orig = c.layer.indices if c.layer.indices is not None else list(range(n_in))
  keep = c.keep if c.keep is not None else full(len(orig))
  position = {ch: i for i, ch in enumerate(c.ins[0])}
  missing = [orig[k] for k in keep if orig[k] not in position]
  if missing:
    raise UsageError(f"{c.describe()} selects input channels {missing[:5]} that the plan removes; "
                     "leave its input unpruned")
  config = {}
  if c.layer.indices is not None or keep != full(len(orig)) or not c.inputs_full():
    config = {"indices": [position[orig[k]] for k in keep]}
  return Cut(out=keep, config=config)


# ----------------------------------------------------------------------------- targets


@dataclasses.dataclass(frozen=True)
class FixedWidths:
  """A paper architecture as kept widths of named layers of one registered model."""
  model: str
  widths: Mapping[str, int]
  paper: str = ""     # e.g. "FLOPs 3.67 G"

  def resolve(self, model, model_name: str) -> Dict[str, int]:
    if model_name != self.model:
      raise UsageError(f"this variant is defined for --model={self.model}, not {model_name!r}")
    for name, width in self.widths.items():
      try:
        n = int(model.get_layer(name).output_shape[-1])
      except ValueError:
        raise UsageError(f"model {model_name!r} has no layer {name!r}; the variant needs the "
                         "paper's full-width model (width_multiplier=1)") from None
      if width > n:
        raise UsageError(f"variant keeps {width} channels of {name!r}, which has {n}; use the "
                         "full-width model (width_multiplier=1) or --prune_ratio")
    return dict(self.widths)


def vgg_widths(cfg: Sequence, full_cfg: Sequence) -> Dict[str, int]:
  """conv{i} -> width for every conv whose width differs from the full cfg."""
  convs = [w for w in cfg if w != "M"]
  full_convs = [w for w in full_cfg if w != "M"]
  return {f"conv{i}": w for i, (w, f) in enumerate(zip(convs, full_convs), start=1) if w != f}


def resnet50_widths(per_block: Sequence[Sequence[int]], names=("conv1", "conv2")):
  """stage{s}_block{b}_{name} -> width from one tuple per bottleneck (16 blocks)."""
  blocks = [(s, b) for s, n in enumerate((3, 4, 6, 3), start=1) for b in range(1, n + 1)]
  assert len(per_block) == len(blocks)
  return {f"stage{s}_block{b}_{name}": w for (s, b), ws in zip(blocks, per_block)
          for name, w in zip(names, ws)}


def _is_candidate(layer) -> bool:
  return type(layer) in (L.Conv2D, ChannelGather)


# ----------------------------------------------------------------------------- base pruner


class DataDrivenPruner(Pruner):
  """Common flow: targets (variant widths or a ratio), one sampling pass, per-layer selection and
  reconstruction of the consumer's kernel, folded in by `shrink`.

  Subclasses define `VARIANTS` (variant -> FixedWidths), `_sampling()` -> dict(kind, images,
  per_class, locations), and `_select_layer(gram, kernel, keep_count)` -> (kept indices, the
  consumer's new kernel (kh, kw, |kept|, n)).
  """
  VARIANTS: Dict[str, FixedWidths] = {}
  default_ratio = 0.5

  def __init__(self, *, variant: Optional[str] = None, ratio: Optional[float] = None,
               seed: int = 0, **kwargs):
    if variant and ratio is not None:
      raise UsageError(f"{self.name} takes a variant ({', '.join(self.VARIANTS)}) or "
                       "--prune_ratio, not both")
    if ratio is not None and not 0.0 < float(ratio) < 1.0:
      raise UsageError(f"{self.name} ratio must be in (0, 1), got {ratio}")
    variant = str(variant).lower() if variant else None
    if variant is not None and variant not in self.VARIANTS:
      raise UsageError(f"{self.name} has no variant {variant!r}; choose one of: "
                       + ", ".join(f"{k} (--model={v.model})" for k, v in self.VARIANTS.items())
                       + ", or pass --prune_ratio")
    if variant is None and ratio is None:
      ratio = self.default_ratio
    super().__init__(variant=variant, ratio=None if ratio is None else float(ratio), **kwargs)
    self.seed = seed
    self.reconstruction: Dict[str, Tuple[np.ndarray, str, Tuple[int, ...]]] = {}
    self.last_statistics: Optional[Statistics] = None
    self.timings: Dict[str, float] = {}   # seconds of the last select: sampling, selection

  # -- targets
  def targets(self, model, model_name: str = "") -> Dict[str, Tuple[keras.layers.Layer, int]]:
    """Pruned layer -> (its consumer, kept channel count)."""
    if self.variant is not None:
      widths = self.VARIANTS[self.variant].resolve(model, model_name or model.name)
    else:
      names = surgery.prunable_layers(model, _is_candidate)
      widths = {n: kept_count(int(model.get_layer(n).output_shape[-1]), self.ratio) for n in names
                if find_consumer(model, n) is not None}
      if not widths:
        raise UsageError(f"{self.name} found no prunable layer feeding a conv or a pooled Dense "
                         f"in model {model.name!r}")
    out = {}
    for name, width in widths.items():
      if width >= int(model.get_layer(name).output_shape[-1]):
        continue   # a full-width entry of a paper cfg (e.g. ResNet-50-2x stage1_block1_conv1)
      consumer = find_consumer(model, name)
      if consumer is None:
        raise UsageError(f"{self.name} cannot prune layer {name!r}: its channels do not feed one "
                         "conv (or one Dense after a global pool) directly")
      out[name] = (consumer, int(width))
    return out

  def _sampling(self, num_classes: int) -> dict:
    """dict(kind=..., images=..., per_class=..., locations=...) for `sample_statistics`."""
    raise NotImplementedError

  def _select_layer(self, gram, kernel, keep_count, samples):
    """(kept input channels of the consumer, its new kernel (kh, kw, |kept|, n))."""
    raise NotImplementedError

  def select(self, model, data=None, *, model_name: str = "") -> PrunePlan:
    """Plan from the method's rule on sampled data; without data, L1-norm ranking (shape preview).

    Also stores the reconstructed consumer kernels, folded in by `shrink` (and saved beside the
    plan by `save_plan`).
    """
    model_name = model_name or model.name
    targets = self.targets(model, model_name)
    variant = self.variant if self.variant is not None else f"ratio={self.ratio:g}"
    self.reconstruction = {}
    if data is None:
      keep = {}
      for name, (_, width) in targets.items():
        layer = model.get_layer(name)
        n = int(layer.output_shape[-1])
        scores = l1_norm(layer.get_weights()[0]) if layer.get_weights() else -np.arange(n)
        keep[name] = top_k(scores, width) if width < n else full(n)
      _log.info("%s: no data given, channels ranked by L1 norm (architecture preview)", self.name)
      return PrunePlan(model=model_name, keep=keep, method=self.name, variant=variant)
    consumers = [c for c, _ in targets.values()]
    start = time.perf_counter()
    s = self._sampling(int(model.output_shape[-1]))
    stats = sample_statistics(model, consumers, data, kind=s["kind"], images=s["images"],
                              per_class=s["per_class"], locations=s["locations"], seed=self.seed,
                              desc=f"{self.name}: sampling")
    self.last_statistics = stats
    self.timings = {"sampling": time.perf_counter() - start}
    start = time.perf_counter()
    keep = {}
    for name, (consumer, width) in targets.items():
      kernel = consumer_kernel(consumer)
      kept, new_kernel = self._select_layer(stats.gram[consumer.name], kernel, width,
                                            stats.samples[consumer.name])
      keep[name] = tuple(int(i) for i in kept)
      self.reconstruction[consumer.name] = (new_kernel.astype(np.float32), fingerprint(kernel),
                                            keep[name])
    self.timings["selection"] = time.perf_counter() - start
    return PrunePlan(model=model_name, keep=keep, method=self.name, variant=variant)

  def shrink(self, model, plan: PrunePlan):
    """`surgery.shrink`, then each consumer gets its least-squares kernel when the reconstruction
    was computed on these weights for this plan (else the plain sliced weights, logged)."""
    small = surgery.shrink(model, plan)
    for consumer, (kernel, fp, kept) in self.reconstruction.items():
      producer = [n for n, k in plan.keep.items() if tuple(k) == kept and
                  find_consumer(model, n) is not None and find_consumer(model, n).name == consumer]
      if not producer or fingerprint(consumer_kernel(model.get_layer(consumer))) != fp:
        _log.info("%s: reconstruction of %s skipped (other weights or plan)", self.name, consumer)
        continue
      if consumer in plan.keep:
        kernel = np.take(kernel, plan.keep[consumer], axis=-1)
      layer = small.get_layer(consumer)
      weights = layer.get_weights()
      weights[0] = kernel.reshape(weights[0].shape)
      layer.set_weights(weights)
    return small

  def save_plan(self, plan, path: str) -> None:
    """plan.json, and the reconstructed kernels in plan.reconstruction.npz beside it."""
    super().save_plan(plan, path)
    if self.reconstruction:
      arrays = {}
      for consumer, (kernel, fp, kept) in self.reconstruction.items():
        arrays[f"{consumer}/kernel"] = kernel
        arrays[f"{consumer}/meta"] = np.array([fp, ",".join(map(str, kept))])
      np.savez(_npz_path(path), **arrays)

  def load_plan(self, path: str):
    plan = super().load_plan(path)
    try:
      with np.load(_npz_path(path)) as z:
        for key in z.files:
          if key.endswith("/kernel"):
            consumer = key[:-len("/kernel")]
            fp, kept = z[f"{consumer}/meta"].tolist()
            self.reconstruction[consumer] = (z[key], fp, tuple(int(i) for i in kept.split(",")))
    except FileNotFoundError:
      pass
    return plan


def _npz_path(plan_path: str) -> str:
  base = plan_path[:-5] if plan_path.endswith(".json") else plan_path
  return base + ".reconstruction.npz"


def least_squares(gram: np.ndarray, rows: np.ndarray, rhs: np.ndarray) -> np.ndarray:
  """argmin_w ||X_rows w - t||^2 from the Gram matrix: solves (G_rr + eps I) w = rhs.

  eps = 1e-9 * mean diag keeps exactly collinear (or all-zero) kept columns solvable.
  """
  g = gram[np.ix_(rows, rows)]
  eps = 1e-9 * max(float(np.mean(np.diag(g))) if len(rows) else 0.0, 1e-30)
  return np.linalg.solve(g + eps * np.eye(len(rows)), rhs)


__all__ = ["DataDrivenPruner", "FixedWidths", "Statistics", "find_consumer", "least_squares",
           "sample_statistics", "vgg_widths", "resnet50_widths"]
