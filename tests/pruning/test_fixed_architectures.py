"""The paper's ThiNet / Regression target architectures (spec 2.2, 2.3) reproduce its FLOPs
(reference convention A at 224x224) and parameter counts within 1%."""
import functools

import pytest

from tf_rethink import flops
from tf_rethink.models import MODELS
from tf_rethink.pruning import METHODS

# (method, variant, model, spec FLOPs, spec params or None); spec 2.2 / 2.3 tables.
ROWS = [
    ("thinet", "70", "resnet50", 5.235e9, None),
    ("thinet", "50", "resnet50", 3.674e9, None),
    ("thinet", "30", "resnet50", 2.361e9, None),
    ("regression", "2x", "resnet50_select", 5.49e9, None),
    ("thinet", "gap", "vgg16_imagenet_gap", 9.35e9, 8.32e6),
    ("thinet", "tiny", "vgg16_imagenet_gap", 2.02e9, 1.32e6),
    pytest.param("thinet", "conv", "vgg16_imagenet", 9.60e9, None, marks=pytest.mark.slow),
    pytest.param("regression", "5x", "vgg16_imagenet", 7.04e9, None, marks=pytest.mark.slow),
]


@functools.lru_cache(maxsize=None)
def _pruned(method, variant, model_name):
  model = MODELS.get(model_name).build(input_shape=(224, 224, 3), num_classes=1000)
  plan = METHODS.get(method)(variant=variant).select(model, None, model_name=model_name)
  return model, plan, plan.apply(model, copy_weights=False)


@pytest.mark.parametrize("method,variant,model_name,spec_flops,spec_params", ROWS)
def test_fixed_architecture_matches_the_paper(method, variant, model_name, spec_flops,
                                              spec_params):
  _, _, pruned = _pruned(method, variant, model_name)
  counts = flops.count(pruned)
  assert abs(counts.flops / spec_flops - 1) < 0.01, counts
  if spec_params:
    assert abs(counts.params / spec_params - 1) < 0.01, counts


def test_thinet_50_widths_and_resnet_50_2x_selection():
  _, plan, pruned = _pruned("thinet", "50", "resnet50")
  assert pruned.get_layer("stage3_block4_conv1").filters == 128
  assert pruned.get_layer("stage4_block3_conv2").filters == 256
  assert pruned.get_layer("stage4_block3_conv3").filters == 2048   # block outputs untouched
  assert len(plan.keep) == 32
  _, plan, pruned = _pruned("regression", "2x", "resnet50_select")
  assert len(pruned.get_layer("stage4_block3_select").indices) == 1147
  assert pruned.get_layer("stage4_block3_conv1").filters == 512
  assert pruned.get_layer("stage4_block3_conv2").filters == 440
  assert len(plan.keep) == 40   # 8 conv1 entries of the cfg are full width (64, 128, 128, ...)
