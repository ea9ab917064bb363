"""Batched, normalized tf.data pipelines with the paper's augmentation, reproducible from a seed."""
from typing import Optional

import tensorflow as tf

from tf_rethink import errors
from tf_rethink.data import augment
from tf_rethink.data import datasets

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


def _preprocess_fn(info: datasets.DatasetInfo, train: bool, encoded: bool):
  """Returns f(image, label, seed) -> (float32 normalized image, int32 label)."""
  size = info.input_shape[0]

  def fn(image, label, seed):
    if info.family == "imagenet":
      if train:
        image = augment.imagenet_train(image, seed, size)
      else:
        image = augment.imagenet_eval(tf.io.decode_jpeg(image, channels=3) if encoded else image, size)
    elif train:
      image = augment.pad_crop_flip(image, seed, augment.PAD)
    image = tf.ensure_shape(augment.normalize(image, info.mean, info.std), info.input_shape)
    return image, tf.cast(label, tf.int32)

  return fn


def pipeline(name: str, split: str, *, batch_size: int, seed: int, train: Optional[bool] = None,
             data_dir: Optional[str] = None, idx_dir: Optional[str] = None,
             limit: Optional[int] = None) -> tf.data.Dataset:
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

  The dataset is finite (no repeat): `model.fit(ds, epochs=E)` iterates it E times.
  """
  info = datasets.info(name)
  train = split == "train" if train is None else bool(train)
  if int(batch_size) != batch_size or batch_size < 1:
    raise errors.UsageError(f"batch_size={batch_size!r} must be a positive integer")
  source = datasets.get_source(name, split, data_dir=data_dir, idx_dir=idx_dir)
  n = source.num_examples if limit is None else min(source.num_examples, _check_limit(limit))
  if source.arrays is not None:
    images, labels = source.arrays
    # Slicing a numpy array is a view: the examples are copied once, into the tensor slices.
    ds = tf.data.Dataset.from_tensor_slices((images[:n], labels[:n]))
  else:
    ds = source.make_dataset(seed, train)
    if limit is not None:
      ds = ds.take(n)
  if train:
    ds = ds.shuffle(info.shuffle_buffer or n, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
  else:
    seeds = tf.data.Dataset.from_tensors(tf.zeros([2], tf.int64)).repeat()  # unused by eval ops
  fn = _preprocess_fn(info, train, source.encoded_images)
  ds = tf.data.Dataset.zip((ds, seeds)).map(lambda example, s: fn(example[0], example[1], s),
                                            num_parallel_calls=AUTOTUNE, deterministic=True)
  ds = ds.batch(batch_size, drop_remainder=False).prefetch(AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options)
