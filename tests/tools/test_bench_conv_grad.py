"""tools/bench_conv_grad.py: --quick prints the machine, a row per shape and a JSON line whose
numbers agree; bad flags are one-line usage errors."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "bench_conv_grad.py")


def _run(*args):
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=600,
                        check=False)


def test_quick_output_is_well_formed():
  proc = _run("--quick")
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[0].startswith("machine: ") and "ISA" in lines[0]
  result = json.loads(lines[-1])
  assert result["machine"]["cores"] >= 1
  rows = result["rows"]
  assert [(r["size"], r["channels"]) for r in rows] == [(4, 16), (2, 16)]
  for row, line in zip(rows, lines[-3:-1]):
    assert row["kernel_ms"] > 0 and row["taps_ms"] > 0
    assert abs(row["taps_over_kernel"] - row["taps_ms"] / row["kernel_ms"]) < 1e-9
    assert row["max_rel_diff"] < 0.02          # the same gradient, bfloat16 rounding apart
    assert row["rule_picks_taps"] is False     # 16 x 16 channels: too narrow for the rule
    assert f"{row['taps_over_kernel']:.2f}x" in line and line.split()[-1] == "kernel"


def test_bad_flags_are_usage_errors():
  for args, message in ((["--sizes=8,x"], "comma-separated integers"), (["--batch=0"], ">= 1"),
                        (["--dtype=float16"], "--dtype")):
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr
