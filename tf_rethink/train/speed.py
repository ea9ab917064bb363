"""Speed settings of the trainer: threads, steps per execution, mixed precision, XLA.

None of them changes the training protocol (paper spec 3.1): the optimizer, loss, schedule and
data are the same; they only change how the steps are executed. Defaults were measured with
`tools/bench_train.py` on a 2-core AVX512-BF16 CPU (numbers in the README's performance
section); "auto" picks per device:

* `mixed_precision`: "auto" is float16 compute + dynamic loss scaling on a GPU (tf_keras wraps the
  optimizer in a `LossScaleOptimizer` for `mixed_float16`), bfloat16 on a CPU with native
  bfloat16 arithmetic (AVX512_BF16 / AMX), float32 on other CPUs; "bf16" computes
  convolutions and matmuls in bfloat16 with float32 variables (no loss scaling needed: bfloat16
  has float32's exponent range); "off" is float32. Logits are cast to float32 before the
  softmax cross-entropy in every mode (`SparseCrossEntropy`).
* `jit_compile` (XLA): "auto" is on for a GPU only (on this CPU XLA made convnet training
  2.5x slower: ResNet-56 trained at 125 vs 313 img/s).
* `steps_per_execution`: training steps run per `tf.function` call (fewer Python round trips).
* `intra_op_threads` / `inter_op_threads`: TensorFlow thread pools; 0 keeps TensorFlow's default
  (one per core). They must be set before TensorFlow executes its first op (`set_threads`).
"""
import contextlib
import dataclasses

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.run.config import check_speed_settings
from tf_rethink.util.errors import UsageError

_POLICIES = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


@dataclasses.dataclass(frozen=True)
class SpeedSettings:
  """How training steps execute (not what they compute); see the module docstring."""
  steps_per_execution: int = 1
  mixed_precision: str = "auto"
  jit_compile: str = "auto"
  intra_op_threads: int = 0
  inter_op_threads: int = 0

  def __post_init__(self):
    check_speed_settings(self)

  def policy(self) -> str:
    """The Keras dtype policy name this setting resolves to on this machine."""
    mode = self.mixed_precision
    if mode == "auto":
      mode = "fp16" if _has_gpu() else "bf16" if cpu_has_bf16() else "off"
    return _POLICIES[mode]

  def jit(self) -> bool:
    return self.jit_compile == "on" or (self.jit_compile == "auto" and _has_gpu())


# What `trainer.train` / `compile_model` use when given no settings: float32 math, so library
# callers and tests get exactly the PyTorch-equivalent arithmetic unless they ask for speed.
FLOAT32 = SpeedSettings(mixed_precision="off")


def from_config(config) -> SpeedSettings:
  """The speed settings of a `tf_rethink.run.config.Config` (defaults for fields it lacks)."""
  default = SpeedSettings()
  return SpeedSettings(**{f: getattr(config, f, getattr(default, f))
                          for f in SpeedSettings.__dataclass_fields__})


def cpu_has_bf16() -> bool:
  """True when the CPU has native bfloat16 arithmetic (AVX512_BF16 or AMX-BF16, Linux)."""
  try:
    with open("/proc/cpuinfo") as f:
      flags = f.read()
  except OSError:
    return False
  return " avx512_bf16" in flags or " amx_bf16" in flags


def _has_gpu() -> bool:
  return bool(tf.config.list_physical_devices("GPU"))


def set_threads(settings: SpeedSettings, *, restart: bool = False) -> None:
  """Applies the thread settings (0 keeps the current value).

  TensorFlow fixes its thread pools when its runtime starts (main.py starts it while importing,
  to list the devices with stderr silenced). With `restart=True` a started runtime is reset once
  so that the pools can be resized: only safe before any tensor, variable, model or strategy
  exists (experiment.run calls it first thing). Otherwise a started runtime raises UsageError.
  """
  wanted = [(int(v), get, put, name) for v, get, put, name in (
      (settings.intra_op_threads, tf.config.threading.get_intra_op_parallelism_threads,
       tf.config.threading.set_intra_op_parallelism_threads, "intra_op_threads"),
      (settings.inter_op_threads, tf.config.threading.get_inter_op_parallelism_threads,
       tf.config.threading.set_inter_op_parallelism_threads, "inter_op_threads"))
      if v and get() != v]
  for value, _, put, name in wanted:
    try:
      put(value)
    except RuntimeError:
      if not restart:
        raise UsageError(f"--{name} must be applied before TensorFlow starts its runtime; set it "
                         "at the start of the program") from None
      from tensorflow.python.eager import context  # pylint: disable=import-outside-toplevel
      context._reset_context()  # pylint: disable=protected-access
      set_threads(settings)
      return


@contextlib.contextmanager
def policy_scope(settings: SpeedSettings):
  """Builds the layers created inside with the settings' dtype policy (restored afterwards)."""
  old = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(settings.policy())
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(old)


@keras.utils.register_keras_serializable(package="tf_rethink")
class SparseCrossEntropy(keras.losses.SparseCategoricalCrossentropy):
  """Softmax cross-entropy on logits, computed in float32 whatever the logits' dtype."""

  @tf.autograph.experimental.do_not_convert  # plain tensor code; avoids AutoGraph's warning
  def call(self, y_true, y_pred):
    return super().call(y_true, tf.cast(y_pred, tf.float32))
