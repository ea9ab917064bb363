"""One writer per workdir: a second holder is refused naming the first; a killed holder leaves
no stuck lock."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tf_rethink.run import lock
from tf_rethink.util.errors import UsageError

_HOLD = textwrap.dedent("""
    import sys, time
    from tf_rethink.run import lock
    with lock.hold(sys.argv[1]):
        print("held", flush=True)
        time.sleep(600)
""")


def _holder(workdir):
  proc = subprocess.Popen([sys.executable, "-c", _HOLD, workdir], stdout=subprocess.PIPE,
                          text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
  assert proc.stdout.readline().strip() == "held"
  return proc


def test_second_writer_is_refused_with_the_holder_named(tmp_path):
  proc = _holder(str(tmp_path))
  try:
    with pytest.raises(UsageError, match=f"in use by pid {proc.pid} on "):
      with lock.hold(str(tmp_path)):
        pass
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  with lock.hold(str(tmp_path)):   # the dead holder's flock went with its process
    pass


def test_lock_in_this_process_is_released_after_the_block(tmp_path):
  with lock.hold(str(tmp_path / "new")):
    assert os.path.exists(tmp_path / "new" / lock.LOCK_NAME)
  with lock.hold(str(tmp_path / "new")):
    pass


def test_unusable_workdir_is_one_line(tmp_path):
  (tmp_path / "file").write_text("x")
  with pytest.raises(UsageError, match="file"):
    with lock.hold(str(tmp_path / "file" / "sub")):
      pass
