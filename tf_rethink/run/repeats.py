"""Repeated runs over seeds and their mean +- std (the paper: "mean (std) of 5 runs", spec 2.1).

`--seeds=N` (seeds --seed .. --seed+N-1) or `--seeds=1,4,7` runs the unchanged single-seed
experiment (`experiment.run`) once per seed in `workdir/seed_<n>/` (each a complete workdir with its
own config.json, flags.cfg, plan and results.json, resumable as usual), then writes
`workdir/results_summary.json`: per regime, the mean and the SAMPLE standard deviation (ddof=1;
0 for a single run) of every metric over the seeds, with the per-seed values.
"""
import dataclasses
import math
import os
from typing import Dict, List, Mapping, Sequence

from tf_rethink.util import fs
from tf_rethink.run.results import REGIME_ORDER

SUMMARY_JSON = "results_summary.json"
METRICS = ("test_accuracy", "best_test_accuracy", "params", "flops", "macs", "epochs",
           "wall_time_s")


def seed_dir(workdir: str, seed: int) -> str:
  return os.path.join(workdir, f"seed_{seed}")


def mean_std(values: Sequence[float]):
  """(mean, sample std with ddof=1); std is 0.0 for one value, (nan, nan) for none."""
  values = [float(v) for v in values]
  if not values:
    return float("nan"), float("nan")
  mean = sum(values) / len(values)
  if len(values) == 1:
    return mean, 0.0
  return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def aggregate(runs: Mapping[int, Mapping[str, dict]]) -> Dict[str, dict]:
  """seed -> (regime -> record) into regime -> {"n", "seeds", metric -> {mean, std, values}}."""
  out = {}
  regimes = {name for records in runs.values() for name in records}
  order = {name: i for i, name in enumerate(REGIME_ORDER)}
  for regime in sorted(regimes, key=lambda r: (order.get(r, len(order)), r)):
    seeds = sorted(s for s, records in runs.items() if regime in records)
    entry = {"n": len(seeds), "seeds": seeds}
    for metric in METRICS:
      values = [runs[s][regime][metric] for s in seeds if metric in runs[s][regime]]
      if values:
        mean, std = mean_std(values)
        entry[metric] = {"mean": mean, "std": std, "values": values}
    out[regime] = entry
  return out


def summary_table(summary: Mapping[str, dict]) -> str:
  """Fixed-width text: regime, n, test and best accuracy as mean +- std, params."""
  rows = [("regime", "n", "test acc", "best acc", "params")]
  for regime, e in summary.items():
    def fmt(metric):
      m = e.get(metric)
      return f"{m['mean']:.2f} +- {m['std']:.2f}" if m else "-"
    params = e.get("params", {}).get("mean")
    rows.append((regime, str(e["n"]), fmt("test_accuracy"), fmt("best_test_accuracy"),
                 f"{params:,.0f}" if params is not None else "-"))
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  lines = ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)


def _seed_flags(flags_text: str, seed: int, workdir: str) -> str:
  """The flags that reproduce one seed's run: --seed and --workdir replaced, --seeds dropped."""
  lines = [line for line in flags_text.splitlines()
           if not line.startswith(("--seed=", "--seeds=", "--workdir="))]
  return "\n".join(lines + [f"--seed={seed}", f"--workdir={workdir}"]) + "\n"


def run(config, run_one, flags_text: str = "") -> Dict[str, dict]:
  """Runs `config` once per seed of `config.seed_list`; returns and writes the summary.

  `run_one(config, flags_text) -> records` runs one seed (`experiment.run`; tests pass a stub).
  """
  runs = {}
  for seed in config.seed_list:
    workdir = seed_dir(config.workdir, seed)
    one = dataclasses.replace(config, seed=seed, seeds="", workdir=workdir)
    print(f"=== seed {seed} ({workdir}) ===")
    runs[seed] = run_one(one, flags_text=_seed_flags(flags_text, seed, workdir) if flags_text
                         else "")
  summary = aggregate(runs)
  if not _chief(config):
    return summary
  fs.write_json(os.path.join(config.workdir, SUMMARY_JSON),
                      {"config": _identity(config), "regimes": summary})
  print(f"mean +- std over seeds {list(config.seed_list)} ({SUMMARY_JSON}):")
  print(summary_table(summary))
  return summary


def _chief(config) -> bool:
  """Whether this process writes the summary (only the chief under --strategy=multi_worker)."""
  if config.strategy != "multi_worker":
    return True
  from tf_rethink.train import strategy  # pylint: disable=import-outside-toplevel
  return strategy.is_chief(strategy.make_strategy("multi_worker"))


def _identity(config) -> dict:
  d = config.identity()
  d.pop("seed", None)
  return d


def load_seed_records(workdir: str) -> Dict[int, dict]:
  """seed -> results.json of every `seed_<n>/` under `workdir` (finished regimes only)."""
  out = {}
  if not os.path.isdir(workdir):
    return out
  for name in sorted(os.listdir(workdir)):
    path = os.path.join(workdir, name, "results.json")
    if name.startswith("seed_") and name[5:].isdigit() and os.path.exists(path):
      out[int(name[5:])] = fs.read_json(path)
  return out


__all__: List[str] = ["aggregate", "mean_std", "run", "seed_dir", "summary_table",
                      "load_seed_records", "SUMMARY_JSON"]
