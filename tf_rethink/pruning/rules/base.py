"""The rule book's vocabulary: what a rule sees of a call (`Ctx`), what it answers (`Cut`, `Cost`),
and the `Rule` base class.

A rule describes one layer type, for tf_keras and Keras 3 alike (it reads only the layer's config,
weights and the call's static shapes and constant arguments):
* how channels flow through it: its role (`PRODUCER`: makes new output channels, e.g. conv,
  dense, and may appear in a plan; `MERGE`: an elementwise op of several same-width tensors,
  whose inputs are one channel; `MAP`: every output channel comes from one input channel, e.g.
  BN, pooling, concatenation, depthwise conv, flatten) and its `cut` (the kept output channels
  given the kept input channels);
* how to cut it: `Cut.config` (the smaller layer's config changes), `Cut.weights` (the full
  weights -> the smaller layer's), `Cut.args` (the call's constant arguments, e.g. a per-channel
  constant of `x * c`);
* what it costs: `cost` (FLOPs in the reference's convention A, MACs) and `parameters`.
A `cut` that raises means "cannot be cut this way" (e.g. a softmax over channels losing some):
the channel analysis then leaves the channels feeding it unpruned.
"""
import dataclasses
import functools
import math
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tf_rethink.util.errors import UsageError

Idx = Tuple[int, ...]
PRODUCER, MERGE, MAP = "producer", "merge", "map"


def full(n) -> Idx:
  """All channel indices of an n-channel tensor."""
  return tuple(range(int(n)))


def expand(ins: Sequence[int], multiplier: int) -> Idx:
  """Channel i of a depthwise input -> its `multiplier` outputs i*m .. i*m+m-1."""
  return tuple(int(i) * multiplier + j for i in ins for j in range(multiplier))


def prod(values) -> int:
  return int(math.prod(int(v) for v in values))


def take(array, indices, axis=-1) -> np.ndarray:
  return np.take(np.asarray(array), np.asarray(indices, dtype=np.int64), axis=axis)


def slice_channel_vector(value, ins, n):
  """A constant broadcast against an n-channel tensor, restricted to channels `ins` (scalars
  and constants of one channel are returned as they are)."""
  if np.ndim(value) and np.shape(value)[-1] == n and n > 1:
    return take(value, ins)
  return value


@dataclasses.dataclass(frozen=True)
class Ctx:
  """What a rule sees of one call.

  Attributes:
    call: the graph call (layer, recorded arguments, tensor ids).
    graph: the graph it belongs to (shapes of every tensor).
    ins: kept channels (last axis) of each tensor input, in argument order.
    keep: the plan's kept output channels of this layer (producers only), or None: all.
  """
  call: object
  graph: object
  ins: Tuple[Idx, ...]
  keep: Optional[Idx] = None

  @property
  def layer(self):
    return self.call.layer

  @functools.cached_property
  def config(self) -> dict:
    return self.call.layer.get_config() if hasattr(self.call.layer, "get_config") else {}

  @property
  def in_shapes(self) -> List[tuple]:
    return [self.graph.shape(t) for t in self.call.inputs]

  @property
  def out_shapes(self) -> List[tuple]:
    return [self.graph.shape(t) for t in self.call.outputs]

  @property
  def out_shape(self) -> tuple:
    return self.out_shapes[0]

  @property
  def n_in(self) -> int:
    return channels(self.in_shapes[0])

  @property
  def n_out(self) -> int:
    return channels(self.out_shape)

  @property
  def full_out(self) -> Idx:
    return full(self.n_out)

  def inputs_full(self) -> bool:
    return all(i == full(channels(s)) for i, s in zip(self.ins, self.in_shapes))

  def describe(self) -> str:
    return f"{self.call.site!r} ({self.call.kind})"

  def refuse(self, why: str):
    """Raises the UsageError a rule raises when it cannot be cut as asked."""
    raise UsageError(f"{self.describe()} {why}")


def channels(shape) -> int:
  """The channel count (last axis) of a static shape; 1 for scalars."""
  return int(shape[-1]) if len(shape) and shape[-1] is not None else 1


@dataclasses.dataclass(frozen=True)
class Cut:
  """A rule's answer for one call: kept output channels and how to make the smaller layer."""
  out: Idx
  config: Mapping = dataclasses.field(default_factory=dict)
  weights: Optional[Callable[[list], list]] = None
  args: Optional[Callable[[tuple], tuple]] = None   # recorded (args, kwargs) -> new ones


@dataclasses.dataclass(frozen=True)
class Cost:
  """FLOPs (convention A: multiplies and adds) and MACs (multiply-accumulates of convs/dense)."""
  flops: int = 0
  macs: int = 0


class Rule:
  """One layer type (subclasses override what differs from a weightless channel-wise map)."""
  role = MAP
  # Output channel i is an elementwise/spatial function of input channel i alone (BN, activations,
  # pooling, padding, dropout): ThiNet/regression find a layer's consumer through these.
  pointwise = False
  counted = True    # False: the FLOPs counter names the type as not counted

  def role_of(self, c: Ctx) -> str:
    del c
    return self.role

  def cut(self, c: Ctx) -> Cut:
    """Default: a single-input layer whose output channels are its input channels."""
    return Cut(out=c.ins[0])

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del c, sparse
    return Cost()

  def parameters(self, layer) -> list:
    """The layer's variables that are parameters of the network (PyTorch `parameters()`)."""
    return list(getattr(layer, "weights", ()))   # keras.ops operations have none

  def zero_parameters(self, layer) -> int:
    """Convention B: the layer's zero weights that do not count as parameters (conv kernels)."""
    del layer
    return 0

  def channel_map(self, c: Ctx) -> Optional[List[Optional[Tuple[int, int]]]]:
    """MAP rules: for each output channel the (input, channel) it comes from, when the map
    cannot be read off `cut` (a cut that only accepts whole groups); None: trace `cut`."""
    del c
    return None

  def ties(self, c: Ctx) -> Sequence[Idx]:
    """Groups of input-channel positions (of input 0) that must be kept or removed together."""
    del c
    return ()

  def balance(self, c: Ctx) -> Optional[int]:
    """Producers: the output channels come in blocks of this size that must keep equally many."""
    del c
    return None

  def kernel(self, layer) -> Optional[np.ndarray]:
    """Producers: the kernel with output channels on the last axis (criteria score it)."""
    del layer
    return None

  def fold(self, layer, weights: list, scale: np.ndarray, shift: np.ndarray) -> Optional[list]:
    """Producers: weights computing scale * y + shift per output channel (BN folding), or None."""
    del layer, weights, scale, shift
    return None

  def masked_call(self, c: Ctx, args: tuple, kwargs: dict, masks: Sequence):
    """The call in the masked full-size model (`masking`), for layers whose kept outputs depend
    on the removed channels' values (normalizations over channels); None: the plain call."""
    del c, args, kwargs, masks
    return None


class Pointwise(Rule):
  """Channel-wise layers without channel-sized weights: output channels = input channels."""
  pointwise = True


class Free(Pointwise):
  """Channel-wise layers that convention A does not count (padding, dropout, identity...)."""


def elementwise_cost(c: Ctx, per_element: int = 1) -> Cost:
  """`per_element` FLOPs for every output element (batch excluded)."""
  return Cost(flops=per_element * prod(c.out_shape[1:]))
