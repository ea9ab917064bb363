"""Batched, normalized tf.data pipelines with the paper's augmentation, reproducible from a seed."""
import functools
import zlib
from typing import Optional

import tensorflow as tf

from tf_rethink.util import errors
from tf_rethink.data import augment
from tf_rethink.data import datasets
from tf_rethink.data import recipes

# The stream of the batch seed that a recipe draws from (the paper's crop and flip use the seed
# itself, so `--augment=paper` draws exactly what it drew before recipes existed).
RECIPE_STREAM = 1

AUTOTUNE = tf.data.AUTOTUNE


def num_examples(name: str, split: str, *, data_dir: Optional[str] = None,
                 idx_dir: Optional[str] = None, limit: Optional[int] = None) -> int:
  """Examples one epoch of `pipeline(name, split, limit=limit, ...)` yields."""
  n = datasets.get_source(name, split, data_dir=data_dir, idx_dir=idx_dir, count_only=True).num_examples
  return n if limit is None else min(n, _check_limit(limit))


def _check_limit(limit: int) -> int:
  if int(limit) != limit or limit < 1:
    raise errors.UsageError(f"limit={limit!r} must be a positive integer (or None for all examples)")
  return int(limit)


def _preprocess_fn(info: datasets.DatasetInfo, train: bool, encoded: bool,
                   recipe: recipes.Recipe = recipes.PAPER):
  """Returns f(images, labels, seed) -> (float32 normalized images, int32 labels).

  ImageNet: one example (a JPEG string or decoded image) per call, before batching. The fixed-size
  families (cifar, mnist): one whole uint8 BATCH per call, after batching: the crop, flip and
  normalization are a few ops per batch instead of per image (`augment.pad_crop_flip_batch`).
  With a `recipe` (training only) the images stay pixels (ImageNet: f also returns the seed) for
  `_recipe_fn`, which runs on batches."""
  size = info.input_shape[0]
  normalize = recipe.fn is None   # a batch recipe needs pixels; a crop recipe does not

  def fn(image, label, seed):
    if info.family == "imagenet":
      if train:
        image = (recipe.imagenet_crop or augment.imagenet_train)(image, seed, size)
      else:
        image = augment.imagenet_eval(tf.io.decode_jpeg(image, channels=3) if encoded else image, size)
      if not normalize:
        return tf.ensure_shape(image, info.input_shape), tf.cast(label, tf.int32), seed
      return (tf.ensure_shape(augment.normalize(image, info.mean, info.std), info.input_shape),
              tf.cast(label, tf.int32))
    if train:
      image = augment.pad_crop_flip_batch(image, seed, augment.PAD)
    if not normalize:
      return _recipe_fn(info, recipe)(image, label, seed)
    image = tf.ensure_shape(augment.normalize(image, info.mean, info.std), (None,) + info.input_shape)
    return image, tf.cast(label, tf.int32)

  return fn


def _recipe_fn(info: datasets.DatasetInfo, recipe: recipes.Recipe):
  """f(pixels [B, H, W, C], int labels [B], batch seed [2]) -> (normalized images, labels) of
  `recipe` (labels one-hot float32 [B, classes] when it mixes examples): the ONE hook through
  which recipes enter the pipeline. The recipe draws from the batch seed's RECIPE_STREAM."""
  def fn(images, labels, seed):
    labels = tf.cast(labels, tf.int32)
    if recipe.soft_labels:
      labels = tf.one_hot(labels, info.num_classes, dtype=tf.float32)
    images, labels = recipe.fn(tf.cast(images, tf.float32), labels,
                               tf.random.experimental.stateless_fold_in(seed, RECIPE_STREAM))
    images = augment.normalize(images, info.mean, info.std)
    return tf.ensure_shape(images, (None,) + info.input_shape), labels
  return fn


