"""Our own models (every entry of MODELS) pass the same whole-model pruning check."""
import numpy as np
import pytest

import tf_rethink
import tf_keras as keras

from tests import helpers
from tests.pruning import prune_checks
from tf_rethink.models import MODELS

SLOW = {"preresnet164", "preresnet110", "resnet110", "resnet50", "resnet50_select", "resnet34",
        "densenet40", "densenet_bc100", "vgg19_slim", "vgg16_imagenet", "vgg16_imagenet_gap"}


GATED = {"densenet40"}


def _build(name):
  spec = MODELS.get(name)
  if spec.family == "imagenet":
    return spec.build(input_shape=(64, 64, 3), num_classes=7, width_multiplier=0.125)
  return spec.build(input_shape=(16, 16, 3), num_classes=10, width_multiplier=0.25)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in MODELS.names()])
def test_registered_model_pruned_30_percent_matches_mask_and_shrinks(name):
  model = helpers.randomize(_build(name), scaled=True)
  if name in GATED:
    # Every conv output passes a ChannelSelection (Network Slimming's gather, which must keep the
    # channels it selects): the engine reports that instead of guessing.
    report = tf_rethink.channel_groups(model)
    assert not report.prunable(lambda g: any(isinstance(model.get_layer(m), keras.layers.Conv2D)
                                             for m in g.members))
    assert any("ChannelSelection) needs all its input channels" in r
               for g in report.groups for r in g.blocked_by)
    return
  x = np.random.default_rng(2).normal(size=(2,) + model.input_shape[1:]).astype(np.float32)
  prune_checks.check_pruned_model(model, x)
