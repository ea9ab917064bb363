"""tools/torch_models.py: the PyTorch twins compute the SAME function as the Keras models (weights
copied across, eval mode), so the training bench compares like with like. Needs the optional torch."""
import os
import sys

import numpy as np
import pytest

import tf_keras as keras

from tests.helpers import randomize
from tf_rethink.models import MODELS, scale_widths

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import torch_models  # noqa: E402  pylint: disable=wrong-import-position


def _copy_keras_to_torch(kmodel, tmodel):
  """Copies conv / BN / dense weights in layer order (both models list them in forward order)."""
  kinds = (keras.layers.Conv2D, keras.layers.BatchNormalization, keras.layers.Dense)
  klayers = [l for l in kmodel.layers if isinstance(l, kinds)]
  tlayers = [m for m in tmodel.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm1d, torch.nn.BatchNorm2d,
                               torch.nn.Linear))]
  assert len(klayers) == len(tlayers)
  with torch.no_grad():
    for k, t in zip(klayers, tlayers):
      w = k.get_weights()
      if isinstance(t, torch.nn.Conv2d):
        t.weight.copy_(torch.from_numpy(w[0].transpose(3, 2, 0, 1).copy()))
        assert t.bias is None and len(w) == 1
      elif isinstance(t, torch.nn.Linear):
        t.weight.copy_(torch.from_numpy(w[0].T.copy()))
        t.bias.copy_(torch.from_numpy(w[1]))
      else:
        for param, value in zip((t.weight, t.bias, t.running_mean, t.running_var), w):
          param.copy_(torch.from_numpy(value))


@pytest.mark.parametrize("name, m", [("vgg16", 0.125), ("resnet20", 0.5), ("resnet56", 0.25)])
def test_twin_computes_the_keras_function(name, m):
  spec = MODELS.get(name)
  widths = scale_widths(spec.default_widths(), m)
  kmodel = randomize(spec.build(widths, input_shape=(32, 32, 3), num_classes=10,
                                width_multiplier=m), scaled=True)
  tmodel = torch_models.build(name, widths, width_multiplier=m).eval()
  _copy_keras_to_torch(kmodel, tmodel)
  x = np.random.default_rng(1).normal(size=(3, 32, 32, 3)).astype(np.float32)
  expected = kmodel(x, training=False).numpy()
  with torch.no_grad():
    got = tmodel(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  assert np.abs(expected).max() > 1e-3  # a real signal, not all zeros
  np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
