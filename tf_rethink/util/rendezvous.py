"""Waits, with a deadline, until every task of a TF_CONFIG cluster is up (TF-free).

Why: once TensorFlow's multi-worker runtime starts it waits for missing tasks inside a C++ call
that holds Python's global lock (a SIGTERM is not even handled), for up to an hour. So the workers
meet first, in plain Python, on the very ports TensorFlow will use:

  1. every task listens on its own TF_CONFIG port (plain TCP);
  2. it connects to every other task's port, retrying until `timeout`, and sends its name;
  3. it keeps listening until every other task has connected to it, then closes its port.

Every task leaves only after it reached all others and all others reached it; no task closes a
port another one still needs, so everyone passes or the deadline names the tasks that were never
reached ("worker:1 (127.0.0.1:23456)"). The ports are free again for TensorFlow's server right
after (SO_REUSEADDR).
"""
import socket
import threading
import time
from typing import List, Optional, Tuple

from tf_rethink.util.errors import UsageError


def split_address(address: str) -> Optional[Tuple[str, int]]:
  """"host:port" -> (host, port); None when it is not of that form."""
  host, sep, port = address.rpartition(":")
  if not sep or not host or not port.isdigit():
    return None
  return host.strip("[]"), int(port)


def _tasks(cluster: dict) -> List[Tuple[str, str]]:
  return [(f"{job}:{i}", address) for job, addresses in sorted(cluster.items())
          for i, address in enumerate(addresses)]


def meet(cluster: dict, task: str, timeout: float) -> None:
  """Returns once every task of `cluster` ({job: ["host:port", ...]}) met this one (`task`,
  "job:index"; module docstring).

  Raises:
    UsageError: after `timeout` seconds, naming the tasks not reached / not heard from, or when
      this task's own port is taken.
  """
  tasks = dict(_tasks(cluster))
  others = {name: address for name, address in tasks.items() if name != task}
  host, port = split_address(tasks[task])
  server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
  server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  try:
    server.bind(("" if host not in ("127.0.0.1", "localhost", "::1") else host, port))
  except OSError as e:
    server.close()
    raise UsageError(f"{task}: cannot listen on its TF_CONFIG address {tasks[task]} ({e.strerror}); "
                     "another program (or a still running worker) holds that port") from None
  server.listen(len(tasks) + 4)
  server.settimeout(0.2)
  heard, lock, stop = set(), threading.Lock(), threading.Event()

  def accept():
    while not stop.is_set():
      try:
        conn, _ = server.accept()
      except socket.timeout:
        continue
      except OSError:
        return
      with conn:
        conn.settimeout(2.0)
        try:
          name = conn.recv(256).decode("utf-8", "replace").strip()
        except OSError:
          continue
      with lock:
        heard.add(name)

  listener = threading.Thread(target=accept, daemon=True)
  listener.start()
  deadline = time.monotonic() + timeout
  reached = set()
  try:
    while True:
      for name, address in others.items():
        if name in reached:
          continue
        try:
          with socket.create_connection(split_address(address), timeout=1.0) as conn:
            conn.sendall(task.encode("utf-8"))
          reached.add(name)
        except OSError:
          pass
      with lock:
        done = reached == set(others) and set(others) <= heard
      if done:
        return
      if time.monotonic() > deadline:
        with lock:
          missing = sorted(n for n in others if n not in reached or n not in heard)
        raise UsageError(
            f"{task}: task {', '.join(f'{n} ({others[n]})' for n in missing)} did not come up "
            f"within {timeout:g} s; start it with the same command and its own TF_CONFIG task, "
            "or raise --worker_timeout")
      time.sleep(0.2)
  finally:
    stop.set()
    listener.join()
    server.close()
