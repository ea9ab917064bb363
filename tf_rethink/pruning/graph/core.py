"""The graph the engine works on: every call of every layer of a Keras model, in order.

A `Graph` is built once per model by `view(model)` (an adapter per Keras: `keras2.py` for
tf_keras, `keras3.py` for Keras 3; they are the only code that reads Keras node internals):

* nested functional / Sequential models are flattened: their layers' calls appear in place,
  keyed `outer/inner`;
* each call of a shared layer is its own `Call` (sites `key`, `key#2`, ...) with its own tensors;
* every tensor has an id, a static shape (batch first) and one producer; `consumers(t)` lists the
  calls reading it;
* the order of `calls` is topological and structural (Keras orders nodes by depth, then by the
  order in which a walk from the outputs reaches them): two instances of one architecture built
  by the same code list their calls in the same order whatever Keras named their layers, which is
  what plan matching by position relies on (`signature`).

`run` evaluates the graph call by call (an interpreter over `calls`), so any intermediate tensor
of any call site, inside nested models too, can be fetched.
"""
import dataclasses
import hashlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

Shape = Tuple[Optional[int], ...]


@dataclasses.dataclass(frozen=True)
class Ref:
  """Stands for a graph tensor inside a call's recorded arguments."""
  tensor: int


@dataclasses.dataclass(frozen=True)
class Tensor:
  """A tensor of the graph: static shape with the batch dimension first, its producing call."""
  id: int
  shape: Shape
  dtype: str
  producer: Optional[int]      # index of the producing Call; None for a model input


@dataclasses.dataclass(frozen=True, eq=False)
class Call:
  """One call of one layer (or Keras 3 operation).

  Attributes:
    index: position in `Graph.calls`.
    layer: the Keras layer / operation object.
    key: the layer's key, unique per layer object: its name, prefixed by the names of the nested
      models around it (`block/conv`). Plans name layers by key.
    site: unique per call: the key, with `#k` for the k-th call (k >= 2) of a shared layer.
    inputs: ids of the tensor arguments, in argument order (nested structures flattened).
    outputs: ids of the outputs, flattened.
    args: (args, kwargs) as called, tensor arguments replaced by `Ref`s.
    scope: the nested models around the call, outermost first (their keys).
  """
  index: int
  layer: Any
  key: str
  site: str
  inputs: Tuple[int, ...]
  outputs: Tuple[int, ...]
  args: Tuple[tuple, dict]
  scope: Tuple[str, ...] = ()

  @property
  def kind(self) -> str:
    return type(self.layer).__name__


