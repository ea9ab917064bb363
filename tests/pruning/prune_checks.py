"""Assertions shared by the whole-model pruning tests (keras.applications, the model registry,
hand-written graphs), for tf_keras and Keras 3 models alike."""
import math

import numpy as np

import tf_rethink
from tf_rethink import flops
from tf_rethink.pruning import channels, graph as graph_lib, masking
from tf_rethink.pruning.rules import channels as width_of


def expected_counts(model, plan):
  """(params, macs) of the pruned model, from the original layers' configs and the kept channel
  counts alone (formulas written here, independent of surgery's slicing)."""
  graph = graph_lib.view(model)
  prop = channels.propagate(graph, plan.keep)
  params = macs = 0
  seen = set()
  for call in graph.calls:
    cc = prop.calls[call.site]
    layer = call.layer
    names = {cls.__name__ for cls in type(layer).__mro__}
    c_in = len(cc.ins[0]) if cc.ins else 0
    c_out = len(cc.cut.out)
    spatial = math.prod(int(d) for d in graph.shape(call.outputs[0])[1:-1])
    first = call.key not in seen
    seen.add(call.key)
    bias = getattr(layer, "use_bias", False)
    if "SeparableConv2D" in names:
      k, mid = math.prod(layer.kernel_size), c_in * layer.depth_multiplier
      params += first * (k * mid + mid * c_out + (c_out if bias else 0))
      macs += (k * mid + mid * c_out) * spatial
    elif "DepthwiseConv2D" in names:
      k = math.prod(layer.kernel_size)
      params += first * (k * c_out + (c_out if bias else 0))
      macs += k * c_out * spatial
    elif names & {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}:
      k = math.prod(layer.kernel_size)
      in_spatial = math.prod(int(d) for d in graph.shape(call.inputs[0])[1:-1])
      params += first * (k * c_in * c_out + (c_out if bias else 0))
      macs += k * c_in * c_out * in_spatial
    elif names & {"Conv1D", "Conv2D", "Conv3D"}:
      # Grouped convs keep their inputs per group (whole groups go, or outputs within groups).
      g = int(layer.get_config().get("groups", 1) or 1)
      per_group = width_of(graph.shape(call.inputs[0])) // g if g > 1 else c_in
      k = math.prod(layer.kernel_size) * per_group
      params += first * (k * c_out + (c_out if bias else 0))
      macs += k * c_out * spatial
    elif "Dense" in names:
      positions = math.prod(int(d) for d in graph.shape(call.inputs[0])[1:-1])
      params += first * (c_in * c_out + (c_out if bias else 0))
      macs += c_in * c_out * max(positions, 1)
    elif "BatchNormalization" in names:
      params += first * (int(layer.scale) + int(layer.center)) * c_out
    elif first:
      for w in (layer.get_weights() if hasattr(layer, "get_weights") else []):
        n = width_of(graph.shape(call.inputs[0])) if call.inputs else 0
        params += (w.size // n * c_in) if (w.ndim and w.shape[-1] == n and n > 1) else w.size
  return params, macs


def check_pruned_model(model, x, *, ratio=0.3, atol=1e-5, method="l1_norm", data=None):
  """Prunes `model` with the public API and asserts: members of a group keep the same indices,
  each pruned layer keeps int(n * (1 - ratio)) (units/blocks aside), the masked original
  computes what the shrunk model computes (with a reconstruction: what the plainly sliced one
  computes), params/MACs equal the plan's independent prediction and drop.

  Returns (small, plan, before, after, max abs diff).
  """
  small, plan = tf_rethink.prune(model, method=method, ratio=ratio, data=data)
  assert plan.keep, "nothing was pruned"
  report = tf_rethink.channel_groups(model)
  graph = graph_lib.view(model)
  for name, idx in plan.keep.items():
    group = report.group_of(name)
    n = width_of(graph.shape(graph.calls_of(name)[0].outputs[0]))
    if not group.units and not group.balance and method == "l1_norm":
      assert len(idx) == max(1, int(n * (1 - ratio))), name
    for member in group.members:
      assert plan.keep[member] == idx, (name, member)
  want = masking.masked_outputs(model, plan.keep, x)[0]
  sliced = small if not plan.reconstruction else plan.replace(reconstruction={}).apply(model)
  got = np.asarray(sliced(x, training=False))
  full = np.asarray(model(x, training=False))
  scale = np.abs(want).max()
  diff = float(np.abs(got - want).max())
  assert np.isfinite(scale) and scale > 0
  assert diff <= atol * max(1.0, scale), diff
  assert np.abs(full - want).max() > 100 * max(diff, atol * scale)   # the mask did something
  before, after = flops.count(model), flops.count(small)
  params, macs = expected_counts(model, plan)
  assert (after.params, after.macs) == (params, macs)
  assert after.params < before.params and after.flops < before.flops and after.macs < before.macs
  return small, plan, before, after, diff
