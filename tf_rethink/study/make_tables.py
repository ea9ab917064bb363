r"""`tf-rethink-tables`: the paper's tables as markdown from our run records alone (no training).

  tf-rethink-tables                                  # all tables, records under runs/
  tf-rethink-tables --tables=l1_norm,magnitude --metric=final --out=TABLES.md
  tf-rethink-tables --runs=/tmp/smoke --dataset=embedded   # small-scale runs
  (python tools/make_tables.py takes the same flags)

Each row shows the paper's number (with its provenance tag) beside ours, mean ± std over the
seeds found (`study/tables.py` explains how records are matched); rows not yet run say so and
name the flagfile that runs them. Progress goes to stderr, so the markdown on stdout stays clean.
"""
import os
from typing import Optional, Sequence

from absl import app
from absl import flags

from tf_rethink.study import paper_numbers
from tf_rethink.study import tables
from tf_rethink.util import fs
from tf_rethink.util.errors import UsageError, fail, parse_flags


def make(runs: Sequence[str], flags_dir: str = "flags", table_names: Sequence[str] = (),
         metric: str = "best", dataset: Optional[str] = None) -> tuple:
  """(markdown, number of run records): the records under `runs` and in the workdirs named by
  the flagfiles under `flags_dir`, rendered as `table_names` (default: every table)."""
  unknown = sorted(set(table_names) - set(paper_numbers.TABLES))
  if unknown:
    raise UsageError(f"unknown --tables {unknown}; choose from {', '.join(paper_numbers.TABLES)}")
  if metric not in tables.METRICS:
    raise UsageError(f"unknown --metric={metric!r}; choose one of: {', '.join(tables.METRICS)}")
  index = tables.flagfile_index(flags_dir) if os.path.isdir(flags_dir) else []
  repo_root = os.path.dirname(os.path.abspath(flags_dir))
  found = {r.path: r for r in tables.find_runs([d for d in runs if os.path.isdir(d)])}
  found.update({r.path: r for r in tables.runs_from_flagfiles(index, repo_root)})
  text = tables.render_all(sorted(found.values(), key=lambda r: r.path), tables=table_names,
                           metric=metric, dataset=dataset, index=index)
  return text, len(found)


def _define_flags() -> None:
  """The command's flags (defined when it runs, so that importing this module next to the
  experiment command's flags does not clash)."""
  flags.DEFINE_list("runs", ["runs"], "Directories searched (recursively) for run records "
                    "(config.json + results.json).")
  flags.DEFINE_string("flags_dir", "flags", "Flagfiles whose --workdir= are searched too, and "
                      "which are named for rows not yet run.")
  flags.DEFINE_list("tables", [], "Tables to render (default all): "
                    f"{', '.join(paper_numbers.TABLES)}.")
  flags.DEFINE_string("metric", "best", "best: best test accuracy over epochs (the reference's "
                      "model_best); final: the last epoch's.")
  flags.DEFINE_string("dataset", None, "Match records of this dataset instead of the paper's "
                      "(e.g. embedded, for small-scale runs).")
  flags.DEFINE_string("out", None, "Write the markdown here (default: print it).")


def main(argv) -> None:
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; every setting is a --flag")
  f = flags.FLAGS
  try:
    text, n = make(f.runs, f.flags_dir, f.tables, f.metric, f.dataset)
  except UsageError as e:
    fail(str(e))
  if f.out:
    fs.write_text(f.out, text)
    print(f"wrote {f.out} ({n} run records)")
  else:
    print(text)


def cli() -> None:
  """The `tf-rethink-tables` console command and `python tools/make_tables.py`."""
  _define_flags()
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  cli()
