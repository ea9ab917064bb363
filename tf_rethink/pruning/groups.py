"""Channel coupling: which channels of every tensor survive a plan, by walking the functional graph.

A plan names the kept OUTPUT channels of some layers (convs, dense). Every other tensor's kept
channels follow from the graph: a BN or ReLU passes its input's channels on, the next conv drops
the matching input rows, a residual `Add` couples its inputs (they must keep the same channels),
a concatenation offsets each input's channels. The per-layer-type knowledge lives in rules (one
small function per layer type, registered in `surgery.RULES`); this module only walks the graph
in topological order, validates the plan against it and applies the rules.
"""
import dataclasses
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tensorflow as tf
import tf_keras as keras

from tf_rethink.util.errors import UsageError

Idx = Tuple[int, ...]


def full(n: int) -> Idx:
  """All channel indices of an n-channel tensor."""
  return tuple(range(int(n)))


@dataclasses.dataclass(frozen=True)
class Ctx:
  """What a rule sees of one layer call: the layer, its inputs' kept channels, its own keep."""
  layer: keras.layers.Layer
  ins: Tuple[Idx, ...]                  # kept channels (last axis) of each input tensor
  keep: Optional[Idx]                   # plan.keep[layer.name] (prunable layers only)
  in_shapes: Tuple[tf.TensorShape, ...]
  out_shape: tf.TensorShape

  @property
  def full_out(self) -> Idx:
    return full(self.out_shape[-1])

  def inputs_full(self) -> bool:
    return all(i == full(s[-1]) for i, s in zip(self.ins, self.in_shapes))

  def describe(self) -> str:
    return f"{self.layer.name!r} ({type(self.layer).__name__})"


Weights = List


@dataclasses.dataclass(frozen=True)
class Cut:
  """A rule's answer: kept output channels, the smaller layer's config, how to cut its weights.

  Attributes:
    out: kept channels of the output tensor.
    config: updates to `layer.get_config()` for the smaller layer (e.g. {"filters": 14}).
    slice: full weights -> weights of the smaller layer (None: unchanged).
    mask: full weights -> same shapes with the removed output channels' effect zeroed (None:
      nothing to zero). Used by `surgery.mask` (mask implementation, spec 7.4).
  """
  out: Idx
  config: Mapping = dataclasses.field(default_factory=dict)
  slice: Optional[Callable[[Weights], Weights]] = None
  mask: Optional[Callable[[Weights], Weights]] = None


Rule = Callable[[Ctx], Cut]


class Rules:
  """Layer class -> rule. Lookup follows the MRO, so subclasses inherit their base's rule."""

  def __init__(self):
    self._rules: Dict[type, Tuple[Rule, bool]] = {}
    self._couples: Dict[type, bool] = {}

  def register(self, *classes, prunable: bool = False, couples: bool = False):
    """Decorator: `fn(ctx) -> Cut` handles `classes`.

    Args:
      prunable: the layer makes new output channels (conv, dense) and may appear in plan.keep.
      couples: an elementwise merge (Add, Multiply, ...): channel i of every input is one
        channel, so the producers feeding it form one group (`coupling.channel_groups`).
    Layers that are neither are traced by `coupling`: each output channel must come from one
    input channel (pass-through, concatenation, depthwise, flatten); a rule that raises when
    some input channels are removed marks its inputs unprunable.
    """
    def decorator(fn):
      for cls in classes:
        self._rules[cls] = (fn, prunable)
        self._couples[cls] = couples
      return fn
    return decorator

  def lookup(self, layer) -> Optional[Tuple[Rule, bool]]:
    for cls in type(layer).__mro__:
      if cls in self._rules:
        return self._rules[cls]
    return None

  def prunable(self, layer) -> bool:
    entry = self.lookup(layer)
    return bool(entry and entry[1])

  def couples(self, layer) -> bool:
    for cls in type(layer).__mro__:
      if cls in self._rules:
        return self._couples.get(cls, False)
    return False


@dataclasses.dataclass(frozen=True)
class LayerChannels:
  """Kept channels around one layer, and its rule's cut."""
  layer: keras.layers.Layer
  ins: Tuple[Idx, ...]
  cut: Cut
  in_shapes: Tuple[tf.TensorShape, ...]
  out_shape: tf.TensorShape

  @property
  def changed(self) -> bool:
    """True when the layer loses input or output channels."""
    return (self.cut.out != full(self.out_shape[-1]) or
            any(i != full(s[-1]) for i, s in zip(self.ins, self.in_shapes)))


def _history_key(tensor):
  h = tensor._keras_history  # pylint: disable=protected-access
  return (h.layer.name, h.node_index, h.tensor_index)


