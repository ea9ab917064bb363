"""Turning per-channel scores into kept indices (select only: no scoring, no surgery)."""
import numpy as np

from tf_rethink.util.errors import UsageError


def kept_count(channels: int, ratio: float, round_to: int = 1) -> int:
  """Channels kept when pruning a fraction `ratio`: int(channels * (1 - ratio)) (reference rule),
  then `rounded` to a multiple of `round_to`.

  The reference scripts (`res56prune.py`, `vggprune.py`) truncate. A layer is never emptied: at
  least one channel survives (only reachable on tiny width-multiplied models).
  """
  if not 0.0 <= ratio < 1.0:
    raise UsageError(f"prune ratio must be in [0, 1), got {ratio}")
  return rounded(max(1, int(channels * (1 - ratio))), channels, round_to)


def rounded(kept: int, channels: int, round_to: int = 1) -> int:
  """`kept` moved to the nearest multiple of `round_to` (ties up), at least one multiple and at
  most `channels`; layers of at most `round_to` channels keep `kept` as it is. What CPU and GPU
  kernels vectorize over (e.g. 16 output channels of float32 with AVX-512): a conv keeping 6 of
  16 channels costs what one keeping 16 costs, so rounding turns removed channels into time
  (`--round_to`, measured in tools/bench_inference.py). A deviation from the papers' widths,
  stated in the plan's variant."""
  if round_to <= 1 or channels <= round_to:
    return int(kept)
  return int(min(channels, max(round_to, round_to * int(kept / round_to + 0.5))))


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


def top_ratio(scores, ratio: float, round_to: int = 1) -> tuple:
  """`top_k` with k = kept_count(len(scores), ratio, round_to)."""
  return top_k(scores, kept_count(len(scores), ratio, round_to))


def top_in_group(scores, ratio: float, group, round_to: int = 1) -> tuple:
  """The kept channel indices of a channel group (`groups.ChannelGroup`) scored per channel.

  * Plain groups: `top_ratio` (the reference's per-layer rule), rounded to `round_to`.
  * Groups of units (grouped convs pruned by whole conv groups): each unit is scored by the sum of
    its channels' scores; the int(n_units * (1 - ratio)) best units survive, whole.
  * Balanced groups (a grouped conv's outputs, blocks of `group.balance` channels): every block
    keeps its int(b * (1 - ratio)) best channels, so all conv groups stay equally wide.
  """
  scores = np.asarray(scores, np.float64)
  if group.units:
    unit_scores = [float(scores[list(u)].sum()) for u in group.units]
    kept_units = top_ratio(unit_scores, ratio)     # whole conv groups: not rounded further
    return tuple(sorted(i for u in kept_units for i in group.units[u]))
  if group.balance:
    b = int(group.balance)
    out = []
    for start in range(0, len(scores), b):
      out.extend(start + i for i in top_ratio(scores[start:start + b], ratio))
    return tuple(out)
  return top_ratio(scores, ratio, round_to)
