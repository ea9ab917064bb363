"""Channel dependency groups: the output channels that must be removed together.

Every channel of every tensor is labelled with where it was made: (producer layer, index) for the
output channels of a conv / dense (a `prunable` rule), a blocked source for the network input and
for anything the engine cannot follow. Labels flow through the graph in topological order:

* pass-through, BN, pooling, padding, dropout, channel-preserving reshape, concatenation (by
  offset), depthwise conv (channel i -> outputs i*m..i*m+m-1), flatten (channel i -> all H*W
  features of it): each output channel carries the label of the one input channel it comes from.
  The map is read off the layer's own surgery rule (`surgery.RULES`), by removing input channels
  by the bits of their index (about log2(C) rule calls per layer), so a new layer type needs one
  rule only.
* an elementwise merge (`Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`; rule
  registered with `couples=True`) unites the producers of the channels it aligns: one group for a
  whole residual stage, the squeeze-and-excite `Multiply` joins the SE expand conv with the conv
  whose output it rescales. Inputs with one channel broadcast and are not coupled.
* a conv / dense consumes its inputs (their channels can go: it drops the kernel rows) and starts
  new labels.

A group is left unpruned ("blocked") when it reaches the network input, the model output, a layer
without a rule (Lambda, custom layers, Reshape to other than channels, ...; listed in
`GroupReport.skipped` by name), a layer whose rule needs all its inputs (e.g. the CIFAR ResNet
option-A shortcut) or a merge that aligns different channel indices of its producers.
"""
import dataclasses
import logging
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tensorflow as tf
import tf_keras as keras

from tf_rethink.pruning.groups import Ctx, Rules, full, topological_nodes

_log = logging.getLogger(__name__)
Label = Tuple[str, int]


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
  """Producers whose output channel i is one channel: pruning keeps the same indices in all.

  Attributes:
    members: prunable layer names (topological order).
    width: their common number of output channels.
    blocked_by: why the group cannot be pruned (empty: it can).
  """
  members: Tuple[str, ...]
  width: int
  blocked_by: Tuple[str, ...] = ()

  @property
  def prunable(self) -> bool:
    return not self.blocked_by and self.width >= 2


@dataclasses.dataclass(frozen=True)
class GroupReport:
  """`channel_groups` result: every group, and the layers it could not follow (name -> why)."""
  groups: Tuple[ChannelGroup, ...]
  skipped: Mapping[str, str]

  def group_of(self, name: str) -> ChannelGroup:
    for g in self.groups:
      if name in g.members:
        return g
    raise KeyError(f"{name!r} is not a prunable layer of the model")

  def prunable(self, predicate: Optional[Callable[[ChannelGroup], bool]] = None
               ) -> List[ChannelGroup]:
    return [g for g in self.groups if g.prunable and (predicate is None or predicate(g))]


class _Sources:
  """Union-find over label sources (producer names and blocked pseudo-sources) with reasons."""

  def __init__(self):
    self.parent: Dict[str, str] = {}
    self.reasons: Dict[str, List[str]] = {}

  def find(self, a: str) -> str:
    self.parent.setdefault(a, a)
    while self.parent[a] != a:
      self.parent[a] = self.parent[self.parent[a]]
      a = self.parent[a]
    return a

  def union(self, a: str, b: str):
    ra, rb = self.find(a), self.find(b)
    if ra != rb:
      self.parent[rb] = ra

  def block(self, source: str, reason: str):
    reasons = self.reasons.setdefault(source, [])
    if reason not in reasons:
      reasons.append(reason)


def _key(tensor):
  h = tensor._keras_history  # pylint: disable=protected-access
  return (h.layer.name, h.node_index, h.tensor_index)


def _accepts(rule, ctx: Ctx) -> bool:
  try:
    rule(ctx)
    return True
  except Exception:  # pylint: disable=broad-except  (any refusal means: do not cut here)
    return False


def _partial(in_shapes) -> Tuple[Tuple[int, ...], ...]:
  """Every input without its last channel (inputs of one channel keep it)."""
  return tuple(full(int(s[-1]) - 1) if int(s[-1]) > 1 else full(1) for s in in_shapes)


def _trace(rule, layer, in_shapes, out_shape) -> Optional[List[Optional[Tuple[int, int]]]]:
  """For each output channel, the (input, channel) it comes from; None when the rule refuses.

  Removing the input channels whose (1-based global) index has bit b set removes exactly the
  outputs whose source has bit b set, so log2(C) calls of the rule recover the map. An output
  that never disappears is a constant (None).
  """
  sizes = [int(s[-1]) for s in in_shapes]
  offsets = [sum(sizes[:k]) for k in range(len(sizes))]
  n_out, total = int(out_shape[-1]), sum(sizes)

  def call(ins):
    return rule(Ctx(layer, ins, None, tuple(in_shapes), out_shape)).out
  try:
    if tuple(call(tuple(full(n) for n in sizes))) != full(n_out):
      return None
    codes = [0] * n_out
    for b in range((total + 1).bit_length()):
      ins = tuple(tuple(i for i in range(n) if not ((o + i + 1) >> b) & 1)
                  for n, o in zip(sizes, offsets))
      kept = set(call(ins))
      for j in range(n_out):
        if j not in kept:
          codes[j] |= 1 << b
  except Exception:  # pylint: disable=broad-except
    return None
  where = []
  for code in codes:
    if code == 0:
      where.append(None)
      continue
    g = code - 1
    if g >= total:
      return None
    k = max(k for k, o in enumerate(offsets) if o <= g)
    where.append((k, g - offsets[k]))
  return where


