"""Builds the `Graph` of a model through an adapter (the walk is the same for every Keras), and
the new inputs and models a rebuild makes (`new_input`, `make_model`)."""
from typing import Any, Dict, List

from tf_rethink.pruning.graph.core import Call, Graph, Ref, Tensor, map_structure, refs
from tf_rethink.util.errors import UsageError


def build(model, api) -> Graph:
  """Flattens `model` (nested models in place, one Call per call of a shared layer)."""
  tensors: Dict[int, Tensor] = {}
  calls: List[Call] = []
  keys: Dict[int, str] = {}
  site_counts: Dict[int, int] = {}
  models: Dict[str, Any] = {"": model}

  def new_tensor(kt, producer):
    tid = len(tensors)
    tensors[tid] = Tensor(tid, api.shape(kt), api.dtype(kt), producer)
    return tid

  def walk(m, scope, env):
    for node in api.nodes(m):
      if api.is_input_node(node):
        continue
      layer = api.node_layer(node)
      args = api.node_args(node)
      try:
        recorded = map_structure(lambda a: Ref(env[id(a)]) if api.is_keras_tensor(a) else a, args)
      except KeyError:
        raise UsageError(f"layer {layer.name!r} of model {m.name!r} reads a tensor from outside "
                         "the model; build the model from its own keras.Input") from None
      in_tids = refs(recorded)
      outs = api.node_outputs(node)
      key = keys.setdefault(id(layer), "/".join(scope + (layer.name,)))
      inner = api.nested_graph(layer)
      if inner is not None:
        inner_inputs = api.model_inputs(inner)
        if len(inner_inputs) != len(in_tids):
          raise UsageError(f"nested model {key!r} is called with {len(in_tids)} tensors but has "
                           f"{len(inner_inputs)} inputs; call it with its inputs only")
        models[key] = layer
        inner_env = {id(kt): tid for kt, tid in zip(inner_inputs, in_tids)}
        walk(inner, scope + (layer.name,), inner_env)
        for kt, ikt in zip(outs, api.model_outputs(inner)):
          env[id(kt)] = inner_env[id(ikt)]
        continue
      count = site_counts[id(layer)] = site_counts.get(id(layer), 0) + 1
      index = len(calls)
      out_tids = [new_tensor(kt, index) for kt in outs]
      for kt, tid in zip(outs, out_tids):
        env[id(kt)] = tid
      calls.append(Call(index, layer, key, key if count == 1 else f"{key}#{count}",
                        tuple(in_tids), tuple(out_tids), recorded, scope))

  env: Dict[int, int] = {}
  inputs = []
  for kt in api.model_inputs(model):
    env[id(kt)] = new_tensor(kt, None)
    inputs.append(env[id(kt)])
  walk(model, (), env)
  outputs = [env[id(kt)] for kt in api.model_outputs(model)]
  return Graph(model, api, calls, tensors, inputs, outputs, models)


def new_input(api, shape, dtype, name):
  """A symbolic model input of `api`'s Keras (shape with the batch dimension first)."""
  return api.keras.Input(shape=tuple(shape[1:]), batch_size=shape[0], dtype=dtype, name=name)


def make_model(api, original, inputs, outputs):
  """A model of the original's kind on new tensors (a Sequential stays Sequential)."""
  keras = api.keras
  outputs = outputs if len(outputs) > 1 else outputs[0]
  if isinstance(original, keras.Sequential):
    functional = keras.Model(inputs, outputs)
    seq = keras.Sequential(name=original.name)
    seq.add(keras.Input(shape=tuple(inputs[0].shape[1:]), dtype=inputs[0].dtype,
                        name=api.input_name(api.model_inputs(original)[0])))
    for layer in functional.layers[1:]:
      seq.add(layer)
    return seq
  return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=original.name)
