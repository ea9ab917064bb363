r"""Training throughput of tf_rethink's trainer vs plain `model.fit` vs PyTorch, side by side.

  python tools/bench_train.py --model=vgg16 --batch_size=64
  python tools/bench_train.py --model=resnet56 --compare=mixed_precision=off --compare=inter_op_threads=1
  python tools/bench_train.py --model=vgg16 --compare=env.ONEDNN_DEFAULT_FPMATH_MODE=BF16
  python tools/bench_train.py --model=resnet56 --compare=lever.batchnorm=unfused \
      --compare=lever.grappler.remapping=off
  python tools/bench_train.py --model=resnet56 --variant=B --compare=lever.batchnorm=bf16_every_width
  python tools/bench_train.py --quick            # seconds; output format only (used by a test)

Every contestant trains the same architecture (a registered CIFAR model, 32x32x3 inputs, 10
classes; with `--variant`, the pruned architecture of its L1-norm variant, whose kept channel
counts are uneven) in ITS OWN worker process (started by this one, which never imports TensorFlow): one
framework's runtime never slows another's (measured: a PyTorch model trained in a process where a
tf.distribute model had trained ran 20-40% slower than in a fresh one), and each contestant has
its own thread pools and memory peak. Repetitions are interleaved (A B C A B C ...) with a short
pause between them (`--pause_s`, so that spinning OpenMP / Eigen threads of the last contestant
have gone to sleep), so a load from other processes hits all alike; the table gives the median
img/s of the repetitions and their spread (max-min)/median, the noise of this run, and the
images per CPU-second (images / the contestant process's CPU time, all its threads): on a machine
that other processes load, wall-clock img/s depends on the share of the cores a process got, CPU
time much less (it still counts the spinning of threads that wait for each other); both ratios
are printed.

  ours          the trainer's path: `trainer.compile_model` (PyTorch-equivalent SGD with coupled
                L2, cross-entropy, accuracy) in `make_strategy(--strategy)`, `speed.policy_scope`,
                StepLR callback, the speed settings of the flags; data through the same
                pipeline as `data.pipeline` (`data.pipeline.from_arrays`: shuffle, per-example
                pad-crop-flip + normalize map, batch, prefetch) from an in-memory uint8 array.
  ours_cached   the same, fed ONE cached batch: 1 - ours/ours_cached is the share of step time
                spent on (waiting for) data; on 2 cores the pipeline's map competes with training
                for the same cores, so this is also the cost of augmentation.
  ours[k=v]     `--compare` variants of the speed settings (e.g. mixed_precision=off); an item
                `env.NAME=VALUE` sets an environment variable of that contestant's process only
                (oneDNN / TensorFlow runtime settings such as ONEDNN_DEFAULT_FPMATH_MODE=BF16,
                TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1, TF_ENABLE_ONEDNN_OPTS=0); an item
                `lever.NAME=VALUE` changes how that contestant's graph is built (`LEVERS`):
                `lever.batchnorm=unfused` (BatchNormalization(fused=False): TensorFlow's own
                element-wise ops instead of the FusedBatchNormV3 kernel, which oneDNN runs),
                `lever.batchnorm=bf16_every_width` (undoes compile_model's float32 / unfused
                batch norms for channel counts that are not a multiple of 16, where oneDNN's
                bfloat16 kernel is its reference one: the cost of that rule, with --variant),
                `lever.grappler.OPTION=on|off` (`tf.config.optimizer.set_experimental_options`,
                e.g. remapping (the Conv/BN/ReLU fusions), layout_optimizer,
                auto_mixed_precision_onednn_bfloat16 (Grappler's graph-level bf16 rewrite, with
                mixed_precision=off)).
  keras_fit     a minimal plain tf_keras baseline: same model, `keras.optimizers.SGD(0.1, 0.9)`,
                `model.fit` with default settings (float32, no strategy), same data pipeline.
  torch         the same architecture in PyTorch (`tools/torch_models.py`) as the paper's
                reference code trains it: float32 NCHW, SGD (momentum 0.9, weight decay 1e-4),
                on random batches already in memory (no data pipeline: compare with ours_cached
                for compute alone). Only when torch is installed (never a package dependency).
  torch_cl      the same in channels-last memory format (PyTorch's faster CPU layout).
  torch_cl_bf16 channels-last with `torch.autocast("cpu", torch.bfloat16)`: PyTorch's own mixed
                precision, the counterpart of ours' bf16 default on CPUs with native bf16.

The output starts with the machine (CPU model, cores, the ISA flags that decide oneDNN's kernels:
AVX-512, AVX512_BF16, AMX; the load average before and after: `tf_rethink.util.machine`). With
`--kernels` (default) every contestant then runs once more, alone, in a process with
ONEDNN_VERBOSE=1 for `--kernel_steps` steps after its warm-up: the log says which oneDNN
implementation ran each primitive (e.g. `brg_conv_fwd:avx512_core_amx` = AMX,
`jit:avx512_core` = AVX-512 without AMX) in each pass (forward_training, backward_data,
backward_weights) and how long it took; the table gives per contestant and pass the AMX verdict
and the ms per step (summed primitive times: with several inter-op threads primitives may
overlap, so sums can exceed the wall time).

Throughput is steady state: the first execution of each repetition (iterator start-up, prefetch
fill) is excluded, and the warm-up steps (tracing) are not timed at all. Memory: the peak
resident set (getrusage ru_maxrss) of each contestant's own process after its warm-up and at the
end, i.e. the peak of one training run; and, in a process of its own, `dataset_copies`: how many
copies of an in-memory training set the trainer's pipeline keeps resident (`--memory_examples`
random CIFAR images; 1.0 = the data itself).
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types

from absl import app
from absl import flags
from absl import logging

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TOOLS))
sys.path.insert(0, TOOLS)
from tf_rethink.run import config as config_lib  # noqa: E402  (TensorFlow-free)
from tf_rethink.util import machine  # noqa: E402  (TensorFlow-free)

_D = config_lib.Config()
TORCH_KINDS = ("torch", "torch_cl", "torch_cl_bf16")
CONTESTANTS = ("ours", "ours_cached", "keras_fit") + TORCH_KINDS
_MODEL = flags.DEFINE_string("model", "vgg16", "Registered CIFAR model (vgg11..19, resnet20..110).")
_WIDTH = flags.DEFINE_float("width_multiplier", 1.0, "Width multiplier of the model.")
_VARIANT = flags.DEFINE_string("variant", "", "Train the pruned architecture of the model's L1-norm "
                               "variant (A or B: the paper's VGG-16-A, ResNet-56-B, ...) instead.")
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
                              "ours: TF intra-op threads; also torch's threads (0: one per core).")
_INTER = flags.DEFINE_integer("inter_op_threads", _D.inter_op_threads, "ours: TF inter-op threads.")
_CONV_WGRAD = flags.DEFINE_enum("conv_weight_grad", _D.conv_weight_grad,
                                config_lib.CONV_WEIGHT_GRAD_CHOICES,
                                "ours: per-tap matmul weight gradients (train/conv_weight_grad.py).")
_COMPARE = flags.DEFINE_multi_string("compare", [], "Extra `ours` variants: comma-separated "
                                     "speed settings, e.g. mixed_precision=off,steps_per_execution=4.")
_CONTESTANTS = flags.DEFINE_list("contestants", list(CONTESTANTS), f"Which of {', '.join(CONTESTANTS)} "
                                 "to run (torch ones only when torch is installed).")
_PAUSE = flags.DEFINE_float("pause_s", 0.5, "Pause before each timed repetition, seconds.")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny model and few steps: checks the output, not speed.")
_KERNELS = flags.DEFINE_bool("kernels", True, "After the timing, one ONEDNN_VERBOSE=1 probe run "
                              "per contestant: which oneDNN kernels (AMX or not) ran, per pass.")
_KERNEL_STEPS = flags.DEFINE_integer("kernel_steps", 3, "Steps of each --kernels probe.")
_JSON = flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")
_WORKER = flags.DEFINE_bool("worker", False, "Internal: serve one contestant over stdin/stdout.")


# ---- worker side: one contestant per process ----

def peak_rss_mb() -> float:
  """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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


