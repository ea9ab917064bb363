"""Channel dependency groups: the output channels that must be removed together (`channel_groups`).

Every channel of every tensor is labelled with where it was made: (producer key, index) for the
outputs of a producer (conv, dense; a `PRODUCER` rule), a blocked pseudo-source for the network
input and for whatever the engine cannot follow. Labels flow through the graph call by call:

* a `MAP` layer (BN, activations, pooling, padding, reshape, concatenation by offset, depthwise
  conv i -> i*m..i*m+m-1, flatten i -> p*C+i, ...): each output channel carries the label of the
  one input channel it comes from. The map is read off the layer's own rule by removing input
  channels by the bits of their index (about log2(C) cuts per layer), so a new layer type needs
  its rule only;
* a `MERGE` (Add, Multiply, `x * se`, ...) unites the producers of the channels it aligns: one
  group for a whole residual stage; inputs of one channel broadcast and are not coupled;
* a producer consumes its inputs (it drops the kernel rows of removed ones) and starts new labels;
* the calls of a shared layer must see the same channels: their inputs are united like a merge's.

Grouped convs add structure: `ties` (input channels of one conv group go together: the group's
`units`) and `balance` (outputs pruned equally in every conv group). A group is left unpruned
("blocked") when it reaches the network input, the model output, a layer without a rule (the
report's `skipped`), a layer whose rule needs all its input channels, a merge or shared layer
that aligns different channel indices of its producers, or members of different widths.
"""
import collections
import dataclasses
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from tf_rethink.pruning.graph import Graph
from tf_rethink.pruning.rules import MERGE, PRODUCER, RULES, Ctx, channels, full
from tf_rethink.pruning.rules.probe import ProbedRule

Label = Tuple[str, int]


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
  """Producers whose output channel i is one channel: pruning keeps the same indices in all.

  Attributes:
    members: producer layer keys (topological order).
    width: their common number of output channels.
    blocked_by: why the group cannot be pruned (empty: it can).
    units: index sets kept or removed together (grouped convs); empty: every channel alone.
    balance: the channels come in blocks of this size that must keep equally many (None: free).
  """
  members: Tuple[str, ...]
  width: int
  blocked_by: Tuple[str, ...] = ()
  units: Tuple[Tuple[int, ...], ...] = ()
  balance: Optional[int] = None

  @property
  def prunable(self) -> bool:
    if self.blocked_by or self.width < 2:
      return False
    if self.units:
      return len(self.units) >= 2
    return self.balance is None or self.balance >= 2


@dataclasses.dataclass(frozen=True)
class GroupReport:
  """`channel_groups`' result: the groups, the layers without a rule that blocked some (key ->
  why), and the layers accepted as channel-wise maps by a numerical probe (`rules.probe`)."""
  groups: Tuple[ChannelGroup, ...]
  skipped: Mapping[str, str]
  probed: Tuple[str, ...] = ()

  def group_of(self, key: str) -> ChannelGroup:
    for g in self.groups:
      if key in g.members:
        return g
    raise KeyError(f"{key!r} is not a producer layer of the model")

  def prunable(self, predicate: Optional[Callable[[ChannelGroup], bool]] = None
               ) -> List[ChannelGroup]:
    return [g for g in self.groups if g.prunable and (predicate is None or predicate(g))]

  def uncoupled(self) -> List[str]:
    """Producers whose output channels can be cut on their own: each is the only member of a
    prunable group (its output feeds no merge). Graph order."""
    return [g.members[0] for g in self.prunable() if len(g.members) == 1]

  def summary(self, examples: int = 3) -> str:
    """One short line: how many groups are left unpruned, per reason, with a few names."""
    blocked = [g for g in self.groups if not g.prunable]
    if not blocked:
      return f"all {len(self.groups)} channel groups can be pruned"
    by_reason: Dict[str, List[str]] = collections.OrderedDict()
    for g in blocked:
      reasons = g.blocked_by or ("a single channel",)
      by_reason.setdefault(_reason_kind(reasons[0]), []).append(g.members[0])
    parts = []
    for kind, names in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
      shown = ", ".join(names[:examples]) + (", ..." if len(names) > examples else "")
      parts.append(f"{len(names)} {kind} ({shown})")
    text = f"{len(blocked)} of {len(self.groups)} channel groups left unpruned: " + "; ".join(parts)
    if self.skipped:
      names = list(self.skipped)
      text += (f"; layers without a rule: {len(names)} ("
               + ", ".join(names[:examples]) + (", ..." if len(names) > examples else "") + ")")
    return text


