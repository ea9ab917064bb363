r"""Training throughput of tf_rethink's trainer vs plain `model.fit` vs PyTorch, side by side.

  python tools/bench_train.py --model=vgg16 --batch_size=64
  python tools/bench_train.py --model=resnet56 --compare=mixed_precision=bf16 --compare=steps_per_execution=4
  python tools/bench_train.py --quick            # seconds; output format only (used by a test)

Every contestant trains the same architecture (a registered CIFAR model, 32x32x3 inputs, 10
classes) on synthetic data, in ONE process, in interleaved repetitions (A B C A B C ...), so a
load from other processes hits all of them alike; the table gives the median img/s of the
repetitions and their spread (max-min)/median, the noise of this run.

  ours          the trainer's path: `trainer.compile_model` (PyTorch-equivalent SGD with coupled
                L2, cross-entropy, accuracy) in `make_strategy(--strategy)`, `speed.policy_scope`,
                StepLR callback, the speed settings of the flags; data through the same tf.data
                pipeline as `data.pipeline` (`data.pipeline.from_arrays`: shuffle, per-example
                pad-crop-flip + normalize map, batch, prefetch) from an in-memory uint8 array.
  ours_cached   the same compiled model fed ONE cached batch: 1 - ours/ours_cached is the share
                of step time spent waiting for data.
  ours[k=v]     `--compare` variants of the speed settings (e.g. mixed_precision=bf16).
  keras_fit     a minimal plain tf_keras baseline: same model, `keras.optimizers.SGD(0.1, 0.9)`,
                `model.fit` with default settings, same data pipeline.
  torch         the same architecture in PyTorch (`tools/torch_models.py`), float32 NCHW, SGD
                (momentum 0.9, weight decay 1e-4), as the paper's reference code trains; random
                tensors; only when torch is installed (optional, never a package dependency).

Throughput is steady state: the first execution of each repetition (iterator start-up, prefetch
fill) is excluded, and the first call of each contestant (tracing, warm-up) is not timed at all.
Peak resident memory (getrusage ru_maxrss) is read after each contestant's warm-up; it only grows,
so each number is the process peak up to that point (ours is measured first). Before any model
is built, `dataset_copies` measures how many copies of an in-memory training set the trainer's
pipeline keeps resident (`--memory_examples` random CIFAR images; 1.0 = the data itself).
"""
import json
import os
import resource
import statistics
import sys
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tf_rethink  # noqa: E402,F401  (selects tf_keras before TensorFlow is imported)
from tf_rethink import config as config_lib  # noqa: E402
from tf_rethink.train import speed as speed_lib  # noqa: E402

_D = speed_lib.SpeedSettings()
_MODEL = flags.DEFINE_string("model", "vgg16", "Registered CIFAR model (vgg11..19, resnet20..110).")
_WIDTH = flags.DEFINE_float("width_multiplier", 1.0, "Width multiplier of the model.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Batch size (paper: 64 on CIFAR).")
_STEPS = flags.DEFINE_integer("steps", 24, "Training steps per timed repetition.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Interleaved repetitions per contestant.")
_EXAMPLES = flags.DEFINE_integer("examples", 4096, "Synthetic training images held in memory.")
_MEMORY_EXAMPLES = flags.DEFINE_integer("memory_examples", 32768, "Images (96 MiB at 32768) of the "
                                        "dataset-copies measurement; 0 skips it.")
_STRATEGY = flags.DEFINE_string("strategy", "mirrored", "Strategy of `ours` (as main's --strategy).")
_SPE = flags.DEFINE_integer("steps_per_execution", _D.steps_per_execution, "ours: steps per call.")
_MP = flags.DEFINE_enum("mixed_precision", _D.mixed_precision, config_lib.PRECISIONS,
                        "ours: mixed precision.")
_JIT = flags.DEFINE_enum("jit_compile", _D.jit_compile, config_lib.JIT_CHOICES, "ours: XLA.")
_INTRA = flags.DEFINE_integer("intra_op_threads", _D.intra_op_threads,
                              "TF intra-op threads and torch threads (0: one per core).")
_INTER = flags.DEFINE_integer("inter_op_threads", _D.inter_op_threads, "TF inter-op threads.")
_COMPARE = flags.DEFINE_multi_string("compare", [], "Extra `ours` variants: comma-separated "
                                     "speed settings, e.g. mixed_precision=bf16,steps_per_execution=4.")
