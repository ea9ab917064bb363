"""Progress output that fits where it goes: a bar with an ETA on a terminal, one line in a log.

Chosen from whether standard output is a terminal (CI, a file, nohup: not), so a log holds one
line per epoch or per long step instead of thousands of carriage-return updates. Every long
step of the package (activation sampling, export, table building) reports through `progress`;
training epochs through `keras_verbose` and `train.callbacks.EpochLine`.
"""
import contextlib
import sys
import time
from typing import Iterator, Optional

from tf_rethink.util.errors import UsageError

SILENT, BAR, LINES = 0, 1, 2   # --verbose values
VERBOSE_CHOICES = (SILENT, BAR, LINES)


def on_terminal(stream=None) -> bool:
  """Whether `stream` (default: standard output) is an interactive terminal."""
  stream = sys.stdout if stream is None else stream
  try:
    return bool(stream.isatty())
  except (AttributeError, ValueError):   # no isatty, or a closed file
    return False


def check_verbose(verbose: Optional[int]) -> None:
  """UsageError unless `verbose` is None (automatic), 0, 1 or 2."""
  if verbose is not None and verbose not in VERBOSE_CHOICES:
    raise UsageError(f"--verbose={verbose} must be 0 (silent), 1 (progress bar) or 2 (one line "
                     "per epoch); leave it unset to choose by whether the output is a terminal")


def resolve_verbose(verbose: Optional[int]) -> int:
  """--verbose: None (automatic) is a progress bar (1) on a terminal, one line per epoch (2)
  otherwise; 0 is silent."""
  check_verbose(verbose)
  if verbose is None:
    return BAR if on_terminal() else LINES
  return int(verbose)


class _Line:
  """Off a terminal: counts silently, then prints one line when the step is done."""

  def __init__(self, desc: str, unit: str, stream):
    self.desc, self.unit, self.stream = desc, unit, stream
    self.n, self.start = 0, time.perf_counter()

  def update(self, n: int = 1) -> None:
    self.n += n

  def close(self) -> None:
    seconds = time.perf_counter() - self.start
    print(f"{self.desc}: {self.n:,} {self.unit} in {seconds:.1f} s", file=self.stream, flush=True)


@contextlib.contextmanager
def progress(desc: str, total: Optional[int] = None, unit: str = "it",
             verbose: Optional[int] = None, stream=None) -> Iterator[object]:
  """A progress reporter for one long step: `with progress("sampling", total=n) as p: ...
  p.update(k)`. On a terminal a bar with rate and ETA (tqdm; removed when done); otherwise one
  line `desc: n unit in s` at the end; nothing when `verbose` is 0."""
  stream = sys.stdout if stream is None else stream
  mode = resolve_verbose(verbose) if verbose is not None else (
      BAR if on_terminal(stream) else LINES)
  if mode == BAR:
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
    with tqdm(total=total, desc=desc, unit=unit, leave=False, file=stream,
              dynamic_ncols=True) as bar:
      yield bar
    return
  reporter = _Line(desc, unit, stream)
  yield reporter
  if mode == LINES:
    reporter.close()


def track(iterable, desc: str, total: Optional[int] = None, unit: str = "it", **kwargs):
  """Yields the items of `iterable` while `progress` counts them."""
  if total is None and hasattr(iterable, "__len__"):
    total = len(iterable)
  with progress(desc, total=total, unit=unit, **kwargs) as p:
    for item in iterable:
      yield item
      p.update(1)
