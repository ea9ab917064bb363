r"""Cost of the --augment recipes and of the ImageNet crop candidates (input pipeline only).

  python tools/bench_augment.py                       # every recipe, embedded + CIFAR-sized data
  python tools/bench_augment.py --recipes=paper,randaugment --batches=50 --repeats=5
  python tools/bench_augment.py --imagenet_jpegs=256  # decode_and_crop_jpeg vs keras-cv RRC

Recipes: images/s of `data.pipeline.from_arrays(..., augment=recipe)` on in-memory uint8 data
(the shipped Fashion-MNIST subset; random CIFAR-shaped images), batch 64, after one warm-up
epoch, median of --repeats. ImageNet crop: images/s of the per-example training preprocessing
on synthetic JPEGs (smooth random images of ImageNet's typical 500x375 size, quality 90):
`augment.imagenet_train` (decodes only the crop window) against
`recipes.imagenet_train_keras_cv` (decodes the whole image, then keras-cv's RandomCropAndResize).
`bench_functions()` gives the same timings to other tools.
"""
import os
import statistics
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rethink.util.errors import fail, parse_flags  # noqa: E402

_RECIPES = flags.DEFINE_list("recipes", ["paper", "randaugment", "mixup", "cutmix"],
                             "Recipes to time.")
_BATCHES = flags.DEFINE_integer("batches", 40, "Batches per timed epoch.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed epochs per case (median reported).")
_JPEGS = flags.DEFINE_integer("imagenet_jpegs", 128, "Synthetic JPEGs for the ImageNet crop "
                              "comparison (0: skip it).")


def _rate(make_dataset, images_per_epoch: int, repeats: int) -> float:
  """Median images/s over `repeats` full passes of `make_dataset()` (after one warm-up pass)."""
  ds = make_dataset()
  for _ in ds:
    pass
  rates = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in ds:
      pass
    rates.append(images_per_epoch / (time.perf_counter() - start))
  return statistics.median(rates)


def recipe_rates(recipes, batches: int, repeats: int, batch_size: int = 64) -> dict:
  """{(data, recipe): images/s} of the training pipeline with each recipe."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from tf_rethink.data import embedded  # pylint: disable=import-outside-toplevel
  from tf_rethink.data.pipeline import from_arrays  # pylint: disable=import-outside-toplevel
  n = batches * batch_size
  grey, grey_labels = embedded.load("train")
  rng = np.random.default_rng(0)
  data = {"embedded 28x28x1": (grey[:n], grey_labels[:n], "embedded"),
          "cifar10 32x32x3": (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                              rng.integers(0, 10, n), "cifar10")}
  out = {}
  for label, (images, labels, name) in data.items():
    for recipe in recipes:
      out[(label, recipe)] = _rate(lambda: from_arrays(
          images, labels, name, batch_size=batch_size, seed=1, train=True, augment=recipe),
          len(labels), repeats)
  return out


def imagenet_crop_rates(jpegs: int, repeats: int) -> dict:
  """{candidate: images/s} of the per-example ImageNet training crop on synthetic JPEGs."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_rethink.data import augment, recipes  # pylint: disable=import-outside-toplevel
  small = tf.random.stateless_uniform([jpegs, 47, 63, 3], [0, 1], 0, 255)
  images = tf.cast(tf.image.resize(small, [375, 500]), tf.uint8)   # smooth, JPEG-typical
  encoded = tf.stack([tf.io.encode_jpeg(img, quality=90) for img in images])
  candidates = {"augment.imagenet_train (decode_and_crop_jpeg)": augment.imagenet_train,
                "keras-cv RandomCropAndResize (full decode)": recipes.imagenet_train_keras_cv}
  out = {}
  for name, fn in candidates.items():
    def make(fn=fn):
      seeds = tf.data.Dataset.random(seed=1).batch(2)
      return tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(encoded), seeds)).map(
          fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(64)
    out[name] = _rate(make, jpegs, repeats)
  return out


def bench_functions() -> dict:
  """name -> function(repeats) -> {case: images/s}: what this tool times, for other benches."""
  return {"recipes": lambda repeats, batches=40, recipes=("paper", "randaugment", "mixup",
                                                          "cutmix"): recipe_rates(
                                                              recipes, batches, repeats),
          "imagenet_crop": lambda repeats, jpegs=128: imagenet_crop_rates(jpegs, repeats)}


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; every setting is a --flag")
  from tf_rethink.run.config import AUGMENTATIONS  # pylint: disable=import-outside-toplevel
  unknown = [r for r in _RECIPES.value if r not in AUGMENTATIONS]
  if unknown:
    fail(f"unknown --recipes {unknown}; choose from {', '.join(AUGMENTATIONS)}")
  for name in ("batches", "repeats"):
    if flags.FLAGS[name].value < 1:
      fail(f"--{name}={flags.FLAGS[name].value} must be a positive integer")
  print(f"{os.cpu_count()} CPUs; input pipeline only, images/s (median of {_REPEATS.value})")
  rates = recipe_rates(_RECIPES.value, _BATCHES.value, _REPEATS.value)
  for (data, recipe), rate in rates.items():
    paper = rates.get((data, "paper"))
    ratio = f"  ({rate / paper:.2f}x paper)" if paper else ""
    print(f"{data:18s} {recipe:12s} {rate:10,.0f} img/s{ratio}")
  if _JPEGS.value > 0:
    for name, rate in imagenet_crop_rates(_JPEGS.value, _REPEATS.value).items():
      print(f"imagenet crop: {name:48s} {rate:8,.0f} img/s")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
