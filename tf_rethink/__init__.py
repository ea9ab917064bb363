"""tf_rethink: "Rethinking the Value of Network Pruning" (Liu et al., ICLR 2019) in Keras.

Every module of the package imports the Keras it works with explicitly: `import tf_keras as
keras` for the models it builds and trains (tensorflow-model-optimization only works with
tf_keras), and the graph view reads Keras 3 models through `keras` itself. Importing the package
changes nothing for a user's own Keras: it does not set TF_USE_LEGACY_KERAS, so `tf.keras` stays
what TensorFlow makes it (Keras 3 in TensorFlow >= 2.16). The command lines
(`python -m tf_rethink.main`, the tools) train tf_keras models only and set it for their process.

Public API (lazy: `import tf_rethink` itself does not import TensorFlow):
`tf_rethink.prune(model, method="l1_norm", ratio=0.3) -> (small, plan)`,
`tf_rethink.apply_plan(model, plan)`, `tf_rethink.channel_groups(model)` (see `tf_rethink.api`);
`tf_rethink.UsageError`, what every user mistake raises (one line: what was wrong, how to fix it).

Layout: `util/` (TensorFlow-free leaves), `data/`, `models/` (the zoo and its registry),
`pruning/` (the engine and the methods), `train/` (trainer and regimes), `export/`, `run/` (the
command line and one experiment's wiring), `study/` (paper tables, architecture search).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from tf_rethink.util.errors import UsageError  # noqa: E402  (TensorFlow-free)

_API = ("prune", "apply_plan", "channel_groups")


def __getattr__(name):
  """`tf_rethink.prune` etc. import TensorFlow on first use only (`tf_rethink.api`)."""
  if name in _API:
    from tf_rethink import api  # pylint: disable=import-outside-toplevel
    return getattr(api, name)
  raise AttributeError(f"module 'tf_rethink' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_API))
