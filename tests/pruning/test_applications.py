"""The engine on models no one here wrote: every tf_keras.applications family pruned 30% by L1
norm (coupled groups too), at small input sizes.

Each model: the shrunk model equals the masked original (`masking`), params / MACs equal an
independent prediction and fall, a second instance (where Keras names the tensor-arithmetic
layers anew) re-pruned from the plan's JSON gives the same model, and the serving export
reloads equal. One member of every family runs in the default suite (the serving export of
three of them: a swish / custom-gradient model, a nested LayerNorm model and a ResNet); every
other model and export is `slow` (building and re-tracing a large Keras graph costs seconds per
pass on a CPU).
"""
import numpy as np
import pytest

import tf_rethink
import tensorflow as tf

from tests import helpers
from tests.pruning import prune_checks
from tf_rethink import export
from tf_rethink.pruning.graph import view
from tf_rethink.study import applications

DEFAULT = ["ResNet50", "ResNet50V2", "MobileNetV2", "MobileNetV3Small", "EfficientNetB0",
           "EfficientNetV2B0", "DenseNet121", "InceptionV3", "Xception", "NASNetMobile",
           "RegNetY002", "ConvNeXtTiny"]
EXPORTED = ("ResNet50", "EfficientNetB0", "ConvNeXtTiny")
CASES = ([(n, n in EXPORTED) for n in DEFAULT]
         + [pytest.param(n, True, marks=pytest.mark.slow) for n in applications.names()
            if n not in EXPORTED])


@pytest.mark.parametrize("name, exported", CASES)
def test_application_shrinks_equals_masked_reapplies_by_position_and_exports(name, exported,
                                                                             tmp_path):
  model = helpers.randomize(applications.build(name), scaled=True)
  x = applications.sample(model)
  small, plan, before, after, diff = prune_checks.check_pruned_model(model, x)
  assert after.params < 0.8 * before.params and after.flops < 0.8 * before.flops
  want = small(x, training=False).numpy()

  fresh = applications.build(name)
  fresh.set_weights(model.get_weights())
  again = tf_rethink.apply_plan(fresh, plan.to_json())
  np.testing.assert_allclose(again(x, training=False).numpy(), want, rtol=1e-5, atol=1e-5)

  if not exported:
    return
  info = export.export_serving(small, str(tmp_path / "serving"), x)
  served = tf.saved_model.load(info["path"]).signatures["serving_default"]
  got = next(iter(served(tf.constant(x)).values())).numpy()
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))
  print(f"{name}: params {before.params} -> {after.params}, flops {before.flops} -> "
        f"{after.flops}, max |mask - shrink| {diff:.3g}")


def test_study_row_counts_pruned_layers_and_groups():
  model = helpers.randomize(applications.build("MobileNetV2"), scaled=True)
  row, small, plan = applications.check(model, "MobileNetV2")
  assert row.family == "MobileNetV2" and row.params[1] < row.params[0]
  assert row.layers_pruned == sum(1 for k in plan.keep if k in view(model).keys())
  assert 0 < row.layers_pruned <= row.layers
  assert row.groups_left >= 1 and "model output" in row.left_unpruned
  assert "| MobileNetV2 | 32x32 |" in applications.table([row])
