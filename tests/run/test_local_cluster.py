"""local_cluster.launch (tools/launch_local.py): TF_CONFIG per worker, prefixed output, one
failure stops the others, the worst status is returned."""
import json
import os
import subprocess
import sys
import time

from tf_rethink.run import local_cluster

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "tools", "launch_local.py")
ECHO = "import os, json; c = json.loads(os.environ['TF_CONFIG']); print(json.dumps(c))"


def test_workers_get_one_cluster_and_their_own_task(capfd):
  assert local_cluster.launch([sys.executable, "-c", ECHO], 3) == 0
  out, err = capfd.readouterr()
  configs = {}
  for line in out.splitlines():
    prefix, _, text = line.partition(" ")
    configs[prefix] = json.loads(text)
  assert sorted(configs) == ["[w0]", "[w1]", "[w2]"]
  clusters = {json.dumps(c["cluster"]) for c in configs.values()}
  assert len(clusters) == 1 and len(set(configs["[w0]"]["cluster"]["worker"])) == 3
  assert [configs[f"[w{i}]"]["task"] for i in range(3)] == [
      {"type": "worker", "index": i} for i in range(3)]
  assert err.count("[launch] worker") == 3


def test_one_failure_stops_the_others_and_sets_the_status(capfd):
  code = ("import os, sys, time, json\n"
          "i = json.loads(os.environ['TF_CONFIG'])['task']['index']\n"
          "if i == 1: print('boom', file=sys.stderr); sys.exit(3)\n"
          "time.sleep(60)\n")
  start = time.time()
  assert local_cluster.launch([sys.executable, "-c", code], 2, grace=2) == 3
  assert time.time() - start < 30
  _, err = capfd.readouterr()
  assert "[w1] boom" in err and "worker 1 exited with status 3; stopping worker(s) 0" in err


def test_the_command_line_wrapper():
  proc = subprocess.run([sys.executable, TOOL, "--workers=2", "--",
                         sys.executable, "-c", "print('hi')"], capture_output=True, text=True,
                        timeout=60)
  assert proc.returncode == 0 and sorted(proc.stdout.split("\n")[:2]) == ["[w0] hi", "[w1] hi"]
  proc = subprocess.run([sys.executable, TOOL, "--workers=2"],
                        capture_output=True, text=True, timeout=60)
  assert proc.returncode == 2 and proc.stderr.startswith("error: no command given")
