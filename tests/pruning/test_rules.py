"""One test per layer kind of the rule book, on hand-written graphs: each pruned by the public API
(L1-norm, 50%, coupled groups too) and checked by `prune_checks` (the shrunk model computes what
the masked full-size model computes; params and MACs as predicted from the configs alone)."""
import numpy as np
import pytest

import tf_rethink
import tensorflow as tf
import tf_keras as keras

from tests import helpers
from tests.pruning import prune_checks
from tf_rethink import flops
from tf_rethink.pruning.graph import view

L = keras.layers


def _x(model, n=2, seed=0):
  return np.random.default_rng(seed).normal(size=(n,) + model.input_shape[1:]).astype(np.float32)


def _check(model, ratio=0.5):
  model = helpers.randomize(model, scaled=True)
  return model, prune_checks.check_pruned_model(model, _x(model), ratio=ratio)


def _head(x, classes=3):
  return L.Dense(classes, name="logits")(L.GlobalAveragePooling2D(name="gap")(x))


def test_grouped_conv_with_equal_group_widths_prunes_whole_groups():   # RegNet, ResNeXt
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 16, "expand")
  x = L.Conv2D(16, 3, padding="same", groups=4, use_bias=False, name="grouped")(x)
  x = L.BatchNormalization(name="grouped_bn")(x)
  x = L.Conv2D(8, 1, name="project")(L.ReLU()(x))
  model, (small, plan, *_) = _check(keras.Model(inp, _head(x)))
  group = tf_rethink.channel_groups(model).group_of("expand")
  assert group.units == tuple(tuple(range(k * 4, k * 4 + 4)) for k in range(4))
  kept = plan.keep["expand"]
  assert len(kept) == 8 and {i // 4 for i in kept} and all(
      (i // 4) * 4 + j in kept for i in kept for j in range(4))       # two whole groups of four
  assert small.get_layer("grouped").get_config()["groups"] == 2


def test_grouped_conv_with_one_input_per_group_follows_its_input():  # ConvNeXt's depthwise
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 8, "stem")
  x = L.Conv2D(16, 3, padding="same", groups=8, name="dw_as_grouped")(x)   # 2 outputs each
  model, (small, plan, *_) = _check(keras.Model(inp, _head(L.ReLU()(x))))
  assert len(plan.keep["stem"]) == 4
  assert small.get_layer("dw_as_grouped").get_config()["groups"] == 4
  assert small.get_layer("dw_as_grouped").get_config()["filters"] == 8


def test_grouped_conv_with_unequal_widths_prunes_its_outputs_evenly():
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 8, "stem")
  x = L.Conv2D(16, 3, padding="same", groups=2, name="grouped")(x)   # 4 -> 8 per group
  model, (small, plan, *_) = _check(keras.Model(inp, _head(L.ReLU()(x))))
  kept = plan.keep["grouped"]
  assert sum(i < 8 for i in kept) == sum(i >= 8 for i in kept) == 4
  assert "stem" not in plan.keep          # its inputs stay whole
  assert small.get_layer("grouped").get_config()["groups"] == 2


def test_separable_only_group_is_scored_and_pruned():                 # Xception's entry flow
  inp = keras.Input((8, 8, 3))
  x = L.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, name="sep1")(inp)
  x = L.ReLU()(L.BatchNormalization(name="sep1_bn")(x))
  x = L.SeparableConv2D(6, 3, padding="same", name="sep2")(x)
  model, (small, plan, *_) = _check(keras.Model(inp, _head(x)))
  assert set(plan.keep) == {"sep1", "sep2"}
  assert small.get_layer("sep2").get_weights()[0].shape == (3, 3, 4, 1)


