r"""Writes the expected GPU wall time into the header of every full-scale flagfile
(tf_rethink/study/flag_budget.py; the FLOPs rules and the throughput assumption are in
tf_rethink/study/budget.py).

  python tools/gpu_time.py            # rewrites flags/**/*.cfg headers in place
"""
import os
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

if __name__ == "__main__":
  from tf_rethink.study import flag_budget  # noqa: E402
  with tempfile.TemporaryDirectory() as tmp:
    flag_budget.update(os.path.join(ROOT, "flags"), tmp)
