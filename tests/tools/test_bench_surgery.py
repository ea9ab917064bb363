"""tools/bench_surgery.py --quick: runs end to end, prints a table + JSON whose numbers add up."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quick_output_is_well_formed():
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_surgery.py"), "--quick"],
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  (row,) = json.loads(lines[-1])["rows"]
  assert row["model"] == "MobileNetV2" and row["groups"] > 0
  assert row["params"][1] < row["params"][0] and row["macs"][1] < row["macs"][0]
  assert abs(row["epoch_estimate_s"] - 1281167 / 2 * row["train_step_s"]) < 1e-6 * row[
      "epoch_estimate_s"]
  assert abs(row["ratio"] - row["prune_s"] / row["epoch_estimate_s"]) < 1e-9 * row["ratio"]
  assert "MobileNetV2" in lines[-2] and "prune/epoch" in lines[-3]
