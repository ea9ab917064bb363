"""ThiNet (Luo, Wu, Lin, "ThiNet: A Filter Level Pruning Method for Deep Neural Network
Compression", ICCV 2017, arXiv 1707.06342), as used in Liu et al. (ICLR 2019), spec 2.2.

Rule: layer i is pruned with the statistics of layer i+1 (its consumer). Sample m training
entries of the consumer's output: 10 images per class, 10 random (location, output channel) pairs
per image. For a sample, input channel c contributes xhat_c = sum_{kh,kw} x[kh,kw,c] W[kh,kw,c,o]
to the output y = sum_c xhat_c (+ bias). Greedily grow the removed set T, each step adding the
channel that minimizes sum_samples (sum_{c in T} xhat_c)^2, until |T| = C - C'. Then rescale the
kept channels by least squares, w = argmin sum_samples (y - sum_{c kept} w_c xhat_c)^2, folded
into the consumer's input weights, and remove T from layer i (filters) and layer i+1 (inputs).

Vectorized: only the Gram matrix G = sum xhat xhat^T (C x C, accumulated while streaming the
data, `data_driven.sample_statistics`) is needed. With r = sum_{t in T} G[t, :] and
s = ||sum_{t in T} xhat_t||^2, adding c costs s + 2 r_c + G_cc: each greedy step evaluates every
candidate with one vector operation; the least-squares scales solve G_KK w = G_K 1.

Variants (the paper's predefined targets, spec 2.2):
* `--model=vgg16_imagenet --variant=conv`: ThiNet-Conv, conv1..conv10 at half width.
* `--model=vgg16_imagenet_gap --variant=gap` / `tiny`: ThiNet-GAP / ThiNet-Tiny (GAP head).
* `--model=resnet50 --variant=30|50|70`: conv1 and conv2 of every bottleneck at the stage widths
  of ThiNet-30/50/70.
`--prune_ratio=p` (default 0.5) instead prunes every conv whose channels feed one conv (or one
Dense after a global pool) directly: e.g. all 13 convs of the CIFAR VGG, the first two convs of
every ResNet bottleneck, the first conv of every CIFAR ResNet block. Without data (--dry_run) the
channels are ranked by L1 norm: the architecture is the same.

Deviations: one sampling pass for all layers, no fine-tuning between layers, and the rescaling
is ridge-regularized toward 1 (plain slicing) and kept only when it lowers the held-out error
(see `data_driven`).
"""
import numpy as np

from tf_rethink.models.pruned_imagenet import VGG16_GAP_CFG
from tf_rethink.models.vgg import IMAGENET_VGG16_CFG
from tf_rethink.pruning.data_driven import (RIDGE_GRID, DataDrivenPruner, FixedWidths,
                                            least_squares, resnet50_widths, ridge, vgg_widths)
from tf_rethink.pruning.methods.base import Option
from tf_rethink.pruning.methods.registry import METHODS
from tf_rethink.util.errors import UsageError

_THINET_CONV = [32, 32, "M", 64, 64, "M", 128, 128, 128, "M", 256, 256, 256, "M", 512, 512, 512,
                "M"]
