"""REPRODUCTION.md, records.json/csv and the figures, from the run records of a suite on disk.

Records: <root>/<experiment>/seed_<n>/results.json (one record per regime, `run/results.py`) of
the requested seeds; the per-epoch curves from <regime>/history.json. Our number per regime is the
mean +- sample std (ddof=1) over seeds of the BEST test accuracy (the reference's `model_best`;
the final one is in records.json too). The paper's cell comes from `study/paper_numbers.py` (its
provenance tag shown), the verdict of each claim from `study/claims.py`. Experiments with no
records are listed as not run, with the reason of a FAILED.txt when there is one.
"""
import csv
import datetime
import io
import json
import os
from typing import Dict, List, Mapping, Optional, Sequence

from tf_rethink.run import repeats
from tf_rethink.run.results import REGIME_ORDER
from tf_rethink.study import claims as claims_lib
from tf_rethink.study import paper_numbers
from tf_rethink.study import reproduce
from tf_rethink.util import fs

METRIC = "best_test_accuracy"
FIELDS = ("experiment", "table", "seed", "regime", "best_test_accuracy", "test_accuracy", "params",
          "flops", "epochs", "wall_time_s")
_NAMES = {"baseline": "unpruned", "finetune": "fine-tuned", "scratch_e": "Scratch-E",
          "scratch_b": "Scratch-B", "lottery": "winning ticket",
          "lottery_random": "fresh init, same distribution",
          "uniform_e": "uniform arch., same params (Scratch-E)"}
_LOTTERY_NAMES = {"scratch_e": "random init (Scratch-E: N(0, 2/n) re-scaled)"}


def regime_name(table: str, regime: str) -> str:
  if table == "lottery" and regime in _LOTTERY_NAMES:
    return _LOTTERY_NAMES[regime]
  return _NAMES.get(regime, regime)


def collect(root: str, keys: Sequence[str], seeds: Sequence[int]) -> Dict[str, Dict[int, dict]]:
  """experiment key -> seed -> (regime -> record), for the requested seeds found on disk."""
  out = {}
  for key in keys:
    runs = repeats.load_seed_records(os.path.join(root, key))
    out[key] = {s: runs[s] for s in seeds if s in runs}
  return out


# Config fields that set a run's scale; the report states them as the runs recorded them.
SCALE_FIELDS = ("dataset", "limit_train", "limit_test", "width_multiplier", "epochs")


def scale_line(s, root: str, keys: Sequence[str], seeds: Sequence[int]) -> Optional[str]:
  """The scale the runs on disk trained at, from their own config.json (not from the flags of the
  invocation writing the report), and every field where a run differs from what the suite and
  its experiment set (`reproduce.experiment_config` without overrides): a run trained with
  overrides is then not described by the suite line. None when no run is on disk."""
  seen: Dict[str, Dict[str, List[str]]] = {f: {} for f in SCALE_FIELDS}
  overridden: Dict[str, set] = {}
  for key in keys:
    expected = reproduce.experiment_config(s, reproduce.EXPERIMENTS[key], root, {}, seeds)
    for seed in seeds:
      path = os.path.join(repeats.seed_dir(os.path.join(root, key), seed), "config.json")
      try:
        with open(path) as f:
          config = json.load(f)
      except (OSError, ValueError):
        continue
      for field in SCALE_FIELDS:
        value = _scale_value(field, config.get(field))
        where = seen[field].setdefault(value, [])
        if key not in where:
          where.append(key)
        if value != _scale_value(field, getattr(expected, field)):
          overridden.setdefault(field, set()).add(_scale_value(field, getattr(expected, field)))
  if not any(seen.values()):
    return None
  parts = []
  for field in SCALE_FIELDS:
    values = seen[field]
    parts.append(f"{field} " + (next(iter(values)) if len(values) == 1 else "; ".join(
        f"{v} ({', '.join(ks)})" for v, ks in values.items())))
  line = "- Scale of these runs (their config.json): " + ", ".join(parts)
  if overridden:
    suite_values = ", ".join(f"{f} {' / '.join(sorted(v))}" for f, v in overridden.items())
    line += (f". They were trained with overrides of the suite's settings (the suite sets "
             f"{suite_values}), so the suite line above does not describe them")
  return line + "."


