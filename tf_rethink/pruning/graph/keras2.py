"""The tf_keras (Keras 2) adapter of the graph view: the only module reading tf_keras nodes."""
import tf_rethink  # noqa: F401
import tf_keras as keras

from tf_rethink.util.errors import UsageError

NAME = "tf_keras"
layers = keras.layers
keras = keras   # the adapter's Keras (graph.build makes inputs and models with it)


def owns(model) -> bool:
  """True for tf_keras objects."""
  return type(model).__module__.startswith("tf_keras")


def check_model(model) -> None:
  if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
    raise UsageError(f"{type(model).__name__} {getattr(model, 'name', '')!r} is not a functional "
                     "tf_keras model; build it with keras.Input and keras.Model(inputs, outputs) "
                     "(a Sequential model needs an Input first)")


# -- reading


def nodes(model):
  by_depth = model._nodes_by_depth  # pylint: disable=protected-access
  return [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]]


def is_input_node(node) -> bool:
  return node.is_input


def node_layer(node):
  return node.layer


def node_args(node):
  return (tuple(node.call_args), dict(node.call_kwargs))


def node_outputs(node):
  out = node.outputs
  return list(out) if isinstance(out, (list, tuple)) else [out]


def is_keras_tensor(obj) -> bool:
  return keras.backend.is_keras_tensor(obj) if hasattr(obj, "_keras_history") else False


def nested_graph(layer):
  """The functional model to walk through for a nested model; None for any other layer."""
  if isinstance(layer, keras.Model) and getattr(layer, "_is_graph_network", False):
    return layer
  return None


def model_inputs(model):
  return list(model.inputs)


def model_outputs(model):
  return list(model.outputs)


def shape(kt):
  return tuple(kt.shape.as_list()) if kt.shape.rank is not None else ()


def dtype(kt) -> str:
  return kt.dtype.name if hasattr(kt.dtype, "name") else str(kt.dtype)


def invoke(layer, args, kwargs, training=False):
  """Calls `layer` as recorded, in inference or training mode where it takes the argument."""
  if getattr(layer, "_expects_training_arg", False):
    kwargs = {**kwargs, "training": training}
  return layer(*args, **kwargs)


# -- building


def is_operation(layer) -> bool:
  """Stateless graph operations reused as they are when rebuilding (none in tf_keras: its
  TFOpLambda layers are rebuilt from their config)."""
  del layer
  return False


def input_name(kt) -> str:
  return kt._keras_history.layer.name  # pylint: disable=protected-access


def from_config(layer, config):
  return type(layer).from_config(config)
