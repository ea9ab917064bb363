"""tools/bench_augment.py: times the recipes and both ImageNet crops; bad flags are one line."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "bench_augment.py")


def test_quick_run_times_every_case():
  proc = subprocess.run([sys.executable, TOOL, "--recipes=paper,mixup", "--batches=2",
                         "--repeats=1", "--imagenet_jpegs=8"], capture_output=True, text=True,
                        timeout=600, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rates = re.findall(r"^(embedded 28x28x1|cifar10 32x32x3)\s+(\w+)\s+([\d,]+) img/s", proc.stdout,
                     re.M)
  assert {(d, r) for d, r, _ in rates} == {(d, r) for d in ("embedded 28x28x1", "cifar10 32x32x3")
                                           for r in ("paper", "mixup")}
  assert all(int(v.replace(",", "")) > 0 for _, _, v in rates)
  assert "(1.00x paper)" in proc.stdout
  crops = re.findall(r"^imagenet crop: .* ([\d,]+) img/s$", proc.stdout, re.M)
  assert len(crops) == 2


def test_unknown_recipe_is_one_line():
  proc = subprocess.run([sys.executable, TOOL, "--recipes=autoaugment"], capture_output=True,
                        text=True, timeout=120, cwd=ROOT)
  assert proc.returncode == 2 and proc.stderr.startswith("error: unknown --recipes")
  assert proc.stderr.count("\n") == 1
