"""Keras 3 models through the same engine (the graph view's Keras 3 adapter, the shared rule book).

The same checks as for tf_keras (`prune_checks`): the shrunk model computes the masked original,
params / MACs as predicted from the configs alone; plus the Keras 3 exports (a `.keras` file
reloaded in safe mode, a serving SavedModel from `model.export`), Sequential staying Sequential,
the data-driven methods, the one-line refusals of what needs tf_keras, and tf_keras and Keras 3
side by side in one process.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import tf_rethink
import keras

from tests import helpers
from tests.pruning import prune_checks
from tf_rethink import export, flops
from tf_rethink.pruning import masking
from tf_rethink.pruning.graph import view
from tf_rethink.study import applications
from tf_rethink.util.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The default suite keeps one Keras 3 model per rule set the engine meets there (residual add,
# depthwise + inverted residual, squeeze-excite + hard-swish, LayerNorm + depthwise-7x7); the
# swish / concat families (EfficientNet, DenseNet) run in the default suite on tf_keras
# (test_applications) and here only with `-m slow` (16 + 12 s of a CI budget).
MODELS = ["ResNet50", "MobileNetV2", "MobileNetV3Small", "ConvNeXtTiny",
          pytest.param("EfficientNetB0", marks=pytest.mark.slow),
          pytest.param("DenseNet121", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name", MODELS)
def test_keras3_application_prunes_like_tf_keras_and_exports(name, tmp_path):
  model = helpers.randomize(applications.build(name, keras=keras), scaled=True)
  assert view(model).api.NAME == "keras3"
  x = applications.sample(model)
  small, plan, before, after, diff = prune_checks.check_pruned_model(model, x)
  assert isinstance(small, keras.Model) and type(small).__module__.startswith("keras.")
  assert after.params < 0.8 * before.params and after.flops < 0.8 * before.flops
  want = np.asarray(small(x, training=False))
  saved = export.export_and_verify(small, str(tmp_path / f"{name}.keras"), x)
  reloaded = keras.saving.load_model(saved["path"], safe_mode=True)
  np.testing.assert_allclose(np.asarray(reloaded(x, training=False)), want, rtol=1e-5, atol=1e-5)
  if name in ("ResNet50", "ConvNeXtTiny"):          # serving SavedModel: BN folded, model.export
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    info = export.export_serving(small, str(tmp_path / "serving"), x)
    loaded = tf.saved_model.load(info["path"])     # keep it: its variables live with it
    got = loaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1, np.abs(want).max()))


def _functional_net():
  inp = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(8, 3, padding="same", name="c1")(inp)
  x = keras.layers.BatchNormalization(name="bn1")(x)
  x = keras.layers.ReLU(name="r1")(x)
  y = keras.layers.Conv2D(8, 3, padding="same", name="c2")(x)
  x = keras.layers.Add(name="residual")([x, keras.ops.multiply(y, 0.5) + 1.0])   # keras.ops
  x = keras.layers.Conv2D(6, 3, padding="same", name="c3")(x)
  x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
  return keras.Model(inp, keras.layers.Dense(3, name="logits")(x))


def test_keras_ops_nodes_are_graph_calls_and_prune_through():
  model = helpers.randomize(_functional_net(), scaled=True)
  kinds = [c.kind for c in view(model).calls]
  assert "Multiply" in kinds and "Add" in kinds
  x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
  small, plan, *_ = prune_checks.check_pruned_model(model, x, ratio=0.5)
  assert plan.keep["c1"] == plan.keep["c2"]          # coupled through ops.multiply + add
  assert flops.count(model).flops > 0


def test_sequential_stays_sequential():
  model = helpers.randomize(keras.Sequential([
      keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, name="c1"), keras.layers.ReLU(),
      keras.layers.Conv2D(6, 3, name="c2"), keras.layers.Flatten(), keras.layers.Dense(4)]))
  small, plan = tf_rethink.prune(model, ratio=0.5)
  assert isinstance(small, keras.Sequential) and small.get_layer("c1").filters == 4
  x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
  from tf_rethink.pruning import masking  # pylint: disable=import-outside-toplevel
  np.testing.assert_allclose(np.asarray(small(x)), masking.masked_outputs(model, plan.keep, x)[0],
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["thinet", "regression"])
def test_data_driven_methods_on_keras3(method):
  model = helpers.randomize(_functional_net(), scaled=True)
  x = np.random.default_rng(2).normal(size=(60, 8, 8, 3)).astype(np.float32)
  y = np.arange(60) % 3
  options = {"thinet_images_per_class": 20} if method == "thinet" else {"regression_images": 60}
  small, plan = tf_rethink.prune(model, method=method, ratio=0.5, data=(x, y), **options)
  assert plan.keep and isinstance(small, keras.Model)
  np.testing.assert_allclose(np.asarray(tf_rethink.apply_plan(model, plan)(x[:4])),
                             np.asarray(small(x[:4])), rtol=1e-6, atol=1e-6)


def test_what_needs_tf_keras_refuses_a_keras3_model_in_one_line(tmp_path):
  model = _functional_net()
  with pytest.raises(UsageError, match="needs a tf_keras model.*rebuild the model with "
                     "tf_keras") as e:
    tf_rethink.prune(model, method="magnitude", ratio=0.5)
  assert "\n" not in str(e.value)
  from tf_rethink.train import trainer  # pylint: disable=import-outside-toplevel
  from tf_rethink.train.strategy import make_strategy  # pylint: disable=import-outside-toplevel
  with pytest.raises(UsageError, match="needs a tf_keras model"):
    trainer.train(_functional_net, None, None, trainer.TrainSpec(1, 0.1, 8, 0.0),
                  strategy=make_strategy("one_device"), run_dir=str(tmp_path / "run"))


def test_importing_tf_rethink_leaves_a_users_keras3_code_alone():
  code = (
      "import tf_rethink, os\n"
      "assert 'TF_USE_LEGACY_KERAS' not in os.environ\n"
      "import tensorflow as tf, keras, numpy as np\n"
      "assert tf.keras.__version__.startswith('3.'), tf.keras.__version__\n"
      "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])\n"
      "m.compile('sgd', 'mse')\n"
      "m.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=1, verbose=0)\n"
      "small, plan = tf_rethink.prune(m, ratio=0.5)\n"
      "import tf_keras\n"
      "t = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3), "
      "tf_keras.layers.Dense(2)])\n"
      "small2, _ = tf_rethink.prune(t, ratio=0.5)\n"
      "print(type(small).__module__.split('.')[0], type(small2).__module__.split('.')[0], "
      "small.layers[0].units, small2.layers[0].units)\n")
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=ROOT, env=env)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split() == ["keras", "tf_keras", "1", "1"]


def test_jax_backend_prunes_through_the_same_engine(tmp_path):
  """Runs where the optional extra is installed (`pip install -e ".[jax]"`); skipped otherwise."""
  pytest.importorskip("jax")
  code = (
      "import os; os.environ['KERAS_BACKEND'] = 'jax'\n"
      "import keras, numpy as np, tf_rethink\n"
      "from tf_rethink.pruning import masking\n"
      "assert keras.backend.backend() == 'jax'\n"
      "inp = keras.Input((8, 8, 3)); x = keras.layers.Conv2D(8, 3, name='c1')(inp)\n"
      "x = keras.layers.BatchNormalization()(x); x = keras.layers.ReLU()(x)\n"
      "x = keras.layers.Conv2D(4, 3, name='c2')(x)\n"
      "m = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))\n"
      "small, plan = tf_rethink.prune(m, ratio=0.5)\n"
      "x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype('float32')\n"
      "d = np.abs(np.asarray(small(x)) - masking.masked_outputs(m, plan.keep, x)[0]).max()\n"
      f"small.save({str(tmp_path / 'small.keras')!r})\n"
      f"r = keras.saving.load_model({str(tmp_path / 'small.keras')!r}, safe_mode=True)\n"
      "print(d < 1e-5, small.layers[1].filters, np.allclose(np.asarray(r(x)), np.asarray(small(x))))\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       cwd=ROOT)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split() == ["True", "4", "True"]


@pytest.mark.parametrize("name, make", [
    ("attention", lambda x: keras.layers.MultiHeadAttention(2, 4, name="mha")(x, x)),
    ("recurrent", lambda x: keras.layers.LSTM(16, return_sequences=True, name="lstm")(x)),
    ("einsum", lambda x: keras.layers.EinsumDense("abc,cd->abd", (None, 16), name="ein")(x)),
    ("lambda", lambda x: keras.layers.Lambda(lambda t: t[..., ::-1], name="flip")(x)),
])
def test_layers_without_a_rule_leave_their_group_whole_and_the_rest_prunes(name, make):
  """Attention, RNNs, EinsumDense, a Keras 3 Lambda of a Python lambda (which safe deserialization
  refuses to rebuild: the weightless layer is called again instead): the group through them is
  reported and left whole, the groups after them still prune, the result equals the masked model."""
  inp = keras.Input((6, 8))
  x = make(keras.layers.Dense(16, name="d1")(inp))
  x = keras.layers.Dense(12, name="d2")(x)
  model = keras.Model(inp, keras.layers.Dense(3, name="head")(
      keras.layers.GlobalAveragePooling1D()(x)))
  small, plan = tf_rethink.prune(model, ratio=0.5)
  assert "d1" not in plan.keep and len(plan.keep["d2"]) == 6
  assert "d1" in tf_rethink.channel_groups(model).summary()
  x0 = np.random.default_rng(0).normal(size=(2, 6, 8)).astype("float32")
  np.testing.assert_allclose(np.asarray(small(x0)), masking.masked_outputs(model, plan.keep, x0)[0],
                             atol=1e-5)
