"""SGD reproduces torch.optim.SGD (coupled L2 before momentum, lr outside the buffer)."""
import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.train.optimizer import SGD
from tf_rethink.train.schedules import StepSchedule
from tf_rethink.train.strategy import make_strategy
from tf_rethink.train.trainer import TrainSpec, compile_model


def _bn_model(seed=0):
  """Dense (bias) -> BN -> ReLU -> Dense (bias): every kind of variable the paper decays."""
  init = keras.initializers.GlorotUniform(seed=seed)
  x = inp = keras.Input((5,))
  x = keras.layers.Dense(4, kernel_initializer=init, bias_initializer="ones", name="fc")(x)
  x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn",
                                      beta_initializer="ones")(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.Dense(3, kernel_initializer=init, bias_initializer="ones", name="logits")(x)
  return keras.Model(inp, x)


def _data(n=8, seed=1):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, 5)).astype("float32"), rng.integers(0, 3, n).astype("int32")


def _torch_sgd(params, grads, bufs, lr, mu, wd, nesterov):
  """torch.optim.SGD.step in numpy (dampening 0)."""
  out = []
  for i, (w, g) in enumerate(zip(params, grads)):
    d = g + wd * w
    bufs[i] = d.copy() if bufs[i] is None else mu * bufs[i] + d
    step = d + mu * bufs[i] if nesterov else bufs[i]
    out.append(w - lr * step)
  return out


@pytest.mark.parametrize("nesterov", [False, True])
def test_matches_pytorch_recurrence_with_lr_changes(nesterov):
  x, y = _data()
  lrs = [0.1, 0.1, 0.01, 0.01, 0.001]
  mu, wd = 0.9, 1e-2
  model = _bn_model()
  model.compile(SGD(lrs[0], momentum=mu, nesterov=nesterov, weight_decay=wd),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  ref = _bn_model()
  loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  params = [v.numpy() for v in ref.trainable_variables]
  bufs = [None] * len(params)
  for lr in lrs:
    for v, p in zip(ref.trainable_variables, params):
      v.assign(p)
    with tf.GradientTape() as tape:
      loss = loss_fn(y, ref(x, training=True))
    grads = [g.numpy() for g in tape.gradient(loss, ref.trainable_variables)]
    params = _torch_sgd(params, grads, bufs, lr, mu, wd, nesterov)
    model.optimizer.learning_rate = lr
    model.train_on_batch(x, y)
  names = [v.name for v in model.trainable_variables]
  assert any("gamma" in n for n in names) and any("bias" in n for n in names)
  for v, p in zip(model.trainable_variables, params):
    np.testing.assert_allclose(v.numpy(), p, rtol=1e-5, atol=1e-6, err_msg=v.name)
  # The weights moved, so the match is not trivial (Keras-style v <- mu v - lr g fails it).
  assert not np.allclose(params[0], _bn_model().get_weights()[0], atol=1e-3)


def test_coupled_l2_on_bn_and_biases():
  model = _bn_model()
  model.get_layer("bn").gamma.assign([1.0, 2.0, -1.0, 0.5])
  opt = SGD(0.1, momentum=0.9, weight_decay=0.01)
  before = [v.numpy() for v in model.trainable_variables]
  zero = [tf.zeros_like(v) for v in model.trainable_variables]
  opt.apply_gradients(zip(zero, model.trainable_variables))
  opt.apply_gradients(zip(zero, model.trainable_variables))
  for v, w0 in zip(model.trainable_variables, before):
    # step 1: v = wd w0, w1 = w0 (1 - lr wd); step 2: v = mu wd w0 + wd w1, w2 = w1 - lr v.
    w1 = w0 * (1 - 0.1 * 0.01)
    w2 = w1 - 0.1 * (0.9 * 0.01 * w0 + 0.01 * w1)
    np.testing.assert_allclose(v.numpy(), w2, rtol=1e-6, err_msg=v.name)
  bn = model.get_layer("bn")
  np.testing.assert_allclose(bn.gamma.numpy()[1],
                             2.0 * (1 - 1e-3) - 0.1 * (9e-3 * 2 + 1e-2 * 1.998), rtol=1e-6)
  assert not np.allclose(bn.beta.numpy(), before[2 + 1])  # beta (init 1) decayed too
  np.testing.assert_allclose(bn.moving_variance.numpy(), 1.0)  # non-trainable: untouched


def test_momentum_zero_is_plain_sgd():
  v = tf.Variable([1.0, -2.0])
  opt = SGD(0.5, momentum=0.0, weight_decay=0.1)
  opt.apply_gradients([(tf.constant([1.0, 1.0]), v)])
  np.testing.assert_allclose(v.numpy(), [1.0 - 0.5 * 1.1, -2.0 - 0.5 * (1 - 0.2)])


def test_get_config_round_trip_with_schedule():
  opt = SGD(StepSchedule(0.1, (2, 4), 0.1, steps_per_epoch=3), momentum=0.8, nesterov=True,
            weight_decay=5e-4)
  config = keras.optimizers.serialize(opt)
  again = keras.optimizers.deserialize(config)
  assert isinstance(again, SGD)
  assert (again.momentum, again.nesterov, again.coupled_weight_decay) == (0.8, True, 5e-4)
  assert again.weight_decay is None  # no decoupled decay on top
  assert isinstance(again._learning_rate, StepSchedule)
  assert again._learning_rate.get_config() == opt._learning_rate.get_config()
  np.testing.assert_allclose(float(again._learning_rate(6)), 0.01, rtol=1e-6)


def _conv_model(seed=0):
  """No BatchNorm: per-replica BN statistics legitimately differ from one-device ones."""
  init = keras.initializers.GlorotUniform(seed=seed)
  x = inp = keras.Input((6, 6, 2))
  x = keras.layers.Conv2D(3, 3, padding="same", kernel_initializer=init,
                          bias_initializer="ones")(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  x = keras.layers.Dense(3, kernel_initializer=init, bias_initializer="ones")(x)
  return keras.Model(inp, x)


def test_mirrored_two_replicas_equals_one_device():
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
  assert len(cpus) >= 2, "tests/conftest.py should configure 2 logical CPUs"
  rng = np.random.default_rng(0)
  x = rng.normal(size=(24, 6, 6, 2)).astype("float32")
  y = rng.integers(0, 3, 24).astype("int32")
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
  spec = TrainSpec(epochs=1, lr=0.1, batch_size=8, weight_decay=0.05)
  weights = []
  for strategy in (make_strategy("one_device"), make_strategy("mirrored", devices=cpus[:2])):
    with strategy.scope():
      model = compile_model(_conv_model(), spec)
    model.fit(ds, epochs=2, verbose=0)
    assert model.distribute_strategy.num_replicas_in_sync in (1, 2)
    weights.append(model.get_weights() + [v.numpy() for v in model.optimizer.momentums])
  assert len(weights[0]) == len(weights[1]) == 8
  init = _conv_model().get_weights()
  assert not np.allclose(weights[0][0], init[0], atol=1e-3)
  for a, b in zip(*weights):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
