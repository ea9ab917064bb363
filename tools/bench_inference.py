r"""Inference speed of the full vs the pruned SavedModel, next to the FLOPs ratio.

  python tools/bench_inference.py                 # the paper's pruned CIFAR architectures
  python tools/bench_inference.py --round_to=1,8,16,32 --formats=serving   # rounded kept widths
  python tools/bench_inference.py --quick         # seconds; output format only (used by a test)
  python tools/bench_inference.py --savedmodels=runs/x/export/baseline,runs/x/export/scratch_b

The paper's pruned architectures (L1-norm VGG-16-A and ResNet-56-B; Network Slimming VGG-19 at
70%) are built from a full model with random weights (random BN statistics too), the method's
`select` + `shrink` make the physically smaller model, and both are exported in each of
`--formats`: `serving` (`export.export_serving`: BatchNorm folded into the convs, variables
frozen; what to deploy) and `keras` (`export.export_and_verify`: the trainable Keras SavedModel
an experiment writes to `export/<regime>`). They are reloaded with `tf.saved_model.load` and
timed through their `serving_default` signature, as a deployment calls them.
`--savedmodels=FULL,PRUNED` times two Keras SavedModels you exported instead (e.g. an
experiment's `export/baseline` and `export/<regime>`).

The slimming architecture: Network Slimming picks channels from BN scales trained with an L1
penalty, and in a trained VGG-19 those scales shrink with depth, so the global 70% threshold
empties the deep 512-wide layers and keeps most early channels. Untrained (uniform) scales would
instead thin every layer evenly (10.8x fewer FLOPs, not the paper's 2x). The bench draws the i-th
of n BN scales as U(0, 1) * exp(-SLIMMING_DEPTH_DECAY * i / (n - 1)); the decay is calibrated so
that the 70% threshold gives the paper's FLOPs (ours 3.92e8 of 7.97e8, 2.04x fewer; Network
Slimming paper, VGGNet on CIFAR-10: 3.91e8, 2.30 M params vs our 2.52 M). It is a stand-in for a
trained run's architecture, not one. `--slimming_scales=DIR` replaces it with a trained one: the BN
scales of DIR, a Keras SavedModel of a VGG-19 trained with the sparsity penalty (a run's
`export/baseline`, e.g. `python -m tf_rethink.main --method=network_slimming --model=vgg19_slim
--regime=baseline ...`), are copied into the bench's model in graph order, so the 70% threshold
(and every `--round_to`) selects the channels that training selected; the row says `trained`.
Only the widths come from DIR (any input shape it was trained on; its width multiplier, read from
its first BN, is the row's, named in the label); the timed weights stay random.

Rounding (`--round_to`, a list): every architecture is pruned once per value, the method built with
`round_to=N` (`pruning.select.rounded`: each kept channel count moved to the nearest multiple of N,
the same option as `tf_rethink.main --round_to`; 1 = the paper's widths), and each pruned model is
timed against the same full model; the row says `round_to=N` and gives its own FLOPs ratio (rounding
changes the FLOPs too), so speedup / FLOPs shows whether the removed channels became time.

The per-op floor (`--floor`): each full model is also exported and timed at 1/16 of its width.
That graph has the same ops with almost no arithmetic, so its batch-1 latency is the cost that
removing channels cannot remove (ResNet-56-B prunes inside blocks: the op count stays). The row
then states that share and the best batch-1 speedup a FLOPs cut of the row's ratio can give,
floor + (full - floor) / FLOPs ratio (`study.pruned_latency.floor_bound`).

Threads: TensorFlow fixes its thread pools per process, so each measurement runs in a child
process with its own `--threads_batch1` / `--threads_batch` (intra-op threads; 0 = one per core).
On the 2-core machine of the README, one thread gave the lowest batch-1 latency (ResNet-56:
4.9 vs 6.7 ms) and all cores the highest batch-64 throughput; those are the defaults.

Measured, with the full and the pruned model interleaved in every repetition (so a load from other
processes hits both alike), medians over `--repeats`:
  * latency at batch 1 (ms per call, median of the calls of a repetition),
  * throughput at batch 64 (img/s).
speedup = full time / pruned time; target: speedup >= 0.9 x FLOPs ratio (FLOPs in the paper's
convention A, `tf_rethink.flops.count`).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tf_rethink  # noqa: E402,F401
from tf_rethink.study import pruned_latency  # noqa: E402
from tf_rethink.util import errors  # noqa: E402
from tf_rethink.util import machine  # noqa: E402

# (label, model, method, constructor kwargs); the paper's predefined pruned architectures.
ARCHITECTURES = (
    ("VGG-16-A (L1-norm)", "vgg16", "l1_norm", {"variant": "A"}),
    ("ResNet-56-B (L1-norm)", "resnet56", "l1_norm", {"variant": "B"}),
    ("VGG-19 70% (Network Slimming)", "vgg19_slim", "network_slimming", {"ratio": 0.7}),
)
SLIMMING_DEPTH_DECAY = 5.5  # see the module docstring

_ARCHS = flags.DEFINE_list("archs", [], "Model names of ARCHITECTURES to run (default: all).")
_SAVEDMODELS = flags.DEFINE_list("savedmodels", [], "FULL,PRUNED: time these two exported "
                                 "SavedModels (Keras, from tf_rethink) instead of ARCHITECTURES.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Interleaved repetitions.")
_CALLS = flags.DEFINE_integer("calls", 100, "Batch-1 calls per repetition.")
_BATCHES = flags.DEFINE_integer("batches", 4, "Batch-64 calls per repetition.")
_BIG = flags.DEFINE_integer("batch_size", 64, "Batch of the throughput measurement.")
_THREADS_1 = flags.DEFINE_integer("threads_batch1", 1, "TF intra-op threads while timing batch 1 "
                                  "(0: one per core).")
_THREADS_B = flags.DEFINE_integer("threads_batch", 0, "TF intra-op threads while timing the big "
                                  "batch (0: one per core).")
FORMATS = ("serving", "keras")
_FORMATS = flags.DEFINE_list("formats", list(FORMATS), "SavedModel formats to time: serving "
                             "(export.export_serving: BN folded, frozen) and/or keras "
                             "(export.export_and_verify: the trainable Keras SavedModel).")
_ROUND_TO = flags.DEFINE_list("round_to", ["1"], "Kept channel counts rounded to a multiple of each "
                              "of these (1: the paper's widths; auto: this machine's channel "
                              "block, pruning.select.hardware_round_to); one row per value.")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny widths, few calls: checks the output, not speed.")
FLOOR_DIVISOR = 16
_FLOOR = flags.DEFINE_bool("floor", False, "Also time each full model at 1/16 of its width: the "
                           "per-op cost no channel pruning removes, and the batch-1 speedup bound "
                           "it leaves (floor + (full - floor) / FLOPs ratio).")
_JSON = flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")
_SLIM_SCALES = flags.DEFINE_string("slimming_scales", None, "A Keras SavedModel of a sparsity-"
                                   "trained vgg19_slim (a run's export/baseline): its BN scales "
                                   "choose the slimming row's channels instead of the stand-in.")
_TIMING_SPEC = flags.DEFINE_string("timing_spec", None, "Internal: run one timing phase in this "
                                   "process from this JSON spec and write its result next to it.")


def randomize(model, seed=0):
  """Random weights everywhere; BN gammas in [0.05, 1.5] and variances > 0."""
  import numpy as np
  import tf_keras as keras
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    weights = layer.get_weights()
    if not weights:
      continue
    if isinstance(layer, keras.layers.BatchNormalization):
      new = [rng.uniform(0.05, 1.5, w.shape) if i == 0 else
             rng.uniform(0.5, 2.0, w.shape) if i == len(weights) - 1 else
             rng.normal(0, 0.1, w.shape) for i, w in enumerate(weights)]
    else:
      new = [w + rng.normal(0, 0.01, w.shape) for w in weights]
    layer.set_weights([n.astype(w.dtype) for n, w in zip(new, weights)])
  return model


def slimming_like_gammas(model, decay=SLIMMING_DEPTH_DECAY, seed=0):
  """Sets the i-th of the n slimming BN scales to U(0, 1) * exp(-decay * i / (n - 1))."""
  import numpy as np
  from tf_rethink.pruning.methods.network_slimming import slimming_bns
  rng = np.random.default_rng(seed)
  bns = list(slimming_bns(model).values())
  for i, bn in enumerate(bns):
    weights = bn.get_weights()
    scale = np.exp(-decay * i / max(len(bns) - 1, 1))
    weights[0] = (rng.uniform(0.0, 1.0, weights[0].shape) * scale).astype(weights[0].dtype)
    bn.set_weights(weights)
  return model


def available(archs_filter):
  """(label, model, method, kwargs) rows whose model and method exist; skipped rows' messages."""
  from tf_rethink.models import MODELS
  from tf_rethink.pruning import METHODS
  rows, skipped = [], []
  for label, model, method, kwargs in ARCHITECTURES:
    if archs_filter and model not in archs_filter:
      continue
    if model not in MODELS.names() or method not in METHODS.names():
      skipped.append(f"{label}: skipped, model {model!r} or method {method!r} is not registered")
      continue
    rows.append((label, model, method, kwargs))
  return rows, skipped


