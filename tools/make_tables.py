r"""The paper's tables from our run records: `tf-rethink-tables` (tf_rethink/study/make_tables.py)
runnable from a source checkout without installing the package.

  python tools/make_tables.py --out=TABLES.md
  python tools/make_tables.py --runs=/tmp/smoke --dataset=embedded
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rethink.study.make_tables import cli  # noqa: E402

if __name__ == "__main__":
  cli()
