"""The training budget arithmetic (study/budget.py) and the flagfile header rewrite
(study/flag_budget.py), on given numbers."""
import pytest

from tf_rethink.study import budget
from tf_rethink.study import flag_budget


def test_regime_epochs_follow_the_regimes():
  assert budget.regime_epochs(("baseline", "finetune", "scratch_e", "scratch_b"), 160, 243) == {
      "baseline": 160, "finetune": 40, "scratch_e": 160, "scratch_b": 243}
  assert budget.regime_epochs(("baseline", "lottery", "scratch_e"), 160, 0, lottery_rounds=7) == {
      "baseline": 160, "lottery": 1120, "scratch_e": 160}
  assert budget.regime_epochs(("finetune",), 90, 0, finetune_epochs=20) == {"finetune": 20}


def test_training_flops_dense_for_masked_models():
  epochs = {"baseline": 2, "scratch_e": 3}
  channel = budget.training_flops(epochs, 100, 40, False, 10, 5)
  assert channel["baseline"] == 2 * 100 * (60 + 10) and channel["scratch_e"] == 3 * 40 * 70
  masked = budget.training_flops(epochs, 100, 40, True, 10, 5)
  assert masked["scratch_e"] == 3 * 100 * 70           # a GPU computes the zeros
  assert masked["total"] == masked["baseline"] + masked["scratch_e"]


def test_examples_and_gpu_hours():
  assert budget.examples("cifar10", None, None) == (50000, 10000)
  assert budget.examples("cifar10", 1000, 20000) == (1000, 10000)
  assert budget.examples("my_data", None, None) is None
  assert budget.gpu_hours(4e12 * 3600, tflops=4.0) == pytest.approx(1.0)


def test_header_replaced_not_duplicated():
  text = "# Paper row X\n# Ours: not yet run\n--method=l1_norm\n"
  once = flag_budget.with_header(text, f"{flag_budget.HEADER} ~1.0 GPU-hours")
  assert once.splitlines()[:2] == ["# Paper row X", f"{flag_budget.HEADER} ~1.0 GPU-hours"]
  twice = flag_budget.with_header(once, f"{flag_budget.HEADER} ~2.0 GPU-hours")
  assert twice.count(flag_budget.HEADER) == 1 and "~2.0" in twice
  assert twice.splitlines()[2:] == ["# Ours: not yet run", "--method=l1_norm"]


def test_every_full_scale_flagfile_states_its_gpu_time():
  import os  # pylint: disable=import-outside-toplevel
  flags_dir = os.path.join(os.path.dirname(__file__), "..", "..", "flags")
  files = flag_budget.flagfiles(flags_dir)
  assert len(files) > 40
  for path in files:
    with open(path) as f:
      lines = f.read().splitlines()
    header = [x for x in lines if x.startswith(flag_budget.HEADER)]
    assert len(header) == 1 and "GPU-hours" in header[0], path