def steady_rate(marks, batch_size):
  """(img/s, img per CPU-second) between the first and the last (step, wall time, process CPU
  time) mark (the first execution is excluded). CPU time counts every thread of the process."""
  (s0, t0, c0), (s1, t1, c1) = marks[0], marks[-1]
  if s1 <= s0:
    raise ValueError("need at least two executions per repetition; raise --steps")
  images = (s1 - s0) * batch_size
  return images / (t1 - t0), images / max(c1 - c0, 1e-9)


def _mark(step):
  return (step, time.perf_counter(), time.process_time())


def synthetic_pipeline(images, labels, batch_size, seed=1):
  """The training pipeline of `data.pipeline` (cifar10 preprocessing: shuffle, per-example
  pad-crop-flip + normalize, batch, prefetch) over in-memory images, repeated."""
  from tf_rethink.data.pipeline import from_arrays
  return from_arrays(images, labels, "cifar10", batch_size=batch_size, seed=seed, train=True,
                     repeat=True, drop_remainder=True)


def cached_batch(ds):
  """One batch of `ds`, repeated from memory: a data pipeline that costs (almost) nothing."""
  return ds.take(1).cache().repeat()


def dataset_copies(examples, batch_size, seed=2):
  """Copies of an in-memory training set the trainer's pipeline keeps resident: the growth of
  resident memory from building `synthetic_pipeline` on `examples` random CIFAR images (the numpy
  array then dropped) to after 8 batches (the whole-split shuffle buffer is full by then),
  divided by the images' bytes; and the peak during the conversion, same unit. None for 0."""
  if not examples:
    return None
  import numpy as np
  import tensorflow as tf
  from tf_rethink.data import pipeline  # noqa: F401  pylint: disable=unused-import
  tf.zeros([1]).numpy()  # the runtime's own memory is not the data's
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