def export_pair(label, model_name, method, kwargs, cfg, workdir):
  """Builds, prunes (once per cfg["round_to"] value) and exports the full and the pruned models in
  every format of cfg["formats"]; [(row without timings, {"full": path, "pruned": path})], one per
  format and rounding."""
  import numpy as np
  from tf_rethink import export, flops
  from tf_rethink.models import MODELS
  from tf_rethink.pruning import METHODS
  shape, classes = (32, 32, 3), 10
  width, trained = cfg["width_multiplier"], None
  if method == "network_slimming" and cfg.get("slimming_scales"):
    trained = export.load(cfg["slimming_scales"])
    width = pruned_latency.trained_width_multiplier(trained, model_name, shape, classes)
    label = label.replace(")", ", trained)")
    if width != cfg["width_multiplier"]:
      label = label.replace("VGG-19", f"VGG-19 x{width:g}")
  full = MODELS.get(model_name).build(input_shape=shape, num_classes=classes,
                                      width_multiplier=width)
  randomize(full)
  if trained is not None:
    pruned_latency.trained_slimming_gammas(full, trained, cfg["slimming_scales"])
  elif method == "network_slimming":
    slimming_like_gammas(full)
  sample = np.random.default_rng(0).normal(size=(8, *shape)).astype("float32")
  writers = {"keras": export.export_and_verify, "serving": export.export_serving}
  floor = None
  if cfg.get("floor"):   # the same graph at 1/FLOOR_DIVISOR of the width: the per-op cost
    floor = randomize(MODELS.get(model_name).build(input_shape=shape, num_classes=classes,
                                                   width_multiplier=width / FLOOR_DIVISOR))
    floor_flops = flops.count(floor).flops
  out = []
  for fmt in cfg["formats"]:
    full_path = os.path.join(workdir, f"{model_name}_full_{fmt}")
    writers[fmt](full, full_path, sample)
    floor_path = os.path.join(workdir, f"{model_name}_floor_{fmt}")
    if floor is not None:
      writers[fmt](floor, floor_path, sample)
    for round_to in cfg["round_to"]:
      pruner = METHODS.get(method)(**kwargs, round_to=round_to)
      plan = pruner.select(pruner.prepare(full), None, model_name=model_name)
      pruned = plan.apply(full)
      paths = {"full": full_path,
               "pruned": os.path.join(workdir, f"{model_name}_pruned_r{round_to}_{fmt}")}
      writers[fmt](pruned, paths["pruned"], sample)
      row = {"label": label if round_to == 1 else f"{label}, round_to={round_to}", "format": fmt,
             "model": model_name, "method": method, "round_to": round_to,
             "plan_variant": plan.variant, "full_widths": _conv_widths(full),
             "pruned_widths": _conv_widths(pruned)}
      if floor is not None and round_to == cfg["round_to"][0]:
        paths["floor"] = floor_path
        row["flops_floor"] = floor_flops
      out.append((_with_counts(row, full, pruned), paths))
  return out


