"""tools/bench_inference.py --quick: runs end to end and prints/writes well-formed results."""
from tests.tools.test_bench_train import run_tool


def test_quick_output_is_well_formed(tmp_path):
  stdout, r = run_tool("bench_inference.py", [], tmp_path)
  labels = [row["label"] for row in r["rows"]]
  assert labels[:2] == ["VGG-16-A (L1-norm)", "ResNet-56-B (L1-norm)"]
  for row in r["rows"]:
    assert row["flops_full"] > row["flops_pruned"] > 0
    assert row["flops_ratio"] == row["flops_full"] / row["flops_pruned"]
    assert row["params_full"] > row["params_pruned"]
    for key in ("latency_ms_full", "latency_ms_pruned", "img_per_s_full", "img_per_s_pruned"):
      assert row[key] > 0, key
    assert row["speedup_batch1"] == row["latency_ms_full"] / row["latency_ms_pruned"]
    assert row["speedup_over_flops_batch"] == row["speedup_batch"] / row["flops_ratio"]
    assert row["label"] in stdout
  if "VGG-19 70% (Network Slimming)" not in labels:
    assert any("Network Slimming" in s for s in r["skipped"])
  assert "target: speedup >= 0.8 x FLOPs ratio" in stdout
