"""Which channels of every tensor survive a plan, and each call's cut (`propagate`).

A plan names the kept OUTPUT channels of producer layers (convs, dense). Every other tensor's
kept channels follow from the graph, call by call in topological order, through each layer's
rule (`rules`): a BN or ReLU passes its input's channels on, the next conv drops the matching
input rows, a merge needs all its inputs to keep the same channels, a concatenation offsets
them. A shared layer is cut once, so all its calls must see the same channels.
"""
import dataclasses
from typing import Dict, Mapping, Tuple

from tf_rethink.pruning.graph import Call, Graph
from tf_rethink.pruning.rules import PRODUCER, RULES, Ctx, Cut, Idx, channels, full
from tf_rethink.util.errors import UsageError


@dataclasses.dataclass(frozen=True)
class CallChannels:
  """Kept channels around one call, and its rule's cut."""
  call: Call
  ins: Tuple[Idx, ...]
  cut: Cut
  in_widths: Tuple[int, ...]
  out_width: int

  @property
  def changed(self) -> bool:
    """True when the call loses input or output channels."""
    return (self.cut.out != full(self.out_width) or
            any(i != full(w) for i, w in zip(self.ins, self.in_widths)))


@dataclasses.dataclass(frozen=True)
class Propagation:
  """`propagate`'s result: per call site its channels, per tensor id its kept channels."""
  calls: Mapping[str, CallChannels]
  tensors: Mapping[int, Idx]

  def layer_cut(self, key: str, graph: Graph) -> CallChannels:
    """The channels of a layer's first call (all its calls agree, `propagate` checks)."""
    return self.calls[graph.calls_of(key)[0].site]


def validate_keep(graph: Graph, keep: Mapping[str, Idx]) -> None:
  """Plan keys are producer layers of `graph`, with in-range, non-empty channel indices."""
  unknown = sorted(set(keep) - set(graph.keys()))
  if unknown:
    shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    raise UsageError(f"the plan names layers that model {graph.model.name!r} does not have: "
                     f"{shown}; was the plan made for another model?")
  for key in sorted(keep):
    call = graph.calls_of(key)[0]
    rule = RULES.rule_for(call, graph)
    ctx = Ctx(call, graph, tuple(full(channels(graph.shape(t))) for t in call.inputs))
    if rule is None or rule.role_of(ctx) != PRODUCER:
      raise UsageError(f"the plan prunes layer {key!r} ({call.kind}), which makes no channels of "
                       "its own; a plan names convolutions or dense layers only")
    n = channels(graph.shape(call.outputs[0]))
    idx = keep[key]
    bad = [i for i in idx if not 0 <= int(i) < n]
    if bad:
      raise UsageError(f"the plan keeps channel(s) {bad[:5]} of layer {key!r}, which has only "
                       f"{n} channels (valid: 0..{n - 1})")
    if not idx:
      raise UsageError(f"the plan keeps no channel of layer {key!r}; keep at least one")


def propagate(graph: Graph, keep: Mapping[str, Idx]) -> Propagation:
  """Kept channels of every call's inputs and outputs under `keep`, in topological order.

  Raises:
    UsageError: unknown layers, out-of-range indices, a merge whose inputs keep different
      channels, pruned channels reaching a layer without a rule, a shared layer whose calls would
      need different cuts, or a pruned model output.
  """
  validate_keep(graph, keep)
  kept: Dict[int, Idx] = {t: full(channels(graph.shape(t))) for t in graph.inputs}
  result: Dict[str, CallChannels] = {}
  for call in graph.calls:
    ins = tuple(kept[t] for t in call.inputs)
    in_widths = tuple(channels(graph.shape(t)) for t in call.inputs)
    out_width = channels(graph.shape(call.outputs[0])) if call.outputs else 0
    rule = RULES.rule_for(call, graph)
    all_in = all(i == full(w) for i, w in zip(ins, in_widths))
    if rule is None or len(call.outputs) != 1:
      if not all_in:
        raise UsageError(f"pruned channels reach layer {call.site!r} ({call.kind}), which the "
                         "rule book has no rule for; register one (tf_rethink.pruning.rules."
                         "RULES.register) or leave the channels feeding it unpruned")
      cut = Cut(out=full(out_width))
    else:
      ctx = Ctx(call, graph, ins, keep.get(call.key))
      cut = rule.cut(ctx)
    for i, t in enumerate(call.outputs):
      kept[t] = cut.out if i == 0 else full(channels(graph.shape(t)))
    result[call.site] = CallChannels(call, ins, cut, in_widths, out_width)
  _check_shared(graph, result)
  for t in graph.outputs:
    if kept[t] != full(channels(graph.shape(t))):
      producer = graph.producer(t)
      raise UsageError(f"the plan prunes the model output (through layer "
                       f"{producer.site if producer else '?'!r}); the output width is fixed, "
                       "leave the layers feeding it unpruned")
  return Propagation(result, kept)


def _check_shared(graph: Graph, result: Mapping[str, CallChannels]) -> None:
  for key in graph.keys():
    sites = graph.calls_of(key)
    if len(sites) < 2:
      continue
    first = result[sites[0].site]
    for other in sites[1:]:
      cc = result[other.site]
      if cc.ins != first.ins or cc.cut.out != first.cut.out:
        raise UsageError(f"shared layer {key!r} would keep different channels at its calls "
                         f"{sites[0].site!r} and {other.site!r}; prune what feeds its calls "
                         "identically")
