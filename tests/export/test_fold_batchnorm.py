"""fold_batchnorm and export_serving: the folded / frozen model computes the original function."""
import numpy as np
import pytest

import tensorflow as tf
import tf_keras as keras

from tests.helpers import randomize, residual_net
from tf_rethink import export
from tf_rethink.export.fold_batchnorm import fold_batchnorm, foldable_pairs
from tf_rethink.models import MODELS

L = keras.layers


def _bn_count(model):
  return sum(isinstance(l, L.BatchNormalization) for l in model.layers)


@pytest.mark.parametrize("name, m", [("vgg16", 0.125), ("resnet20", 0.5), ("preresnet110", 0.25)])
def test_folded_model_computes_the_same_function(name, m):
  model = randomize(MODELS.get(name).build(input_shape=(32, 32, 3), num_classes=10,
                                           width_multiplier=m), scaled=True)
  x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype(np.float32)
  folded = fold_batchnorm(model)
  pairs = foldable_pairs(model)
  np.testing.assert_allclose(folded(x).numpy(), model(x, training=False).numpy(),
                             rtol=1e-4, atol=1e-4)
  assert _bn_count(folded) == _bn_count(model) - len(pairs)
  assert len(folded.weights) < len(model.weights)
  if name == "vgg16":  # conv->BN x13 and the classifier's Dense->BN1d
    assert len(pairs) == 14 and _bn_count(folded) == 0
  elif name == "resnet20":  # stem + 2 per block; the BN output feeds the add, its input is a conv
    assert len(pairs) == 19 and _bn_count(folded) == 0
  else:  # pre-activation bottlenecks: bn2, bn3 follow a conv (folded, 2 x 36); each block's bn1
    # and the final BN read a residual sum (left: 36 + 1)
    assert len(pairs) == 72 and _bn_count(folded) == 37
  names = [l.name for l in folded.layers]
  for bn, conv in pairs.items():
    assert folded.get_layer(conv).use_bias
    assert bn not in names      # the folded BN is gone from the graph


def test_depthwise_with_a_channel_multiplier_is_folded():
  inputs = keras.Input((8, 8, 3))
  x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(inputs)
  x = L.BatchNormalization(name="bn")(x)
  model = randomize(keras.Model(inputs, L.Conv2D(4, 1, name="pw")(x)))
  assert foldable_pairs(model) == {"bn": "dw"}
  x = np.random.default_rng(4).normal(size=(2, 8, 8, 3)).astype(np.float32)
  np.testing.assert_allclose(fold_batchnorm(model)(x).numpy(), model(x, training=False).numpy(),
                             rtol=1e-4, atol=1e-4)


def test_bn_without_scale_or_center_is_folded():
  inputs = keras.Input((6,))
  x = L.BatchNormalization(scale=False, center=False, name="bn")(L.Dense(5, name="dense")(inputs))
  model = randomize(keras.Model(inputs, x))
  assert foldable_pairs(model) == {"bn": "dense"}
  x = np.random.default_rng(5).normal(size=(3, 6)).astype(np.float32)
  np.testing.assert_allclose(fold_batchnorm(model)(x).numpy(), model(x, training=False).numpy(),
                             rtol=1e-4, atol=1e-4)


def test_bn_after_a_shared_output_or_an_add_is_left():
  inputs = keras.Input((8, 8, 3))
  a = L.Conv2D(4, 3, padding="same", name="a")(inputs)
  left = L.BatchNormalization(name="bn_left")(a)   # a also feeds the add: not foldable
  s = L.Add(name="add")([a, left])
  out = L.BatchNormalization(name="bn_add")(s)     # after an add: not foldable
  b = L.Dense(3, name="dense")(L.GlobalAveragePooling2D()(out))
  c = L.BatchNormalization(name="bn_dense")(b)     # Dense -> BN: folded
  model = randomize(keras.Model(inputs, c))
  assert foldable_pairs(model) == {"bn_dense": "dense"}
  x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
  np.testing.assert_allclose(fold_batchnorm(model)(x).numpy(), model(x, training=False).numpy(),
                             rtol=1e-4, atol=1e-4)


def test_export_serving_is_frozen_and_verified(tmp_path):
  model = randomize(residual_net(), scaled=True)
  x = np.random.default_rng(2).normal(size=(3, 8, 8, 3)).astype(np.float32)
  info = export.export_serving(model, str(tmp_path / "serving"), x)
  assert info["bytes"] > 0 and not (tmp_path / "serving.partial").exists()
  loaded = tf.saved_model.load(str(tmp_path / "serving"))
  serve = loaded.signatures["serving_default"]
  assert all(t.dtype != tf.resource for t in serve.captured_inputs)  # no variables: frozen
  (input_name,) = serve.structured_input_signature[1]
  out = serve(**{input_name: tf.constant(x)})
  np.testing.assert_allclose(next(iter(out.values())).numpy(), model(x, training=False).numpy(),
                             rtol=1e-4, atol=1e-4)
  # batch size is free
  assert next(iter(serve(**{input_name: tf.constant(x[:1])}).values())).shape[0] == 1


def test_export_serving_refuses_a_model_it_would_change(tmp_path, monkeypatch):
  from tf_rethink.export import fold_batchnorm as fb
  model = randomize(residual_net(), scaled=True)
  x = np.random.default_rng(3).normal(size=(2, 8, 8, 3)).astype(np.float32)
  fold = fb.fold_batchnorm
  broken = lambda m: _scale_first_kernel(fold(m))  # noqa: E731
  monkeypatch.setattr(fb, "fold_batchnorm", broken)
  with pytest.raises(RuntimeError, match="disagrees"):
    export.export_serving(model, str(tmp_path / "bad"), x)
  assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()


def _scale_first_kernel(model):
  conv = next(l for l in model.layers if isinstance(l, L.Conv2D))
  w = conv.get_weights()
  conv.set_weights([w[0] * 2.0] + w[1:])
  return model
