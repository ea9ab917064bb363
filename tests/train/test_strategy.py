"""make_strategy: names, device lists, TF_CONFIG checks, the chief predicate, one-machine
broadcast and saving (multi-worker runs: test_multi_worker.py)."""
import os

import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf

from tf_rethink.util.errors import UsageError
from tf_rethink.train import strategy as strategy_lib
from tf_rethink.train.strategy import STRATEGIES, make_strategy


def test_multi_worker_without_tf_config_is_a_usage_error(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(UsageError, match="TF_CONFIG") as e:
    make_strategy("multi_worker")
  assert "\n" not in str(e.value)


def test_unknown_name_lists_choices():
  with pytest.raises(UsageError) as e:
    make_strategy("tpu")
  assert all(name in str(e.value) for name in STRATEGIES)


def test_one_device_and_mirrored():
  one = make_strategy("one_device")
  assert isinstance(one, tf.distribute.OneDeviceStrategy) and one.num_replicas_in_sync == 1
  assert make_strategy().num_replicas_in_sync == max(1, len(tf.config.list_physical_devices("GPU")))
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
  two = make_strategy("mirrored", devices=cpus[:2])
  assert isinstance(two, tf.distribute.MirroredStrategy) and two.num_replicas_in_sync == 2
  with pytest.raises(UsageError):
    make_strategy("one_device", devices=cpus)


def test_same_arguments_give_the_same_strategy():
  # Two MirroredStrategy objects over the same devices would collide in their collective ops.
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
  assert make_strategy("mirrored", devices=cpus) is make_strategy("mirrored", devices=cpus)
  assert make_strategy("one_device") is make_strategy("one_device")


@pytest.mark.parametrize("text,needle", [
    ("{bad", "not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', 'no "cluster"'),
    ('{"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}',
     '"host:port" strings'),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', 'no "worker" or "chief"'),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "is not a task of the cluster (worker: 2)"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "is not a task of the cluster"),
])
def test_malformed_tf_config_is_one_line(monkeypatch, text, needle):
  monkeypatch.setenv("TF_CONFIG", text)
  with pytest.raises(UsageError) as e:
    strategy_lib.tf_config()
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_chief_is_the_chief_task_else_worker_0():
  assert strategy_lib.chief_task({"worker": ["a:1", "b:2"]}) == ("worker", 0)
  assert strategy_lib.chief_task({"chief": ["c:1"], "worker": ["a:1"]}) == ("chief", 0)
  one = make_strategy("one_device")
  assert strategy_lib.is_chief(one) and strategy_lib.num_workers(one) == 1


def test_one_machine_broadcast_and_chief_writes(tmp_path):
  one = make_strategy("one_device")
  assert strategy_lib.broadcast_text(one, "plan ü") == "plan ü"
  path = tmp_path / "w.txt"
  with strategy_lib.written_by_chief(one, str(path)) as tmp:
    assert tmp != str(path)
    with open(tmp, "w") as f:
      f.write("x")
  assert path.read_text() == "x" and os.listdir(tmp_path) == ["w.txt"]
  with strategy_lib.chief_or_temp(one, str(tmp_path)) as where:
    assert where == str(tmp_path)