_CONTESTANTS = flags.DEFINE_list("contestants", ["ours", "ours_cached", "keras_fit", "torch"],
                                 "Which of ours, ours_cached, keras_fit, torch to run.")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny model and few steps: checks the output, not speed.")
_JSON = flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")


def peak_rss_mb() -> float:
  """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Timer:
  """Keras callback collecting (step, time) at the end of each execution."""

  def __new__(cls):
    import tf_keras as keras

    class Timer(keras.callbacks.Callback):
      def on_train_begin(self, logs=None):
        self.marks = []

      def on_train_batch_end(self, batch, logs=None):
        self.marks.append((batch, time.perf_counter()))

    return Timer()


def steady_rate(marks, batch_size) -> float:
  """img/s between the first and the last mark (the first execution is excluded)."""
  (s0, t0), (s1, t1) = marks[0], marks[-1]
  if s1 <= s0:
    raise ValueError("need at least two executions per repetition; raise --steps")
  return (s1 - s0) * batch_size / (t1 - t0)


def synthetic_pipeline(images, labels, batch_size, seed=1):
  """The training pipeline of `data.pipeline` (cifar10 preprocessing: shuffle, per-example
  pad-crop-flip + normalize, batch, prefetch) over in-memory images, repeated."""
  from tf_rethink.data.pipeline import from_arrays
  return from_arrays(images, labels, "cifar10", batch_size=batch_size, seed=seed, train=True,
                     repeat=True, drop_remainder=True)


def resident_mb() -> float:
  """Resident memory now, MiB, after returning freed heap pages to the OS (Linux)."""
  import ctypes
  import gc
  gc.collect()
  try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as f:
      return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024.0
  except (OSError, StopIteration):
    return float("nan")


def dataset_copies(examples, batch_size, seed=2):
  """Copies of an in-memory training set the trainer's pipeline keeps resident: the growth of
  resident memory from building `synthetic_pipeline` on `examples` random CIFAR images (the numpy
  array then dropped) to after 8 batches (the whole-split shuffle buffer is full by then),
  divided by the images' bytes; and the peak during the conversion, same unit."""
  import numpy as np
  before = resident_mb()
  images = np.random.default_rng(seed).integers(0, 256, (examples, 32, 32, 3), dtype=np.uint8)
  labels = np.zeros(examples, np.int64)
  size = images.nbytes / 2**20
  ds = synthetic_pipeline(images, labels, batch_size)
  del images, labels
  iterator = iter(ds)
  for _ in range(8):
    next(iterator)
  resident = resident_mb() - before
  peak = peak_rss_mb() - before
  del iterator, ds
  return {"dataset_mb": size, "resident_copies": resident / size, "peak_copies": peak / size}


def cached_batch(ds):
  """One batch of `ds`, repeated from memory: a data pipeline that costs (almost) nothing."""
  return ds.take(1).cache().repeat()


class KerasContestant:
  """One compiled tf_keras model + dataset; `run(steps)` returns steady-state img/s."""

  def __init__(self, name, model, ds, batch_size, callbacks=()):
    self.name, self.model, self.ds = name, model, ds
    self.batch_size, self.callbacks = batch_size, list(callbacks)

  def warm(self, steps):
    self.model.fit(self.ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=self.callbacks)

  def run(self, steps):
    timer = _Timer()
    self.model.fit(self.ds, epochs=1, steps_per_epoch=steps, verbose=0,
                   callbacks=[timer, *self.callbacks])
    return steady_rate(timer.marks, self.batch_size)


class TorchContestant:
  """The PyTorch twin, float32, trained on a few random batches in memory."""

  def __init__(self, model, batch_size, num_classes, shape, threads):
    import torch
    if threads:
      torch.set_num_threads(threads)
    torch.manual_seed(0)
    self.torch, self.model, self.batch_size = torch, model, batch_size
    self.opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    h, w, c = shape
    self.batches = [(torch.randn(batch_size, c, h, w),
                     torch.randint(0, num_classes, (batch_size,))) for _ in range(4)]
    self.model.train()

  def _step(self, i):
    x, y = self.batches[i % len(self.batches)]
    self.opt.zero_grad(set_to_none=True)
    loss = self.torch.nn.functional.cross_entropy(self.model(x), y)
    loss.backward()
    self.opt.step()

  def warm(self, steps):
    for i in range(steps):
      self._step(i)

  def run(self, steps):
    self._step(0)
    t0 = time.perf_counter()
    for i in range(1, steps):
      self._step(i)
    return (steps - 1) * self.batch_size / (time.perf_counter() - t0)


