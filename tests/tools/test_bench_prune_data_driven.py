"""tools/bench_prune_data_driven.py --quick: runs end to end and prints a well-formed table + JSON."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow  # ~20-40 s: TF start-up, two traced sampling passes and a training step
def test_quick_output_is_well_formed():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_prune_data_driven.py"),
                         "--quick", "--rows=thinet:conv:vgg16_imagenet"], capture_output=True,
                        text=True, env=env, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  rows = json.loads(lines[-1])["rows"]
  assert len(rows) == 1
  r = rows[0]
  assert (r["method"], r["variant"], r["model"]) == ("thinet", "conv", "vgg16_imagenet")
  assert r["layers"] == 12 and r["images_timed"] == 4 and r["paper_images"] == 10000
  assert r["train_img_per_s"] > 0 and r["epoch_estimate_s"] > 0
  want = r["sampling_fixed_s"] + r["sampling_s_per_image"] * 10000 + r["selection_s"]
  assert abs(r["prune_estimate_s"] - want) < 1e-6 * max(1.0, want)
  assert abs(r["ratio"] - r["prune_estimate_s"] / r["epoch_estimate_s"]) < 1e-12
  assert "ratio" in lines[-2] and "vgg16_imagenet" in lines[-2]
