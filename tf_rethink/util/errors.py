"""Errors that mean the user asked for something wrong; `main` prints them in one line, exit 2."""


class UsageError(ValueError):
  """A mistake in the command or its inputs. The message says what was wrong and how to fix it."""


class DataUnavailableError(UsageError):
  """The requested dataset is not on this machine and cannot be downloaded; says how to get it."""