class KerasContestant:
  """One compiled tf_keras model + dataset; `run(steps)` returns steady-state img/s."""

  def __init__(self, model, ds, batch_size, callbacks=(), levers=None):
    self.levers = levers or {}   # what `apply_model_levers` reports in effect (ours only)
    self.model, self.ds = model, ds
    self.batch_size, self.callbacks = batch_size, list(callbacks)
    self.params = _keras_params(model)

  @staticmethod
  def threads():
    """[intra-op, inter-op] threads of TensorFlow's pools in this process."""
    import tensorflow as tf
    return [tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads()]

  def warm(self, steps):
    self.model.fit(self.ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=self.callbacks)

  def run(self, steps):
    import tf_keras as keras

    class Timer(keras.callbacks.Callback):
      def on_train_begin(self, logs=None):
        self.marks = []

      def on_train_batch_end(self, batch, logs=None):
        self.marks.append(_mark(batch))

    timer = Timer()
    self.model.fit(self.ds, epochs=1, steps_per_epoch=steps, verbose=0,
                   callbacks=[timer, *self.callbacks])
    return steady_rate(timer.marks, self.batch_size)


def _keras_params(model) -> int:
  from tf_rethink import flops
  return flops.count(model).params


class TorchContestant:
  """The PyTorch twin trained on a few random batches in memory (kind: see TORCH_KINDS)."""

  def __init__(self, spec):
    import torch
    import torch_models
    if spec["threads"]:
      torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    widths = spec["widths"]
    model = torch_models.build(spec["model"], widths, width_multiplier=spec["width_multiplier"])
    (h, w, c), bs = spec["shape"], spec["batch_size"]
    self.batches = [(torch.randn(bs, c, h, w), torch.randint(0, spec["classes"], (bs,)))
                    for _ in range(4)]
    if spec["kind"] in ("torch_cl", "torch_cl_bf16"):
      model = model.to(memory_format=torch.channels_last)
      self.batches = [(x.contiguous(memory_format=torch.channels_last), y)
                      for x, y in self.batches]
    self.bf16 = spec["kind"] == "torch_cl_bf16"
    self.torch, self.model, self.batch_size = torch, model, bs
    self.params = torch_models.num_params(model)
    self.opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    self.model.train()

  def threads(self):
    return [self.torch.get_num_threads(), self.torch.get_num_interop_threads()]

  def _step(self, i):
    x, y = self.batches[i % len(self.batches)]
    self.opt.zero_grad(set_to_none=True)
    with self.torch.autocast("cpu", dtype=self.torch.bfloat16, enabled=self.bf16):
      loss = self.torch.nn.functional.cross_entropy(self.model(x), y)
    loss.backward()
    self.opt.step()

  def warm(self, steps):
    for i in range(steps):
      self._step(i)

  def run(self, steps):
    self._step(0)
    start = _mark(0)
    for i in range(1, steps):
      self._step(i)
    return steady_rate([start, _mark(steps - 1)], self.batch_size)


