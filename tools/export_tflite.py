"""Converts an exported SavedModel (workdir/export/<regime>) to TFLite; prints raw and gzip sizes.

  python tools/export_tflite.py --saved_model=/tmp/mag/export/scratch_b [--output=model.tflite]

A weight-pruned model keeps its zeros as dense float32 tensors, so the .tflite file is as large as
the dense one; the gzip size shows what the sparsity saves on disk (Han et al., 2015).
"""
import os
import sys

from absl import app
from absl import flags

# Runnable from a source checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rethink import export as export_lib  # noqa: E402
from tf_rethink.util.errors import UsageError  # noqa: E402

_SAVED_MODEL = flags.DEFINE_string("saved_model", None, "An exported SavedModel directory.")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the .tflite file (default: "
                              "<saved_model>.tflite).")


def main(argv):
  del argv
  path = _SAVED_MODEL.value
  if not path or not os.path.exists(os.path.join(path, "saved_model.pb")):
    raise app.UsageError(f"--saved_model={path} is not an exported SavedModel; pass a workdir's "
                         "export/<regime> directory")
  output = _OUTPUT.value or path.rstrip("/") + ".tflite"
  try:
    size = export_lib.export_tflite(path, output)
  except UsageError as e:
    raise app.UsageError(str(e))
  print(f"{output}: {size:,} bytes, gzipped {export_lib.gzip_size(output):,} bytes "
        f"(SavedModel gzipped {export_lib.gzip_size(path):,} bytes)")


if __name__ == "__main__":
  app.run(main)
