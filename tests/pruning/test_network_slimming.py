"""Network Slimming: L1 on BN gammas, global threshold (D6), surgery equivalence (D4), D1."""
import logging
import os

import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tests import helpers
from tf_rethink import flops
from tf_rethink.models import MODELS
from tf_rethink.models.slimming import ChannelSelection, densenet, preresnet, vgg_slim
from tf_rethink.pruning import METHODS
from tf_rethink.pruning.methods import network_slimming as ns


def _tiny_vgg():
  return vgg_slim([4, 6, "M", 8, 8, "M", 8, 8, 8, 8, "M", 6, 6, 6, 6, "M", 5, 5, 5, 5],
                  input_shape=(16, 16, 3), num_classes=3)


def _tiny_preresnet():
  """depth 20 (2 bottlenecks per stage) at quarter width."""
  cfg = [16, 16, 16, 64, 16, 16, 64, 32, 32, 128, 32, 32, 128, 64, 64, 256, 64, 64, 256]
  return preresnet(cfg, input_shape=(8, 8, 3), num_classes=3, depth=20, width_multiplier=0.25)


def _tiny_densenet():
  return densenet(list(range(12)), input_shape=(8, 8, 3), num_classes=3, depth=13, growth=4)


def test_registered():
  assert {"vgg19_slim", "preresnet164", "preresnet110", "densenet40"} <= set(MODELS.names())
  assert "network_slimming" in METHODS.names()


@pytest.mark.parametrize("name, params, flop", [
    ("vgg19_slim", 20_035_018, 797_304_842),
    pytest.param("preresnet164", 1_703_258, 504_759_306, marks=pytest.mark.slow),
    ("densenet40", 1_059_298, 573_052_330),
])
def test_d1_flops_and_params(name, params, flop):
  model = MODELS.get(name).build(input_shape=(32, 32, 3), num_classes=10)
  counts = flops.count(model)
  assert (counts.params, counts.flops) == (params, flop)


def test_l1_penalty_adds_exactly_s_sign_gamma():
  s = 1e-3
  model = helpers.randomize(_tiny_vgg(), seed=1)
  bns = list(ns.slimming_bns(model).values())
  g = bns[0].gamma.numpy()
  g[:2] = [-0.3, 0.0]     # a negative and an exactly-zero gamma: sign -1 and 0
  bns[0].gamma.assign(g)
  sparse = METHODS.get("network_slimming")(sparsity=s).prepare(model)
  x = tf.random.stateless_normal((4, 16, 16, 3), seed=(1, 2))
  y = tf.constant([0, 1, 2, 0])
  loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

  def grads(m, with_ce, with_reg):
    with tf.GradientTape() as tape:
      loss = loss_fn(y, m(x, training=True)) if with_ce else 0.0
      if with_reg:
        loss += tf.add_n(m.losses)
    return tape.gradient(loss, [l.gamma for l in list(ns.slimming_bns(m).values())])

  assert len(sparse.losses) == len(bns) == 16
  for reg, bn in zip(grads(sparse, False, True), bns):   # the penalty's own gradient: exact
    np.testing.assert_array_equal(reg, np.float32(s) * np.sign(bn.gamma.numpy()))
  for plain, total, bn in zip(grads(model, True, False), grads(sparse, True, True), bns):
    np.testing.assert_allclose(total - plain, s * np.sign(bn.gamma.numpy()), atol=1e-6)
  assert METHODS.get("network_slimming")().sparsity_for(model) == 1e-4   # VGG default
  assert METHODS.get("network_slimming")().sparsity_for(_tiny_densenet()) == 1e-5


def _set_gammas(model, values):
  bns = list(ns.slimming_bns(model).values())
  start = 0
  for bn in bns:
    n = bn.gamma.shape[0]
    bn.gamma.assign(np.asarray(values[start:start + n], np.float32))
    start += n
  assert start == len(values)
  return bns


def test_global_threshold_no_ties_prunes_int_total_p_plus_one():
  model = _tiny_vgg()
  total = sum(bn.gamma.shape[0] for bn in list(ns.slimming_bns(model).values()))
  values = np.random.default_rng(0).permutation(np.arange(1, total + 1)) / total
  values[::3] *= -1   # |gamma| is what counts
  bns = _set_gammas(model, values)
  masks = ns.bn_masks(model, 0.5)
  kept = np.concatenate([masks[bn.name] for bn in bns])
  assert int((~kept).sum()) == int(total * 0.5) + 1
  np.testing.assert_array_equal(kept, np.abs(values) > np.sort(np.abs(values))[int(total * 0.5)])


