"""tools/speed_accuracy.py --quick: real (tiny) training runs per setting, well-formed table."""
import subprocess
import sys

import pytest

from tests.tools.test_bench_train import ROOT, run_tool


def test_quick_two_settings(tmp_path):
  stdout, r = run_tool("speed_accuracy.py", ["--setting=mixed_precision=off",
                                             "--setting=mixed_precision=bf16,steps_per_execution=2",
                                             f"--workdir={tmp_path / 'runs'}"], tmp_path)
  assert [row["setting"] for row in r["rows"]] == [
      "mixed_precision=off", "mixed_precision=bf16,steps_per_execution=2"]
  for i, row in enumerate(r["rows"]):
    acc = row["test_accuracy"]
    assert acc["values"] and 0.0 <= acc["mean"] <= 100.0 and acc["std"] == 0.0  # one seed
    assert row["best_test_accuracy"]["mean"] >= acc["mean"]
    assert row["img_per_s"] == pytest.approx(128 / row["epoch_s"])  # --limit_train=128 in quick
    # the runs really used the setting: the seed's resolved config records it
    config = (tmp_path / "runs" / f"setting_{i}" / "seed_1" / "config.json").read_text()
    assert '"mixed_precision": "%s"' % ("off" if i == 0 else "bf16") in config
    assert row["setting"] in stdout
  assert "vs first" in stdout
  assert stdout.startswith("machine: ") and r["config"]["machine"]["cores"] >= 1


def test_unknown_setting_is_a_usage_error():
  proc = subprocess.run([sys.executable, f"{ROOT}/tools/speed_accuracy.py", "--quick",
                         "--setting=precision=bf16"], capture_output=True, text=True,
                        timeout=120, check=False)
  assert proc.returncode != 0
  assert "must be name=value with a name among" in proc.stderr
