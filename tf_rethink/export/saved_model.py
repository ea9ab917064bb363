"""SavedModel export of the physically smaller model, verified by reloading it."""
import os
import shutil

from tf_rethink.export.closeness import check_close
from tf_rethink.export.ownership import MARKER, check_replaceable, is_export, mark  # noqa: F401
from tf_rethink.util import fs
from tf_rethink.util.errors import UsageError


def float32_copy(model):
  """`model` with float32 compute in every layer (same weights); itself if it already is.

  A model trained under mixed precision (bf16/fp16 compute, float32 variables) is exported in
  float32: portable to any device, and its reload can be verified to float32 precision.
  """
  from tf_rethink.pruning.graph import view  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning.surgery import Edit, rebuild  # pylint: disable=import-outside-toplevel
  graph = view(model)
  layers = {k: graph.layer(k) for k in graph.keys()}
  mixed = [k for k, l in layers.items() if getattr(l, "compute_dtype", None) not in (None,
                                                                                   "float32")]
  if not mixed:
    return model
  return rebuild(model, {k: Edit(config={"dtype": "float32"}) for k in mixed})


def export_and_verify(model, path: str, sample, atol: float = 1e-4) -> dict:
  """Saves `model` as a SavedModel at `path` (atomically), reloads it, compares outputs on `sample`.

  A Keras 3 model is saved as a `.keras` file instead (`export.keras3.save_keras`).

  Mixed-precision models are exported as their float32 copy (`float32_copy`). The Keras
  SavedModel reloads with `keras.models.load_model` (to train on, or to inspect). Returns
  {"path", "bytes"}; raises RuntimeError when the reloaded model disagrees.
  """
  if _is_keras3(model):
    from tf_rethink.export import keras3  # pylint: disable=import-outside-toplevel
    return keras3.save_keras(model, path, sample, atol)
  import tf_keras as keras
  import tensorflow as tf
  model = float32_copy(model)

  def save(tmp):
    model.save(tmp, save_format="tf", include_optimizer=False, options=_SAVE_OPTIONS())

  def reloaded_outputs(tmp):
    served = tf.saved_model.load(tmp).signatures["serving_default"]
    return [keras.models.load_model(tmp, compile=False)(sample, training=False).numpy(),
            next(iter(served(tf.convert_to_tensor(sample)).values())).numpy()]

  return _save_verified(model, path, sample, save, reloaded_outputs, atol)


def export_serving(model, path: str, sample, atol: float = 1e-4) -> dict:
  """Saves an inference-only SavedModel of `model` at `path` (atomically), verified on reload.

  What a deployment should run: float32 (`float32_copy`), BatchNormalization folded into the
  conv/dense layer before it (`fold_batchnorm`), every variable frozen into a constant, and one
  `serving_default` signature taking the model's inputs (by their names) and returning
  {output name: tensor}. Exception: models with LayerNormalization keep their variables, because
  with constant gamma / beta TensorFlow's oneDNN graph rewrite fuses the layer norm into a kernel
  whose variance loses float32 precision when the mean dominates (measured on this package's CI
  machine: 1.5% error after ConvNeXt's global pool; exact with variables). Without variables a call carries no per-variable overhead (in a
  Python process calling a Keras SavedModel's signature, that overhead grows with the number of
  variables) and the graph has fewer ops: `tools/bench_inference.py` measures both formats.
  It cannot be trained further; `export_and_verify` writes the trainable Keras SavedModel.
  Returns {"path", "bytes"}; RuntimeError when the reload disagrees with `model`.
  """
  if _is_keras3(model):
    from tf_rethink.export import keras3  # pylint: disable=import-outside-toplevel
    return keras3.export_serving(model, path, sample, atol)
  import tensorflow as tf
  from tensorflow.python.framework.convert_to_constants import (  # pylint: disable=g-direct-tensorflow-import
      convert_variables_to_constants_v2)
  from tf_rethink.export.fold_batchnorm import fold_batchnorm
  model = float32_copy(model)
  folded = fold_batchnorm(model)
  specs = [tf.TensorSpec([None, *x.shape[1:]], tf.float32, name=x.name.split(":")[0])
           for x in folded.inputs]
  call = tf.function(lambda *xs: folded(list(xs) if len(xs) > 1 else xs[0], training=False))
  concrete = call.get_concrete_function(*specs)
  frozen = concrete if _has_layer_norm(folded) else convert_variables_to_constants_v2(concrete)
  names = list(folded.output_names)

  @tf.function(input_signature=specs)
  def serve(*xs):
    outputs = frozen(*xs)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return dict(zip(names, outputs))

  module = tf.Module()
  module.serve = serve
  module.variables_kept = list(folded.variables) if frozen is concrete else []

  def save(tmp):
    tf.saved_model.save(module, tmp, signatures={"serving_default": serve},
                        options=_SAVE_OPTIONS())

  def reloaded_outputs(tmp):
    served = tf.saved_model.load(tmp).signatures["serving_default"]
    inputs = sample if isinstance(sample, (list, tuple)) else [sample]
    got = served(**{s.name: tf.convert_to_tensor(x) for s, x in zip(specs, inputs)})
    return [got[names[0]].numpy()]

  return _save_verified(model, path, sample, save, reloaded_outputs, atol)