def pipeline(name: str, split: str, *, batch_size: int, seed: int, train: Optional[bool] = None,
             data_dir: Optional[str] = None, idx_dir: Optional[str] = None,
             limit: Optional[int] = None, augment: str = "paper") -> tf.data.Dataset:
  """One epoch of batched (float32 NHWC normalized images, int32 labels) of dataset `name`.

  Args:
    name: a DATASETS key ("embedded", "fashion_mnist", "cifar10", "cifar100", "imagenet2012").
    split: "train" or "test" (ImageNet: "test" is the validation set).
    batch_size: examples per batch; the last batch keeps the remainder (like the paper's PyTorch
      DataLoaders, drop_last=False).
    seed: shuffling and augmentation seed. The same seed gives the same batches, epoch after epoch
      (each epoch reshuffles and redraws the augmentation, reproducibly).
    train: shuffle and augment (spec 3.1/3.2, see `augment`); defaults to split == "train". When
      False the images are only preprocessed for evaluation and normalized, in file order.
    data_dir: tensorflow-datasets data directory (cifar10, cifar100, imagenet2012, fashion_mnist
      fallback); None means tfds's default (~/tensorflow_datasets).
    idx_dir: directory of the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist).
    limit: use only the first `limit` examples of the split (before shuffling).
    augment: the training augmentation recipe (`recipes.RECIPES`: paper, randaugment, mixup,
      cutmix); mixup and cutmix yield one-hot float labels. Ignored when `train` is False.

  The dataset is finite (no repeat): `model.fit(ds, epochs=E)` iterates it E times.
  """
  info = datasets.info(name)
  train = split == "train" if train is None else bool(train)
  _check_batch_size(batch_size)
  source = datasets.get_source(name, split, data_dir=data_dir, idx_dir=idx_dir)
  n = source.num_examples if limit is None else min(source.num_examples, _check_limit(limit))
  if source.arrays is not None:
    images, labels = source.arrays
    del source  # the arrays' only other reference: freed once they are in the tensor
    return from_arrays(images[:n], labels[:n], name, batch_size=batch_size, seed=seed, train=train,
                       augment=augment)
  ds = source.make_dataset(seed, train)
  if limit is not None:
    ds = ds.take(n)
  return _batched(ds, info, batch_size=batch_size, seed=seed, train=train,
                  encoded=source.encoded_images, options=_options(), n=n, augment=augment)


def from_arrays(images, labels, name: str, *, batch_size: int, seed: int, train: bool,
                repeat: bool = False, drop_remainder: bool = False,
                augment: str = "paper") -> tf.data.Dataset:
  """The pipeline of `pipeline` over in-memory uint8 images [N, H, W, C] and int labels [N],
  preprocessed as dataset `name` (its augmentation and normalization, `augment` its recipe);
  `repeat` loops forever.

  Memory: the examples are held once, in the TensorFlow tensor the dataset is built on (the
  caller's numpy arrays can then be dropped; `pipeline` drops them). tf.data's default graph
  optimizations are off here: their rewrite serializes the dataset graph and keeps a second copy
  of that tensor alive. Measured on 100,000 random CIFAR images (293 MiB, after 8 batches): 1.20
  copies resident with the rewrite off, 2.26 with it on, and the same pipeline throughput (the
  rewrite's fusions do not apply to the batched map; about 55,000 img/s on 2 cores). While the
  numpy array is converted, memory peaks at about 3 copies (numpy's included).
  """
  info = datasets.info(name)
  _check_batch_size(batch_size)
  if len(images) != len(labels):
    raise errors.UsageError(f"{len(images)} images but {len(labels)} labels")
  images, labels = tf.convert_to_tensor(images), tf.convert_to_tensor(labels)
  ds = tf.data.Dataset.from_tensor_slices((images, labels))
  options = _options()
  options.experimental_optimization.apply_default_optimizations = False
  out = _batched(ds, info, batch_size=batch_size, seed=seed, train=train, encoded=False,
                 options=options, n=int(labels.shape[0]), repeat=repeat,
                 drop_remainder=drop_remainder, augment=augment)
  if train and not repeat:   # the trainer's resumable, epoch-keyed form (`for_epochs`)
    out.for_epochs = functools.partial(_epochs_from_arrays, images, labels, info,
                                       batch_size=batch_size, seed=seed, options=options,
                                       drop_remainder=drop_remainder, augment=augment)
    n = int(labels.shape[0])
    out.steps_per_epoch = n // batch_size if drop_remainder else -(-n // batch_size)
  return out


def epoch_seed(seed: int, stream: str, epoch) -> tf.Tensor:
  """The seed [2] of one epoch of one run: a function of (seed, stream, epoch) only, never of how
  often a dataset was iterated before (`stream`: the run's name, e.g. "baseline")."""
  key = zlib.crc32(stream.encode("utf-8")) & 0x7FFFFFFF
  return tf.random.experimental.stateless_fold_in(
      tf.constant([int(seed), key], tf.int64), tf.cast(epoch, tf.int64))


