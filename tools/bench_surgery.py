r"""Cost of structured pruning with the general engine, as a share of one training epoch.

  python tools/bench_surgery.py            # keras.applications ResNet50 and DenseNet121 at 224x224
  python tools/bench_surgery.py --quick    # seconds; output format only (a test)

For each model (random weights, 1000 classes): time building the channel dependency groups
(`tf_rethink.channel_groups`) and the whole L1-norm prune at 30% with coupled groups
(`tf_rethink.prune`: scoring, selection and surgery into a new, smaller model), and one training
step of the full model at batch `--train_batch` (SGD, after one warm-up step). Then

  epoch_estimate = (1,281,167 / train_batch) * step_seconds       (ImageNet)
  ratio          = prune_seconds / epoch_estimate                  (target: under 5%)

Prints one row per model and a final JSON line {"rows": [...]} for scripts.
"""
import json
import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tf_rethink  # noqa: E402,F401

_MODELS = flags.DEFINE_list("models", ["ResNet50", "DenseNet121"],
                            "tf_keras.applications model names.")
_SIZE = flags.DEFINE_integer("size", 224, "Input height and width.")
_TRAIN_BATCH = flags.DEFINE_integer("train_batch", 32, "Batch of the timed training step.")
_RATIO = flags.DEFINE_float("ratio", 0.3, "Fraction of channels removed per group.")
_QUICK = flags.DEFINE_bool("quick", False, "MobileNetV2 (alpha 0.35) at 64x64, batch 2: checks the "
                           "output format in seconds; the numbers mean nothing.")

IMAGENET_TRAIN = 1281167


def _timed(fn):
  start = time.perf_counter()
  value = fn()
  return value, time.perf_counter() - start


def bench(name: str, size: int, batch: int, ratio: float) -> dict:
  """One row: group-building and prune seconds, train-step seconds, the epoch share."""
  import numpy as np
  import tf_keras as keras
  from tf_rethink import flops
  from tf_rethink.train import trainer

  kwargs = {"alpha": 0.35} if name == "MobileNetV2" else {}
  model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3),
                                            classes=1000, classifier_activation=None, **kwargs)
  report, groups_s = _timed(lambda: tf_rethink.channel_groups(model))
  (small, _), prune_s = _timed(lambda: tf_rethink.prune(model, "l1_norm", ratio))
  before, after = flops.count(model), flops.count(small)

  trainer.compile_model(model, trainer.TrainSpec(epochs=1, lr=0.1, batch_size=batch,
                                                 weight_decay=1e-4))
  rng = np.random.default_rng(0)
  x = rng.normal(size=(batch, size, size, 3)).astype("float32")
  y = rng.integers(0, 1000, size=(batch,)).astype("int32")
  model.train_on_batch(x, y)  # warm-up: tracing
  _, step_s = _timed(lambda: model.train_on_batch(x, y))
  epoch_s = IMAGENET_TRAIN / batch * step_s
  return {"model": name, "groups": len(report.groups), "skipped": len(report.skipped),
          "groups_s": groups_s, "prune_s": prune_s, "train_step_s": step_s,
          "epoch_estimate_s": epoch_s,
          "ratio": prune_s / epoch_s, "params": [before.params, after.params],
          "macs": [before.macs, after.macs]}


def main(argv):
  del argv
  if _QUICK.value:
    models, size, batch = ["MobileNetV2"], 64, 2
  else:
    models, size, batch = _MODELS.value, _SIZE.value, _TRAIN_BATCH.value
  rows = [bench(name, size, batch, _RATIO.value) for name in models]
  print(f"{'model':>12} {'groups':>6} {'build groups':>12} {'prune':>8} {'train step':>10} "
        f"{'epoch est.':>10} {'prune/epoch':>11} {'params':>23} {'MACs':>25}")
  for r in rows:
    print(f"{r['model']:>12} {r['groups']:>6} {r['groups_s']:>11.2f}s {r['prune_s']:>7.2f}s "
          f"{r['train_step_s']:>9.2f}s {r['epoch_estimate_s']:>9.0f}s {100 * r['ratio']:>10.4f}% "
          f"{r['params'][0]:>11,}->{r['params'][1]:<11,} {r['macs'][0]:>12,}->{r['macs'][1]:<12,}")
  print(json.dumps({"rows": rows}))


if __name__ == "__main__":
  app.run(main)