def parse_settings(text: str) -> dict:
  """'mixed_precision=bf16,steps_per_execution=4' -> SpeedSettings kwargs (ints converted)."""
  try:
    return config_lib.parse_speed_settings(text)
  except config_lib.UsageError as e:
    raise app.UsageError(f"--compare: {e}") from None


def build_contestants(cfg):
  """Builds every contestant (ours first); returns [(name, contestant)] and memory readings."""
  import numpy as np
  import tensorflow as tf
  import tf_keras as keras
  from tf_rethink import flops
  from tf_rethink.models import MODELS
  from tf_rethink.train import trainer
  from tf_rethink.train.schedules import StepLR
  from tf_rethink.train.strategy import make_strategy

  spec = MODELS.get(cfg["model"])
  shape, classes, bs = (32, 32, 3), 10, cfg["batch_size"]
  rng = np.random.default_rng(0)
  # One tensor shared by every contestant's pipeline (from_tensor_slices of a tensor: no copy).
  images = tf.convert_to_tensor(rng.integers(0, 256, (cfg["examples"], *shape), dtype=np.uint8))
  labels = tf.convert_to_tensor(rng.integers(0, classes, cfg["examples"]).astype(np.int64))
  widths = __import__("tf_rethink.models", fromlist=["scale_widths"]).scale_widths(
      spec.default_widths(), cfg["width_multiplier"])

  def build():
    return spec.build(widths, input_shape=shape, num_classes=classes,
                      width_multiplier=cfg["width_multiplier"])

  memory = {"start": peak_rss_mb()}
  out = []
  tspec = trainer.TrainSpec(epochs=1, lr=0.1, batch_size=bs, weight_decay=1e-4)
  variants = [("ours", cfg["speed"])] + [
      (f"ours[{text}]", speed_lib.SpeedSettings(**{**cfg["speed_dict"], **parse_settings(text)}))
      for text in cfg["compare"]]
  strategy = make_strategy(cfg["strategy"])
  params = None
  for name, speed in variants:
    if name == "ours" and "ours" not in cfg["contestants"] and "ours_cached" not in cfg["contestants"]:
      continue
    with strategy.scope(), speed_lib.policy_scope(speed):
      model = trainer.compile_model(build(), tspec, speed)
    params = flops.count(model).params
    ds = synthetic_pipeline(images, labels, bs)
    if name != "ours" or "ours" in cfg["contestants"]:
      out.append((name, KerasContestant(name, model, ds, bs, [StepLR(0.1)])))
    if name == "ours" and "ours_cached" in cfg["contestants"]:
      out.append(("ours_cached", KerasContestant("ours_cached", model, cached_batch(ds), bs,
                                                 [StepLR(0.1)])))
  if "keras_fit" in cfg["contestants"]:
    model = build()
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    params = params or flops.count(model).params
    out.append(("keras_fit", KerasContestant("keras_fit", model,
                                             synthetic_pipeline(images, labels, bs), bs)))
  torch_note = None
  if "torch" in cfg["contestants"]:
    try:
      import torch  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
      import torch_models
    except ImportError:
      torch_note = "torch not installed (pip install torch==2.13.0): PyTorch column skipped"
    else:
      tmodel = torch_models.build(cfg["model"], widths, width_multiplier=cfg["width_multiplier"])
      n = torch_models.num_params(tmodel)
      if params is not None and n != params:
        raise RuntimeError(f"torch twin has {n} parameters, the Keras model {params}")
      out.append(("torch", TorchContestant(tmodel, bs, classes, shape, cfg["intra_op_threads"])))
  return out, memory, params, torch_note


