"""The lottery regimes' initializations at 80% sparsity: the winning ticket (theta_0 masked), its
control at equal distribution (`lottery_random`: a fresh draw of the same initializers, masked) and
Scratch-E (the reference's N(0, 2/n), n = nnz / C_in: variance 1/density times theta_0's)."""
import types

import numpy as np
import tf_keras as keras

from tf_rethink.pruning import METHODS
from tf_rethink.train import regimes
from tf_rethink.train import trainer
from tf_rethink.train.strategy import make_strategy
from tests.helpers import randomize


def _net():
  init = lambda: keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
  inp = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(32, 3, padding="same", kernel_initializer=init(), name="conv1")(inp)
  x = keras.layers.BatchNormalization(name="conv1_bn")(x)
  x = keras.layers.Conv2D(48, 3, padding="same", kernel_initializer=init(), name="conv2")(x)
  x = keras.layers.BatchNormalization(name="conv2_bn")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inp, keras.layers.Dense(4, name="logits")(x))


def _kernel(model, name="conv2"):
  layer = model.get_layer(name)
  inner = getattr(layer, "layer", layer)   # TF-MOT's mask wrapper
  return inner.kernel.numpy()


def test_lottery_random_draws_theta0s_distribution_scratch_e_rescales(tmp_path, monkeypatch):
  built = {}

  def fake_train(build_model, train_ds, test_ds, spec, *, strategy, run_dir, **kwargs):
    with strategy.scope():
      built[run_dir.rsplit("/", 1)[-1]] = model = build_model()
    return types.SimpleNamespace(model=model)
  monkeypatch.setattr(trainer, "train", fake_train)
  keras.utils.set_random_seed(3)
  pruner = METHODS.get("magnitude")(ratio=0.8)
  config = types.SimpleNamespace(epochs=2, lr=0.1, batch_size=8, weight_decay=1e-4, momentum=0.9,
                                 model="", verbose=0, seed=3, method_options={})
  ctx = regimes.Context(config=config, lr_schedule="cifar", strategy=make_strategy("one_device"),
                        build_full=_net, train_ds=None, test_ds=None,
                        run_dir=lambda name: str(tmp_path / name), pruner=pruner)
  regimes.REGIMES.get("baseline")(ctx)
  theta0 = _kernel(built["baseline"])
  ctx.baseline_weights = ctx.init_weights()
  ctx.plan = pruner.select(randomize(_net(), 5))
  for name in ("lottery", "lottery_random", "scratch_e"):
    regimes.REGIMES.get(name)(ctx)
  ticket, fresh, scratch = (_kernel(built[n]) for n in ("lottery", "lottery_random", "scratch_e"))
  mask = ticket != 0
  assert 0.15 < mask.mean() < 0.25                              # 80% of the weights pruned
  np.testing.assert_array_equal(fresh != 0, mask)               # the same mask everywhere
  np.testing.assert_array_equal(scratch != 0, mask)
  np.testing.assert_array_equal(ticket[mask], theta0[mask])     # the ticket is theta_0
  assert not np.allclose(fresh[mask], theta0[mask])             # lottery_random: another draw...
  he = np.sqrt(2.0 / (9 * 48))                                  # ...of N(0, 2 / fan_out)
  assert abs(fresh[mask].std() / he - 1) < 0.1
  assert abs(ticket[mask].std() / he - 1) < 0.1
  # Scratch-E: N(0, 2/n), n = nnz / C_in = density * fan_out: std 1/sqrt(density) times theta_0's.
  density = mask.mean()
  assert abs(scratch[mask].std() / (he / np.sqrt(density)) - 1) < 0.1


def test_batchnorm_makes_a_larger_init_a_smaller_effective_lr():
  """Why the re-scaled Scratch-E init trains slower on a short schedule: with BN after the conv,
  scaling the kernel by c leaves the output unchanged and scales its gradient by 1/c, so one SGD
  step changes the kernel's direction c^2 times less (the 80% re-scale has c^2 = 1/0.2 = 5)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(11)
  x = tf.random.stateless_normal((16, 6, 6, 4), seed=(1, 2))
  y = tf.one_hot(tf.range(16) % 3, 3)
  conv = keras.layers.Conv2D(8, 3, use_bias=False)
  bn = keras.layers.BatchNormalization()
  head = keras.layers.Dense(3)
  conv.build(x.shape)
  w = conv.kernel.numpy()

  def loss_and_grad(scale):
    conv.kernel.assign(w * scale)
    with tf.GradientTape() as tape:
      h = tf.reduce_mean(bn(conv(x), training=True), axis=(1, 2))
      loss = tf.reduce_mean(keras.losses.categorical_crossentropy(y, head(h), from_logits=True))
    return float(loss), tape.gradient(loss, conv.kernel).numpy()
  c = np.sqrt(5.0)
  l1, g1 = loss_and_grad(1.0)
  lc, gc = loss_and_grad(c)
  assert abs(l1 - lc) < 1e-3                                    # same function
  # gradient / c (up to BN's epsilon)
  assert np.linalg.norm(gc * c - g1) / np.linalg.norm(g1) < 0.02
  # relative step |lr g| / |w| is c^2 smaller for the scaled kernel
  rel1 = np.linalg.norm(g1) / np.linalg.norm(w)
  relc = np.linalg.norm(gc) / np.linalg.norm(w * c)
  assert abs(rel1 / relc / c ** 2 - 1) < 0.05
