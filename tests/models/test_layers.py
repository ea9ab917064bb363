"""Custom layers: option-A shortcut semantics (numpy reference), detach quirk, serialization."""
import numpy as np
import pytest

from tf_rethink.models.layers import InlineGlobalAveragePooling2D, OptionAShortcut
import tensorflow as tf
import tf_keras as keras


def _numpy_option_a(x, out_channels):
  n, h, w, c = x.shape
  pooled = x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
  return np.concatenate([pooled, np.zeros((n, h // 2, w // 2, out_channels - c))], axis=-1)


@pytest.mark.parametrize("shape,out_channels", [((2, 8, 8, 3), 6), ((1, 7, 5, 4), 4),
                                                ((3, 4, 4, 16), 32)])
def test_option_a_matches_numpy_avgpool_then_zero_pad(shape, out_channels):
  x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  layer = OptionAShortcut(out_channels)
  y = layer(x).numpy()
  np.testing.assert_allclose(y, _numpy_option_a(x, out_channels), rtol=1e-6, atol=1e-6)
  assert tuple(layer.compute_output_shape(shape)) == y.shape


@pytest.mark.parametrize("detach,expected", [(False, 0.25), (True, 0.0)])
def test_option_a_detach_stops_gradient(detach, expected):
  x = tf.constant(np.ones((1, 4, 4, 2), np.float32))
  with tf.GradientTape() as tape:
    tape.watch(x)
    loss = tf.reduce_sum(OptionAShortcut(4, detach=detach)(x))
  grad = tape.gradient(loss, x)
  got = 0.0 if grad is None else grad.numpy()
  np.testing.assert_allclose(got, expected)


def test_option_a_rejects_more_input_channels():
  with pytest.raises(ValueError, match="more than out_channels"):
    OptionAShortcut(2)(np.zeros((1, 4, 4, 3), np.float32))


@pytest.mark.parametrize("layer", [OptionAShortcut(8, pool_size=2, detach=True, name="sc"),
                                   InlineGlobalAveragePooling2D(name="gap")])
def test_custom_layer_config_round_trip(layer):
  config = layer.get_config()
  clone = type(layer).from_config(config)
  assert clone.get_config() == config
  restored = keras.layers.deserialize(keras.layers.serialize(layer))
  assert type(restored) is type(layer) and restored.get_config() == config
  x = np.random.default_rng(1).normal(size=(2, 4, 4, 3)).astype(np.float32)
  np.testing.assert_allclose(clone(x).numpy(), layer(x).numpy())


def test_inline_gap_equals_global_average():
  x = np.random.default_rng(2).normal(size=(2, 2, 2, 5)).astype(np.float32)
  np.testing.assert_allclose(InlineGlobalAveragePooling2D()(x).numpy(), x.mean(axis=(1, 2)),
                             rtol=1e-6)
  assert isinstance(InlineGlobalAveragePooling2D(), keras.layers.GlobalAveragePooling2D)
