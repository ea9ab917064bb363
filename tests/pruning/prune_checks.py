"""Assertions shared by the whole-model pruning tests (keras.applications, the model registry)."""
import math

import numpy as np

import tf_rethink
import tf_keras as keras

from tests import helpers
from tf_rethink import flops
from tf_rethink.pruning import groups, surgery

L = keras.layers


def expected_counts(model, plan):
  """(params, macs) of the pruned model, from the original layers' configs and the kept channel
  counts alone (formulas written here, independent of surgery's slicing)."""
  channels = groups.propagate(model, plan.keep, surgery.RULES)
  params = macs = 0
  for name, lc in channels.items():
    layer, c_in = lc.layer, len(lc.ins[0])
    c_out = len(lc.cut.out)
    spatial = math.prod(int(d) for d in lc.out_shape[1:-1])
    if isinstance(layer, L.SeparableConv2D):
      k, mid = math.prod(layer.kernel_size), c_in * layer.depth_multiplier
      params += k * mid + mid * c_out + (c_out if layer.use_bias else 0)
      macs += (k * mid + mid * c_out) * spatial
    elif isinstance(layer, L.DepthwiseConv2D):
      k = math.prod(layer.kernel_size)
      params += k * c_out + (c_out if layer.use_bias else 0)
      macs += k * c_out * spatial
    elif isinstance(layer, L.Conv2D):
      k = math.prod(layer.kernel_size) * c_in // layer.groups
      params += k * c_out + (c_out if layer.use_bias else 0)
      macs += k * c_out * spatial
    elif isinstance(layer, L.Dense):
      params += c_in * c_out + (c_out if layer.use_bias else 0)
      macs += c_in * c_out * max(spatial, 1)
    elif isinstance(layer, L.BatchNormalization):
      params += (int(layer.scale) + int(layer.center)) * c_out
    elif isinstance(layer, L.PReLU):
      params += layer.get_weights()[0].size // int(lc.in_shapes[0][-1]) * c_in
    else:
      params += sum(w.size for w in layer.get_weights())
  return params, macs


def check_pruned_model(model, x, *, ratio=0.3, atol=1e-5, export_dir=None):
  """Prunes `model` with the public API and asserts: members of a group keep the same indices,
  each pruned layer keeps int(n * (1 - ratio)), the masked original computes what the shrunk model
  computes, params/MACs equal the plan's independent prediction and drop, the SavedModel reloads.

  Returns (small, plan, before, after, max abs diff).
  """
  small, plan = tf_rethink.prune(model, method="l1_norm", ratio=ratio)
  assert plan.keep, "nothing was pruned"
  report = tf_rethink.channel_groups(model)
  for name, idx in plan.keep.items():
    n = int(model.get_layer(name).output_shape[-1])
    assert len(idx) == max(1, int(n * (1 - ratio))), name
    for member in report.group_of(name).members:
      assert plan.keep[member] == idx, (name, member)
  masked = helpers.copy_model(model)
  surgery.mask(masked, plan)
  want = masked(x, training=False).numpy()
  got = small(x, training=False).numpy()
  full = model(x, training=False).numpy()
  scale = np.abs(want).max()
  diff = float(np.abs(got - want).max())
  assert np.isfinite(scale) and scale > 0
  assert diff <= atol * max(1.0, scale), diff
  assert np.abs(full - want).max() > 100 * max(diff, atol * scale)   # the mask did something
  assert [l.name for l in small.layers] == [l.name for l in model.layers]
  before, after = flops.count(model), flops.count(small)
  params, macs = expected_counts(model, plan)
  assert (after.params, after.macs) == (params, macs)
  assert after.params < before.params and after.flops < before.flops and after.macs < before.macs
  if export_dir is not None:
    from tf_rethink import export  # pylint: disable=import-outside-toplevel
    info = export.export_and_verify(small, str(export_dir), x[:1])
    assert info["bytes"] > 0
  return small, plan, before, after, diff
