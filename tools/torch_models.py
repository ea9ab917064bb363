"""PyTorch twins of the CIFAR models, for `tools/bench_train.py` only (torch is optional).

Written after the L1-norm reference (`cifar/l1-norm-pruning/models/vgg.py`, `resnet.py`), the code
the paper's authors train with: NCHW float32, 3x3 convs with padding 1 and no bias, BatchNorm
(momentum 0.1 = Keras 0.9, eps 1e-5), option-A shortcuts (AvgPool 2x2/2 then zero channels).
Widths come from the same lists as the Keras builders (`tf_rethink.models`), so both frameworks
train the same architecture; `bench_train.py` checks that the parameter counts agree.
"""
import torch
from torch import nn
import torch.nn.functional as F

from tf_rethink.util.widths import scale_width


def _bn(c):
  return nn.BatchNorm2d(c, momentum=0.1, eps=1e-5)


class CifarVGG(nn.Module):
  """VGG with BN: cfg ints are conv widths, 'M' max-pools; GAP, fc (fc_width) + BN1d + ReLU, fc."""

  def __init__(self, cfg, num_classes=10, in_channels=3, fc_width=512):
    super().__init__()
    layers, c = [], in_channels
    for v in cfg:
      if v == "M":
        layers.append(nn.MaxPool2d(2, 2))
      else:
        layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), _bn(v), nn.ReLU(inplace=True)]
        c = v
    self.features = nn.Sequential(*layers)
    self.classifier = nn.Sequential(nn.Linear(c, fc_width), nn.BatchNorm1d(fc_width),
                                    nn.ReLU(inplace=True), nn.Linear(fc_width, num_classes))

  def forward(self, x):
    x = self.features(x)
    x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    return self.classifier(x)


class _OptionA(nn.Module):
  def __init__(self, out_channels):
    super().__init__()
    self.out_channels = out_channels

  def forward(self, x):
    x = F.avg_pool2d(x, 2, 2)
    return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))


class _BasicBlock(nn.Module):
  def __init__(self, in_planes, mid, planes, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(in_planes, mid, 3, stride, 1, bias=False)
    self.bn1 = _bn(mid)
    self.conv2 = nn.Conv2d(mid, planes, 3, 1, 1, bias=False)
    self.bn2 = _bn(planes)
    self.shortcut = (_OptionA(planes) if stride != 1 or in_planes != planes else nn.Identity())

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return F.relu(y + self.shortcut(x))


class CifarResNet(nn.Module):
  """Option-A CIFAR ResNet: `widths` = first-conv width of each of the 3n blocks."""

  def __init__(self, widths, stage_widths=(16, 32, 64), num_classes=10, in_channels=3):
    super().__init__()
    n = len(widths) // 3
    self.conv1 = nn.Conv2d(in_channels, stage_widths[0], 3, 1, 1, bias=False)
    self.bn1 = _bn(stage_widths[0])
    blocks, in_planes = [], stage_widths[0]
    for s, planes in enumerate(stage_widths):
      for b in range(n):
        stride = 2 if s > 0 and b == 0 else 1
        blocks.append(_BasicBlock(in_planes, widths[s * n + b], planes, stride))
        in_planes = planes
    self.blocks = nn.Sequential(*blocks)
    self.fc = nn.Linear(in_planes, num_classes)

  def forward(self, x):
    x = F.relu(self.bn1(self.conv1(x)))
    x = self.blocks(x)
    return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(model_name, widths, *, width_multiplier=1.0, num_classes=10, in_channels=3):
  """The torch twin of registered Keras model `model_name` built from the same `widths` list."""
  if model_name.startswith("vgg") and model_name != "vgg16_imagenet":
    return CifarVGG(widths, num_classes, in_channels, fc_width=scale_width(512, width_multiplier))
  if model_name in ("resnet20", "resnet32", "resnet56", "resnet110"):
    stages = tuple(scale_width(w, width_multiplier) for w in (16, 32, 64))
    return CifarResNet(widths, stages, num_classes, in_channels)
  raise ValueError(f"no PyTorch twin for {model_name!r}; choose a CIFAR VGG or ResNet")


def num_params(module):
  return sum(p.numel() for p in module.parameters())
