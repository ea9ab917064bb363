"""TFLite deployment: float32/float16/int8 outputs and accuracy against the serving SavedModel,
pruned zeros kept, bad inputs one-line errors.

Tolerances (a 2-epoch convnet on 400 embedded test images; measured: float32 max |logit diff|
~1e-6, float16 ~1e-3, int8 accuracy within ~1 point of float32):
  float32: max |logit - SavedModel logit| <= 1e-4 and the same accuracy;
  float16: max |logit diff| <= 2% of the largest |logit|, accuracy within 1 point;
  int8:    accuracy within 3 points of float32.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tf_keras as keras

from tf_rethink import export
from tf_rethink.data.pipeline import pipeline
from tf_rethink.export import tflite
from tf_rethink.util.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _small_convnet():
  keras.utils.set_random_seed(0)
  x = inp = keras.Input((28, 28, 1), name="images")
  for i, filters in enumerate((8, 16)):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D()(x)
  x = keras.layers.Flatten()(x)
  return keras.Model(inp, keras.layers.Dense(10, name="logits")(x))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A finished-experiment stand-in: config.json and a trained serving SavedModel."""
  root = tmp_path_factory.mktemp("tflite_workdir")
  model = _small_convnet()
  model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(pipeline("embedded", "train", batch_size=64, seed=1, limit=2000), epochs=2, verbose=0)
  sample = next(iter(pipeline("embedded", "test", batch_size=8, seed=1)))[0]
  export.export_serving(model, str(root / "export" / "serving" / "small"), sample)
  (root / "config.json").write_text(json.dumps({"dataset": "embedded", "batch_size": 100,
                                                "seed": 1, "limit_test": 400}))
  return str(root)


def test_formats_match_the_saved_model_within_tolerance(workdir):
  rows = tflite.report(workdir, calibration_examples=200, repeats=3)
  by = {r["format"]: r for r in rows}
  assert list(by) == ["SavedModel", "float32", "float16", "int8"]
  saved = by["SavedModel"]
  assert saved["accuracy"] > 40          # trained: far above chance (10%)
  assert by["float32"]["max_abs_diff"] <= 1e-4
  assert by["float32"]["accuracy"] == saved["accuracy"]
  first = next(iter(pipeline("embedded", "test", batch_size=100, seed=1)))[0].numpy()
  largest = np.abs(tflite.saved_model_fn(os.path.join(workdir, "export", "serving", "small"))(
      first)).max()
  assert by["float16"]["max_abs_diff"] <= 0.02 * largest
  assert abs(by["float16"]["accuracy"] - saved["accuracy"]) <= 1.0
  assert abs(by["int8"]["accuracy"] - by["float32"]["accuracy"]) <= 3.0
  assert by["int8"]["bytes"] < by["float16"]["bytes"] < by["float32"]["bytes"]
  report = json.loads(open(os.path.join(workdir, "export", "tflite", "report.json")).read())
  assert report["test_examples"] == 400 and report["calibration_examples"] == 200
  assert len(report["rows"]) == 4
  for fmt in tflite.FORMATS:
    assert os.path.getsize(os.path.join(workdir, "export", "tflite", f"small.{fmt}.tflite")) == \
        by[fmt]["bytes"]
  text = tflite.table(rows)
  assert len(text.splitlines()) == 5 and "int8" in text and "gzip bytes" in text


def test_int8_model_has_integer_input_and_output(workdir):
  serving = os.path.join(workdir, "export", "serving", "small")
  x = next(iter(pipeline("embedded", "train", batch_size=16, seed=1, train=False)))[0].numpy()
  model = tflite.TFLiteModel(tflite.convert(serving, "int8", [x[i:i + 1] for i in range(16)]))
  assert model._input["dtype"] == np.int8 and model._output["dtype"] == np.int8
  assert model(x).shape == (16, 10) and model(x).dtype == np.float32


def test_pruned_zeros_survive_every_format(tmp_path):
  model = _small_convnet()
  rng = np.random.default_rng(0)
  for name in ("conv0", "conv1"):
    layer = model.get_layer(name)
    kernel = layer.get_weights()[0]
    layer.set_weights([np.where(rng.random(kernel.shape) < 0.8, 0.0, kernel)])
  x = rng.normal(size=(8, 28, 28, 1)).astype(np.float32)
  serving = str(tmp_path / "serving")
  export.export_serving(model, serving, x)
  for fmt in tflite.FORMATS:
    flatbuffer = tflite.convert(serving, fmt, [x[i:i + 1] for i in range(8)])
    kernels = [w for w in tflite.TFLiteModel(flatbuffer).weights() if w.ndim == 4]
    biggest = max(kernels, key=lambda w: w.size)     # conv1: 3x3x8x16
    assert biggest.size == 3 * 3 * 8 * 16, fmt
    assert np.mean(biggest == 0) >= 0.75, fmt      # >= 80% zeroed, minus chance-zero survivors
  dense = _small_convnet()
  export.export_serving(dense, str(tmp_path / "dense"), x)
  assert tflite.gzip_bytes(tflite.convert(serving, "float32")) < \
      tflite.gzip_bytes(tflite.convert(str(tmp_path / "dense"), "float32"))


def test_bad_inputs_are_one_line_errors(workdir, tmp_path):
  with pytest.raises(UsageError, match="no config.json"):
    tflite.report(str(tmp_path))
  with pytest.raises(UsageError, match="choose from float32, float16, int8"):
    tflite.report(workdir, formats=["int4"])
  with pytest.raises(UsageError, match=r"no serving SavedModel \['scratch_b'\].*choose from small"):
    tflite.report(workdir, models=["scratch_b"])
  with pytest.raises(UsageError, match="calibration_examples=0"):
    tflite.report(workdir, calibration_examples=0)
  with pytest.raises(UsageError, match="not a SavedModel"):
    tflite.convert(str(tmp_path), "float32")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_tflite.py"),
                         f"--workdir={tmp_path / 'nothing'}"], capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
