"""Shared test assertions and small model factories."""
import numpy as np

import tf_rethink  # noqa: F401
import tf_keras as keras

from tf_rethink.pruning import masking


def randomize(model, seed=0, scaled=False):
  """Random weights everywhere, with non-trivial BN statistics (gamma, beta, mean, var > 0).

  `scaled`: `study.applications.random_weights` (kernels N(0, 1/fan_in), BN statistics near
  (0, 1)), so activations keep their scale through deep models (keras.applications).
  """
  from tf_rethink.pruning.graph import view  # pylint: disable=import-outside-toplevel
  from tf_rethink.study import applications  # pylint: disable=import-outside-toplevel
  if scaled:
    return applications.random_weights(model, seed)
  rng = np.random.default_rng(seed)
  graph = view(model)          # every layer, nested models' included
  for layer in (graph.layer(k) for k in graph.keys()):
    weights = layer.get_weights() if hasattr(layer, "get_weights") else []
    if not weights:
      continue
    if applications.is_a(layer, "BatchNormalization"):
      new = [rng.uniform(0.5, 1.5, w.shape) if i == 0 else
             rng.uniform(0.1, 2.0, w.shape) if i == len(weights) - 1 else
             rng.normal(0, 0.5, w.shape) for i, w in enumerate(weights)]
    else:
      new = [rng.normal(0, 0.3, w.shape) for w in weights]
    layer.set_weights([n.astype(w.dtype) for n, w in zip(new, weights)])
  return model


def copy_model(model):
  twin = keras.models.clone_model(model)
  twin.set_weights(model.get_weights())
  return twin


def assert_shrink_matches_mask(model, plan, x, *, rtol=1e-4, atol=1e-4):
  """plan.apply(model) computes what the masked full-size model computes (`masking`), in
  inference mode.

  Also checks that the shrunk model has the plan's widths and the same layer names. Returns the
  shrunk model. `model` itself is not modified.
  """
  small = plan.apply(model)
  want = masking.masked_outputs(model, plan.keep, x)[0]
  got = small(x, training=False).numpy()
  np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
  assert [l.name for l in small.layers] == [l.name for l in model.layers]
  for name, width in plan.widths().items():
    assert small.get_layer(name).output_shape[-1] == width, name
  # The mask really changes the model (the test is not vacuous) unless nothing is pruned.
  full = model(x, training=False).numpy()
  if plan.keep:
    assert not np.allclose(full, want, rtol=rtol, atol=atol)
  return small


def conv_bn_relu(x, filters, name, strides=1, use_bias=False):
  x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=use_bias,
                          name=name)(x)
  x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
  return keras.layers.ReLU(name=f"{name}_relu")(x)


def vgg_like(input_shape=(8, 8, 3), classes=5):
  """conv-BN-ReLU x2, pool, conv-BN-ReLU (bias), GAP, Dense-BN-ReLU, Dense."""
  inp = keras.Input(input_shape)
  x = conv_bn_relu(inp, 8, "conv1")
  x = conv_bn_relu(x, 6, "conv2")
  x = keras.layers.MaxPooling2D(name="pool1")(x)
  x = conv_bn_relu(x, 10, "conv3", use_bias=True)
  x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
  x = keras.layers.Dense(12, name="fc1")(x)
  x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="fc1_bn")(x)
  x = keras.layers.ReLU(name="fc1_relu")(x)
  return keras.Model(inp, keras.layers.Dense(classes, name="logits")(x), name="vgg_like")


def residual_net(input_shape=(8, 8, 3), classes=4):
  """Stem conv, two basic blocks with identity Add, GAP, Dense."""
  inp = keras.Input(input_shape)
  x = conv_bn_relu(inp, 8, "conv1")
  for b in (1, 2):
    p = f"stage1_block{b}"
    y = conv_bn_relu(x, 6, f"{p}_conv1")
    y = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name=f"{p}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"{p}_bn2")(y)
    x = keras.layers.Add(name=f"{p}_add")([x, y])
    x = keras.layers.ReLU(name=f"{p}_relu2")(x)
  x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
  return keras.Model(inp, keras.layers.Dense(classes, name="logits")(x), name="residual_net")


def concat_net(input_shape=(8, 8, 3), classes=3):
  """Two conv branches concatenated, a conv after, Flatten, Dense."""
  inp = keras.Input(input_shape)
  a = conv_bn_relu(inp, 5, "branch_a")
  b = conv_bn_relu(inp, 7, "branch_b")
  x = keras.layers.Concatenate(name="concat")([a, b])
  x = keras.layers.BatchNormalization(name="concat_bn")(x)
  x = conv_bn_relu(x, 6, "conv_after")
  x = keras.layers.MaxPooling2D(4, name="pool")(x)
  x = keras.layers.Flatten(name="flatten")(x)
  return keras.Model(inp, keras.layers.Dense(classes, name="logits")(x), name="concat_net")


def tiny_convnet():
  """Tiny CIFAR-style net: conv (no bias) -> BN -> ReLU -> GAP -> dense (bias), seeded init."""
  import tf_keras as keras
  init = keras.initializers.HeNormal(seed=3)
  x = inp = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, kernel_initializer=init,
                          name="conv1")(x)
  x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="conv1_bn")(x)
  x = keras.layers.ReLU(name="conv1_relu")(x)
  x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
  x = keras.layers.Dense(3, kernel_initializer=init, name="logits")(x)
  return keras.Model(inp, x)


def tiny_dataset(n):
  """Deterministic (unshuffled), learnable 3-class data for `tiny_convnet`: (train batched by 8,
  test = the first n/2 examples in one batch); an interrupted run can match an uninterrupted one."""
  import tensorflow as tf
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, 8, 8, 3)).astype("float32")
  y = rng.integers(0, 3, n).astype("int32")
  x[np.arange(n), :, :, y] += 1.0  # learnable
  ds = tf.data.Dataset.from_tensor_slices((x, y))
  return ds.batch(8), ds.take(n // 2).batch(n // 2)
