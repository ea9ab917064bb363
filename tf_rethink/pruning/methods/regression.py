"""Regression-based feature reconstruction (He, Zhang, Sun, "Channel Pruning for Accelerating Very
Deep Neural Networks", ICCV 2017, arXiv 1707.06168), as used in Liu et al. (ICLR 2019), spec 2.3.

Rule, per pruned layer, on N sampled patches of its consumer (5000 images, 10 locations each):
input channel c contributes Z_c = X_c W_c (N x n) to the consumer output Y = sum_c Z_c.
1. Channel selection (LASSO): minimize ||Y - sum_c beta_c Z_c||_F^2 + lambda ||beta||_1 and raise
   lambda until at most c' coefficients are nonzero; the nonzero channels survive.
2. Reconstruction (least squares): the consumer's weights on the kept channels become
   W' = argmin ||Y - X_K W'||_F^2.

Vectorized on Gram matrices: streaming accumulates M = sum_patches p p^T ((kh kw C)^2, channel
fastest). Then <Z_c, Z_d> = A_cd = sum_{k,k'} M[(k,c),(k',d)] (W W^T)[(k,c),(k',d)], <Z_c, Y> =
(A 1)_c; the LASSO runs on (A, A 1) (FISTA, warm-started, bisection on lambda in log scale), and
the reconstruction solves M_KK W' = (M W)_K.

Variants (spec 2.3):
* `--model=vgg16_imagenet --variant=5x`: VGG-16-5x widths (conv1..conv10; conv5_x unpruned).
* `--model=resnet50_select --variant=2x`: ResNet-50-2x, per bottleneck [selected block-input
  channels (the `..._select` ChannelGather), conv1, conv2] widths from the reference.
`--prune_ratio=p` (default 0.5) prunes every conv feeding one conv (or one pooled Dense) directly.
Without data (--dry_run) channels are ranked by L1 norm (the first ones for a ChannelGather).

Deviations: the paper takes inputs from the already-pruned model and targets from the original
one; here both come from one pass over the original model, and the reconstruction is
ridge-regularized toward the sliced kernel and kept only when it lowers the held-out error (see
`data_driven`).
"""
import numpy as np

from tf_rethink.models.vgg import IMAGENET_VGG16_CFG
from tf_rethink.pruning.data_driven import (RIDGE_GRID, DataDrivenPruner, FixedWidths,
                                            least_squares, resnet50_widths, ridge, vgg_widths)
from tf_rethink.pruning.methods.base import Option
from tf_rethink.pruning.methods.registry import METHODS
from tf_rethink.util.errors import UsageError

_VGG_5X = [24, 22, "M", 41, 51, "M", 108, 89, 111, "M", 184, 276, 228, "M", 512, 512, 512, "M"]
_RESNET_2X = [35, 64, 55, 101, 51, 39, 97, 50, 37, 144, 128, 106, 205, 105, 72, 198, 105, 72,
              288, 128, 110, 278, 256, 225, 418, 209, 147, 407, 204, 158, 423, 212, 155, 412, 211,
              148, 595, 256, 213, 606, 512, 433, 1222, 512, 437, 1147, 512, 440]


def _resnet_2x():
  triples = [tuple(_RESNET_2X[i:i + 3]) for i in range(0, 48, 3)]
  widths = resnet50_widths(triples, names=("select", "conv1", "conv2"))
  return FixedWidths("resnet50_select", widths, "ResNet-50-2x, FLOPs 5.49 G")


VARIANTS = {
    "5x": FixedWidths("vgg16_imagenet", vgg_widths(_VGG_5X, IMAGENET_VGG16_CFG),
                      "VGG-16-5x, FLOPs 7.04 G"),
    "2x": _resnet_2x(),
}


def lasso(a: np.ndarray, b: np.ndarray, lam: float, beta=None, iters: int = 500,
          tol: float = 1e-9, lip: float = None) -> np.ndarray:
  """FISTA for min_beta beta^T a beta - 2 b^T beta + lam ||beta||_1 (a symmetric PSD).

  `lip`: the gradient's Lipschitz constant 2 lambda_max(a) (computed when not given).
  """
  n = a.shape[0]
  if lip is None:
    lip = 2.0 * max(float(np.linalg.eigvalsh(a)[-1]), 1e-30)
  x = np.zeros(n) if beta is None else np.array(beta, np.float64)
  y, t = x.copy(), 1.0
  for _ in range(iters):
    z = y - (2.0 * (a @ y - b)) / lip
    x_new = np.sign(z) * np.maximum(np.abs(z) - lam / lip, 0.0)
    t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
    y = x_new + ((t - 1.0) / t_new) * (x_new - x)
    done = np.max(np.abs(x_new - x)) <= tol * max(1.0, np.max(np.abs(x_new)))
    x, t = x_new, t_new
    if done:
      break
  return x


