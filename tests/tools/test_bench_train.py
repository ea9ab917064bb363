"""tools/bench_train.py --quick: runs end to end and prints/writes well-formed results."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_tool(script, args, tmp_path):
  out = tmp_path / "result.json"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", script), "--quick",
                         f"--json_out={out}", *args], capture_output=True, text=True, env=env,
                        timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout, json.loads(out.read_text())


def test_quick_vgg_output_is_well_formed(tmp_path):
  stdout, r = run_tool("bench_train.py", ["--compare=steps_per_execution=2", "--nokernels"],
                       tmp_path)
  names = list(r["contestants"])
  assert names[:3] == ["ours", "ours_cached", "ours[steps_per_execution=2]"]
  assert "keras_fit" in names
  for name, c in r["contestants"].items():
    assert c["img_per_s"] > 0 and len(c["runs"]) == r["repeats"] == 2
    assert c["peak_rss_mb"] >= c["peak_rss_after_warmup_mb"] > 100, name  # its own process
    assert f"{name} " in stdout
  assert 0.0 <= r["data_wait_share"] < 1.0
  assert r["ratios"]["ours/keras_fit"] == pytest.approx(
      r["contestants"]["ours"]["img_per_s"] / r["contestants"]["keras_fit"]["img_per_s"])
  assert r["params"] > 0 and r["batch_size"] == 8
  if "torch" in names:  # optional dependency
    assert names[-3:] == ["torch", "torch_cl", "torch_cl_bf16"]
    assert r["ratios"]["ours/torch"] == pytest.approx(
        r["contestants"]["ours"]["img_per_s"] / r["contestants"]["torch"]["img_per_s"])
    assert "ours/torch_cl_bf16" in r["ratios"] and "torch/keras_fit" not in r["ratios"]
  else:
    assert any("torch not installed" in n for n in r["notes"])
  assert "share of step time spent on data" in stdout
  copies = r["dataset_copies"]  # quick mode: 8192 CIFAR images
  assert copies["dataset_mb"] == 8192 * 32 * 32 * 3 / 2**20
  assert 0.5 < copies["resident_copies"] <= copies["peak_copies"]
  assert "copies resident after 8 batches" in stdout


def _check_kernels(r, stdout, names):
  from tf_rethink.util import machine
  assert r["machine"]["isa"] == machine.isa() and r["machine"]["cpu"] == machine.cpu_model()
  assert stdout.splitlines()[0] == machine.format_machine(r["machine"])
  assert list(r["kernels"]) == names
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=import-outside-toplevel
  if not _pywrap_util_port.IsMklEnabled():
    # TensorFlow enables oneDNN by default only on CPUs with AVX512_VNNI / AVX512_BF16 / AMX
    # (or TF_ENABLE_ONEDNN_OPTS=1): elsewhere (e.g. AVX2 only) its convs are Eigen's, and the
    # probe must say that none ran rather than invent kernels.
    tf_names = [n for n in names if n.startswith("ours")]   # TensorFlow's contestants
    for name in tf_names:
      assert not any(key.startswith("convolution ") for key in r["kernels"][name]["ops"]), name
      assert f"oneDNN kernels of {name} (oneDNN " in stdout
    assert stdout.count("  no oneDNN convolution / matmul ran") >= len(tf_names)
    names = [n for n in names if n not in tf_names]
  for name in names:
    k = r["kernels"][name]
    assert k["onednn"].startswith("v3.") and k["steps"] == 2
    passes = {key for key in k["ops"] if key.startswith("convolution ")}
    assert {"convolution forward_training", "convolution backward_data",
            "convolution backward_weights"} <= passes, name
    for key in passes:
      op = k["ops"][key]
      assert op["calls"] > 0 and op["ms_per_step"] == pytest.approx(op["ms"] / 2, abs=1e-3)
      assert op["amx"] in (True, False, "partly")
    assert f"oneDNN kernels of {name} (oneDNN v3." in stdout
  # float32 without ONEDNN_DEFAULT_FPMATH_MODE: AMX has no float32 arithmetic, no conv runs on it
  assert not any(op["amx"] for key, op in r["kernels"]["ours"]["ops"].items()
                 if key.startswith("convolution "))


def test_quick_machine_and_kernels(tmp_path):
  """The machine line and the oneDNN-verbose probe: which kernels ran, per pass."""
  stdout, r = run_tool("bench_train.py", ["--model=resnet20", "--contestants=ours",
                                          "--memory_examples=0", "--mixed_precision=off"],
                       tmp_path)
  _check_kernels(r, stdout, ["ours"])


@pytest.mark.slow
def test_quick_kernels_of_an_env_variant_and_torch(tmp_path):
  stdout, r = run_tool("bench_train.py", ["--model=resnet20", "--contestants=ours,torch_cl_bf16",
                                          "--memory_examples=0", "--mixed_precision=off",
                                          "--compare=env.ONEDNN_DEFAULT_FPMATH_MODE=BF16"],
                       tmp_path)
  from tf_rethink.util import machine
  torch = ["torch_cl_bf16"] if "torch_cl_bf16" in r["contestants"] else []
  _check_kernels(r, stdout, ["ours", "ours[env.ONEDNN_DEFAULT_FPMATH_MODE=BF16]"] + torch)
  if torch and machine.isa()["amx_bf16"]:  # PyTorch's bf16 autocast runs its convs on AMX
    assert r["kernels"]["torch_cl_bf16"]["ops"]["convolution backward_weights"]["amx"] is True


def test_quick_resnet_without_torch_column(tmp_path):
  _, r = run_tool("bench_train.py", ["--model=resnet20", "--contestants=ours,keras_fit",
                                     "--mixed_precision=bf16", "--nokernels",
                                     "--compare=intra_op_threads=1,inter_op_threads=1"], tmp_path)
  assert list(r["contestants"]) == ["ours", "ours[intra_op_threads=1,inter_op_threads=1]",
                                    "keras_fit"]
  # each variant runs in its own process, so its thread pools really have the setting
  c = r["contestants"]
  assert c["ours[intra_op_threads=1,inter_op_threads=1]"]["tf_threads"] == [1, 1]
  assert c["ours"]["tf_threads"] == c["keras_fit"]["tf_threads"] != [1, 1]
  assert r["speed"]["mixed_precision"] == "bf16"
  assert set(r["ratios"]) == {"ours/keras_fit", "ours[intra_op_threads=1,inter_op_threads=1]/keras_fit"}
  assert r["dataset_copies"]["dataset_mb"] > 0
  assert "data_wait_share" not in r and r["kernels"] == {}


def test_quick_levers_take_effect(tmp_path):
  """lever.batchnorm=unfused really leaves no fused BatchNorm (and, where TensorFlow uses oneDNN,
  no oneDNN batch_normalization primitive runs); lever.grappler.remapping=off is in effect in
  that contestant's process only."""
  variant = "lever.batchnorm=unfused,lever.grappler.remapping=off"
  stdout, r = run_tool("bench_train.py", ["--model=resnet20", "--contestants=ours",
                                          "--memory_examples=0", "--mixed_precision=off",
                                          f"--compare={variant}"], tmp_path)
  base, lever = r["contestants"]["ours"]["levers"], r["contestants"][f"ours[{variant}]"]["levers"]
  assert base["batchnorm_layers"] == lever["batchnorm_layers"] == 19  # ResNet-20: 1 + 9 x 2
  assert base["fused_batchnorm_layers"] == 19 and lever["fused_batchnorm_layers"] == 0
  assert lever["grappler"]["remapping"] is False and "remapping" not in base["grappler"]
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=import-outside-toplevel
  def bn_ops(name):
    return [k for k in r["kernels"][name]["ops"] if k.startswith("batch_normalization")]
  if _pywrap_util_port.IsMklEnabled():
    assert bn_ops("ours") and not bn_ops(f"ours[{variant}]")
  assert r["contestants"][f"ours[{variant}]"]["img_per_s"] > 0


