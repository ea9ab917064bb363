r"""Inference speed of the full vs the pruned SavedModel, next to the FLOPs ratio.

  python tools/bench_inference.py                 # the paper's pruned CIFAR architectures
  python tools/bench_inference.py --quick         # seconds; output format only (used by a test)

For each pruned architecture of the paper that the package can build (L1-norm VGG-16-A and
ResNet-56-B; Network Slimming VGG-19 at 70% when a `network_slimming` method is registered),
the full model gets random weights (random BN statistics and gammas too, so that data-free and
BN-based selections are not degenerate), the method's `select` + `shrink` make the physically
smaller model, and both are exported with `export.export_and_verify` and reloaded with
`tf.saved_model.load` (the `serving_default` signature, as a deployment would call it).

Measured, with the full and the pruned model interleaved in every repetition (so a load from other
processes hits both alike), medians over `--repeats`:
  * latency at batch 1 (ms per call, median of the calls of a repetition),
  * throughput at batch 64 (img/s).
speedup = full time / pruned time; target: speedup >= 0.8 x FLOPs ratio (FLOPs in the paper's
convention A, `tf_rethink.flops.count`).
"""
import json
import os
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tf_rethink  # noqa: E402,F401  (selects tf_keras before TensorFlow is imported)

# (label, model, method, constructor kwargs); the paper's predefined pruned architectures.
ARCHITECTURES = (
    ("VGG-16-A (L1-norm)", "vgg16", "l1_norm", {"variant": "A"}),
    ("ResNet-56-B (L1-norm)", "resnet56", "l1_norm", {"variant": "B"}),
    ("VGG-19 70% (Network Slimming)", "vgg19_slim", "network_slimming", {"ratio": 0.7}),
)

_ARCHS = flags.DEFINE_list("archs", [], "Labels' model names to run (default: all available).")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Interleaved repetitions.")
_CALLS = flags.DEFINE_integer("calls", 40, "Batch-1 calls per repetition.")
_BATCHES = flags.DEFINE_integer("batches", 4, "Batch-64 calls per repetition.")
_BIG = flags.DEFINE_integer("batch_size", 64, "Batch of the throughput measurement.")
_INTRA = flags.DEFINE_integer("intra_op_threads", 0, "TF intra-op threads (0: one per core).")
_KERAS_EXPORT = flags.DEFINE_bool("keras_export", True, "Export with export.export_and_verify "
                                   "(the package's Keras SavedModel; slow to write) instead of a "
                                   "serving-signature-only SavedModel (same inference graph).")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny widths, few calls: checks the output, not speed.")
_JSON = flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")


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


def available(archs_filter):
  """(label, model, method, kwargs) rows whose model and method exist; skipped rows' messages."""
  from tf_rethink.models import MODELS
  from tf_rethink.pruning import METHODS
  rows, skipped = [], []
  for label, model, method, kwargs in ARCHITECTURES:
    if archs_filter and model not in archs_filter:
      continue
    if model == "vgg19_slim" and model not in MODELS.names():
      model = "vgg19"
    if method not in METHODS.names():
      skipped.append(f"{label}: skipped, method {method!r} is not registered (yet)")
      continue
    rows.append((label, model, method, kwargs))
  return rows, skipped


def _time_calls(fn, x, calls):
  times = []
  for _ in range(calls):
    t0 = time.perf_counter()
    fn(x)
    times.append(time.perf_counter() - t0)
  return times