def topological_nodes(model: keras.Model) -> List:
  """The model's nodes, inputs first (functional models only)."""
  by_depth = getattr(model, "_nodes_by_depth", None)
  if not by_depth:
    raise UsageError(f"model {model.name!r} is not a functional keras.Model; build it with "
                     "keras.Input and keras.Model(inputs, outputs)")
  nodes = [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]]
  seen = {}
  for node in nodes:
    name = node.layer.name
    if name in seen:
      raise UsageError(f"layer {name!r} is called more than once in the model; surgery needs "
                       "each layer used once")
    if isinstance(node.layer, keras.Model):
      raise UsageError(f"layer {name!r} is a nested model; flatten it into one functional model "
                       "before pruning")
    seen[name] = node
  return nodes


def _validate_keep(model, keep: Mapping[str, Idx], rules: Rules):
  names = {layer.name: layer for layer in model.layers}
  unknown = sorted(set(keep) - set(names))
  if unknown:
    raise UsageError(f"plan names layers that model {model.name!r} does not have: "
                     f"{', '.join(unknown)}; was the plan made for another model?")
  for name in sorted(keep):
    layer = names[name]
    if not rules.prunable(layer):
      raise UsageError(f"plan prunes layer {name!r} ({type(layer).__name__}), which has no output "
                       "channels of its own; name convs or dense layers only")
    n = int(layer.output_shape[-1])
    bad = [i for i in keep[name] if not 0 <= i < n]
    if bad:
      raise UsageError(f"plan keeps channel(s) {bad[:5]} of layer {name!r}, which has only {n} "
                       f"channels (valid: 0..{n - 1})")
    if not keep[name]:
      raise UsageError(f"plan keeps no channel of layer {name!r}; keep at least one")


def propagate(model: keras.Model, keep: Mapping[str, Idx], rules: Rules
              ) -> Dict[str, LayerChannels]:
  """Kept channels of every layer's inputs and output under `keep`, in topological order.

  Raises:
    UsageError: unknown layer names, out-of-range indices, a merge whose inputs keep different
      channels, a pruned channel reaching a layer without a rule, or a pruned model output.
  """
  _validate_keep(model, keep, rules)
  tensors: Dict[tuple, Idx] = {}
  result: Dict[str, LayerChannels] = {}
  for node in topological_nodes(model):
    layer = node.layer
    outputs = tf.nest.flatten(node.outputs)
    if isinstance(layer, keras.layers.InputLayer):
      for i, t in enumerate(outputs):
        tensors[(layer.name, 0, i)] = full(t.shape[-1])
      continue
    inputs = tf.nest.flatten(node.keras_inputs)
    ins = tuple(tensors[_history_key(t)] for t in inputs)
    ctx = Ctx(layer, ins, keep.get(layer.name), tuple(t.shape for t in inputs), outputs[0].shape)
    entry = rules.lookup(layer)
    if entry is not None and len(outputs) == 1:
      cut = entry[0](ctx)
    elif ctx.inputs_full():
      cut = Cut(out=ctx.full_out)   # untouched: cloned as is, whatever its type
    else:
      raise UsageError(f"pruned channels reach layer {ctx.describe()}, which surgery has no rule "
                       "for; register one with tf_rethink.pruning.surgery.RULES.register or "
                       "leave the channels feeding it unpruned")
    node_index = _node_index(layer, node)
    for i, t in enumerate(outputs):
      tensors[(layer.name, node_index, i)] = cut.out if i == 0 else full(t.shape[-1])
    result[layer.name] = LayerChannels(layer, ins, cut, ctx.in_shapes, ctx.out_shape)
  for t in model.outputs:
    name = t._keras_history.layer.name  # pylint: disable=protected-access
    if tensors[_history_key(t)] != full(t.shape[-1]):
      raise UsageError(f"plan prunes the model output (through layer {name!r}); the output width "
                       "is fixed, leave the layers feeding it unpruned")
  return result


def _node_index(layer, node) -> int:
  for i, n in enumerate(layer._inbound_nodes):  # pylint: disable=protected-access
    if n is node:
      return i
  raise RuntimeError(f"node of layer {layer.name!r} not found")


def prunable_layers(model: keras.Model, rules: Rules,
                    predicate: Optional[Callable[[keras.layers.Layer], bool]] = None
                    ) -> List[str]:
  """Names of the prunable layers whose output channels can be cut on their own.

  A layer qualifies when removing one of its output channels alone is a valid plan: it is the
  only member of its channel group (`coupling.channel_groups`: its output does not feed a
  residual merge) and the group is not blocked (fixed-width layer, layer without a rule, model
  output). Layers with one channel never qualify. Order: topological.
  """
  from tf_rethink.pruning import coupling  # pylint: disable=import-outside-toplevel
  report = coupling.channel_groups(model, rules)
  names = {g.members[0] for g in report.groups if g.prunable and len(g.members) == 1}
  return [layer.name for layer in layers_in_order(model) if layer.name in names
          and (predicate is None or predicate(layer))]


def layers_in_order(model: keras.Model) -> Sequence[keras.layers.Layer]:
  """The model's layers in topological order."""
  return [node.layer for node in topological_nodes(model)]
