"""The reproduction suite: the claim rule on given numbers, the records and the report written
from records on disk, the resumable runner with its progress line (a stub trains), and the tool's
one-line errors. The end-to-end run of the tool on the embedded data is marked slow."""
import json
import math
import os
import subprocess
import sys

import pytest

from tf_rethink.study import claims
from tf_rethink.study import reproduce
from tf_rethink.study import reproduction_report as report
from tf_rethink.util.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- the claim rule -------------------------------------------------------------------------

def test_not_worse_holds_within_one_pooled_std():
  # means 90.0 vs 90.5, stds 0.5 and 0.5 -> d = -0.5, s = 0.5: on the boundary, holds.
  v = claims.judge("not_worse", [89.5, 90.0, 90.5], [90.0, 90.5, 91.0])
  assert v.d == pytest.approx(-0.5) and v.pooled_std == pytest.approx(0.5)
  assert v.verdict == claims.HOLDS
  v = claims.judge("not_worse", [89.0, 89.5, 90.0], [90.0, 90.5, 91.0])   # d = -1.0 < -0.5
  assert v.verdict == claims.FAILS


def test_better_and_no_gain_are_complements_around_plus_s():
  ticket, random = [88.6, 88.8, 89.1], [87.0, 87.1, 87.2]    # d = +1.733, s ~ 0.187
  assert claims.judge("better", ticket, random).verdict == claims.HOLDS
  assert claims.judge("no_gain", ticket, random).verdict == claims.FAILS
  close = [87.1, 87.2, 87.0]
  assert claims.judge("better", close, random).verdict == claims.FAILS
  assert claims.judge("no_gain", close, random).verdict == claims.HOLDS


def test_welch_t_and_pooled_std_by_hand():
  a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0]
  v = claims.judge("not_worse", a, b)
  sa2, sb2 = 1.0, 20.0 / 3.0
  assert v.pooled_std == pytest.approx(math.sqrt((sa2 + sb2) / 2))
  assert v.welch_t == pytest.approx((2.0 - 5.0) / math.sqrt(sa2 / 3 + sb2 / 4))


def test_one_seed_is_undetermined_and_unknown_kinds_refused():
  assert claims.judge("better", [90.0], [80.0]).verdict == claims.UNDETERMINED
  with pytest.raises(ValueError, match="unknown claim kind"):
    claims.judge("worse", [1.0, 2.0], [1.0, 2.0])


# --- suites and configs ----------------------------------------------------------------------

def test_every_suite_names_known_experiments_with_known_claims():
  for s in reproduce.SUITES.values():
    for key in s.experiments:
      e = reproduce.EXPERIMENTS[key]
      for c in e.claims:
        assert c.kind in claims.KINDS
        assert {c.a, c.b} <= set(reproduce.expected_regimes(e.passes)), (key, c)
  assert len(reproduce.SUITES["small"].seeds) >= 3 and len(reproduce.SUITES["full"].seeds) >= 3


def test_expected_regimes_of_shared_workdir_passes():
  assert reproduce.expected_regimes(("all", "lottery", "lottery_random")) == (
      "baseline", "finetune", "scratch_e", "scratch_b", "lottery", "lottery_random")


