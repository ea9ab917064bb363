"""The Keras 3 adapter of the graph view: the only module reading Keras 3 nodes.

Keras 3 records `keras.ops` calls on symbolic tensors (`x + 3`, `keras.ops.multiply(x, y)`) as
nodes of stateless `Operation`s (not layers); they are graph calls like any layer's, keyed by
their names, and reused as they are when the model is rebuilt. Imported only when a Keras 3
object is seen, so tf_keras users never import Keras 3 through the engine.
"""
import keras

from tf_rethink.util.errors import UsageError

NAME = "keras3"
layers = keras.layers
keras = keras   # the adapter's Keras (graph.build makes inputs and models with it)
_Operation = keras.src.ops.operation.Operation   # keras.ops functions record these
_Functional = keras.src.models.functional.Functional


def owns(model) -> bool:
  return type(model).__module__.startswith("keras.")


def check_model(model) -> None:
  if isinstance(model, keras.Sequential):
    if getattr(model, "_functional", None) is None:
      raise UsageError(f"Sequential model {model.name!r} is not built; give it a keras.Input "
                       "first (keras.Sequential([keras.Input(shape), ...]))")
    return
  if not isinstance(model, _Functional):
    raise UsageError(f"{type(model).__name__} {getattr(model, 'name', '')!r} is not a functional "
                     "Keras 3 model; build it with keras.Input and keras.Model(inputs, outputs)")


def _functional(model):
  return model._functional if isinstance(model, keras.Sequential) else model  # pylint: disable=protected-access


# -- reading


def nodes(model):
  by_depth = _functional(model)._nodes_by_depth  # pylint: disable=protected-access
  return [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]]


def is_input_node(node) -> bool:
  return node.is_input


def node_layer(node):
  return node.operation


def node_args(node):
  return (tuple(node.arguments.args), dict(node.arguments.kwargs))


def node_outputs(node):
  return list(node.outputs)


def is_keras_tensor(obj) -> bool:
  return isinstance(obj, keras.KerasTensor)


def nested_graph(layer):
  if isinstance(layer, keras.Sequential):
    return layer if getattr(layer, "_functional", None) is not None else None
  if isinstance(layer, _Functional):
    return layer
  return None


def model_inputs(model):
  return list(keras.tree.flatten(_functional(model).inputs))


def model_outputs(model):
  return list(keras.tree.flatten(_functional(model).outputs))


def shape(kt):
  return tuple(kt.shape)


def dtype(kt) -> str:
  return str(kt.dtype)


def invoke(layer, args, kwargs, training=False):
  if isinstance(layer, keras.layers.Layer) and getattr(layer, "_call_has_training_arg", False):
    kwargs = {**kwargs, "training": training}
  return layer(*args, **kwargs)


# -- building


def is_operation(layer) -> bool:
  """keras.ops operations are stateless: the rebuilt model calls the same object."""
  return isinstance(layer, _Operation) and not isinstance(layer, keras.layers.Layer)


def input_name(kt) -> str:
  return kt._keras_history.operation.name  # pylint: disable=protected-access


def from_config(layer, config):
  return type(layer).from_config(config)
