"""Residual blocks as graph structure: finding them and removing them (Sparse Structure Selection).

A residual block is an `Add` layer keyed `<block>_add` with two inputs, the branch first and the
shortcut second (the zoo's ResNets). Removing a block makes the add's output its shortcut (the
identity, an option-A shortcut, or a projection conv + BN, which stays, as in the reference's
"b = False" stages); the ReLU after the add stays, so a block whose branch outputs zero (its SSS
scale is 0) is removed exactly.
"""
from typing import Dict, Mapping, Sequence

from tf_rethink.pruning.graph import Graph
from tf_rethink.pruning.surgery import Edit
from tf_rethink.util.errors import UsageError

SUFFIX = "_add"


def residual_adds(graph: Graph) -> Dict[str, str]:
  """Block name -> the key of its `<block>_add` layer (two inputs: branch, shortcut), in order."""
  out = {}
  for call in graph.calls:
    if (call.kind == "Add" and call.key.endswith(SUFFIX) and len(call.inputs) == 2
        and call.key not in out.values()):
      out[call.key[:-len(SUFFIX)]] = call.key
  return out


def block_edits(graph: Graph, drop: Sequence[str] = ()) -> Mapping[str, Edit]:
  """`surgery.rebuild` edits that remove the blocks in `drop` (the add returns its shortcut)."""
  adds = residual_adds(graph)
  unknown = sorted(set(drop) - set(adds))
  if unknown:
    raise UsageError(f"model {graph.model.name!r} has no residual block(s) {unknown[:5]}; its "
                     f"blocks: {', '.join(list(adds)[:5])}{', ...' if len(adds) > 5 else ''}")
  return {adds[b]: Edit(bypass=1) for b in drop}
