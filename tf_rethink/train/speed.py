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
  softmax cross-entropy in every mode (`CrossEntropy`).
* `jit_compile` (XLA): "auto" is on for a GPU only (on this CPU XLA made convnet training
  2.5x slower: ResNet-56 trained at 125 vs 313 img/s).
* `steps_per_execution`: training steps run per `tf.function` call (fewer Python round trips).
* `intra_op_threads` / `inter_op_threads`: TensorFlow thread pools; 0 keeps TensorFlow's default
  (one per core). They must be set before TensorFlow executes its first op (`set_threads`).
* `conv_weight_grad`: "auto" computes the weight gradient of small, wide bfloat16 convolutions as
  one matmul per kernel tap on a CPU running oneDNN without AMX (`conv_weight_grad.py`: TensorFlow's
  backward-weights kernel is slow there; measured); "on" on any device, "off" never.

Under bfloat16 on a CPU, a BatchNormalization whose channel count is not a multiple of 16 computes
in float32, unfused if the count is not a multiple of 8 either
(`avoid_reference_batchnorm_kernels`, applied by `trainer.compile_model`): oneDNN has no
vectorized kernel for such counts, and pruned models have them.
"""
import contextlib
import dataclasses
from typing import Tuple

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.run.config import check_speed_settings
from tf_rethink.util import machine
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
  conv_weight_grad: str = "auto"

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

  def tap_matmul_weight_grads(self) -> bool:
    """Whether `compile_model` gives convolutions per-tap matmul weight gradients where they pay
    (`conv_weight_grad.py`): "on" always, "off" never, "auto" on a CPU without AMX (not measured
    there) where TensorFlow runs oneDNN."""
    if self.conv_weight_grad != "auto":
      return self.conv_weight_grad == "on"
    return not _has_gpu() and onednn_enabled() and not cpu_has_amx()


# What `trainer.train` / `compile_model` use when given no settings: float32 math, so library
# callers and tests get exactly the PyTorch-equivalent arithmetic unless they ask for speed.
FLOAT32 = SpeedSettings(mixed_precision="off", conv_weight_grad="off")


def from_config(config) -> SpeedSettings:
  """The speed settings of a `tf_rethink.run.config.Config` (defaults for fields it lacks)."""
  default = SpeedSettings()
  return SpeedSettings(**{f: getattr(config, f, getattr(default, f))
                          for f in SpeedSettings.__dataclass_fields__})


def cpu_has_bf16() -> bool:
  """True when the CPU has native bfloat16 arithmetic (AVX512_BF16 or AMX-BF16, Linux)."""
  flags = machine.isa()
  return flags["avx512_bf16"] or flags["amx_bf16"]


def cpu_has_amx() -> bool:
  """True when the CPU has AMX bfloat16 tiles (Linux)."""
  return machine.isa()["amx_bf16"]


def onednn_enabled() -> bool:
  """Whether TensorFlow runs its CPU kernels through oneDNN in this process (its default on CPUs
  with AVX512_VNNI, AVX512_BF16 or AMX; TF_ENABLE_ONEDNN_OPTS overrides)."""
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-direct-tensorflow-import
  return bool(_pywrap_util_port.IsMklEnabled())


# oneDNN (the one in TensorFlow 2.21) vectorizes bfloat16 batch normalization only over channel
# counts that are a multiple of 16, one 512-bit register of bfloat16, and float32 only over
# multiples of 8 (AVX2's `bnorm_tbb_jit:avx2`); any other count runs its reference implementation
# (`nspc_bnorm:any` in ONEDNN_VERBOSE). Forward + backward of one batch norm, 64x32x32xC, in ms
# (Intel Xeon with AMX; the AMD AVX512-BF16 machine showed the same 2x pruned-model epochs):
#
#   C                      6      8     16     22     57     64
#   bfloat16, fused     20.7   37.0    1.7   34.8   40.8    4.1
#   float32, fused      10.8    1.7    2.9   16.3   24.4    7.7
#   float32, unfused     3.2    2.8    4.2    7.3   14.0   17.3   (TensorFlow's element-wise ops)
#
# The channel counts of pruned models are arbitrary: VGG-16-A at x0.25 keeps 8 of conv1's 16
# filters, and its Scratch-E trained at 107.7 ms per step against 50.9 for the LARGER model (59.0
# with that batch norm in float32); ResNet-56-B keeps 6, 22 and 57.
BF16_BATCHNORM_CHANNEL_MULTIPLE = 16
FLOAT32_BATCHNORM_CHANNEL_MULTIPLE = 8
_BATCHNORMS = (keras.layers.BatchNormalization, keras.layers.experimental.SyncBatchNormalization)


def avoid_reference_batchnorm_kernels(model) -> Tuple[str, ...]:
  """On a CPU, every batch norm of `model` that computes in bfloat16 with a channel count that is
  not a multiple of 16 computes in float32 instead, and unfused (element-wise ops) where the count
  is not a multiple of 8 either: the fastest of the three for each count (table above). Returns
  their names.

  Call before the model is traced (compile_model does). It changes no result beyond rounding: the
  variables are float32 either way, the layer's input is cast up and the next layer casts its
  output back down to bfloat16 (Keras's autocast); fused and unfused compute the same batch
  statistics. Not applied with a GPU (cuDNN has no such restriction)."""
  if _has_gpu():
    return ()
  changed = []
  for layer in model.submodules:
    if (not isinstance(layer, _BATCHNORMS) or not layer.built
        or layer.compute_dtype != "bfloat16"):
      continue
    channels = layer.moving_mean.shape.num_elements()
    if channels % BF16_BATCHNORM_CHANNEL_MULTIPLE:
      layer._set_dtype_policy("float32")  # pylint: disable=protected-access
      if channels % FLOAT32_BATCHNORM_CHANNEL_MULTIPLE:
        layer.fused = False   # read when the call is traced
      changed.append(layer.name)
  return tuple(changed)


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
class CrossEntropy(keras.losses.Loss):
  """Softmax cross-entropy on logits, computed in float32 whatever the logits' dtype.

  Labels are int class ids [B] (the paper's) or one-hot/soft float rows [B, classes] (MixUp,
  CutMix: `data.recipes`); the form is read from the labels' rank, so a model trained on soft
  labels is evaluated on the test set's int labels with the same loss."""

  def __init__(self, from_logits=True, **kwargs):
    super().__init__(**kwargs)
    self.from_logits = from_logits

  @tf.autograph.experimental.do_not_convert  # plain tensor code; avoids AutoGraph's warning
  def call(self, y_true, y_pred):
    y_pred = tf.cast(y_pred, tf.float32)
    if _soft(y_true, y_pred):
      return keras.losses.categorical_crossentropy(tf.cast(y_true, tf.float32), y_pred,
                                                   from_logits=self.from_logits)
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred,
                                                        from_logits=self.from_logits)

  def get_config(self):
    return {**super().get_config(), "from_logits": self.from_logits}


@tf.autograph.experimental.do_not_convert
def accuracy(y_true, y_pred):
  """Top-1 accuracy per example against int labels, or against the argmax of soft labels."""
  if _soft(y_true, y_pred):
    y_true = tf.argmax(y_true, axis=-1)
  y_true = tf.reshape(tf.cast(y_true, tf.int64), [-1])
  return tf.cast(tf.equal(y_true, tf.argmax(y_pred, axis=-1)), tf.float32)


def Accuracy() -> keras.metrics.Metric:  # pylint: disable=invalid-name
  """The trainer's "accuracy" metric (`accuracy`); one metric object for training batches with
  soft labels and test batches with int labels (Keras's "accuracy" string picks its kind once,
  from the first batch it sees)."""
  return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


def _soft(y_true, y_pred) -> bool:
  """Labels are rows of class weights (rank of the logits) rather than class ids."""
  return y_true.shape.rank == y_pred.shape.rank and y_true.shape[-1] != 1
