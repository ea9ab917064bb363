"""Folds inference-mode BatchNormalization into the layer that feeds it.

In inference BN is the per-channel affine map y = s * x + t with s = gamma / sqrt(var + eps),
t = beta - s * mean. When x is the output of a producer whose output channel c is linear in its
own weights (conv of any kind, dense: its rule's `fold`) and that producer feeds only that BN,
then y is the producer with scaled weights and bias s * b + t: the same function with one layer
fewer, one pass less over every activation and fewer variables, which is what an exported model
should run (`export.export_serving`). Training-mode BN (batch statistics) cannot be folded: the
result is for inference only.

Folded: a BN over the last axis, called once, whose input comes from a single-call producer with
a `fold` rule and no other consumer. Anything else (BN after an add or a concatenation, BN over
another axis, shared layers) is left as it is. The folded BN is removed from the model.
"""
from typing import Dict

import numpy as np

from tf_rethink.pruning.graph import view
from tf_rethink.pruning.rules import RULES, Rule
from tf_rethink.pruning.rules.normalization import BatchNormRule
from tf_rethink.pruning.surgery import Edit, rebuild


def foldable_pairs(model) -> Dict[str, str]:
  """BN layer key -> the key of the producer folded into it."""
  graph = view(model)
  pairs = {}
  for call in graph.calls:
    if not isinstance(RULES.lookup(call.layer), BatchNormRule) or len(
        graph.calls_of(call.key)) != 1:
      continue
    rank = len(graph.shape(call.inputs[0]))
    axis = call.layer.axis
    axes = [axis] if isinstance(axis, int) else list(axis)
    if [a % rank for a in axes] != [rank - 1]:
      continue
    producer = graph.producer(call.inputs[0])
    if producer is None or len(graph.calls_of(producer.key)) != 1:
      continue
    rule = RULES.lookup(producer.layer)
    if (rule is None or type(rule).fold is Rule.fold
        or len(graph.consumers(producer.outputs[0])) != 1):
      continue
    pairs[call.key] = producer.key
  return pairs


def bn_affine(bn):
  """(s, t) of an inference-mode BN: y = s * x + t, per channel, float64."""
  mean = np.asarray(bn.moving_mean, np.float64)
  var = np.asarray(bn.moving_variance, np.float64)
  gamma = np.asarray(bn.gamma, np.float64) if bn.scale else np.ones_like(mean)
  beta = np.asarray(bn.beta, np.float64) if bn.center else np.zeros_like(mean)
  s = gamma / np.sqrt(var + bn.epsilon)
  return s, beta - s * mean


def fold_batchnorm(model):
  """A copy of functional `model` with every foldable BN folded into its producer (module
  docstring). Same outputs in inference."""
  graph = view(model)
  edits = {}
  for bn_key, producer_key in foldable_pairs(model).items():
    producer = graph.layer(producer_key)
    rule = RULES.lookup(producer)
    scale, shift = bn_affine(graph.layer(bn_key))

    def weights(w, producer=producer, rule=rule, scale=scale, shift=shift):
      dtype = w[0].dtype
      folded = rule.fold(producer, [np.asarray(v, np.float64) for v in w], scale, shift)
      return [np.asarray(v).astype(dtype) for v in folded]
    edits[producer_key] = Edit(config={"use_bias": True}, weights=weights)
    edits[bn_key] = Edit(bypass=0)
  return rebuild(model, edits)
