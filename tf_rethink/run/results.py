"""Run records and the tables people read: one record per regime, one comparison table."""
from typing import Dict

REGIME_ORDER = ("baseline", "finetune", "scratch_e", "scratch_b", "lottery", "lottery_random",
                "uniform_e")
_COLUMNS = ("regime", "test acc", "best acc", "params", "FLOPs (ref.)", "MACs", "epochs", "wall")


def record(regime: str, result, counts) -> dict:
  """The JSON record of one finished regime (accuracies in %, FLOPs in the reference convention)."""
  return {
      "regime": regime,
      "test_accuracy": round(100.0 * result.test_accuracy, 2),
      "best_test_accuracy": round(100.0 * result.best_test_accuracy, 2),
      "params": counts.params,
      "flops": counts.flops,
      "macs": counts.macs,
      "epochs": result.epochs,
      "wall_time_s": round(result.wall_time, 1),
  }


def table(records: Dict[str, dict]) -> str:
  """A fixed-width table of the regimes, baseline first."""
  rows = [_COLUMNS]
  order = {name: i for i, name in enumerate(REGIME_ORDER)}
  for r in sorted(records.values(), key=lambda r: (order.get(r["regime"], len(order)), r["regime"])):
    rows.append((r["regime"], f"{r['test_accuracy']:.2f}", f"{r['best_test_accuracy']:.2f}",
                 _human(r["params"]), _human(r["flops"]), _human(r["macs"]), str(r["epochs"]),
                 f"{r['wall_time_s']:.0f}s"))
  return _render(rows)


def summary_text(summary: dict) -> str:
  """The --dry_run preview: both architectures and the Scratch-B budget."""
  rows = [("model", "params", "FLOPs (ref.)", "MACs")]
  for name in ("full", "pruned"):
    c = summary[name]
    rows.append((name, f"{c['params']:,}", f"{c['flops']:,}", f"{c['macs']:,}"))
  ratio = summary["full"]["flops"] / summary["pruned"]["flops"]
  return (_render(rows) + f"\nFLOPs ratio {ratio:.4f}; Scratch-B trains "
          f"{summary['scratch_b_epochs']} epochs")


def _human(n: int) -> str:
  for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
    if n >= scale:
      return f"{n / scale:.2f}{unit}"
  return str(n)


def _render(rows) -> str:
  widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
  lines = ["  ".join(str(v).rjust(w) for v, w in zip(row, widths)) for row in rows]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)
