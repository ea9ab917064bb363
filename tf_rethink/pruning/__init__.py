"""Structured and unstructured pruning: the engine and the methods.

The engine, in layers: `graph` (the one graph view of a Keras model), `rules` (the rule book: per
layer type how channels flow, how to cut it, what it costs), `groups` (channel dependency
groups), `channels` (propagating a plan's kept channels), `surgery` (rebuilding smaller models),
`masking` (the masked full-size reference), `plan` (the plan protocol), `scores` / `select`
(criteria and selection), `sampling` / `data_driven` (activation statistics, least squares),
`blocks` (residual blocks), `weight_masks` (TF-MOT fixed masks). The methods live in `methods/`,
one module each, registered in `METHODS`.

Lazy: importing this package imports nothing else (rule modules of the zoo import `rules`).
"""
_LAZY = {"METHODS": ("tf_rethink.pruning.methods", "METHODS"),
         "Option": ("tf_rethink.pruning.methods", "Option"),
         "Pruner": ("tf_rethink.pruning.methods", "Pruner"),
         "Plan": ("tf_rethink.pruning.plan", "Plan"),
         "PrunePlan": ("tf_rethink.pruning.plan", "Plan")}


def __getattr__(name):
  if name in _LAZY:
    import importlib  # pylint: disable=import-outside-toplevel
    module, attr = _LAZY[name]
    return getattr(importlib.import_module(module), attr)
  raise AttributeError(f"module 'tf_rethink.pruning' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_LAZY))
