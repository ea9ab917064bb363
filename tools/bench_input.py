r"""Throughput of the ImageNet training input pipeline per CPU core, and through tf.data service.

  python tools/bench_input.py                       # 1 and 2 threads, then through tf.data service
  python tools/bench_input.py --threads=1,2,4 --jpegs=512 --repeats=5
  python tools/bench_input.py --quick               # seconds; output format only (used by a test)

What is timed: the package's own ImageNet training pipeline (`data.pipeline.from_encoded`:
shuffle, per example `tf.io.decode_and_crop_jpeg` RandomResizedCrop(224) + horizontal flip
(`data.augment.imagenet_train`), normalize, batch 256, prefetch) over real JPEG bytes made at run
time (no download): `--jpegs` images of ImageNet's typical `--height` x `--width` (375 x 500),
each a smooth random colour field plus a gradient plus pixel noise (so that the files are about
as large as ImageNet's, ~110 KB at quality 90: decoding cost grows with the bytes), encoded with
`tf.io.encode_jpeg`. The mean file size is printed.

Threads: tf.data runs the map in its own thread pool; each measurement sets the pipeline's
private pool to k threads (`--threads`, and max_intra_op_parallelism=1 so one example's ops stay
on one thread) and reports img/s, img/s per thread, and images per CPU-second of the process (images / its CPU
time: one fully used core's rate; unlike wall-clock img/s it hardly depends on how much of the
cores other processes take). The thread
counts are interleaved over `--repeats` repetitions (median, spread (max-min)/median), so a load
from other processes hits all alike; the load average is printed.

GPU need (an ASSUMPTION, not measured here: no GPU on this machine): `--gpu_img_per_s` (default
1,400, about what ResNet-50 trains at per A100 with mixed precision in NVIDIA's and TensorFlow's
published benchmarks). The tool prints how many cores at the measured img per CPU-second feed one GPU.

tf.data service (`--service`, default on): TensorFlow's distributed input engine moves the same
pipeline onto worker processes (usually other machines) that stream batches to the trainer. Here a
`DispatchServer` and one `WorkerServer` run in this process on 127.0.0.1 with ports chosen by the
OS (port 0); the pipeline is distributed with `tf.data.experimental.service.distribute`
(processing_mode "parallel_epochs") and the batches arriving through the service are counted and
timed. With one local worker the rate is the pipeline's own minus the RPC cost; with N remote
workers it scales with N (each runs a copy of the pipeline). See the README.
"""
import json
import os
import statistics
import sys
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rethink.util import machine  # noqa: E402  (TensorFlow-free)
from tf_rethink.util.errors import fail, parse_flags  # noqa: E402

ASSUMED_GPU_IMG_PER_S = 1400  # ResNet-50 training per A100, mixed precision: an assumption

_JPEGS = flags.DEFINE_integer("jpegs", 256, "Distinct JPEGs made at run time (the dataset cycles).")
_HEIGHT = flags.DEFINE_integer("height", 375, "JPEG height in pixels (ImageNet-typical 375).")
_WIDTH = flags.DEFINE_integer("width", 500, "JPEG width in pixels (ImageNet-typical 500).")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Batch size of the pipeline.")
_BATCHES = flags.DEFINE_integer("batches", 6, "Batches per timed repetition.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Interleaved repetitions per thread count.")
_THREADS = flags.DEFINE_list("threads", ["1", "2"], "tf.data thread-pool sizes to time.")
_GPU = flags.DEFINE_float("gpu_img_per_s", ASSUMED_GPU_IMG_PER_S, "Images/s one GPU trains at "
                          "(assumed; default: ResNet-50, A100, mixed precision).")
_SERVICE = flags.DEFINE_bool("service", True, "Also run the pipeline through a local tf.data "
                             "service dispatcher + worker (loopback, OS-chosen ports).")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny images and few batches: checks the output only.")
_JSON = flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")


