"""Training callbacks: resumable per-epoch backup, persistent history, one-off scalars."""
import json
import math
import os
import time
from typing import Dict, List, Mapping

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.util import fs
from tf_rethink.util.errors import DivergedError, UsageError


class Backup(keras.callbacks.BackupAndRestore):
  """`BackupAndRestore` (model, optimizer slots, lr, step and epoch counters, each epoch) that
  turns an unreadable checkpoint into a one-line `UsageError` and also accepts
  `OneDeviceStrategy`.

  The backup is kept after `fit` returns (`delete_checkpoint=False`); the trainer deletes it
  only once the final weights and the result json are written, so a crash in between still
  resumes instead of restarting.
  """

  def __init__(self, backup_dir: str):
    super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)
    # Keras only lists multi-device strategies; one device checkpoints like no strategy.
    self._supported_strategies += (tf.distribute.OneDeviceStrategy,)

  def on_train_begin(self, logs=None):
    check_checkpoint(self.backup_dir)
    hint = f"checkpoint in {self.backup_dir} is corrupt or from another model; " \
           f"delete {self.backup_dir} to restart this run"
    try:
      super().on_train_begin(logs)
    except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
      raise UsageError(f"{hint} ({type(e).__name__})") from None


def check_checkpoint(backup_dir: str) -> None:
  """UsageError unless the latest checkpoint in `backup_dir` (if any) reads, every tensor."""
  hint = (f"checkpoint in {backup_dir} is corrupt or from another model; delete {backup_dir} to "
          "restart this run")
  chief = os.path.join(backup_dir, "chief")
  if not tf.io.gfile.exists(chief):
    return
  latest = tf.train.latest_checkpoint(chief)
  if tf.io.gfile.exists(os.path.join(chief, "checkpoint")) and latest is None:
    raise UsageError(hint)
  if latest is None:
    return
  try:
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except Exception as e:  # noqa: BLE001  (any read failure: DataLoss, IndexError, ...)
    raise UsageError(f"{hint} ({type(e).__name__})") from None


class StopOnDivergence(keras.callbacks.Callback):
  """Stops training at the first step whose loss is NaN or infinite, with one line (`DivergedError`:
  the run, epoch, step and lr). Raised inside the epoch, so that epoch's checkpoint is never
  written: the backup keeps the last good epoch, and no final weights, result, record or export
  of the diverged run exist."""

  def __init__(self, name: str):
    super().__init__()
    self.name, self._epoch = name, 0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get("loss")
    if loss is not None and not math.isfinite(float(loss)):
      lr = float(keras.backend.get_value(self.model.optimizer.learning_rate))
      raise DivergedError(f"training of {self.name} diverged: loss {float(loss)} at epoch "
                          f"{self._epoch + 1}, step {batch + 1}, lr {lr:g}; lower --lr (the last "
                          "good epoch's checkpoint is kept; nothing was recorded or exported)")


class HistoryRecorder(keras.callbacks.Callback):
  """Keeps the per-epoch logs of the whole run (across resumes) in `path` (json).

  Adds to each epoch's logs `val_best_accuracy` (max test accuracy so far: the reference repos
  report the best epoch, spec 3.1) and `epoch_time` (seconds). Epochs at or after the epoch
  `fit` starts from are dropped first, so a resumed run never double-counts an epoch. Place it
  before TensorBoard and the backup callback.
  """

  def __init__(self, path: str):
    super().__init__()
    self.path = path
    self.epochs: List[Dict[str, float]] = load_history(path)
    self._started = False
    self._t0 = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    if not self._started:
      self.epochs = self.epochs[:epoch]
      self._started = True
    self._t0 = time.time()

  def on_epoch_end(self, epoch, logs=None):
    logs = logs if logs is not None else {}
    accs = [e["val_accuracy"] for e in self.epochs if "val_accuracy" in e]
    if "val_accuracy" in logs:
      logs["val_best_accuracy"] = max(accs + [float(logs["val_accuracy"])])
    logs["epoch_time"] = time.time() - self._t0
    self.epochs.append({k: float(v) for k, v in logs.items()})
    fs.write_text(self.path, json.dumps(self.epochs))


def load_history(path: str) -> List[Dict[str, float]]:
  """The list of per-epoch log dicts saved by `HistoryRecorder` ([] if there is none)."""
  if not os.path.exists(path):
    return []
  try:
    with open(path) as f:
      return list(json.load(f))
  except (OSError, ValueError):
    raise UsageError(f"history file {path} is corrupt; delete its run directory "
                     f"{os.path.dirname(path)} to restart this run") from None


def as_columns(epochs: List[Mapping[str, float]]) -> Dict[str, List[float]]:
  """Keras-History-style dict: metric name -> list over epochs."""
  keys = sorted({k for e in epochs for k in e})
  return {k: [e.get(k, float("nan")) for e in epochs] for k in keys}


def write_scalars(logdir: str, scalars: Mapping[str, float], step: int = 0) -> None:
  """Writes `scalars` (e.g. params, flops) once to TensorBoard under `logdir`."""
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    for name, value in scalars.items():
      tf.summary.scalar(name, float(value), step=step)
  writer.flush()
  writer.close()


class EpochLine(keras.callbacks.Callback):
  """One line per epoch on standard output (for logs: what `--verbose=2` and a non-terminal
  output print instead of Keras's progress bar), e.g.
  `baseline epoch 3/6: loss 0.6121 - accuracy 0.7790 - val_loss 0.5406 - val_accuracy 0.8010 -
  lr 0.1 - 6.1 s`."""

  def __init__(self, name: str, epochs: int):
    super().__init__()
    self.name, self.epochs, self._start = name, epochs, 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    parts = [f"{k} {float(logs[k]):.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
             if k in logs]
    lr = logs.get("learning_rate", logs.get("lr"))
    if lr is not None:
      parts.append(f"lr {float(lr):.4g}")
    parts.append(f"{time.perf_counter() - self._start:.1f} s")
    print(f"{self.name} epoch {epoch + 1}/{self.epochs}: {' - '.join(parts)}", flush=True)
