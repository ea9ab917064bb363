"""Model surgery: `rebuild` a model with edited layers, and `shrink` it to a plan's channels.

`rebuild(model, edits)` makes a new model of the same kind (functional stays functional,
Sequential stays Sequential, nested models are rebuilt as nested models, a shared layer stays one
shared layer) in which each layer named in `edits` (by its key, `outer/inner` inside nested
models) gets a new config, is replaced, is bypassed, or gets a layer in front of it; every other
layer is a fresh copy from its config. Weights are copied (sliced where an edit says so) unless
`copy_weights=False` (every layer keeps its fresh initialization: Scratch-E/B). Every model
rewrite of the package goes through it: channel surgery, block removal (Sparse Structure
Selection), sparsity regularizers (Network Slimming), TF-MOT mask wrappers, BN folding, float32
copies, counting at another input size.

`shrink(model, keep)` is the channel surgery of the reference scripts
(`cifar/l1-norm-pruning/vggprune.py`, `res56prune.py`): the kept output filters of each pruned
layer, the matching input channels of the layers after it, the kept entries of per-channel
layers (BN gamma, beta, moving statistics), the kept input rows of the first dense layer; each
layer's rule (`rules`) says how. Layer names and every other setting stay.
"""
import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from tf_rethink.util.errors import UsageError
from tf_rethink.pruning.channels import propagate
from tf_rethink.pruning.graph import Ref, adapter_of, fill, flatten, map_structure, view
from tf_rethink.pruning.graph.build import make_model, new_input


@dataclasses.dataclass(frozen=True)
class Edit:
  """How one layer changes in `rebuild`.

  Attributes:
    config: updates to the layer's config (the new layer is built from the updated config).
    make: (old layer, config) -> the new layer, instead of the layer's class from_config (a
      wrapper, another type).
    weights: old weights -> the new layer's weights (default: the old ones, when copying).
    assign: (new layer, old layer) -> None, for weight transfers `weights` cannot express.
    args: recorded (args, kwargs) -> new ones (tensors appear as `Ref`s; e.g. sliced constants).
    bypass: the call returns its k-th tensor argument instead (the layer is removed).
    before: () -> a new layer applied to the call's first tensor argument first.
  """
  config: Mapping = dataclasses.field(default_factory=dict)
  make: Optional[Callable[[Any, dict], Any]] = None
  weights: Optional[Callable[[list], list]] = None
  assign: Optional[Callable[[Any, Any], None]] = None
  args: Optional[Callable[[tuple], tuple]] = None
  bypass: Optional[int] = None
  before: Optional[Callable[[], Any]] = None


def rebuild(model, edits: Optional[Mapping[str, Edit]] = None, *, copy_weights: bool = True,
            input_shapes: Optional[Sequence[tuple]] = None):
  """See the module docstring. `input_shapes`: new shapes (batch first) of the model inputs."""
  api = adapter_of(model)
  api.check_model(model)
  edits = dict(edits or {})
  new_layers: Dict[int, Any] = {}        # id(old layer) -> its new layer
  transfers: list = []                    # (new layer, old layer, edit), once per layer
  new_models: Dict[int, Any] = {}

  def build_level(m, scope, shapes):
    inputs = []
    env: Dict[int, Any] = {}
    for kt, shape in zip(api.model_inputs(m), shapes):
      x = new_input(api, shape, api.dtype(kt), api.input_name(kt))
      env[id(kt)] = x
      inputs.append(x)
    for node in api.nodes(m):
      if api.is_input_node(node):
        continue
      layer = api.node_layer(node)
      key = "/".join(scope + (layer.name,))
      recorded = map_structure(lambda a: Ref(id(a)) if api.is_keras_tensor(a) else a,
                               api.node_args(node))
      inner = api.nested_graph(layer)
      edit = edits.get(key, Edit())
      if inner is not None:
        if id(layer) not in new_models:
          tensors = [env[r.tensor] for r in flatten(recorded) if isinstance(r, Ref)]
          new_models[id(layer)] = build_level(inner, scope + (layer.name,),
                                              [api.shape(t) for t in tensors])
        args, kwargs = fill(recorded, env)
        out = new_models[id(layer)](*args, **kwargs)
      elif edit.bypass is not None:
        out = env[[r for r in flatten(recorded) if isinstance(r, Ref)][edit.bypass].tensor]
      else:
        if edit.args is not None:
          recorded = edit.args(recorded)
        if edit.before is not None:
          first = [r for r in flatten(recorded) if isinstance(r, Ref)][0].tensor
          env = {**env, first: edit.before()(env[first])}
        if id(layer) not in new_layers:
          new_layers[id(layer)] = _new_layer(api, layer, edit)
          transfers.append((new_layers[id(layer)], layer, edit))
        args, kwargs = fill(recorded, env)
        out = new_layers[id(layer)](*args, **kwargs)
      for old, new in zip(api.node_outputs(node), flatten(out)):
        env[id(old)] = new
    return make_model(api, m, inputs, [env[id(kt)] for kt in api.model_outputs(m)])

  shapes = input_shapes or [api.shape(kt) for kt in api.model_inputs(model)]
  new_model = build_level(model, (), [tuple(s) for s in shapes])
  for new, old, edit in transfers:
    if new is old:
      continue
    if edit.assign is not None:
      edit.assign(new, old)
    elif copy_weights and getattr(old, "weights", None):
      weights = old.get_weights()
      new.set_weights(edit.weights(weights) if edit.weights is not None else weights)
  return new_model


def _new_layer(api, layer, edit: Edit):
  if api.is_operation(layer) and edit.make is None and not edit.config:
    return layer      # a stateless keras.ops operation: called again on the new tensors
  config = {**layer.get_config(), **edit.config}
  if edit.make is not None:
    return edit.make(layer, config)
  try:
    return api.from_config(layer, config)
  except Exception as e:  # pylint: disable=broad-except
    if not edit.config and not getattr(layer, "weights", None):
      # A weightless layer that will not rebuild from its config (a Keras 3 `Lambda` of a Python
      # lambda, refused by safe deserialization): the same layer is called on the new tensors.
      return layer
    raise UsageError(f"layer {layer.name!r} ({type(layer).__name__}) cannot be rebuilt from its "
                     f"config ({type(e).__name__}: {str(e).splitlines()[0][:160]}); give it a "
                     f"get_config/from_config pair, or leave its channels unpruned") from None


def shrink(model, keep: Mapping[str, Sequence[int]], *, copy_weights: bool = True):
  """The physically smaller model keeping, per producer layer key, the output channels `keep`.

  Raises:
    UsageError: the plan does not fit the model (`channels.propagate`).
  """
  graph = view(model)
  prop = propagate(graph, {k: tuple(int(i) for i in v) for k, v in keep.items()})
  edits = {}
  for key in graph.keys():
    cc = prop.layer_cut(key, graph)
    if cc.changed:
      edits[key] = Edit(config=cc.cut.config, weights=cc.cut.weights, args=cc.cut.args)
  return rebuild(model, edits, copy_weights=copy_weights)
