"""Exports of Keras 3 models (the structured API prunes them too; `tf_rethink.export` dispatches).

* `save_keras(model, path, sample)`: the native `.keras` file (config + weights), reloaded with
  `keras.saving.load_model(..., safe_mode=True)` (no Python code from the file is executed) and
  compared with the in-memory model on `sample`.
* `export_serving(model, path, sample)`: on the TensorFlow backend, an inference SavedModel made by
  `model.export(format="tf_saved_model")` after BatchNormalization is folded into the layers
  before it (`fold_batchnorm`, the same rule book as for tf_keras), reloaded with
  `tf.saved_model.load` and compared.
Both write to a temporary name beside `path` and rename it into place only once verified.
"""
import os
import shutil

from tf_rethink.export.closeness import check_close
from tf_rethink.util import fs
from tf_rethink.util.errors import UsageError


def _first(out):
  return out[0] if isinstance(out, (list, tuple)) else (next(iter(out.values())) if isinstance(
      out, dict) else out)


def save_keras(model, path: str, sample, atol: float = 1e-4) -> dict:
  """Writes `path` (a `.keras` file), reloads it in safe mode and checks it computes the same."""
  import keras  # pylint: disable=import-outside-toplevel
  if not path.endswith(".keras"):
    raise UsageError(f"a Keras 3 model is saved as a .keras file; pass a path ending in .keras, "
                     f"not {path!r}")
  with fs.atomic_path(path) as tmp:
    model.save(tmp)
    reloaded = keras.saving.load_model(tmp, safe_mode=True, compile=False)
    check_close(_first(reloaded(sample, training=False)), _first(model(sample, training=False)),
                atol, path)
  return {"path": path, "bytes": os.path.getsize(path)}


def export_serving(model, path: str, sample, atol: float = 1e-4) -> dict:
  """Inference SavedModel of a Keras 3 model (TensorFlow backend), BN folded, verified."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_rethink.export.fold_batchnorm import fold_batchnorm  # pylint: disable=import-outside-toplevel
  if keras.backend.backend() != "tensorflow":
    raise UsageError(f"a serving SavedModel needs the TensorFlow backend of Keras 3 (this process "
                     f"runs {keras.backend.backend()!r}); save a .keras file instead, or set "
                     "KERAS_BACKEND=tensorflow")
  from tf_rethink.export import ownership  # pylint: disable=import-outside-toplevel
  ownership.check_replaceable(path)
  folded = fold_batchnorm(model)
  tmp = f"{path}.partial-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    folded.export(tmp, format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(tmp)
    check_close(_first(served.serve(tf.constant(sample))),
                _first(model(sample, training=False)), atol, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  ownership.mark(tmp)
  fs.replace_dir(tmp, path)
  return {"path": path, "bytes": fs.dir_size(path)}
