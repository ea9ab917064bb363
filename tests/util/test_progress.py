"""Progress output: a bar on a terminal, one line per step in a log; --verbose resolved by it."""
import io

import pytest

from tf_rethink.util import progress
from tf_rethink.util.errors import UsageError


class FakeTerminal(io.StringIO):
  def isatty(self):
    return True


def test_verbose_follows_whether_stdout_is_a_terminal(monkeypatch):
  monkeypatch.setattr("sys.stdout", io.StringIO())
  assert progress.resolve_verbose(None) == progress.LINES
  monkeypatch.setattr("sys.stdout", FakeTerminal())
  assert progress.resolve_verbose(None) == progress.BAR
  assert progress.resolve_verbose(0) == 0 and progress.resolve_verbose(2) == 2
  with pytest.raises(UsageError, match="--verbose=3 must be 0"):
    progress.resolve_verbose(3)


def test_off_a_terminal_a_step_is_one_line():
  log = io.StringIO()
  with progress.progress("sampling", total=30, unit="img", stream=log) as p:
    for _ in range(3):
      p.update(10)
  lines = log.getvalue().splitlines()
  assert len(lines) == 1 and lines[0].startswith("sampling: 30 img in ")
  assert "\r" not in log.getvalue()
  quiet = io.StringIO()
  assert list(progress.track(range(4), "x", stream=quiet, verbose=0)) == [0, 1, 2, 3]
  assert quiet.getvalue() == ""


def test_on_a_terminal_a_step_is_a_bar_with_an_eta():
  screen = FakeTerminal()
  assert list(progress.track(range(5), "rendering tables", unit="tables", stream=screen)) == \
      list(range(5))
  text = screen.getvalue()
  assert "\r" in text and "rendering tables:" in text and "0/5 [00:00<" in text  # elapsed<ETA
