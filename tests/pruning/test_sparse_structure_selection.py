"""Sparse Structure Selection: block scales, proximal step, exact block removal, fixed ResNets."""
import os

import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tests import helpers
from tf_rethink import flops
from tf_rethink.models import MODELS
from tf_rethink.pruning import METHODS
from tf_rethink.pruning.methods import sparse_structure_selection as sss


def _resnet20():
  return MODELS.get("resnet20").build(input_shape=(8, 8, 3), num_classes=3, width_multiplier=0.5)


def test_prepare_adds_one_scale_per_block_and_keeps_the_function():
  model = helpers.randomize(_resnet20(), seed=0)
  prepared = METHODS.get("sparse_structure_selection")().prepare(model)
  scales = sss.block_scales(prepared)
  assert sorted(scales) == sorted(f"stage{s}_block{b}" for s in (1, 2, 3) for b in (1, 2, 3))
  x = tf.random.stateless_normal((2, 8, 8, 3), seed=(0, 1))
  np.testing.assert_allclose(prepared(x, training=False), model(x, training=False), rtol=1e-5)


def test_proximal_step_soft_thresholds_by_lr_times_strength():
  prepared = METHODS.get("sparse_structure_selection")().prepare(_resnet20())
  prepared.compile(keras.optimizers.SGD(0.1), "mse")
  values = [0.05, 0.3, -0.3, 0.0, 1.0, -0.1, 0.2, 0.5, 0.1]
  layers = list(sss.block_scales(prepared).values())
  for layer, v in zip(layers, values):
    layer.scale.assign(v)
  (callback,) = METHODS.get("sparse_structure_selection")(sss_strength=1.0).callbacks()
  callback.set_model(prepared)
  callback.on_train_batch_end(0)
  got = [float(l.scale.numpy()) for l in layers]
  want = [np.sign(v) * max(abs(v) - 0.1, 0.0) for v in values]
  np.testing.assert_allclose(got, want, atol=1e-7)
  assert got[0] == 0.0 and got[3] == 0.0 and got[5] == 0.0   # exactly zero, not tiny


def test_training_drives_scales_to_zero_and_removal_keeps_the_output():
  pruner = METHODS.get("sparse_structure_selection")(sss_strength=1.0)
  model = pruner.prepare(_resnet20())
  for s in (1, 2, 3):   # small scales go to 0 within a few proximal steps of 0.1 each
    model.get_layer(f"stage{s}_block2_scale").scale.assign(0.05)
  model.compile(keras.optimizers.SGD(0.1),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  x = tf.random.stateless_normal((16, 8, 8, 3), seed=(2, 3))
  y = tf.constant(list(range(3)) * 5 + [0])
  model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=pruner.callbacks())
  plan = pruner.select(model, model_name="resnet20")
  assert plan.dropped_blocks == ("stage1_block2", "stage2_block2", "stage3_block2")
  for block in plan.dropped_blocks:
    assert float(model.get_layer(f"{block}_scale").scale.numpy()) == 0.0
  small = plan.apply(model)
  assert not any(l.name.startswith(plan.dropped_blocks) for l in small.layers
                 if not l.name.endswith(("_shortcut",)) and "_relu2" not in l.name)
  np.testing.assert_allclose(small(x, training=False), model(x, training=False), atol=1e-5)
  assert flops.count(small).flops < flops.count(model).flops
  fresh = plan.build_fresh(_resnet20)   # Scratch: plain blocks, no scales
  assert not sss.block_scales(fresh)
  assert flops.count(fresh).flops == flops.count(small).flops


def test_dropping_a_zero_scale_downsampling_block_keeps_its_shortcut():
  model = helpers.randomize(METHODS.get("sparse_structure_selection")().prepare(_resnet20()), 4)
  model.get_layer("stage2_block1_scale").scale.assign(0.0)
  plan = METHODS.get("sparse_structure_selection")().select(model)
  assert plan.dropped_blocks == ("stage2_block1",)
  small = plan.apply(model)
  assert "stage2_block1_shortcut" in [l.name for l in small.layers]
  assert "stage2_block1_conv1" not in [l.name for l in small.layers]
  x = tf.random.stateless_normal((2, 8, 8, 3), seed=(4, 5))
  np.testing.assert_allclose(small(x, training=False), model(x, training=False), rtol=1e-5,
                             atol=1e-5)


def test_block_scale_config_and_savedmodel_round_trip(tmp_path):
  layer = sss.BlockScale(0.25, name="s")
  assert sss.BlockScale.from_config(layer.get_config()).initial_value == 0.25
  inp = keras.Input((4,))
  model = keras.Model(inp, sss.BlockScale(0.25, name="s")(inp))
  model.get_layer("s").scale.assign(-1.5)
  path = os.path.join(tmp_path, "m")
  model.save(path, save_format="tf")
  loaded = keras.models.load_model(path)
  assert isinstance(loaded.get_layer("s"), sss.BlockScale)
  np.testing.assert_allclose(loaded(tf.ones((1, 4))), [[-1.5] * 4])


@pytest.fixture(scope="module")
def resnet50_small():
  return MODELS.get("resnet50").build(input_shape=(32, 32, 3), num_classes=10,
                                      width_multiplier=0.125)


@pytest.mark.parametrize("variant, blocks", [("resnet41", 13), ("resnet32", 10), ("resnet26", 8)])
def test_fixed_resnet50_architectures(resnet50_small, variant, blocks):
  full = resnet50_small
  pruner = METHODS.get("sparse_structure_selection")(variant=variant)
  plan = pruner.select(full, model_name="resnet50")
  assert len(plan.dropped_blocks) == 16 - blocks
  small = plan.build_fresh(lambda: full)
  convs = [l for l in small.layers if isinstance(l, keras.layers.Conv2D)
           and not l.name.endswith("downsample_conv")]
  assert len(convs) + 1 == int(variant[len("resnet"):])   # depth = branch convs + stem + fc - 1
  # every stage still has its projection shortcut (b = False keeps it, spec 2.5)
  assert sum(l.name.endswith("downsample_conv") for l in small.layers) == 4
