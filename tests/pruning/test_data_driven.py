"""ThiNet and regression pruning: what the selection and the reconstruction compute.

Shared by both methods (parametrized over them): exact removal of zero / scaled-copy channels with
exact output restoration, lower reconstruction error than L1-norm on random data, the streaming
sampler, consumer discovery, the ChannelGather surgery rule and the saved reconstruction.
"""

import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tests.helpers import randomize
from tf_rethink.util.errors import UsageError
from tf_rethink.models.channel_gather import ChannelGather
from tf_rethink.pruning import METHODS, PrunePlan, surgery
from tf_rethink.pruning import data_driven
from tf_rethink.pruning.l1_norm import L1NormPruner
from tf_rethink.pruning.regression import lasso, lasso_select, channel_gram, reconstruct
from tf_rethink.pruning.thinet import greedy_remove, rescale

METHOD_KW = {"thinet": {}, "regression": {"regression_images": 64}}


def _dataset(n, shape, classes, seed=1, batch=16):
  x = np.random.default_rng(seed).normal(size=(n,) + shape).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices((x, np.arange(n) % classes)).batch(batch)


def _redundant_model():
  """conv1 (8 ch) -> ReLU -> conv2: channels 2 and 5 are zero, channel 6 = 0.05 x channel 1
  (and conv2 reads 6 with the weights it reads 1 with): removing {2, 5, 6} loses nothing."""
  rng = np.random.default_rng(0)
  inp = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
  x = keras.layers.ReLU(name="relu1")(x)
  model = keras.Model(inp, keras.layers.Conv2D(6, 3, padding="same", name="conv2")(x))
  k1 = rng.normal(size=(3, 3, 3, 8)).astype(np.float32)
  b1 = rng.normal(size=8).astype(np.float32)
  k1[..., [2, 5]], b1[[2, 5]] = 0, 0
  k1[..., 6], b1[6] = 0.05 * k1[..., 1], 0.05 * b1[1]
  k2 = rng.normal(size=(3, 3, 8, 6)).astype(np.float32)
  k2[:, :, 6] = k2[:, :, 1]
  model.get_layer("conv1").set_weights([k1, b1])
  model.get_layer("conv2").set_weights([k2, rng.normal(size=6).astype(np.float32)])
  return model


@pytest.mark.parametrize("method", ["thinet", "regression"])
def test_removes_exactly_the_redundant_channels_and_restores_the_output(method):
  model = _redundant_model()
  pruner = METHODS.get(method)(ratio=3 / 8, **METHOD_KW[method])
  plan = pruner.select(model, _dataset(64, (8, 8, 3), 6))
  assert plan.keep == {"conv1": (0, 1, 3, 4, 7)}
  x = np.random.default_rng(5).normal(size=(4, 8, 8, 3)).astype(np.float32)
  small = pruner.shrink(model, plan)
  np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-3)
  # Without the least-squares step the output is NOT restored (channel 1 lost 0.05 of itself).
  plain = surgery.shrink(model, plan)
  assert np.abs(plain(x).numpy() - model(x).numpy()).max() > 1e-2


def _random_model():
  inp = keras.Input((10, 10, 4))
  x = keras.layers.Conv2D(16, 3, padding="same", name="conv1")(inp)
  x = keras.layers.BatchNormalization(name="bn1")(x)
  x = keras.layers.ReLU(name="relu1")(x)
  x = keras.layers.MaxPooling2D(name="pool")(x)
  y = keras.layers.Conv2D(12, 3, strides=2, padding="same", name="conv2")(x)
  return randomize(keras.Model(inp, y), seed=3)


@pytest.mark.parametrize("method", ["thinet", "regression"])
def test_reconstruction_error_is_below_l1_norm_at_the_same_ratio(method):
  model = _random_model()
  data = _dataset(256, (10, 10, 4), 12, batch=32)
  x = np.random.default_rng(2).normal(size=(64, 10, 10, 4)).astype(np.float32)
  ref = model(x, training=False).numpy()

  def error(pruner):
    small = pruner.shrink(model, pruner.select(model, data))
    return np.mean((small(x, training=False).numpy() - ref) ** 2) / np.mean(ref ** 2)

  ours = error(METHODS.get(method)(ratio=0.5, **METHOD_KW[method]))
  l1 = error(L1NormPruner(ratio=0.5))
  assert ours < 0.75 * l1, (ours, l1)