def run_bench(cfg) -> dict:
  """Data-copy measurement, warm-up, then `repeats` interleaved rounds; returns the results."""
  copies = dataset_copies(cfg["memory_examples"], cfg["batch_size"]) if cfg["memory_examples"] else None
  contestants, memory, params, torch_note = build_contestants(cfg)
  rates = {name: [] for name, _ in contestants}
  for name, c in contestants:
    c.warm(max(2, cfg["warmup_steps"]))
    memory[name] = peak_rss_mb()
  for rep in range(cfg["repeats"]):
    for name, c in contestants:
      rates[name].append(c.run(cfg["steps"]))
      print(f"repetition {rep + 1}: {name} {rates[name][-1]:.1f} img/s", file=sys.stderr,
            flush=True)
  result = {"model": cfg["model"], "width_multiplier": cfg["width_multiplier"],
            "batch_size": cfg["batch_size"], "params": params, "steps": cfg["steps"],
            "repeats": cfg["repeats"], "speed": cfg["speed_dict"], "contestants": {}}
  for name, rs in rates.items():
    med = statistics.median(rs)
    result["contestants"][name] = {"img_per_s": med, "runs": rs,
                                   "spread": (max(rs) - min(rs)) / med if med else 0.0,
                                   "peak_rss_mb": memory.get(name)}
  c = result["contestants"]
  ratios = {}
  for name in c:
    for ref in ("keras_fit", "torch"):
      if ref in c and name not in (ref, "torch"):
        ratios[f"{name}/{ref}"] = c[name]["img_per_s"] / c[ref]["img_per_s"]
  result["ratios"] = ratios
  if "ours" in c and "ours_cached" in c:
    result["data_wait_share"] = max(0.0, 1.0 - c["ours"]["img_per_s"] / c["ours_cached"]["img_per_s"])
  result["peak_rss_mb"] = peak_rss_mb()
  result["rss_before_models_mb"] = memory["start"]
  result["dataset_copies"] = copies
  result["notes"] = [torch_note] if torch_note else []
  return result


def format_result(r: dict) -> str:
  lines = [f"model {r['model']} x{r['width_multiplier']:g}, batch {r['batch_size']}, "
           f"{r['params']:,} params; {r['repeats']} interleaved repetitions of {r['steps']} steps; "
           f"ours: {r['speed']}",
           f"{'contestant':<44} {'img/s':>9} {'spread':>7} {'peak RSS MiB':>13}"]
  for name, c in r["contestants"].items():
    lines.append(f"{name:<44} {c['img_per_s']:9.1f} {c['spread']:6.0%} "
                 f"{c['peak_rss_mb'] or 0:13.0f}")
  for name, v in r["ratios"].items():
    lines.append(f"ratio {name:<38} {v:9.2f}x")
  if "data_wait_share" in r:
    lines.append(f"share of step time waiting for data (1 - ours/ours_cached): "
                 f"{r['data_wait_share']:.1%}")
  lines.append(f"peak resident memory of the process: {r['peak_rss_mb']:.0f} MiB "
               f"({r['rss_before_models_mb']:.0f} MiB before any model was built)")
  if r.get("dataset_copies"):
    d = r["dataset_copies"]
    lines.append(f"in-memory training set of {d['dataset_mb']:.0f} MiB: {d['resident_copies']:.2f} "
                 f"copies resident after 8 batches (peak while loading: {d['peak_copies']:.2f})")
  lines += [f"note: {n}" for n in r["notes"]]
  return "\n".join(lines)


def config_from_flags() -> dict:
  speed = dict(steps_per_execution=_SPE.value, mixed_precision=_MP.value, jit_compile=_JIT.value,
               intra_op_threads=_INTRA.value, inter_op_threads=_INTER.value)
  cfg = dict(model=_MODEL.value, width_multiplier=_WIDTH.value, batch_size=_BATCH.value,
             steps=_STEPS.value, repeats=_REPEATS.value, examples=_EXAMPLES.value,
             memory_examples=_MEMORY_EXAMPLES.value,
             strategy=_STRATEGY.value, compare=list(_COMPARE.value),
             contestants=list(_CONTESTANTS.value), intra_op_threads=_INTRA.value,
             speed_dict=speed, warmup_steps=0)
  if _QUICK.value:
    cfg.update(width_multiplier=0.0625 if _WIDTH.value == 1.0 else _WIDTH.value, batch_size=8,
               steps=3, repeats=2, examples=64, memory_examples=min(8192, _MEMORY_EXAMPLES.value))
  cfg["warmup_steps"] = max(2, cfg["steps"] // 4)
  return cfg


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  cfg = config_from_flags()
  try:
    cfg["speed"] = speed_lib.SpeedSettings(**cfg["speed_dict"])
    for text in cfg["compare"]:
      speed_lib.SpeedSettings(**{**cfg["speed_dict"], **parse_settings(text)})
  except (TypeError, ValueError) as e:
    raise app.UsageError(str(e)) from None
  speed_lib.set_threads(cfg["speed"])
  result = run_bench(cfg)
  print(format_result(result))
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  app.run(main)