def bench_pair(label, model_name, method, kwargs, cfg, workdir):
  """Exports full + pruned; returns the row of measurements."""
  import numpy as np
  import tensorflow as tf
  from tf_rethink import export, flops
  from tf_rethink.models import MODELS
  from tf_rethink.pruning import METHODS
  shape, classes = (32, 32, 3), 10
  full = MODELS.get(model_name).build(input_shape=shape, num_classes=classes,
                                      width_multiplier=cfg["width_multiplier"])
  randomize(full)
  pruner = METHODS.get(method)(**kwargs)
  plan = pruner.select(pruner.prepare(full), None, model_name=model_name)
  pruned = pruner.shrink(full, plan)
  counts = {"full": flops.count(full), "pruned": flops.count(pruned)}
  rng = np.random.default_rng(0)
  sample = rng.normal(size=(8, *shape)).astype("float32")
  fns = {}
  for name, m in (("full", full), ("pruned", pruned)):
    path = os.path.join(workdir, f"{model_name}_{name}")
    if cfg["keras_export"]:
      export.export_and_verify(m, path, sample)
    else:
      _serving_export(m, path, sample)
    sig = tf.saved_model.load(path).signatures["serving_default"]
    fns[name] = (lambda s: lambda x: s(x))(sig)
  x1 = tf.constant(rng.normal(size=(1, *shape)).astype("float32"))
  xb = tf.constant(rng.normal(size=(cfg["batch_size"], *shape)).astype("float32"))
  for fn in fns.values():  # warm-up: first calls trace and allocate
    _time_calls(fn, x1, 3)
    _time_calls(fn, xb, 2)
  lat = {k: [] for k in fns}
  thr = {k: [] for k in fns}
  for _ in range(cfg["repeats"]):
    for name, fn in fns.items():
      lat[name].append(statistics.median(_time_calls(fn, x1, cfg["calls"])) * 1e3)
      t = _time_calls(fn, xb, cfg["batches"])
      thr[name].append(cfg["batch_size"] * len(t) / sum(t))
  row = {"label": label, "model": model_name, "method": method, "plan_variant": plan.variant,
         "flops_full": counts["full"].flops, "flops_pruned": counts["pruned"].flops,
         "params_full": counts["full"].params, "params_pruned": counts["pruned"].params}
  row["flops_ratio"] = row["flops_full"] / row["flops_pruned"]
  for name in fns:
    row[f"latency_ms_{name}"] = statistics.median(lat[name])
    row[f"latency_spread_{name}"] = _spread(lat[name])
    row[f"img_per_s_{name}"] = statistics.median(thr[name])
    row[f"throughput_spread_{name}"] = _spread(thr[name])
  row["speedup_batch1"] = row["latency_ms_full"] / row["latency_ms_pruned"]
  row["speedup_batch"] = row["img_per_s_pruned"] / row["img_per_s_full"]
  row["speedup_over_flops_batch1"] = row["speedup_batch1"] / row["flops_ratio"]
  row["speedup_over_flops_batch"] = row["speedup_batch"] / row["flops_ratio"]
  return row


def _serving_export(model, path, sample):
  """A SavedModel with only the serving signature (fast to write; the same inference graph as
  `export.export_and_verify`'s Keras SavedModel), checked against the in-memory model."""
  import numpy as np
  import tensorflow as tf
  fn = tf.function(lambda x: {"logits": model(x, training=False)},
                   input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
  module = tf.Module()
  module.serve, module.variables_ = fn, model.variables
  tf.saved_model.save(module, path, signatures={"serving_default": fn})
  got = tf.saved_model.load(path).signatures["serving_default"](tf.constant(sample))["logits"]
  if not np.allclose(got.numpy(), model(sample, training=False).numpy(), atol=1e-4, rtol=1e-4):
    raise RuntimeError(f"the reloaded SavedModel at {path} disagrees with the in-memory model")


def _spread(xs):
  med = statistics.median(xs)
  return (max(xs) - min(xs)) / med if med else 0.0


def format_rows(result) -> str:
  b = result["batch_size"]
  lines = [f"{'architecture':<32} {'FLOPs ratio':>11} {'b1 ms full/pruned':>18} {'speedup':>8} "
           f"{'/FLOPs':>7} {f'b{b} img/s full/pruned':>22} {'speedup':>8} {'/FLOPs':>7}"]
  for r in result["rows"]:
    lines.append(
        f"{r['label']:<32} {r['flops_ratio']:10.2f}x "
        f"{r['latency_ms_full']:8.2f}/{r['latency_ms_pruned']:<8.2f} {r['speedup_batch1']:7.2f}x "
        f"{r['speedup_over_flops_batch1']:6.2f} "
        f"{r['img_per_s_full']:10.0f}/{r['img_per_s_pruned']:<10.0f} {r['speedup_batch']:7.2f}x "
        f"{r['speedup_over_flops_batch']:6.2f}")
  noise = max([v for r in result["rows"] for k, v in r.items() if "spread" in k] or [0.0])
  lines.append(f"target: speedup >= 0.8 x FLOPs ratio (columns /FLOPs >= 0.80); largest spread "
               f"(max-min)/median of any timing over {result['repeats']} interleaved repetitions: "
               f"{noise:.0%}")
  lines += [f"note: {s}" for s in result["skipped"]]
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  import tensorflow as tf
  if _INTRA.value:
    tf.config.threading.set_intra_op_parallelism_threads(_INTRA.value)
  cfg = dict(repeats=_REPEATS.value, calls=_CALLS.value, batches=_BATCHES.value,
             batch_size=_BIG.value, width_multiplier=1.0, keras_export=_KERAS_EXPORT.value)
  if _QUICK.value:
    cfg.update(repeats=2, calls=3, batches=1, batch_size=8, width_multiplier=0.125,
               keras_export=False)
  rows, skipped = available(_ARCHS.value)
  result = dict(cfg, rows=[], skipped=skipped)
  with tempfile.TemporaryDirectory() as workdir:
    for row in rows:
      result["rows"].append(bench_pair(*row, cfg, workdir))
  print(format_rows(result))
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  app.run(main)
