"""The masked full-size model: what a plan computes, without changing any shape.

`masked_outputs(model, keep, inputs)` evaluates the original model call by call with the removed
channels of every tensor set to zero (the mask implementation of the paper's spec 7.4, with its
leak fixed: a removed channel stays zero through BN, biases and gates). Layers whose kept outputs
depend on the removed channels' values other than through zeros (LayerNorm's statistics) compute
over the kept channels only (`Rule.masked_call`). The shrunk model must compute exactly this,
which is what the engine's tests check for every model family; it is built from the layers as
they are, independently of the smaller layers' configs and sliced weights.
"""
from typing import Mapping, Sequence

import numpy as np

from tf_rethink.pruning.channels import propagate
from tf_rethink.pruning.graph import flatten, view
from tf_rethink.pruning.rules import RULES, Ctx, channels


def masked_outputs(model, keep: Mapping[str, Sequence[int]], inputs) -> list:
  """The outputs (numpy) of `model` with the channels the plan removes zeroed everywhere."""
  graph = view(model)
  prop = propagate(graph, {k: tuple(int(i) for i in v) for k, v in keep.items()})
  masks = {}
  for t, kept in prop.tensors.items():
    n = channels(graph.shape(t))
    if len(kept) != n:
      m = np.zeros(n, np.float32)
      m[list(kept)] = 1.0
      masks[t] = m

  def call_fn(call, args, kwargs):
    cc = prop.calls[call.site]
    out = None
    if cc.changed:
      rule = RULES.rule_for(call, graph)
      in_masks = [masks.get(t, np.ones(channels(graph.shape(t)), np.float32))
                  for t in call.inputs]
      out = rule.masked_call(Ctx(call, graph, cc.ins), args, kwargs, in_masks)
    if out is None:
      out = graph.api.invoke(call.layer, args, kwargs, False)
    outs = [np.asarray(o) for o in flatten(out)]
    return [o * masks[t] if t in masks else o for o, t in zip(outs, call.outputs)]

  inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
  return graph.run([np.asarray(x) for x in inputs], call_fn=call_fn)
