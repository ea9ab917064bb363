"""The --augment recipes: what each op does to images and labels, determinism, the pipeline hook."""
import os

import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf

from tf_rethink.data import augment
from tf_rethink.data.pipeline import from_arrays
from tf_rethink.data import recipes
from tf_rethink.run import config as config_lib
from tf_rethink.util.errors import UsageError

SEED = tf.constant([3, 5], tf.int64)


def _distinct_batch(n=16, size=12, channels=3):
  """Image i is the constant i * 10 (so every pixel says where it came from); label i is class i."""
  images = tf.constant(np.arange(n, dtype=np.float32)[:, None, None, None] * 10
                       * np.ones((1, size, size, channels), np.float32))
  return images, tf.one_hot(tf.range(n), n)


def test_registry_and_config_name_the_same_recipes():
  assert sorted(config_lib.AUGMENTATIONS) == recipes.RECIPES.names()
  with pytest.raises(UsageError, match="--augment='autoaugment'.*cutmix"):
    recipes.get("autoaugment")


def test_mixup_labels_sum_to_one_and_weight_the_images_as_mixed():
  images, labels = _distinct_batch()
  mixed, soft = recipes.mixup(images, labels, SEED)
  soft = soft.numpy()
  np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
  for i in range(len(soft)):
    # Pixel value = sum over source images j of weight_j * 10 j: the label weights.
    want = (soft[i] * np.arange(len(soft)) * 10).sum()
    np.testing.assert_allclose(mixed[i].numpy(), want, rtol=1e-5, atol=1e-3)
  partners = np.count_nonzero(soft > 1e-6, axis=1)
  assert (partners == 2).sum() >= len(soft) // 2   # most examples really mix with another one


def test_cutmix_label_weight_is_the_pasted_area_fraction():
  images, labels = _distinct_batch(n=32)
  mixed, soft = recipes.cutmix(images, labels, SEED)
  mixed, soft = mixed.numpy(), soft.numpy()
  np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
  fractions = []
  for i in range(len(soft)):
    source = np.rint(mixed[i, :, :, 0] / 10).astype(int)
    assert set(np.unique(source)) <= {i, int(np.argmax(np.where(np.arange(32) == i, -1, soft[i])))}
    weights = np.bincount(source.ravel(), minlength=32) / source.size
    np.testing.assert_allclose(soft[i], weights, atol=1e-6)
    fractions.append(1 - weights[i])
  assert 0 < np.mean(fractions) < 1


def test_cutmix_weights_by_the_clipped_box():
  """A box near the border is clipped; its label weight is what was pasted, not the box area."""
  images, labels = _distinct_batch(n=64, size=10, channels=1)
  mixed, soft = recipes.cutmix(images, labels, SEED)
  own = np.array([soft[i, i] for i in range(64)])
  # Unclipped boxes have sides int(r * 10): areas k^2 / 100; a clipped box gives other fractions.
  pasted = 1 - own[own < 1]
  squares = {k * k / 100 for k in range(11)}
  assert any(min(abs(p - q) for q in squares) > 1e-6 for p in pasted)


@pytest.mark.parametrize("channels", [pytest.param(1, marks=pytest.mark.slow), 3])
def test_randaugment_is_deterministic_from_the_seed_and_changes_images(channels):
  rng = np.random.default_rng(0)
  images = tf.constant(rng.integers(0, 256, (16, 16, 16, channels)).astype(np.float32))
  labels = tf.range(16)
  fn = tf.function(recipes.randaugment)
  a, la = fn(images, labels, SEED)
  b, _ = fn(images, labels, SEED)
  c, _ = fn(images, labels, tf.constant([4, 5], tf.int64))
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.array_equal(a.numpy(), c.numpy())
  np.testing.assert_array_equal(la.numpy(), labels.numpy())
  changed = np.any(a.numpy() != images.numpy(), axis=(1, 2, 3))
  assert changed.sum() >= 12            # P(an image untouched in 3 rounds) = (1/11)^3
  assert a.shape == images.shape and 0 <= a.numpy().min() and a.numpy().max() <= 255


def test_randaugment_uses_keras_cv_layers_with_stateless_draws():
  layers = recipes.randaugment_layers(3)
  assert len(layers) == 10 and all(type(l).__module__.startswith("keras_cv") for l in layers)
  assert len(recipes.randaugment_layers(1)) == 9
  contrast = next(l for l in layers if type(l).__name__ == "RandomContrast")
  x = tf.random.stateless_uniform([4, 8, 8, 3], [1, 1], 0, 255)
  with recipes.stateless_randomness(contrast, SEED):
    first = contrast(x).numpy()
  with recipes.stateless_randomness(contrast, SEED):
    np.testing.assert_array_equal(contrast(x).numpy(), first)
  assert not isinstance(contrast._random_generator, recipes._StatelessDraws)  # restored


