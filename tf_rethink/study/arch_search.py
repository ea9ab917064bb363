"""Network pruning as architecture search (Liu et al., ICLR 2019, section 5 / spec 2.9).

Trains from scratch, for the large model's number of epochs (Scratch-E, `regimes.scratch_e`) and
over seeds, several architecture families at each prune ratio, and plots test accuracy against
parameters (mean ± std over seeds):
  pruned       what the source method finds (e.g. Network Slimming at global ratio r; magnitude
               pruning at sparsity r: its masks, re-initialized as the reference's Scratch-E);
  uniform      every prunable conv keeps the same fraction of channels, the fraction chosen so the
               parameter count matches the pruned (or transferred) architecture; unstructured:
               every conv keeps the same fraction of weights, at random, at the same sparsity;
  guided       built from the pruned architectures' per-stage patterns averaged over seeds
               (channel keep ratio per stage; keep probability per stage and kernel position);
  transferred  the same from another run's patterns.json (e.g. VGG-16/CIFAR-10 -> VGG-19/CIFAR-100).

Workdir layout:
  source/seed_<n>/     the large model (the method's own baseline training, `experiment.run`)
  plans/               pruned plans per ratio and seed
  patterns.json        per-ratio stage patterns (input of a transferred run)
  archs/<kind>_r<ratio>/seed_<n>/   scratch_e run dir, results.json, plan
  arch_search.csv, arch_search.png  accuracy vs parameters (mean ± std over seeds)
"""
import csv
import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from tf_rethink.pruning.methods import METHODS
from tf_rethink.pruning.plan import Plan
from tf_rethink.run import experiment
from tf_rethink.run.repeats import mean_std
from tf_rethink.study import arch_patterns as ap
from tf_rethink.util import fs
from tf_rethink.util.errors import UsageError

KINDS = ("pruned", "uniform", "guided", "transferred")
METRICS = {"best": "best_test_accuracy", "final": "test_accuracy"}


def _rkey(ratio: float) -> str:
  return f"{ratio:g}"


