"""`tools/reproduce.py`: the absl flags of the reproduction suite; runs it, then writes the report.

Every flag left unset keeps the suite's value; a mistake is one line and exit status 2.
"""
import os
import platform
import time

from absl import app
from absl import flags

from tf_rethink.util.errors import UsageError, fail, parse_flags

flags.DEFINE_string("suite", "small", "tiny (plumbing check), small (CPU, ~1.5 h on 2 cores), full.")
flags.DEFINE_string("root", None, "Directory of the suite's runs (one subdirectory per experiment; "
                    "default runs/reproduce_<suite>).")
flags.DEFINE_string("out", "REPRODUCTION.md", "The report; records.json, records.csv and the PNGs "
                    "go beside it (PNGs in <out dir>/reproduction/).")
flags.DEFINE_string("seeds", None, "Seeds, e.g. 1,2,3 or a count N (default: the suite's).")
flags.DEFINE_list("only", [], "Run only these experiments (keys of the suite).")
flags.DEFINE_bool("report_only", False, "Write the report from the runs on disk; train nothing.")
flags.DEFINE_string("dataset", None, "Override the suite's dataset (e.g. cifar10, embedded).")
flags.DEFINE_string("idx_dir", None, "Fashion-MNIST IDX directory (default: Debian's, then tfds).")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets data directory.")
flags.DEFINE_integer("epochs", None, "Override the suite's epochs E.")
flags.DEFINE_integer("limit_train", None, "Override the suite's number of training images.")
flags.DEFINE_integer("limit_test", None, "Override the suite's number of test images.")
flags.DEFINE_float("width_multiplier", None, "Override the suite's width multiplier.")
flags.DEFINE_string("notes", None, "A markdown file appended to the report as its interpretation "
                    "section (written by a person from the numbers; labelled as such).")
flags.DEFINE_integer("verbose", 2, "Training output per epoch: 0 silent, 2 one line per epoch.")
FLAGS = flags.FLAGS


def _machine() -> str:
  """The machine line of the report, measured (CPU model, cores, ISA, memory; load at start)."""
  from tf_rethink.util import machine  # pylint: disable=import-outside-toplevel
  return machine.format_machine(machine.describe(), label="")


def _seeds(text, default):
  if text is None:
    return tuple(default)
  try:
    if "," in text:
      seeds = tuple(int(t) for t in text.split(",") if t.strip())
    else:
      seeds = tuple(range(1, int(text) + 1))
  except ValueError:
    raise UsageError(f"--seeds={text!r} is neither a count nor a comma list (e.g. 3 or 1,2,3)")
  if not seeds or len(set(seeds)) != len(seeds):
    raise UsageError(f"--seeds={text!r} must name at least one seed, each once")
  return seeds


def _overrides():
  names = ("dataset", "idx_dir", "data_dir", "epochs", "limit_train", "limit_test",
           "width_multiplier", "verbose")
  return {n: FLAGS[n].value for n in names if FLAGS[n].value is not None}


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; every setting is a --flag")
  try:
    from tf_rethink.study import reproduce  # pylint: disable=import-outside-toplevel
    from tf_rethink.study import reproduction_report  # pylint: disable=import-outside-toplevel
    s = reproduce.suite(FLAGS.suite)
    root = FLAGS.root or os.path.join("runs", f"reproduce_{s.name}")
    seeds = _seeds(FLAGS.seeds, s.seeds)
    if FLAGS.notes and not os.path.exists(FLAGS.notes):
      raise UsageError(f"--notes={FLAGS.notes} does not exist")
    overrides = _overrides()
    for k in FLAGS.only:
      if k not in s.experiments:
        raise UsageError(f"--only={k!r} is not an experiment of suite {s.name}; choose from "
                         f"{', '.join(s.experiments)}")
    # Validate every experiment's settings before anything trains.
    for k in s.experiments:
      reproduce.experiment_config(s, reproduce.EXPERIMENTS[k], root, overrides, seeds)
    t0 = time.time()
    command = "python tools/reproduce.py " + " ".join(a for a in (argv_text()) if a)
    machine = f"{_machine()}; {platform.platform()}"
    if not FLAGS.report_only:
      started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t0))
      reproduce.run_suite(s, root, overrides, seeds, only=FLAGS.only)
      reproduction_report.log_invocation(root, command, time.time() - t0, machine, started)
    wall = time.time() - t0
    path = reproduction_report.write(
        s, root, overrides, seeds, FLAGS.out, command=command, machine=machine,
        wall_time_s=None if FLAGS.report_only else wall, notes_path=FLAGS.notes,
        only=FLAGS.only)
    print(f"wrote {path}")
  except UsageError as e:
    fail(str(e))


def argv_text():
  import sys  # pylint: disable=import-outside-toplevel
  return sys.argv[1:]


def cli():
  app.run(main, flags_parser=parse_flags)
