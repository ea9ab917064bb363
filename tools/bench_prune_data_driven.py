r"""Cost of ThiNet / regression pruning at ImageNet scale, as a share of one training epoch.

  python tools/bench_prune_data_driven.py                 # VGG-16 and ResNet-50 at 224x224
  python tools/bench_prune_data_driven.py --images=64     # more sampled images timed
  python tools/bench_prune_data_driven.py --quick         # seconds; output format only (a test)

For each (method, paper variant, model) row: build the full model with random weights, time
`select` (one streaming sampling pass over `--images` synthetic 224x224 images + the per-layer
selection and least squares) and one training step of the full model (SGD, batch
`--train_batch`). The paper samples more images than are timed (ThiNet 10 per class x 1000
classes = 10,000; He et al. 5,000), so the sampling time is scaled linearly per image, measured as the difference of two runs
(images/2 and images; the fixed cost, mostly tracing, is counted once):

  prune_estimate = fixed + per_image_seconds * paper_images + selection_seconds
  epoch_estimate = 1,281,167 images / (train img/s)
  ratio          = prune_estimate / epoch_estimate      (target: under 5%)

Prints one table row per model and a final JSON line {"rows": [...]} for scripts.
"""
import json
import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tf_rethink  # noqa: E402,F401

_IMAGES = flags.DEFINE_integer("images", 32, "Synthetic images streamed through the sampler.")
_TRAIN_BATCH = flags.DEFINE_integer("train_batch", 8, "Batch of the timed training steps.")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 3, "Timed training steps (after one warm-up).")
_ROWS = flags.DEFINE_list("rows", ["thinet:conv:vgg16_imagenet", "thinet:50:resnet50",
                                   "regression:5x:vgg16_imagenet", "regression:2x:resnet50_select"],
                          "method:variant:model rows to time.")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny models at 64x64 (ratio mode), 4 images, 1 step: "
                           "checks the output format in seconds; the numbers mean nothing.")

IMAGENET_TRAIN = 1281167
PAPER_IMAGES = {"thinet": 10 * 1000, "regression": 5000}


def _train_images_per_second(model, shape, batch, steps):
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tf_keras as keras  # pylint: disable=import-outside-toplevel
  model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  x = np.random.default_rng(0).normal(size=(batch,) + shape).astype(np.float32)
  y = np.zeros(batch, np.int32)
  model.train_on_batch(x, y)
  start = time.perf_counter()
  for _ in range(steps):
    model.train_on_batch(x, y)
  return batch * steps / (time.perf_counter() - start)


def _row(method, variant, model_name, *, quick, images, train_batch, train_steps):
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_rethink.models import MODELS  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning import METHODS  # pylint: disable=import-outside-toplevel
  shape, classes = ((64, 64, 3), 10) if quick else ((224, 224, 3), 1000)
  spec = MODELS.get(model_name)
  model = spec.build(input_shape=shape, num_classes=classes,
                     width_multiplier=0.125 if quick else 1.0)
  def prune(n):
    # Labels cycle over the classes, so the per-class caps never drop an image.
    options = ({"thinet_images_per_class": max(1, -(-n // classes))} if method == "thinet"
               else {"regression_images": n})
    pruner = METHODS.get(method)(variant=None if quick else variant,
                                 ratio=0.5 if quick else None, **options)
    x = np.random.default_rng(1).normal(size=(n,) + shape).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(n) % classes)).batch(32)
    plan = pruner.select(model, data, model_name=model_name)
    return plan, pruner.last_statistics.images, pruner.timings

  # Two sampling runs (n/2 and n images): their difference is the per-image cost without the
  # fixed cost (tracing the sampler's tf.function), which is kept once in the estimate.
  _, n1, t1 = prune(max(1, images // 2))
  plan, sampled, timings = prune(images)
  per_image = (timings["sampling"] - t1["sampling"]) / max(sampled - n1, 1)
  fixed = t1["sampling"] - per_image * n1
  if per_image <= 0 or fixed < 0:   # timing noise (a loaded machine): the conservative average
    per_image, fixed = timings["sampling"] / sampled, 0.0
  ips = _train_images_per_second(model, shape, train_batch, train_steps)
  sampling, selection = timings["sampling"], timings["selection"]
  estimate = fixed + per_image * PAPER_IMAGES[method] + selection
  epoch = IMAGENET_TRAIN / ips
  return {"method": method, "variant": variant, "model": model_name, "layers": len(plan.keep),
          "images_timed": sampled, "sampling_s": sampling, "sampling_s_per_image": per_image,
          "sampling_fixed_s": fixed, "selection_s": selection,
          "paper_images": PAPER_IMAGES[method], "prune_estimate_s": estimate,
          "train_img_per_s": ips, "epoch_estimate_s": epoch, "ratio": estimate / epoch}


def main(argv):
  del argv
  from tf_rethink.util import quiet  # pylint: disable=import-outside-toplevel
  quiet.import_tensorflow()
  quick = _QUICK.value
  rows = []
  for spec in _ROWS.value:
    method, variant, model_name = spec.split(":")
    rows.append(_row(method, variant, model_name, quick=quick,
                     images=4 if quick else _IMAGES.value,
                     train_batch=2 if quick else _TRAIN_BATCH.value,
                     train_steps=1 if quick else _TRAIN_STEPS.value))
    r = rows[-1]
    print(f"{r['method']:>10} {r['variant']:>4} {r['model']:<18} layers {r['layers']:>3}  "
          f"sampling {r['sampling_s']:7.1f} s / {r['images_timed']} img  selection "
          f"{r['selection_s']:6.1f} s  -> {r['paper_images']} img: {r['prune_estimate_s']:8.0f} s;"
          f"  train {r['train_img_per_s']:6.2f} img/s, epoch {r['epoch_estimate_s']:9.0f} s;  "
          f"ratio {100 * r['ratio']:.2f}%", flush=True)
  print(json.dumps({"rows": rows}))


if __name__ == "__main__":
  app.run(main)
