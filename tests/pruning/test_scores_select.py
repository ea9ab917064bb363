"""L1 scores and top-k selection against numpy and hand-worked cases."""
import numpy as np
import pytest

from tf_rethink.util.errors import UsageError
from tf_rethink.pruning import scores, select


def test_l1_norm_equals_numpy_sum_over_kh_kw_in():
  kernel = np.random.default_rng(1).normal(size=(3, 3, 5, 7)).astype(np.float32)
  got = scores.l1_norm(kernel)
  want = np.array([np.abs(kernel[:, :, :, j]).sum() for j in range(7)])
  assert got.shape == (7,)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert scores.CRITERIA.get("l1_norm") is scores.l1_norm


def test_top_k_keeps_exactly_the_k_largest_sorted_by_index():
  s = np.random.default_rng(2).permutation(20).astype(float)
  for k in (1, 5, 19, 20):
    got = select.top_k(s, k)
    assert got == tuple(sorted(np.argsort(-s)[:k].tolist()))
    assert len(got) == k and list(got) == sorted(got)
  assert select.top_k([0.1, 5.0, 3.0, 4.0], 2) == (1, 3)


def test_top_k_ties_follow_reversed_stable_argsort():
  # argsort([1,2,2,2,0]) = [4,0,1,2,3]; reversed -> [3,2,1,0,4]: larger index wins a tie.
  assert select.top_k([1, 2, 2, 2, 0], 2) == (2, 3)
  assert select.top_k([1, 1, 1, 1], 3) == (1, 2, 3)


def test_kept_count_truncates_like_the_reference():
  assert select.kept_count(16, 0.1) == 14
  assert select.kept_count(32, 0.3) == 22
  assert select.kept_count(64, 0.1) == 57
  assert select.kept_count(16, 0.6) == 6
  assert select.kept_count(32, 0.4) == 19
  assert select.kept_count(64, 0.3) == 44
  assert select.kept_count(64, 0.0) == 64
  assert select.kept_count(1, 0.5) == 1      # never empties a layer
  assert len(select.top_ratio(np.arange(10.0), 0.5)) == 5


@pytest.mark.parametrize("k", [0, 5])
def test_top_k_rejects_bad_k(k):
  with pytest.raises(UsageError):
    select.top_k([1.0, 2.0, 3.0, 4.0], k)


def test_rounding_to_the_vector_width():
  assert select.rounded(22, 32, 16) == 16 and select.rounded(24, 32, 16) == 32
  assert select.rounded(57, 64, 16) == 64 and select.rounded(3, 64, 16) == 16   # >= one multiple
  assert select.rounded(6, 16, 16) == 6          # layers of at most round_to channels: as they are
  assert select.rounded(22, 32, 1) == 22 and select.kept_count(32, 0.3, 16) == 16


def test_every_channel_method_states_and_applies_the_rounding():
  import tf_rethink  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  from tf_rethink.models import MODELS  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning import METHODS  # pylint: disable=import-outside-toplevel
  model = MODELS.get("vgg16").build(input_shape=(32, 32, 3), num_classes=10)
  for method, kw in (("l1_norm", {"variant": "A"}), ("l1_norm", {"ratio": 0.3}),
                     ("thinet", {"ratio": 0.3}), ("soft_filter_pruning", {"ratio": 0.3})):
    plan = METHODS.get(method)(round_to=16, **kw).select(model, None, model_name="vgg16")
    assert plan.variant.endswith(",round_to=16"), (method, plan.variant)
    assert plan.keep and all(len(v) % 16 == 0 for v in plan.keep.values()), (method, kw)
  with pytest.raises(UsageError, match="round_to"):
    METHODS.get("magnitude")(ratio=0.5, round_to=16)
  with pytest.raises(UsageError, match="positive integer"):
    METHODS.get("l1_norm")(ratio=0.5, round_to=0)


def test_auto_round_to_is_the_channel_block_of_the_machine():
  no = {"avx2": False, "avx512f": False}
  assert select.hardware_round_to(isa=no, gpus=1) == 8
  assert select.hardware_round_to(isa=dict(no, avx2=True, avx512f=True), gpus=0) == 16
  assert select.hardware_round_to(isa=dict(no, avx2=True), gpus=0) == 8
  assert select.hardware_round_to(isa=no, gpus=0) == 1
  here = select.hardware_round_to()
  assert here in (1, 8, 16)
  assert select.resolve_round_to("auto") == select.resolve_round_to(" AUTO ") == here
  assert select.resolve_round_to("8") == select.resolve_round_to(8) == 8
  for bad in ("fast", "1.5", "0", -4, 2.0, True, None):
    with pytest.raises(UsageError, match=r"must be a positive integer .* or 'auto'"):
      select.resolve_round_to(bad)


def test_auto_round_to_reaches_the_plan():
  import tf_rethink  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  from tf_rethink.models import MODELS  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning import METHODS  # pylint: disable=import-outside-toplevel
  model = MODELS.get("resnet20").build(input_shape=(32, 32, 3), num_classes=10)
  pruner = METHODS.get("l1_norm")(ratio=0.3, round_to="auto")
  n = select.hardware_round_to()
  assert pruner.round_to == n
  plan = pruner.select(model, None, model_name="resnet20")
  if n > 1:
    assert plan.variant.endswith(f",round_to={n}")
    assert all(len(v) % n == 0 or len(v) < n for v in plan.keep.values())
