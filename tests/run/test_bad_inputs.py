"""Every bad input of tests/run/bad_inputs.py (>= 100: command lines and API calls) is refused
with exit status 2 (API: UsageError), one line on stderr, no traceback, the workdir unchanged."""
import os
import shutil
import subprocess
import sys

import pytest

from tests.run import bad_inputs

CASES = bad_inputs.cases()
ROOT = bad_inputs.ROOT


def test_the_list_is_long_and_mixed():
  assert len(CASES) >= 100
  assert sum(c.argv is not None for c in CASES) >= 100
  assert sum(c.api is not None for c in CASES) >= 30
  assert len({c.name for c in CASES}) == len(CASES)   # one name per case


@pytest.fixture(scope="session")
def finished_workdir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("finished") / "w")
  bad_inputs.finished_baseline(path)
  return path


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, tmp_path, request):
  workdir, scratch = str(tmp_path / "w"), str(tmp_path / "d")
  os.makedirs(scratch)
  if case.finished:
    shutil.copytree(request.getfixturevalue("finished_workdir"), workdir)
  outcome = bad_inputs.run_case(case, workdir, scratch)
  assert outcome.code in (2, "usage"), (outcome.code, outcome.stderr[-2000:])
  assert "Traceback" not in outcome.stderr, outcome.stderr[-2000:]
  lines = [l for l in outcome.stderr.strip().splitlines() if l.strip()]
  assert len(lines) == 1, outcome.stderr
  assert not outcome.changed, "the workdir (or the scratch files) changed"


def test_the_runner_sees_a_traceback_and_a_change(tmp_path):
  """The checks can fail: an internal error counts as a traceback, a written file as a change."""
  def boom(w, d):
    raise KeyError("internal")
  out = bad_inputs.run_case(bad_inputs.Case("boom", api=boom), str(tmp_path), str(tmp_path))
  assert not out.ok and "Traceback" in out.stderr

  def writes(w, d):
    open(os.path.join(w, "new"), "w").close()
    from tf_rethink.util.errors import UsageError
    raise UsageError("one line")
  os.makedirs(tmp_path / "w")
  out = bad_inputs.run_case(bad_inputs.Case("writes", api=writes), str(tmp_path / "w"),
                            str(tmp_path))
  assert out.changed and not out.ok


@pytest.mark.parametrize("args", [
    ["--lr=inf"], ["--momentum=-5"], ["--workdir="], ["--method=soft_filter_pruning"],
    ["--model=resnet50", "--prune_ratio=0.3"]])
def test_real_processes_exit_2_with_one_line(tmp_path, args):
  proc = subprocess.run([sys.executable, "-m", "tf_rethink.main", *bad_inputs.TINY,
                         f"--workdir={tmp_path}/w", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  assert not os.path.exists(tmp_path / "w")


def test_binary_flagfile_in_a_real_process(tmp_path):
  (tmp_path / "f.cfg").write_bytes(b"\xff\xfe\x00binary")
  proc = subprocess.run([sys.executable, "-m", "tf_rethink.main", f"--flagfile={tmp_path}/f.cfg"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2 and "not a text file" in proc.stderr
  assert "Traceback" not in proc.stderr