def _scale_value(field: str, value) -> str:
  if field.startswith("limit_"):
    return f"{int(value):,}" if value else "all"
  if field == "width_multiplier" and value is not None:
    return f"x{float(value):g}"
  return str(value)


def flat_records(runs: Mapping[str, Mapping[int, dict]]) -> List[dict]:
  """One row per (experiment, seed, regime), the FIELDS of records.csv."""
  rows = []
  for key, by_seed in runs.items():
    table = reproduce.EXPERIMENTS[key].table
    for seed in sorted(by_seed):
      for regime, rec in sorted(by_seed[seed].items(), key=lambda kv: _order(kv[0])):
        rows.append({"experiment": key, "table": table, "seed": seed, "regime": regime,
                     **{f: rec.get(f) for f in FIELDS[4:]}})
  return rows


def _order(regime: str) -> int:
  return REGIME_ORDER.index(regime) if regime in REGIME_ORDER else len(REGIME_ORDER)


def values(by_seed: Mapping[int, dict], regime: str, seeds: Optional[Sequence[int]] = None):
  """Per-seed METRIC of `regime` (only `seeds` when given), in seed order."""
  return [by_seed[s][regime][METRIC] for s in sorted(by_seed)
          if regime in by_seed[s] and (seeds is None or s in seeds)]


def judge_claim(claim, by_seed: Mapping[int, dict]):
  """The claim's verdict on the seeds that ran both of its regimes (paired seeds)."""
  both = [s for s in by_seed if claim.a in by_seed[s] and claim.b in by_seed[s]]
  return claims_lib.judge(claim.kind, values(by_seed, claim.a, both), values(by_seed, claim.b, both))


def _fmt(vals) -> str:
  if not vals:
    return "not run"
  m, s = repeats.mean_std(vals)
  return f"{m:.2f} ± {s:.2f} (n={len(vals)})"


def experiment_section(e, by_seed: Mapping[int, dict], png: Optional[str]) -> str:
  regimes = sorted({r for recs in by_seed.values() for r in recs}, key=_order)
  lines = [f"### {e.label}", "", f"Experiment `{e.key}`: "
           + ", ".join(f"--{k}={v}" for k, v in e.settings.items())
           + f"; passes {', '.join('--regime=' + p for p in e.passes)}."
           + (f" {e.note}" if e.note else ""), ""]
  if e.paper_row:
    lines.append(f"Paper row: {e.paper_row[0]} / {e.paper_row[1]} / {e.paper_row[2]} / "
                 f"{e.paper_row[3]} (a different, full-scale setting: compare orderings, not "
                 "values).")
    lines.append("")
  lines += ["| regime | ours: best test acc. % (mean ± std over seeds) | paper |",
            "|---|---|---|"]
  for r in regimes:
    cell = paper_numbers.PAPER.get((*e.paper_row, r)) if e.paper_row else None
    paper = cell.text() if cell is not None else "-"
    epochs = sorted({by_seed[s][r].get("epochs") for s in by_seed if r in by_seed[s]})
    ep = f" [{'/'.join(str(x) for x in epochs)} ep]" if epochs else ""
    lines.append(f"| {regime_name(e.table, r)}{ep} | {_fmt(values(by_seed, r))} | {paper} |")
  lines += ["", "| paper's claim | A - B (points) | pooled std | Welch t | here |",
            "|---|---|---|---|---|"]
  for c in e.claims:
    v = judge_claim(c, by_seed)
    t = f"{v.welch_t:+.2f}" if v.welch_t is not None else "-"
    if v.verdict == claims_lib.UNDETERMINED and not values(by_seed, c.a):
      lines.append(f"| {c.text} | - | - | - | not run |")
      continue
    lines.append(f"| {c.text} | {v.d:+.2f} | {v.pooled_std:.2f} | {t} | **{v.verdict}** |")
  if png:
    lines += ["", f"![{e.key}]({png})"]
  return "\n".join(lines) + "\n"


def convergence_text(key: str, root: str, seeds: Sequence[int]) -> str:
  """One sentence per seed: the baseline's test accuracy at each epoch (from history.json)."""
  out = []
  for s in seeds:
    path = os.path.join(root, key, f"seed_{s}", "baseline", "history.json")
    if not os.path.exists(path):
      continue
    acc = [100.0 * e["val_accuracy"] for e in fs.read_json(path)]
    out.append(f"seed {s}: " + ", ".join(f"{a:.1f}" for a in acc))
  return "; ".join(out)


