"""Model zoo: functional tf_keras builders parametrized by width lists, and the MODELS registry.

Width-list formats (`ModelSpec.default_widths()`, the reference `cfg`):
  * CIFAR VGG (`vgg11/13/16/19`) and `vgg16_imagenet`: conv output widths in order, with 'M' for
    each 2x2/2 max-pool, e.g. VGG-16 `[64, 64, 'M', 128, ..., 512]`.
  * CIFAR ResNet (`resnet20/32/56/110`): one int per residual block (3n entries), the output width
    of the block's FIRST conv (`stage{s}_block{b}_conv1`); the second conv keeps the stage width.
  * `resnet18`, `resnet34`: one int per basic block (8 or 16), the width of `..._conv1`.
  * `resnet50`: two ints per bottleneck block (32 entries, flat), the widths of `..._conv1` and
    `..._conv2` of block 1, then block 2, ...; `..._conv3` keeps 4 x the stage width. A list of
    16 pairs is accepted too.
  * `densenet_bc100`: one int per dense layer (48), the width of its 1x1 bottleneck conv
    (`stage{s}_layer{j}_conv1`, default 4 x growth = 48); see `densenet_bc` for the growth rate.

`width_multiplier` m scales every DEFAULT width to max(1, int(round(w * m))) and also the widths
that are not in the list (stem and stage widths of ResNets, fc widths of VGGs); an explicit
`widths` list is used as given (so a pruned small model is `build(pruned, width_multiplier=m)`).
"""
from tf_rethink.models.registry import MODELS, ModelSpec
from tf_rethink.util.widths import scale_width, scale_widths  # noqa: F401  (re-exported)

# Importing a builder module registers its models.
from tf_rethink.models import resnet_cifar, resnet_imagenet, vgg  # noqa: E402,F401
from tf_rethink.models import pruned_imagenet, slimming, densenet_bc  # noqa: E402,F401

__all__ = ["MODELS", "ModelSpec", "scale_width", "scale_widths"]