def savedmodel_pair(full_path, pruned_path):
  """The row (without timings) for two SavedModels exported by tf_rethink."""
  from tf_rethink import export
  full, pruned = export.load(full_path), export.load(pruned_path)
  row = {"label": f"{os.path.basename(os.path.normpath(pruned_path))} vs "
                  f"{os.path.basename(os.path.normpath(full_path))}", "format": "keras",
         "model": full.name, "full_path": full_path, "pruned_path": pruned_path,
         "pruned_widths": _conv_widths(pruned)}
  return _with_counts(row, full, pruned), {"full": full_path, "pruned": pruned_path}


def _with_counts(row, full, pruned):
  from tf_rethink import flops
  counts = {"full": flops.count(full), "pruned": flops.count(pruned)}
  row.update(flops_full=counts["full"].flops, flops_pruned=counts["pruned"].flops,
             params_full=counts["full"].params, params_pruned=counts["pruned"].params,
             input_shape=list(full.input_shape[1:]))
  row["flops_ratio"] = row["flops_full"] / row["flops_pruned"]
  return row


def _conv_widths(model):
  return [layer.filters for layer in model.layers if hasattr(layer, "filters")]


# ---- timing (one phase per child process: thread pools are fixed per process) ----

def _time_calls(fn, x, calls):
  times = []
  for _ in range(calls):
    t0 = time.perf_counter()
    fn(x)
    times.append(time.perf_counter() - t0)
  return times


