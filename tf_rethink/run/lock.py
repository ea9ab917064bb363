"""One writer per workdir: an exclusive `fcntl.flock` on `<workdir>/.lock`.

The kernel releases an flock when its holder's process ends, however it ends (SIGKILL, a crash),
so a dead holder never leaves the workdir stuck. The file records the holder (pid, host, start
time) only so that a refused second process can say who holds it.
"""
import contextlib
import fcntl
import os
import socket
import time
from typing import Iterator

from tf_rethink.util.errors import UsageError, describe_os_error

LOCK_NAME = ".lock"


@contextlib.contextmanager
def hold(workdir: str) -> Iterator[None]:
  """Holds the workdir's lock for the `with` block; UsageError naming the holder when another
  process holds it, or naming the path when the workdir cannot be created or written."""
  path = os.path.join(workdir, LOCK_NAME)
  try:
    os.makedirs(workdir, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise UsageError(describe_os_error(e)) from None
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
      raise UsageError(f"--workdir={workdir} is in use by {holder}; wait for it to finish or "
                       "pass another --workdir") from None
    info = f"pid {os.getpid()} on {socket.gethostname()} since " \
           f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC"
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, info.encode() + b"\n", 0)
    except OSError as e:
      raise UsageError(describe_os_error(OSError(e.errno, e.strerror, path))) from None
    yield
  finally:
    os.close(fd)   # releases the flock
