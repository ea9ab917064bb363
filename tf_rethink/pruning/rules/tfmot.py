"""The rule of TF-MOT's `PruneLowMagnitude` wrapper (registered by name: resolved only once
TF-MOT is imported, so the rule book never imports it)."""
import dataclasses

import numpy as np

from tf_rethink.pruning.rules.base import PRODUCER, Cost, Ctx, Cut, Rule, channels, full
from tf_rethink.pruning.rules.book import RULES
from tf_rethink.pruning.rules.conv import conv_cost, is_conv


class WrapperRule(Rule):
  """TF-MOT's `PruneLowMagnitude` around a layer: the role, costs and parameters of the layer it
  wraps (a conv's mask applied in convention B); it cannot be cut (masks and channel plans do not
  mix: strip the wrappers first)."""

  def _rule(self, layer):
    return RULES.lookup(layer.layer)

  def _inner(self, c: Ctx) -> Ctx:
    return Ctx(dataclasses.replace(c.call, layer=c.layer.layer), c.graph, c.ins, c.keep)

  def role_of(self, c: Ctx) -> str:
    rule = self._rule(c.layer)
    return rule.role_of(self._inner(c)) if rule is not None else PRODUCER

  def cut(self, c: Ctx):
    if not c.inputs_full() or c.keep is not None:
      c.refuse("is a TF-MOT mask wrapper; strip the masks before channel pruning")
    return Cut(out=full(c.n_out))

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    inner = c.layer.layer
    if sparse and is_conv(inner):
      kernel = inner.kernel.numpy() * c.layer.pruning_vars[0][1].numpy()
      return conv_cost(inner, channels(c.in_shapes[0]), c.out_shape, kernel)
    rule = self._rule(c.layer)
    return rule.cost(self._inner(c), sparse) if rule is not None else Cost()

  def parameters(self, layer) -> list:
    rule = self._rule(layer)
    return rule.parameters(layer.layer) if rule is not None else list(layer.layer.weights)

  def zero_parameters(self, layer) -> int:
    if not is_conv(layer.layer):
      return 0
    kernel = layer.layer.kernel.numpy() * layer.pruning_vars[0][1].numpy()
    return int(kernel.size - np.count_nonzero(kernel))


RULES.register(WrapperRule(), "tf_keras:tensorflow_model_optimization.python.core.sparsity.keras."
               "pruning_wrapper.PruneLowMagnitude")