def describe(model, width_multiplier, variant=""):
  """The model's scaled width list, or with `variant` that of its L1-norm predefined variant's
  pruned architecture (the paper's VGG-16-A, ResNet-56-A/B, ...: uneven kept channel counts such
  as 14 of 16); needs TensorFlow: a worker asks, so the parent never loads it and the torch
  workers need not."""
  from tf_rethink.models import MODELS, scale_widths
  widths = scale_widths(MODELS.get(model).default_widths(), width_multiplier)
  if not variant:
    return widths
  from tf_rethink.pruning.methods import METHODS
  full = MODELS.get(model).build(widths, input_shape=(32, 32, 3), num_classes=10,
                                 width_multiplier=width_multiplier)
  kept = METHODS.get("l1_norm")(variant=variant).select(full, None, model_name=model).widths()
  if model.startswith("vgg"):   # cfg ints are conv1, conv2, ... in order ("M" = pool)
    convs = iter(range(1, len(widths) + 1))
    return [w if w == "M" else kept.get(f"conv{next(convs)}", w) for w in widths]
  n = len(widths) // 3          # CIFAR ResNet: one int per block, its conv1's filters
  return [kept.get(f"stage{i // n + 1}_block{i % n + 1}_conv1", w) for i, w in enumerate(widths)]


# --compare items `lever.NAME=VALUE`: benchmark-only ways of building / running `ours`, to measure
# whether the package should adopt them (none is a package default unless measured better).
GRAPPLER_OPTIONS = ("layout_optimizer", "constant_folding", "shape_optimization", "remapping",
                    "arithmetic_optimization", "dependency_optimization", "loop_optimization",
                    "function_optimization", "debug_stripper", "scoped_allocator_optimization",
                    "pin_to_host_optimization", "implementation_selector", "auto_mixed_precision",
                    "auto_mixed_precision_onednn_bfloat16", "disable_meta_optimizer")
LEVERS = {"batchnorm": ("fused", "unfused", "bf16_every_width"),
          **{f"grappler.{o}": ("on", "off") for o in GRAPPLER_OPTIONS}}


def parse_lever(item: str) -> tuple:
  """'lever.batchnorm=unfused' -> ('batchnorm', 'unfused'); app.UsageError for an unknown lever
  or value."""
  name, sep, value = item[len("lever."):].partition("=")
  if not sep or name not in LEVERS or value not in LEVERS[name]:
    known = "; ".join(f"lever.{n}={'|'.join(v)}" for n, v in LEVERS.items()
                      if not n.startswith("grappler.")) + "; lever.grappler.OPTION=on|off with " \
        f"OPTION one of {', '.join(GRAPPLER_OPTIONS)}"
    raise app.UsageError(f"--compare: {item!r} is not a known lever ({known})")
  return name, value


def apply_grappler_levers(levers: dict) -> None:
  """The `lever.grappler.*` options of this process (before any graph is traced)."""
  import tensorflow as tf
  options = {n[len("grappler."):]: v == "on" for n, v in levers.items() if n.startswith("grappler.")}
  if options:
    tf.config.optimizer.set_experimental_options(options)


def apply_model_levers(levers: dict, model) -> dict:
  """The batchnorm lever on the built model: a built BatchNormalization layer reads `fused` when
  its call is traced, so setting it before the first step changes the kernel and nothing else
  (same variables, same function). Returns what is in effect, Grappler options included (the
  worker reports it: a lever that did not apply is visible)."""
  import tensorflow as tf
  import tf_keras as keras
  from tf_rethink.train import conv_weight_grad
  layers = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
  if levers.get("batchnorm") in ("unfused", "bf16_every_width") and not layers:
    raise RuntimeError(f"lever.batchnorm={levers['batchnorm']}: the model has no "
                       "BatchNormalization layer")
  if levers.get("batchnorm") == "unfused":
    for layer in layers:
      layer.fused = False
  if levers.get("batchnorm") == "bf16_every_width":  # undoes compile_model's float32 batch norms
    for layer in layers:
      if layer.dtype_policy.name != model.dtype_policy.name:
        layer._set_dtype_policy(model.dtype_policy.name)
        layer.fused = True
  return {"grappler": {k: v for k, v in tf.config.optimizer.get_experimental_options().items()
                       if k in GRAPPLER_OPTIONS},
          "fused_batchnorm_layers": sum(bool(l.fused) for l in layers),
          "float32_batchnorm_layers": sum(l.compute_dtype == "float32" for l in layers),
          "batchnorm_layers": len(layers),
          "tap_matmul_weight_grad_layers": len(conv_weight_grad.tapped_layers(model))}


