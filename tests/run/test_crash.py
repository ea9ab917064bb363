"""Crash safety: a tiny `--regime=all` run SIGKILLed at a point of its life (during the baseline's
training, after the plan, during a pruned model's training, during export) and re-run with the
same command finishes, and its results.json (wall times aside) and every stage's final weights
are bit-equal to an uninterrupted run's. The re-run of a finished workdir redoes nothing.
Disk full (a 'size=' tmpfs workdir): one line, the finished results intact."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.run import bad_inputs

ROOT = bad_inputs.ROOT
COMMAND = [a for a in bad_inputs.TINY if a not in ("--epochs=1", "--noexport")] + [
    "--epochs=2", "--regime=all"]
STAGES = ("baseline", "finetune", "scratch_e", "scratch_b")


def _argv(workdir, *extra):
  return [sys.executable, "-m", "tf_rethink.main", *COMMAND, f"--workdir={workdir}", *extra]


def _run(workdir, *extra, code=0):
  proc = subprocess.run(_argv(workdir, *extra), cwd=ROOT, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == code, proc.stderr[-3000:]
  return proc


def _history_len(path):
  try:
    return len(json.load(open(path)))
  except (OSError, ValueError):
    return 0


POINTS = {
    "baseline-training": lambda w: _history_len(os.path.join(w, "baseline", "history.json")) >= 1,
    "after-the-plan": lambda w: os.path.exists(os.path.join(w, "plan.json")),
    "scratch_e-training": lambda w: _history_len(os.path.join(w, "scratch_e",
                                                              "history.json")) >= 1,
    "export": lambda w: os.path.isdir(os.path.join(w, "export")),
}


def _kill_at(workdir, point, *extra):
  """Starts the command and SIGKILLs it as soon as `point` is observed; True if it was killed."""
  proc = subprocess.Popen(_argv(workdir, *extra), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 900
  while proc.poll() is None and time.time() < deadline:
    if POINTS[point](workdir):
      proc.send_signal(signal.SIGKILL)
      proc.wait()
      return True
    time.sleep(0.02)
  proc.wait()
  return False


def _weights(path):
  import h5py
  out = {}
  with h5py.File(path, "r") as f:
    f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(
        obj, h5py.Dataset) else None)
  return out


def _results(workdir):
  records = json.load(open(os.path.join(workdir, "results.json")))
  for r in records.values():
    r.pop("wall_time_s")
  return records


def _assert_same_run(workdir, reference):
  assert _results(workdir) == _results(reference)
  for stage in STAGES:
    a = _weights(os.path.join(workdir, stage, "final.weights.h5"))
    b = _weights(os.path.join(reference, stage, "final.weights.h5"))
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_array_equal(a[k], b[k], err_msg=f"{stage}: {k}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("reference") / "w")
  _run(path, "--noexport")   # exports are checked on their own (their bytes hold timestamps)
  return path


def test_killed_during_baseline_training_resumes_to_the_same_results(reference, tmp_path):
  workdir = str(tmp_path / "w")
  assert _kill_at(workdir, "baseline-training", "--noexport")
  assert not os.path.exists(os.path.join(workdir, "results.json"))
  _run(workdir, "--noexport")
  _assert_same_run(workdir, reference)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-the-plan", "scratch_e-training", "export"])
def test_killed_anywhere_resumes_to_the_same_results(reference, tmp_path, point):
  workdir = str(tmp_path / "w")
  assert _kill_at(workdir, point, "--export")
  _run(workdir, "--export")
  _assert_same_run(workdir, reference)
  export = os.path.join(workdir, "export")
  assert json.load(open(os.path.join(export, "sizes.json")))["bytes"].keys() == {"baseline",
                                                                                 "scratch_b"}
  assert not [n for n in os.listdir(export) if ".partial-" in n or ".old-" in n]
  again = _run(workdir, "--export")   # finished: nothing retrained, nothing re-exported
  assert "not redone" in again.stdout
  _assert_same_run(workdir, reference)


def _mount_tmpfs(path, size):
  os.makedirs(path)
  proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                        capture_output=True)
  if proc.returncode:
    pytest.skip("cannot mount a tmpfs here (needs root)")


@pytest.mark.slow
def test_disk_full_during_export_is_one_line_and_keeps_the_results(reference, tmp_path):
  mount = str(tmp_path / "small")
  used = sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(reference) for n in ns)
  _mount_tmpfs(mount, f"{used // 1024 + 600}k")   # the finished stages fit, the exports do not
  try:
    workdir = os.path.join(mount, "w")
    shutil.copytree(reference, workdir)
    before = _results(workdir)
    proc = _run(workdir, "--export", code=2)
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "space" in lines[0] or "full" in lines[0]
    assert _results(workdir) == before
    export = os.path.join(workdir, "export")
    assert not os.path.isdir(export) or not [n for n in os.listdir(export) if ".partial-" in n]
  finally:
    subprocess.run(["umount", mount], check=False)
