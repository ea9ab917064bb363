"""Per-tap matmul weight gradients (train/conv_weight_grad.py): the same gradients as TensorFlow's
kernels, the measured rule, which layers a model routes through them, and that nothing else changes
(forward outputs, saving, the float32 default)."""
import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.run.config import Config
from tf_rethink.train import conv_weight_grad as cwg
from tf_rethink.train import speed
from tf_rethink.train.trainer import TrainSpec, compile_model
from tf_rethink.util.errors import UsageError


def _reference_grads(x, w, dy, padding):
  with tf.GradientTape() as tape:
    tape.watch([x, w])
    y = tf.nn.conv2d(x, w, 1, padding)
  return tape.gradient(y, [x, w], output_gradients=dy)


@pytest.mark.parametrize("kernel,padding,hw", [((3, 3), "SAME", (5, 5)), ((3, 3), "VALID", (6, 5)),
                                               ((1, 1), "SAME", (4, 4)), ((2, 4), "SAME", (5, 6)),
                                               ((5, 5), "SAME", (3, 3)), ((1, 3), "VALID", (4, 7))])
def test_gradients_equal_tensorflows_in_float32(kernel, padding, hw):
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(3, *hw, 4)), tf.float32)
  w = tf.constant(rng.normal(size=(*kernel, 4, 6)), tf.float32)
  y = tf.nn.conv2d(x, w, 1, padding)
  dy = tf.constant(rng.normal(size=y.shape), tf.float32)
  with tf.GradientTape() as tape:
    tape.watch([x, w])
    ours = cwg.tap_matmul_conv2d(x, w, padding)
  dx, dw = tape.gradient(ours, [x, w], output_gradients=dy)
  ref_dx, ref_dw = _reference_grads(x, w, dy, padding)
  np.testing.assert_allclose(ours.numpy(), y.numpy(), rtol=0, atol=0)   # the same forward op
  np.testing.assert_allclose(dw.numpy(), ref_dw.numpy(), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(dx.numpy(), ref_dx.numpy(), rtol=1e-5, atol=1e-5)
  # and the weight gradient alone, from the explicit sum over (n, h, w) for one tap
  xp = x.numpy() if padding == "VALID" else np.pad(
      x.numpy(), [(0, 0), ((kernel[0] - 1) // 2, kernel[0] // 2),
                  ((kernel[1] - 1) // 2, kernel[1] // 2), (0, 0)])
  i, j = kernel[0] - 1, kernel[1] - 1
  ho, wo = dy.shape[1], dy.shape[2]
  tap = np.einsum("nhwc,nhwd->cd", xp[:, i:i + ho, j:j + wo, :], dy.numpy())
  np.testing.assert_allclose(dw.numpy()[i, j], tap, rtol=1e-4, atol=1e-4)


def test_bfloat16_gradients_within_bfloat16_rounding_of_tensorflows():
  rng = np.random.default_rng(1)
  x = tf.cast(rng.normal(size=(64, 4, 4, 128)), tf.bfloat16)
  w = tf.cast(rng.normal(size=(3, 3, 128, 128)) * 0.05, tf.bfloat16)
  dy = tf.cast(rng.normal(size=(64, 4, 4, 128)), tf.bfloat16)
  ours = cwg.tap_matmul_weight_grad(x, dy, (3, 3), "SAME")
  ref = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=[3, 3, 128, 128], out_backprop=dy,
                                        strides=[1, 1, 1, 1], padding="SAME")
  exact = cwg.tap_matmul_weight_grad(tf.cast(x, tf.float32), tf.cast(dy, tf.float32), (3, 3),
                                     "SAME")
  scale = float(tf.reduce_max(tf.abs(exact)))
  ours_err = float(tf.reduce_max(tf.abs(tf.cast(ours, tf.float32) - exact))) / scale
  ref_err = float(tf.reduce_max(tf.abs(tf.cast(ref, tf.float32) - exact))) / scale
  assert ours.dtype == tf.bfloat16
  assert ours_err < 0.01 and ours_err <= 2 * ref_err + 1e-3   # bfloat16 output rounding, like TF's


def test_bad_padding_is_refused():
  with pytest.raises(ValueError, match="SAME or VALID"):
    cwg.tap_matmul_weight_grad(tf.zeros([1, 3, 3, 1]), tf.zeros([1, 3, 3, 1]), (3, 3), "CAUSAL")


def test_the_measured_rule():
  assert cwg.pays((8, 8), 128, 128) and cwg.pays((2, 2), 512, 512) and cwg.pays((4, 4), 64, 256)
  assert not cwg.pays((16, 16), 512, 512)                 # more than 64 output positions
  assert not cwg.pays((8, 8), 64, 64)                     # too narrow: ResNet-56's stage 3
  assert not cwg.pays((8, 8), 256, 256, strides=(2, 2))
  assert not cwg.pays((8, 8), 256, 256, dilation_rate=(2, 2))
  assert not cwg.pays((8, 8), 256, 256, dtype="float32")
  assert not cwg.pays((None, None), 256, 256) and not cwg.pays((-1, -1), 256, 256)


def _model():
  """Conv layers on both sides of the rule, plus layers it must leave alone."""
  inputs = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(128, 3, padding="same", use_bias=False, name="narrow_in")(inputs)
  x = keras.layers.Conv2D(128, 3, padding="same", name="wide_8x8")(x)          # pays
  x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
  x = keras.layers.Conv2D(128, 3, strides=2, padding="same", name="strided")(x)
  x = keras.layers.Conv2D(160, 1, name="pointwise_4x4")(x)                      # pays
  x = keras.layers.Conv2D(128, 3, padding="valid", name="valid_2x2")(x)         # pays
  x = keras.layers.Conv2DTranspose(8, 2, name="transposed")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(5, name="logits")(x))


def _twins(policy):
  """Two copies of `_model` with the same weights, built under `policy`."""
  old = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(policy)
  try:
    a, b = _model(), _model()
  finally:
    keras.mixed_precision.set_global_policy(old)
  b.set_weights(a.get_weights())
  return a, b


def _grads(model, x, y):
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
        y, tf.cast(model(x, training=True), tf.float32), from_logits=True))
  return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]