def build_keras_contestant(spec):
  """ours / ours_cached / ours[...] / keras_fit, from a JSON-able spec (see `contestant_specs`)."""
  import numpy as np
  import tensorflow as tf
  import tf_keras as keras
  from tf_rethink.models import MODELS
  from tf_rethink.train import speed as speed_lib
  from tf_rethink.train import trainer
  from tf_rethink.train.schedules import StepLR
  from tf_rethink.train.strategy import make_strategy
  rng = np.random.default_rng(0)
  shape, bs = tuple(spec["shape"]), spec["batch_size"]
  images = tf.convert_to_tensor(rng.integers(0, 256, (spec["examples"], *shape), dtype=np.uint8))
  labels = tf.convert_to_tensor(rng.integers(0, spec["classes"], spec["examples"]).astype(np.int64))
  ds = synthetic_pipeline(images, labels, bs)

  def build():
    return MODELS.get(spec["model"]).build(spec["widths"], input_shape=shape,
                                           num_classes=spec["classes"],
                                           width_multiplier=spec["width_multiplier"])

  if spec["kind"] == "keras_fit":
    model = build()
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return KerasContestant(model, ds, bs)
  settings = speed_lib.SpeedSettings(**spec["speed"])
  tspec = trainer.TrainSpec(epochs=1, lr=0.1, batch_size=bs, weight_decay=1e-4)
  levers = spec.get("levers") or {}
  apply_grappler_levers(levers)
  with make_strategy(spec["strategy"]).scope(), speed_lib.policy_scope(settings):
    model = trainer.compile_model(build(), tspec, settings)
    applied = apply_model_levers(levers, model)   # after compile_model, before the first trace
  return KerasContestant(model, cached_batch(ds) if spec["kind"] == "ours_cached" else ds, bs,
                         [StepLR(0.1)], levers=applied)


KERNELS_START, KERNELS_END = "BENCH_KERNELS_START", "BENCH_KERNELS_END"


def _flush_c_stdout():
  """Flushes the C library's stdout (oneDNN's verbose lines) so markers land in order."""
  import ctypes
  try:
    ctypes.CDLL(None).fflush(None)
  except (OSError, AttributeError):
    pass


def _reply(**fields):
  sys.stdout.write("BENCH " + json.dumps(fields) + "\n")
  sys.stdout.flush()


def worker_main():
  """Serves one contestant: spec line in, then {"run": steps} -> {"img_per_s"}, {"exit"}."""
  spec = json.loads(sys.stdin.readline())
  if spec["kind"] == "probe":  # before the contestants: their widths, the data-copy measurement
    from tf_rethink.util.errors import UsageError
    try:
      widths = describe(spec["model"], spec["width_multiplier"], spec["variant"])
    except UsageError as e:   # e.g. a variant the model has none of: the parent's usage error
      _reply(usage_error=str(e))
      return
    _reply(widths=widths,
           dataset_copies=dataset_copies(spec["examples"], spec["batch_size"]))
    return
  if spec["kind"] in TORCH_KINDS:
    contestant = TorchContestant(spec)
  else:
    from tf_rethink.train import speed as speed_lib  # pylint: disable=import-outside-toplevel
    if spec["kind"] != "keras_fit":  # thread pools: before TensorFlow runs its first op
      speed_lib.set_threads(speed_lib.SpeedSettings(**spec["speed"]))
    contestant = build_keras_contestant(spec)
  contestant.warm(spec["warmup_steps"])
  if spec.get("kernel_steps"):  # ONEDNN_VERBOSE=1 process: mark the probed steps in stdout
    _flush_c_stdout()
    print(KERNELS_START, flush=True)
    contestant.warm(spec["kernel_steps"])  # steps, not a rate: one step is enough
    _flush_c_stdout()
    print(KERNELS_END, flush=True)
  _reply(ready=True, params=contestant.params, peak_rss_mb=peak_rss_mb(),
         threads=contestant.threads(), levers=getattr(contestant, "levers", {}))
  for line in sys.stdin:
    command = json.loads(line)
    if "run" in command:
      wall, cpu = contestant.run(command["run"])
      _reply(img_per_s=wall, img_per_cpu_s=cpu)
    else:
      _reply(peak_rss_mb=peak_rss_mb())
      return


# ---- parent side: starts the workers and interleaves them ----

class Worker:
  """A contestant's process; `ask(command)` sends one JSON line and returns its JSON answer."""

  def __init__(self, name, spec, log_dir, env=None):
    self.name = name
    self.log_path = os.path.join(log_dir, f"{len(os.listdir(log_dir))}.log")
    self._log = open(self.log_path, "w")
    self.lines = []  # stdout lines that are not answers (the oneDNN verbose log of a probe)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or spec.get("env") or {}))
    self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                 text=True, env=env)
    self.send(spec)

  def send(self, command):
    self.proc.stdin.write(json.dumps(command) + "\n")
    self.proc.stdin.flush()

  def receive(self):
    for line in self.proc.stdout:
      if line.startswith("BENCH "):
        return json.loads(line[len("BENCH "):])
      self.lines.append(line)
    self.proc.wait()
    self._log.close()
    with open(self.log_path) as f:
      raise RuntimeError(f"contestant {self.name} exited ({self.proc.returncode}):\n"
                         f"{f.read()[-3000:]}")

  def ask(self, command):
    self.send(command)
    return self.receive()

  def close(self):
    answer = self.ask({"exit": True})
    self.proc.wait()
    self._log.close()
    return answer


