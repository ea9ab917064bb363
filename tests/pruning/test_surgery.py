"""shrink / rebuild / channel propagation / the masked reference on small models built here."""
import numpy as np
import pytest

import tf_rethink
import tensorflow as tf
import tf_keras as keras

from tests import helpers
from tf_rethink.util.errors import UsageError
from tf_rethink.models.layers import OptionAShortcut
from tf_rethink.pruning import channels as channels_lib, masking, surgery
from tf_rethink.pruning.graph import view
from tf_rethink.pruning.plan import Plan as PrunePlan


def _propagate(model, keep):
  return channels_lib.propagate(view(model), keep).calls


def _uncoupled(model):
  return tf_rethink.channel_groups(model).uncoupled()

X8 = np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype(np.float32)


def test_vgg_like_shrink_matches_mask_and_copies_the_kept_slices():
  model = helpers.randomize(helpers.vgg_like())
  plan = PrunePlan("", {"conv1": (0, 2, 5), "conv2": (1, 3), "conv3": (0, 1, 2, 9),
                        "fc1": (3, 4, 7, 11)})
  small = helpers.assert_shrink_matches_mask(model, plan, X8)
  k2 = model.get_layer("conv2").get_weights()[0]
  np.testing.assert_array_equal(small.get_layer("conv2").get_weights()[0],
                                k2[:, :, [0, 2, 5], :][..., [1, 3]])
  b3 = model.get_layer("conv3").get_weights()[1]
  np.testing.assert_array_equal(small.get_layer("conv3").get_weights()[1], b3[[0, 1, 2, 9]])
  for full, cut in zip(model.get_layer("conv1_bn").get_weights(),
                       small.get_layer("conv1_bn").get_weights()):
    np.testing.assert_array_equal(cut, full[[0, 2, 5]])
  fc1 = model.get_layer("fc1").get_weights()[0]
  np.testing.assert_array_equal(small.get_layer("fc1").get_weights()[0],
                                fc1[[0, 1, 2, 9]][:, [3, 4, 7, 11]])
  np.testing.assert_array_equal(small.get_layer("logits").get_weights()[0],
                                model.get_layer("logits").get_weights()[0][[3, 4, 7, 11]])
  assert small.get_layer("conv3").get_config()["filters"] == 4
  assert small.get_layer("fc1").get_config()["units"] == 4
  assert small.name == model.name


def test_masked_reference_zeroes_removed_channels_through_bn_and_relu():
  model = helpers.randomize(helpers.vgg_like())
  before = [w.copy() for w in model.get_weights()]
  tap = keras.Model(model.input, [model.get_layer("conv1_relu").output, model.output])
  keep = {"conv1": (0, 2, 5)}
  out = masking.masked_outputs(model, keep, X8)[0]
  assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # not modified
  # The removed channels are not zero in the plain model (ReLU(BN(0)) = ReLU(beta - ...)).
  relu = tap(X8, training=False)[0].numpy()
  assert np.abs(relu[..., [1, 3, 4, 6, 7]]).max() > 0
  small = surgery.shrink(model, keep)
  np.testing.assert_allclose(small(X8, training=False).numpy(), out, rtol=1e-5, atol=1e-5)
  assert not np.allclose(tap(X8, training=False)[1].numpy(), out, atol=1e-4)


def test_residual_net_prunes_block_first_convs_only():
  model = helpers.randomize(helpers.residual_net())
  assert _uncoupled(model) == ["stage1_block1_conv1", "stage1_block2_conv1"]
  plan = PrunePlan("", {"stage1_block1_conv1": (0, 4), "stage1_block2_conv1": (1, 2, 3, 5)})
  small = helpers.assert_shrink_matches_mask(model, plan, X8)
  assert small.get_layer("stage1_block1_conv2").get_weights()[0].shape == (3, 3, 2, 8)


@pytest.mark.parametrize("layer", ["conv1", "stage1_block2_conv2"])
def test_pruning_into_a_residual_add_names_the_merge(layer):
  model = helpers.residual_net()
  with pytest.raises(UsageError, match=r"'stage1_block\d_add' \(Add\) merges inputs with "
                     "different kept channels"):
    surgery.shrink(model, {layer: (0, 1, 2)})


