"""rendezvous.meet: tasks meet on their TF_CONFIG ports; a missing task is named by the deadline."""
import socket
import threading
import time

import pytest

from tf_rethink.run.local_cluster import free_ports
from tf_rethink.util import rendezvous
from tf_rethink.util.errors import UsageError


def _cluster(n):
  return {"worker": [f"127.0.0.1:{p}" for p in free_ports(n)]}


def test_three_tasks_meet_even_when_started_apart():
  cluster, errors = _cluster(3), []

  def task(i, delay):
    time.sleep(delay)
    try:
      rendezvous.meet(cluster, f"worker:{i}", timeout=20)
    except Exception as e:  # noqa: BLE001
      errors.append(e)

  threads = [threading.Thread(target=task, args=(i, 0.7 * i)) for i in range(3)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(30)
  assert not errors and not any(t.is_alive() for t in threads)
  for address in cluster["worker"]:   # every port is free again for TensorFlow's server
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(rendezvous.split_address(address))
    s.close()


def test_missing_task_is_named_after_the_deadline():
  cluster = _cluster(2)
  start = time.monotonic()
  with pytest.raises(UsageError) as e:
    rendezvous.meet(cluster, "worker:0", timeout=1.0)
  assert time.monotonic() - start < 5
  assert str(e.value).startswith(f"worker:0: task worker:1 ({cluster['worker'][1]}) did not come "
                                 "up within 1 s")


def test_own_port_taken_is_a_usage_error():
  busy = socket.socket()
  busy.bind(("127.0.0.1", 0))
  busy.listen(1)
  try:
    cluster = {"worker": [f"127.0.0.1:{busy.getsockname()[1]}", "127.0.0.1:1"]}
    with pytest.raises(UsageError, match="cannot listen on its TF_CONFIG address"):
      rendezvous.meet(cluster, "worker:0", timeout=1.0)
  finally:
    busy.close()