def torch_available() -> bool:
  import importlib.util
  return importlib.util.find_spec("torch") is not None


def contestant_specs(cfg, widths):
  """[(name, spec)] in run order: ours first, then its variants, keras_fit, the torch kinds."""
  base = {"model": cfg["model"], "width_multiplier": cfg["width_multiplier"], "widths": widths,
          "batch_size": cfg["batch_size"], "shape": [32, 32, 3], "classes": 10,
          "examples": cfg["examples"], "warmup_steps": cfg["warmup_steps"]}
  wanted = cfg["contestants"]
  out = []
  for kind in ("ours", "ours_cached"):
    if kind in wanted:
      out.append((kind, dict(base, kind=kind, speed=cfg["speed"], strategy=cfg["strategy"])))
  for text in cfg["compare"]:
    settings, env, levers = parse_settings(text)
    out.append((f"ours[{text}]", dict(base, kind="ours", strategy=cfg["strategy"], env=env,
                                      levers=levers, speed={**cfg["speed"], **settings})))
  if "keras_fit" in wanted:
    out.append(("keras_fit", dict(base, kind="keras_fit")))
  if torch_available():
    out += [(kind, dict(base, kind=kind, threads=cfg["speed"]["intra_op_threads"]))
            for kind in TORCH_KINDS if kind in wanted]
  return out


def run_bench(cfg) -> dict:
  """Data-copy measurement, then warm-up and `repeats` interleaved rounds, then (with
  cfg["kernel_steps"]) one oneDNN-verbose probe per contestant; returns the results."""
  machine_before = machine.describe()
  with tempfile.TemporaryDirectory() as log_dir:
    probe = Worker("probe", {"kind": "probe", "examples": cfg["memory_examples"],
                                      "batch_size": cfg["batch_size"], "model": cfg["model"],
                                      "width_multiplier": cfg["width_multiplier"],
                                      "variant": cfg["variant"]}, log_dir)
    answer = probe.receive()
    probe.proc.wait()
    if "usage_error" in answer:
      raise app.UsageError(answer["usage_error"])
    copies = answer["dataset_copies"]
    specs = contestant_specs(cfg, answer["widths"])
    workers = [Worker(name, spec, log_dir) for name, spec in specs]
    ready = {w.name: w.receive() for w in workers}  # they warm up in parallel; not timed
    rates = {w.name: [] for w in workers}
    cpu_rates = {w.name: [] for w in workers}
    for rep in range(cfg["repeats"]):
      for w in workers:
        time.sleep(cfg["pause_s"])
        answer = w.ask({"run": cfg["steps"]})
        rates[w.name].append(answer["img_per_s"])
        cpu_rates[w.name].append(answer["img_per_cpu_s"])
        print(f"repetition {rep + 1}: {w.name} {rates[w.name][-1]:.1f} img/s, "
              f"{cpu_rates[w.name][-1]:.1f} img/CPU-s", file=sys.stderr, flush=True)
    final = {w.name: w.close() for w in workers}
    load_after = machine.load_average()
    kernels = {name: probe_kernels(name, spec, cfg["kernel_steps"], log_dir)
               for name, spec in specs} if cfg["kernel_steps"] else {}
  params = {name: r["params"] for name, r in ready.items()}
  if len(set(params.values())) > 1:
    raise RuntimeError(f"the contestants' models differ in size: {params}")
  result = {"model": cfg["model"], "width_multiplier": cfg["width_multiplier"],
            "variant": cfg["variant"], "widths": specs[0][1]["widths"] if specs else None,
            "batch_size": cfg["batch_size"], "params": next(iter(params.values()), None),
            "steps": cfg["steps"], "repeats": cfg["repeats"], "speed": cfg["speed"],
            "contestants": {}, "dataset_copies": copies, "notes": [],
            "machine": machine_before, "load_average_after": load_after, "kernels": kernels}
  keras_names = [name for name in rates if name not in TORCH_KINDS]
  for name, rs in rates.items():
    med = statistics.median(rs)
    result["contestants"][name] = {"img_per_s": med, "runs": rs,
                                   "img_per_cpu_s": statistics.median(cpu_rates[name]),
                                   "cpu_runs": cpu_rates[name],
                                   "spread": (max(rs) - min(rs)) / med if med else 0.0,
                                   "peak_rss_mb": final[name]["peak_rss_mb"],
                                   "peak_rss_after_warmup_mb": ready[name]["peak_rss_mb"],
                                   "tf_threads" if name in keras_names else "torch_threads":
                                   ready[name]["threads"], "levers": ready[name]["levers"]}
  c = result["contestants"]
  references = [r for r in ("keras_fit",) + TORCH_KINDS if r in c]
  result["ratios"] = {f"{name}/{ref}": c[name]["img_per_s"] / c[ref]["img_per_s"]
                      for name in c if name not in references for ref in references}
  result["cpu_ratios"] = {f"{name}/{ref}": c[name]["img_per_cpu_s"] / c[ref]["img_per_cpu_s"]
                          for name in c if name not in references for ref in references}
  if "ours" in c and "ours_cached" in c:
    result["data_wait_share"] = max(0.0, 1.0 - c["ours"]["img_per_s"] / c["ours_cached"]["img_per_s"])
  if any(k in cfg["contestants"] for k in TORCH_KINDS) and not torch_available():
    result["notes"].append("torch not installed (pip install torch==2.13.0): PyTorch columns "
                           "skipped")
  return result


