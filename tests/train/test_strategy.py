"""make_strategy: names, device lists, TF_CONFIG requirement."""
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf

from tf_rethink.util.errors import UsageError
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