class Graph:
  """The flattened call graph of a model (see the module docstring)."""

  def __init__(self, model, api, calls: Sequence[Call], tensors: Mapping[int, Tensor],
               inputs: Sequence[int], outputs: Sequence[int], models: Mapping[str, Any]):
    self.model = model
    self.api = api                      # the adapter (keras2 / keras3)
    self.calls: List[Call] = list(calls)
    self.tensors: Dict[int, Tensor] = dict(tensors)
    self.inputs: List[int] = list(inputs)
    self.outputs: List[int] = list(outputs)
    self.models: Dict[str, Any] = dict(models)     # key -> nested model object ("" = the model)
    self._consumers: Dict[int, List[Call]] = {t: [] for t in self.tensors}
    self._layers: Dict[str, Any] = {}
    self._sites: Dict[str, List[Call]] = {}
    for call in self.calls:
      for t in dict.fromkeys(call.inputs):
        self._consumers[t].append(call)
      self._layers.setdefault(call.key, call.layer)
      self._sites.setdefault(call.key, []).append(call)

  # -- lookups
  def shape(self, tensor: int) -> Shape:
    return self.tensors[tensor].shape

  def producer(self, tensor: int) -> Optional[Call]:
    index = self.tensors[tensor].producer
    return None if index is None else self.calls[index]

  def consumers(self, tensor: int) -> List[Call]:
    return list(self._consumers.get(tensor, ()))

  def layer(self, key: str):
    """The layer object of `key`; KeyError listing close keys when unknown."""
    try:
      return self._layers[key]
    except KeyError:
      raise KeyError(f"model {self.model.name!r} has no layer {key!r}") from None

  def keys(self) -> List[str]:
    """Every layer key, in the order of their first call."""
    return list(self._layers)

  def calls_of(self, key: str) -> List[Call]:
    return list(self._sites.get(key, ()))

  def is_output(self, tensor: int) -> bool:
    return tensor in self.outputs

  # -- matching by position
  def signature(self) -> str:
    """A hash of the architecture that ignores layer names and the input size: per call, the
    layer's class, the rank and channel count of its outputs and the positions of the calls
    producing its inputs."""
    h = hashlib.sha256()
    for call in self.calls:
      parents = [self.tensors[t].producer for t in call.inputs]
      outs = [(len(self.tensors[t].shape), self.tensors[t].shape[-1:]) for t in call.outputs]
      h.update(repr((call.kind, outs, parents)).encode())
    return h.hexdigest()[:20]

  def positions(self) -> Dict[str, int]:
    """Layer key -> index of its first call."""
    return {key: sites[0].index for key, sites in self._sites.items()}

  # -- evaluation
  def run(self, inputs: Sequence[Any], fetch: Optional[Sequence[int]] = None,
          call_fn: Optional[Callable[[Call, tuple, dict], Any]] = None,
          training: bool = False) -> List[Any]:
    """Evaluates the graph on `inputs` (one value per model input) call by call.

    Args:
      fetch: tensor ids to return (default: the model outputs).
      call_fn: (call, args, kwargs) -> outputs, replacing the plain layer call (e.g. masked
        evaluation); None calls the layer.
      training: the `training` argument of layer calls.
    Returns the fetched values, in order; with `fetch`, only the calls they depend on run.
    """
    values: Dict[int, Any] = dict(zip(self.inputs, inputs))
    needed = self._needed(fetch) if fetch is not None else None
    for call in self.calls:
      if needed is not None and call.index not in needed:
        continue
      args, kwargs = fill(call.args, values)
      if call_fn is not None:
        out = call_fn(call, args, kwargs)
      else:
        out = self.api.invoke(call.layer, args, kwargs, training)
      for t, v in zip(call.outputs, flatten(out)):
        values[t] = v
    return [values[t] for t in (fetch if fetch is not None else self.outputs)]


  def _needed(self, fetch: Sequence[int]) -> set:
    """Indices of the calls the tensors `fetch` depend on."""
    needed, stack = set(), list(fetch)
    while stack:
      call = self.producer(stack.pop())
      if call is not None and call.index not in needed:
        needed.add(call.index)
        stack.extend(call.inputs)
    return needed


# ----------------------------------------------------------------------------- nested structures


def map_structure(fn: Callable[[Any], Any], obj):
  """`fn` applied to every leaf of nested lists / tuples / dicts (structure kept)."""
  if isinstance(obj, (list, tuple)) and not _is_namedtuple(obj):
    mapped = [map_structure(fn, o) for o in obj]
    return type(obj)(mapped) if isinstance(obj, tuple) else mapped
  if isinstance(obj, dict):
    return {k: map_structure(fn, v) for k, v in obj.items()}
  return fn(obj)


def flatten(obj) -> List[Any]:
  """The leaves of nested lists / tuples / dicts, in order."""
  out: List[Any] = []
  map_structure(out.append, obj)
  return out


def refs(args) -> List[int]:
  """The tensor ids of the `Ref`s in recorded arguments, in order."""
  return [leaf.tensor for leaf in flatten(args) if isinstance(leaf, Ref)]


def constants(args) -> List[Any]:
  """The non-tensor leaves of recorded arguments (scalars, arrays, options), in order."""
  return [leaf for leaf in flatten(args) if not isinstance(leaf, Ref)]


def fill(args: Tuple[tuple, dict], values: Mapping[int, Any]) -> Tuple[tuple, dict]:
  """Recorded (args, kwargs) with every `Ref` replaced by its value."""
  return map_structure(lambda a: values[a.tensor] if isinstance(a, Ref) else a, args)


def _is_namedtuple(obj) -> bool:
  return isinstance(obj, tuple) and hasattr(obj, "_fields")