def time_phase(spec):
  """Times every pair of spec["pairs"] at spec["batch"]; per repetition, the median call time in
  ms (batch 1) or the img/s over spec["calls"] calls (bigger batches)."""
  import numpy as np
  import tensorflow as tf
  batch, calls = spec["batch"], spec["calls"]
  results = []
  for pair in spec["pairs"]:
    fns = {name: tf.saved_model.load(path).signatures["serving_default"]
           for name, path in pair["paths"].items()}
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, *pair["input_shape"]))
                    .astype("float32"))
    for fn in fns.values():  # warm-up: first calls trace and allocate
      _time_calls(fn, x, 3)
    runs = {name: [] for name in fns}
    for _ in range(spec["repeats"]):
      for name, fn in fns.items():
        t = _time_calls(fn, x, calls)
        runs[name].append(statistics.median(t) * 1e3 if batch == 1 else batch * len(t) / sum(t))
    results.append(runs)
  return results


def run_phase(pairs, batch, calls, threads, repeats, workdir):
  """Runs `time_phase` in a child process with `threads` intra-op threads."""
  spec_path = os.path.join(workdir, f"timing_b{batch}.json")
  with open(spec_path, "w") as f:
    json.dump({"pairs": pairs, "batch": batch, "calls": calls, "repeats": repeats,
               "threads": threads}, f)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, os.path.abspath(__file__), f"--timing_spec={spec_path}"],
                        env=env, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"the batch-{batch} timing process failed:\n{proc.stderr[-3000:]}")
  with open(spec_path + ".out") as f:
    return json.load(f)


def add_timings(row, lat, thr):
  for name in ("full", "pruned"):
    row[f"latency_ms_{name}"] = statistics.median(lat[name])
    row[f"latency_spread_{name}"] = _spread(lat[name])
    row[f"img_per_s_{name}"] = statistics.median(thr[name])
    row[f"throughput_spread_{name}"] = _spread(thr[name])
  row["speedup_batch1"] = row["latency_ms_full"] / row["latency_ms_pruned"]
  row["speedup_batch"] = row["img_per_s_pruned"] / row["img_per_s_full"]
  row["speedup_over_flops_batch1"] = row["speedup_batch1"] / row["flops_ratio"]
  row["speedup_over_flops_batch"] = row["speedup_batch"] / row["flops_ratio"]
  if "floor" in lat:
    row["latency_ms_floor"] = statistics.median(lat["floor"])
    row["img_per_s_floor"] = statistics.median(thr["floor"])
    row.update(pruned_latency.floor_bound(row["latency_ms_full"], row["latency_ms_floor"],
                                          row["flops_ratio"]))
  return row


def _spread(xs):
  med = statistics.median(xs)
  return (max(xs) - min(xs)) / med if med else 0.0


