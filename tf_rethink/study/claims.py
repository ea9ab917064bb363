"""The rule that marks a paper's qualitative claim as holding or not on our runs (pure, no TF).

A claim compares two regimes A and B of one experiment over seeds (e.g. A = Scratch-B, B =
fine-tuned). With d = mean(A) - mean(B) and the pooled standard deviation
s = sqrt((s_A^2 + s_B^2) / 2) (sample stds, ddof=1; equal seed counts), the verdict is:
  not_worse  ("A is comparable to or better than B")  holds iff d >= -s
  better     ("A beats B")                             holds iff d >  s
  no_gain    ("A brings no gain over B")               holds iff d <= s
With fewer than 2 seeds on either side the verdict is "undetermined" (no std to compare with).
Welch's t = d / sqrt(s_A^2/n_A + s_B^2/n_B) is reported beside it, for the reader, not used.
"""
import dataclasses
import math
from typing import Optional, Sequence

from tf_rethink.run.repeats import mean_std

KINDS = {
    "not_worse": "comparable to or better than",
    "better": "better than",
    "no_gain": "no better than",
}
HOLDS, FAILS, UNDETERMINED = "holds", "does not hold", "undetermined"
RULE_TEXT = ("d = mean(A) - mean(B), s = sqrt((std_A^2 + std_B^2) / 2) (sample stds over seeds); "
             "'A comparable to or better than B' holds iff d >= -s; 'A better than B' iff d > s; "
             "'A no better than B' iff d <= s; fewer than 2 seeds: undetermined. Welch's t is "
             "shown for reference.")


@dataclasses.dataclass(frozen=True)
class Verdict:
  kind: str
  d: float            # mean(A) - mean(B), percentage points
  pooled_std: float
  welch_t: Optional[float]
  verdict: str        # HOLDS | FAILS | UNDETERMINED


def judge(kind: str, a: Sequence[float], b: Sequence[float]) -> Verdict:
  """The verdict of claim `kind` (a key of KINDS) for the per-seed values `a` and `b`."""
  if kind not in KINDS:
    raise ValueError(f"unknown claim kind {kind!r}; one of {', '.join(KINDS)}")
  (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
  d = ma - mb
  pooled = math.sqrt((sa ** 2 + sb ** 2) / 2.0) if a and b else float("nan")
  se = math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b)) if len(a) > 1 and len(b) > 1 else 0.0
  welch = d / se if se > 0 else None
  if len(a) < 2 or len(b) < 2:
    return Verdict(kind, d, pooled, welch, UNDETERMINED)
  ok = {"not_worse": d >= -pooled, "better": d > pooled, "no_gain": d <= pooled}[kind]
  return Verdict(kind, d, pooled, welch, HOLDS if ok else FAILS)
