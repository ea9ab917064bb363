"""Distribution strategies for training (`--strategy`).

The reference trains with PyTorch `nn.DataParallel` over the visible GPUs: one global batch (64 on
CIFAR, 256 on ImageNet) split across devices, gradients summed, BatchNorm statistics computed per
device. `tf.distribute.MirroredStrategy` reproduces that: Keras scales each replica's loss by
1/num_replicas and the optimizer sums the replicas' gradients before `update_step`, so the update
uses the mean gradient over the global batch.
"""
import os
from typing import Dict, Optional, Sequence, Tuple

import tf_rethink  # noqa: F401
import tensorflow as tf

from tf_rethink.util.errors import UsageError

STRATEGIES = ("mirrored", "one_device", "multi_worker")

# One strategy object per (name, devices) and process: two MirroredStrategy objects over the same
# devices number their collective ops alike and the second one's all-reduce then fails with
# "Shape mismatch in the collective instance"; MultiWorkerMirroredStrategy may exist only once.
_CACHE: Dict[Tuple[str, Optional[Tuple[str, ...]]], tf.distribute.Strategy] = {}


def has_gpu() -> bool:
  """True when TensorFlow sees a GPU (XLA `jit_compile` only pays off there)."""
  return bool(tf.config.list_physical_devices("GPU"))


def make_strategy(name: str = "mirrored",
                  devices: Optional[Sequence[str]] = None) -> tf.distribute.Strategy:
  """Returns the distribution strategy called `name`.

  Args:
    name: "mirrored" (all visible GPUs, else the CPU; `devices` overrides the device list, e.g.
      the 2 logical CPUs of the tests), "one_device" (GPU:0 if present, else CPU:0) or
      "multi_worker" (`MultiWorkerMirroredStrategy`, cluster from the TF_CONFIG variable).
    devices: optional device names for "mirrored" (e.g. `[d.name for d in
      tf.config.list_logical_devices('CPU')]`).

  Returns:
    The same object for the same arguments within a process (see `_CACHE`).

  Raises:
    UsageError: unknown name, `devices` given for another strategy, or TF_CONFIG missing.
  """
  key = (name, None if devices is None else tuple(devices))
  if key not in _CACHE:
    _CACHE[key] = _make(name, devices)
  return _CACHE[key]


def _make(name, devices):
  if name not in STRATEGIES:
    raise UsageError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
  if devices is not None and name != "mirrored":
    raise UsageError(f"devices= is only supported by the 'mirrored' strategy, not {name!r}")
  if name == "mirrored":
    if devices is not None:
      return tf.distribute.MirroredStrategy(devices=list(devices))
    if has_gpu():
      return tf.distribute.MirroredStrategy()
    return tf.distribute.MirroredStrategy(devices=["/cpu:0"])
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy("/gpu:0" if has_gpu() else "/cpu:0")
  if not os.environ.get("TF_CONFIG"):
    raise UsageError("strategy 'multi_worker' needs the TF_CONFIG environment variable (cluster "
                     "and task of this worker); set it on every worker or use --strategy=mirrored")
  from tf_rethink.run import validate  # pylint: disable=import-outside-toplevel
  validate.check_tf_config(name)   # JSON with cluster and task, else one line
  return tf.distribute.MultiWorkerMirroredStrategy()