def probe_kernels(name, spec, steps, log_dir) -> dict:
  """One more run of contestant `spec`, alone, with ONEDNN_VERBOSE=1: the oneDNN kernels of its
  `steps` steps after warm-up (`machine.onednn_kernels`), the oneDNN version, ms per step."""
  w = Worker(name, dict(spec, kernel_steps=steps), log_dir,
             env={**(spec.get("env") or {}), "ONEDNN_VERBOSE": "1"})
  w.receive()
  w.close()
  lines = w.lines
  try:
    inside = lines[lines.index(KERNELS_START + "\n") + 1:lines.index(KERNELS_END + "\n")]
  except ValueError:
    inside = []
  ops = machine.onednn_kernels(inside)
  for op in ops.values():
    op["ms_per_step"] = round(op["ms"] / steps, 3)
  return {"onednn": machine.onednn_version(lines), "steps": steps, "ops": ops}


def format_kernels(kernels: dict) -> list:
  """Per contestant: its oneDNN version, and per conv / matmul pass the AMX verdict, ms per step
  and the implementation names."""
  lines = []
  for name, k in kernels.items():
    lines.append(f"oneDNN kernels of {name} (oneDNN {k['onednn'] or 'not used'}, "
                 f"{k['steps']} steps, ms per step summed over primitives):")
    shown = [(key, op) for key, op in k["ops"].items()
             if key.split()[0] in ("convolution", "inner_product", "matmul", "batch_normalization")]
    for key, op in shown:
      amx = {True: "AMX", False: "no AMX", "partly": "partly AMX"}[op["amx"]]
      impls = ", ".join(sorted(op["impls"], key=lambda i: -op["impls"][i]["ms"]))
      lines.append(f"  {key:<36} {amx:<10} {op['ms_per_step']:9.1f} ms  {impls}")
    if not shown:
      lines.append("  no oneDNN convolution / matmul ran")
  return lines


