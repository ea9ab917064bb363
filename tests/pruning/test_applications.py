"""The engine on models no one here wrote: tf_keras.applications pruned 30% by L1 norm."""
import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tf_keras as keras

from tests import helpers
from tests.pruning import prune_checks

A = keras.applications
HEAD = dict(weights=None, classes=10, classifier_activation=None)


def _model(name):
  builders = {
      "MobileNetV2": lambda: A.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, **HEAD),
      "VGG16": lambda: A.VGG16(input_shape=(32, 32, 3), **HEAD),
      "ResNet50": lambda: A.ResNet50(input_shape=(64, 64, 3), **HEAD),
      "DenseNet121": lambda: A.DenseNet121(input_shape=(64, 64, 3), **HEAD),
      "EfficientNetB0": lambda: A.EfficientNetB0(input_shape=(64, 64, 3), **HEAD),
  }
  return helpers.randomize(builders[name](), scaled=True)


COUPLED = {   # a group that must be pruned as one: (member, member)
    "MobileNetV2": ("block_1_project", "block_2_project"),   # residual add
    "ResNet50": ("conv2_block1_0_conv", "conv2_block3_3_conv"),   # a whole residual stage
    "EfficientNetB0": ("block2a_expand_conv", "block2a_se_expand"),   # squeeze-and-excite
    "DenseNet121": None, "VGG16": None,
}


@pytest.mark.parametrize("name", [
    "MobileNetV2",
    pytest.param("VGG16", marks=pytest.mark.slow),
    "ResNet50",   # the issue asks for it in the default suite (about 8 s)
    pytest.param("DenseNet121", marks=pytest.mark.slow),
    pytest.param("EfficientNetB0", marks=pytest.mark.slow),
])
def test_application_pruned_30_percent_matches_mask_and_shrinks(name):
  model = _model(name)
  x = np.random.default_rng(0).normal(size=(2,) + model.input_shape[1:]).astype(np.float32)
  small, plan, before, after, diff = prune_checks.check_pruned_model(model, x)
  pair = COUPLED[name]
  if pair is not None:
    assert plan.keep[pair[0]] == plan.keep[pair[1]]
    assert len(tf_rethink.channel_groups(model).group_of(pair[0]).members) > 1
  assert after.params < 0.8 * before.params
  print(f"{name}: params {before.params} -> {after.params}, flops {before.flops} -> "
        f"{after.flops}, max |mask - shrink| {diff:.3g}")


@pytest.mark.slow   # SavedModel tracing takes about a minute per model on 2 CPUs
@pytest.mark.parametrize("name", ["MobileNetV2", "ResNet50", "EfficientNetB0"])
def test_pruned_application_saves_and_reloads_as_saved_model(name, tmp_path):
  model = _model(name)
  x = np.random.default_rng(0).normal(size=(2,) + model.input_shape[1:]).astype(np.float32)
  prune_checks.check_pruned_model(model, x, export_dir=tmp_path / "export")


def test_densenet_style_concat_and_se_reshape_on_a_small_model(tmp_path):
  """The concat offsets (DenseNet) and Reshape((1, 1, C)) SE block (EfficientNet), default suite."""
  L = keras.layers
  inp = keras.Input((16, 16, 3))
  x = helpers.conv_bn_relu(inp, 8, "stem")
  for i in range(2):
    y = helpers.conv_bn_relu(x, 4, f"dense{i}")
    x = L.Concatenate(name=f"concat{i}")([x, y])
  x = L.BatchNormalization(name="trans_bn")(x)
  x = L.Conv2D(12, 1, name="expand")(x)
  x = L.BatchNormalization(name="expand_bn")(x)
  x = L.Activation("swish", name="expand_act")(x)
  x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
  se = L.GlobalAveragePooling2D(name="se_squeeze")(x)
  se = L.Reshape((1, 1, 12), name="se_reshape")(se)
  se = L.Conv2D(3, 1, activation="swish", name="se_reduce")(se)
  se = L.Conv2D(12, 1, activation="sigmoid", name="se_expand")(se)
  x = L.Multiply(name="se_excite")([x, se])
  x = L.Conv2D(6, 1, name="project")(x)
  x = L.GlobalAveragePooling2D()(x)
  model = helpers.randomize(keras.Model(inp, L.Dense(3, name="logits")(x)), scaled=True)
  report = tf_rethink.channel_groups(model)
  assert report.group_of("expand").members == ("expand", "se_expand")
  x8 = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype(np.float32)
  small, plan, _, _, _ = prune_checks.check_pruned_model(model, x8, ratio=0.5,
                                                         export_dir=tmp_path / "export")
  assert plan.keep["expand"] == plan.keep["se_expand"] and len(plan.keep["expand"]) == 6
  assert small.get_layer("se_reshape").output_shape == (None, 1, 1, 6)
  assert small.get_layer("concat1").output_shape[-1] == 8   # 4 + 2 + 2