def test_bad_lever_is_a_usage_error(tmp_path):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_train.py"), "--quick",
                         "--compare=lever.grappler.warp_speed=on"], capture_output=True, text=True,
                        timeout=120, check=False)
  assert proc.returncode != 0
  assert "not a known lever" in proc.stderr and "remapping" in proc.stderr


def test_bad_compare_item_is_a_usage_error(tmp_path):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_train.py"), "--quick",
                         "--compare=mixed_precision=fp8"], capture_output=True, text=True,
                        timeout=120, check=False)
  assert proc.returncode != 0
  assert "mixed_precision" in proc.stderr


def test_quick_variant_trains_the_pruned_architecture_and_the_bf16_batchnorm_lever(tmp_path):
  """--variant=B: every contestant trains ResNet-56-B's kept widths (uneven counts); ours computes
  exactly the batch norms whose count is not a multiple of 16 in float32 (unfused: not a multiple
  of 8), and lever.batchnorm=bf16_every_width puts them back in fused bfloat16."""
  lever = "lever.batchnorm=bf16_every_width"
  stdout, r = run_tool("bench_train.py", ["--model=resnet56", "--variant=B", "--width_multiplier=0.5",
                                          "--contestants=ours,torch_cl_bf16", "--memory_examples=0",
                                          "--mixed_precision=bf16", "--nokernels",
                                          f"--compare={lever}"], tmp_path)
  stages = [8] * 9 + [16] * 9 + [32] * 9                   # ResNet-56 x0.5, block conv1 widths
  assert r["variant"] == "B" and len(r["widths"]) == 27 and r["widths"] != stages
  assert all(0 < w <= s for w, s in zip(r["widths"], stages))
  assert "model resnet56-B x0.5" in stdout
  odd = sum(w % 16 != 0 for w in [8] + r["widths"] + stages)   # stem bn1, block bn1s, block bn2s
  base = r["contestants"]["ours"]["levers"]
  assert base["batchnorm_layers"] == 55
  unfused = sum(w % 8 != 0 for w in [8] + r["widths"] + stages)
  assert base["float32_batchnorm_layers"] == odd > 0
  assert base["fused_batchnorm_layers"] == 55 - unfused and unfused > 0
  old = r["contestants"][f"ours[{lever}]"]["levers"]
  assert old["float32_batchnorm_layers"] == 0 and old["fused_batchnorm_layers"] == 55


