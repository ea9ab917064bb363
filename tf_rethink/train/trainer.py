"""`train`: the one training loop every regime uses (paper spec 3.1, 3.2, 3.5).

Protocol: SGD with PyTorch semantics and coupled L2 on every trainable variable
(`optimizer.SGD`), step lr by epoch (`schedules.StepLR`), softmax cross-entropy on logits,
evaluation on the test set after every epoch. The reference repos report the BEST test accuracy
over epochs (`model_best`); we log both the final and the best (spec 3.1).

Run directory layout (everything needed to resume or reuse a run):
  run_dir/train_spec.json      the TrainSpec this run was started with (resume must match)
  run_dir/backup/              per-epoch checkpoint: model, optimizer slots, counters
  run_dir/history.json         per-epoch logs of the whole run (survives resumes)
  run_dir/tb/                  TensorBoard: loss, accuracy, val_*, learning_rate, scalars
  run_dir/final.weights.h5     final weights (written atomically)
  run_dir/train_result.json    TrainResult without the model; its presence marks a finished run

Several workers (`strategy.start("multi_worker")`): each keeps its share of every global batch
(`strategy.shard_options`); only the chief writes train_spec.json, TensorBoard, final weights and
the result; the others keep their history in history.worker<i>.json and their checkpoints in
Keras's per-worker temporary directories, deleted when the run finishes. A relaunched job resumes
every worker from the chief's last epoch checkpoint (run_dir/backup/chief).
"""
import dataclasses
import json
import os
import shutil
from typing import Callable, Mapping, Optional, Sequence, Tuple, Union

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.pruning.graph import require_tf_keras
from tf_rethink.util import fs
from tf_rethink.util import progress
from tf_rethink.util.errors import UsageError
from tf_rethink.train import callbacks as cb
from tf_rethink.train.optimizer import SGD
from tf_rethink.train.schedules import StepLR
from tf_rethink.train import conv_weight_grad
from tf_rethink.train import speed as speed_lib
from tf_rethink.train import strategy as strategy_lib
from tf_rethink.train.speed import SpeedSettings

FINAL_WEIGHTS = "final.weights.h5"
RESULT_JSON = "train_result.json"
SPEC_JSON = "train_spec.json"
HISTORY_JSON = "history.json"


@dataclasses.dataclass(frozen=True)
class TrainSpec:
  """One training run's hyper-parameters (CIFAR: 160 epochs, lr 0.1, batch 64, wd 1e-4,
  milestones (80, 120), gamma 0.1, momentum 0.9, no Nesterov)."""
  epochs: int
  lr: float
  batch_size: int
  weight_decay: float
  milestones: Tuple[int, ...] = ()
  gamma: float = 0.1
  momentum: float = 0.9
  nesterov: bool = False

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["milestones"] = [int(m) for m in self.milestones]
    return d


@dataclasses.dataclass
class TrainResult:
  """What `train` returns. `history`: metric -> per-epoch list (loss, accuracy, val_loss,
  val_accuracy, val_best_accuracy, learning_rate, epoch_time). `wall_time`: seconds spent in
  training epochs (incl. evaluation), summed over resumed sessions."""
  model: keras.Model
  test_accuracy: float
  best_test_accuracy: float
  history: dict
  wall_time: float
  epochs: int


def make_optimizer(spec: TrainSpec) -> SGD:
  """PyTorch SGD(lr, momentum, nesterov, weight_decay) for `spec` (lr set per epoch by StepLR)."""
  return SGD(learning_rate=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov,
             weight_decay=spec.weight_decay)


