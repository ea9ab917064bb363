"""The paper's tables regenerated from run records alone (no training): paper number beside ours.

A run record is a directory holding `config.json` and `results.json` (what `experiment.run` writes,
one per seed with `--seeds`). Records are found two ways: every such directory under the runs root,
and the `--workdir=` of every flagfile under flags/ (and its `seed_<n>/` subdirectories). A record
counts for a table row (`paper_numbers.ROWS`) when its config.json has the row's `match` fields
(method, model, dataset, variant or prune_ratio; the lottery rows also lr and --regime=lottery,
whose records count for no other table). Ours = mean and
sample std (ddof=1, `seeds.mean_std`) over the matching records of each regime's best (default) or
final test accuracy; rows without records say "not run" and name the flagfile that runs them.
"""
import dataclasses
import math
import os
import sys
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from tf_rethink.util import fs
from tf_rethink.util import progress
from tf_rethink.study import paper_numbers
from tf_rethink.run.repeats import mean_std

METRICS = {"best": "best_test_accuracy", "final": "test_accuracy"}


@dataclasses.dataclass(frozen=True)
class RunRecord:
  path: str
  config: Mapping[str, object]
  records: Mapping[str, dict]     # regime -> results.json record


def _load(dirpath: str) -> Optional[RunRecord]:
  cfg, res = os.path.join(dirpath, "config.json"), os.path.join(dirpath, "results.json")
  if not (os.path.exists(cfg) and os.path.exists(res)):
    return None
  try:
    return RunRecord(os.path.normpath(dirpath), fs.read_json(cfg), fs.read_json(res))
  except ValueError:
    return None


def find_runs(roots: Sequence[str]) -> List[RunRecord]:
  """Every run record (config.json + results.json) under any of `roots`, each once."""
  found = {}
  with progress.progress("finding run records", unit="dirs", stream=sys.stderr) as bar:
    for root in roots:
      for dirpath, _, files in os.walk(root):
        bar.update(1)
        if "config.json" in files and "results.json" in files:
          run = _load(dirpath)
          if run is not None:
            found[run.path] = run
  return sorted(found.values(), key=lambda r: r.path)


def parse_flagfile(path: str, repo_root: str) -> Dict[str, str]:
  """flag name -> value of a flagfile, nested `--flagfile=` lines first (later lines win)."""
  out = {}
  with open(path) as f:
    for line in f:
      line = line.strip()
      if not line.startswith("--") or "=" not in line:
        continue
      name, value = line[2:].split("=", 1)
      if name == "flagfile":
        nested = value if os.path.isabs(value) else os.path.join(repo_root, value)
        if os.path.exists(nested):
          out.update(parse_flagfile(nested, repo_root))
      else:
        out[name] = value
  return out


def flagfile_index(flags_dir: str) -> List[Tuple[str, Dict[str, str]]]:
  """(flagfile path relative to the repo root, its flags) for every flags/**/*.cfg."""
  repo_root = os.path.dirname(os.path.abspath(flags_dir))
  out = []
  for dirpath, _, files in os.walk(flags_dir):
    for name in sorted(files):
      if name.endswith(".cfg"):
        path = os.path.join(dirpath, name)
        out.append((os.path.relpath(path, repo_root), parse_flagfile(path, repo_root)))
  return sorted(out)


def runs_from_flagfiles(index, repo_root: str) -> List[RunRecord]:
  """The records at each flagfile's --workdir (itself and its seed_<n>/ runs)."""
  roots = []
  for _, fl in index:
    workdir = fl.get("workdir")
    if workdir:
      roots.append(workdir if os.path.isabs(workdir) else os.path.join(repo_root, workdir))
  return find_runs([r for r in roots if os.path.isdir(r)])


def _equal(have, want) -> bool:
  if isinstance(want, bool) or isinstance(have, bool):
    return str(have).lower() == str(want).lower()
  if isinstance(want, (int, float)):
    try:
      return math.isclose(float(have), float(want), rel_tol=1e-6, abs_tol=1e-9)
    except (TypeError, ValueError):
      return False
  return str(have).lower() == str(want).lower()


def _get(config: Mapping, dotted: str):
  value = config
  for part in dotted.split("."):
    if not isinstance(value, Mapping) or part not in value:
      return None
    value = value[part]
  return value


def matches(config: Mapping, match: Mapping, dataset: Optional[str] = None) -> bool:
  """Whether a config.json has every `match` field (`dataset` replaces the row's dataset)."""
  for k, want in match.items():
    if k == "dataset" and dataset:
      want = dataset
    have = _get(config, k)
    if have is None or not _equal(have, want):
      return False
  return True


def flagfile_matches(flags: Mapping[str, str], match: Mapping) -> bool:
  """Whether a flagfile sets the row's fields (an absent method option counts as its default)."""
  for k, want in match.items():
    name = k.split(".")[-1]
    if name not in flags:
      if k.startswith("method_options."):
        continue
      return False
    if not _equal(flags[name], want):
      return False
  return True


def ours(runs: Sequence[RunRecord], regime: str, metric: str):
  """(mean, std, n) of `metric` of `regime` over `runs` (n = 0: none finished)."""
  values = [r.records[regime][metric] for r in runs if regime in r.records]
  if not values:
    return None, None, 0
  mean, std = mean_std(values)
  return mean, std, len(values)


def _ours_text(mean, std, n) -> str:
  if n == 0:
    return "not run"
  return f"{mean:.2f} ± {std:.2f} (n={n})" if n > 1 else f"{mean:.2f} (n=1)"


def render(table: str, runs: Sequence[RunRecord], *, metric: str = "best",
           dataset: Optional[str] = None, index=()) -> str:
  """One paper table as markdown: per row and regime, the paper's number and ours."""
  t = paper_numbers.TABLES[table]
  head = ["dataset", "model", "pruned"]
  for _, label in t.columns:
    head += [f"{label} (paper)", f"{label} (ours)"]
  head.append("runs")
  lines = [f"### {t.title}", "",
           f"Ours: {metric} test accuracy, mean ± sample std over seeds"
           + (f", on --dataset={dataset} instead of the paper's" if dataset else "") + ".", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for row in paper_numbers.rows(table):
    mine = [r for r in runs if matches(r.config, row.match, dataset)
            and (table == "lottery") == (r.config.get("regime") == "lottery")]
    cells = [dataset or row.dataset, row.model, row.variant]
    for regime, _ in t.columns:
      paper = row.paper.get(regime)
      cells += [paper.text() if paper else "-", _ours_text(*ours(mine, regime, METRICS[metric]))]
    if mine:
      status = f"{len(mine)} record(s)"
    else:
      files = [p for p, fl in index if flagfile_matches(fl, row.match)]
      status = "not run" + (f": `--flagfile={files[0]} --seeds=5`" if files else "")
    if row.note:
      status += f"; {row.note}"
    cells.append(status)
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def render_all(runs, *, tables: Sequence[str] = (), metric: str = "best",
               dataset: Optional[str] = None, index=()) -> str:
  names = list(tables) or list(paper_numbers.TABLES)
  legend = ("Tags: [R]/[RM] official repo / its READMEs, [X] independent copies of the paper's "
            "table, [O] the original method paper, [P?] recalled from the paper and NOT checked "
            "against the PDF; n/r = not recovered.\n")
  rendered = [render(t, runs, metric=metric, dataset=dataset, index=index)
              for t in progress.track(names, "rendering tables", unit="tables", stream=sys.stderr)]
  return legend + "\n" + "\n".join(rendered)
