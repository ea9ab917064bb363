"""Turning per-channel scores into kept indices (select only: no scoring, no surgery)."""
import numpy as np

from tf_rethink.util.errors import UsageError


def kept_count(channels: int, ratio: float) -> int:
  """Channels kept when pruning a fraction `ratio`: int(channels * (1 - ratio)) (reference rule).

  The reference scripts (`res56prune.py`, `vggprune.py`) truncate. A layer is never emptied: at
  least one channel survives (only reachable on tiny width-multiplied models).
  """
  if not 0.0 <= ratio < 1.0:
    raise UsageError(f"prune ratio must be in [0, 1), got {ratio}")
  return max(1, int(channels * (1 - ratio)))


def top_k(scores, k: int) -> tuple:
  """Indices of the k largest scores, returned sorted ascending.

  Ties follow the reference's argsort order: `argsort(scores)[::-1][:k]` with a stable argsort, so
  among equal scores the channel with the larger index is kept first.
  """
  scores = np.asarray(scores)
  if scores.ndim != 1:
    raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
  if not 1 <= k <= scores.shape[0]:
    raise UsageError(f"cannot keep {k} of {scores.shape[0]} channels; keep between 1 and "
                     f"{scores.shape[0]}")
  order = np.argsort(scores, kind="stable")[::-1][:k]
  return tuple(sorted(int(i) for i in order))


def top_ratio(scores, ratio: float) -> tuple:
  """`top_k` with k = kept_count(len(scores), ratio)."""
  return top_k(scores, kept_count(len(scores), ratio))