def compile_model(model: keras.Model, spec: TrainSpec,
                  speed: Optional[SpeedSettings] = None) -> keras.Model:
  """Compiles with SGD, CE on logits and accuracy (int or one-hot labels; call inside
  `strategy.scope()`).

  `speed` (default `speed.FLOAT32`) sets XLA and steps per execution; build the model inside
  `speed_lib.policy_scope(speed)` for its mixed precision (batch norms whose bfloat16 kernel would
  be oneDNN's slow reference one then compute in float32, unfused where float32's kernel would be
  the reference one too: `speed_lib.avoid_reference_batchnorm_kernels`; small, wide bfloat16
  convolutions get per-tap matmul weight gradients where `speed.conv_weight_grad` says so:
  `conv_weight_grad.use_tap_matmul_weight_grads`)."""
  require_tf_keras(model, "training (the paper's regimes: SGD with coupled L2, step lr)")
  speed = speed or speed_lib.FLOAT32
  speed_lib.avoid_reference_batchnorm_kernels(model)
  if speed.tap_matmul_weight_grads():
    conv_weight_grad.use_tap_matmul_weight_grads(model)
  model.compile(optimizer=make_optimizer(spec),
                loss=speed_lib.CrossEntropy(from_logits=True),
                metrics=[speed_lib.Accuracy()], jit_compile=speed.jit(),
                steps_per_execution=speed.steps_per_execution)
  return model


def _check_spec(run_dir: str, spec: TrainSpec, write: bool) -> None:
  path = os.path.join(run_dir, SPEC_JSON)
  if os.path.exists(path):
    with open(path) as f:
      try:
        old = json.load(f)
      except ValueError:
        old = None
    if old != spec.to_dict():
      raise UsageError(f"{run_dir} holds a run with a different TrainSpec ({old}); use another "
                       f"run directory or delete {run_dir}")
  elif write:
    fs.write_text(path, json.dumps(spec.to_dict()))


def _load_finished(model: keras.Model, run_dir: str) -> Optional[TrainResult]:
  weights = os.path.join(run_dir, FINAL_WEIGHTS)
  result = os.path.join(run_dir, RESULT_JSON)
  if not (os.path.exists(weights) and os.path.exists(result)):
    return None
  try:
    with open(result) as f:
      r = json.load(f)
    model.load_weights(weights)
  except (OSError, ValueError, KeyError, tf.errors.OpError) as e:
    raise UsageError(f"finished run in {run_dir} is unreadable ({type(e).__name__}); delete "
                     f"{weights} and {result} to train again") from None
  return TrainResult(model=model, test_accuracy=r["test_accuracy"],
                     best_test_accuracy=r["best_test_accuracy"], history=r["history"],
                     wall_time=r["wall_time"], epochs=r["epochs"])


