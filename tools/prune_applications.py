r"""Prunes every keras.applications family with L1-norm (coupled groups too) and prints the table of
models proven: params and FLOPs before / after, the conv / dense layers pruned, channel groups
pruned / left unpruned (and why), prune seconds. Random weights (weights=None, built offline,
`study.applications.random_weights`).

  python tools/prune_applications.py                       # tf_keras, every model, ratio 0.3
  python tools/prune_applications.py --keras=3 --models=ResNet50,ConvNeXtTiny
  python tools/prune_applications.py --json=apps.json

Each model is also checked to compute, shrunk, what its masked original computes (max abs
difference printed); the tests assert it (tests/pruning/test_applications.py, test_keras3.py).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

flags.DEFINE_list("models", [], "Models to prune (default: all of tf_rethink.study.applications).")
flags.DEFINE_enum("keras", "2", ["2", "3"], "tf_keras (2) or Keras 3 (3) versions of the models.")
flags.DEFINE_float("ratio", 0.3, "Fraction of channels removed per channel group.")
flags.DEFINE_string("json", None, "Also write the rows here.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  import numpy as np  # pylint: disable=import-outside-toplevel
  from tf_rethink.util import quiet  # pylint: disable=import-outside-toplevel
  quiet.import_tensorflow()
  import tf_rethink  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  if FLAGS.keras == "3":
    import keras  # pylint: disable=import-outside-toplevel
  else:
    import tf_keras as keras  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning import masking  # pylint: disable=import-outside-toplevel
  from tf_rethink.study import applications  # pylint: disable=import-outside-toplevel
  names = FLAGS.models or applications.names(keras)
  unknown = sorted(set(names) - set(applications.names(keras)))
  if unknown:
    raise app.UsageError(f"unknown --models {unknown}; choose from {applications.names(keras)}")
  rows, out = [], []
  for name in names:
    model = applications.random_weights(applications.build(name, keras=keras))
    row, small, plan = applications.check(model, name, FLAGS.ratio)
    x = applications.sample(model)
    diff = float(np.abs(np.asarray(small(x, training=False)) -
                        masking.masked_outputs(model, plan.keep, x)[0]).max())
    rows.append(row)
    out.append({**row.__dict__, "max_abs_diff_vs_masked": diff})
    print(f"{name}: params {row.params[0]:,} -> {row.params[1]:,}, FLOPs {row.flops[0]:,} -> "
          f"{row.flops[1]:,}, {row.layers_pruned}/{row.layers} layers, {row.prune_seconds:.1f} s,"
          f" max |shrunk - masked| {diff:.2g}; {row.left_unpruned}", flush=True)
  print()
  print(applications.table(rows))
  if FLAGS.json:
    with open(FLAGS.json, "w") as f:
      json.dump(out, f, indent=1, default=list)


if __name__ == "__main__":
  app.run(main)