def _arrays(n=40, size=28, channels=1, classes=10):
  rng = np.random.default_rng(1)
  return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8), np.arange(n) % classes


@pytest.mark.parametrize("name", ["randaugment", "mixup", "cutmix"])
def test_pipeline_recipe_same_seed_same_batches_and_label_format(name):
  images, labels = _arrays()

  def batches(seed):
    ds = from_arrays(images, labels, "embedded", batch_size=16, seed=seed, train=True,
                              augment=name)
    return [(x.numpy(), y.numpy()) for x, y in ds]
  first, again, other = batches(1), batches(1), batches(2)
  for (x1, y1), (x2, y2) in zip(first, again):
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
  assert not np.array_equal(first[0][0], other[0][0])
  paper = [x for x, _ in from_arrays(images, labels, "embedded", batch_size=16, seed=1,
                                              train=True)]
  assert not np.array_equal(first[0][0], paper[0].numpy())
  y = first[0][1]
  if recipes.get(name).soft_labels:
    assert y.shape == (16, 10) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
  else:
    np.testing.assert_array_equal(y, first[0][1].astype(np.int32))
    assert y.shape == (16,)
  test = next(iter(from_arrays(images, labels, "embedded", batch_size=16, seed=1,
                                        train=False, augment=name)))
  assert test[1].shape == (16,) and test[1].dtype == tf.int32   # evaluation: int labels


def test_paper_recipe_draws_what_the_pipeline_drew_without_recipes():
  """--augment=paper: crop and flip from the batch seed itself, then normalization (no hook)."""
  images, labels = _arrays(n=16)
  ds = from_arrays(images, labels, "embedded", batch_size=16, seed=9, train=False)
  del ds
  seed = next(iter(tf.data.Dataset.random(seed=9, rerandomize_each_iteration=True).batch(2)))
  got = next(iter(from_arrays(images, labels, "embedded", batch_size=16, seed=9,
                                       train=True, augment="paper")))[0].numpy()
  order = next(iter(tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(
      16, seed=9, reshuffle_each_iteration=True).batch(16)))
  want = augment.normalize(augment.pad_crop_flip_batch(order[0], seed), augment.FASHION_MNIST_MEAN,
                           augment.FASHION_MNIST_STD).numpy()
  np.testing.assert_array_equal(got, want)


def test_unknown_recipe_is_a_usage_error_for_every_split():
  images, labels = _arrays(n=8)
  for train in (True, False):
    with pytest.raises(UsageError, match="--augment"):
      from_arrays(images, labels, "embedded", batch_size=4, seed=1, train=train,
                           augment="bogus")


@pytest.mark.slow
def test_keras_cv_imported_before_tf_rethink_still_trains(tmp_path):
  """keras-cv first (then it runs on Keras 3, tf_rethink's models on tf_keras): the RandAugment
  pipeline still feeds a tf_keras training step in the same process."""
  import subprocess
  import sys
  code = """
import keras_cv, tf_rethink, numpy as np
import tf_keras as keras
from tf_rethink.data.pipeline import from_arrays
from tf_rethink.train import speed
from keras_cv.src.backend import config
images = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 1), dtype=np.uint8)
ds = from_arrays(images, np.arange(32) % 10, "embedded", batch_size=16, seed=1, train=True,
                 augment="randaugment")
model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28, 1)), keras.layers.Dense(10)])
model.compile("sgd", speed.CrossEntropy(), metrics=[speed.Accuracy()])
history = model.fit(ds, epochs=1, verbose=0)
print("keras3", config.keras_3(), "loss", history.history["loss"][0])
"""
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # as a fresh shell
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))), env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "keras3 True loss" in proc.stdout


def test_keras_cv_crop_is_a_seeded_imagenet_crop():
  small = tf.random.stateless_uniform([12, 16, 3], [0, 1], 0, 255)
  jpeg = tf.io.encode_jpeg(tf.cast(tf.image.resize(small, [60, 80]), tf.uint8))
  crop = tf.function(lambda s: recipes.imagenet_train_keras_cv(jpeg, s, 32))
  a, b, c = crop(SEED), crop(SEED), crop(tf.constant([9, 9], tf.int64))
  assert a.shape == (32, 32, 3) and 0 <= a.numpy().min() and a.numpy().max() <= 255
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.array_equal(a.numpy(), c.numpy())
  assert recipes.get("keras_cv_crop").imagenet_crop is recipes.imagenet_train_keras_cv
  images, labels = _arrays(n=8)
  with pytest.raises(UsageError, match="replaces the ImageNet training crop"):
    from_arrays(images, labels, "embedded", batch_size=4, seed=1, train=True,
                augment="keras_cv_crop")
