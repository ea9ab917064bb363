"""Deployment after pruning: TFLite float32, float16 and full-int8 from a serving SavedModel,
each measured against the SavedModel on the experiment's test set.

Formats (`tf.lite.TFLiteConverter.from_saved_model` on `export/serving/<name>`, BN folded):
* `float32`: the same arithmetic as the SavedModel.
* `float16`: weights stored as float16 (post-training float16 quantization), computed in float32.
* `int8`: full-integer post-training quantization: int8 weights (per output channel) and
  activations, int8 input and output tensors, every op an integer builtin; activation ranges
  calibrated on `calibration` batches, taken from the TRAINING split through the evaluation
  preprocessing (normalized, not augmented). The interpreter wrapper quantizes the float input
  with the input tensor's scale / zero point and dequantizes the logits.

A weight-pruned (magnitude) model keeps its zeros in every format: float32 and float16 zeros are
exact, and int8 weights are quantized symmetrically (zero point 0), so a zero weight is int8 0.
The flatbuffer stays dense, so its raw size is the dense model's; the gzip size shows what the
zeros save (Han et al., 2015).

Latency is the median of `repeats` batch-1 calls after warm-up, in this process: the TFLite
interpreter with `num_threads` = the CPU count (XNNPACK), the SavedModel's `serving_default`
with TensorFlow's default thread pools.
"""
import gzip
import os
import statistics
import time
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from tf_rethink.util import fs
from tf_rethink.util import progress
from tf_rethink.util.errors import UsageError

FORMATS = ("float32", "float16", "int8")
SAVED_MODEL = "SavedModel"


