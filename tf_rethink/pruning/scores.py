"""Per-output-channel importance criteria (score only: no selection, no surgery).

Kernels follow the Keras layout, output channels on the LAST axis: Conv2D (kh, kw, in, out),
Dense (in, out).
"""
import numpy as np

import tf_rethink  # noqa: F401
from tf_rethink.util.registry import Registry

CRITERIA = Registry("criterion")


@CRITERIA.register("l1_norm")
def l1_norm(kernel) -> np.ndarray:
  """L1 norm of each output filter: s_j = sum_{kh, kw, in} |W[..., j]| (Li et al., ICLR 2017).

  Args:
    kernel: array whose last axis indexes output channels.

  Returns:
    float64 array of shape (out_channels,).
  """
  w = np.abs(np.asarray(kernel, dtype=np.float64))
  return w.reshape(-1, w.shape[-1]).sum(axis=0)
