"""densenet_bc100: the true DenseNet-BC-100 (k = 12) of spec 4.5: exact params and FLOPs from
the layer list, shapes, width scaling, init, and weight-level magnitude pruning through the
package's Pruner."""
import numpy as np
import pytest

import tf_keras as keras

from tf_rethink import flops
from tf_rethink.util.errors import UsageError
from tf_rethink.models import MODELS
from tf_rethink.pruning import METHODS
from tf_rethink.pruning.methods.magnitude import sparsity_report

CIFAR = (32, 32, 3)

# Hand count for 10 classes, from the layer list (k = 12, 16 bottleneck layers per block; c = a
# dense layer's input width, HW = the block's map size; BN has gamma + beta; no conv bias).
#   stem conv3x3 3 -> 24:                   params 27*24 = 648
#   dense layer on c channels:              BN1 2c + conv1x1 48c + BN2 2*48 + conv3x3 9*48*12
#                                           = 50c + 5280 params
#   block 1, c = 24 + 12j (j = 0..15):      sum c = 16*24 + 12*120 = 1824, out 24 + 192 = 216
#                                           50*1824 + 16*5280 = 175,680
#   trans1 BN(216) + conv1x1 216 -> 108:    432 + 23,328 = 23,760
#   block 2, c = 108 + 12j:                 sum c = 1728 + 1440 = 3168, out 300
#                                           50*3168 + 84,480 = 242,880
#   trans2 BN(300) + conv1x1 300 -> 150:    600 + 45,000 = 45,600
#   block 3, c = 150 + 12j:                 sum c = 2400 + 1440 = 3840, out 342
#                                           50*3840 + 84,480 = 276,480
#   final BN(342):                          684
#   Linear 342 -> 10 with bias:             3,430
#   total: 648 + 175,680 + 23,760 + 242,880 + 45,600 + 276,480 + 684 + 3,430 = 769,162
PARAMS_C10 = 769_162

# FLOPs, convention A (spec 5: conv 2 k^2 C_in C_out HW, BN2d 2 and ReLU 1 per input element,
# nn.AvgPool2d(8) module 64 per output, Linear 2 in out + out; the transitions' F.avg_pool2d,
# concatenations: 0):
#   stem at 32x32:                          2*27*24*1024 = 1,327,104
#   dense layer on c channels, per pixel:   BN1 2c + ReLU c + conv1 2*48c + BN2 2*48 + ReLU 48
#                                           + conv2 2*9*48*12 = 99c + 10,512
#   block 1 (HW 1024):                      (99*1824 + 16*10,512)*1024 = 348,768*1024
#                                           = 357,138,432
#   trans1 (HW 1024):                       (3*216 + 2*216*108)*1024 = 47,304*1024 = 48,439,296
#   block 2 (HW 256):                       (99*3168 + 168,192)*256 = 481,824*256 = 123,346,944
#   trans2 (HW 256):                        (3*300 + 2*300*150)*256 = 90,900*256 = 23,270,400
#   block 3 (HW 64):                        (99*3840 + 168,192)*64 = 548,352*64 = 35,094,528
#   final BN + ReLU (HW 64):                3*342*64 = 65,664
#   avgpool:                                64*342 = 21,888
#   Linear:                                 2*342*10 + 10 = 6,850
#   total: 588,711,106
FLOPS_C10 = 588_711_106
# MACs (convs and Linear only): stem 663,552; blocks (48 sum c + 16*5184) HW: 174,587,904 +
# 60,162,048 + 17,104,896; transitions 216*108*1024 + 300*150*256 = 23,887,872 + 11,520,000;
# Linear 3,420. Total 287,929,692 (about 0.29 G, the usual figure for DenseNet-BC-100).
MACS_C10 = 287_929_692


@pytest.fixture(scope="module")
def full():
  return MODELS.get("densenet_bc100").build(input_shape=CIFAR, num_classes=10)


def test_params_flops_and_macs_equal_the_hand_count(full):
  counts = flops.count(full)
  assert counts.params == PARAMS_C10
  assert counts.flops == FLOPS_C10
  assert counts.macs == MACS_C10