_KINDS = (("no rule", "reach a layer without a rule"), ("needs all", "reach a layer that needs "
          "all its input channels"), ("model output", "feed the model output"),
          ("network input", "reach the network input"), ("aligns different", "meet at a merge of "
          "different channels"), ("different widths", "have members of different widths"),
          ("cannot drop", "have a member that cannot drop outputs"),
          ("shared layer", "feed a shared layer differently"), ("conv group", "split a conv "
          "group"), ("structure", "mix group structures"), ("makes channels", "meet constant "
          "channels"))


def _reason_kind(reason: str) -> str:
  for needle, kind in _KINDS:
    if needle in reason:
      return kind
  return "are blocked otherwise"


class _Sources:
  """Union-find over label sources (producer keys and blocked pseudo-sources) with reasons."""

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


def _accepts(rule, ctx: Ctx) -> bool:
  try:
    rule.cut(ctx)
    return True
  except Exception:  # pylint: disable=broad-except  (any refusal means: do not cut here)
    return False


def _partial(widths: Sequence[int]):
  """Every input without its last channel (inputs of one channel keep it)."""
  return tuple(full(n - 1) if n > 1 else full(n) for n in widths)


def trace(rule, call, graph) -> Optional[List[Optional[Tuple[int, int]]]]:
  """For each output channel, the (input, channel) it comes from; None when the rule refuses.

  Removing the input channels whose (1-based global) index has bit b set removes exactly the
  outputs whose source has bit b set, so log2(C) cuts recover the map. An output that never
  disappears is a constant (None).
  """
  sizes = [channels(graph.shape(t)) for t in call.inputs]
  offsets = [sum(sizes[:k]) for k in range(len(sizes))]
  n_out = channels(graph.shape(call.outputs[0]))
  total = sum(sizes)

  def cut(ins):
    return rule.cut(Ctx(call, graph, ins)).out
  try:
    if tuple(cut(tuple(full(n) for n in sizes))) != full(n_out):
      return None
    codes = [0] * n_out
    for b in range((total + 1).bit_length()):
      ins = tuple(tuple(i for i in range(n) if not ((o + i + 1) >> b) & 1)
                  for n, o in zip(sizes, offsets))
      kept = set(cut(ins))
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


def channel_groups(graph: Graph) -> GroupReport:
  """The channel dependency groups of a graph (see the module docstring)."""
  src = _Sources()
  labels: Dict[int, List[Label]] = {}
  widths: Dict[str, int] = {}
  balance: Dict[str, int] = {}
  ties: List[Tuple[str, List[Label]]] = []
  skipped: Dict[str, str] = {}
  probed: List[str] = []

  def fresh(kind, name, n, reason):
    source = f"<{kind}:{name}>"
    src.block(source, reason)
    return [(source, i) for i in range(n)]

  def block_labels(in_labels, reason):
    for lab in in_labels:
      for s in {s for s, _ in lab}:
        src.block(s, reason)

  for t in graph.inputs:
    labels[t] = fresh("input", t, channels(graph.shape(t)), "network input")
  for call in graph.calls:
    in_labels = [labels[t] for t in call.inputs]
    in_widths = [channels(graph.shape(t)) for t in call.inputs]
    n_out = channels(graph.shape(call.outputs[0])) if call.outputs else 1
    rule = RULES.rule_for(call, graph)
    name = call.site
    if isinstance(rule, ProbedRule) and call.key not in probed:
      probed.append(call.key)
    ctx = Ctx(call, graph, tuple(full(w) for w in in_widths))
    role = rule.role_of(ctx) if rule is not None else None
    if rule is None or len(call.outputs) != 1:
      reason = f"{name!r} ({call.kind}) has no rule"
      if any(not s.startswith("<") for lab in in_labels for s, _ in lab):
        skipped[call.key] = reason
      block_labels(in_labels, reason)
      out = fresh("opaque", name, n_out, reason)
    elif role == MERGE:
      aligned = [lab for lab, w in zip(in_labels, in_widths) if w == n_out]
      for lab in aligned[1:]:
        for (s0, i0), (s1, i1) in zip(aligned[0], lab):
          src.union(s0, s1)
          if i0 != i1:
            src.block(s0, f"merge {name!r} aligns different channels of its inputs")
      out = list(aligned[0]) if aligned else fresh("opaque", name, n_out, f"{name!r} broadcasts")
    elif role == PRODUCER:
      widths[call.key] = n_out
      src.find(call.key)
      out = [(call.key, i) for i in range(n_out)]
      if not _accepts(rule, Ctx(call, graph, _partial(in_widths))):
        block_labels(in_labels, f"{name!r} ({call.kind}) needs all its input channels")
      b = rule.balance(ctx)
      if b:
        balance[call.key] = b
      drop = (tuple(i for i in range(n_out) if (i + 1) % b) if b and b > 1 else
              full(n_out - 1) if n_out > 1 else full(1))
      if not _accepts(rule, Ctx(call, graph, ctx.ins, drop)):
        src.block(call.key, f"{name!r} ({call.kind}) cannot drop output channels")
    else:
      where = rule.channel_map(ctx)
      if where is None:
        where = trace(rule, call, graph)
      if where is None:
        reason = f"{name!r} ({call.kind}) needs all its input channels"
        block_labels(in_labels, reason)
        out = fresh("fixed", name, n_out, reason)
      else:
        const = f"<const:{name}>"
        out = [in_labels[w[0]][w[1]] if w is not None else (const, j) for j, w in enumerate(where)]
        if any(w is None for w in where):
          src.block(const, f"{name!r} makes channels of its own")
        for unit in rule.ties(ctx):
          ties.append((name, [in_labels[0][i] for i in unit]))
    for i, t in enumerate(call.outputs):
      labels[t] = out if i == 0 else fresh("opaque", name, channels(graph.shape(t)),
                                           "extra output")
  _unite_shared_calls(graph, labels, src)
  for t in graph.outputs:
    block_labels([labels[t]], "model output")
  groups = _collect(src, widths, balance, ties)
  return GroupReport(tuple(groups), dict(skipped), tuple(probed))