@pytest.mark.parametrize("rank", [1, 3])
def test_conv1d_and_conv3d_chains(rank):
  shape = {1: (16, 3), 3: (6, 6, 6, 2)}[rank]
  conv = {1: L.Conv1D, 3: L.Conv3D}[rank]
  pool = {1: L.GlobalAveragePooling1D, 3: L.GlobalAveragePooling3D}[rank]
  inp = keras.Input(shape)
  x = conv(8, 3, padding="same", name="c1")(inp)
  x = L.ReLU()(L.BatchNormalization(name="c1_bn")(x))
  x = conv(6, 3, padding="same", name="c2")(x)
  model, (small, plan, *_) = _check(keras.Model(inp, L.Dense(2, name="logits")(pool()(x))))
  assert set(plan.keep) == {"c1", "c2"}


def test_transposed_convs_and_upsampling_of_a_decoder():               # U-Net decoders
  inp = keras.Input((8, 8, 3))
  e = helpers.conv_bn_relu(inp, 8, "enc", strides=2)
  d = L.Conv2DTranspose(6, 3, strides=2, padding="same", name="up_conv")(e)
  d = L.ReLU()(L.BatchNormalization(name="up_bn")(d))
  u = L.UpSampling2D(name="up")(e)
  x = L.Concatenate(name="skip")([d, u])
  x = L.Conv2D(4, 3, padding="same", name="dec")(x)
  model, (small, plan, before, after, _) = _check(keras.Model(inp, _head(x)))
  assert {"enc", "up_conv", "dec"} <= set(plan.keep)
  counts = {c.key: c for c in view(model).calls}
  assert counts["up_conv"] and before.flops > after.flops


def test_conv1d_transpose_is_a_producer():
  inp = keras.Input((8, 3))
  x = L.Conv1DTranspose(6, 3, strides=2, padding="same", name="t1")(inp)
  x = L.Conv1D(4, 3, padding="same", name="c1")(L.ReLU()(x))
  model, (small, plan, *_) = _check(keras.Model(inp, L.Dense(2)(L.Flatten()(x))))
  assert {"t1", "c1"} <= set(plan.keep)


def test_dense_chain_of_an_mlp_on_tokens():                             # transformer FFN
  inp = keras.Input((5, 12))
  x = L.Dense(16, activation="gelu", name="ffn1")(inp)
  x = L.Dense(12, name="ffn2")(x)
  x = L.Add(name="residual")([inp, x])        # coupled with the input: ffn2 stays
  x = L.Dense(8, activation="relu", name="head1")(x)
  model, (small, plan, *_) = _check(keras.Model(inp, L.Dense(3, name="logits")(L.Flatten()(x))))
  assert set(plan.keep) == {"ffn1", "head1"}
  assert small.get_layer("ffn1").units == 8


def test_layer_norm_and_a_custom_per_channel_scale_follow_the_channels():   # ConvNeXt block
  @keras.utils.register_keras_serializable(package="tests")
  class Gamma(L.Layer):         # a LayerScale no rule was written for: the probe finds it
    def __init__(self, dim, **kw):
      super().__init__(**kw)
      self.dim = dim

    def build(self, shape):
      self.g = self.add_weight(name="g", shape=(self.dim,), initializer="ones")

    def call(self, x):
      return x * self.g

    def get_config(self):
      return {**super().get_config(), "dim": self.dim}

  inp = keras.Input((8, 8, 3))
  x = L.Conv2D(8, 3, padding="same", name="stem")(inp)
  y = L.Conv2D(8, 7, padding="same", groups=8, name="dw")(x)
  y = L.LayerNormalization(epsilon=1e-6, name="ln")(y)
  y = L.Dense(16, activation="gelu", name="pw1")(y)
  y = L.Dense(8, name="pw2")(y)
  y = Gamma(8, name="gamma")(y)
  x = L.Add(name="add")([x, y])
  model, (small, plan, *_) = _check(keras.Model(inp, _head(x)))
  assert {"stem", "pw1", "pw2"} <= set(plan.keep)
  assert tf_rethink.channel_groups(model).probed == ("gamma",)
  assert small.get_layer("gamma").get_config()["dim"] == 4
  assert small.get_layer("ln").get_weights()[0].shape == (4,)