def _plots(runs, root, seeds, outdir: str, rel: str) -> Dict[str, str]:
  """Writes one PNG per table (bars: mean ± std per regime and experiment) and the baselines'
  test-accuracy curves; returns name -> path relative to the report."""
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
  except ImportError:
    return {}
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  os.makedirs(outdir, exist_ok=True)
  made = {}
  tables = {}
  for key, by_seed in runs.items():
    if by_seed:
      tables.setdefault(reproduce.EXPERIMENTS[key].table, []).append(key)
  for table, keys in tables.items():
    fig, ax = plt.subplots(figsize=(2.2 + 2.6 * len(keys), 4.4))
    xt, xl = [], []
    x = 0
    for key in keys:
      by_seed = runs[key]
      regimes = sorted({r for recs in by_seed.values() for r in recs}, key=_order)
      for r in regimes:
        m, s = repeats.mean_std(values(by_seed, r))
        ax.bar(x, m, yerr=s, capsize=3, color=f"C{_order(r)}")
        xt.append(x)
        # the whole key: a table holds several experiments whose keys share a long prefix
        xl.append(f"{regime_name(table, r).split(' (')[0]}\n{key}")
        x += 1
      x += 1
    ax.set_xticks(xt)
    ax.set_xticklabels(xl, rotation=60, ha="right", fontsize=6)
    lows = [min(values(runs[k], r)) for k in keys for r in
            {r for recs in runs[k].values() for r in recs} if values(runs[k], r)]
    if lows:
      ax.set_ylim(max(0.0, min(lows) - 3.0), None)
    ax.set_ylabel("best test accuracy % (mean ± std)")
    ax.set_title(paper_numbers.TABLES[table].title if table in paper_numbers.TABLES else table,
                 fontsize=8)
    fig.tight_layout()
    name = f"table_{table}.png"
    with fs.atomic_path(os.path.join(outdir, name)) as tmp:
      fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    made[table] = f"{rel}/{name}"
  fig, ax = plt.subplots(figsize=(6, 3.6))
  plotted = False
  for i, key in enumerate(runs):
    for s in seeds:
      path = os.path.join(root, key, f"seed_{s}", "baseline", "history.json")
      if os.path.exists(path):
        acc = [100.0 * e["val_accuracy"] for e in fs.read_json(path)]
        ax.plot(range(1, len(acc) + 1), acc, color=f"C{i}", alpha=0.7,
                label=key if s == seeds[0] else None)
        plotted = True
  if plotted:
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy % (every seed)")
    ax.set_title("Large-model (baseline) training curves", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    with fs.atomic_path(os.path.join(outdir, "baseline_curves.png")) as tmp:
      fig.savefig(tmp, dpi=110, format="png")
    made["baseline_curves"] = f"{rel}/baseline_curves.png"
  plt.close(fig)
  return made


INVOCATIONS = "invocations.json"   # in the suite root: every training invocation of the tool


def log_invocation(root: str, command: str, wall_time_s: float, machine: str,
                   started: str) -> None:
  """Appends one training invocation to <root>/invocations.json (kept across report-only runs,
  so the report states how long the runs it shows took and which commands trained them). A log
  that is not a JSON list is moved to invocations.json.damaged first, not lost."""
  path = os.path.join(root, INVOCATIONS)
  entries = []
  if os.path.exists(path):
    try:
      entries = fs.read_json(path)
    except ValueError:
      entries = None
    if not isinstance(entries, list):   # damaged: kept beside the new log, never overwritten
      os.replace(path, path + ".damaged")
      entries = []
  entries.append({"command": command, "wall_time_s": round(float(wall_time_s), 1),
                  "machine": machine, "started": started})
  os.makedirs(root, exist_ok=True)
  fs.write_json(path, entries)


def covered_seconds(entries) -> Optional[float]:
  """Seconds during which at least one invocation ran (the union of [started, started + wall]:
  invocations run side by side count once); None when a start time is not '%Y-%m-%d %H:%M UTC'
  (to the minute, so the union is exact to a minute per invocation)."""
  spans = []
  for e in entries:
    try:
      start = datetime.datetime.strptime(str(e.get("started")), "%Y-%m-%d %H:%M UTC").timestamp()
    except ValueError:
      return None
    spans.append((start, start + float(e.get("wall_time_s", 0.0))))
  covered, end = 0.0, None
  for a, b in sorted(spans):
    if end is None or a > end:
      covered += b - a
      end = b
    elif b > end:
      covered += b - end
      end = b
  return covered


def invocation_lines(root: str) -> List[str]:
  """The report's lines on the training invocations logged under `root`."""
  path = os.path.join(root, INVOCATIONS)
  if not os.path.exists(path):
    return []
  try:
    entries = [e for e in fs.read_json(path) if isinstance(e, dict)]
  except (ValueError, TypeError):
    return []
  if not entries:
    return []
  total = sum(float(e.get("wall_time_s", 0.0)) for e in entries)
  wall = covered_seconds(entries)
  if wall is None or wall >= total - 60:   # unknown start times, or none ran side by side
    head = f"{total / 60:.1f} min of wall time in all"
  else:
    head = (f"{wall / 60:.1f} min of wall time in all, some side by side ({total / 60:.1f} min "
            "summed over the invocations)")
  out = [f"- Trained by {len(entries)} invocation(s), {head} (from {INVOCATIONS}):"]
  for e in entries:
    out.append(f"  - {e.get('started', '?')}: `{e.get('command', '?')}`, "
               f"{float(e.get('wall_time_s', 0.0)) / 60:.1f} min")
  return out


def render(s, root: str, runs, seeds, *, command: str, machine: str,
           wall_time_s: Optional[float], pngs: Mapping[str, str], notes: str = "",
           keys: Optional[Sequence[str]] = None) -> str:
  """The report's markdown; `keys`: the experiments it covers (default: the whole suite)."""
  covered = list(keys or s.experiments)
  total = sum(float(rec.get("wall_time_s", 0.0)) for by_seed in runs.values()
              for recs in by_seed.values() for rec in recs.values())
  ran = [k for k, v in runs.items() if v]
  scale = scale_line(s, root, covered, seeds)
  lines = ["# Reproduction at a small scale: the paper's claims, measured", "",
           "Written by `tools/reproduce.py` from the run records on disk (no number here is typed "
           "by hand).", "",
           f"- Suite `{s.name}`: {s.description}.", *([scale] if scale else []),
           f"- Seeds: {', '.join(str(x) for x in seeds)}; metric: best test accuracy over epochs "
           "(the reference's `model_best`), mean ± sample std over seeds.",
           f"- Command (this report): `{command}`",
           f"- Machine: {machine}.",
           f"- Training time summed over every regime of every run: {total / 60:.1f} min (a "
           "baseline shared by several experiments counts in each)"
           + (f"; this invocation's wall time {wall_time_s / 60:.1f} min" if wall_time_s else "")
           + "."] + invocation_lines(root) + [
           f"- Claim rule: {claims_lib.RULE_TEXT}", "",
           "The paper's numbers are CIFAR/ImageNet at full scale; ours are a CPU-sized stand-in "
           "on another dataset, so only the ORDERINGS the claims are about can be compared.", ""]
  if "baseline_curves" in pngs:
    lines += ["## Convergence of the large models", "",
              f"![baseline curves]({pngs['baseline_curves']})", ""]
    for key in ran:
      text = convergence_text(key, root, seeds)
      if text:
        lines.append(f"- `{key}` baseline test accuracy per epoch: {text}")
    lines.append("")
  lines += ["## Summary of verdicts", "", "| experiment | claim | here |", "|---|---|---|"]
  for key in ran:
    e = reproduce.EXPERIMENTS[key]
    for c in e.claims:
      v = judge_claim(c, runs[key])
      if values(runs[key], c.a) and v.d == v.d:   # skip claims with a side not run (nan)
        lines.append(f"| {key} | {c.text} | {v.verdict} (A - B = {v.d:+.2f}, s = "
                     f"{v.pooled_std:.2f}) |")
  lines.append("")
  by_table = {}
  for key in runs:
    by_table.setdefault(reproduce.EXPERIMENTS[key].table, []).append(key)
  for table, keys in by_table.items():
    title = paper_numbers.TABLES[table].title if table in paper_numbers.TABLES else table
    lines += [f"## {title}", ""]
    for key in keys:
      if runs[key]:
        lines.append(experiment_section(reproduce.EXPERIMENTS[key], runs[key], None))
    if table in pngs:
      lines += [f"![{table}]({pngs[table]})", ""]
  not_run = []
  for key in covered:
    by_seed = runs.get(key, {})
    missing = [x for x in seeds if x not in by_seed
               or not all(r in by_seed[x] for r in reproduce.expected_regimes(
                   reproduce.EXPERIMENTS[key].passes))]
    if missing:
      failed = os.path.join(root, key, reproduce.FAILED)
      why = (f"failed: {open(failed).read().strip()}" if os.path.exists(failed)
             else "not finished within this run's compute budget")
      not_run.append(f"- `{key}` ({reproduce.EXPERIMENTS[key].label}): seeds "
                     f"{', '.join(str(x) for x in missing)} incomplete; {why}.")
  lines += ["## Not run, or incomplete", ""] + (not_run or ["- none"])
  if len(covered) < len(s.experiments):
    lines.append(f"- This report covers only {', '.join(f'`{k}`' for k in covered)} (`--only`); "
                 "the suite's other experiments are reported elsewhere.")
  if any("uniform_e" in reproduce.EXPERIMENTS[k].passes for k in covered):
    lines.append(
        "- The architecture-search comparison (paper section 5) is here one pair per seed: the "
        "Network Slimming architecture vs the uniform one at the same parameter count "
        "(`uniform_e`). The sweeps over ratios with guided and transferred architectures "
        "(Figures 3-6) are `tools/arch_search.py`, beyond this budget.")
  lines.append("")
  if notes:
    lines += ["## Interpretation (written from the numbers above)", "", notes.strip(), ""]
  return "\n".join(lines)


def write(s, root: str, overrides, seeds: Sequence[int], out: str, *, command: str, machine: str,
          wall_time_s: Optional[float] = None, notes_path: Optional[str] = None,
          only: Sequence[str] = ()) -> str:
  """Writes `out` (REPRODUCTION.md), records.json and records.csv beside it and the PNGs in
  <out dir>/reproduction/; returns `out`. `only`: report just these experiments (a run of part
  of the suite written to its own file)."""
  del overrides
  keys = [k for k in s.experiments if not only or k in only]
  runs = collect(root, keys, seeds)
  outdir = os.path.dirname(os.path.abspath(out))
  pngs = _plots(runs, root, list(seeds), os.path.join(outdir, "reproduction"), "reproduction")
  notes = open(notes_path).read() if notes_path else ""
  text = render(s, root, runs, list(seeds), command=command, machine=machine,
                wall_time_s=wall_time_s, pngs=pngs, notes=notes, keys=keys)
  rows = flat_records(runs)
  summary = {}
  for key, by_seed in runs.items():
    e = reproduce.EXPERIMENTS[key]
    summary[key] = {"table": e.table, "label": e.label, "settings": dict(e.settings),
                    "regimes": repeats.aggregate(by_seed) if by_seed else {},
                    "claims": [dict(text=c.text, a=c.a, b=c.b, **vars(judge_claim(c, by_seed)))
                               for c in e.claims if by_seed]}
  fs.write_text(os.path.join(outdir, "records.json"),
                json.dumps({"suite": s.name, "seeds": list(seeds), "records": rows,
                            "summary": summary}, indent=1, default=float) + "\n")
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=FIELDS)
  writer.writeheader()
  writer.writerows(rows)
  fs.write_text(os.path.join(outdir, "records.csv"), buf.getvalue())
  fs.write_text(out, text)
  return out


def parse_records_csv(text: str) -> List[dict]:
  """records.csv back into rows (numbers as float/int): what the tests and readers use."""
  out = []
  for row in csv.DictReader(io.StringIO(text)):
    row["seed"] = int(row["seed"])
    for f in ("best_test_accuracy", "test_accuracy", "wall_time_s"):
      row[f] = float(row[f]) if row[f] not in ("", None) else None
    for f in ("params", "flops", "epochs"):
      row[f] = int(row[f]) if row[f] not in ("", None) else None
    out.append(row)
  return out
