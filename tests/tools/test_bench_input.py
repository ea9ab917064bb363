"""tools/bench_input.py --quick: the ImageNet pipeline on JPEGs made at run time, timed per thread
count, and one epoch through a local tf.data service (dispatcher + worker on OS-chosen ports)."""
import os
import subprocess
import sys

from tests.tools.test_bench_train import ROOT, run_tool


def test_quick_output_is_well_formed_and_the_service_delivers_the_epoch(tmp_path):
  stdout, r = run_tool("bench_input.py", ["--threads=1,2"], tmp_path)
  assert r["machine"]["cores"] == os.cpu_count() and "isa" in r["machine"]
  assert stdout.splitlines()[0].startswith("machine: ")
  assert set(r["threads"]) == {"1", "2"}
  for k, t in r["threads"].items():
    assert len(t["runs"]) == r["config"]["repeats"] == 2
    assert t["img_per_s"] > 0
    assert t["img_per_s_per_thread"] == t["img_per_s"] / int(k)
    assert t["img_per_cpu_s"] > 0 and len(t["cpu_runs"]) == 2
    assert t["cores_per_gpu"] == r["gpu_img_per_s_assumed"] / t["img_per_cpu_s"]
  assert r["jpeg"]["count"] == 10 and r["jpeg"]["mean_kb"] > 1  # real JPEG bytes
  # Quick mode: 10 JPEGs in batches of 4 -> 3 batches (the last one of 2) through the service.
  s = r["service"]
  assert s["dispatcher"].startswith("grpc://localhost:") and not s["dispatcher"].endswith(":0")
  assert (s["epoch_batches"], s["epoch_examples"]) == (3, 10)
  assert (s["expected_batches"], s["expected_examples"]) == (3, 10)
  assert s["img_per_s"] > 0
  assert "one epoch arrived as 3 batches, 10 examples (expected 3, 10)" in stdout
  assert "GPU need (assumed, not measured): 1,400 img/s" in stdout


def test_local_service_batches_match_the_pipeline(tmp_path):
  """The same finite pipeline, iterated directly and through the service: same batch shapes."""
  code = f"""
import sys, json
sys.path.insert(0, {os.path.join(ROOT, 'tools')!r})
import bench_input
jpegs = bench_input.make_jpegs(7, 64, 80)
direct = [tuple(x.shape) for x, _ in bench_input.training_pipeline(jpegs, 3, repeat=False)]
service = bench_input.LocalService()
try:
  served = sorted(tuple(x.shape) for x, _ in service.distribute(
      bench_input.training_pipeline(jpegs, 3, repeat=False)))
finally:
  service.stop()
print(json.dumps([sorted(direct), served]))
"""
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  import json
  direct, served = json.loads(proc.stdout.strip().splitlines()[-1])
  assert direct == [[1, 224, 224, 3], [3, 224, 224, 3], [3, 224, 224, 3]]
  assert served == direct


def test_bad_threads_is_one_line_exit_2():
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_input.py"),
                         "--threads=0"], capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      "error: --threads=0 must be positive integers, e.g. --threads=1,2"]
