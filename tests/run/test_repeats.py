"""--seeds: per-seed workdirs, flags that reproduce each seed, mean and sample std."""
import json
import os

import pytest

from tf_rethink.run import repeats
from tf_rethink.run.config import Config
from tf_rethink.util.errors import UsageError


def test_seed_list_count_and_list():
  assert Config(seed=3, seeds="4").seed_list == (3, 4, 5, 6)
  assert Config(seeds="1,4,7").seed_list == (1, 4, 7)
  assert Config().seed_list == ()
  for bad in ("x", "1,1", "0"):
    with pytest.raises(UsageError, match="--seeds"):
      Config(seeds=bad)
  assert "seeds" not in Config(seeds="3").identity()


def test_mean_std_is_sample_std():
  assert repeats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
  assert repeats.mean_std([5.0]) == (5.0, 0.0)


def test_run_writes_one_workdir_per_seed_and_the_summary(tmp_path):
  calls = []

  def run_one(config, flags_text=""):
    calls.append((config.seed, config.workdir, config.seeds, flags_text))
    acc = {1: 90.0, 2: 92.0, 3: 94.0}[config.seed]
    return {"baseline": {"regime": "baseline", "test_accuracy": 95.0, "best_test_accuracy": 95.5,
                         "params": 100},
            "scratch_e": {"regime": "scratch_e", "test_accuracy": acc,
                          "best_test_accuracy": acc + 1, "params": 40}}

  config = Config(seeds="3", workdir=str(tmp_path))
  summary = repeats.run(config, run_one, "--seeds=3\n--seed=1\n--workdir=x\n--lr=0.1\n")
  assert [c[0] for c in calls] == [1, 2, 3]
  assert calls[1][1] == os.path.join(str(tmp_path), "seed_2") and calls[1][2] == ""
  assert calls[1][3].splitlines() == ["--lr=0.1", "--seed=2",
                                      f"--workdir={os.path.join(str(tmp_path), 'seed_2')}"]
  e = summary["scratch_e"]
  assert e["n"] == 3 and e["test_accuracy"]["mean"] == pytest.approx(92.0)
  assert e["test_accuracy"]["std"] == pytest.approx(2.0)
  assert e["best_test_accuracy"]["values"] == [91.0, 93.0, 95.0]
  assert summary["baseline"]["test_accuracy"]["std"] == 0.0
  with open(tmp_path / repeats.SUMMARY_JSON) as f:
    written = json.load(f)
  assert written["regimes"]["scratch_e"]["test_accuracy"]["mean"] == pytest.approx(92.0)
  assert "seed" not in written["config"]
