"""The one graph view of a Keras model (`view`): see `core` for what it holds.

`view(model)` picks the adapter by the model's Keras (tf_keras or Keras 3), checks that it is a
functional (or built Sequential) model, and flattens it. No other module of the package reads
Keras node internals.
"""
from tf_rethink.pruning.graph.build import build
from tf_rethink.pruning.graph.core import (Call, Graph, Ref, Tensor, constants, fill, flatten,
                                           map_structure, refs)
from tf_rethink.util.errors import UsageError


def adapter_of(obj):
  """The adapter module (`keras2` or `keras3`) of a Keras model, layer or operation."""
  import sys  # pylint: disable=import-outside-toplevel
  import tf_keras  # pylint: disable=import-outside-toplevel
  if isinstance(obj, tf_keras.layers.Layer):
    from tf_rethink.pruning.graph import keras2  # pylint: disable=import-outside-toplevel
    return keras2
  keras3 = sys.modules.get("keras")   # only a user of Keras 3 has it imported
  if keras3 is not None and isinstance(obj, keras3.src.ops.operation.Operation):
    from tf_rethink.pruning.graph import keras3 as adapter  # pylint: disable=import-outside-toplevel
    return adapter
  raise UsageError(f"expected a Keras model (tf_keras or Keras 3), got {type(obj).__name__}")


def require_tf_keras(model, what: str) -> None:
  """One line for a Keras 3 model given to something built on tf_keras (TF-MOT, the regimes)."""
  if adapter_of(model).NAME != "tf_keras":
    raise UsageError(f"{what} needs a tf_keras model (TF-MOT and the paper's training regimes do "
                     "not support Keras 3); rebuild the model with tf_keras (import tf_keras as "
                     "keras), or prune it with the structured API (tf_rethink.prune with "
                     "l1_norm, thinet or regression)")


def view(model) -> Graph:
  """The flattened call graph of a functional / built Sequential Keras model."""
  api = adapter_of(model)
  api.check_model(model)
  return build(model, api)


__all__ = ["Call", "Graph", "Ref", "Tensor", "adapter_of", "require_tf_keras", "constants", "fill", "flatten",
           "map_structure", "refs", "view"]
