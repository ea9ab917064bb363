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


AUTO = "auto"


def hardware_round_to(isa=None, gpus=None) -> int:
  """The channel multiple `round_to="auto"` means on this machine: the channel block of the
  kernels that will run the pruned model.

  * a GPU: 8 (tensor cores take float16/bfloat16 channels in multiples of 8);
  * a CPU with AVX-512: 16 (oneDNN's blocked layout nChw16c: 16 float32 channels per vector);
  * a CPU with AVX2: 8 (nChw8c);
  * anything else: 1 (no rounding).
  Measured on a 2-core AVX2 EPYC (tools/bench_inference.py, README): round_to=8 raised speedup /
  FLOPs ratio of ResNet-56-B from 0.67 to 0.83 at batch 1 and 0.66 to 0.86 at batch 64, and of
  the slimming VGG-19 at batch 64 from 0.89 to 0.97. `isa` ({flag: bool}) and `gpus` (a count)
  default to this machine's (util.machine.isa, tf.config)."""
  if gpus is None:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    gpus = len(tf.config.list_physical_devices("GPU"))
  if gpus:
    return 8
  if isa is None:
    from tf_rethink.util import machine  # pylint: disable=import-outside-toplevel
    isa = machine.isa()
  if isa.get("avx512f"):
    return 16
  return 8 if isa.get("avx2") else 1


def resolve_round_to(value) -> int:
  """`value` as a positive int: an int, a string of one, or "auto" (`hardware_round_to`)."""
  given = value
  if isinstance(value, str) and value.strip().lower() == AUTO:
    return hardware_round_to()
  if isinstance(value, str):
    try:
      value = int(value.strip())
    except ValueError:
      value = None
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise UsageError(f"round_to={given!r} must be a positive integer (1: the paper's widths) or "
                     f"'{AUTO}' (this machine's channel block: {hardware_round_to()})")
  return value


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
