"""Architecture search: summaries (mean ± std per kind and ratio), CSV, plot; end to end (slow)."""
import csv
import os

import pytest

from tf_rethink.study import arch_search
from tf_rethink.run.config import Config


def _records():
  out = []
  for kind, ratio, params, accs in (("pruned", 0.5, 100, (80.0, 82.0)),
                                    ("uniform", 0.5, 104, (70.0, 74.0)),
                                    ("pruned", 0.3, 200, (85.0, 85.0))):
    for seed, acc in zip((1, 2), accs):
      out.append({"kind": kind, "ratio": ratio, "seed": seed, "params": params + seed,
                  "flops": 10, "best_test_accuracy": acc, "test_accuracy": acc - 1})
  return out


def test_summarize_csv_and_plot(tmp_path):
  rows = arch_search.summarize(_records())
  assert [(r["kind"], r["ratio"]) for r in rows] == [("pruned", 0.3), ("pruned", 0.5),
                                                       ("uniform", 0.5)]
  uniform = rows[2]
  assert uniform["n"] == 2 and uniform["acc_mean"] == 72.0
  assert uniform["acc_std"] == pytest.approx(2.8284271, rel=1e-6)
  assert uniform["params_mean"] == 105.5
  assert arch_search.summarize(_records(), "test_accuracy")[2]["acc_mean"] == 71.0
  arch_search.write_csv(rows, str(tmp_path / "a.csv"))
  with open(tmp_path / "a.csv") as f:
    got = list(csv.DictReader(f))
  assert float(got[1]["acc_mean"]) == 81.0 and got[1]["accs"] == "[80.0, 82.0]"
  arch_search.plot(rows, str(tmp_path / "a.png"), "t")
  assert os.path.getsize(tmp_path / "a.png") > 1000


def test_rejects_bad_kinds_and_ratios(tmp_path):
  from tf_rethink.util.errors import UsageError
  config = Config(method="l1_norm", model="vgg11", workdir=str(tmp_path))
  with pytest.raises(UsageError, match="kinds"):
    arch_search.Search(config, [0.5], ["pruned", "bogus"])
  with pytest.raises(UsageError, match="transfer_from"):
    arch_search.Search(config, [0.5], ["transferred"])
  with pytest.raises(UsageError, match="arch_ratios"):
    arch_search.Search(config, [1.5], ["pruned"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["network_slimming", "magnitude"])
def test_end_to_end_small_and_transferred(tmp_path, method):
  common = dict(method=method, dataset="embedded", width_multiplier=0.125, epochs=1,
                limit_train=128, limit_test=128, verbose=0, export=False, seeds="2")
  src = Config(model="vgg11", workdir=str(tmp_path / "src"), **common)
  rows = arch_search.Search(src, [0.5], ["pruned", "uniform", "guided"]).run()
  by_kind = {r["kind"]: r for r in rows}
  assert set(by_kind) == {"pruned", "uniform", "guided"} and all(r["n"] == 2 for r in rows)
  if method == "magnitude":  # same sparsity in every conv: nonzero params match
    assert abs(by_kind["uniform"]["params_mean"] - by_kind["pruned"]["params_mean"]) < 50
  assert os.path.exists(tmp_path / "src" / "arch_search.png")
  dst = Config(model="vgg13", workdir=str(tmp_path / "dst"), **common)
  rows = arch_search.Search(dst, [0.5], ["uniform", "transferred"],
                            str(tmp_path / "src" / "patterns.json")).run()
  assert {r["kind"] for r in rows} == {"uniform", "transferred"}
  assert not os.path.exists(tmp_path / "dst" / "source")
