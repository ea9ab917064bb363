"""Elementwise layers: activations, regularizers, and the merges that couple their inputs.

FLOPs (convention A): a ReLU module counts 1 per input element on every call; as an extension
every other elementwise nonlinearity (sigmoid, swish, hard-swish, GELU, ...) counts 1 per
element too; linear, softmax, dropout-like layers count 0 (the reference counts neither softmax
nor functional ops). Merges (Add, Multiply, ...) count 0, as the reference's residual additions.

A merge (`MERGE`): channel i of every input of the output's width is one channel, so the layers
producing them form one channel group (a residual stage; the squeeze-and-excite `Multiply`
joins the SE expand conv with the conv whose output it rescales). An input of one channel
broadcasts (a spatial attention map) and is not coupled.
"""
from tf_rethink.pruning.rules.base import (MERGE, Cost, Ctx, Cut, Free, Pointwise, Rule,
                                           channels, elementwise_cost)
from tf_rethink.pruning.rules.book import RULES

NONLINEAR_FREE = ("linear", "softmax", "log_softmax")


def activation_name(fn) -> str:
  return getattr(fn, "__name__", str(fn))


class ReLURule(Pointwise):
  """ReLU-like layers: 1 FLOP per element (convention A's ReLU module)."""

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    return elementwise_cost(c)


class ActivationRule(Pointwise):
  """`Activation(fn)`: elementwise unless fn normalizes over the channels (softmax)."""

  def cut(self, c: Ctx) -> Cut:
    if "softmax" in activation_name(c.layer.activation) and not c.inputs_full():
      c.refuse("normalizes over the channels (softmax); leave its inputs unpruned")
    return Cut(out=c.ins[0])

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    name = activation_name(c.layer.activation)
    return Cost() if name in NONLINEAR_FREE else elementwise_cost(c)


class SoftmaxRule(Rule):
  """`Softmax(axis)`: over the channel axis it needs all of them."""

  def cut(self, c: Ctx) -> Cut:
    axis = c.config.get("axis", -1)
    axes = [axis] if isinstance(axis, int) else list(axis)
    rank = len(c.in_shapes[0])
    if rank - 1 in [a % rank for a in axes] and not c.inputs_full():
      c.refuse("normalizes over the channels; leave its inputs unpruned")
    return Cut(out=c.ins[0])


class MergeRule(Rule):
  """Add, Subtract, Multiply, Average, Maximum, Minimum (see the module docstring)."""
  role = MERGE

  def cut(self, c: Ctx) -> Cut:
    return merge_cut(c)


def merge_cut(c: Ctx) -> Cut:
  """The output keeps what every aligned input keeps (they must agree); 1-channel inputs
  broadcast."""
  n = c.n_out
  aligned = [i for i, s in zip(c.ins, c.in_shapes) if channels(s) == n or n == 1]
  if len(set(aligned)) != 1:
    kept = ", ".join(f"{len(i)} of {channels(s)}" for i, s in zip(c.ins, c.in_shapes))
    c.refuse(f"merges inputs with different kept channels ({kept}); prune the branches feeding "
             "a merge identically or not at all")
  return Cut(out=aligned[0])


RULES.register(ReLURule(), "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU")
RULES.register(ActivationRule(), "Activation")
RULES.register(SoftmaxRule(), "Softmax")
RULES.register(Free(), "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout",
               "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
               "ActivityRegularization", "Identity", "Masking")
RULES.register(MergeRule(), "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
