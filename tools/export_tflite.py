r"""TFLite float32 / float16 / full-int8 of an experiment's serving SavedModels, measured.

  python tools/export_tflite.py --workdir=/tmp/tf_rethink
  python tools/export_tflite.py --workdir=/tmp/mag --models=scratch_b --formats=int8 --repeats=500

Converts every `WORKDIR/export/serving/<name>` (or `--models`), int8 calibrated on the training
split, runs each on the experiment's test set and prints accuracy, raw and gzip size and batch-1
latency beside the SavedModel's; writes `WORKDIR/export/tflite/<name>.<format>.tflite` and
`report.json`. The logic is `tf_rethink/export/tflite.py`.
"""
import os
import sys

from absl import app
from absl import flags

# Runnable from a source checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rethink.util.errors import UsageError, fail, parse_flags  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "The experiment's --workdir (with export/serving/).")
_MODELS = flags.DEFINE_list("models", [], "Names under export/serving/ (default: all).")
_FORMATS = flags.DEFINE_list("formats", ["float32", "float16", "int8"], "TFLite formats.")
_CALIBRATION = flags.DEFINE_integer("calibration_examples", 500, "Training images that calibrate "
                                    "the int8 activation ranges.")
_LIMIT_TEST = flags.DEFINE_integer("limit_test", None, "Evaluate on the first N test images "
                                   "(default: the experiment's --limit_test, else all).")
_REPEATS = flags.DEFINE_integer("repeats", 200, "Batch-1 calls timed per model and format.")


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; every setting is a --flag")
  if not _WORKDIR.value:
    fail("--workdir is required: the --workdir of a finished experiment")
  if _REPEATS.value < 1:
    fail(f"--repeats={_REPEATS.value} must be a positive integer")
  try:
    from tf_rethink.export import tflite  # pylint: disable=import-outside-toplevel
    rows = tflite.report(_WORKDIR.value, _MODELS.value, _FORMATS.value, _CALIBRATION.value,
                         _LIMIT_TEST.value, _REPEATS.value)
  except UsageError as e:
    fail(str(e))
  print(tflite.table(rows))
  print(f"wrote {os.path.join(_WORKDIR.value, 'export', 'tflite')} (*.tflite, report.json)")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
