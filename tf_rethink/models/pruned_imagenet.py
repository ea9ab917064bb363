"""ImageNet models that the ThiNet / Regression pruned architectures need beyond the zoo.

* `vgg16_imagenet_gap`: VGG-16 (no BN, conv bias) whose FC head is replaced by global average
  pooling and one Linear, with no fifth max-pool: the parent of ThiNet-GAP and ThiNet-Tiny
  (`imagenet/thinet/models/thinetvgg.py`: features without the last 'M', AvgPool(14, stride 2)
  over the 14x14 map, i.e. global pooling, then Linear(C -> 1000); spec 2.2). The pool is counted
  like the reference's `nn.AvgPool2d(14)` module (H*W per output element).
* `resnet50_select`: ResNet-50 whose bottlenecks read their input through a `ChannelGather`
  (`stage{s}_block{b}_select`, all channels by default): the parent of the Regression ResNet-50-2x
  (`imagenet/regression-pruning/models/resnet_2x.py`; spec 2.3). Widths as `resnet50`.
Both register in MODELS; width lists and layer names follow `vgg16_imagenet` / `resnet50`.
"""
import tf_rethink  # noqa: F401
import tf_keras as keras

from tf_rethink.models.registry import MODELS, ModelSpec
from tf_rethink.models import resnet_imagenet  # noqa: F401
from tf_rethink.models.vgg import _check_cfg, _dense_init, _features

VGG16_GAP_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                 512, 512, 512]


def imagenet_vgg16_gap(widths, *, input_shape, num_classes, width_multiplier=1.0,
                       name="vgg16_imagenet_gap"):
  """VGG-16 features (no BN, no last pool) + GAP `avgpool` + `logits` (ThiNet-GAP layout)."""
  del width_multiplier  # every width is in the list
  _check_cfg(widths, 13, name)
  inputs = keras.Input(shape=input_shape, name="input")
  x = _features(inputs, widths, batch_norm=False, use_bias=True)
  x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
  outputs = keras.layers.Dense(num_classes, name="logits", **_dense_init())(x)
  return keras.Model(inputs, outputs, name=name)


def _resnet50_select(widths, **kwargs):
  blocks = resnet_imagenet.CONFIGS["resnet50"][1]
  return resnet_imagenet.imagenet_resnet(widths, blocks=blocks, kind="bottleneck",
                                         input_selection=True, name="resnet50_select", **kwargs)


MODELS.add("vgg16_imagenet_gap", ModelSpec("vgg16_imagenet_gap", "imagenet",
                                           lambda: list(VGG16_GAP_CFG), imagenet_vgg16_gap))
MODELS.add("resnet50_select", ModelSpec(
    "resnet50_select", "imagenet", MODELS.get("resnet50").default_widths, _resnet50_select))