def lasso_select(a: np.ndarray, b: np.ndarray, keep: int, steps: int = 30) -> np.ndarray:
  """He et al.'s selection: raise lambda until at most `keep` betas are nonzero.

  Bisection on log(lambda) between ~0 and lambda_max = 2 max|b| (where beta = 0). Returns the
  `keep` kept indices: the nonzeros at the smallest lambda found with <= keep of them, completed
  (if fewer) by the largest |beta| at the next smaller lambda tried.
  """
  scale = float(np.mean(np.diag(a))) or 1.0
  a, b = a / scale, b / scale
  n = a.shape[0]
  if keep >= n:
    return np.arange(n)
  lip = 2.0 * max(float(np.linalg.eigvalsh(a)[-1]), 1e-30)
  hi = 2.0 * float(np.max(np.abs(b))) + 1e-30
  lo = hi * 1e-8
  beta_hi, beta_lo = np.zeros(n), lasso(a, b, lo, lip=lip)
  if np.count_nonzero(beta_lo) <= keep:
    beta_hi = beta_lo
  else:
    warm = beta_lo
    for _ in range(steps):
      mid = float(np.sqrt(lo * hi))
      beta = lasso(a, b, mid, warm, lip=lip)
      warm = beta
      nnz = np.count_nonzero(beta)
      if nnz > keep:
        lo, beta_lo = mid, beta
      else:
        hi, beta_hi = mid, beta
        if nnz == keep:
          break
  kept = list(np.flatnonzero(beta_hi))
  if len(kept) < keep:
    rest = [i for i in np.argsort(-np.abs(beta_lo), kind="stable") if i not in set(kept)]
    kept += rest[:keep - len(kept)]
  return np.array(sorted(int(i) for i in kept))


def channel_gram(m: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """A_cd = <Z_c, Z_d> from the patch Gram m ((k C)^2) and the kernel (kh, kw, C, n)."""
  kh, kw, c, n = kernel.shape
  w = kernel.reshape(kh * kw * c, n).astype(np.float64)
  return (m * (w @ w.T)).reshape(kh * kw, c, kh * kw, c).sum(axis=(0, 2))


def _rows(kernel, kept) -> np.ndarray:
  kh, kw, c, _ = kernel.shape
  return (np.arange(kh * kw)[:, None] * c + np.asarray(kept)[None, :]).reshape(-1)


def reconstruct(m: np.ndarray, kernel: np.ndarray, kept, lam: float = 0.0) -> np.ndarray:
  """W' = argmin ||X W - X_K W'||^2 on the kept input channels: (kh, kw, |K|, n); with lam > 0
  the ridge toward the sliced kernel W_K."""
  kh, kw, c, n = kernel.shape
  w = kernel.reshape(kh * kw * c, n).astype(np.float64)
  rows = _rows(kernel, kept)
  rhs = m[rows] @ w
  new = least_squares(m, rows, rhs) if lam == 0.0 else ridge(m, rows, rhs, w[rows], lam)
  return new.reshape(kh, kw, len(kept), n)


def output_error(m: np.ndarray, kernel: np.ndarray, kept, new_kernel: np.ndarray) -> float:
  """||X W - X_K W'||_F^2 from a patch Gram matrix (held-out)."""
  kh, kw, c, n = kernel.shape
  w = kernel.reshape(kh * kw * c, n).astype(np.float64)
  rows = _rows(kernel, kept)
  v = np.asarray(new_kernel, np.float64).reshape(len(rows), n)
  return float(np.trace(w.T @ m @ w) - 2.0 * np.trace(v.T @ m[rows] @ w)
               + np.trace(v.T @ m[np.ix_(rows, rows)] @ v))


@METHODS.register("regression")
class RegressionPruner(DataDrivenPruner):
  """LASSO channel selection + least-squares reconstruction of the consumer's weights."""
  name = "regression"
  citation = "He, Zhang, Sun, Channel Pruning for Accelerating Very Deep Neural Networks, ICCV 2017"
  VARIANTS = VARIANTS
  options = {
      "regression_images": Option(int, 5000, "Sampled training images (paper: 5000)."),
      "regression_locations": Option(int, 10, "Sampled locations per image (paper: 10)."),
  }
  images_option = "--regression_images"

  def __init__(self, *, regression_images: int = 5000, regression_locations: int = 10, **kwargs):
    super().__init__(**kwargs)
    if regression_images < 1 or regression_locations < 1:
      raise UsageError("--regression_images and --regression_locations must be >= 1")
    self.images = int(regression_images)
    self.locations = int(regression_locations)

  def _sampling(self, num_classes: int) -> dict:
    return dict(kind="patch", images=self.images, per_class=-(-self.images // num_classes),
                locations=self.locations)

  def _select(self, gram, kernel, keep_count):
    a = channel_gram(gram, kernel)
    return lasso_select(a, a.sum(axis=1), keep_count)

  def _plain_error(self, held, kernel, kept) -> float:
    return output_error(held, kernel, kept, kernel[:, :, np.asarray(kept), :])

  def _candidates(self, gram, held, kernel, kept):
    for lam in RIDGE_GRID:
      new = reconstruct(gram, kernel, kept, lam)
      yield lam, new, output_error(held, kernel, kept, new)