def test_experiment_config_scales_epochs_and_refuses_unknown_settings(tmp_path):
  s = reproduce.SUITES["small"]
  long = reproduce.experiment_config(s, reproduce.EXPERIMENTS["lottery_magnitude_p80_lr0.1_long"],
                                     str(tmp_path), {}, (1, 2, 3))
  assert long.epochs == 2 * s.settings["epochs"] and long.lr == 0.1 and long.seed_list == (1, 2, 3)
  # One seed stays one seed (`--seeds=2,`), not Config's count form "2" (seeds 2 and 3).
  one = reproduce.experiment_config(s, reproduce.EXPERIMENTS["l1_norm_vgg16_A"], str(tmp_path),
                                    {}, (2,))
  assert (one.seed, one.seed_list) == (2, (2,))
  user = reproduce.experiment_config(s, reproduce.EXPERIMENTS["l1_norm_vgg16_A"], str(tmp_path),
                                     {"dataset": "embedded", "epochs": 3}, (4,))
  assert (user.dataset, user.epochs, user.workdir) == ("embedded", 3,
                                                       str(tmp_path / "l1_norm_vgg16_A"))
  # The user's overrides win over the experiment's own settings too (width x0.5 of the ResNet
  # rows, lr of the lottery rows); an experiment's epochs_factor still scales the user's epochs.
  e = reproduce.EXPERIMENTS["soft_filter_pruning_resnet20"]
  assert e.settings["width_multiplier"] == 0.5
  assert reproduce.experiment_config(s, e, str(tmp_path), {}, (1,)).width_multiplier == 0.5
  assert reproduce.experiment_config(s, e, str(tmp_path), {"width_multiplier": 0.125},
                                     (1,)).width_multiplier == 0.125
  lr = reproduce.experiment_config(s, reproduce.EXPERIMENTS["lottery_magnitude_p80_lr0.1_long"],
                                   str(tmp_path), {"lr": 0.05, "epochs": 3}, (1,))
  assert (lr.lr, lr.epochs) == (0.05, 6)
  with pytest.raises(UsageError, match="unknown setting"):
    reproduce.experiment_config(s, reproduce.EXPERIMENTS["l1_norm_vgg16_A"], str(tmp_path),
                                {"epochz": 3}, (1,))
  with pytest.raises(UsageError, match="unknown --suite"):
    reproduce.suite("huge")


def test_every_experiment_of_the_small_suite_builds_its_pruner(tmp_path):
  """Each experiment's method accepts its settings (an SSS row once passed --prune_ratio, which
  the method refuses, and failed at run time)."""
  from tf_rethink.run import experiment
  s = reproduce.SUITES["small"]
  for key in s.experiments:
    config = reproduce.experiment_config(s, reproduce.EXPERIMENTS[key], str(tmp_path), {}, (1,))
    experiment.make_pruner(config)


def test_baseline_key_shares_only_identical_plain_large_model_training(tmp_path):
  s = reproduce.SUITES["small"]

  def key(name):
    return reproduce.baseline_key(reproduce.experiment_config(
        s, reproduce.EXPERIMENTS[name], str(tmp_path), {}, (1, 2, 3)))
  plain = key("l1_norm_vgg16_A")
  assert plain is not None
  for same in ("lottery_magnitude_p80_lr0.1", "magnitude_vgg16_p30", "thinet_vgg16_p50",
               "regression_vgg16_p50"):
    assert key(same) == plain, same
  assert key("lottery_magnitude_p80_lr0.01") not in (None, plain)      # another lr
  assert key("lottery_magnitude_p80_lr0.1_long") not in (None, plain)  # another schedule
  for own in ("network_slimming_vgg16_p50", "soft_filter_pruning_resnet20",
              "sparse_structure_selection_resnet20"):   # sparsity training: never shared
    assert key(own) is None, own


def _finished_baseline(seed_dir, text):
  os.makedirs(os.path.join(seed_dir, "baseline"))
  with open(os.path.join(seed_dir, "baseline", "train_result.json"), "w") as f:
    f.write(text)


def test_reuse_baseline_copies_only_a_finished_one_and_never_overwrites_a_finished_one(tmp_path):
  unfinished, done, target = tmp_path / "a", tmp_path / "b", tmp_path / "c"
  os.makedirs(unfinished / "baseline")
  _finished_baseline(str(done), "{}")
  assert reproduce.reuse_baseline(str(target), [str(unfinished), str(done)]) == str(done)
  assert (target / "baseline" / "train_result.json").read_text() == "{}"
  assert os.listdir(target) == ["baseline"]          # no temporary copy left beside it
  (done / "baseline" / "train_result.json").write_text('{"other": 1}')
  assert reproduce.reuse_baseline(str(target), [str(done)]) is None   # it has one already
  assert (target / "baseline" / "train_result.json").read_text() == "{}"
  assert reproduce.reuse_baseline(str(tmp_path / "d"), [str(unfinished)]) is None
  assert not (tmp_path / "d").exists()
  # An interrupted baseline (a checkpoint, no result) resumes without a donor, and gives way to a
  # finished one when there is.
  (unfinished / "baseline" / "ckpt").write_text("epoch 2")
  assert reproduce.reuse_baseline(str(unfinished), [str(tmp_path / "d")]) is None
  assert (unfinished / "baseline" / "ckpt").exists()
  assert reproduce.reuse_baseline(str(unfinished), [str(done)]) == str(done)
  assert sorted(os.listdir(unfinished / "baseline")) == ["train_result.json"]
  assert os.listdir(unfinished) == ["baseline"]      # neither the old copy nor a temporary left