_THINET_GAP = [32, 32, "M", 64, 64, "M", 128, 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
_THINET_TINY = [16, 16, "M", 32, 32, "M", 64, 64, 64, "M", 128, 128, 128, "M", 128, 128, 256]
_RESNET_STAGES = {"30": (19, 38, 76, 153), "50": (32, 64, 128, 256), "70": (44, 89, 179, 358)}


def _resnet_variant(x: str) -> FixedWidths:
  stages = _RESNET_STAGES[x]
  per_block = [(w, w) for w, n in zip(stages, (3, 4, 6, 3)) for _ in range(n)]
  flops = {"30": "2.361 G", "50": "3.674 G", "70": "5.235 G"}[x]
  return FixedWidths("resnet50", resnet50_widths(per_block), f"ThiNet-{x}, FLOPs {flops}")


VARIANTS = {
    "conv": FixedWidths("vgg16_imagenet", vgg_widths(_THINET_CONV, IMAGENET_VGG16_CFG),
                        "ThiNet-Conv, FLOPs 9.60 G"),
    "gap": FixedWidths("vgg16_imagenet_gap", vgg_widths(_THINET_GAP, VGG16_GAP_CFG),
                       "ThiNet-GAP, FLOPs 9.35 G, params 8.32 M"),
    "tiny": FixedWidths("vgg16_imagenet_gap", vgg_widths(_THINET_TINY, VGG16_GAP_CFG),
                        "ThiNet-Tiny, FLOPs 2.02 G, params 1.32 M"),
    **{x: _resnet_variant(x) for x in ("30", "50", "70")},
}


def greedy_remove(gram: np.ndarray, count: int) -> list:
  """ThiNet's greedy: channels added to T in order, minimizing ||sum_{c in T} xhat_c||^2.

  Args:
    gram: G = sum_samples xhat xhat^T (C x C).
    count: |T|, the number of channels to remove.
  """
  g = np.asarray(gram, np.float64)
  n = g.shape[0]
  run = np.zeros(n)          # sum_{t in T} G[t, :]
  energy = 0.0               # ||sum_{t in T} xhat_t||^2
  diag = np.diag(g).copy()
  removed = np.zeros(n, bool)
  order = []
  for _ in range(count):
    cost = energy + 2.0 * run + diag
    cost[removed] = np.inf
    c = int(np.argmin(cost))
    order.append(c)
    removed[c] = True
    energy = float(cost[c])
    run += g[c]
  return order


def rescale(gram: np.ndarray, kept, lam: float = 0.0) -> np.ndarray:
  """Scales w of the kept channels: argmin ||sum_c xhat_c - sum_{k} w_k xhat_k||^2, with
  lam > 0 the ridge toward w = 1 (plain slicing)."""
  kept = np.asarray(kept)
  rhs = gram[kept].sum(axis=1)
  if lam == 0.0:
    return least_squares(gram, kept, rhs)
  return ridge(gram, kept, rhs, np.ones(len(kept)), lam)


def output_error(gram: np.ndarray, kept, scales) -> float:
  """||sum_c xhat_c - sum_k w_k xhat_k||^2 per sample, from a Gram matrix (held-out)."""
  kept = np.asarray(kept)
  w = np.asarray(scales, np.float64)
  total = float(gram.sum())
  return total - 2.0 * float(w @ gram[kept].sum(axis=1)) + float(w @ gram[np.ix_(kept, kept)] @ w)


@METHODS.register("thinet")
class ThiNetPruner(DataDrivenPruner):
  """ThiNet channel selection by greedy reconstruction with least-squares rescaling."""
  name = "thinet"
  citation = "Luo et al., ThiNet, ICCV 2017 (arXiv 1707.06342)"
  VARIANTS = VARIANTS
  options = {
      "thinet_images_per_class": Option(int, 10, "Sampled training images per class (paper: 10)."),
      "thinet_locations": Option(int, 10, "Sampled (location, output channel) pairs per image "
                                 "(paper: 10)."),
  }

  images_option = "--thinet_images_per_class"

  def __init__(self, *, thinet_images_per_class: int = 10, thinet_locations: int = 10, **kwargs):
    super().__init__(**kwargs)
    if thinet_images_per_class < 1 or thinet_locations < 1:
      raise UsageError("--thinet_images_per_class and --thinet_locations must be >= 1")
    self.images_per_class = int(thinet_images_per_class)
    self.locations = int(thinet_locations)

  def _sampling(self, num_classes: int) -> dict:
    return dict(kind="thinet", images=self.images_per_class * num_classes,
                per_class=self.images_per_class, locations=self.locations)

  def _select(self, gram, kernel, keep_count):
    n = gram.shape[0]
    removed = set(greedy_remove(gram, n - keep_count))
    return np.array([c for c in range(n) if c not in removed])

  def _plain_error(self, held, kernel, kept) -> float:
    return output_error(held, kept, np.ones(len(kept)))

  def _candidates(self, gram, held, kernel, kept):
    kept = np.asarray(kept)
    for lam in RIDGE_GRID:
      scales = rescale(gram, kept, lam)
      yield lam, kernel[:, :, kept, :] * scales[None, None, :, None], output_error(held, kept,
                                                                                   scales)
