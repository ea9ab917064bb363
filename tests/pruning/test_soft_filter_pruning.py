"""Soft Filter Pruning: exact soft zeroing each epoch, regrowth, final plan."""
import numpy as np

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tests import helpers
from tf_rethink.models import MODELS
from tf_rethink.pruning import METHODS, masking
from tf_rethink.pruning.methods import soft_filter_pruning as sfp


def _resnet20():
  return MODELS.get("resnet20").build(input_shape=(8, 8, 3), num_classes=3)


def test_rate_semantics_match_reference():
  # --rate 0.7: 16 -> 12, 32 -> 23, 64 -> 45 kept (spec 2.6)
  pruner = METHODS.get("soft_filter_pruning")(sfp_rate=0.7)
  assert [n - sfp.pruned_count(n, pruner.prune_fraction) for n in (16, 32, 64)] == [12, 23, 45]
  assert METHODS.get("soft_filter_pruning")(ratio=0.5).prune_fraction == 0.5


def test_zeroes_exactly_the_lowest_norm_filters_in_every_conv_and_they_grow_back():
  model = helpers.randomize(_resnet20(), seed=0)
  for layer in model.layers:   # beta > 0: a zeroed channel is not cut off by ReLU'(0) = 0
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.beta.assign(tf.fill(layer.beta.shape, 0.5))
  convs = sfp.sfp_convs(model)
  assert len(convs) == 19   # stem + 2 per block (reference layer_end 54 = 3 * 18)
  before = {c.name: sfp.filter_norms(c.kernel.numpy()) for c in convs}
  (callback,) = METHODS.get("soft_filter_pruning")(sfp_rate=0.7).callbacks()
  callback.set_model(model)
  callback.on_train_begin()
  for c in convs:
    n = c.filters
    want = np.sort(np.argsort(before[c.name])[:int(n * (1 - 0.7))])
    norms = sfp.filter_norms(c.kernel.numpy())
    np.testing.assert_array_equal(np.flatnonzero(norms == 0), want)
    np.testing.assert_array_equal(callback.zeroed[c.name], want)
    kept = np.setdiff1d(np.arange(n), want)
    np.testing.assert_array_equal(norms[kept], before[c.name][kept])   # others untouched
  # One SGD step: the zeroed filters get gradients and become nonzero again ("soft").
  model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(True))
  x = tf.random.stateless_normal((8, 8, 8, 3), seed=(1, 1))
  model.train_on_batch(x, tf.constant([0, 1, 2, 0, 1, 2, 0, 1]))
  stem = model.get_layer("conv1")
  assert (sfp.filter_norms(stem.kernel.numpy())[callback.zeroed["conv1"]] > 0).all()
  # End of epoch: the mask is recomputed from the current weights.
  current = {c.name: sfp.filter_norms(c.kernel.numpy()) for c in convs}
  logs = {}
  callback.on_epoch_end(0, logs)
  assert logs["sfp_regrown_filters"] > 0
  for c in convs:
    want = np.sort(np.argsort(current[c.name], kind="stable")[:int(c.filters * 0.3)])
    np.testing.assert_array_equal(np.flatnonzero(sfp.filter_norms(c.kernel.numpy()) == 0), want)


def test_plan_removes_the_zero_filters_of_uncoupled_convs():
  model = helpers.randomize(_resnet20(), seed=1)
  pruner = METHODS.get("soft_filter_pruning")(sfp_rate=0.7)
  zeroed = sfp.soft_prune(model, pruner.prune_fraction)
  plan = pruner.select(model, model_name="resnet20")
  assert sorted(plan.keep) == sorted(n for n in zeroed if n.endswith("_conv1") and n != "conv1")
  for name, kept in plan.keep.items():
    n = model.get_layer(name).filters
    assert kept == tuple(np.setdiff1d(np.arange(n), zeroed[name]))
  # The zero filters carried nothing: the physically pruned model computes the same function.
  small = plan.apply(model)
  x = tf.random.stateless_normal((2, 8, 8, 3), seed=(2, 2))
  want = masking.masked_outputs(model, plan.keep, x.numpy())[0]
  np.testing.assert_allclose(small(x, training=False), want, rtol=1e-4, atol=1e-5)
