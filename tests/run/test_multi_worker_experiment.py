"""A whole `--regime=all` experiment with 2 local workers (tools/launch_local.py, TF_CONFIG on
OS-chosen loopback ports), data-driven selection (ThiNet) on the chief; then the same command
again reuses every stage."""
import glob
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _launch(workdir):
  cmd = [sys.executable, os.path.join(ROOT, "tools", "launch_local.py"), "--workers=2", "--",
         sys.executable, "-m", "tf_rethink.main", "--flagfile=flags/common/smoke.cfg",
         "--regime=all", "--method=thinet", "--prune_ratio=0.5", "--thinet_images_per_class=10",
         "--epochs=1", "--strategy=multi_worker", "--intra_op_threads=1", "--inter_op_threads=1",
         f"--workdir={workdir}"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  return proc


@pytest.mark.slow
def test_two_worker_experiment_then_reused(tmp_path):
  proc = _launch(tmp_path)
  results = json.load(open(tmp_path / "results.json"))
  assert sorted(results) == ["baseline", "finetune", "scratch_b", "scratch_e"]
  assert results["finetune"]["params"] == results["scratch_b"]["params"] < \
      results["baseline"]["params"]
  assert json.load(open(tmp_path / "plan.json"))["method"] == "thinet"
  for name in ("baseline", "scratch_b"):
    assert os.path.exists(tmp_path / "export" / "serving" / name / "saved_model.pb")
  # Both workers trained the same model on the chief's plan: their per-epoch lines agree.
  epochs = {w: re.findall(rf"^\[{w}\] (\w+ epoch \d+/\d+: .*) - [\d.]+ s$", proc.stdout, re.M)
            for w in ("w0", "w1")}
  assert len(epochs["w0"]) == 1 + 1 + 1 + results["scratch_b"]["epochs"]
  assert epochs["w0"] == epochs["w1"]
  # Only the chief reports and writes; nothing of worker 1 stays in the workdir.
  assert "[w0] plan (thinet" in proc.stdout and "[w1] plan" not in proc.stdout
  assert "[w1]    regime" not in proc.stdout and "[w0]    regime" in proc.stdout
  leftovers = [p for p in glob.glob(str(tmp_path / "**"), recursive=True)
               if re.search(r"worker", os.path.basename(p))]
  assert not leftovers
  again = _launch(tmp_path)
  assert json.load(open(tmp_path / "results.json")) == results
  assert " epoch " not in again.stdout   # every stage reused, nothing retrained