def test_run_suite_gives_the_second_experiment_the_first_ones_baseline(tmp_path):
  s = reproduce.SUITES["tiny"]   # l1_norm_vgg16_A, then lottery_magnitude_p80_lr0.1 (same model)
  calls, lines = [], []
  stub = _stub_pass(calls, lambda c, r: 80.0)

  def run_pass(config):
    seen = os.path.exists(os.path.join(config.workdir, "baseline", "train_result.json"))
    calls.append(("had_baseline", os.path.basename(os.path.dirname(config.workdir)), seen))
    if not seen:
      _finished_baseline(config.workdir, json.dumps({"seed": config.seed}))
    return stub(config)
  reproduce.run_suite(s, str(tmp_path), {}, (1, 2), run_pass=run_pass, log=lines.append)
  had = [c for c in calls if c[0] == "had_baseline"]
  assert had[0] == ("had_baseline", "l1_norm_vgg16_A", False)
  assert ("had_baseline", "lottery_magnitude_p80_lr0.1", True) in had
  assert not any(c[1] == "lottery_magnitude_p80_lr0.1" and not c[2] for c in had)
  copied = tmp_path / "lottery_magnitude_p80_lr0.1" / "seed_2" / "baseline" / "train_result.json"
  assert json.loads(copied.read_text()) == {"seed": 2}   # the same seed's baseline
  assert sum("baseline reused from" in line for line in lines) == 2


def test_run_suite_split_by_only_reuses_a_baseline_another_invocation_finished(tmp_path):
  # The lottery experiment alone, after an invocation that ran only L1-norm in the same root (and
  # in either order: the L1-norm one also takes the lottery's).
  s = reproduce.SUITES["tiny"]
  stub = _stub_pass([], lambda c, r: 80.0)
  had = {}       # (experiment, seed) -> whether its first pass found a baseline in its workdir

  def run_pass(config):
    seen = os.path.exists(os.path.join(config.workdir, "baseline", "train_result.json"))
    had.setdefault((os.path.basename(os.path.dirname(config.workdir)), config.seed), seen)
    if not seen:
      _finished_baseline(config.workdir, json.dumps({"seed": config.seed}))
    return stub(config)
  lines = []
  reproduce.run_suite(s, str(tmp_path), {}, (1,), only=("l1_norm_vgg16_A",), run_pass=run_pass,
                      log=lines.append)
  assert had == {("l1_norm_vgg16_A", 1): False} and not any("reused from" in x for x in lines)
  reproduce.run_suite(s, str(tmp_path), {}, (1, 2), only=("lottery_magnitude_p80_lr0.1",),
                      run_pass=run_pass, log=lines.append)
  assert had[("lottery_magnitude_p80_lr0.1", 1)] is True      # copied from L1-norm's seed 1
  assert had[("lottery_magnitude_p80_lr0.1", 2)] is False     # nobody had seed 2
  assert sum("baseline reused from" in x and "l1_norm_vgg16_A" in x for x in lines) == 1
  reproduce.run_suite(s, str(tmp_path), {}, (2,), only=("l1_norm_vgg16_A",), run_pass=run_pass,
                      log=lines.append)
  assert had[("l1_norm_vgg16_A", 2)] is True                  # from the lottery's seed 2
  copied = tmp_path / "l1_norm_vgg16_A" / "seed_2" / "baseline" / "train_result.json"
  assert json.loads(copied.read_text()) == {"seed": 2}


# --- progress line --------------------------------------------------------------------------

def test_progress_eta_is_mean_of_trained_runs_times_runs_left():
  now = [0.0]
  p = reproduce.Progress(4, clock=lambda: now[0])
  line = p.line("x", 1, None)
  assert line.startswith("[1/4] x seed 1: reused") and "ETA unknown" in line
  now[0] = 125.0
  line = p.line("x", 2, 100.0)
  assert "[2/4]" in line and "trained in 1m40s" in line and "ETA 3m20s for 2 runs" in line
  line = p.line("y", 1, 200.0)     # mean 150 s x 1 left
  assert "ETA 2m30s for 1 runs" in line