def test_unknown_variant_is_a_usage_error(tmp_path):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_train.py"), "--quick",
                         "--model=vgg11", "--variant=A", "--contestants=ours"],
                        capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode != 0 and "Traceback" not in proc.stderr
  assert "vgg11" in proc.stderr or "variant" in proc.stderr


def test_quick_reports_the_convolutions_with_per_tap_weight_gradients(tmp_path):
  # VGG-16 x0.5: the rule of train/conv_weight_grad.py takes 2 of the 8x8 convs (128 x 128; the
  # first is 64 x 128) and every 4x4 and 2x2 conv (6), when `auto` applies here and computes bf16.
  from tf_rethink.train import speed
  stdout, r = run_tool("bench_train.py", ["--width_multiplier=0.5", "--contestants=ours",
                                          "--compare=conv_weight_grad=off", "--nokernels",
                                          "--memory_examples=0"], tmp_path)
  auto = speed.SpeedSettings()
  expected = 8 if auto.tap_matmul_weight_grads() and auto.policy() == "mixed_bfloat16" else 0
  levers = {n: c["levers"]["tap_matmul_weight_grad_layers"] for n, c in r["contestants"].items()}
  assert levers == {"ours": expected, "ours[conv_weight_grad=off]": 0}
  assert (f"convolutions with per-tap matmul weight gradients (--conv_weight_grad): ours "
          f"{expected}, ours[conv_weight_grad=off] 0") in stdout