def test_concat_offsets_and_flatten_rows():
  model = helpers.randomize(helpers.concat_net())
  assert sorted(_uncoupled(model)) == ["branch_a", "branch_b", "conv_after"]
  plan = PrunePlan("", {"branch_a": (1, 3), "branch_b": (0, 6), "conv_after": (2, 5)})
  channels = _propagate(model, plan.keep)
  assert channels["concat"].cut.out == (1, 3, 5, 11)
  assert channels["flatten"].cut.out == (2, 5, 8, 11, 14, 17, 20, 23)  # 2x2 positions, 6 channels
  small = helpers.assert_shrink_matches_mask(model, plan, X8)
  assert small.get_layer("conv_after").get_weights()[0].shape == (3, 3, 4, 2)
  assert small.get_layer("logits").get_weights()[0].shape == (8, 3)


def test_depthwise_and_separable_follow_their_inputs():
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 6, "conv1")
  x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
  x = keras.layers.BatchNormalization(name="dw_bn")(x)
  x = keras.layers.SeparableConv2D(5, 3, padding="same", name="sep")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = helpers.randomize(keras.Model(inp, keras.layers.Dense(2, name="logits")(x)))
  plan = PrunePlan("", {"conv1": (0, 4), "sep": (1, 2, 4)})
  channels = _propagate(model, plan.keep)
  assert channels["dw"].cut.out == (0, 1, 8, 9)
  small = helpers.assert_shrink_matches_mask(model, plan, X8)
  assert small.get_layer("dw").get_weights()[0].shape == (3, 3, 2, 2)
  assert small.get_layer("sep").get_weights()[1].shape == (1, 1, 4, 3)


def test_copy_weights_false_same_shapes_fresh_weights():
  model = helpers.randomize(helpers.vgg_like())
  plan = PrunePlan("", {"conv1": (0, 2, 5), "conv3": (0, 1, 2, 9)})
  copied = plan.apply(model)
  fresh = plan.apply(model, copy_weights=False)
  for a, b in zip(copied.get_weights(), fresh.get_weights()):
    assert a.shape == b.shape
  assert not np.allclose(copied.get_layer("conv2").get_weights()[0],
                         fresh.get_layer("conv2").get_weights()[0])
  np.testing.assert_array_equal(fresh.get_layer("conv1_bn").get_weights()[0], np.ones(3))
  np.testing.assert_array_equal(fresh.get_layer("conv3").get_weights()[1], np.zeros(4))


def test_plan_from_json_applies_to_a_fresh_model_of_the_same_architecture():
  model = helpers.randomize(helpers.vgg_like(), seed=3)
  plan = PrunePlan("", {"conv2": (0, 5), "conv3": (1, 2, 3)})
  fresh = helpers.randomize(helpers.vgg_like(), seed=4)
  small = helpers.assert_shrink_matches_mask(fresh, PrunePlan.from_json(plan.to_json()), X8)
  assert [w.shape for w in small.get_weights()] == [
      w.shape for w in plan.apply(model).get_weights()]


@pytest.mark.parametrize("keep, match", [
    ({"conv1": (0,), "nope": (0,), "zzz": (1,)}, "does not have: nope, zzz"),
    ({"conv2": (0, 6)}, r"keeps channel\(s\) \[6\] of layer 'conv2', which has only 6"),
    ({"conv1_bn": (0, 1)}, r"'conv1_bn' \(BatchNormalization\), which makes no channels"),
    ({"logits": (0, 1)}, "prunes the model output"),
])
def test_bad_plans_raise_usage_errors(keep, match):
  with pytest.raises(UsageError, match=match):
    surgery.shrink(helpers.vgg_like(), keep)


def test_layer_without_rule_is_named_when_pruned_channels_reach_it():
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 4, "conv1")
  x = keras.layers.Lambda(lambda t: tf.reverse(t, axis=[-1]), name="double")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inp, keras.layers.Dense(2, name="logits")(x))
  with pytest.raises(UsageError, match=r"'double' \(Lambda\), which the rule book has no rule"):
    surgery.shrink(model, {"conv1": (0, 1)})
  assert _uncoupled(model) == []
  assert surgery.shrink(model, {}).count_params() == model.count_params()


def test_option_a_shortcut_needs_unpruned_input():
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 4, "conv1")
  y = helpers.conv_bn_relu(x, 8, "block_conv1", strides=2)
  s = OptionAShortcut(8, name="block_shortcut")(x)
  x = keras.layers.Add(name="block_add")([y, s])
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = helpers.randomize(keras.Model(inp, keras.layers.Dense(2, name="logits")(x)))
  with pytest.raises(UsageError, match=r"'block_shortcut' \(OptionAShortcut\) needs all"):
    surgery.shrink(model, {"conv1": (0, 1)})
  assert _uncoupled(model) == []