# --- the runner (a stub trains) -------------------------------------------------------------

def _stub_pass(calls, accuracy):
  """run_pass: writes the records experiment.run would write for the pass's regimes."""
  def run_pass(config):
    calls.append((os.path.basename(os.path.dirname(config.workdir)), config.seed, config.regime))
    path = os.path.join(config.workdir, "results.json")
    records = json.load(open(path)) if os.path.exists(path) else {}
    for r in config.regimes:
      acc = round(accuracy(config, r), 2)
      records[r] = {"regime": r, "test_accuracy": round(acc - 0.1, 2), "best_test_accuracy": acc,
                    "params": 10, "flops": 100, "macs": 50, "epochs": config.epochs,
                    "wall_time_s": 1.0}
    os.makedirs(config.workdir, exist_ok=True)
    with open(path, "w") as f:
      json.dump(records, f)
    return records
  return run_pass


def test_run_suite_is_resumable_and_survives_a_failing_experiment(tmp_path):
  s = reproduce.SUITES["tiny"]
  calls, lines = [], []
  stub = _stub_pass(calls, lambda c, r: 80.0 + c.seed)

  def flaky(config):
    if "lottery" in config.workdir:
      raise UsageError("cannot prune this model")
    return stub(config)
  reproduce.run_suite(s, str(tmp_path), {}, (1, 2), run_pass=flaky, log=lines.append)
  assert [c[2] for c in calls if c[1] == 1] == ["all", "lottery"]
  assert "FAILED" in lines[-1] and (tmp_path / "lottery_magnitude_p80_lr0.1" / "FAILED.txt").exists()
  calls.clear()
  lines.clear()
  reproduce.run_suite(s, str(tmp_path), {}, (1, 2), only=("l1_norm_vgg16_A",), run_pass=stub,
                      log=lines.append)
  assert calls == [] and all("reused" in line for line in lines)   # finished runs reused
  summary = json.load(open(tmp_path / "l1_norm_vgg16_A" / "results_summary.json"))
  assert summary["regimes"]["lottery"]["best_test_accuracy"]["values"] == [81.0, 82.0]


# --- the report -----------------------------------------------------------------------------

def _fake_suite_runs(tmp_path, regime_acc):
  s = reproduce.SUITES["tiny"]
  reproduce.run_suite(s, str(tmp_path / "runs"), {}, (1, 2, 3), run_pass=_stub_pass(
      [], lambda c, r: regime_acc[r] + 0.2 * c.seed), log=lambda line: None)
  return s


def test_report_marks_claims_from_records_and_round_trips_the_csv(tmp_path):
  acc = {"baseline": 90.0, "finetune": 89.0, "scratch_e": 87.0, "scratch_b": 89.5,
         "lottery": 89.0, "lottery_random": 88.9}
  s = _fake_suite_runs(tmp_path, acc)
  out = tmp_path / "rep" / "REPRODUCTION.md"
  report.write(s, str(tmp_path / "runs"), {}, (1, 2, 3), str(out), command="cmd", machine="m")
  text = out.read_text()
  # every regime has std 0.2 -> pooled 0.2: Scratch-E -2.0 fails, Scratch-B +0.5 holds;
  # ticket vs Scratch-E +2.0 at lr 0.1 "no gain" fails; vs the fresh draw +0.1 holds.
  assert "| Scratch-E [1 ep] | 87.40 ± 0.20 (n=3) | 93.62 (±0.11) [P?] |" in text
  assert "| Scratch-E comparable to or better than fine-tuned (C1, C3: usually enough) | -2.00 | " \
         "0.20 |" in text
  rows = [line for line in text.splitlines() if line.startswith("| l1_norm_vgg16_A |")]
  assert [r.rsplit("|", 2)[1].split(" (")[0].strip() for r in rows] == [
      "does not hold", "holds", "does not hold"]
  rows = [line for line in text.splitlines() if line.startswith("| lottery_magnitude_p80_lr0.1 |")]
  assert [r.rsplit("|", 2)[1].split(" (")[0].strip() for r in rows] == ["does not hold", "holds"]
  parsed = report.parse_records_csv((tmp_path / "rep" / "records.csv").read_text())
  assert len(parsed) == 3 * 5 + 3 * 4
  assert parsed[0] == {"experiment": "l1_norm_vgg16_A", "table": "l1_norm", "seed": 1,
                       "regime": "baseline", "best_test_accuracy": 90.2, "test_accuracy": 90.1,
                       "params": 10, "flops": 100, "epochs": 1, "wall_time_s": 1.0}
  summary = json.loads((tmp_path / "rep" / "records.json").read_text())["summary"]
  assert summary["l1_norm_vgg16_A"]["claims"][1]["verdict"] == "holds"
  assert "## Not run, or incomplete\n\n- none" in text