def _epochs_from_arrays(images, labels, info, first_epoch: int, num_epochs: int, stream: str, *,
                        batch_size, seed, options, drop_remainder, augment) -> tf.data.Dataset:
  """Epochs first_epoch .. first_epoch + num_epochs - 1 of the training pipeline of `from_arrays`,
  back to back (fit with steps_per_epoch): epoch e's order is a stateless permutation of
  `epoch_seed(seed, stream, e)` and batch b's augmentation seed is that seed folded with b, so a
  run resumed at epoch k sees exactly the batches an uninterrupted run sees from epoch k on.
  The crop, flip and recipe are the same functions as `pipeline`'s."""
  recipe = recipes.get(augment)
  fn = _preprocess_fn(info, True, False, recipe)
  n = int(labels.shape[0])

  def one_epoch(e):
    s = epoch_seed(seed, stream, e)
    order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=s)
    batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size,
                                                              drop_remainder=drop_remainder)
    batch_seeds = tf.data.Dataset.range(tf.int64.max).map(
        lambda b: tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(s, 1), b))
    return tf.data.Dataset.zip((batches, batch_seeds)).map(
        lambda idx, bs: fn(tf.gather(images, idx), tf.gather(labels, idx), bs),
        num_parallel_calls=AUTOTUNE, deterministic=True)

  ds = tf.data.Dataset.range(first_epoch, first_epoch + num_epochs).flat_map(one_epoch)
  return ds.prefetch(AUTOTUNE).with_options(options)


def from_encoded(encoded, labels, name: str = "imagenet2012", *, batch_size: int, seed: int,
                 train: bool = True, repeat: bool = False,
                 drop_remainder: bool = False) -> tf.data.Dataset:
  """The pipeline of `pipeline` over in-memory encoded JPEG strings [N] and int labels [N] of an
  ImageNet-family dataset `name`: shuffle, per example `decode_and_crop_jpeg` RandomResizedCrop +
  flip (train) or decode + resize + centre crop (eval), normalize, batch, prefetch; `repeat`
  loops forever. What `tools/bench_input.py` times on JPEGs made at run time."""
  info = datasets.info(name)
  _check_batch_size(batch_size)
  if info.family != "imagenet":
    raise errors.UsageError(f"from_encoded decodes JPEGs of an ImageNet-family dataset; {name} "
                            "holds fixed-size arrays (use from_arrays)")
  ds = tf.data.Dataset.from_tensor_slices((encoded, labels))
  return _batched(ds, info, batch_size=batch_size, seed=seed, train=train, encoded=True,
                  options=_options(), n=len(labels), repeat=repeat, drop_remainder=drop_remainder)


def _batched(ds, info, *, batch_size, seed, train, encoded, options, n, repeat=False,
             drop_remainder=False, augment="paper"):
  """Shuffle (train; the whole split of `n` examples unless the dataset sets a window), seeded
  preprocessing (per example before batching for ImageNet, per batch after it otherwise), batch,
  the augmentation recipe (train), prefetch."""
  recipe = recipes.get(augment)   # checked for every split; evaluation never augments
  if recipe.imagenet_crop is not None and info.family != "imagenet":
    raise errors.UsageError(f"--augment={augment} replaces the ImageNet training crop; "
                            f"{info.name} has none (use it with --dataset=imagenet2012)")
  if not train:
    recipe = recipes.PAPER
  if train:
    ds = ds.shuffle(info.shuffle_buffer or n, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
  else:
    seeds = tf.data.Dataset.from_tensors(tf.zeros([2], tf.int64)).repeat()  # unused by eval ops
  if repeat:
    ds = ds.repeat()
  fn = _preprocess_fn(info, train, encoded, recipe)
  per_example = info.family == "imagenet"
  if not per_example:
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  ds = tf.data.Dataset.zip((ds, seeds)).map(lambda example, s: fn(example[0], example[1], s),
                                            num_parallel_calls=AUTOTUNE, deterministic=True)
  if per_example:
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if recipe.fn is not None:   # the batch's seed: its first example's
      ds = ds.map(lambda x, y, s: _recipe_fn(info, recipe)(x, y, s[0]),
                  num_parallel_calls=AUTOTUNE, deterministic=True)
  return ds.prefetch(AUTOTUNE).with_options(options)


def _options() -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = True
  return options


def _check_batch_size(batch_size) -> None:
  if int(batch_size) != batch_size or batch_size < 1:
    raise errors.UsageError(f"batch_size={batch_size!r} must be a positive integer")
