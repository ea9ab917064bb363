"""Distribution strategies for training (`--strategy`).

The reference trains with PyTorch `nn.DataParallel` over the visible GPUs: one global batch (64 on
CIFAR, 256 on ImageNet) split across devices, gradients summed, BatchNorm statistics computed per
device. `tf.distribute.MirroredStrategy` reproduces that: Keras scales each replica's loss by
1/num_replicas and the optimizer sums the replicas' gradients before `update_step`, so the update
uses the mean gradient over the global batch.

Several machines (`multi_worker`, TensorFlow's own `MultiWorkerMirroredStrategy`, cluster from
TF_CONFIG; docs/multi_worker.md):
  * The strategy must be made before anything runs on TensorFlow (collective ops are configured
    when the runtime starts): a command calls `start` first thing (run/main.py's `entry`).
  * `start` waits for every task of the cluster with a deadline (`worker_timeout`,
    `util.rendezvous`): a task that never comes up ends every other worker with one line naming
    it (exit status 2), instead of the runtime's uninterruptible wait of up to an hour.
  * The chief (`is_chief`: task type "chief", or worker 0 when the cluster has no chief) alone
    writes results, plans, exports, TensorBoard and final weights; the others write their
    temporary checkpoints to per-worker directories that Keras deletes (BackupAndRestore).
  * `broadcast_text` sends a text (the plan) from the chief to every worker through a collective
    all-reduce, so no worker selects on its own and none polls the file system for it.
  * Each worker reads the whole input pipeline and keeps its share of every global batch
    (`shard_options`: tf.data AutoShardPolicy.DATA); the global batch, the lr schedule and the
    epoch mean what they mean on one machine. BatchNorm statistics are per replica (per worker
    here: one replica each), like `nn.DataParallel` and MirroredStrategy: each replica normalizes
    its own slice of the global batch, and the moving averages are the replicas' mean.
"""
import contextlib
import json
import os
import tempfile
from typing import Dict, Iterator, Optional, Sequence, Tuple

import tf_rethink  # noqa: F401
import tensorflow as tf

from tf_rethink.util import fs
from tf_rethink.util import rendezvous
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
  tf_config()  # a one-line UsageError when TF_CONFIG is missing or malformed
  from tensorflow.python.eager import context  # pylint: disable=import-outside-toplevel
  if context.context()._initialized:  # pylint: disable=protected-access
    raise UsageError("strategy 'multi_worker' must be made before TensorFlow starts its runtime; "
                     "call tf_rethink.train.strategy.start('multi_worker') first in the program")
  return tf.distribute.MultiWorkerMirroredStrategy()


def tf_config() -> dict:
  """TF_CONFIG of this process, checked: {"cluster": {job: ["host:port", ...]}, "task": {"type":
  job, "index": i}} with the task in the cluster and a worker or chief job present.

  Raises:
    UsageError: missing, not JSON, or inconsistent (one line saying what is wrong).
  """
  text = os.environ.get("TF_CONFIG", "")
  if not text.strip():
    raise UsageError("strategy 'multi_worker' needs the TF_CONFIG environment variable (cluster "
                     "and task of this worker); set it on every worker or use --strategy=mirrored")
  hint = ('; expected e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
          '"task": {"type": "worker", "index": 0}}')
  try:
    cfg = json.loads(text)
  except ValueError as e:
    raise UsageError(f"TF_CONFIG is not valid JSON ({e}){hint}") from None
  cluster = cfg.get("cluster") if isinstance(cfg, dict) else None
  task = cfg.get("task") if isinstance(cfg, dict) else None
  if not isinstance(cluster, dict) or not cluster:
    raise UsageError(f"TF_CONFIG has no \"cluster\" mapping of jobs to addresses{hint}")
  for job, addresses in cluster.items():
    if (not isinstance(addresses, list) or not addresses or
        not all(isinstance(a, str) and rendezvous.split_address(a) for a in addresses)):
      raise UsageError(f"TF_CONFIG cluster job {job!r} must be a non-empty list of "
                       f"\"host:port\" strings, not {addresses!r}{hint}")
  if not ({"worker", "chief"} & set(cluster)):
    raise UsageError(f"TF_CONFIG cluster has no \"worker\" or \"chief\" job{hint}")
  if not isinstance(task, dict) or task.get("type") not in cluster or \
      not isinstance(task.get("index"), int) or \
      not 0 <= task["index"] < len(cluster[task["type"]]):
    raise UsageError(f"TF_CONFIG task {task!r} is not a task of the cluster "
                     f"({', '.join(f'{j}: {len(a)}' for j, a in cluster.items())}){hint}")
  return cfg


