"""Model zoo: every registered model builds small, has the contract's layer names, BN settings,
initializers, serializes and clones."""
import re

import numpy as np
import pytest

from tf_rethink.util.errors import UsageError
from tf_rethink.models import MODELS, ModelSpec, scale_widths
import tf_keras as keras

SMALL = 0.25


def _small(name, num_classes=10):
  spec = MODELS.get(name)
  shape = (28, 28, 1) if spec.family == "cifar" else (64, 64, 3)
  return spec.build(input_shape=shape, num_classes=num_classes, width_multiplier=SMALL), shape


_CACHE = {}


def small(name):
  if name not in _CACHE:
    _CACHE[name] = _small(name)
  return _CACHE[name]


def test_registry_names():
  assert MODELS.names() == sorted(["vgg11", "vgg13", "vgg16", "vgg19", "resnet20", "resnet32",
                                   "resnet56", "resnet110", "vgg16_imagenet", "resnet18",
                                   "resnet34", "resnet50", "vgg16_imagenet_gap", "resnet50_select",
                                   "vgg19_slim", "preresnet110", "preresnet164", "densenet40",
                                   "densenet_bc100"])
  assert all(isinstance(MODELS.get(n), ModelSpec) for n in MODELS.names())
  with pytest.raises(KeyError, match="resnet56"):
    MODELS.get("resnet57")


# resnet110 is resnet20/32/56 deeper (same blocks): in the two graph-building tests below it runs
# with `-m slow` only (13 s of the default suite).
BUILT = [pytest.param(n, marks=pytest.mark.slow) if n == "resnet110" else n for n in MODELS.names()]


@pytest.mark.parametrize("name", BUILT)
def test_small_model_gives_logits(name):
  model, shape = small(name)
  x = np.random.default_rng(0).normal(size=(3,) + shape).astype(np.float32)
  logits = model(x, training=False).numpy()
  assert logits.shape == (3, 10)
  assert np.all(np.isfinite(logits))
  assert model.name == name


@pytest.mark.parametrize("name", MODELS.names())
def test_batchnorm_momentum_and_epsilon(name):
  model, _ = small(name)
  bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
  assert (len(bns) > 0) == (name not in ("vgg16_imagenet", "vgg16_imagenet_gap"))
  assert {(l.momentum, l.epsilon) for l in bns} <= {(0.9, 1e-5)}


@pytest.mark.parametrize("name", BUILT)
def test_config_round_trip_and_clone(name):
  model, shape = small(name)
  x = np.random.default_rng(1).normal(size=(2,) + shape).astype(np.float32)
  expected = model(x, training=False).numpy()
  for rebuilt in (keras.Model.from_config(model.get_config()), keras.models.clone_model(model)):
    assert [l.name for l in rebuilt.layers] == [l.name for l in model.layers]
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS.names())
def test_widths_list_sets_the_prunable_convs(name):
  spec = MODELS.get(name)
  model, _ = small(name)
  widths = [w for w in scale_widths(spec.default_widths(), SMALL) if w != "M"]
  selections = [l.output_shape[-1] for l in model.layers if type(l).__name__ == "ChannelSelection"]
  if name.startswith("preresnet"):
    # 3 entries per block (selection, conv1, conv2) + the final selection.
    convs = [l.filters for l in model.layers if re.fullmatch(r"stage\d_block\d+_conv[12]", l.name)]
    assert convs == [w for i, w in enumerate(widths[:-1]) if i % 3]
    assert selections == widths[:-1:3] + widths[-1:]
    pattern = None
  elif name == "densenet_bc100":
    pattern = r"stage\d_layer\d+_conv1"  # the 1x1 bottleneck convs
  elif name.startswith("densenet"):
    assert selections == widths  # one selection width per BN
    pattern = None
  elif name.startswith("vgg"):
    pattern = r"conv\d+"
  elif name in ("resnet50", "resnet50_select"):
    pattern = r"stage\d_block\d+_conv[12]"
  else:
    pattern = r"stage\d_block\d+_conv1"
  if pattern:
    got = [l.filters for l in model.layers if re.fullmatch(pattern, l.name)]
    assert got == widths
  stem = {"cifar": 4, "imagenet": 16}[spec.family]  # 16 or 64 times 0.25
  if name.startswith("densenet"):
    assert model.get_layer("conv1").filters == 2 * 3  # twice the growth rate, 12 * 0.25
  elif not name.startswith("vgg"):
    assert model.get_layer("conv1").filters == stem
  with pytest.raises(UsageError, match="widths"):
    spec.build([8, 8], input_shape=(32, 32, 3), num_classes=10)


def _names(model):
  return {l.name for l in model.layers}


def test_vgg_layer_names():
  model, _ = small("vgg16")
  names = _names(model)
  for i in range(1, 14):
    assert {f"conv{i}", f"conv{i}_bn", f"conv{i}_relu"} <= names
  assert {"pool1", "pool2", "pool3", "pool4", "avgpool", "fc1", "fc1_bn", "fc1_relu",
          "logits"} <= names
  assert "conv14" not in names and "pool5" not in names
  assert isinstance(model.get_layer("avgpool"), keras.layers.GlobalAveragePooling2D)
  assert not model.get_layer("conv1").use_bias and model.get_layer("fc1").use_bias
  assert model.get_layer("conv1").filters == 16 and model.get_layer("fc1").units == 128


