"""The check every export runs on its reload: the same outputs as the in-memory model."""
import numpy as np


def check_close(got, want, atol: float, where: str) -> None:
  """RuntimeError unless `got` has `want`'s shape and agrees with it to `atol` times the largest
  |want| (at least `atol`), and to a relative 1e-4 per element.

  The absolute part scales with the outputs because a re-computed model's float32 rounding does:
  folding batch norms into the convs changes every layer's rounding in proportion to its
  activations (a trained Network Slimming VGG-19, logits up to 9.6: folded and unfolded differ
  by 2.3e-4, while the relative difference to the largest logit is 2.4e-5)."""
  got, want = np.asarray(got), np.asarray(want)
  scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
  if got.shape != want.shape or not np.allclose(got, want, atol=atol * scale, rtol=1e-4):
    diff = (f"max abs diff {np.abs(got - want).max():.3g}, largest output {scale:.3g}"
            if got.shape == want.shape else f"shape {got.shape} vs {want.shape}")
    raise RuntimeError(f"the reloaded export at {where} disagrees with the in-memory model "
                       f"({diff})")