def test_report_lists_missing_seeds_and_failures(tmp_path):
  s = reproduce.SUITES["tiny"]
  (tmp_path / "runs" / "lottery_magnitude_p80_lr0.1").mkdir(parents=True)
  (tmp_path / "runs" / "lottery_magnitude_p80_lr0.1" / "FAILED.txt").write_text("E: boom\n")
  out = tmp_path / "R.md"
  report.write(s, str(tmp_path / "runs"), {}, (1, 2, 3), str(out), command="c", machine="m")
  text = out.read_text()
  assert "`lottery_magnitude_p80_lr0.1` (Lottery, one-shot magnitude 80%, lr 0.1): seeds 1, " \
         "2, 3 incomplete; failed: E: boom." in text
  assert "`l1_norm_vgg16_A`" in text and "not finished within this run's compute budget" in text
  assert "architecture-search comparison" not in text   # the tiny suite has no uniform_e pass


def test_report_names_the_architecture_search_pair_only_where_it_ran(tmp_path):
  s = reproduce.SUITES["small"]
  def text(keys):
    return report.render(s, str(tmp_path), {}, [1], command="c", machine="m", wall_time_s=None,
                         pngs={}, keys=keys)
  assert "architecture-search comparison (paper section 5)" in text(None)
  assert "architecture-search comparison" in text(["network_slimming_vgg16_p50"])
  assert "architecture-search comparison" not in text(["l1_norm_vgg16_A"])


def test_report_of_only_some_experiments_covers_just_those(tmp_path):
  acc = {"baseline": 90.0, "finetune": 89.0, "scratch_e": 87.0, "scratch_b": 89.5,
         "lottery": 89.0, "lottery_random": 88.9}
  s = _fake_suite_runs(tmp_path, acc)
  out = tmp_path / "part" / "R.md"
  report.write(s, str(tmp_path / "runs"), {}, (1, 2, 3), str(out), command="c", machine="m",
               only=("lottery_magnitude_p80_lr0.1",))
  text = out.read_text()
  assert "| lottery_magnitude_p80_lr0.1 |" in text and "l1_norm_vgg16_A" not in text
  assert "- This report covers only `lottery_magnitude_p80_lr0.1` (`--only`)" in text
  assert "architecture-search comparison" not in text   # its experiment is not in this part
  records = json.loads((tmp_path / "part" / "records.json").read_text())
  assert {r["experiment"] for r in records["records"]} == {"lottery_magnitude_p80_lr0.1"}


def _write_config(root, key, seed, **fields):
  d = root / key / f"seed_{seed}"
  d.mkdir(parents=True, exist_ok=True)
  (d / "config.json").write_text(json.dumps(fields))


