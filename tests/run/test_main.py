"""The command end to end: exit codes, dry-run numbers, a whole small experiment and its reuse."""
import json
import os
import subprocess
import sys

import pytest

from tf_rethink.train import regimes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = ["--flagfile=flags/common/smoke.cfg", "--verbose=0"]


def run_main(*args, check_code=0):
  proc = subprocess.run([sys.executable, "-m", "tf_rethink.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=900)
  assert proc.returncode == check_code, proc.stdout[-3000:] + proc.stderr[-3000:]
  return proc


@pytest.mark.parametrize("args,needle", [
    (["--method=nope"], "unknown method 'nope'; choose one of: l1_norm"),
    (["--model=vgg99"], "unknown model 'vgg99'; choose one of:"),
    (["--dataset=mnist3"], "unknown dataset 'mnist3'; choose one of:"),
    (["--regime=sideways"], "choose one of: baseline, finetune, scratch_e, scratch_b, all"),
    (["--prune_ratio=1.5"], "outside (0, 1)"),
    (["--epochs=0"], "--epochs=0 must be a positive integer"),
    (["--model=resnet56", "--variant=Z"], "variant"),
    (["--no_such_flag=1"], "no_such_flag"),
])
def test_user_mistakes_exit_2_with_one_line(tmp_path, args, needle):
  proc = run_main(*args, f"--workdir={tmp_path}", "--dry_run", check_code=2)
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
  assert needle in lines[0]
  assert "Traceback" not in proc.stderr


def test_dry_run_reproduces_reference_flops(tmp_path):
  # The command: CIFAR-10 defaults to the paper's protocol (full width, 160 epochs).
  proc = run_main("--method=l1_norm", "--model=vgg16", "--dataset=cifar10", f"--workdir={tmp_path}",
                  "--dry_run")
  summary = json.load(open(tmp_path / "summary.json"))
  assert summary["full"] == {"params": 14987722, "flops": 627880970,
                             "macs": summary["full"]["macs"]}
  assert summary["pruned"]["params"] == 5397034
  assert summary["pruned"]["flops"] == 413364234
  assert summary["scratch_b_epochs"] == 243
  assert abs(summary["full"]["macs"] - 3.13e8) / 3.13e8 < 0.01
  assert abs(summary["pruned"]["macs"] - 2.06e8) / 2.06e8 < 0.01
  assert "413,364,234" in proc.stdout
  assert not (tmp_path / "plan.json").exists()
  # Every regime's epochs and the training FLOPs (study/budget.py): default regime scratch_b.
  assert summary["regime_epochs"] == {"baseline": 160, "scratch_b": 243}
  macs_f, macs_p = summary["full"]["macs"], summary["pruned"]["macs"]
  assert summary["training_flops"]["total"] == pytest.approx(
      (160 * macs_f + 243 * macs_p) * (6 * 50000 + 2 * 10000))
  assert "epochs per regime: baseline 160, scratch_b 243" in proc.stdout
  assert "GPU-hours" in proc.stdout


def test_baseline_only_run_exports_the_baseline(tmp_path):
  # --regime=baseline has no plan: the export is the large model alone (it once crashed here).
  proc = run_main(*SMOKE, "--regime=baseline", "--epochs=1", f"--workdir={tmp_path}")
  assert sorted(json.load(open(tmp_path / "results.json"))) == ["baseline"]
  assert not os.path.exists(tmp_path / "plan.json")
  sizes = json.load(open(tmp_path / "export" / "sizes.json"))
  assert list(sizes["bytes"]) == ["baseline"]
  assert os.path.exists(tmp_path / "export" / "serving" / "baseline" / "saved_model.pb")
  assert "exported SavedModels" in proc.stdout and "Traceback" not in proc.stderr


def test_experiment_end_to_end_then_reused(tmp_path):
  workdir = f"--workdir={tmp_path}"
  proc = run_main(*SMOKE, "--regime=all", workdir)
  results = json.load(open(tmp_path / "results.json"))
  assert sorted(results) == ["baseline", "finetune", "scratch_b", "scratch_e"]
  base, ft, se, sb = (results[k] for k in ("baseline", "finetune", "scratch_e", "scratch_b"))
  assert ft["params"] == se["params"] == sb["params"] < base["params"]
  assert sb["flops"] < base["flops"]
  assert se["epochs"] == base["epochs"] == 2
  assert sb["epochs"] == regimes.scratch_b_epochs(2, base["flops"], sb["flops"])
  for r in results.values():
    assert 10.0 <= r["test_accuracy"] <= 100.0  # better than chance on 10 classes after 2 epochs
  for header in ("regime", "test acc", "FLOPs"):
    assert header in proc.stdout
  plan = json.load(open(tmp_path / "plan.json"))
  assert plan["method"] == "l1_norm"
  assert os.path.exists(tmp_path / "export" / "scratch_b" / "saved_model.pb")
  assert "x smaller" in proc.stdout
  sizes = json.load(open(tmp_path / "export" / "sizes.json"))
  for name in ("baseline", "scratch_b"):  # the inference-only export, frozen and verified
    assert os.path.exists(tmp_path / "export" / "serving" / name / "saved_model.pb")
    assert 0 < sizes["serving_bytes"][name] < sizes["bytes"][name]
  assert sizes["serving_bytes"]["scratch_b"] < sizes["serving_bytes"]["baseline"]
  assert json.load(open(tmp_path / "config.json"))["epochs"] == 2
  # Same command again: every stage is reused, the results are unchanged.
  run_main(*SMOKE, "--regime=all", workdir)
  assert json.load(open(tmp_path / "results.json")) == results
  # A different experiment in the same workdir is refused, nothing overwritten.
  proc = run_main(*SMOKE, "--regime=all", "--epochs=3", workdir, check_code=2)
  assert "holds a different experiment" in proc.stderr and "epochs=2" in proc.stderr
  assert json.load(open(tmp_path / "config.json"))["epochs"] == 2