def test_cifar_resnet_layer_names_and_shortcuts():
  model, _ = small("resnet56")
  names = _names(model)
  assert {"conv1", "bn1", "relu1", "avgpool", "logits"} <= names
  for s in (1, 2, 3):
    for b in range(1, 10):
      p = f"stage{s}_block{b}"
      assert {f"{p}_{k}" for k in ("conv1", "bn1", "relu1", "conv2", "bn2", "add",
                                   "relu2")} <= names
  shortcuts = sorted(n for n in names if n.endswith("_shortcut"))
  assert shortcuts == ["stage2_block1_shortcut", "stage3_block1_shortcut"]
  assert model.get_layer("stage3_block1_shortcut").output.shape[1:] == (7, 7, 16)
  detached = MODELS.get("resnet20").build(input_shape=(32, 32, 3), num_classes=10,
                                          detach_downsample_shortcut=True)
  assert detached.get_layer("stage2_block1_shortcut").get_config()["detach"] is True
  assert model.get_layer("stage2_block1_shortcut").get_config()["detach"] is False


@pytest.mark.parametrize("name,blocks,convs", [("resnet18", (2, 2, 2, 2), 2),
                                               ("resnet34", (3, 4, 6, 3), 2),
                                               ("resnet50", (3, 4, 6, 3), 3)])
def test_imagenet_resnet_layer_names(name, blocks, convs):
  model, _ = small(name)
  names = _names(model)
  assert {"conv1", "bn1", "pool1", "avgpool", "logits"} <= names
  for s, n in enumerate(blocks, start=1):
    for b in range(1, n + 1):
      for k in range(1, convs + 1):
        assert {f"stage{s}_block{b}_conv{k}", f"stage{s}_block{b}_bn{k}"} <= names
  down = sorted(n for n in names if n.endswith("_downsample_conv"))
  first = 1 if name != "resnet50" else 0  # bottleneck stage 1 changes width 64 -> 256
  assert down == [f"stage{s}_block1_downsample_conv" for s in range(1 + first, 5)]


def test_imagenet_shapes_match_pytorch_padding():
  model = MODELS.get("resnet18").build(input_shape=(224, 224, 3), num_classes=1000,
                                       width_multiplier=0.125)
  assert model.get_layer("conv1").output.shape[1:3] == (112, 112)
  assert model.get_layer("pool1").output.shape[1:3] == (56, 56)
  assert model.get_layer("stage4_block2_relu2").output.shape[1:3] == (7, 7)
  vgg = MODELS.get("vgg16_imagenet").build(input_shape=(224, 224, 3), num_classes=10,
                                           width_multiplier=0.0625)
  assert vgg.get_layer("flatten").output.shape[-1] == 7 * 7 * 32


def test_resnet50_accepts_pairs():
  spec = MODELS.get("resnet50")
  pairs = [(8, 4)] * 16
  a = spec.build(pairs, input_shape=(64, 64, 3), num_classes=10, width_multiplier=SMALL)
  b = spec.build([8, 4] * 16, input_shape=(64, 64, 3), num_classes=10, width_multiplier=SMALL)
  assert a.count_params() == b.count_params()
  assert a.get_layer("stage2_block1_conv1").filters == 8
  assert a.get_layer("stage2_block1_conv2").filters == 4
  assert a.get_layer("stage2_block1_conv3").filters == 128


def _std(layer):
  return float(np.std(layer.kernel.numpy()))


def test_cifar_vgg_initialization():
  model = MODELS.get("vgg16").build(input_shape=(32, 32, 3), num_classes=10)
  conv = model.get_layer("conv10")  # 3x3x512x512: He fan-out, N(0, 2/(9*512))
  assert _std(conv) == pytest.approx(np.sqrt(2 / (9 * 512)), rel=0.02)
  assert np.all(model.get_layer("conv3_bn").gamma.numpy() == 0.5)
  assert np.all(model.get_layer("conv3_bn").beta.numpy() == 0.0)
  assert np.all(model.get_layer("fc1_bn").gamma.numpy() == 1.0)  # only BatchNorm2d gets 0.5
  fc1, logits = model.get_layer("fc1"), model.get_layer("logits")
  assert _std(fc1) == pytest.approx(0.01, rel=0.03)
  assert np.all(fc1.bias.numpy() == 0) and np.all(logits.bias.numpy() == 0)
  assert not np.allclose(fc1.kernel.numpy()[:10, :10], logits.kernel.numpy()[:10, :10])


def test_cifar_resnet_initialization():
  model = MODELS.get("resnet56").build(input_shape=(32, 32, 3), num_classes=10)
  assert _std(model.get_layer("stage3_block5_conv1")) == pytest.approx(np.sqrt(2 / (9 * 64)),
                                                                       rel=0.03)
  assert np.all(model.get_layer("stage1_block1_bn1").gamma.numpy() == 1.0)
  logits = model.get_layer("logits")
  bound = 1 / np.sqrt(64)
  for v in (logits.kernel.numpy(), logits.bias.numpy()):
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.5 * bound


def test_conv_names_are_unique_and_ordered():
  model, _ = small("vgg19")
  convs = [l.name for l in model.layers if re.fullmatch(r"conv\d+", l.name)]
  assert convs == [f"conv{i}" for i in range(1, 17)]