def test_report_states_the_scale_the_runs_recorded_and_flags_overrides(tmp_path):
  s = reproduce.SUITES["small"]
  runs = tmp_path / "runs"
  assert report.scale_line(s, str(runs), ["l1_norm_vgg16_A"], [1]) is None   # nothing on disk
  suite_scale = dict(dataset="fashion_mnist", limit_train=10000, limit_test=2000,
                     width_multiplier=0.25)
  _write_config(runs, "l1_norm_vgg16_A", 1, epochs=16, **suite_scale)
  _write_config(runs, "lottery_magnitude_p80_lr0.1_long", 1, epochs=32, **suite_scale)
  line = report.scale_line(s, str(runs), ["l1_norm_vgg16_A", "lottery_magnitude_p80_lr0.1_long"],
                           [1])
  assert line == ("- Scale of these runs (their config.json): dataset fashion_mnist, limit_train "
                  "10,000, limit_test 2,000, width_multiplier x0.25, epochs 16 (l1_norm_vgg16_A); "
                  "32 (lottery_magnitude_p80_lr0.1_long).")   # 2E is the experiment's own: no flag
  # trained on all of the data: the report must not repeat the suite's "first 10,000" as theirs
  _write_config(runs, "thinet_vgg16_p50", 1, epochs=16, **dict(suite_scale, limit_train=60000,
                                                              limit_test=10000))
  line = report.scale_line(s, str(runs), ["thinet_vgg16_p50"], [1])
  assert "limit_train 60,000, limit_test 10,000" in line
  assert "trained with overrides of the suite's settings (the suite sets limit_train 10,000, " \
         "limit_test 2,000)" in line
  text = report.render(s, str(runs), {}, [1], command="c", machine="m", wall_time_s=None, pngs={},
                       keys=["thinet_vgg16_p50"])
  assert line in text.splitlines()


# --- the tool -------------------------------------------------------------------------------

def _tool(*args, cwd):
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "reproduce.py"), *args],
                        capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_invocations_are_logged_and_summed_in_the_report_lines(tmp_path):
  root = str(tmp_path / "runs")
  assert report.invocation_lines(root) == []
  report.log_invocation(root, "python tools/reproduce.py --suite=small", 600.0, "cpu X", "t1")
  report.log_invocation(root, "python tools/reproduce.py --only=a", 300.0, "cpu X", "t2")
  lines = report.invocation_lines(root)
  assert lines[0].startswith("- Trained by 2 invocation(s), 15.0 min of wall time")
  assert "`python tools/reproduce.py --only=a`, 5.0 min" in lines[2]
  (tmp_path / "runs" / report.INVOCATIONS).write_text("not json")
  assert report.invocation_lines(root) == []   # a damaged log is left out, not fatal
  report.log_invocation(root, "python tools/reproduce.py", 60.0, "cpu X", "t3")
  assert (tmp_path / "runs" / (report.INVOCATIONS + ".damaged")).read_text() == "not json"
  assert report.invocation_lines(root)[0].startswith("- Trained by 1 invocation(s), 1.0 min")


def test_invocations_side_by_side_count_once_in_the_wall_time(tmp_path):
  root = str(tmp_path / "runs")
  report.log_invocation(root, "python tools/reproduce.py --only=a", 3600.0, "cpu X",
                        "2026-12-03 14:19 UTC")
  report.log_invocation(root, "python tools/reproduce.py --only=b", 5400.0, "cpu X",
                        "2026-12-03 14:19 UTC")
  report.log_invocation(root, "python tools/reproduce.py --only=c", 600.0, "cpu X",
                        "2026-12-03 17:00 UTC")   # after both: adds its own 10 min
  lines = report.invocation_lines(root)
  assert lines[0].startswith("- Trained by 3 invocation(s), 100.0 min of wall time in all, some "
                             "side by side (160.0 min summed")
  assert report.covered_seconds([{"started": "2026-12-03 14:00 UTC", "wall_time_s": 60},
                                 {"started": "2026-12-03 14:30 UTC", "wall_time_s": 60}]) == 120
  assert report.covered_seconds([{"started": "t1", "wall_time_s": 60}]) is None


def test_tool_unknown_suite_is_one_line_exit_2(tmp_path):
  r = _tool("--suite=huge", cwd=tmp_path)
  assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(
      "error: unknown --suite='huge'")
  assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_tool_tiny_end_to_end(tmp_path):
  """Trains the tiny suite (embedded data, 1 seed, 1 epoch), then reuses it for --report_only."""
  args = ("--suite=tiny", f"--root={tmp_path / 'runs'}", f"--out={tmp_path / 'R.md'}")
  r = _tool(*args, cwd=tmp_path)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "[2/2] lottery_magnitude_p80_lr0.1 seed 1: trained in" in r.stdout
  text = (tmp_path / "R.md").read_text()
  assert "| winning ticket [1 ep] |" in text and (tmp_path / "reproduction" /
                                                  "table_lottery.png").exists()
  r = _tool(*args, cwd=tmp_path)
  assert r.returncode == 0 and "[1/2] l1_norm_vgg16_A seed 1: reused" in r.stdout