def test_greedy_matches_exhaustive_search_on_a_small_problem():
  rng = np.random.default_rng(0)
  xhat = rng.normal(size=(200, 6)) * np.array([3.0, 0.1, 1.0, 0.2, 2.0, 0.0])
  gram = xhat.T @ xhat
  order = greedy_remove(gram, 3)
  # Step one is the exhaustive optimum over single channels; each next step the best extension.
  for step in range(1, 4):
    prefix = order[:step - 1]
    costs = {c: np.sum(xhat[:, prefix + [c]].sum(axis=1) ** 2) for c in range(6) if c not in prefix}
    assert order[step - 1] == min(costs, key=costs.get)
  assert order[0] == 5  # the all-zero channel costs nothing
  # The least-squares scales are those of numpy's lstsq on the samples.
  kept = [0, 2, 4]
  want = np.linalg.lstsq(xhat[:, kept], xhat.sum(axis=1), rcond=None)[0]
  np.testing.assert_allclose(rescale(gram, kept), want, rtol=1e-6)


def test_lasso_matches_the_soft_threshold_solution_and_selects_the_budget():
  a = np.diag([4.0, 1.0, 0.25])
  b = np.array([4.0, -1.0, 0.25])   # unpenalized solution beta = (1, -1, 1)
  lam = 0.6
  # Orthogonal design: beta_i = soft(b_i, lam/2) / a_ii.
  want = np.sign(b) * np.maximum(np.abs(b) - lam / 2, 0) / np.diag(a)
  np.testing.assert_allclose(lasso(a, b, lam, iters=5000, tol=1e-14), want, atol=1e-8)
  assert list(lasso_select(a, b, 2)) == [0, 1]
  assert list(lasso_select(a, b, 1)) == [0]


def test_channel_gram_and_reconstruction_against_explicit_contributions():
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(3, 3, 4, 5))
  patches = rng.normal(size=(300, 9, 4))
  m = patches.reshape(300, -1).T @ patches.reshape(300, -1)
  z = np.einsum("skc,kco->sco", patches, kernel.reshape(9, 4, 5))   # Z_c per sample
  np.testing.assert_allclose(channel_gram(m, kernel), np.einsum("sco,sdo->cd", z, z), rtol=1e-9)
  kept = [0, 2, 3]
  y = z.sum(axis=1)
  xk = patches[:, :, kept].reshape(300, -1)
  want = np.linalg.lstsq(xk, y, rcond=None)[0].reshape(3, 3, 3, 5)
  np.testing.assert_allclose(reconstruct(m, kernel, kept), want, rtol=1e-6, atol=1e-9)


def test_sampler_streams_bounded_images_and_accumulates_the_patch_gram():
  inp = keras.Input((6, 6, 2))
  conv = keras.layers.Conv2D(3, 3, padding="valid", name="conv")
  model = keras.Model(inp, conv(inp))
  # Every location of a 'valid' 3x3 conv on a constant image has the same patch.
  x = np.ones((40, 6, 6, 2), np.float32) * np.arange(1, 41, dtype=np.float32)[:, None, None, None]
  data = tf.data.Dataset.from_tensor_slices((x, np.arange(40) % 4)).batch(8)
  stats = data_driven.sample_statistics(model, [conv], data, kind="patch", images=10, per_class=3,
                                        locations=5)
  assert stats.images == 10 and stats.samples["conv"] == 50
  # per_class 3 over labels 0..3 in order: images 1..10 minus the 4th of a label (none: 10 <= 12).
  want = 5 * 18 * sum(v * v for v in range(1, 11))
  assert np.isclose(np.trace(stats.gram["conv"]), want)


def test_consumers_follow_channelwise_layers_and_stop_at_branches():
  inp = keras.Input((8, 8, 3))
  a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inp)
  x = keras.layers.BatchNormalization(name="a_bn")(a)
  x = keras.layers.ReLU(name="a_relu")(x)
  x = keras.layers.MaxPooling2D(name="pool")(x)
  b = keras.layers.Conv2D(4, 3, padding="same", name="b")(x)
  c = keras.layers.Conv2D(4, 1, name="c")(b)
  d = keras.layers.Conv2D(4, 1, name="d")(b)
  g = keras.layers.GlobalAveragePooling2D(name="gap")(keras.layers.Add(name="add")([c, d]))
  model = keras.Model(inp, keras.layers.Dense(2, name="fc")(g))
  assert data_driven.find_consumer(model, "a").name == "b"
  assert data_driven.find_consumer(model, "b") is None        # two consumers
  assert data_driven.find_consumer(model, "c") is None        # residual merge