def test_tensor_arithmetic_with_scalars_and_broadcast_tensors():       # MobileNetV3 hard-swish
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 8, "c1")
  hs = x * (tf.nn.relu6(x + 3.0) / 6.0)                                # hard-swish
  gate = L.Conv2D(1, 1, activation="sigmoid", name="spatial_gate")(hs)  # (8, 8, 1): broadcasts
  y = hs * gate
  y = tf.clip_by_value(y, -2.0, 2.0) + tf.constant(np.linspace(0, 1, 8, dtype=np.float32))
  y = L.Conv2D(6, 3, padding="same", name="c2")(y)
  model, (small, plan, *_) = _check(keras.Model(inp, _head(y)))
  assert {"c1", "c2"} <= set(plan.keep) and "spatial_gate" not in plan.keep
  sliced = [l for l in small.layers if type(l).__name__ == "TFOpLambda"]
  assert sliced    # the per-channel constant was cut with the channels (checked numerically)


def test_multiply_gate_of_squeeze_and_excite():
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 8, "c1")
  s = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
  s = L.Conv2D(2, 1, activation="relu", name="reduce")(s)
  s = L.Conv2D(8, 1, activation="sigmoid", name="expand")(s)
  x = L.Multiply(name="excite")([x, s])
  model, (small, plan, *_) = _check(keras.Model(inp, _head(L.Conv2D(4, 1, name="out")(x))))
  assert plan.keep["c1"] == plan.keep["expand"]


def test_rescaling_and_normalization_with_per_channel_vectors():
  inp = keras.Input((8, 8, 3))
  x = L.Conv2D(4, 3, padding="same", name="c1")(inp)
  x = L.Rescaling(scale=[0.5, 1.0, 2.0, 4.0], offset=0.1, name="rescale")(x)
  norm = L.Normalization(axis=-1, name="norm")
  norm.build((None, 8, 8, 4))
  x = norm(x)
  x = L.Conv2D(4, 3, padding="same", name="c2")(L.ReLU()(x))
  model = keras.Model(inp, _head(x))
  model.get_layer("norm").set_weights([np.arange(4, dtype=np.float32), np.arange(1, 5,
                                       dtype=np.float32), np.array(10)])
  model = helpers.randomize(model, scaled=True)
  small, plan, *_ = prune_checks.check_pruned_model(model, _x(model), ratio=0.5)
  assert len(small.get_layer("rescale").get_config()["scale"]) == 2


def test_reshape_and_flatten_into_dense():
  inp = keras.Input((4, 4, 3))
  x = helpers.conv_bn_relu(inp, 6, "c1")
  x = L.Reshape((4, 24), name="rows")(x)          # (H, W*C): each row's pixels folded in
  x = L.Dense(5, name="row_fc")(x)
  x = L.Flatten(name="flat")(x)
  model, (small, plan, *_) = _check(keras.Model(inp, L.Dense(2, name="logits")(x)))
  assert {"c1", "row_fc"} <= set(plan.keep)
  assert small.get_layer("rows").get_config()["target_shape"] == (4, 12)


def test_nested_models_are_flattened_and_rebuilt_nested():
  inner_in = keras.Input((8, 8, 6))
  y = helpers.conv_bn_relu(inner_in, 10, "inner_conv")
  inner = keras.Model(inner_in, L.Conv2D(6, 1, name="inner_out")(y), name="block")
  seq = keras.Sequential([keras.Input((8, 8, 6)), L.Conv2D(5, 3, padding="same", name="s1"),
                          L.ReLU(name="s1_relu")], name="seq")
  inp = keras.Input((8, 8, 3))
  x = helpers.conv_bn_relu(inp, 6, "stem")
  x = L.Add(name="residual")([x, inner(x)])
  x = seq(x)
  model, (small, plan, *_) = _check(keras.Model(inp, _head(x)))
  assert {"block/inner_conv", "seq/s1", "stem", "block/inner_out"} <= set(plan.keep)
  assert plan.keep["stem"] == plan.keep["block/inner_out"]       # coupled across the nesting
  assert isinstance(small.get_layer("block"), keras.Model)
  assert isinstance(small.get_layer("seq"), keras.Sequential)
  assert small.get_layer("block").get_layer("inner_conv").filters == 5


