"""tools/bench_inference.py --quick: runs end to end and prints/writes well-formed results."""
import subprocess
import sys

import numpy as np
import pytest

from tests.tools.test_bench_train import ROOT, run_tool


def _check_row(row, stdout):
  assert row["flops_full"] > row["flops_pruned"] > 0
  assert row["flops_ratio"] == row["flops_full"] / row["flops_pruned"]
  assert row["params_full"] > row["params_pruned"]
  for key in ("latency_ms_full", "latency_ms_pruned", "img_per_s_full", "img_per_s_pruned"):
    assert row[key] > 0, key
  assert row["speedup_batch1"] == row["latency_ms_full"] / row["latency_ms_pruned"]
  assert row["speedup_over_flops_batch"] == row["speedup_batch"] / row["flops_ratio"]
  assert row["label"] in stdout


def test_quick_output_is_well_formed(tmp_path):
  # The Keras format is timed by test_times_two_exported_savedmodels (its export is slow to write).
  stdout, r = run_tool("bench_inference.py", ["--formats=serving", "--round_to=1,8"], tmp_path)
  labels = [(row["label"], row["format"]) for row in r["rows"]]
  archs = ("VGG-16-A (L1-norm)", "ResNet-56-B (L1-norm)", "VGG-19 70% (Network Slimming)")
  assert labels == [(label, "serving") for arch in archs
                    for label in (arch, f"{arch}, round_to=8")]
  for row in r["rows"]:
    _check_row(row, stdout)
  assert stdout.splitlines()[0].startswith("machine: ") and r["machine"]["cores"] > 0
  # round_to=8: every kept width of a layer wider than 8 is a multiple of 8, stated in the plan
  for plain, rounded in zip(r["rows"][::2], r["rows"][1::2]):
    assert plain["round_to"] == 1 and rounded["round_to"] == 8
    assert rounded["plan_variant"].endswith(",round_to=8")
    assert rounded["full_widths"] == plain["full_widths"]
    for full, kept in zip(rounded["full_widths"], rounded["pruned_widths"]):
      assert kept % 8 == 0 or full <= 8, (rounded["label"], full, kept)
    if any(k % 8 and f > 8 for f, k in zip(plain["full_widths"], plain["pruned_widths"])):
      assert rounded["pruned_widths"] != plain["pruned_widths"], rounded["label"]
  r["rows"] = r["rows"][::2]
  assert (r["threads_batch1"], r["threads_batch"]) == (1, 0)
  assert "intra-op threads: batch 1 1, batch 8 one per core" in stdout
  assert "target: speedup >= 0.9 x FLOPs ratio" in stdout
  # The slimming stand-in keeps the early layers wide and empties the deep ones (a trained
  # slimming VGG-19's shape), unlike uniform random BN scales.
  widths = r["rows"][2]["pruned_widths"]
  assert min(widths[:4]) > 4 * max(widths[-4:])


def test_times_two_exported_savedmodels(tmp_path):
  from tf_rethink import export, flops
  from tf_rethink.models import MODELS
  from tf_rethink.pruning import METHODS
  full = MODELS.get("vgg16").build(input_shape=(32, 32, 3), num_classes=10,
                                   width_multiplier=0.0625)
  pruner = METHODS.get("l1_norm")(variant="A")
  pruned = pruner.select(full, None, model_name="vgg16").apply(full)
  sample = np.zeros((2, 32, 32, 3), "float32")
  paths = [str(tmp_path / name) for name in ("baseline", "scratch_b")]
  for model, path in zip((full, pruned), paths):
    export.export_and_verify(model, path, sample)
  stdout, r = run_tool("bench_inference.py", [f"--savedmodels={','.join(paths)}"], tmp_path)
  (row,) = r["rows"]
  _check_row(row, stdout)
  assert row["label"] == "scratch_b vs baseline"
  # Parameters as the paper counts them (no BN moving statistics), of the in-memory models.
  assert row["params_full"] == flops.count(full).params
  assert row["params_pruned"] == flops.count(pruned).params
  assert row["params_pruned"] < row["params_full"]