def _unite_shared_calls(graph: Graph, labels, src: _Sources) -> None:
  for key in graph.keys():
    sites = graph.calls_of(key)
    for other in sites[1:]:
      for t0, t1 in zip(sites[0].inputs, other.inputs):
        for (s0, i0), (s1, i1) in zip(labels[t0], labels[t1]):
          src.union(s0, s1)
          if i0 != i1:
            src.block(s0, f"shared layer {key!r} sees different channels at its calls")


def _collect(src: _Sources, widths, balance, ties) -> List[ChannelGroup]:
  members: Dict[str, List[str]] = {}
  for name in widths:                 # insertion order = topological order
    members.setdefault(src.find(name), []).append(name)
  units: Dict[str, List[Tuple[int, ...]]] = {}
  for site, tie in ties:
    roots = {src.find(s) for s, _ in tie}
    if len(roots) != 1:
      for root in roots:
        src.block(root, f"grouped conv {site!r} mixes channels of several groups in one conv "
                  "group")
      continue
    units.setdefault(roots.pop(), []).append(tuple(sorted({i for _, i in tie})))
  blocked: Dict[str, List[str]] = {}
  for source, reasons in src.reasons.items():
    root = src.find(source)
    for r in reasons:
      if r not in blocked.setdefault(root, []):
        blocked[root].append(r)
  groups = []
  for root, names in members.items():
    reasons = list(blocked.get(root, []))
    width = max(widths[n] for n in names)
    if len({widths[n] for n in names}) > 1:
      reasons.append("members have different widths")
    blocks = {balance[n] for n in names if n in balance}
    if len(blocks) > 1 or (blocks and root in units):
      reasons.append("members impose different group structures")
    groups.append(ChannelGroup(tuple(names), width, tuple(reasons),
                               _components(units.get(root, []), width),
                               blocks.pop() if len(blocks) == 1 else None))
  return groups


def _components(ties: Sequence[Tuple[int, ...]], width: int) -> Tuple[Tuple[int, ...], ...]:
  """The index sets tied together (transitively) by `ties`, each untied index alone; () if no
  ties."""
  if not ties:
    return ()
  parent = list(range(width))

  def find(a):
    while parent[a] != a:
      parent[a] = parent[parent[a]]
      a = parent[a]
    return a
  for tie in ties:
    for i in tie[1:]:
      if i < width and tie[0] < width:
        parent[find(i)] = find(tie[0])
  comps: Dict[int, List[int]] = {}
  for i in range(width):
    comps.setdefault(find(i), []).append(i)
  return tuple(tuple(c) for c in sorted(comps.values()))