def _op_types(model, x):
  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      out = tf.reduce_sum(tf.cast(model(x, training=True), tf.float32))
    return tape.gradient(out, model.trainable_variables)
  graph = step.get_concrete_function(x).graph
  types = []
  for op in graph.get_operations():
    types.append(op.type)
    for fn in getattr(op, "_func_graphs", []) or []:
      types += [o.type for o in fn.get_operations()]
  return types


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "float32"])
def test_a_model_routes_exactly_the_layers_where_it_pays(policy):
  stock, tapped = _twins(policy)
  used = cwg.use_tap_matmul_weight_grads(tapped)
  if policy == "float32":
    assert used == ()   # float32's kernel is fine: nothing changes
  else:
    assert used == ("wide_8x8", "pointwise_4x4", "valid_2x2")
  assert cwg.use_tap_matmul_weight_grads(tapped) == used   # idempotent
  x = tf.constant(np.random.default_rng(2).normal(size=(4, 8, 8, 3)), tf.float32)
  y = tf.constant([0, 1, 2, 3])
  # forward: the same convolutions, bit for bit
  np.testing.assert_array_equal(tapped(x).numpy(), stock(x).numpy())
  stock_ops, tapped_ops = _op_types(stock, x), _op_types(tapped, x)
  filters = stock_ops.count("Conv2DBackpropFilter")
  assert tapped_ops.count("Conv2DBackpropFilter") == filters - len(used)
  taps = {"wide_8x8": 9, "pointwise_4x4": 1, "valid_2x2": 9}   # one matmul per kernel tap
  assert tapped_ops.count("MatMul") - stock_ops.count("MatMul") == sum(taps[n] for n in used)
  tol = 2e-2 if policy == "mixed_bfloat16" else 1e-5
  for g_stock, g_tapped in zip(_grads(stock, x, y), _grads(tapped, x, y)):
    scale = max(float(np.abs(g_stock).max()), 1e-6)
    assert np.abs(g_tapped - g_stock).max() / scale < tol


def test_settings_flag_and_compile_model():
  assert speed.SpeedSettings().conv_weight_grad == "auto" == Config().conv_weight_grad
  with pytest.raises(UsageError, match="conv_weight_grad"):
    speed.SpeedSettings(conv_weight_grad="always")
  with pytest.raises(UsageError, match="conv_weight_grad"):
    Config(conv_weight_grad="always")
  assert speed.SpeedSettings(conv_weight_grad="on").tap_matmul_weight_grads()
  assert not speed.SpeedSettings(conv_weight_grad="off").tap_matmul_weight_grads()
  assert not speed.FLOAT32.tap_matmul_weight_grads()   # library default: TensorFlow's kernels
  expected = (not tf.config.list_physical_devices("GPU") and speed.onednn_enabled()
              and not speed.cpu_has_amx())
  assert speed.SpeedSettings().tap_matmul_weight_grads() == expected
  spec = TrainSpec(epochs=1, lr=0.1, batch_size=4, weight_decay=1e-4)
  on = speed.SpeedSettings(mixed_precision="bf16", conv_weight_grad="on")
  with speed.policy_scope(on):
    model = compile_model(_model(), spec, on)
  patched = [l.name for l in model.layers if getattr(l, cwg._PATCH_MARK, False)]
  assert patched == ["narrow_in", "wide_8x8", "strided", "pointwise_4x4", "valid_2x2"]
  off = speed.SpeedSettings(mixed_precision="bf16", conv_weight_grad="off")
  with speed.policy_scope(off):
    model = compile_model(_model(), spec, off)
  assert not any(getattr(l, cwg._PATCH_MARK, False) for l in model.layers)


def test_a_patched_model_trains_and_saves(tmp_path):
  from tf_rethink.export.saved_model import export_and_verify, export_serving
  spec = TrainSpec(epochs=1, lr=0.01, batch_size=4, weight_decay=1e-4)
  on = speed.SpeedSettings(mixed_precision="bf16", conv_weight_grad="on")
  with speed.policy_scope(on):
    model = compile_model(_model(), spec, on)
  x = np.random.default_rng(3).normal(size=(8, 8, 8, 3)).astype("float32")
  history = model.fit(x, np.arange(8) % 5, batch_size=4, epochs=2, verbose=0)
  assert np.all(np.isfinite(history.history["loss"]))
  export_and_verify(model, str(tmp_path / "keras"), x[:2], atol=5e-2)
  export_serving(model, str(tmp_path / "serving"), x[:2], atol=5e-2)