def _is_keras3(model) -> bool:
  from tf_rethink.pruning.graph import adapter_of  # pylint: disable=import-outside-toplevel
  return adapter_of(model).NAME == "keras3"


def _has_layer_norm(model) -> bool:
  from tf_rethink.pruning.graph import view  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning.rules import RULES  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning.rules.normalization import LayerNormRule  # pylint: disable=import-outside-toplevel
  graph = view(model)
  return any(isinstance(RULES.lookup(graph.layer(k)), LayerNormRule) for k in graph.keys())


def _SAVE_OPTIONS():  # pylint: disable=invalid-name
  """Save without custom gradients: swish / silu (EfficientNet) have one whose captured tensors
  SavedModel cannot serialize ("Found invalid capture"); exports are for inference and keep the
  forward function, and a reloaded Keras model retrains with the op's registered gradient."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.saved_model.SaveOptions(experimental_custom_gradients=False)


def _save_verified(model, path, sample, save, reloaded_outputs, atol) -> dict:
  """save(tmp); every array of reloaded_outputs(tmp) must equal model(sample); then tmp -> path.

  tmp is a fresh hidden directory beside `path` (`fs.partial_dir`), removed on any failure;
  `path` itself is replaced only when it is an earlier export (`check_replaceable`)."""
  check_replaceable(path)
  tmp = fs.partial_dir(path)
  try:
    save(tmp)
    expected = model(sample, training=False)
    expected = (expected[0] if isinstance(expected, (list, tuple)) else expected).numpy()
    for got in reloaded_outputs(tmp):
      check_close(got, expected, atol, path)
    mark(tmp)
    fs.replace_dir(tmp, path)
  finally:
    if os.path.lexists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return {"path": path, "bytes": fs.dir_size(path)}


def load(path: str):
  """Loads a Keras export (`export_and_verify`) for inference; a clear error when `path` is not
  one (an inference-only `export_serving` directory has no Keras model to load)."""
  import tf_keras as keras
  if not os.path.exists(os.path.join(path, "saved_model.pb")):
    raise UsageError(f"{path} is not an exported SavedModel (no saved_model.pb); pass the "
                     "workdir's export/<regime> directory")
  model = keras.models.load_model(path, compile=False)
  if not isinstance(model, keras.Model):
    raise UsageError(f"{path} is an inference-only SavedModel (export/serving/...), not a Keras "
                     "model; pass the workdir's export/<regime> directory")
  return model


def gzip_size(path: str) -> int:
  """Bytes of `path` (a file, or a directory as an uncompressed tar of its files in sorted order)
  after gzip level 9: how much unstructured sparsity saves on disk (zeros compress, float noise
  does not; Han et al. 2015's storage argument, measured the way TF-MOT's guide does)."""
  import gzip
  import io
  import tarfile
  buffer = io.BytesIO()
  if os.path.isdir(path):
    with tarfile.open(fileobj=buffer, mode="w") as tar:
      for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
          full = os.path.join(root, name)
          tar.add(full, arcname=os.path.relpath(full, path), recursive=False)
    raw = buffer.getvalue()
  else:
    with open(path, "rb") as f:
      raw = f.read()
  return len(gzip.compress(raw, compresslevel=9, mtime=0))