class Search:
  """One architecture search: a model, dataset and source method (the `Config`), ratios, seeds."""

  def __init__(self, config, ratios: Sequence[float], kinds: Sequence[str] = KINDS[:3],
               transfer_from: Optional[str] = None):
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
      raise UsageError(f"unknown architecture kinds {unknown}; choose from {', '.join(KINDS)}")
    if "transferred" in kinds and not transfer_from:
      raise UsageError("kind 'transferred' needs --transfer_from=<other run>/patterns.json")
    if not ratios or not all(0 < r < 1 for r in ratios):
      raise UsageError(f"--arch_ratios={list(ratios)} must be prune ratios in (0, 1)")
    self.config, self.ratios, self.kinds = config, list(ratios), list(kinds)
    self.seeds = list(config.seed_list or (config.seed,))
    self.build_full = experiment.build_full_fn(config)
    self.pruner_cls = METHODS.get(config.method)
    self.sparse = self.pruner_cls.plan_kind == "weights"
    self.transfer = fs.read_json(transfer_from) if transfer_from else None
    if self.transfer and self.transfer["sparse"] != self.sparse:
      raise UsageError(f"{transfer_from} holds {'un' if self.transfer['sparse'] else ''}structured "
                       f"patterns; --method={config.method} needs the other kind")
    self.full = self.build_full()
    self.counter = None if self.sparse else ap.ParamCounter(self.build_full)

  def pruner(self, ratio: float):
    return experiment.make_pruner(self.config, ratio=ratio, variant=None)

  def path(self, *parts) -> str:
    return os.path.join(self.config.workdir, *parts)

  # --- source architectures and their patterns -------------------------------------------------
  def pruned_plans(self) -> Dict[float, Dict[int, object]]:
    """ratio -> seed -> plan of the source method on its own trained large model."""
    plans: Dict[float, Dict[int, object]] = {r: {} for r in self.ratios}
    for seed in self.seeds:
      src = self.path("source", f"seed_{seed}")
      todo = [r for r in self.ratios
              if not os.path.exists(self.path("plans", f"pruned_r{_rkey(r)}_seed{seed}.json"))]
      if todo:
        experiment.run(dataclasses.replace(self.config, regime="baseline", seeds="", seed=seed,
                                           workdir=src, export=False, prune_ratio=None,
                                           variant=""))
        trained = self.pruner(todo[0]).prepare(self.build_full())
        trained.load_weights(os.path.join(src, "baseline", "final.weights.h5"))
      for r in self.ratios:
        path = self.path("plans", f"pruned_r{_rkey(r)}_seed{seed}.json")
        pruner = self.pruner(r)
        if not os.path.exists(path):
          pruner.select(trained, None, model_name=self.config.model).save(path)
        plans[r][seed] = Plan.load(path)
    return plans

  def patterns(self, plans) -> dict:
    """Per ratio, the stage patterns averaged over seeds (written to patterns.json)."""
    out = {"model": self.config.model, "dataset": self.config.dataset,
           "method": self.config.method, "sparse": self.sparse, "ratios": {}}
    for r, by_seed in plans.items():
      ps = list(by_seed.values())
      if self.sparse:
        entry = {"stage_sparsity": [float(v) for v in ap.mean_patterns(
                     [ap.stage_sparsity(self.full, p) for p in ps])],
                 "position_keep": [np.asarray(v).tolist() for v in ap.mean_patterns(
                     [ap.kernel_position_keep(self.full, p) for p in ps])],
                 "layer_sparsity": {n: float(np.mean([p.sparsity()[n] for p in ps]))
                                    for n in ps[0].masks}}
      else:
        entry = {"stage_keep": [float(v) for v in ap.mean_patterns(
                     [ap.stage_keep_ratios(self.full, p) for p in ps])],
                 "layer_keep": {n: float(np.mean([ap.layer_keep_ratios(self.full, p)[n]
                                                  for p in ps]))
                                for n in ap.prunable_convs(self.full)}}
      out["ratios"][_rkey(r)] = entry
    fs.write_json(self.path("patterns.json"), out)
    return out

  # --- the architectures of each kind -----------------------------------------------------------
  def _from_pattern(self, entry: dict, seed: int, method: str):
    if self.sparse:
      return ap.guided_masks(self.full, [np.asarray(p) for p in entry["position_keep"]], seed,
                             model_name=self.config.model, method=method)
    return ap.guided_plan(self.full, entry["stage_keep"], model_name=self.config.model,
                          method=method)

  def architectures(self) -> List[tuple]:
    """(kind, ratio, seed, plan) for every architecture to train."""
    need_source = bool({"pruned", "guided"} & set(self.kinds)) or "transferred" not in self.kinds
    plans = self.pruned_plans() if need_source else {}
    pats = self.patterns(plans) if plans else None
    out = []
    for r in self.ratios:
      for seed in self.seeds:
        archs = {}
        if plans:
          archs["pruned"] = plans[r][seed]
          archs["guided"] = self._from_pattern(pats["ratios"][_rkey(r)], seed, "guided")
        if "transferred" in self.kinds:
          entry = self.transfer["ratios"].get(_rkey(r))
          if entry is None:
            raise UsageError(f"the transfer patterns have no ratio {r}; they have "
                             f"{sorted(self.transfer['ratios'])}")
          archs["transferred"] = self._from_pattern(entry, seed, "transferred")
        if "uniform" in self.kinds:
          archs["uniform"] = ap.uniform_like(archs.get("pruned", archs.get("transferred")),
                                             self.full, seed, counter=self.counter,
                                             model_name=self.config.model)
        out += [(kind, r, seed, archs[kind]) for kind in self.kinds]
    return out

  # --- training and reporting -------------------------------------------------------------------
  def train(self, kind: str, ratio: float, seed: int, plan) -> dict:
    """Scratch-E of one architecture (reused when its results.json exists); returns the record."""
    import tf_keras as keras  # pylint: disable=import-outside-toplevel
    from tf_rethink.train import REGIMES  # pylint: disable=import-outside-toplevel
    arch_dir = self.path("archs", f"{kind}_r{_rkey(ratio)}", f"seed_{seed}")
    done = os.path.join(arch_dir, "results.json")
    if os.path.exists(done):
      return fs.read_json(done)["scratch_e"]
    c = dataclasses.replace(self.config, seed=seed, seeds="", workdir=arch_dir)
    pruner = self.pruner(ratio)
    plan.save(os.path.join(arch_dir, "plan.json"))
    keras.utils.set_random_seed(seed)
    np.random.seed(seed)
    ctx = experiment.make_context(c, pruner, plan=plan)
    result = REGIMES.get("scratch_e")(ctx)
    record = experiment.record_regime(ctx, "scratch_e", result, self.sparse, arch=kind,
                                      arch_ratio=float(ratio))
    record.update(kind=kind, ratio=ratio, seed=seed)
    fs.write_json(done, {"scratch_e": record})
    return record

  def run(self, metric: str = "best") -> List[dict]:
    records = [self.train(*a) for a in self.architectures()]
    rows = summarize(records, METRICS[metric])
    write_csv(rows, self.path("arch_search.csv"))
    plot(rows, self.path("arch_search.png"),
         f"{self.config.model} / {self.config.dataset}: {self.config.method} vs uniform\n"
         f"Scratch-E, {metric} test accuracy, mean ± std over {len(self.seeds)} seeds")
    print(format_rows(rows))
    print(f"wrote {self.path('arch_search.csv')} and {self.path('arch_search.png')}")
    return rows