def convert(saved_model_dir: str, fmt: str, calibration: Optional[Iterable[np.ndarray]] = None
            ) -> bytes:
  """The TFLite flatbuffer of the serving SavedModel `saved_model_dir` in format `fmt`.

  `calibration`: float32 input batches (int8 only; a few hundred images suffice)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  check_formats([fmt])
  if not os.path.exists(os.path.join(saved_model_dir, "saved_model.pb")):
    raise UsageError(f"{saved_model_dir} is not a SavedModel (no saved_model.pb); pass an "
                     "experiment's export/serving/<name> directory")
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
  if fmt == "float16":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  elif fmt == "int8":
    if calibration is None:
      raise UsageError("int8 conversion needs calibration batches")
    batches = list(calibration)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([b] for b in batches)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
  return converter.convert()


def check_formats(formats: Sequence[str]) -> None:
  unknown = [f for f in formats if f not in FORMATS]
  if unknown or not formats:
    raise UsageError(f"unknown TFLite format(s) {unknown or formats}; choose from "
                     f"{', '.join(FORMATS)}")


def _interpreter_class():
  """LiteRT's interpreter when installed (`ai-edge-litert`), else TensorFlow's tf.lite one."""
  try:
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
    return Interpreter
  except ImportError:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.lite.Interpreter


class TFLiteModel:
  """A TFLite flatbuffer as a function float32 batch -> float32 logits (int8 models quantize
  the input and dequantize the output with their tensors' scale and zero point)."""

  def __init__(self, flatbuffer: bytes, num_threads: Optional[int] = None):
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")   # tf.lite.Interpreter's deprecation notice
      self.interpreter = _interpreter_class()(model_content=flatbuffer,
                                              num_threads=num_threads or os.cpu_count())
    self._input = self.interpreter.get_input_details()[0]
    self._output = self.interpreter.get_output_details()[0]
    self._batch = None

  def __call__(self, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if self._batch != len(x):
      self.interpreter.resize_tensor_input(self._input["index"], [len(x), *x.shape[1:]])
      self.interpreter.allocate_tensors()
      self._batch = len(x)
    if self._input["dtype"] == np.int8:
      scale, zero = self._input["quantization"]
      x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    self.interpreter.set_tensor(self._input["index"], x)
    self.interpreter.invoke()
    y = self.interpreter.get_tensor(self._output["index"])
    if self._output["dtype"] == np.int8:
      scale, zero = self._output["quantization"]
      y = (y.astype(np.float32) - zero) * scale
    return y

  def weights(self) -> List[np.ndarray]:
    """The constant tensors of rank >= 2 (conv and dense kernels) as stored."""
    out = []
    for detail in self.interpreter.get_tensor_details():
      if len(detail["shape"]) < 2 or detail["name"].startswith("serving_default"):
        continue
      try:
        out.append(self.interpreter.get_tensor(detail["index"]))
      except ValueError:   # activations have no data until invoked
        continue
    return out


def saved_model_fn(saved_model_dir: str) -> Callable[[np.ndarray], np.ndarray]:
  """The serving SavedModel's `serving_default` as a function float32 batch -> logits."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  served = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
  (name, _), = served.structured_input_signature[1].items()
  return lambda x: next(iter(served(**{name: tf.constant(x, tf.float32)}).values())).numpy()


def accuracy(predict: Callable, batches: Iterable) -> float:
  """Top-1 accuracy (%) of `predict` over (images, int labels) batches."""
  correct = total = 0
  for x, y in batches:
    correct += int(np.sum(np.argmax(predict(np.asarray(x)), axis=-1) == np.asarray(y).ravel()))
    total += len(y)
  return 100.0 * correct / max(total, 1)


def latency_ms(predict: Callable, example: np.ndarray, repeats: int) -> float:
  """Median milliseconds of `repeats` batch-1 calls of `predict` on `example` (after 5 warm-up
  calls)."""
  example = np.asarray(example[:1], np.float32)
  for _ in range(5):
    predict(example)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    predict(example)
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def gzip_bytes(data: bytes) -> int:
  return len(gzip.compress(data, compresslevel=9, mtime=0))


def measure(name: str, serving_dir: str, out_dir: str, test_batches: Sequence,
            calibration: Sequence[np.ndarray], formats: Sequence[str] = FORMATS,
            repeats: int = 100, verbose: Optional[int] = None) -> List[dict]:
  """Rows (SavedModel first, then each TFLite format) of accuracy, raw and gzip size, batch-1
  latency and the largest logit difference from the SavedModel on the first test batch; writes
  `out_dir/<name>.<format>.tflite`."""
  from tf_rethink.export.saved_model import gzip_size  # pylint: disable=import-outside-toplevel
  check_formats(formats)
  example = np.asarray(test_batches[0][0])
  reference = saved_model_fn(serving_dir)
  expected = reference(example)
  rows = [_row(name, SAVED_MODEL, reference, test_batches, example, repeats, expected,
               fs.dir_size(serving_dir), gzip_size(serving_dir))]
  for fmt in progress.track(formats, f"TFLite {name}", unit="formats", verbose=verbose):
    flatbuffer = convert(serving_dir, fmt, calibration if fmt == "int8" else None)
    fs.write_bytes(os.path.join(out_dir, f"{name}.{fmt}.tflite"), flatbuffer)
    rows.append(_row(name, fmt, TFLiteModel(flatbuffer), test_batches, example, repeats,
                     expected, len(flatbuffer), gzip_bytes(flatbuffer)))
  return rows


def _row(name, fmt, predict, test_batches, example, repeats, expected, size, gzipped) -> dict:
  return {"model": name, "format": fmt, "accuracy": accuracy(predict, test_batches),
          "bytes": int(size), "gzip_bytes": int(gzipped),
          "latency_ms": latency_ms(predict, example, repeats),
          "max_abs_diff": float(np.max(np.abs(predict(example) - expected)))}


def table(rows: Sequence[Dict]) -> str:
  """The rows as an aligned text table (accuracy %, bytes, gzip bytes, batch-1 ms, size vs the
  model's SavedModel)."""
  saved = {r["model"]: r for r in rows if r["format"] == SAVED_MODEL}
  header = ("model", "format", "test acc", "bytes", "gzip bytes", "x smaller (gzip)",
            "batch-1 ms", "max |logit diff|")
  lines = [header]
  for r in rows:
    base = saved.get(r["model"], r)
    lines.append((r["model"], r["format"], f"{r['accuracy']:.2f}", f"{r['bytes']:,}",
                  f"{r['gzip_bytes']:,}", f"{base['gzip_bytes'] / r['gzip_bytes']:.2f}x",
                  f"{r['latency_ms']:.3f}", f"{r['max_abs_diff']:.2g}"))
  widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
  return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)


def report(workdir: str, models: Sequence[str] = (), formats: Sequence[str] = FORMATS,
           calibration_examples: int = 500, limit_test: Optional[int] = None,
           repeats: int = 100, verbose: Optional[int] = None) -> List[dict]:
  """Converts the serving SavedModels of the experiment in `workdir` (`export/serving/<name>`;
  `models` default: all of them) to `formats`, evaluates each on the experiment's test set
  (its config.json: dataset, batch size, --limit_test unless `limit_test`), and writes
  `export/tflite/<name>.<format>.tflite` and `export/tflite/report.json`. Returns the rows."""
  check_formats(formats)
  if int(calibration_examples) != calibration_examples or calibration_examples < 1:
    raise UsageError(f"--calibration_examples={calibration_examples} must be a positive integer")
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise UsageError(f"{workdir} holds no experiment (no config.json); pass the --workdir of a "
                     "finished run")
  config = fs.read_json(config_path)
  serving_root = os.path.join(workdir, "export", "serving")
  available = sorted(d for d in os.listdir(serving_root) if os.path.exists(
      os.path.join(serving_root, d, "saved_model.pb"))) if os.path.isdir(serving_root) else []
  if not available:
    raise UsageError(f"{serving_root} holds no serving SavedModel; run the experiment with "
                     "--export first")
  missing = [m for m in models if m not in available]
  if missing:
    raise UsageError(f"no serving SavedModel {missing} in {serving_root}; choose from "
                     f"{', '.join(available)}")
  from tf_rethink import data  # pylint: disable=import-outside-toplevel
  kwargs = dict(batch_size=config.get("batch_size") or 64, seed=config.get("seed", 1),
                data_dir=config.get("data_dir"), idx_dir=config.get("idx_dir"))
  test = [(x.numpy(), y.numpy()) for x, y in data.pipeline(
      config["dataset"], "test", limit=limit_test or config.get("limit_test"), **kwargs)]
  calibration = [x.numpy()[i:i + 1] for x, _ in data.pipeline(
      config["dataset"], "train", train=False, limit=calibration_examples, **kwargs)
                 for i in range(len(x))]
  out_dir = os.path.join(workdir, "export", "tflite")
  rows = []
  for name in models or available:
    rows += measure(name, os.path.join(serving_root, name), out_dir, test, calibration, formats,
                    repeats, verbose)
  fs.write_json(os.path.join(out_dir, "report.json"), {
      "workdir": os.path.abspath(workdir), "test_examples": sum(len(y) for _, y in test),
      "calibration_examples": len(calibration), "cpu_threads": os.cpu_count(), "rows": rows})
  return rows