def chief_task(cluster: dict) -> Tuple[str, int]:
  """The chief of a TF_CONFIG cluster: the "chief" task if there is one, else worker 0."""
  return ("chief", 0) if "chief" in cluster else ("worker", 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the shared files (results, plan, exports, TensorBoard, final
  weights): always on one machine; under `multi_worker` only the chief (`chief_task`)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  cluster = resolver.cluster_spec().as_dict()
  return (resolver.task_type, resolver.task_id) == chief_task(cluster)


@contextlib.contextmanager
def chief_or_temp(strategy: tf.distribute.Strategy, path: str) -> Iterator[str]:
  """`path` on the chief; on other workers the same name in a temporary directory of their own,
  deleted afterwards. TensorFlow's multi-worker saving recipe: every worker saves (reading
  BatchNorm's synchronized-on-read statistics is a collective all workers must join), only the
  chief's copy is kept."""
  if is_chief(strategy):
    yield path
    return
  with tempfile.TemporaryDirectory(prefix="tf_rethink-worker-") as tmp_dir:
    yield os.path.join(tmp_dir, os.path.basename(os.path.normpath(path)))


@contextlib.contextmanager
def written_by_chief(strategy: tf.distribute.Strategy, path: str) -> Iterator[str]:
  """A file name to save `path` to on every worker (`chief_or_temp`); the chief's is written
  atomically (`util.fs.atomic_path`)."""
  with chief_or_temp(strategy, path) as target:
    with fs.atomic_path(target) as tmp:
      yield tmp


def num_workers(strategy: tf.distribute.Strategy) -> int:
  """Worker processes taking part in the training (1 unless `multi_worker`)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None:
    return 1
  cluster = resolver.cluster_spec().as_dict()
  return sum(len(cluster.get(job, ())) for job in ("chief", "worker")) or 1


def shard_options() -> tf.data.Options:
  """tf.data options sharding by DATA: every worker reads the pipeline and keeps its part of each
  global batch (the batches of one machine, split across the workers' replicas)."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return options


def start(name: str, *, worker_timeout: float = 120.0,
          before: Optional[callable] = None) -> tf.distribute.Strategy:
  """Makes the strategy `name` at program start (call before any tensor, model or dataset).

  For "multi_worker": the workers first meet with a deadline (`util.rendezvous.meet`: a task that
  never comes up is named in a one-line UsageError after `worker_timeout` seconds; TensorFlow's
  own wait cannot be interrupted), a runtime started only to list devices (run/main.py does that
  while importing) is reset, `before()` runs (e.g. thread settings), the strategy is made and an
  all-reduce over the workers checks that every replica takes part. Other strategies are made as
  `make_strategy` does, after `before()`.
  """
  if name != "multi_worker":
    if before is not None:
      before()
    return make_strategy(name)
  cfg = tf_config()
  if ("multi_worker", None) not in _CACHE:
    rendezvous.meet(cfg["cluster"], f"{cfg['task']['type']}:{cfg['task']['index']}",
                    worker_timeout)
    from tensorflow.python.eager import context  # pylint: disable=import-outside-toplevel
    if context.context()._initialized:  # pylint: disable=protected-access
      context._reset_context()  # pylint: disable=protected-access
  if before is not None:
    before()
  strategy = make_strategy("multi_worker")
  up = strategy.reduce("SUM", strategy.run(lambda: tf.constant(1, tf.int32)), axis=None)
  if int(up) != strategy.num_replicas_in_sync:
    raise UsageError(f"the startup all-reduce counted {int(up)} replicas, expected "
                     f"{strategy.num_replicas_in_sync}")
  return strategy


def broadcast_text(strategy: tf.distribute.Strategy, text: Optional[str]) -> str:
  """`text` of the chief, on every worker (an all-reduce: the chief adds its UTF-8 bytes, the
  others zeros). On one machine it returns `text` itself. Every worker must call it, in the same
  order; only the chief's `text` is read (the others may pass None)."""
  if num_workers(strategy) == 1:
    return text
  chief = is_chief(strategy)
  data = (text or "").encode("utf-8") if chief else b""
  length = _all_sum(strategy, tf.constant([len(data)], tf.int64))
  n = int(length[0])
  import numpy as np  # pylint: disable=import-outside-toplevel
  mine = np.frombuffer(data, np.uint8).astype(np.int32) if chief else np.zeros(n, np.int32)
  total = _all_sum(strategy, tf.constant(mine, tf.int32, shape=[n]))
  return bytes(total.numpy().astype(np.uint8).tolist()).decode("utf-8")


def _all_sum(strategy, value):
  """The sum over workers of one tensor per worker (each worker's first replica contributes it,
  its other replicas zeros)."""
  def fn():
    ctx = tf.distribute.get_replica_context()
    first = tf.cast(tf.equal(ctx.replica_id_in_sync_group % max(
        1, strategy.num_replicas_in_sync // num_workers(strategy)), 0), value.dtype)
    return value * first
  return strategy.reduce("SUM", strategy.run(fn), axis=None)