def test_bad_formats_is_one_line_exit_2():
  proc = subprocess.run([sys.executable, f"{ROOT}/tools/bench_inference.py", "--formats=onnx"],
                        capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == (
      "bench_inference.py: error: --formats takes one or both of serving, keras")


def test_bad_round_to_is_one_line_exit_2():
  proc = subprocess.run([sys.executable, f"{ROOT}/tools/bench_inference.py", "--round_to=1,0"],
                        capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == (
      "bench_inference.py: error: --round_to=1,0 takes positive integers or auto, e.g. 1,8,16")


def test_bad_savedmodels_is_one_line_exit_2(tmp_path):
  proc = subprocess.run([sys.executable, f"{ROOT}/tools/bench_inference.py",
                         f"--savedmodels={tmp_path}"], capture_output=True, text=True,
                        timeout=120, check=False)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == (
      "bench_inference.py: error: --savedmodels takes two paths: "
      "--savedmodels=FULL_DIR,PRUNED_DIR")


def _slimming_model(input_shape, width):
  from tf_rethink.models import MODELS
  from tf_rethink.pruning.methods.network_slimming import slimming_bns
  model = MODELS.get("vgg19_slim").build(input_shape=input_shape, num_classes=10,
                                         width_multiplier=width)
  rng = np.random.default_rng(3)
  for i, bn in enumerate(slimming_bns(model).values()):
    weights = bn.get_weights()
    # A trained-looking shape unlike the stand-in's: the middle layers keep the most.
    weights[0] = (rng.uniform(0.0, 1.0, weights[0].shape) * (1.0 - abs(i - 8) / 9)).astype(
        weights[0].dtype)
    bn.set_weights(weights)
  return model


def test_slimming_scales_choose_the_slimming_rows_channels_and_floor(tmp_path):
  # A "trained" vgg19_slim x0.25 on Fashion-MNIST's input shape: its BN scales, copied into the
  # bench's 32x32x3 model of the same width (not --quick's x0.125), give the widths its own 70%
  # threshold gives. --floor also times the full graph at 1/16 width, once per architecture.
  from tf_rethink import export
  from tf_rethink.pruning import METHODS
  trained = _slimming_model((28, 28, 1), 0.25)
  pruner = METHODS.get("network_slimming")(ratio=0.7)
  want = [layer.filters for layer in pruner.select(trained, None).apply(trained).layers
          if hasattr(layer, "filters")]
  path = tmp_path / "baseline"
  export.export_and_verify(trained, str(path), np.zeros((2, 28, 28, 1), "float32"))
  stdout, r = run_tool("bench_inference.py", ["--formats=serving", "--archs=vgg19_slim",
                                              f"--slimming_scales={path}", "--round_to=1,8",
                                              "--floor"], tmp_path)
  row, rounded = r["rows"]
  for x in (row, rounded):
    _check_row(x, stdout)
  assert row["label"] == "VGG-19 x0.25 70% (Network Slimming, trained)"
  assert row["pruned_widths"] == want
  assert max(want[:2]) < max(want[6:10])   # the middle-heavy shape, not the stand-in's
  assert row["latency_ms_floor"] > 0 and row["img_per_s_floor"] > 0
  assert row["flops_floor"] * 50 < row["flops_full"]
  assert row["floor_share_batch1"] == row["latency_ms_floor"] / row["latency_ms_full"]
  assert "latency_ms_floor" not in rounded   # one floor per architecture and format
  assert "floor of vgg19_slim (the same graph at 1/16 width" in stdout


def test_slimming_scales_of_another_model_is_refused():
  from tf_rethink.models import MODELS
  from tf_rethink.util.errors import UsageError
  from tf_rethink.study import pruned_latency as bench
  other = MODELS.get("vgg16").build(input_shape=(32, 32, 3), num_classes=10,
                                    width_multiplier=0.125)
  model = _slimming_model((32, 32, 3), 0.125)
  assert bench.trained_width_multiplier(other, "vgg19_slim", (32, 32, 3), 10) == 0.125
  with pytest.raises(UsageError, match=r"--slimming_scales=p: its BatchNorm widths \[8, 8, 16"):
    bench.trained_slimming_gammas(model, other, "p")


def test_floor_bound_from_given_numbers():
  from tf_rethink.study.pruned_latency import floor_bound
  b = floor_bound(10.0, 6.0, 1.38)
  assert abs(b["floor_share_batch1"] - 0.6) < 1e-12
  assert abs(b["best_speedup_batch1"] - 10.0 / (6.0 + 4.0 / 1.38)) < 1e-12
  assert abs(b["best_speedup_over_flops_batch1"] - b["best_speedup_batch1"] / 1.38) < 1e-12
  assert floor_bound(10.0, 0.0, 2.0)["best_speedup_batch1"] == 2.0
