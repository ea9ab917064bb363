"""FLOPs counter: the reference's convention-A integers (paper spec 2.1 and 6/D1), MACs, generic
layers."""
import logging

import numpy as np
import pytest

from tf_rethink import flops
from tf_rethink.util.errors import UsageError
from tf_rethink.models import MODELS
import tf_keras as keras

CIFAR = (32, 32, 3)
VGG16_A = [32, 64, "M", 128, 128, "M", 256, 256, 256, "M", 256, 256, 256, "M", 256, 256, 256]
R56_A = [14] * 7 + [16, 14] + [32] + [28] * 8 + [64] + [57] * 7 + [64]
R56_B = [6] * 7 + [16, 16] + [32] + [22] * 6 + [32, 22] + [64] + [57] * 7 + [64]
R110_A = [8] * 17 + [16] + [32] * 18 + [64] * 18
R110_B = [8] * 17 + [16] + [32] + [19] * 17 + [64] + [44] * 17
R34_A = [64, 44, 44, 128, 89, 89, 128, 256, 179, 179, 179, 179, 256, 512, 512, 512]
R34_B = [64, 32, 32, 128, 51, 51, 128, 256, 153, 153, 153, 153, 256, 512, 512, 512]

_COUNTS = {}


def counts(name, widths=None, shape=CIFAR, classes=10):
  key = (name, str(widths), shape, classes)
  if key not in _COUNTS:
    model = MODELS.get(name).build(widths, input_shape=shape, num_classes=classes)
    _COUNTS[key] = flops.count(model)
  return _COUNTS[key]


@pytest.mark.parametrize("name,widths,expected_flops,expected_params", [
    ("vgg16", None, 627_880_970, 14_987_722),
    ("vgg16", VGG16_A, 413_364_234, 5_397_034),
    ("resnet56", None, 252_572_938, 853_018),
    ("resnet110", None, 508_925_194, 1_727_962),
])
def test_exact_reference_integers(name, widths, expected_flops, expected_params):
  c = counts(name, widths)
  assert (c.flops, c.params) == (expected_flops, expected_params)


@pytest.mark.parametrize("name,widths,mflops,mparams", [
    ("resnet56", R56_A, 226.39, 0.773), ("resnet56", R56_B, 183.14, 0.736),
    ("resnet110", R110_A, 428.29, 1.689), ("resnet110", R110_B, 312.75, 1.168),
])
def test_l1_pruned_resnets_match_spec_table(name, widths, mflops, mparams):
  c = counts(name, widths)
  assert round(c.flops / 1e6, 2) == mflops
  assert round(c.params / 1e6, 3) == mparams


@pytest.mark.parametrize("name,widths,expected", [
    ("vgg16", None, 3.13e8), ("resnet56", None, 1.25e8), ("resnet110", None, 2.53e8),
    ("vgg16", VGG16_A, 2.06e8), ("resnet56", R56_A, 1.12e8), ("resnet56", R56_B, 9.09e7),
    ("resnet110", R110_A, 2.13e8), ("resnet110", R110_B, 1.55e8),
])
def test_macs_match_li_et_al(name, widths, expected):
  assert counts(name, widths).macs == pytest.approx(expected, rel=0.01)


def test_scratch_b_ratios_of_spec_table():
  full = counts("vgg16").flops
  assert int(160 * full / counts("vgg16", VGG16_A).flops) == 243
  for widths, epochs in ((R56_A, 178), (R56_B, 220)):
    assert int(160 * counts("resnet56").flops / counts("resnet56", widths).flops) == epochs
  for widths, epochs in ((R110_A, 190), (R110_B, 260)):
    assert int(160 * counts("resnet110").flops / counts("resnet110", widths).flops) == epochs


IMAGENET = (224, 224, 3)


def test_resnet34_imagenet():
  full = counts("resnet34", shape=IMAGENET, classes=1000)
  assert full.flops == pytest.approx(7.340e9, abs=0.5e6)
  assert full.params == pytest.approx(21.80e6, rel=0.005)
  assert full.params == 21_797_672  # torchvision resnet34
  a = counts("resnet34", R34_A, IMAGENET, 1000)
  b = counts("resnet34", R34_B, IMAGENET, 1000)
  # Spec 2.1 prints 6.213 G (double rounding of 6.2125 G); its ratio 1.1816 pins the value.
  assert a.flops == pytest.approx(6.2125e9, abs=0.5e6)
  assert b.flops == pytest.approx(5.576e9, abs=0.5e6)
  assert round(full.flops / a.flops, 4) == 1.1816 and round(full.flops / b.flops, 4) == 1.3164
  assert round(a.params / 1e6, 2) == 20.15 and round(b.params / 1e6, 2) == 19.47


def test_resnet50_and_resnet18_imagenet():
  r50 = counts("resnet50", shape=IMAGENET, classes=1000)
  assert r50.macs == pytest.approx(4.1e9, rel=0.01)
  assert r50.params == 25_557_032  # torchvision resnet50
  r18 = counts("resnet18", shape=IMAGENET, classes=1000)
  assert r18.params == 11_689_512 and r18.macs == pytest.approx(1.814e9, rel=0.001)


