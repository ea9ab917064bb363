"""The dataset registry: shapes, normalization and where each dataset's examples come from.

Split names are "train" and "test"; for ImageNet "test" is the 50,000-image validation set (the
paper's test set; ILSVRC2012 test labels are not public).
"""
import dataclasses
import os
from typing import Callable, Optional, Tuple

import numpy as np

from tf_rethink.util import errors
from tf_rethink.data import augment
from tf_rethink.data import embedded
from tf_rethink.data import idx
from tf_rethink.data import tfds_source
from tf_rethink.util.registry import Registry

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class Source:
  """One split of one dataset: either in-memory uint8 arrays or a tfds dataset factory."""
  num_examples: int
  arrays: Optional[Tuple[np.ndarray, np.ndarray]] = None
  make_dataset: Optional[Callable] = None  # (seed, shuffle_files) -> unbatched (image, label)
  encoded_images: bool = False


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a model and a pipeline need to know about a dataset.

  `family` selects the preprocessing ("cifar", "mnist": pad-4 crop + flip; "imagenet": random
  resized crop) and the model defaults. `source(split, data_dir, idx_dir, count_only)` returns a
  Source (with count_only the examples need not be loaded).
  """
  name: str
  num_classes: int
  input_shape: tuple
  family: str
  mean: Tuple[float, ...] = ()
  std: Tuple[float, ...] = ()
  source: Optional[Callable[..., Source]] = dataclasses.field(default=None, compare=False, repr=False)
  shuffle_buffer: int = 0  # 0: the whole split (in-memory and CIFAR); ImageNet: a window


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def _embedded_source(split, data_dir=None, idx_dir=None, count_only=False):
  del data_dir, idx_dir, count_only
  images, labels = embedded.load(split)
  return Source(len(labels), arrays=(images, labels))


def _fashion_mnist_source(split, data_dir=None, idx_dir=None, count_only=False):
  """IDX files from --idx_dir, else Debian's /usr/share/datasets/fashion-mnist, else tfds."""
  if idx_dir is not None:
    if not idx.has_split(idx_dir, split):
      raise errors.DataUnavailableError(f"no Fashion-MNIST {split} IDX files in --idx_dir={idx_dir}; "
                                        + idx.HOW_TO_GET)
    directory = idx_dir
  elif idx.has_split(idx.DEFAULT_IDX_DIR, split):
    directory = idx.DEFAULT_IDX_DIR
  else:
    try:
      return _tfds_source("fashion_mnist", split, data_dir, count_only=count_only)
    except errors.DataUnavailableError:
      raise errors.DataUnavailableError(
          f"Fashion-MNIST not found in {idx.DEFAULT_IDX_DIR} nor prepared by tfds in "
          f"{data_dir or '~/tensorflow_datasets'}; {idx.HOW_TO_GET}") from None
  if count_only:
    return Source(len(idx.read_idx(idx.find_file(directory, idx.FILES[split][1]))))
  images, labels = idx.load(directory, split)
  return Source(len(labels), arrays=(images, labels))


def _tfds_source(name, split, data_dir, count_only=False, tfds_split=None, encoded_images=False):
  tfds_split = tfds_split or split
  n = tfds_source.num_examples(name, tfds_split, data_dir)
  if count_only:
    return Source(n)
  make = tfds_source.dataset_fn(name, tfds_split, data_dir, encoded_images=encoded_images)
  return Source(n, make_dataset=make, encoded_images=encoded_images)


def _tfds(name, **kwargs):
  def source(split, data_dir=None, idx_dir=None, count_only=False):
    del idx_dir
    return _tfds_source(name, split, data_dir, count_only=count_only, **kwargs)
  return source


_MNIST = dict(num_classes=10, input_shape=(28, 28, 1), family="mnist",
              mean=augment.FASHION_MNIST_MEAN, std=augment.FASHION_MNIST_STD)
_CIFAR = dict(input_shape=(32, 32, 3), family="cifar", mean=augment.CIFAR_MEAN, std=augment.CIFAR_STD)
DATASETS.add("embedded", DatasetInfo("embedded", source=_embedded_source, **_MNIST))
DATASETS.add("fashion_mnist", DatasetInfo("fashion_mnist", source=_fashion_mnist_source, **_MNIST))
DATASETS.add("cifar10", DatasetInfo("cifar10", 10, source=_tfds("cifar10"), **_CIFAR))
DATASETS.add("cifar100", DatasetInfo("cifar100", 100, source=_tfds("cifar100"), **_CIFAR))
DATASETS.add("imagenet2012", DatasetInfo(
    "imagenet2012", 1000, (224, 224, 3), "imagenet", augment.IMAGENET_MEAN, augment.IMAGENET_STD,
    source=lambda split, data_dir=None, idx_dir=None, count_only=False: _tfds_source(
        "imagenet2012", split, data_dir, count_only=count_only,
        tfds_split={"train": "train", "test": "validation"}[split], encoded_images=True),
    shuffle_buffer=10_000))


def info(name: str) -> DatasetInfo:
  """The registered DatasetInfo of `name`; UsageError listing the choices when unknown."""
  if name not in DATASETS:
    raise errors.UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS.names())}")
  return DATASETS.get(name)


def get_source(name: str, split: str, *, data_dir=None, idx_dir=None, count_only=False) -> Source:
  """Checks the arguments and returns the Source of one split."""
  dataset = info(name)
  if split not in SPLITS:
    raise errors.UsageError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
  if data_dir is not None:
    data_dir = os.path.expanduser(data_dir)
  if idx_dir is not None:
    idx_dir = os.path.expanduser(idx_dir)
  return dataset.source(split, data_dir=data_dir, idx_dir=idx_dir, count_only=count_only)
