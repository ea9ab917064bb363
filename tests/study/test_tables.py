"""make_tables: paper numbers beside the mean ± std of fixture run records; missing rows marked."""
import json
import os
import subprocess
import sys

from tf_rethink.study import paper_numbers
from tf_rethink.study import tables

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _record(path, config, accs):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(config, f)
  with open(os.path.join(path, "results.json"), "w") as f:
    json.dump({regime: {"regime": regime, "test_accuracy": acc - 0.5, "best_test_accuracy": acc}
               for regime, acc in accs.items()}, f)


def _fixture(root):
  l1 = {"method": "l1_norm", "model": "resnet56", "dataset": "cifar10", "variant": "B",
        "prune_ratio": None, "regime": "all", "lr": 0.1, "method_options": {}}
  for seed, e in ((1, 92.0), (2, 93.0), (3, 94.0)):
    _record(os.path.join(root, "l1", f"seed_{seed}"), dict(l1, seed=seed),
            {"baseline": 93.5, "scratch_e": e, "scratch_b": e + 0.5})
  # A lottery run of the same model/variant counts only in the lottery table.
  _record(os.path.join(root, "lot"), dict(l1, regime="lottery", seed=1),
          {"baseline": 90.0, "lottery": 80.0, "scratch_e": 70.0})
  ns = {"method": "network_slimming", "model": "vgg19_slim", "dataset": "cifar100",
        "variant": "", "prune_ratio": 0.50, "regime": "all", "lr": 0.1, "method_options": {}}
  _record(os.path.join(root, "ns"), ns, {"scratch_e": 71.0})


def test_paper_numbers_keys_are_unique_and_tagged():
  keys = [paper_numbers.key(r) for r in paper_numbers.ROWS]
  assert len(keys) == len(set(keys))
  cell = paper_numbers.lookup("l1_norm", "resnet56", "ResNet-56-B", "scratch_b")
  assert (cell.value, cell.std, cell.tag) == (93.05, 0.18, "[X]")
  assert paper_numbers.lookup("magnitude", "vgg19", "30%", "finetune", "cifar100").value == 71.96
  assert set(paper_numbers.TABLES) == {r.table for r in paper_numbers.ROWS}


def test_render_means_stds_and_missing_rows(tmp_path):
  _fixture(str(tmp_path))
  runs = tables.find_runs([str(tmp_path)])
  assert len(runs) == 5
  text = tables.render("l1_norm", runs)
  row = next(line for line in text.splitlines() if "ResNet-56-B" in line)
  cells = [c.strip() for c in row.split("|")[1:-1]]
  assert cells[3:5] == ["93.14 (±0.12) [X]", "93.50 ± 0.00 (n=3)"]
  assert cells[7:11] == ["92.54 (±0.19) [X]", "93.00 ± 1.00 (n=3)", "93.05 (±0.18) [X]",
                         "93.50 ± 1.00 (n=3)"]
  assert cells[5:7] == ["92.67 (±0.14) [P?]", "not run"]   # no fine-tune record
  assert cells[-1] == "3 record(s)"
  row_a = next(line for line in text.splitlines() if "ResNet-56-A" in line)
  assert row_a.count("not run") == 5
  final = tables.render("l1_norm", runs, metric="final")
  assert "92.50 ± 1.00 (n=3)" in final
  lottery = tables.render("lottery", runs)
  row = next(line for line in lottery.splitlines() if "L1 ResNet-56-B, lr 0.1 " in line)
  assert "80.00 (n=1)" in row and "70.00 (n=1)" in row
  ns = tables.render("network_slimming", runs)
  row = next(line for line in ns.splitlines() if "cifar100 | vgg19_slim" in line)
  assert "71.00 (n=1)" in row and "71.94 (±0.17) [P?]" in row


def test_rows_found_by_flagfile_workdir_and_named_when_missing(tmp_path):
  flags_dir = tmp_path / "flags"
  (flags_dir / "common").mkdir(parents=True)
  (flags_dir / "common" / "c10.cfg").write_text("--dataset=cifar10\n--lr=0.1\n")
  (flags_dir / "l1").mkdir()
  (flags_dir / "l1" / "r56b.cfg").write_text(
      "# header\n--flagfile=flags/common/c10.cfg\n--method=l1_norm\n--model=resnet56\n"
      "--variant=B\n--workdir=out/r56b\n")
  (flags_dir / "l1" / "r56a.cfg").write_text(
      "--flagfile=flags/common/c10.cfg\n--method=l1_norm\n--model=resnet56\n--variant=A\n"
      "--workdir=out/r56a\n")
  _fixture(str(tmp_path / "out" / "r56b"))
  index = tables.flagfile_index(str(flags_dir))
  assert dict(index)[os.path.join("flags", "l1", "r56b.cfg")]["dataset"] == "cifar10"
  runs = tables.runs_from_flagfiles(index, str(tmp_path))
  text = tables.render("l1_norm", runs, index=index)
  assert "93.00 ± 1.00 (n=3)" in text
  row_a = next(line for line in text.splitlines() if "ResNet-56-A" in line)
  assert "not run: `--flagfile=flags/l1/r56a.cfg --seeds=5`" in row_a


def test_make_tables_tool(tmp_path):
  _fixture(str(tmp_path / "runs"))
  out = tmp_path / "tables.md"
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_tables.py"),
                         f"--runs={tmp_path / 'runs'}", f"--flags_dir={ROOT}/flags",
                         "--tables=l1_norm,network_slimming", f"--out={out}"],
                        capture_output=True, text=True, cwd=str(tmp_path), check=True)
  assert "run records" in proc.stdout
  text = out.read_text()
  assert "### Table L1" in text and "### Table NS" in text and "### Table SSS" not in text
  assert "93.00 ± 1.00 (n=3)" in text