def test_vgg16_imagenet_small_input():
  # torchvision vgg16 has 138,357,544 params at 224 (fc1 25088 wide); at 64x64 fc1 sees 2x2x512.
  c = counts("vgg16_imagenet", shape=(64, 64, 3), classes=1000)
  conv_params = 138_357_544 - (25088 * 4096 + 4096)
  assert c.params == conv_params + 2048 * 4096 + 4096
  conv_macs = 15_346_630_656 * 64 * 64 // (224 * 224)  # torchvision conv MACs scale with H*W
  assert c.macs == conv_macs + 2048 * 4096 + 4096 * 4096 + 4096 * 1000


def test_vgg_gap_is_not_counted_but_resnet_gap_is():
  vgg = MODELS.get("vgg16").build(input_shape=CIFAR, num_classes=10)
  assert type(vgg.get_layer("avgpool")).__name__ == "InlineGlobalAveragePooling2D"
  res = MODELS.get("resnet20").build(input_shape=CIFAR, num_classes=10)
  plain = keras.Model(res.input, res.get_layer("avgpool").output)
  before = keras.Model(res.input, res.get_layer("stage3_block3_relu2").output)
  assert flops.count(plain).flops - flops.count(before).flops == 64 * 64  # AvgPool2d(8) on 8x8


def _hand_model():
  x = inp = keras.Input((8, 8, 4))
  a = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)  # 8x8x8
  b = keras.layers.SeparableConv2D(6, 3, strides=2, padding="same", name="sep")(x)  # 4x4x6
  b = keras.layers.UpSampling2D(2, name="up")(b)  # 12 per output element (reference Upsample)
  c = keras.layers.Concatenate(name="cat")([a, b])  # 8x8x14
  c = keras.layers.Conv2D(5, 1, activation="relu", groups=1, name="pw")(c)
  c = keras.layers.Activation("relu", name="act")(c)
  c = keras.layers.AveragePooling2D(2, name="avg")(c)  # 4x4x5
  c = keras.layers.GlobalMaxPooling2D(name="gmp")(c)
  c = keras.layers.BatchNormalization(name="bn1d")(c)
  out = keras.layers.Dense(3, use_bias=False, name="fc")(c)
  return keras.Model(inp, out)


def test_generic_layers_by_hand(caplog):
  model = _hand_model()
  dw = (2 * 9 + 1) * 8 * 64
  sep = 2 * 9 * 4 * 16 + (2 * 4 + 1) * 6 * 16
  pw = (2 * 14 + 1) * 5 * 64 + 5 * 64  # + fused relu
  act, avg, gmp, fc, up = 5 * 64, 4 * 80, 80, 2 * 5 * 3, 12 * 8 * 8 * 6
  with caplog.at_level(logging.WARNING):
    c = flops.count(model)
  assert c.flops == dw + sep + pw + act + avg + gmp + fc + up
  assert c.macs == 9 * 8 * 64 + (9 * 4 + 4 * 6) * 16 + 14 * 5 * 64 + 15
  bn_params = 2 * 5
  assert c.params == model.count_params() - bn_params
  assert "not counted" not in caplog.text


def test_params_exclude_bn_statistics_and_count_shared_relu_twice():
  inp = keras.Input((4, 4, 2))
  relu = keras.layers.ReLU(name="shared")
  x = relu(keras.layers.BatchNormalization(name="bn")(relu(inp)))
  model = keras.Model(inp, x)
  c = flops.count(model)
  assert c.params == 4 and c.flops == 32 + 64 + 32


def test_input_shape_and_nested_models():
  model = MODELS.get("resnet20").build(input_shape=(None, None, 3), num_classes=10)
  with pytest.raises(UsageError, match="input_shape"):
    flops.count(model)
  at32 = flops.count(model, CIFAR)
  ref = flops.count(MODELS.get("resnet20").build(input_shape=CIFAR, num_classes=10))
  assert at32 == ref
  inp = keras.Input(CIFAR)
  inner = MODELS.get("resnet20").build(input_shape=CIFAR, num_classes=10)
  outer = keras.Model(inp, keras.layers.Softmax()(inner(inp)))
  assert flops.count(outer) == ref


def test_counts_is_frozen_dataclass():
  c = flops.Counts(1, 2, 3)
  with pytest.raises(Exception):
    c.params = 5
  assert np.isscalar(c.flops)


@pytest.mark.parametrize("name", ["resnet20", "vgg11"])
def test_tfmot_pruning_wrappers_count_like_the_plain_model(name):
  tfmot = pytest.importorskip("tensorflow_model_optimization")
  model = MODELS.get(name).build(input_shape=CIFAR, num_classes=10, width_multiplier=0.5)
  wrapped = tfmot.sparsity.keras.prune_low_magnitude(model)
  assert flops.count(wrapped) == flops.count(model)
