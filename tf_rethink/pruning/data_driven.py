"""Shared machinery of the data-driven methods (ThiNet, regression-based feature reconstruction).

Both prune the output channels of a layer i with the statistics of the layer that consumes them,
layer i+1 (`sampling`: consumers, streaming Gram matrices with bounded memory; ThiNet samples 10
images per class and 10 locations each, He et al. 5000 images and 10 locations each). All
selection and least-squares steps work on the Gram matrices (vectorized, no loop over samples); a
method subclasses `DataDrivenPruner` with its selection rule and its reconstruction.

Reconstructions never make a model worse (a deviation from the papers, which trust them):
* each is regularized toward plain slicing (ridge: lambda ||w - w_slice||^2, so lambda -> inf is
  plain slicing), lambda chosen on the held-out fifth of the calibration images among
  `RIDGE_GRID`, and kept only when it reduces the consumer's output error on those held-out
  samples (else that layer uses plain slicing, noted in the plan);
* then the whole pruned model is compared with the full one on held-out images: if the
  reconstructed model is further from it than the plain-sliced one, every reconstruction is
  dropped (noted in the plan);
* too few calibration samples for a layer (fewer fit samples than the consumer's input channels,
  the unknowns of its selection) is a one-line error naming how many images are needed.

Deviation (documented): the papers prune layer by layer and re-sample the already-pruned model
before the next layer (ThiNet also fine-tunes in between); here every layer's statistics come from
the same pass over the unpruned model, so the layers are pruned and reconstructed independently.
The architecture (what the paper's Scratch-E/B regimes train) is unaffected; the fine-tuned
starting point is a one-shot approximation of the sequential one.
"""
import dataclasses
import logging
import math
import time
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from tf_rethink.pruning.graph import Graph, view
from tf_rethink.pruning.groups import channel_groups
from tf_rethink.pruning.methods.base import Pruner
from tf_rethink.pruning.plan import Plan, Reconstruction, fingerprint
from tf_rethink.pruning.rules import full
from tf_rethink.pruning.sampling import (Statistics, consumer_kernel, find_consumer,
                                         sample_statistics, HELD_OUT_EVERY)
from tf_rethink.pruning.scores import l1_norm
from tf_rethink.pruning.select import kept_count, rounded, top_k
from tf_rethink.util import progress
from tf_rethink.util.errors import UsageError

_log = logging.getLogger(__name__)
RIDGE_GRID = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)   # x the mean diagonal of the Gram block


@dataclasses.dataclass(frozen=True)
class FixedWidths:
  """A paper architecture as kept widths of named layers of one registered model."""
  model: str
  widths: Mapping[str, int]
  paper: str = ""     # e.g. "FLOPs 3.67 G"

  def resolve(self, model, model_name: str) -> Dict[str, int]:
    if model_name != self.model:
      raise UsageError(f"this variant is defined for --model={self.model}, not {model_name!r}")
    graph = view(model)
    for name, width in self.widths.items():
      if name not in graph.keys():
        raise UsageError(f"model {model_name!r} has no layer {name!r}; the variant needs the "
                         "paper's full-width model (width_multiplier=1)")
      n = int(graph.shape(graph.calls_of(name)[0].outputs[0])[-1])
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
  """Layers whose outputs the data-driven methods prune: plain Conv2D and channel gathers."""
  return type(layer).__name__ in ("Conv2D", "ChannelGather", "ChannelSelection")


def ridge(gram: np.ndarray, rows, rhs: np.ndarray, prior: np.ndarray, lam: float) -> np.ndarray:
  """argmin_w ||X_rows w - t||^2 + lam ||w - prior||^2 from the Gram matrix:
  (G_rr + lam I) w = rhs + lam prior, with lam scaled by mean diag(G_rr) (and 1e-9 of it always,
  so collinear or all-zero columns stay solvable)."""
  g = gram[np.ix_(rows, rows)]
  scale = max(float(np.mean(np.diag(g))) if len(rows) else 0.0, 1e-30)
  eye = np.eye(len(rows))
  return np.linalg.solve(g + (lam + 1e-9) * scale * eye, rhs + lam * scale * prior)


def least_squares(gram: np.ndarray, rows, rhs: np.ndarray) -> np.ndarray:
  """argmin_w ||X_rows w - t||^2 from the Gram matrix (the papers' unregularized solution)."""
  return ridge(gram, rows, rhs, np.zeros_like(rhs), 0.0)


