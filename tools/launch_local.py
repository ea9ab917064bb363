r"""Starts N local workers of one command with TF_CONFIG on free loopback ports.

  python tools/launch_local.py --workers=2 -- \
      python -m tf_rethink.main --strategy=multi_worker --regime=all --workdir=/tmp/mw

Every worker runs the same command (only TF_CONFIG differs; worker 0 is the chief); output lines
are prefixed with [w<i>]; if one worker fails the others are stopped; the exit status is the
worst worker's. For trying multi-worker training on one machine; on a cluster every host sets
its own TF_CONFIG (docs/multi_worker.md). The logic is `tf_rethink/run/local_cluster.py`.
"""
import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rethink.run import local_cluster  # noqa: E402
from tf_rethink.util.errors import fail, parse_flags  # noqa: E402

_WORKERS = flags.DEFINE_integer("workers", 2, "Worker processes to start.")
_GRACE = flags.DEFINE_float("grace", 10.0, "Seconds between SIGTERM and SIGKILL when stopping "
                            "the other workers after one failed.")


def main(argv):
  command = argv[1:]
  if command[:1] == ["--"]:
    command = command[1:]
  if not command:
    fail("no command given; pass it after --, e.g. tools/launch_local.py --workers=2 -- "
         "python -m tf_rethink.main --strategy=multi_worker")
  if _WORKERS.value < 1:
    fail(f"--workers={_WORKERS.value} must be a positive integer")
  sys.exit(local_cluster.launch(command, _WORKERS.value, grace=_GRACE.value))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