def test_layout_is_the_true_bc100(full):
  convs = [l for l in full.layers if isinstance(l, keras.layers.Conv2D)]
  dense = [l for l in full.layers if isinstance(l, keras.layers.Dense)]
  assert len(convs) + len(dense) == 100  # stem + 48 x 2 + 2 transitions + Linear
  assert all(not c.use_bias for c in convs)
  assert [full.get_layer(f"stage{s}_layer16_concat").output.shape[1:] for s in (1, 2, 3)] == [
      (32, 32, 216), (16, 16, 300), (8, 8, 342)]
  assert full.get_layer("trans1_pool").output.shape[1:] == (16, 16, 108)
  assert full.get_layer("trans2_pool").output.shape[1:] == (8, 8, 150)
  assert full.get_layer("stage2_layer7_conv1").filters == 48
  assert full.get_layer("stage2_layer7_conv2").kernel.shape == (3, 3, 48, 12)
  # Weight-level init (spec 3.3): He fan-out convs, BN gamma 1 (not slimming's 0.5).
  conv = full.get_layer("stage1_layer3_conv2").kernel.numpy()
  assert float(np.std(conv)) == pytest.approx(np.sqrt(2 / (9 * 12)), rel=0.05)
  assert np.all(full.get_layer("stage3_layer16_bn2").gamma.numpy() == 1.0)
  logits = full.get_layer("logits")
  assert np.abs(logits.bias.numpy()).max() <= 1 / np.sqrt(342)


def test_cifar100_head():
  model = MODELS.get("densenet_bc100").build(input_shape=CIFAR, num_classes=100)
  assert flops.count(model).params == PARAMS_C10 - 3_430 + 342 * 100 + 100  # 800,032


def test_forward_pass_and_width_multiplier():
  spec = MODELS.get("densenet_bc100")
  model = spec.build(input_shape=CIFAR, num_classes=10, width_multiplier=0.25)
  x = np.random.default_rng(0).normal(size=(2,) + CIFAR).astype(np.float32)
  logits = model(x, training=False).numpy()
  assert logits.shape == (2, 10) and np.all(np.isfinite(logits))
  # m = 0.25: k = 3, stem 2k = 6, bottlenecks round(48 m) = 12 = 4k, stream 6 + 48 = 54 -> 27.
  assert model.get_layer("conv1").filters == 6
  assert model.get_layer("stage1_layer1_conv2").filters == 3
  assert model.get_layer("stage3_layer16_conv1").filters == 12
  assert model.get_layer("trans1_conv").filters == 27
  tiny = spec.build(input_shape=CIFAR, num_classes=10, width_multiplier=0.01)
  assert tiny.get_layer("conv1").filters == 2  # growth and widths never drop below 1
  assert tiny.get_layer("stage1_layer1_conv2").filters == 1
  assert tiny.get_layer("stage1_layer1_conv1").filters == 1
  pruned = spec.build([5] * 48, input_shape=CIFAR, num_classes=10, width_multiplier=0.25)
  assert pruned.get_layer("stage2_layer4_conv1").filters == 5
  with pytest.raises(UsageError, match="48 positive ints"):
    spec.build([48] * 47, input_shape=CIFAR, num_classes=10)


def test_magnitude_pruning_30_percent_zeroes_conv_weights_and_runs():
  model = MODELS.get("densenet_bc100").build(input_shape=(16, 16, 3), num_classes=10,
                                             width_multiplier=0.25)
  pruner = METHODS.get("magnitude")(ratio=0.3)
  plan = pruner.select(model, model_name="densenet_bc100")
  assert len(plan.masks) == 99  # every conv: stem, 96 in the blocks, 2 transitions
  masked = plan.apply(model)
  report = sparsity_report(masked)
  assert report["global"] == pytest.approx(0.3, abs=1e-3)
  x = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype(np.float32)
  logits = masked(x, training=False).numpy()
  assert logits.shape == (2, 10) and np.all(np.isfinite(logits))
  dense, sparse = flops.count(model), flops.count(masked, sparse=True)
  assert sparse.flops < dense.flops and sparse.params < dense.params
  assert dense.params - sparse.params == sum(int((~m).sum()) for m in plan.masks.values())
