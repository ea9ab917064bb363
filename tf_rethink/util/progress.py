"""Progress of long steps: a bar with an ETA on a terminal, nothing when output is a file or CI."""
import contextlib
import sys


@contextlib.contextmanager
def progress(total: int, desc: str, unit: str = "it"):
  """A context giving an object with `update(n)`: tqdm's bar (with ETA) when stderr is a terminal,
  a silent counter otherwise."""
  if sys.stderr.isatty():
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
    with tqdm(total=total, desc=desc, unit=unit, leave=False) as bar:
      yield bar
  else:
    yield _Silent()


class _Silent:
  def update(self, n: int = 1) -> None:
    del n