def format_result(r: dict) -> str:
  m = r.get("machine")
  lines = [machine.format_machine(m) if m else "machine: unknown",
           f"model {r['model']}{'-' + r['variant'] if r.get('variant') else ''} "
           f"x{r['width_multiplier']:g}, batch {r['batch_size']}, "
           f"{r['params']:,} params; {r['repeats']} interleaved repetitions of {r['steps']} steps, "
           f"one process per contestant; ours: {r['speed']}",
           f"{'contestant':<48} {'img/s':>9} {'spread':>7} {'img/CPU-s':>10} {'peak RSS MiB':>13}"]
  for name, c in r["contestants"].items():
    lines.append(f"{name:<48} {c['img_per_s']:9.1f} {c['spread']:6.0%} "
                 f"{c.get('img_per_cpu_s', float('nan')):10.1f} {c['peak_rss_mb']:13.0f}")
  refs = sorted({k.split("/")[1] for k in r["ratios"]}, key=list(r["contestants"]).index)
  for key, what in (("ratios", "img/s"), ("cpu_ratios", "img/CPU-s")):
    if refs and r.get(key):
      lines.append(f"{f'ratio of {what} (row / column)':<48} " + " ".join(f"{x:>13}" for x in refs))
      for name in r["contestants"]:
        if f"{name}/{refs[0]}" in r[key]:
          lines.append(f"{name:<48} " + " ".join(f"{r[key][f'{name}/{x}']:12.2f}x" for x in refs))
  tapped = {n: c["levers"]["tap_matmul_weight_grad_layers"] for n, c in r["contestants"].items()
            if "tap_matmul_weight_grad_layers" in (c.get("levers") or {})}
  if tapped:
    lines.append("convolutions with per-tap matmul weight gradients (--conv_weight_grad): "
                 + ", ".join(f"{n} {k}" for n, k in tapped.items()))
  if "data_wait_share" in r:
    lines.append(f"share of step time spent on data (1 - ours/ours_cached): "
                 f"{r['data_wait_share']:.1%}")
  if r.get("dataset_copies"):
    d = r["dataset_copies"]
    lines.append(f"in-memory training set of {d['dataset_mb']:.0f} MiB: {d['resident_copies']:.2f} "
                 f"copies resident after 8 batches (peak while loading: {d['peak_copies']:.2f})")
  if r.get("load_average_after"):
    lines.append("load average (1/5/15 min) after the timed runs: "
                 + machine.format_load(r["load_average_after"]))
  lines += format_kernels(r.get("kernels") or {})
  lines += [f"note: {n}" for n in r["notes"]]
  return "\n".join(lines)


def parse_settings(text: str):
  """'mixed_precision=bf16,env.ONEDNN_VERBOSE=0,lever.batchnorm=unfused' -> (speed-settings
  kwargs (ints converted), {environment variable: value}, {lever: value}) of one --compare
  variant."""
  env, levers, rest = {}, {}, []
  for item in filter(None, (t.strip() for t in text.split(","))):
    if item.startswith("lever."):
      name, value = parse_lever(item)
      levers[name] = value
    elif item.startswith("env."):
      name, sep, value = item[len("env."):].partition("=")
      if not sep or not name:
        raise app.UsageError(f"--compare: {item!r} must be env.NAME=VALUE")
      env[name] = value
    else:
      rest.append(item)
  try:
    return config_lib.parse_speed_settings(",".join(rest)), env, levers
  except config_lib.UsageError as e:
    raise app.UsageError(f"--compare: {e}") from None


def config_from_flags() -> dict:
  speed = dict(steps_per_execution=_SPE.value, mixed_precision=_MP.value, jit_compile=_JIT.value,
               intra_op_threads=_INTRA.value, inter_op_threads=_INTER.value,
               conv_weight_grad=_CONV_WGRAD.value)
  unknown = set(_CONTESTANTS.value) - set(CONTESTANTS)
  if unknown:
    raise app.UsageError(f"--contestants: unknown {', '.join(sorted(unknown))}; choose among "
                         f"{', '.join(CONTESTANTS)}")
  cfg = dict(model=_MODEL.value, width_multiplier=_WIDTH.value, variant=_VARIANT.value,
             batch_size=_BATCH.value,
             steps=_STEPS.value, repeats=_REPEATS.value, examples=_EXAMPLES.value,
             memory_examples=_MEMORY_EXAMPLES.value, strategy=_STRATEGY.value,
             compare=list(_COMPARE.value), contestants=list(_CONTESTANTS.value), speed=speed,
             pause_s=_PAUSE.value, warmup_steps=0,
             kernel_steps=_KERNEL_STEPS.value if _KERNELS.value else 0)
  if _QUICK.value:
    cfg.update(width_multiplier=0.0625 if _WIDTH.value == 1.0 else _WIDTH.value, batch_size=8,
               steps=3, repeats=2, examples=64, pause_s=0.0, kernel_steps=min(2, cfg["kernel_steps"]),
               memory_examples=min(8192, _MEMORY_EXAMPLES.value))
  cfg["warmup_steps"] = max(2, cfg["steps"] // 4)
  for settings in [speed] + [{**speed, **parse_settings(t)[0]} for t in cfg["compare"]]:
    try:
      config_lib.check_speed_settings(types.SimpleNamespace(**settings))
    except config_lib.UsageError as e:
      raise app.UsageError(str(e)) from None
  return cfg


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  if _WORKER.value:
    return worker_main()
  result = run_bench(config_from_flags())
  print(format_result(result))
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(result, f, indent=1)
  return None


if __name__ == "__main__":
  app.run(main)
