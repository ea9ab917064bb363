"""Speed settings: validation, dtype policies, float32 loss, and training equivalence."""
import dataclasses

import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.run.config import SPEED_FIELDS, Config, parse_speed_settings
from tf_rethink.util.errors import UsageError
from tf_rethink.train import speed
from tf_rethink.train.strategy import make_strategy
from tf_rethink.train.trainer import TrainSpec, compile_model, train
from tests.helpers import tiny_convnet, tiny_dataset


def test_config_and_speed_defaults_agree():
  default = speed.SpeedSettings()
  assert speed.from_config(Config()) == default
  for field in dataclasses.fields(speed.SpeedSettings):
    assert getattr(Config(), field.name) == getattr(default, field.name)
  assert speed.from_config(Config(mixed_precision="bf16", steps_per_execution=4)) == \
      speed.SpeedSettings(steps_per_execution=4, mixed_precision="bf16")
  # speed settings never make a workdir "another experiment"
  assert Config(mixed_precision="bf16").identity() == Config().identity()
  assert tuple(f.name for f in dataclasses.fields(speed.SpeedSettings)) == SPEED_FIELDS


def test_parse_speed_settings():
  assert parse_speed_settings("mixed_precision=bf16, steps_per_execution=4") == {
      "mixed_precision": "bf16", "steps_per_execution": 4}
  assert parse_speed_settings("") == {}
  with pytest.raises(UsageError, match="name among steps_per_execution"):
    parse_speed_settings("precision=bf16")
  with pytest.raises(UsageError, match="must be name=value"):
    parse_speed_settings("mixed_precision")


@pytest.mark.parametrize("kwargs", [dict(mixed_precision="fp8"), dict(jit_compile="yes"),
                                    dict(steps_per_execution=0), dict(intra_op_threads=-1)])
def test_bad_settings_raise_usage_errors(kwargs):
  with pytest.raises(UsageError, match=next(iter(kwargs))):
    speed.SpeedSettings(**kwargs)
  with pytest.raises(UsageError, match=next(iter(kwargs))):
    Config(**kwargs)


def test_policy_resolution_on_this_cpu():
  assert not tf.config.list_physical_devices("GPU")
  auto = "mixed_bfloat16" if speed.cpu_has_bf16() else "float32"   # auto on a CPU
  assert speed.SpeedSettings().policy() == auto
  assert speed.FLOAT32.policy() == "float32"
  assert speed.SpeedSettings(mixed_precision="bf16").policy() == "mixed_bfloat16"
  assert speed.SpeedSettings(mixed_precision="fp16").policy() == "mixed_float16"
  assert speed.SpeedSettings(mixed_precision="off").policy() == "float32"
  assert not speed.SpeedSettings().jit() and speed.SpeedSettings(jit_compile="on").jit()


def test_policy_scope_restores_the_global_policy():
  with speed.policy_scope(speed.SpeedSettings(mixed_precision="bf16")):
    layer = keras.layers.Dense(2)
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
  assert keras.mixed_precision.global_policy().name == "float32"
  assert layer.compute_dtype == "bfloat16" and layer.dtype == "float32"


