r"""The paper's claims, measured at a small scale: runs a suite of experiments over seeds and
writes REPRODUCTION.md, records.json/csv and one PNG per table (tf_rethink/study/reproduce.py,
tf_rethink/study/reproduction_report.py).

  python tools/reproduce.py --suite=small --root=runs/reproduce_small --out=REPRODUCTION.md
  python tools/reproduce.py --suite=small --root=runs/reproduce_small --report_only
  python tools/reproduce.py --suite=tiny --root=/tmp/repro_tiny --out=/tmp/repro_tiny/R.md

Re-running the same command reuses every finished run (resumable).
"""
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rethink.study.reproduce_cli import cli  # noqa: E402

if __name__ == "__main__":
  cli()