def make_jpegs(n: int, height: int, width: int, seed: int = 0, quality: int = 90):
  """[n] JPEG strings: smooth random colour fields + a gradient + pixel noise (std 12), uint8."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  out = []
  for i in range(n):
    s = [seed, i]
    small = tf.random.stateless_uniform([height // 8 + 1, width // 8 + 1, 3], s, 0, 255)
    image = tf.image.resize(small, [height, width])
    ramp = tf.linspace(0.0, 60.0, width)[None, :, None]
    noise = tf.random.stateless_normal([height, width, 3], [seed + 1, i], stddev=12.0)
    pixels = tf.cast(tf.clip_by_value(image * 0.8 + ramp + noise, 0, 255), tf.uint8)
    out.append(tf.io.encode_jpeg(pixels, quality=quality))
  return tf.stack(out)


def training_pipeline(jpegs, batch_size: int, threads: int = 0, seed: int = 1, repeat=True):
  """The package's ImageNet training pipeline (`pipeline.from_encoded`) over `jpegs`, with a
  private tf.data thread pool of `threads` threads (0: tf.data's default, one per core)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_rethink.data.pipeline import from_encoded  # pylint: disable=import-outside-toplevel
  labels = np.arange(int(jpegs.shape[0])) % 1000
  ds = from_encoded(jpegs, labels, "imagenet2012", batch_size=batch_size, seed=seed, train=True,
                    repeat=repeat, drop_remainder=repeat)
  options = tf.data.Options()
  if threads:
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1
  return ds.with_options(options)


def timed_rate(iterator, batches: int, batch_size: int):
  """(img/s, img per CPU-second of this process) over `batches` batches of an iterator after its
  first batch (untimed: start-up, the shuffle buffer's fill)."""
  next(iterator)
  t0, c0 = time.perf_counter(), time.process_time()
  for _ in range(batches):
    next(iterator)
  images = batches * batch_size
  return images / (time.perf_counter() - t0), images / max(time.process_time() - c0, 1e-9)


class LocalService:
  """A tf.data service dispatcher and one worker in this process, on 127.0.0.1, OS-chosen ports."""

  def __init__(self):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    service = tf.data.experimental.service
    self.dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
    address = self.dispatcher.target.split("://")[1]
    self.worker = service.WorkerServer(service.WorkerConfig(
        dispatcher_address=address, worker_address="127.0.0.1:%port%", port=0))
    self.target = self.dispatcher.target

  def distribute(self, ds, job_name=None):
    """`ds` processed by the service's workers, streamed back to this process."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return ds.apply(tf.data.experimental.service.distribute(
        processing_mode="parallel_epochs", service=self.target, job_name=job_name))

  def stop(self):
    self.worker.stop()
    self.dispatcher.stop()


def count_through_service(service, ds):
  """(batches, examples) of one epoch of finite `ds` as they arrive through `service`."""
  batches = examples = 0
  for images, _ in service.distribute(ds):
    batches += 1
    examples += int(images.shape[0])
  return batches, examples


def run(cfg) -> dict:
  """The measurements of the module docstring; a JSON-able dict."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  result = {"machine": machine.describe(), "config": cfg, "notes": []}
  t0 = time.perf_counter()
  jpegs = make_jpegs(cfg["jpegs"], cfg["height"], cfg["width"])
  sizes = tf.strings.length(jpegs).numpy()
  result["jpeg"] = {"count": cfg["jpegs"], "height": cfg["height"], "width": cfg["width"],
                    "mean_kb": float(sizes.mean() / 1e3), "seconds_to_make": time.perf_counter() - t0}
  bs, batches = cfg["batch_size"], cfg["batches"]
  runs = {k: [] for k in cfg["threads"]}
  for _ in range(cfg["repeats"]):
    for k in cfg["threads"]:  # one pipeline alive at a time: none prefetches while another runs
      it = iter(training_pipeline(jpegs, bs, k))
      runs[k].append(timed_rate(it, batches, bs))
      del it
  gpu = cfg["gpu_img_per_s"]
  result["threads"] = {}
  for k, pairs in runs.items():
    rs, cpu = [w for w, _ in pairs], [c for _, c in pairs]
    med, med_cpu = statistics.median(rs), statistics.median(cpu)
    result["threads"][str(k)] = {"img_per_s": med, "img_per_s_per_thread": med / k, "runs": rs,
                                 "spread": (max(rs) - min(rs)) / med, "img_per_cpu_s": med_cpu,
                                 "cpu_runs": cpu, "cores_per_gpu": gpu / med_cpu}
  result["gpu_img_per_s_assumed"] = gpu
  if cfg["service"]:
    service = LocalService()
    try:
      finite = training_pipeline(jpegs, bs, 0, repeat=False)
      expected = len(sizes)
      batches_seen, examples_seen = count_through_service(service, finite)
      result["service"] = {"dispatcher": service.target, "workers": 1,
                           "epoch_batches": batches_seen, "epoch_examples": examples_seen,
                           "expected_examples": expected,
                           "expected_batches": -(-expected // bs)}
      it = iter(service.distribute(training_pipeline(jpegs, bs, 0), job_name="bench"))
      timed_rate(it, 1, bs)
      rs = [timed_rate(it, batches, bs) for _ in range(cfg["repeats"])]
      result["service"].update(img_per_s=statistics.median([w for w, _ in rs]),
                               img_per_cpu_s=statistics.median([c for _, c in rs]),
                               runs=[w for w, _ in rs])
      del it
    finally:
      service.stop()
  result["load_average_after"] = machine.load_average()
  return result


def format_result(r: dict) -> str:
  c, j = r["config"], r["jpeg"]
  lines = [machine.format_machine(r["machine"]),
           f"ImageNet training pipeline (data.pipeline.from_encoded: decode_and_crop_jpeg "
           f"RandomResizedCrop 224 + flip + normalize, batch {c['batch_size']}) on {j['count']} "
           f"JPEGs of {j['height']}x{j['width']} made at run time (mean {j['mean_kb']:.0f} KB); "
           f"median of {c['repeats']} interleaved repetitions of {c['batches']} batches",
           f"{'tf.data threads':<16} {'img/s':>9} {'img/s per thread':>17} {'spread':>7} "
           f"{'img/CPU-s':>10} {'cores per GPU':>14}"]
  for k, t in r["threads"].items():
    lines.append(f"{k:<16} {t['img_per_s']:9.1f} {t['img_per_s_per_thread']:17.1f} "
                 f"{t['spread']:6.0%} {t['img_per_cpu_s']:10.1f} {t['cores_per_gpu']:14.1f}")
  lines.append(f"GPU need (assumed, not measured): {r['gpu_img_per_s_assumed']:,.0f} img/s per GPU "
               f"(ResNet-50 training, A100, mixed precision); cores per GPU = that / img per "
               f"CPU-second (one fully used core's rate, whatever the load)")
  if "service" in r:
    s = r["service"]
    lines.append(f"tf.data service ({s['dispatcher']}, {s['workers']} local worker): one epoch "
                 f"arrived as {s['epoch_batches']} batches, {s['epoch_examples']} examples "
                 f"(expected {s['expected_batches']}, {s['expected_examples']}); "
                 f"{s['img_per_s']:.1f} img/s, {s['img_per_cpu_s']:.1f} img/CPU-s through the "
                 f"service")
  if r.get("load_average_after"):
    lines.append("load average (1/5/15 min) after: "
                 + machine.format_load(r["load_average_after"]))
  return "\n".join(lines)


def config_from_flags() -> dict:
  try:
    threads = [int(t) for t in _THREADS.value]
  except ValueError:
    fail(f"--threads={','.join(_THREADS.value)} must be positive integers, e.g. --threads=1,2")
  for name, value in (("jpegs", _JPEGS.value), ("height", _HEIGHT.value), ("width", _WIDTH.value),
                      ("batch_size", _BATCH.value), ("batches", _BATCHES.value),
                      ("repeats", _REPEATS.value), ("gpu_img_per_s", _GPU.value)):
    if value <= 0:
      fail(f"--{name}={value} must be positive")
  if not threads or min(threads) < 1:
    fail(f"--threads={','.join(_THREADS.value)} must be positive integers, e.g. --threads=1,2")
  cfg = dict(jpegs=_JPEGS.value, height=_HEIGHT.value, width=_WIDTH.value,
             batch_size=_BATCH.value, batches=_BATCHES.value, repeats=_REPEATS.value,
             threads=threads, gpu_img_per_s=_GPU.value, service=_SERVICE.value)
  if _QUICK.value:
    cfg.update(jpegs=10, height=120, width=160, batch_size=4, batches=2, repeats=2)
  return cfg


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; every setting is a --flag")
  logging.set_verbosity(logging.WARNING)
  cfg = config_from_flags()
  from tf_rethink.util import quiet  # pylint: disable=import-outside-toplevel
  quiet.import_tensorflow().get_logger().setLevel("ERROR")
  result = run(cfg)
  print(format_result(result))
  if _JSON.value:
    from tf_rethink.util.fs import write_json  # pylint: disable=import-outside-toplevel
    write_json(_JSON.value, result)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
