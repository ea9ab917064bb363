"""MultiWorkerMirroredStrategy for real: local workers (TF_CONFIG on OS-chosen loopback ports,
tools/launch_local.py), against one process; the startup deadline; kill -9 and relaunch.

Tolerances: 2 one-replica workers and one process with a 2-replica MirroredStrategy run the same
replicas on the same slices of each global batch, and the losses agree to 1e-6 (they were
bit-identical when measured); without BatchNorm 2 workers agree with ONE device (the global batch
whole) to 1e-5 (only the order of the gradient sum differs).
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tf_rethink.run import local_cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAM = [sys.executable, "-m", "tests.train.multi_worker_program"]
LAUNCH = [sys.executable, os.path.join(ROOT, "tools", "launch_local.py")]


def _env():
  return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _losses(run_dir):
  with open(os.path.join(run_dir, "train_result.json")) as f:
    return json.load(f)["history"]["loss"]


def _no_worker_leftovers(workdir):
  """Non-chief workers keep nothing in the shared workdir."""
  names = [p for p in glob.glob(os.path.join(workdir, "**"), recursive=True)
           if re.search(r"worker|workertemp", os.path.basename(p))]
  assert not names, names


def test_two_workers_train_like_one_machine(tmp_path):
  reference = subprocess.Popen([*PROGRAM, "--strategy=reference", f"--run_dir={tmp_path / 'one'}",
                                "--epochs=2"], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
  job = subprocess.run([*LAUNCH, "--workers=2", "--", *PROGRAM, "--strategy=multi_worker",
                        f"--run_dir={tmp_path / 'two'}", "--epochs=2"], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=600)
  out, _ = reference.communicate(timeout=600)
  assert reference.returncode == 0, out[-3000:]
  assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
  assert "[w0] bn: replicas 2" in job.stdout and "[w1] bn: replicas 2" in job.stdout
  bn_two, bn_one = _losses(tmp_path / "two" / "bn"), _losses(tmp_path / "one" / "bn")
  assert len(bn_two) == 2 and max(abs(a - b) for a, b in zip(bn_two, bn_one)) < 1e-6
  nobn_two, nobn_one = _losses(tmp_path / "two" / "nobn"), _losses(tmp_path / "one" / "nobn")
  assert max(abs(a - b) for a, b in zip(nobn_two, nobn_one)) < 1e-5
  assert bn_two[1] < bn_two[0] and nobn_two[1] < nobn_two[0]   # it learns
  _no_worker_leftovers(tmp_path / "two")


def test_missing_worker_fails_in_one_line_naming_it(tmp_path):
  ports = local_cluster.free_ports(2)
  env = dict(_env(), TF_CONFIG=local_cluster.tf_config(ports, 0))
  start = time.time()
  proc = subprocess.run([*PROGRAM, "--strategy=multi_worker", f"--run_dir={tmp_path}",
                         "--worker_timeout=3"], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode != 0
  assert f"task worker:1 (127.0.0.1:{ports[1]}) did not come up within 3 s" in proc.stderr
  assert time.time() - start < 60


def test_missing_worker_via_the_command_is_exit_2(tmp_path):
  ports = local_cluster.free_ports(2)
  env = dict(_env(), TF_CONFIG=local_cluster.tf_config(ports, 1))
  proc = subprocess.run([sys.executable, "-m", "tf_rethink.main", "--strategy=multi_worker",
                         "--worker_timeout=2", f"--workdir={tmp_path}", "--verbose=0"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr
  assert lines[0].startswith("error: worker:1: task worker:0 (127.0.0.1:") and "--worker_timeout" \
      in lines[0]


@pytest.mark.slow
def test_kill_9_mid_epoch_then_relaunch_resumes(tmp_path):
  """Worker 1 is killed (SIGKILL) in the middle of epoch >= 2; the launcher stops worker 0; the
  whole job relaunched resumes from the chief's last epoch checkpoint and ends where an
  uninterrupted run ends (bit-identical here: the data order is fixed)."""
  epochs, run_dir = 5, tmp_path / "two"
  args = [*PROGRAM, "--strategy=multi_worker", f"--run_dir={run_dir}", f"--epochs={epochs}",
          "--models=bn", "--batch_sleep=0.3"]
  job = subprocess.Popen([*LAUNCH, "--workers=2", "--grace=5", "--", *args], cwd=ROOT, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  pids = {}
  while len(pids) < 2:
    line = job.stderr.readline()
    match = re.match(r"\[launch\] worker (\d) pid (\d+)", line)
    if match:
      pids[int(match.group(1))] = int(match.group(2))
    assert line or job.poll() is None, "launcher ended early"
  checkpoint = run_dir / "bn" / "backup" / "chief" / "checkpoint"
  deadline = time.time() + 300
  while not (checkpoint.exists() and _epochs_done(run_dir / "bn" / "history.json") >= 2):
    assert time.time() < deadline and job.poll() is None, "no epoch checkpoint"
    time.sleep(0.1)
  time.sleep(0.5)   # into the next epoch (4 steps of 0.3 s each)
  done_before = _epochs_done(run_dir / "bn" / "history.json")
  os.kill(pids[1], signal.SIGKILL)
  out, err = job.communicate(timeout=300)
  assert job.returncode == 128 + signal.SIGKILL, err[-3000:]
  assert "worker 1 exited with status 137; stopping worker(s) 0" in err
  assert not (run_dir / "bn" / "train_result.json").exists()
  assert 1 <= done_before < epochs

  again = subprocess.run([*LAUNCH, "--workers=2", "--", *args[:-1]], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
  redone = re.findall(r"\[w0\] bn epoch (\d+)/", again.stdout)
  assert redone and int(redone[0]) >= done_before, again.stdout   # at most the killed epoch redone
  reference = subprocess.run([*PROGRAM, "--strategy=reference", f"--run_dir={tmp_path / 'one'}",
                              f"--epochs={epochs}", "--models=bn"], cwd=ROOT, env=_env(),
                             capture_output=True, text=True, timeout=600)
  assert reference.returncode == 0, reference.stdout[-3000:] + reference.stderr[-3000:]
  two, one = _losses(run_dir / "bn"), _losses(tmp_path / "one" / "bn")
  assert len(two) == epochs and max(abs(a - b) for a, b in zip(two, one)) < 1e-5, (two, one)
  _no_worker_leftovers(run_dir)


def _epochs_done(history_path):
  """Epochs the chief has finished (its history.json), 0 before the first."""
  try:
    with open(history_path) as f:
      return len(json.load(f))
  except (OSError, ValueError):
    return 0


@pytest.mark.slow
def test_survivor_of_a_killed_worker_fails_in_one_line(tmp_path):
  """No launcher (as on a cluster): worker 1 of `tf_rethink.main` is killed; worker 0 notices the
  missing heartbeats and ends with one line saying to relaunch, exit status 1 (TensorFlow's C++
  runtime logs its own error lines before it: they do not go through Python's logging)."""
  ports = local_cluster.free_ports(2)
  procs = [subprocess.Popen(
      [sys.executable, "-m", "tf_rethink.main", "--flagfile=flags/common/smoke.cfg",
       "--regime=baseline", "--epochs=30", "--strategy=multi_worker", "--intra_op_threads=1",
       "--inter_op_threads=1", f"--workdir={tmp_path}", "--export=false"], cwd=ROOT,
      env=dict(_env(), TF_CONFIG=local_cluster.tf_config(ports, i)), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True) for i in range(2)]
  deadline = time.time() + 300
  while _epochs_done(tmp_path / "baseline" / "history.json") < 1:
    assert time.time() < deadline and all(p.poll() is None for p in procs)
    time.sleep(0.2)
  procs[1].kill()
  procs[1].wait()
  start = time.time()
  _, err = procs[0].communicate(timeout=300)
  ours = [line for line in err.splitlines() if line.startswith("error: ")]
  assert procs[0].returncode == 1 and len(ours) == 1, err[-3000:]
  assert ours[0].startswith("error: a worker of the cluster stopped (") and "relaunch" in ours[0]
  assert err.strip().splitlines()[-1] == ours[0] and "Traceback" not in err
  assert time.time() - start < 120