def summarize(records: Sequence[dict], metric: str = "best_test_accuracy") -> List[dict]:
  """One row per (kind, ratio): params and accuracy as mean and sample std over seeds."""
  groups: Dict[tuple, List[dict]] = {}
  for rec in records:
    groups.setdefault((rec["kind"], rec["ratio"]), []).append(rec)
  rows = []
  for (kind, ratio), recs in sorted(groups.items(), key=lambda kv: (KINDS.index(kv[0][0]),
                                                                    kv[0][1])):
    params = mean_std([r["params"] for r in recs])
    acc = mean_std([r[metric] for r in recs])
    rows.append({"kind": kind, "ratio": ratio, "n": len(recs), "params_mean": params[0],
                 "params_std": params[1], "flops_mean": mean_std([r["flops"] for r in recs])[0],
                 "acc_mean": acc[0], "acc_std": acc[1],
                 "accs": json.dumps([r[metric] for r in recs]),
                 "seeds": json.dumps([r["seed"] for r in recs])})
  return rows


def write_csv(rows: Sequence[dict], path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def format_rows(rows: Sequence[dict]) -> str:
  lines = [f"{'kind':>12} {'ratio':>6} {'n':>2} {'params':>12} {'accuracy':>16}"]
  for r in rows:
    lines.append(f"{r['kind']:>12} {r['ratio']:>6g} {r['n']:>2} {r['params_mean']:>12,.0f} "
                 f"{r['acc_mean']:>8.2f} ± {r['acc_std']:<5.2f}")
  return "\n".join(lines)


def plot(rows: Sequence[dict], path: str, title: str = "") -> None:
  """Accuracy vs parameters, one line per kind, error bars = std over seeds."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  colors = {"pruned": "tab:blue", "uniform": "tab:red", "guided": "tab:green",
            "transferred": "tab:brown"}
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  for kind in KINDS:
    pts = sorted((r["params_mean"], r["acc_mean"], r["acc_std"]) for r in rows
                 if r["kind"] == kind)
    if pts:
      x, y, e = zip(*pts)
      ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=kind, color=colors[kind])
  ax.set_xlabel("parameters")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
