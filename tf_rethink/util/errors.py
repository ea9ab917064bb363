"""Errors that mean the user asked for something wrong; `main` prints them in one line, exit 2."""
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


def parse_flags(argv):
  """absl's flags parser (`app.run(main, flags_parser=parse_flags)`) with a bad flag reported
  by `fail`."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(f"{e}; run with --helpfull to list the flags")
