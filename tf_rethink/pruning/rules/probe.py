"""A rule for a layer type the rule book does not know, established by running the layer.

Hand-written models have custom layers no rule was written for (a scaled activation, a
LayerScale, a custom gate). A single-input layer that keeps its channel count is accepted as a
channel-wise map when a numerical check proves it: for two random subsets S of its C channels,
the layer rebuilt at |S| channels (config integers equal to C replaced by |S|, weights whose last
axis has C entries sliced to S) computes on x[..., S] exactly what the original computes on x,
restricted to S. Anything else stays without a rule (its channels are left unpruned, and the
report names it). Results are cached per layer type, config and input shape. Probed layers cost
0 FLOPs and the counter names their type as not counted.
"""
import json
from typing import Dict, Optional

import numpy as np

from tf_rethink.pruning.rules.base import MAP, Ctx, Cut, Rule, channels, take

_CACHE: Dict[tuple, Optional["ProbedRule"]] = {}
_TRIALS = 2


class ProbedRule(Rule):
  """A channel-wise map found by `probed_rule` (see the module docstring)."""
  role = MAP
  counted = False

  def __init__(self, config_keys, n: int):
    self.config_keys = tuple(config_keys)   # top-level config ints equal to the channel count
    self.n = n

  def cut(self, c: Ctx) -> Cut:
    ins, n = c.ins[0], c.n_in
    return Cut(out=ins, config={k: len(ins) for k in self.config_keys},
               weights=lambda w: [take(v, ins) if np.ndim(v) and np.shape(v)[-1] == n else v
                                  for v in w])


def _key(layer, shape):
  try:
    config = json.dumps({k: v for k, v in layer.get_config().items() if k != "name"},
                        sort_keys=True, default=str)
  except Exception:  # pylint: disable=broad-except  (an unserializable config: no probe)
    return None
  return (type(layer), config, tuple(shape))


def probed_rule(call, graph) -> Optional[ProbedRule]:
  """The probed rule of a call's layer, or None when it is not a channel-wise map."""
  layer, api = call.layer, graph.api
  if (len(call.inputs) != 1 or len(call.outputs) != 1 or api.is_operation(layer)
      or api.nested_graph(layer) is not None or not hasattr(layer, "get_config")):
    return None
  in_shape, out_shape = graph.shape(call.inputs[0]), graph.shape(call.outputs[0])
  n = channels(in_shape)
  if len(in_shape) != len(out_shape) or channels(out_shape) != n or n < 2:
    return None
  key = _key(layer, in_shape)
  if key is None:
    return None
  if key not in _CACHE:
    _CACHE[key] = _probe(layer, api, in_shape, n)
  return _CACHE[key]


def _probe(layer, api, in_shape, n) -> Optional[ProbedRule]:
  weights = [np.asarray(w) for w in layer.get_weights()]
  if any(n in w.shape[:-1] for w in weights):
    return None     # a channel-sized axis other than the last: not a per-channel weight
  sliced = any(w.ndim and w.shape[-1] == n for w in weights)
  config = layer.get_config()
  config_keys = [k for k, v in config.items() if sliced and isinstance(v, int)
                 and not isinstance(v, bool) and v == n]
  rng = np.random.default_rng(0)
  shape = (1,) + tuple(3 if d is None else int(d) for d in in_shape[1:])
  x = rng.normal(size=shape).astype(np.float32)
  try:
    want = np.asarray(api.invoke(layer, (x,), {}, False))
    if want.shape != shape:
      return None
    for size in [max(1, n // 2), n - 1][:_TRIALS]:
      keep = np.sort(rng.choice(n, size, replace=False))
      small_config = {**config, "name": f"{config.get('name', 'probe')}_probe"}
      small_config.update({k: int(size) for k in config_keys})
      small = api.from_config(layer, small_config)
      got = np.asarray(api.invoke(small, (x[..., keep],), {}, False))
      if weights:
        small.set_weights([take(w, keep) if w.ndim and w.shape[-1] == n else w for w in weights])
        got = np.asarray(api.invoke(small, (x[..., keep],), {}, False))
      expected = want[..., keep]
      if got.shape != expected.shape or not np.allclose(
          got, expected, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(expected).max()))):
        return None
  except Exception:  # pylint: disable=broad-except  (a layer that refuses: no rule)
    return None
  return ProbedRule(config_keys, n)