def test_global_threshold_ties_prune_all_equal_to_threshold():
  model = _tiny_vgg()
  total = sum(bn.gamma.shape[0] for bn in list(ns.slimming_bns(model).values()))
  values = np.linspace(0.01, 1.0, total)
  t = int(total * 0.3)
  values[t - 3:t + 4] = values[t]  # 7 entries tie at the threshold value
  _set_gammas(model, np.random.default_rng(1).permutation(values))
  kept = np.concatenate(list(ns.bn_masks(model, 0.3).values()))
  assert int((~kept).sum()) == t + 4   # everything up to and including the ties


def test_emptied_layer_keeps_its_largest_channel(caplog):
  model = _tiny_vgg()
  bns = list(ns.slimming_bns(model).values())
  values = np.concatenate([np.full(bn.gamma.shape[0], 1.0) for bn in bns])
  values[:4] = [0.01, 0.03, 0.02, 0.01]   # conv1 (4 channels) far below everything else
  _set_gammas(model, values)
  with caplog.at_level(logging.WARNING):
    masks = ns.bn_masks(model, 0.05)
  np.testing.assert_array_equal(masks["conv1_bn"], [False, True, False, False])
  assert "conv1_bn" in caplog.text
  plan = METHODS.get("network_slimming")(ratio=0.05).select(model)
  assert plan.keep["conv1"] == (1,)


@pytest.mark.parametrize("factory, expect_selection", [
    (_tiny_vgg, False), (_tiny_preresnet, True), (_tiny_densenet, True)])
def test_d4_masked_bn_model_equals_pruned_model(factory, expect_selection):
  model = helpers.randomize(factory(), seed=3)
  masks = ns.bn_masks(model, 0.5)
  plan = ns.plan_from_masks(model, masks)
  selections = [k for k in plan.keep if isinstance(model.get_layer(k), ChannelSelection)]
  assert bool(selections) == expect_selection
  masked = helpers.copy_model(model)
  ns.apply_bn_masks(masked, masks)
  small = plan.apply(model)
  x = tf.random.stateless_normal((3,) + model.input_shape[1:], seed=(3, 4))
  np.testing.assert_allclose(small(x, training=False), masked(x, training=False),
                             rtol=1e-5, atol=1e-5)
  assert not np.allclose(model(x, training=False), masked(x, training=False), atol=1e-4)
  assert flops.count(small).flops < flops.count(model).flops
  for name in selections:   # the selection keeps exactly the masked channels of its BN
    bn = model.get_layer(name)._inbound_nodes[0].inbound_layers
    assert small.get_layer(name).indices == list(np.flatnonzero(masks[bn.name]))
  fresh = plan.apply(model, copy_weights=False)   # Scratch-E/B: same architecture
  assert flops.count(fresh) == flops.count(small)


def test_preresnet_plan_keys_and_frozen_stream():
  model = helpers.randomize(_tiny_preresnet(), seed=5)
  plan = ns.plan_from_masks(model, ns.bn_masks(model, 0.6))
  for name in plan.keep:
    assert name.endswith(("_select", "_conv1", "_conv2")) or name == "select", name
  small = plan.apply(model)
  for layer in model.layers:   # the residual stream (conv3, projections) keeps its width
    if layer.name.endswith(("_conv3", "_downsample_conv")):
      assert small.get_layer(layer.name).filters == layer.filters


def test_channel_selection_config_and_savedmodel_round_trip(tmp_path):
  layer = ChannelSelection(indices=[2, 0], name="sel")
  clone = ChannelSelection.from_config(layer.get_config())
  assert clone.indices == [2, 0] and clone.name == "sel"
  inp = keras.Input((4, 4, 3))
  out = keras.layers.Conv2D(2, 1, name="c")(ChannelSelection(indices=[2, 0], name="sel")(inp))
  model = keras.Model(inp, out)
  path = os.path.join(tmp_path, "m")
  model.save(path, save_format="tf")
  loaded = keras.models.load_model(path)
  assert isinstance(loaded.get_layer("sel"), ChannelSelection)
  x = tf.random.stateless_normal((2, 4, 4, 3), seed=(5, 6))
  np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
  np.testing.assert_allclose(model.get_layer("sel")(x), tf.gather(x, [2, 0], axis=-1))


def test_monitor_writes_histograms_and_widths(tmp_path):
  model = helpers.randomize(_tiny_vgg(), seed=2)
  pruner = METHODS.get("network_slimming")(ratio=0.5)
  (monitor,) = pruner.callbacks(log_dir=str(tmp_path))
  monitor.set_model(model)
  monitor.on_epoch_end(0)
  monitor.on_train_end()
  tags = set()
  for f in os.listdir(tmp_path):
    for e in tf.compat.v1.train.summary_iterator(os.path.join(tmp_path, f)):
      tags.update(v.tag for v in e.summary.value)
  assert {"gamma/all", "gamma/conv1_bn", "width/conv1_bn", "alive/conv16_bn"} <= tags