def test_shared_layers_are_pruned_consistently_across_their_calls():
  shared = L.Conv2D(6, 3, padding="same", name="shared")
  inp = keras.Input((8, 8, 3))
  a = helpers.conv_bn_relu(inp, 8, "branch_a")
  b = helpers.conv_bn_relu(inp, 8, "branch_b")
  x = L.Concatenate(name="cat")([shared(a), shared(b)])
  model, (small, plan, *_) = _check(keras.Model(inp, _head(x)))
  graph = view(model)
  assert [c.site for c in graph.calls_of("shared")] == ["shared", "shared#2"]
  assert plan.keep["branch_a"] == plan.keep["branch_b"]          # its two inputs: one channel set
  assert len(small.get_layer("shared")._inbound_nodes) >= 2    # still one layer, called twice


def test_what_cannot_be_followed_is_a_short_summary():
  inp = keras.Input((8, 8, 3))
  outs = []
  for i in range(6):
    y = L.Conv2D(4, 3, padding="same", name=f"c{i}")(inp)
    outs.append(L.Lambda(lambda t: tf.reverse(t, axis=[-1]), name=f"rev{i}")(y))
  model = keras.Model(inp, _head(L.Concatenate()(outs)))
  summary = tf_rethink.channel_groups(model).summary()
  assert "\n" not in summary and len(summary) < 400
  assert "6 reach a layer without a rule (c" in summary and ", ...)" in summary
  assert "layers without a rule: 6 (rev0, rev1, rev2, ...)" in summary


def test_flops_count_the_layers_the_first_round_counted_as_zero():
  inp = keras.Input((8, 8, 4))
  t = L.Conv2DTranspose(4, 3, strides=2, padding="same", use_bias=False, name="t")(inp)
  u = L.UpSampling2D(name="u")(inp)
  n = L.LayerNormalization(name="n")(u)
  s = n + 1.0
  model = keras.Model(inp, L.Concatenate()([t, s]))
  got = flops.count(model)
  tconv = 2 * 9 * 4 * 4 * 64            # 2 kh kw C_in C_out H_in W_in
  assert got.flops == tconv + 12 * 16 * 16 * 4 + 2 * 16 * 16 * 4 + 16 * 16 * 4
  assert got.macs == tconv // 2


def test_embedding_is_a_producer_and_channels_first_convs_stay_whole():
  inp = keras.Input((6,), dtype="int32")
  x = L.Embedding(20, 8, name="embed")(inp)
  x = L.Dense(6, activation="relu", name="ffn")(x)
  tokens = keras.Model(inp, L.Dense(2, name="logits")(L.Flatten()(x)))
  tokens = helpers.randomize(tokens, scaled=True)
  ids = np.random.default_rng(0).integers(0, 20, (2, 6)).astype(np.int32)
  small, plan = tf_rethink.prune(tokens, ratio=0.5)
  assert len(plan.keep["embed"]) == 4 and small.get_layer("embed").output_dim == 4
  from tf_rethink.pruning import masking  # pylint: disable=import-outside-toplevel
  np.testing.assert_allclose(small(ids).numpy(), masking.masked_outputs(tokens, plan.keep, ids)[0],
                             rtol=1e-5, atol=1e-5)
  inp = keras.Input((3, 8, 8))
  x = L.Conv2D(4, 3, padding="same", data_format="channels_first", name="cf")(inp)
  model = keras.Model(inp, L.Dense(2)(L.Flatten()(x)))
  report = tf_rethink.channel_groups(model)
  assert not report.group_of("cf").prunable
  assert flops.count(model).macs == 9 * 3 * 4 * 64 + 256 * 2