def test_loss_is_float32_for_bfloat16_logits():
  logits = tf.constant([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
  labels = tf.constant([0, 2])
  loss = speed.CrossEntropy(from_logits=True)
  want = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
  got = loss(labels, tf.cast(logits, tf.bfloat16))
  assert got.dtype == tf.float32
  # only the logits' bf16 rounding (8 bits of mantissa) remains
  np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-2)
  assert loss(labels, logits).numpy() == pytest.approx(want.numpy(), rel=1e-6)


def _build():
  return tiny_convnet()


def _data():
  return tiny_dataset(48)


SPEC = TrainSpec(epochs=3, lr=0.1, batch_size=8, weight_decay=1e-3, milestones=(2,))


def test_steps_per_execution_trains_the_same_weights(tmp_path):
  """Several steps per call change scheduling only: same final weights as one step per call."""
  train_ds, test_ds = _data()
  strategy = make_strategy("one_device")
  results = {}
  for spe in (1, 4):
    keras.utils.set_random_seed(1)
    results[spe] = train(_build, train_ds, test_ds, SPEC, strategy=strategy,
                         run_dir=str(tmp_path / f"spe{spe}"), verbose=0,
                         speed=speed.SpeedSettings(steps_per_execution=spe))
  assert results[4].model._steps_per_execution.numpy() == 4
  for a, b in zip(results[1].model.get_weights(), results[4].model.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert results[1].history["learning_rate"] == results[4].history["learning_rate"] == \
      [0.1, 0.1, pytest.approx(0.01)]


def test_bf16_trains_with_float32_variables_and_close_loss(tmp_path):
  train_ds, test_ds = _data()
  strategy = make_strategy("one_device")
  results = {}
  for mode in ("off", "bf16"):
    keras.utils.set_random_seed(1)
    results[mode] = train(_build, train_ds, test_ds, SPEC, strategy=strategy,
                          run_dir=str(tmp_path / mode), verbose=0,
                          speed=speed.SpeedSettings(mixed_precision=mode))
  model = results["bf16"].model
  assert model.get_layer("conv1").compute_dtype == "bfloat16"
  assert all(v.dtype == tf.float32 for v in model.variables)
  assert keras.mixed_precision.global_policy().name == "float32"   # restored after train
  f32, b16 = results["off"].history["loss"], results["bf16"].history["loss"]
  assert f32[-1] < f32[0] and b16[-1] < b16[0]                     # both learn
  np.testing.assert_allclose(b16, f32, rtol=0.05)


def test_loss_and_accuracy_take_int_and_one_hot_labels():
  logits = tf.constant([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [1.0, 0.0, -1.0]])
  ids = tf.constant([0, 2, 1])
  loss = speed.CrossEntropy(from_logits=True)
  sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(ids, logits).numpy()
  assert loss(ids, logits).numpy() == pytest.approx(sparse, rel=1e-6)
  assert loss(ids[:, None], logits).numpy() == pytest.approx(sparse, rel=1e-6)
  assert loss(tf.one_hot(ids, 3), logits).numpy() == pytest.approx(sparse, rel=1e-6)
  soft = tf.constant([[0.7, 0.3, 0.0], [0.0, 0.5, 0.5], [0.2, 0.2, 0.6]])
  want = -np.mean(np.sum(soft.numpy() * tf.nn.log_softmax(logits).numpy(), axis=1))
  assert loss(soft, logits).numpy() == pytest.approx(want, rel=1e-6)
  np.testing.assert_array_equal(speed.accuracy(ids, logits).numpy(), [1, 1, 0])
  np.testing.assert_array_equal(speed.accuracy(soft, logits).numpy(), [1, 0, 0])


def test_compile_model_sets_xla_and_steps():
  model = compile_model(_build(), SPEC, speed.SpeedSettings(steps_per_execution=3,
                                                            jit_compile="off"))
  assert model._steps_per_execution.numpy() == 3
  assert not model._jit_compile
  assert isinstance(model.loss, speed.CrossEntropy)


def test_threads_are_applied_after_main_started_tensorflow():
  """main.py starts TensorFlow at import; set_threads(restart=True) still resizes the pools."""
  import subprocess
  import sys
  code = ("from tf_rethink.util import quiet; tf = quiet.import_tensorflow()\n"
          "from tf_rethink.train import speed\n"
          "s = speed.SpeedSettings(intra_op_threads=1, inter_op_threads=1)\n"
          "try:\n  speed.set_threads(s)\nexcept Exception as e:\n  print(type(e).__name__)\n"
          "speed.set_threads(s, restart=True)\n"
          "print(float(tf.reduce_sum(tf.ones([3]))), tf.config.threading"
          ".get_intra_op_parallelism_threads(), tf.config.threading"
          ".get_inter_op_parallelism_threads())\n")
  import os
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                        check=True, cwd=root)
  assert proc.stdout.split() == ["UsageError", "3.0", "1", "1"]


def _odd_and_even_batchnorms():
  inputs = keras.Input((12, 12, 3))
  x = keras.layers.Conv2D(6, 3, padding="same", name="conv6")(inputs)
  x = keras.layers.BatchNormalization(name="bn6")(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.Conv2D(8, 3, padding="same", name="conv8")(x)
  x = keras.layers.BatchNormalization(name="bn8")(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.Conv2D(16, 3, padding="same", name="conv16")(x)
  x = keras.layers.BatchNormalization(name="bn16")(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))


def test_bf16_batchnorm_with_an_odd_channel_count_computes_in_float32():
  """The 6- and 8-channel batch norms would run oneDNN's reference bfloat16 kernel: compile_model
  moves both to float32 and unfuses the 6-channel one (float32's kernel needs a multiple of 8);
  the 16-channel one and a float32 model are left alone; outputs stay close."""
  keras.utils.set_random_seed(3)
  with speed.policy_scope(speed.SpeedSettings(mixed_precision="bf16")):
    model = _odd_and_even_batchnorms()
  plain = keras.models.clone_model(model)
  plain.set_weights(model.get_weights())
  compile_model(model, SPEC, speed.SpeedSettings(mixed_precision="bf16"))
  assert model.get_layer("bn6").compute_dtype == model.get_layer("bn8").compute_dtype == "float32"
  assert not model.get_layer("bn6").fused and model.get_layer("bn8").fused
  assert model.get_layer("bn16").compute_dtype == "bfloat16" and model.get_layer("bn16").fused
  assert model.get_layer("conv8").compute_dtype == "bfloat16"
  assert plain.get_layer("bn8").compute_dtype == "bfloat16"       # clone_model: not compiled
  x = np.random.RandomState(0).rand(4, 12, 12, 3).astype("float32")
  np.testing.assert_allclose(model(x, training=True).numpy(),
                             plain(x, training=True).numpy().astype("float32"), atol=0.1)
  assert speed.avoid_reference_batchnorm_kernels(model) == ()   # nothing left to change
  float32_model = compile_model(_odd_and_even_batchnorms(), SPEC)
  assert float32_model.get_layer("bn8").compute_dtype == "float32"
  assert float32_model.get_layer("bn6").fused
  assert speed.avoid_reference_batchnorm_kernels(float32_model) == ()


_BN_PROBE = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np, tf_keras as keras
from tests.train.test_speed import _odd_and_even_batchnorms, SPEC
from tf_rethink.train import speed, trainer
settings = speed.SpeedSettings(mixed_precision="bf16")
with speed.policy_scope(settings):
  model = _odd_and_even_batchnorms()
if sys.argv[1] == "compile_model":
  trainer.compile_model(model, SPEC, settings)
else:
  model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x, y = np.random.rand(32, 12, 12, 3).astype("float32"), np.zeros(32, "int32")
model.fit(x, y, batch_size=16, epochs=1, verbose=0)
"""


@pytest.mark.skipif(not speed.cpu_has_bf16(), reason="needs a CPU with native bfloat16 (oneDNN)")
def test_no_reference_bf16_batchnorm_kernel_runs_when_trained(tmp_path):
  """ONEDNN_VERBOSE of a real training run: through compile_model no batch norm runs oneDNN's
  reference kernel (nspc_bnorm:any; the 8-channel one runs float32's jit kernel, the 6-channel
  one no oneDNN kernel at all); the same model compiled by plain Keras does run it."""
  import os, subprocess, sys  # pylint: disable=import-outside-toplevel,multiple-imports
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, ONEDNN_VERBOSE="1", TF_ENABLE_ONEDNN_OPTS="1", PYTHONPATH=root,
             CUDA_VISIBLE_DEVICES="")
  logs = {}
  for how in ("compile_model", "plain"):
    out = subprocess.run([sys.executable, "-c", _BN_PROBE, how], env=env, capture_output=True,
                         text=True, timeout=300, check=True, cwd=str(tmp_path)).stdout
    logs[how] = [l for l in out.splitlines() if ",batch_normalization," in l and ",exec," in l]
  assert logs["plain"] and logs["compile_model"]
  assert any("nspc_bnorm:any" in l for l in logs["plain"])
  assert not any("nspc_bnorm:any" in l for l in logs["compile_model"])