def format_rows(result) -> str:
  b = result["batch_size"]
  width = max([32] + [len(r["label"]) for r in result["rows"]])
  lines = [machine.format_machine(result["machine"]),
           f"{'architecture':<{width}} {'format':<7} {'FLOPs ratio':>11} {'b1 ms full/pruned':>18} "
           f"{'speedup':>8} {'/FLOPs':>7} {f'b{b} img/s full/pruned':>22} {'speedup':>8} "
           f"{'/FLOPs':>7}"]
  for r in result["rows"]:
    lines.append(
        f"{r['label']:<{width}} {r['format']:<7} {r['flops_ratio']:10.2f}x "
        f"{r['latency_ms_full']:8.2f}/{r['latency_ms_pruned']:<8.2f} {r['speedup_batch1']:7.2f}x "
        f"{r['speedup_over_flops_batch1']:6.2f} "
        f"{r['img_per_s_full']:10.0f}/{r['img_per_s_pruned']:<10.0f} {r['speedup_batch']:7.2f}x "
        f"{r['speedup_over_flops_batch']:6.2f}")
  for r in result["rows"]:
    if "latency_ms_floor" in r:
      lines.append(
          f"  floor of {r['model']} (the same graph at 1/{FLOOR_DIVISOR} width, "
          f"{r['flops_floor']:.3g} FLOPs): batch 1 {r['latency_ms_floor']:.2f} ms = "
          f"{r['floor_share_batch1']:.0%} of the full model's; at most "
          f"{r['best_speedup_batch1']:.2f}x ({r['best_speedup_over_flops_batch1']:.2f} of the "
          f"FLOPs ratio) from pruning channels at batch 1; batch {b} {r['img_per_s_floor']:.0f} "
          "img/s")
  noise = max([v for r in result["rows"] for k, v in r.items() if "spread" in k] or [0.0])
  threads = lambda n: "one per core" if n == 0 else str(n)  # noqa: E731
  lines.append(f"target: speedup >= 0.9 x FLOPs ratio (columns /FLOPs >= 0.90); intra-op threads: "
               f"batch 1 {threads(result['threads_batch1'])}, batch {b} "
               f"{threads(result['threads_batch'])}; largest spread (max-min)/median of any "
               f"timing over {result['repeats']} interleaved repetitions: {noise:.0%}")
  if result.get("load_average_after"):
    lines.append("load average (1/5/15 min) after: "
                 + machine.format_load(result["load_average_after"]))
  lines += [f"note: {s}" for s in result["skipped"]]
  return "\n".join(lines)


def timing_child(spec_path):
  import tensorflow as tf
  with open(spec_path) as f:
    spec = json.load(f)
  if spec["threads"]:
    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
  result = time_phase(spec)
  with open(spec_path + ".out", "w") as f:
    json.dump(result, f)


def _round_to_values():
  from tf_rethink.pruning import select  # pylint: disable=import-outside-toplevel
  try:
    values = [select.resolve_round_to(v) for v in _ROUND_TO.value]
  except errors.UsageError:
    values = []
  if not values:
    _usage_error(f"--round_to={','.join(_ROUND_TO.value)} takes positive integers or auto, "
                 "e.g. 1,8,16")
  return list(dict.fromkeys(values))


def _usage_error(message):
  """A user mistake: one line on stderr, exit status 2."""
  print(f"bench_inference.py: error: {message}", file=sys.stderr)
  sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  if _TIMING_SPEC.value:
    return timing_child(_TIMING_SPEC.value)
  from tf_rethink.util import quiet  # pylint: disable=import-outside-toplevel
  quiet.import_tensorflow().get_logger().setLevel("ERROR")
  if _SAVEDMODELS.value and len(_SAVEDMODELS.value) != 2:
    _usage_error("--savedmodels takes two paths: --savedmodels=FULL_DIR,PRUNED_DIR")
  if set(_FORMATS.value) - set(FORMATS) or not _FORMATS.value:
    _usage_error(f"--formats takes one or both of {', '.join(FORMATS)}")
  cfg = dict(repeats=_REPEATS.value, calls=_CALLS.value, batches=_BATCHES.value,
             batch_size=_BIG.value, width_multiplier=1.0, formats=list(_FORMATS.value),
             threads_batch1=_THREADS_1.value, threads_batch=_THREADS_B.value,
             round_to=_round_to_values(), slimming_scales=_SLIM_SCALES.value,
             floor=_FLOOR.value,
             machine=machine.describe())
  if _QUICK.value:
    cfg.update(repeats=2, calls=3, batches=1, batch_size=8, width_multiplier=0.125)
  result = dict(cfg, rows=[], skipped=[])
  with tempfile.TemporaryDirectory() as workdir:
    pairs = []
    if _SAVEDMODELS.value:
      try:
        pairs.append(savedmodel_pair(*_SAVEDMODELS.value))
      except errors.UsageError as e:
        _usage_error(str(e))
    else:
      archs, result["skipped"] = available(_ARCHS.value)
      try:
        for arch in archs:
          pairs += export_pair(*arch, cfg, workdir)
      except errors.UsageError as e:
        _usage_error(str(e))
    specs = [{"paths": paths, "input_shape": row["input_shape"]} for row, paths in pairs]
    lat = run_phase(specs, 1, cfg["calls"], cfg["threads_batch1"], cfg["repeats"], workdir)
    thr = run_phase(specs, cfg["batch_size"], cfg["batches"], cfg["threads_batch"],
                    cfg["repeats"], workdir)
    result["rows"] = [add_timings(row, l, t) for (row, _), l, t in zip(pairs, lat, thr)]
  result["load_average_after"] = machine.load_average()
  print(format_rows(result))
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  app.run(main)