def channel_groups(model: keras.Model, rules: Rules) -> GroupReport:
  """The channel dependency groups of a functional `model` (see the module docstring).

  Raises:
    UsageError: not a functional model, a layer called twice, or a nested model.
  """
  src = _Sources()
  labels: Dict[tuple, List[Label]] = {}
  widths: Dict[str, int] = {}
  skipped: Dict[str, str] = {}

  def fresh(kind, name, n, reason):
    source = f"<{kind}:{name}>"
    src.block(source, reason)
    return [(source, i) for i in range(n)]

  def block_inputs(in_labels, reason):
    for lab in in_labels:
      for s in {s for s, _ in lab}:
        src.block(s, reason)

  for node in topological_nodes(model):
    layer, name = node.layer, node.layer.name
    outputs = tf.nest.flatten(node.outputs)
    if isinstance(layer, keras.layers.InputLayer):
      for i, t in enumerate(outputs):
        labels[(name, 0, i)] = fresh("input", name, int(t.shape[-1]), "network input")
      continue
    inputs = tf.nest.flatten(node.keras_inputs)
    in_labels = [labels[_key(t)] for t in inputs]
    in_shapes = tuple(t.shape for t in inputs)
    out_shape = outputs[0].shape
    n_out = int(out_shape[-1]) if out_shape.rank else 1
    entry = rules.lookup(layer)
    kind = type(layer).__name__
    if entry is None or len(outputs) != 1:
      reason = f"{name!r} ({kind}) has no surgery rule"
      if any(not s.startswith("<") for lab in in_labels for s, _ in lab):
        skipped[name] = reason
      block_inputs(in_labels, reason)
      out = fresh("opaque", name, n_out, reason)
    elif rules.couples(layer):
      aligned = [lab for lab, s in zip(in_labels, in_shapes) if int(s[-1]) == n_out]
      for lab in aligned[1:]:
        for (s0, i0), (s1, i1) in zip(aligned[0], lab):
          src.union(s0, s1)
          if i0 != i1:
            src.block(s0, f"merge {name!r} aligns different channels of its inputs")
      out = list(aligned[0]) if aligned else fresh("opaque", name, n_out, f"{name!r} broadcasts")
    elif entry[1]:
      rule = entry[0]
      widths[name] = n_out
      src.find(name)
      out = [(name, i) for i in range(n_out)]
      ctx = Ctx(layer, _partial(in_shapes), None, in_shapes, out_shape)
      if not _accepts(rule, ctx):
        block_inputs(in_labels, f"{name!r} ({kind}) needs all its input channels")
      keep = full(n_out - 1) if n_out > 1 else full(1)
      if not _accepts(rule, Ctx(layer, tuple(full(int(s[-1])) for s in in_shapes), keep,
                                in_shapes, out_shape)):
        src.block(name, f"{name!r} ({kind}) cannot drop output channels")
    else:
      where = _trace(entry[0], layer, in_shapes, out_shape)
      if where is None:
        reason = f"{name!r} ({kind}) needs all its input channels"
        block_inputs(in_labels, reason)
        out = fresh("fixed", name, n_out, reason)
      else:
        const = f"<const:{name}>"
        out = [in_labels[w[0]][w[1]] if w is not None else (const, j) for j, w in enumerate(where)]
        if any(w is None for w in where):
          src.block(const, f"{name!r} makes channels of its own")
    node_index = layer._inbound_nodes.index(node)  # pylint: disable=protected-access
    for i, t in enumerate(outputs):
      labels[(name, node_index, i)] = out if i == 0 else fresh("opaque", name, 1, "extra output")
  for t in model.outputs:
    block_inputs([labels[_key(t)]], "model output")

  members: Dict[str, List[str]] = {}
  for name in widths:                 # insertion order = topological order
    members.setdefault(src.find(name), []).append(name)
  blocked: Dict[str, List[str]] = {}
  for source, reasons in src.reasons.items():
    root = src.find(source)
    for r in reasons:
      if r not in blocked.setdefault(root, []):
        blocked[root].append(r)
  groups = []
  for root, names in members.items():
    reasons = list(blocked.get(root, []))
    if len({widths[n] for n in names}) > 1:
      reasons.append("members have different widths")
    groups.append(ChannelGroup(tuple(names), max(widths[n] for n in names), tuple(reasons)))
  if skipped:
    _log.info("channel groups left unpruned at layers without a rule: %s", ", ".join(skipped))
  return GroupReport(tuple(groups), dict(skipped))