def _resume_epoch(backup_dir: str) -> int:
  """The epoch `callbacks.Backup` resumes at: the checkpoint's saved epoch + 1 (0 without one)."""
  chief = os.path.join(backup_dir, "chief")
  latest = tf.train.latest_checkpoint(chief) if tf.io.gfile.exists(chief) else None
  if latest is None:
    return 0
  saved = int(tf.train.load_checkpoint(latest).get_tensor(
      "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
  return saved + 1 if saved >= 0 else 0


def train(build_model: Callable[[], keras.Model], train_ds, test_ds, spec: TrainSpec, *,
          strategy: tf.distribute.Strategy, run_dir: str,
          extra_callbacks: Sequence[keras.callbacks.Callback] = (),
          scalars: Union[None, Mapping[str, float], Callable[[keras.Model], Mapping]] = None,
          verbose: Optional[int] = None,
          speed: Optional[SpeedSettings] = None) -> TrainResult:
  """Trains `build_model()` for `spec.epochs` epochs; resumes or reuses what `run_dir` holds.

  Args:
    build_model: returns a fresh (uncompiled) functional model; called in `strategy.scope()`.
    train_ds, test_ds: batched datasets of (image, int label); batch = the GLOBAL batch.
    spec: the hyper-parameters.
    strategy: a `tf.distribute.Strategy` (see `strategy.make_strategy`).
    run_dir: where checkpoints, TensorBoard logs and results go. Rerunning the same call after
      an interruption continues at the epoch after the last completed one, with the same
      weights, optimizer state and lr; if the run already finished, it is loaded, not retrained.
    extra_callbacks: e.g. a pruner's callbacks; run after the lr and history callbacks and
      before TensorBoard and the backup.
    scalars: logged once to TensorBoard (e.g. {"params": ..., "flops": ...}), or a function of the
      built model returning them.
    verbose: 0 silent, 1 Keras's progress bar, 2 one line per epoch (`callbacks.EpochLine`);
      None: 1 on a terminal, 2 otherwise (`util.progress.resolve_verbose`).
    speed: how the steps execute (mixed precision, XLA, steps per execution; `speed.py`);
      None: float32 (`speed.FLOAT32`). main.py passes the --mixed_precision etc. flags.

  Raises:
    UsageError: corrupt checkpoint/result files, or `run_dir` was started with another spec.
  """
  os.makedirs(run_dir, exist_ok=True)
  verbose = progress.resolve_verbose(verbose)
  chief = strategy_lib.is_chief(strategy)
  if strategy_lib.num_workers(strategy) > 1:
    train_ds = train_ds.with_options(strategy_lib.shard_options())
    test_ds = test_ds.with_options(strategy_lib.shard_options())
  speed = speed or speed_lib.FLOAT32
  with strategy.scope(), speed_lib.policy_scope(speed):
    model = compile_model(build_model(), spec, speed)
  finished = _load_finished(model, run_dir)
  if finished is not None:
    _check_spec(run_dir, spec, write=False)
    return finished
  _check_spec(run_dir, spec, write=chief)

  history_path = os.path.join(run_dir, HISTORY_JSON)
  if not chief:  # non-chief workers of multi_worker keep their own (discarded) copy
    history_path = os.path.join(run_dir, f"history.worker{strategy.cluster_resolver.task_id}.json")
  recorder = cb.HistoryRecorder(history_path)
  tb_dir = os.path.join(run_dir, "tb")
  if scalars and chief and not recorder.epochs:
    cb.write_scalars(os.path.join(tb_dir, "train"), scalars(model) if callable(scalars) else
                     scalars)
  callbacks = [StepLR(spec.lr, spec.milestones, spec.gamma),
               cb.StopOnDivergence(os.path.basename(os.path.normpath(run_dir))), recorder,
               *extra_callbacks,
               keras.callbacks.TensorBoard(tb_dir, histogram_freq=0, write_graph=False,
                                           profile_batch=0, update_freq="epoch"),
               cb.Backup(os.path.join(run_dir, "backup"))]
  if verbose == progress.LINES:
    callbacks.append(cb.EpochLine(os.path.basename(os.path.normpath(run_dir)), spec.epochs))
  fit_kwargs = {}
  if hasattr(train_ds, "for_epochs"):  # every random stream keyed by (seed, run, epoch)
    first = _resume_epoch(os.path.join(run_dir, "backup"))
    fit_kwargs["steps_per_epoch"] = train_ds.steps_per_epoch
    train_ds = train_ds.for_epochs(first, max(spec.epochs - first, 1),
                                   os.path.basename(os.path.normpath(run_dir)))
  model.fit(train_ds, epochs=spec.epochs, validation_data=test_ds, callbacks=callbacks,
            verbose=progress.BAR if verbose == progress.BAR else 0, **fit_kwargs)

  epochs = recorder.epochs
  if len(epochs) != spec.epochs:
    raise UsageError(f"{run_dir}: expected {spec.epochs} epochs of history, found {len(epochs)}; "
                     f"delete {run_dir} to restart this run")
  accs = [e["val_accuracy"] for e in epochs]
  result = {"test_accuracy": accs[-1], "best_test_accuracy": max(accs),
            "history": cb.as_columns(epochs), "wall_time": sum(e["epoch_time"] for e in epochs),
            "epochs": spec.epochs, "spec": spec.to_dict()}
  with strategy_lib.written_by_chief(strategy, os.path.join(run_dir, FINAL_WEIGHTS)) as tmp:
    model.save_weights(tmp)   # every worker saves (a collective read), only the chief keeps it
  if chief:
    fs.write_text(os.path.join(run_dir, RESULT_JSON), json.dumps(result, indent=1))
    shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)
  else:
    os.remove(history_path)   # this worker's copy; the chief's history.json is the record
  if verbose and chief:
    print(f"{run_dir}: final test accuracy {result['test_accuracy']:.4f}, "
          f"best {result['best_test_accuracy']:.4f} ({result['wall_time']:.0f} s)")
  return TrainResult(model=model, test_accuracy=result["test_accuracy"],
                     best_test_accuracy=result["best_test_accuracy"],
                     history=result["history"], wall_time=result["wall_time"],
                     epochs=spec.epochs)
