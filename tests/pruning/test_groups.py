"""Channel dependency groups (`groups.channel_groups`) on small models built here."""
import numpy as np
import pytest

import tf_rethink
import tensorflow as tf
import tf_keras as keras

from tests import helpers
from tests.pruning import prune_checks
from tf_rethink.util.errors import UsageError
from tf_rethink.models.layers import OptionAShortcut
from tf_rethink.pruning import surgery
from tf_rethink.pruning.plan import Plan

L = keras.layers
X8 = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)


def _groups(model):
  return {g.members: g for g in tf_rethink.channel_groups(model).groups}


def test_residual_stage_is_one_group_and_prunes_with_the_same_indices():
  model = helpers.randomize(helpers.residual_net(), scaled=True)
  groups = _groups(model)
  stage = ("conv1", "stage1_block1_conv2", "stage1_block2_conv2")
  assert groups[stage].prunable and groups[stage].width == 8
  assert groups[("logits",)].blocked_by == ("model output",)
  assert tf_rethink.channel_groups(model).uncoupled() == ["stage1_block1_conv1",
                                                         "stage1_block2_conv1"]
  small, plan, _, _, _ = prune_checks.check_pruned_model(model, X8, ratio=0.5)
  assert {plan.keep[m] for m in stage} == {plan.keep["conv1"]} and len(plan.keep["conv1"]) == 4
  # The group is scored by the SUM of its members' L1 norms.
  norms = sum(np.abs(model.get_layer(m).get_weights()[0]).reshape(-1, 8).sum(0) for m in stage)
  assert plan.keep["conv1"] == tuple(sorted(np.argsort(norms)[::-1][:4]))
  assert small.get_layer("stage1_block2_add").output_shape[-1] == 4


def test_concat_depthwise_and_flatten_follow_their_sources():
  model = helpers.randomize(helpers.concat_net())
  groups = _groups(model)
  assert all(groups[(n,)].prunable for n in ("branch_a", "branch_b", "conv_after"))
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 6, "conv1")
  x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
  y = L.Conv2D(12, 1, name="side")(inp)
  x = L.Add(name="add")([x, y])      # depthwise output i*2+j comes from conv1 channel i
  model = keras.Model(inp, L.Dense(2, name="logits")(L.Flatten()(x)))
  group = tf_rethink.channel_groups(model).group_of("side")
  assert group.members == ("conv1", "side") and not group.prunable
  assert group.blocked_by == ("merge 'add' aligns different channels of its inputs",
                              "members have different widths")


def test_lambda_and_custom_layer_are_reported_and_the_rest_still_prunes():
  @tf.keras.utils.register_keras_serializable(package="tests")
  class Scale(L.Layer):   # no surgery rule declared
    def call(self, x):
      return x * 2.0

  inp = keras.Input((8, 8, 3))
  a = helpers.conv_bn_relu(inp, 6, "conv_a")
  a = L.Lambda(lambda t: tf.reverse(t, axis=[-1]), name="double")(a)   # permutes channels
  b = helpers.conv_bn_relu(inp, 6, "conv_b")
  b = Scale(name="scale")(b)
  c = helpers.conv_bn_relu(inp, 6, "conv_c")
  d = helpers.conv_bn_relu(L.Concatenate(name="cat")([a, b, c]), 8, "conv_d")
  x = L.GlobalAveragePooling2D()(d)
  model = helpers.randomize(keras.Model(inp, L.Dense(3, name="logits")(x)), scaled=True)
  report = tf_rethink.channel_groups(model)
  assert set(report.skipped) == {"double"}        # a Lambda is opaque (its code is not read)
  assert "has no rule" in report.skipped["double"]
  assert not report.group_of("conv_a").prunable
  # The custom weightless layer was proven channel-wise by the numerical probe, so it prunes.
  assert report.probed == ("scale",) and report.group_of("conv_b").prunable
  assert "1 of" in report.summary() or "left unpruned" in report.summary()
  _, plan, _, _, _ = prune_checks.check_pruned_model(model, X8, ratio=0.5)
  assert sorted(plan.keep) == ["conv_b", "conv_c", "conv_d"]
  with pytest.raises(UsageError, match=r"'double' \(Lambda\), which the rule book has no rule"):
    surgery.shrink(model, {"conv_a": (0, 1)})


def test_input_output_fixed_width_and_mixing_reshape_block_their_groups():
  inp = keras.Input((4, 4, 3))
  x = L.Conv2D(3, 1, name="on_input")(inp)
  x = L.Add(name="add_input")([x, inp])                       # coupled with the network input
  y = helpers.conv_bn_relu(x, 4, "before_shortcut")
  y = OptionAShortcut(4, name="shortcut")(y)                  # needs all its inputs
  z = L.Conv2D(5, 1, name="before_reshape")(y)
  z = L.Reshape((5, 4), name="mix")(z)                        # mixes channels with space
  out = L.Conv1D(6, 1, name="out_conv")(z)                    # feeds the model output
  model = keras.Model(inp, out)
  report = tf_rethink.channel_groups(model)
  assert report.group_of("on_input").blocked_by == ("network input",)
  assert "needs all its input channels" in report.group_of("before_shortcut").blocked_by[0]
  assert "'mix' (Reshape) needs all its input channels" in report.group_of(
      "before_reshape").blocked_by
  assert report.group_of("out_conv").blocked_by == ("model output",)
  assert report.prunable() == [] and report.uncoupled() == []


def test_not_functional_models_are_refused():
  class Sub(keras.Model):
    def __init__(self):
      super().__init__()
      self.conv = L.Conv2D(4, 3)

    def call(self, x):
      return self.conv(x)

  with pytest.raises(UsageError, match="not a functional tf_keras model"):
    tf_rethink.channel_groups(Sub())
