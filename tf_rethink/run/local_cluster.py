"""N workers of one command on this machine, for trying `--strategy=multi_worker` (TF-free).

Rules (tools/launch_local.py is the command):
  * Ports: N free loopback ports chosen by the OS (sockets bound to 127.0.0.1 port 0, held open
    together so they differ, closed just before the workers start; another program could take
    one in that instant, and then that worker fails to start and the job fails as below).
  * Every worker runs the SAME command; only its TF_CONFIG differs (task index i of the cluster
    {"worker": [all N addresses]}; worker 0 is the chief).
  * Each output line is prefixed with "[w<i>] " (stdout to stdout, stderr to stderr); the launcher's
    own lines start with "[launch] " (on stderr), one per worker with its pid.
  * When a worker exits with a non-zero status, the others are stopped (SIGTERM, then SIGKILL
    after `grace` seconds). The exit status is 0 if every worker succeeded, else the highest
    status among the workers the launcher did not stop itself (a death by signal s counts as
    128 + s).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional, Sequence


def free_ports(n: int) -> List[int]:
  """`n` distinct free TCP ports on 127.0.0.1, picked by the OS (bind to port 0)."""
  socks = []
  try:
    for _ in range(n):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(("127.0.0.1", 0))
      socks.append(s)
    return [s.getsockname()[1] for s in socks]
  finally:
    for s in socks:
      s.close()


def tf_config(ports: Sequence[int], index: int) -> str:
  """TF_CONFIG of worker `index` in a loopback cluster of workers on `ports`."""
  return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                     "task": {"type": "worker", "index": index}})


def _pump(stream, out, prefix: str) -> None:
  for line in iter(stream.readline, ""):
    out.write(prefix + line)
    out.flush()
  stream.close()


def _status(code: int) -> int:
  return 128 - code if code < 0 else code


def launch(command: Sequence[str], workers: int, *, grace: float = 10.0,
           ports: Optional[Sequence[int]] = None, env: Optional[dict] = None) -> int:
  """Runs `command` as `workers` local workers (module docstring); returns the exit status."""
  if workers < 1:
    raise ValueError(f"workers={workers} must be >= 1")
  ports = list(ports) if ports is not None else free_ports(workers)
  procs, pumps = [], []
  for i in range(workers):
    worker_env = dict(os.environ if env is None else env, TF_CONFIG=tf_config(ports, i),
                      PYTHONUNBUFFERED="1")
    p = subprocess.Popen(list(command), env=worker_env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, bufsize=1)
    procs.append(p)
    print(f"[launch] worker {i} pid {p.pid} port {ports[i]}", file=sys.stderr, flush=True)
    for stream, out in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
      t = threading.Thread(target=_pump, args=(stream, out, f"[w{i}] "), daemon=True)
      t.start()
      pumps.append(t)
  stopped = set()
  try:
    while any(p.poll() is None for p in procs):
      failed = [i for i, p in enumerate(procs) if p.poll() not in (None, 0)]
      if failed:
        running = [i for i, p in enumerate(procs) if p.poll() is None]
        print(f"[launch] worker {failed[0]} exited with status {_status(procs[failed[0]].poll())};"
              f" stopping worker(s) {', '.join(map(str, running))}", file=sys.stderr, flush=True)
        _stop([procs[i] for i in running], grace)
        stopped.update(running)
        break
      time.sleep(0.1)
  except KeyboardInterrupt:
    _stop(procs, grace)
    raise
  for p in procs:
    p.wait()
  for t in pumps:
    t.join(timeout=5)
  codes = [_status(p.returncode) for i, p in enumerate(procs) if i not in stopped]
  return max(codes) if codes else 1


def _stop(procs, grace: float) -> None:
  for p in procs:
    if p.poll() is None:
      p.send_signal(signal.SIGTERM)
  deadline = time.time() + grace
  for p in procs:
    try:
      p.wait(timeout=max(0.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()
