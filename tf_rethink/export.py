"""SavedModel export of the physically smaller model, verified by reloading it."""
import os
import shutil

import numpy as np

from tf_rethink import io_utils
from tf_rethink.errors import UsageError


def export_and_verify(model, path: str, sample, atol: float = 1e-4) -> dict:
  """Saves `model` as a SavedModel at `path` (atomically), reloads it, compares outputs on `sample`.

  Returns {"path", "bytes"}; raises RuntimeError when the reloaded model disagrees.
  """
  import tf_keras as keras
  import tensorflow as tf
  tmp = path + ".partial"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  model.save(tmp, save_format="tf", include_optimizer=False)
  expected = model(sample, training=False).numpy()
  reloaded = keras.models.load_model(tmp, compile=False)
  served = tf.saved_model.load(tmp).signatures["serving_default"]
  outputs = [reloaded(sample, training=False).numpy(),
             next(iter(served(tf.convert_to_tensor(sample)).values())).numpy()]
  for got in outputs:
    if not np.allclose(got, expected, atol=atol, rtol=1e-4):
      shutil.rmtree(tmp, ignore_errors=True)
      raise RuntimeError(f"the reloaded SavedModel at {tmp} disagrees with the in-memory model "
                         f"(max abs diff {np.abs(got - expected).max():.3g})")
  io_utils.replace_dir(tmp, path)
  return {"path": path, "bytes": io_utils.dir_size(path)}


def load(path: str):
  """Loads an exported model for inference; a clear error when `path` is not one."""
  import tf_keras as keras
  if not os.path.exists(os.path.join(path, "saved_model.pb")):
    raise UsageError(f"{path} is not an exported SavedModel (no saved_model.pb); pass the "
                     "workdir's export/<regime> directory")
  return keras.models.load_model(path, compile=False)