@dataclasses.dataclass(frozen=True)
class LayerChoice:
  """One consumer's outcome: kept input channels, its new kernel (or None: plain slicing), and
  the held-out errors of plain slicing and of the chosen kernel."""
  kept: Tuple[int, ...]
  kernel: Optional[np.ndarray]
  plain_error: float
  error: float
  ridge: Optional[float] = None


class DataDrivenPruner(Pruner):
  """Common flow: targets (variant widths or a ratio), one sampling pass, per-layer selection and
  a checked reconstruction of each consumer's kernel, carried by the plan.

  Subclasses define `VARIANTS` (variant -> FixedWidths), `_sampling()` -> dict(kind, images,
  per_class, locations), `_select(fit_gram, kernel, keep_count)` -> kept input channels,
  `_candidates(fit_gram, held_gram, kernel, kept)` -> [(ridge lambda, kernel (kh, kw, |kept|, n),
  held-out error)] and `_plain_error(held_gram, kernel, kept)`.
  """
  VARIANTS: Dict[str, FixedWidths] = {}
  default_ratio = 0.5
  locations_option = ""     # the flag that sets locations per image (for error messages)
  images_option = ""        # the flag that sets the number of images

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
    self.last_statistics: Optional[Statistics] = None
    self.timings: Dict[str, float] = {}   # seconds of the last select: sampling, selection

  # -- targets
  def targets(self, model, model_name: str = "") -> Dict[str, Tuple[object, int]]:
    """Pruned layer key -> (its consumer call, kept channel count)."""
    graph = view(model)
    if self.variant is not None:
      widths = self.VARIANTS[self.variant].resolve(model, model_name or model.name)
    else:
      report = channel_groups(graph)
      names = [n for n in report.uncoupled() if _is_candidate(graph.layer(n))]
      widths = {n: kept_count(_width(graph, n), self.ratio, self.round_to) for n in names
                if find_consumer(graph, n) is not None}
      if not widths:
        raise UsageError(f"{self.name} found no prunable layer feeding a conv or a pooled Dense "
                         f"in model {model.name!r}")
    out = {}
    for name, width in widths.items():
      width = rounded(width, _width(graph, name), self.round_to)
      if width >= _width(graph, name):
        continue   # a full-width entry of a paper cfg (e.g. ResNet-50-2x stage1_block1_conv1)
      consumer = find_consumer(graph, name)
      if consumer is None:
        raise UsageError(f"{self.name} cannot prune layer {name!r}: its channels do not feed one "
                         "conv (or one Dense after a global pool) directly")
      out[name] = (consumer, int(width))
    return out

  def _sampling(self, num_classes: int) -> dict:
    raise NotImplementedError

  def _select(self, gram, kernel, keep_count) -> np.ndarray:
    raise NotImplementedError

  def _candidates(self, gram, held, kernel, kept):
    raise NotImplementedError

  def _plain_error(self, held, kernel, kept) -> float:
    raise NotImplementedError

  def choose(self, gram, held, kernel, keep_count) -> LayerChoice:
    """Selection on the fit split, then the reconstruction with the lowest held-out error, or
    plain slicing when none beats it."""
    kept = tuple(int(i) for i in self._select(gram, kernel, keep_count))
    plain = self._plain_error(held, kernel, kept)
    best = LayerChoice(kept, None, plain, plain)
    for lam, new_kernel, error in self._candidates(gram, held, kernel, kept):
      if error < best.error:
        best = LayerChoice(kept, new_kernel, plain, error, lam)
    return best

  def select(self, model, data=None, *, model_name: str = "") -> Plan:
    """Plan from the method's rule on sampled data; without data, L1-norm ranking (an
    architecture preview: the pruned widths are the same)."""
    model_name = model_name or model.name
    graph = view(model)
    targets = self.targets(model, model_name)
    variant = self.describe(self.variant if self.variant is not None else f"ratio={self.ratio:g}")
    if data is None:
      keep = {}
      for name, (_, width) in targets.items():
        layer = graph.layer(name)
        n = _width(graph, name)
        scores = l1_norm(layer.get_weights()[0]) if layer.get_weights() else -np.arange(n)
        keep[name] = top_k(scores, width) if width < n else full(n)
      _log.info("%s: no data given, channels ranked by L1 norm (architecture preview)", self.name)
      return Plan(model=model_name, keep=keep, method=self.name, variant=variant).stamped(model)
    consumers = [c for c, _ in targets.values()]
    start = time.perf_counter()
    s = self._sampling(int(graph.shape(graph.outputs[0])[-1]))
    stats = sample_statistics(graph, consumers, data, kind=s["kind"], images=s["images"],
                              per_class=s["per_class"], locations=s["locations"], seed=self.seed,
                              desc=f"{self.name}: sampling")
    self.last_statistics = stats
    self._check_samples(graph, consumers, stats, s["locations"])
    self.timings = {"sampling": time.perf_counter() - start}
    start = time.perf_counter()
    keep, recon, notes = {}, {}, []
    for name, (consumer, width) in progress.track(list(targets.items()),
                                                  f"{self.name}: selection", unit="layers"):
      kernel = consumer_kernel(consumer.layer)
      choice = self.choose(stats.gram[consumer.key], stats.held_out_gram[consumer.key], kernel,
                           width)
      keep[name] = choice.kept
      if choice.kernel is None:
        notes.append(f"{consumer.key}: plain slicing (held-out error {choice.plain_error:.3g}; "
                     "no reconstruction reduced it)")
      else:
        recon[consumer.key] = Reconstruction(choice.kernel.astype(np.float32),
                                             fingerprint(consumer.layer.get_weights()[0]))
    plan = Plan(model=model_name, keep=keep, method=self.name, variant=variant,
                reconstruction=recon, notes=tuple(notes)).stamped(model)
    plan = self._check_whole_model(model, plan, stats)
    self.timings["selection"] = time.perf_counter() - start
    return plan

  def _check_samples(self, graph: Graph, consumers, stats: Statistics, locations: int) -> None:
    for consumer in consumers:
      unknowns = int(graph.shape(consumer.inputs[0])[-1])
      have = stats.samples[consumer.key]
      if have < unknowns or stats.held_out_samples[consumer.key] == 0:
        per_image = locations if len(graph.shape(consumer.inputs[0])) > 2 else 1
        images = math.ceil(math.ceil(unknowns / per_image) * HELD_OUT_EVERY /
                           (HELD_OUT_EVERY - 1))
        raise UsageError(
            f"{self.name}: layer {consumer.key!r} has {unknowns} input channels, so it needs at "
            f"least {unknowns} calibration samples ({per_image} per image) besides the held-out "
            f"fifth; the data gave {have} from {stats.images} images. Pass at least {images} "
            f"images ({self.images_option or 'more data'})")

  def _check_whole_model(self, model, plan: Plan, stats: Statistics) -> Plan:
    """Drops every reconstruction when the reconstructed model is further from the full one on
    held-out images than the plainly sliced model."""
    if not plan.reconstruction or not stats.held_out_images:
      return plan
    x = np.stack(stats.held_out_images).astype(np.float32)
    full_out = _outputs(model, x)
    plain = plan.replace(reconstruction={})
    err_plain = float(np.abs(_outputs(plain.apply(model), x) - full_out).mean())
    err_rec = float(np.abs(_outputs(plan.apply(model), x) - full_out).mean())
    if err_rec <= err_plain:
      return plan.replace(notes=plan.notes + (
          f"whole model on {len(x)} held-out images: mean |output - full| {err_rec:.4g} "
          f"reconstructed vs {err_plain:.4g} plain",))
    _log.warning("%s: the reconstructed model is further from the full one than plain slicing "
                 "on held-out images (%.4g vs %.4g); reconstructions dropped", self.name,
                 err_rec, err_plain)
    return plain.replace(notes=plan.notes + (
        f"reconstructions dropped: on {len(x)} held-out images the reconstructed model's mean "
        f"|output - full| was {err_rec:.4g} vs {err_plain:.4g} with plain slicing",))


def _width(graph: Graph, key: str) -> int:
  return int(graph.shape(graph.calls_of(key)[0].outputs[0])[-1])


def _outputs(model, x) -> np.ndarray:
  out = model(x, training=False)
  out = out[0] if isinstance(out, (list, tuple)) else out
  return np.asarray(out, np.float64)


__all__ = ["DataDrivenPruner", "FixedWidths", "LayerChoice", "find_consumer", "least_squares",
           "ridge", "sample_statistics", "vgg_widths", "resnet50_widths"]
