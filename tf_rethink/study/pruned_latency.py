"""What removed channels can turn into latency: the rules of tools/bench_inference.py that need no
flags (so tests and other tools import them without the tool's absl flags).

* `floor_bound`: a graph's per-op cost (its latency at a tiny width, where the arithmetic is
  almost gone) is not removed by pruning channels; with that floor the best pruned batch-1
  latency is floor + (full - floor) / FLOPs ratio.
* `trained_width_multiplier`, `trained_slimming_gammas`: a trained slimming model's BN scales on
  the bench's model of the same widths, so Network Slimming's threshold selects what training
  selected.
"""
from tf_rethink.util.errors import UsageError


def _bn_widths(model):
  from tf_rethink.pruning.methods.network_slimming import slimming_bns
  return [int(bn.gamma.shape[0]) for bn in slimming_bns(model).values()]


def trained_width_multiplier(trained, model_name, shape, classes):
  """The width multiplier `trained` was built with: its first slimming BN's width over that of
  `model_name` at full width."""
  from tf_rethink.models import MODELS
  full = MODELS.get(model_name).build(input_shape=shape, num_classes=classes)
  return _bn_widths(trained)[0] / _bn_widths(full)[0]


def trained_slimming_gammas(model, trained, path):
  """Copies the BN scales of the slimming BNs of `trained` (loaded from `path`) into the
  slimming BNs of `model`, in graph order (same count and widths, or a UsageError)."""
  from tf_rethink.pruning.methods.network_slimming import slimming_bns
  src, dst = list(slimming_bns(trained).values()), list(slimming_bns(model).values())
  widths = [[int(bn.gamma.shape[0]) for bn in bns] for bns in (src, dst)]
  if widths[0] != widths[1]:
    raise UsageError(
        f"--slimming_scales={path}: its BatchNorm widths {widths[0]} are not those "
        f"of the bench's vgg19_slim {widths[1]}; pass an export of a vgg19_slim")
  for s, d in zip(src, dst):
    weights = d.get_weights()
    weights[0] = s.gamma.numpy().astype(weights[0].dtype)
    d.set_weights(weights)
  return model


def floor_bound(full_ms, floor_ms, flops_ratio):
  """What a FLOPs cut can give at batch 1 when `floor_ms` of the full model's `full_ms` is per-op
  cost that pruning channels does not remove (the same graph at a tiny width takes it): the best
  pruned latency is floor + (full - floor) / flops_ratio."""
  best = full_ms / (floor_ms + max(full_ms - floor_ms, 0.0) / flops_ratio)
  return {"floor_share_batch1": floor_ms / full_ms, "best_speedup_batch1": best,
          "best_speedup_over_flops_batch1": best / flops_ratio}
