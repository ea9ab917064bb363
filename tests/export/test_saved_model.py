"""SavedModel export of the physically smaller model: reloads with the same outputs, is smaller."""
import os

import numpy as np
import pytest

from tf_rethink import export
from tf_rethink.util.errors import UsageError
from tf_rethink.models import MODELS
from tf_rethink.pruning import METHODS
from tests.helpers import randomize


def test_pruned_export_round_trip_and_size(tmp_path):
  full = MODELS.get("resnet20").build(input_shape=(28, 28, 1), num_classes=10)
  randomize(full)
  plan = METHODS.get("l1_norm")(ratio=0.5).select(full, model_name="resnet20")
  small = plan.apply(full)
  x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype("float32")
  sizes = {}
  for name, model in (("full", full), ("small", small)):
    report = export.export_and_verify(model, str(tmp_path / name), x)
    sizes[name] = report["bytes"]
    reloaded = export.load(str(tmp_path / name))
    np.testing.assert_allclose(reloaded(x, training=False).numpy(),
                               model(x, training=False).numpy(), rtol=1e-5, atol=1e-5)
  assert not os.path.exists(tmp_path / "small.partial")
  variables = {n: os.path.getsize(tmp_path / n / "variables" / "variables.data-00000-of-00001")
               for n in sizes}
  assert variables["small"] < 0.8 * variables["full"]
  assert sizes["small"] < sizes["full"]


def test_load_refuses_a_directory_that_is_not_an_export(tmp_path):
  with pytest.raises(UsageError, match="not an exported SavedModel"):
    export.load(str(tmp_path))


def test_load_refuses_an_inference_only_export(tmp_path):
  from tests.helpers import residual_net
  export.export_serving(residual_net(), str(tmp_path / "serving"), np.zeros((2, 8, 8, 3), "float32"))
  with pytest.raises(UsageError, match="inference-only SavedModel"):
    export.load(str(tmp_path / "serving"))


def test_mixed_precision_model_exports_as_float32(tmp_path):
  import tf_keras as keras
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    model = MODELS.get("vgg11").build(input_shape=(28, 28, 1), num_classes=10,
                                      width_multiplier=0.125)
  finally:
    keras.mixed_precision.set_global_policy("float32")
  randomize(model)
  assert model.get_layer("conv1").compute_dtype == "bfloat16"
  x = np.random.default_rng(1).normal(size=(4, 28, 28, 1)).astype("float32")
  export.export_and_verify(model, str(tmp_path / "m"), x)
  reloaded = export.load(str(tmp_path / "m"))
  assert reloaded.get_layer("conv1").compute_dtype == "float32"
  # The float32 export agrees with the bf16 model to bf16 precision.
  np.testing.assert_allclose(reloaded(x, training=False).numpy(),
                             model(x, training=False).numpy(), rtol=0.05, atol=0.05)