def test_dense_after_global_pool_is_a_consumer_and_is_reconstructed():
  inp = keras.Input((6, 6, 2))
  x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inp)
  x = keras.layers.ReLU(name="relu")(x)
  x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
  model = randomize(keras.Model(inp, keras.layers.Dense(3, name="fc")(x)), seed=1)
  pruner = METHODS.get("regression")(ratio=0.25, regression_images=128)
  plan = pruner.select(model, _dataset(128, (6, 6, 2), 3))
  assert len(plan.keep["conv"]) == 6
  x = np.random.default_rng(3).normal(size=(32, 6, 6, 2)).astype(np.float32)
  ref = model(x).numpy()
  err = lambda m: np.mean((m(x).numpy() - ref) ** 2)
  assert err(pruner.shrink(model, plan)) < err(surgery.shrink(model, plan))


def test_channel_gather_surgery_and_config_round_trip():
  inp = keras.Input((4, 4, 6))
  x = ChannelGather(name="select")(inp)
  model = keras.Model(inp, keras.layers.Conv2D(2, 1, name="conv")(x))
  randomize(model)
  plan = PrunePlan(model="", keep={"select": (1, 4, 5)})
  small = surgery.shrink(model, plan)
  assert small.get_layer("select").indices == [1, 4, 5]
  x = np.random.default_rng(0).normal(size=(2, 4, 4, 6)).astype(np.float32)
  kernel, bias = model.get_layer("conv").get_weights()
  want = np.einsum("bhwc,co->bhwo", x[..., [1, 4, 5]], kernel[0, 0, [1, 4, 5]]) + bias
  np.testing.assert_allclose(small(x).numpy(), want, rtol=1e-5, atol=1e-5)
  rebuilt = keras.Model.from_config(small.get_config())
  assert rebuilt.get_layer("select").indices == [1, 4, 5]
  assert ChannelGather.from_config(ChannelGather(indices=[2, 0]).get_config()).indices == [2, 0]


def test_reconstruction_is_saved_beside_the_plan_and_reloaded(tmp_path):
  model = _redundant_model()
  pruner = METHODS.get("thinet")(ratio=3 / 8)
  plan = pruner.select(model, _dataset(64, (8, 8, 3), 6))
  path = str(tmp_path / "plan.json")
  pruner.save_plan(plan, path)
  fresh = METHODS.get("thinet")(ratio=3 / 8)
  loaded = fresh.load_plan(path)
  assert loaded == plan
  x = np.random.default_rng(5).normal(size=(2, 8, 8, 3)).astype(np.float32)
  np.testing.assert_allclose(fresh.shrink(model, loaded)(x).numpy(), model(x).numpy(),
                             rtol=1e-4, atol=1e-3)
  # Other weights: the stored kernels are not applied (plain surgery).
  other = _redundant_model()
  other.get_layer("conv2").set_weights([w + 1 for w in other.get_layer("conv2").get_weights()])
  np.testing.assert_allclose(fresh.shrink(other, loaded)(x).numpy(),
                             surgery.shrink(other, loaded)(x).numpy())


@pytest.mark.parametrize("method", ["thinet", "regression"])
def test_options_and_usage_errors(method):
  cls = METHODS.get(method)
  assert set(cls.options) == {f"{method}_images_per_class", f"{method}_locations"} or \
      set(cls.options) == {f"{method}_images", f"{method}_locations"}
  with pytest.raises(UsageError, match="not both"):
    cls(variant=next(iter(cls.VARIANTS)), ratio=0.5)
  with pytest.raises(UsageError, match="no variant"):
    cls(variant="zz")
  with pytest.raises(UsageError, match="defined for"):
    cls(variant=next(iter(cls.VARIANTS))).targets(_random_model(), "vgg16")
  assert cls().ratio == 0.5
