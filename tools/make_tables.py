r"""Renders the paper's tables as markdown from our run records alone (no training).

  python tools/make_tables.py                         # all tables, records under runs/
  python tools/make_tables.py --tables=l1_norm,magnitude --metric=final --out=TABLES.md
  python tools/make_tables.py --runs=/tmp/smoke --dataset=embedded   # small-scale runs

Each row shows the paper's number (with its provenance tag) beside ours, mean ± std over the
seeds found (tf_rethink/tables.py explains how records are matched); rows not yet run say so and
name the flagfile that runs them.
"""
import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rethink.study import paper_numbers  # noqa: E402
from tf_rethink.study import tables  # noqa: E402

flags.DEFINE_list("runs", ["runs"], "Directories searched (recursively) for run records "
                  "(config.json + results.json).")
flags.DEFINE_string("flags_dir", "flags", "Flagfiles whose --workdir= are searched too, and which "
                    "are named for rows not yet run.")
flags.DEFINE_list("tables", [], f"Tables to render (default all): {', '.join(paper_numbers.TABLES)}.")
flags.DEFINE_enum("metric", "best", list(tables.METRICS), "best: best test accuracy over epochs "
                  "(the reference's model_best); final: the last epoch's.")
flags.DEFINE_string("dataset", None, "Match records of this dataset instead of the paper's (e.g. "
                    "embedded, for small-scale runs).")
flags.DEFINE_string("out", None, "Write the markdown here (default: print it).")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  unknown = sorted(set(FLAGS.tables) - set(paper_numbers.TABLES))
  if unknown:
    raise app.UsageError(f"unknown --tables {unknown}; choose from {list(paper_numbers.TABLES)}")
  index = tables.flagfile_index(FLAGS.flags_dir) if os.path.isdir(FLAGS.flags_dir) else []
  repo_root = os.path.dirname(os.path.abspath(FLAGS.flags_dir))
  runs = {r.path: r for r in tables.find_runs([d for d in FLAGS.runs if os.path.isdir(d)])}
  runs.update({r.path: r for r in tables.runs_from_flagfiles(index, repo_root)})
  text = tables.render_all(sorted(runs.values(), key=lambda r: r.path), tables=FLAGS.tables,
                           metric=FLAGS.metric, dataset=FLAGS.dataset, index=index)
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      f.write(text)
    print(f"wrote {FLAGS.out} ({len(runs)} run records)")
  else:
    print(text)


if __name__ == "__main__":
  app.run(main)
