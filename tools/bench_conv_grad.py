r"""Weight gradient of one convolution: TensorFlow's kernel against per-tap matmuls, side by side.

  python tools/bench_conv_grad.py                       # the grid behind train/conv_weight_grad.py
  python tools/bench_conv_grad.py --sizes=8,4 --channels=256,512 --dtype=float32 --batch=128
  python tools/bench_conv_grad.py --quick               # seconds; output format only (a test)

For every output map size x channel count (C_in = C_out), a stride-1 "same" convolution's weight
gradient is computed both ways on the same random tensors (`Conv2DBackpropFilter`, which TensorFlow's
Conv2D gradient runs, and `conv_weight_grad.tap_matmul_weight_grad`), interleaved over
`--repeats` rounds; prints the median ms of each, the ratio taps / kernel (below 1: the taps are
faster), and whether `conv_weight_grad.pays` picks the taps for that shape. The machine (CPU, ISA)
is printed first; a final JSON line {"machine", "rows"} is for scripts.
"""
import json
import os
import statistics
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tf_rethink  # noqa: E402,F401
from tf_rethink.util.errors import fail, parse_flags  # noqa: E402

_SIZES = flags.DEFINE_list("sizes", ["16", "8", "4", "2"], "Output map sizes (square).")
_CHANNELS = flags.DEFINE_list("channels", ["64", "128", "256", "512"], "C_in = C_out values.")
_KERNEL = flags.DEFINE_integer("kernel", 3, "Kernel size (square).")
_BATCH = flags.DEFINE_integer("batch", 64, "Batch size.")
_DTYPE = flags.DEFINE_enum("dtype", "bfloat16", ["bfloat16", "float32"], "Compute dtype.")
_THREADS = flags.DEFINE_integer("threads", 0, "TensorFlow intra/inter-op threads (0: default).")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Interleaved rounds per shape.")
_QUICK = flags.DEFINE_bool("quick", False, "Two tiny shapes, batch 2: output format only.")


def time_shape(size: int, channels: int, kernel: int, batch: int, dtype: str,
               repeats: int) -> dict:
  """Median ms of both ways for one shape, and their largest relative difference."""
  import tensorflow as tf
  from tf_rethink.train import conv_weight_grad as cwg
  x = tf.cast(tf.random.normal([batch, size, size, channels], seed=1), dtype)
  dy = tf.cast(tf.random.normal([batch, size, size, channels], seed=2), dtype)
  ways = {
      "kernel": tf.function(lambda a, b: tf.raw_ops.Conv2DBackpropFilter(
          input=a, filter_sizes=[kernel, kernel, channels, channels], out_backprop=b,
          strides=[1, 1, 1, 1], padding="SAME")),
      "taps": tf.function(lambda a, b: cwg.tap_matmul_weight_grad(a, b, (kernel, kernel), "SAME"))}
  outs = {name: tf.cast(fn(x, dy), tf.float32) for name, fn in ways.items()}   # traced, warm
  scale = float(tf.reduce_max(tf.abs(outs["kernel"]))) or 1.0
  diff = float(tf.reduce_max(tf.abs(outs["taps"] - outs["kernel"]))) / scale
  flop = 2 * batch * size * size * kernel * kernel * channels * channels
  calls = max(1, min(50, int(1e9 / flop)))    # about a GFLOP per timing
  ms = {name: [] for name in ways}
  for _ in range(repeats):
    for name, fn in ways.items():
      start = time.perf_counter()
      for _ in range(calls):
        out = fn(x, dy)
      out.numpy()
      ms[name].append((time.perf_counter() - start) / calls * 1e3)
  kernel_ms, taps_ms = statistics.median(ms["kernel"]), statistics.median(ms["taps"])
  return {"size": size, "channels": channels, "kernel": kernel, "batch": batch, "dtype": dtype,
          "kernel_ms": kernel_ms, "taps_ms": taps_ms, "taps_over_kernel": taps_ms / kernel_ms,
          "max_rel_diff": diff,
          "rule_picks_taps": cwg.pays((size, size), channels, channels, dtype=dtype)}


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; every setting is a --flag")
  try:
    sizes, channels = [int(v) for v in _SIZES.value], [int(v) for v in _CHANNELS.value]
  except ValueError:
    fail("--sizes and --channels are comma-separated integers, e.g. --sizes=8,4")
  if min(sizes + channels + [_BATCH.value, _KERNEL.value, _REPEATS.value]) < 1:
    fail("--sizes, --channels, --batch, --kernel and --repeats must be >= 1")
  import tensorflow as tf
  from tf_rethink.util import machine
  if _THREADS.value:
    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
  batch, repeats = _BATCH.value, _REPEATS.value
  if _QUICK.value:
    sizes, channels, batch, repeats = [4, 2], [16], 2, 2
  described = machine.describe()
  print(machine.format_machine(described))
  print(f"weight gradient of a {_KERNEL.value}x{_KERNEL.value} stride-1 conv, batch {batch}, "
        f"{_DTYPE.value}, {tf.config.threading.get_intra_op_parallelism_threads() or 'default'} "
        f"threads; median of {repeats} interleaved rounds")
  print(f"{'output map':>10} {'C':>5} {'kernel ms':>10} {'taps ms':>9} {'taps/kernel':>12} "
        f"{'rule':>6}")
  rows = []
  for size in sizes:
    for c in channels:
      row = time_shape(size, c, _KERNEL.value, batch, _DTYPE.value, repeats)
      rows.append(row)
      print(f"{f'{size}x{size}':>10} {c:5d} {row['kernel_ms']:10.3f} {row['taps_ms']:9.3f} "
            f"{row['taps_over_kernel']:11.2f}x {'taps' if row['rule_picks_taps'] else 'kernel':>6}",
            flush=True)
  print(json.dumps({"machine": described, "rows": rows}))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
