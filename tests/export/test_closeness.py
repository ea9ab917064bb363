"""The reload check's tolerance: absolute part scaled by the largest output, relative per
element."""
import numpy as np
import pytest

from tf_rethink.export.closeness import check_close


def test_rounding_near_zero_beside_large_logits_is_accepted():
  # The trained slimming VGG-19's case: logits up to ~10, a near-zero logit off by 2.3e-4 after
  # folding. A fixed atol of 1e-4 (the tf_keras path before) refused the export.
  want = np.array([[9.6, 0.0, -3.0]])
  got = want + np.array([[0.0, 2.3e-4, 0.0]])
  assert not np.allclose(got, want, atol=1e-4, rtol=1e-4)
  check_close(got, want, 1e-4, "here")


@pytest.mark.parametrize("error", [0.05, 1.0])
def test_a_real_difference_is_refused(error):
  want = np.array([[9.6, 0.0, -3.0]])
  got = want + np.array([[0.0, error, 0.0]])
  with pytest.raises(RuntimeError, match=r"at here disagrees .*largest output 9\.6"):
    check_close(got, want, 1e-4, "here")


def test_small_outputs_keep_the_plain_atol():
  want = np.array([0.01, -0.02])
  check_close(want + 9e-5, want, 1e-4, "here")
  with pytest.raises(RuntimeError):
    check_close(want + 3e-4, want, 1e-4, "here")


def test_a_shape_change_is_refused():
  with pytest.raises(RuntimeError, match=r"shape \(2,\) vs \(3,\)"):
    check_close(np.zeros(2), np.zeros(3), 1e-4, "here")
