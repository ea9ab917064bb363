"""Errors that mean the user asked for something wrong; `main` prints them in one line, exit 2."""
import errno
import os
import sys


class UsageError(ValueError):
  """A mistake in the command or its inputs. The message says what was wrong and how to fix it."""


class DataUnavailableError(UsageError):
  """The requested dataset is not on this machine and cannot be downloaded; says how to get it."""


def fail(message: str) -> None:
  """Prints `error: message` (one line) to stderr and exits with status 2: how every command of
  the package reports a UsageError."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


class DivergedError(UsageError):
  """Training produced a NaN or infinite loss; the message names the epoch, step and lr."""


_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free space (finished stages are kept) and re-run",
    errno.EDQUOT: "the disk quota is exceeded; free space and re-run",
    errno.EROFS: "the file system is read-only; pass a writable --workdir",
    errno.EACCES: "permission denied; pass a --workdir you may write",
    errno.EPERM: "operation not permitted; pass a --workdir you may write",
    errno.ENOTDIR: "a part of the path is a file, not a directory; pass another --workdir",
    errno.EISDIR: "it is a directory where a file was expected; remove it or pass another path",
    errno.EEXIST: "it exists and is of the wrong kind; remove it or pass another path",
    errno.ENOENT: "it does not exist",
    errno.ENAMETOOLONG: "the name is too long",
}


def describe_os_error(e: OSError) -> str:
  """One line for a file-system error: the path, the reason and what to do."""
  where = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None) or "a file"
  reason = e.strerror or type(e).__name__
  hint = _OS_HINTS.get(e.errno, "check the path")
  return f"cannot use {where}: {reason} ({hint})"


_FILE_ERRORS = {"No space left on device": errno.ENOSPC, "Read-only file system": errno.EROFS,
                "Disk quota exceeded": errno.EDQUOT, "Permission denied": errno.EACCES,
                "Not a directory": errno.ENOTDIR}


def describe_file_op_error(e: Exception):
  """One line for a TensorFlow or h5py error that is a file-system error underneath (a full disk,
  a read-only mount); None for any other error (a bug: let it show its traceback)."""
  text = str(e)
  for needle, code in _FILE_ERRORS.items():
    if needle in text:
      first = next((l for l in text.splitlines() if needle in l), needle).strip()
      return f"cannot write: {first[:300]} ({_OS_HINTS[code]})"
  return None


def check_flagfiles(argv) -> None:
  """Every --flagfile (and each one it includes) is a readable UTF-8 text file, and no flagfile
  includes itself, directly or through others (absl would only warn and read it again)."""
  def names(args):
    args = list(args)
    for i, arg in enumerate(args):
      for prefix in ("--flagfile=", "-flagfile="):
        if arg.startswith(prefix):
          yield arg[len(prefix):]
      if arg in ("--flagfile", "-flagfile") and i + 1 < len(args):
        yield args[i + 1]

  def visit(path, chain):
    real = os.path.realpath(path)
    if real in chain:
      fail(f"flagfile {path} includes itself (through {' -> '.join(chain + [real])}); remove "
           "the --flagfile line that loops")
    if not os.path.isfile(real):
      fail(f"--flagfile={path} is not a file" + ("" if os.path.exists(real) else
                                                  " (it does not exist)"))
    try:
      with open(real, "rb") as f:
        data = f.read()
      text = data.decode("utf-8")
    except OSError as e:
      fail(f"cannot read --flagfile={path}: {e.strerror}")
    except UnicodeDecodeError as e:
      fail(f"--flagfile={path} is not a text file (byte {e.start} is not UTF-8); pass a file of "
           "--flag=value lines")
    if "\0" in text:
      fail(f"--flagfile={path} is not a text file (it contains NUL bytes); pass a file of "
           "--flag=value lines")
    lines = [l.strip() for l in text.splitlines()]
    for name in names(l for l in lines if l and not l.startswith(("#", "//"))):
      visit(name, chain + [real])

  for name in names(argv[1:]):
    visit(name, [])


def parse_flags(argv):
  """absl's flags parser (`app.run(main, flags_parser=parse_flags)`) with a bad flag or flagfile
  reported by `fail`."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  check_flagfiles(argv)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(f"{e}; run with --helpfull to list the flags".replace("\n", " "))
  except OSError as e:
    fail(describe_os_error(e))
