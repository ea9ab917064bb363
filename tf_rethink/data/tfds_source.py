"""Reading prepared tensorflow-datasets (CIFAR-10/100, ImageNet, Fashion-MNIST fallback) offline.

There is no network in the runs this package targets, so a builder is only read when its data is
already prepared in `data_dir`; otherwise DataUnavailableError says how to prepare it elsewhere. The
one exception is ImageNet (`imagenet2012`), whose tfds preparation needs no network: when the
ILSVRC2012 tars are in DIR/downloads/manual (tfds's manual_dir) or in DIR itself, it is prepared
here (this takes hours, once).
"""
import os
from typing import Callable, Optional

from absl import logging

from tf_rethink.util import errors

IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


def how_to_get(name: str, data_dir: Optional[str]) -> str:
  """One line: how to put dataset `name` where `data_dir` (None: tfds's default) will find it."""
  where = data_dir or "~/tensorflow_datasets"
  if name == "imagenet2012":
    return (f"imagenet2012 is not prepared in {where}: put {' and '.join(IMAGENET_TARS)} (from "
            "image-net.org) in DIR/downloads/manual and pass --data_dir=DIR (tfds prepares it "
            "offline on first use, which takes hours)")
  return (f"{name} is not prepared in {where} and cannot be downloaded here: on a machine with "
          f"internet run `python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}', "
          f"data_dir='DIR').download_and_prepare()\"`, copy DIR here and pass --data_dir=DIR")


def _imagenet_manual_dir(data_dir: Optional[str]) -> Optional[str]:
  if not data_dir:
    return None
  for d in (os.path.join(data_dir, "downloads", "manual"), data_dir):
    if all(os.path.isfile(os.path.join(d, t)) for t in IMAGENET_TARS):
      return d
  return None


def builder(name: str, data_dir: Optional[str]):
  """Returns the prepared tfds builder of `name`, or raises DataUnavailableError (never downloads)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import; optional path)
  if data_dir and not os.path.isdir(data_dir):
    raise errors.DataUnavailableError(f"--data_dir={data_dir} does not exist; " + how_to_get(name, data_dir))
  b = tfds.builder(name, data_dir=data_dir)
  if b.is_prepared():
    return b
  manual_dir = _imagenet_manual_dir(data_dir) if name == "imagenet2012" else None
  if manual_dir is None:
    raise errors.DataUnavailableError(how_to_get(name, data_dir))
  logging.warning("preparing imagenet2012 in %s from the tars in %s (takes hours, once)",
                  data_dir, manual_dir)
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return b


def num_examples(name: str, split: str, data_dir: Optional[str]) -> int:
  """Examples in `split` of the prepared dataset (from its metadata; reads no records)."""
  return builder(name, data_dir).info.splits[split].num_examples


def dataset_fn(name: str, split: str, data_dir: Optional[str], *,
               encoded_images: bool = False) -> Callable[[int, bool], "tf.data.Dataset"]:
  """Returns make(seed, shuffle_files) -> unbatched tf.data.Dataset of (image, label).

  `encoded_images` keeps images as encoded strings (ImageNet: decoded after cropping).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  b = builder(name, data_dir)

  def make(seed: int, shuffle_files: bool):
    decoders = {"image": tfds.decode.SkipDecoding()} if encoded_images else None
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    return b.as_dataset(split=split, as_supervised=True, shuffle_files=shuffle_files,
                        decoders=decoders, read_config=read_config)

  return make
