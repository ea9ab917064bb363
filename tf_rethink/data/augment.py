"""Per-example preprocessing of the paper (spec 3.1, 3.2): augmentation and normalization.

Every random op is stateless, keyed on a seed (shape [2]) that the pipeline draws from
`tf.data.Dataset.random(seed)`: one per example for ImageNet (decoded one by one), one per BATCH
for the fixed-size datasets (`pad_crop_flip_batch` draws every example's crop and flip from it),
so a pipeline is reproducible from its seed alone, independent of thread scheduling.

* CIFAR (Liu et al. 2019, `cifar/*/main.py`): zero-pad 4 pixels, random 32x32 crop, horizontal flip,
  normalize with mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010).
* MNIST family (the embedded subset and Fashion-MNIST; not in the paper): the CIFAR recipe at the same
  pixel scale, zero-pad 4 then random 28x28 crop and horizontal flip (Fashion-MNIST items are
  left/right symmetric classes), normalize with mean 0.2860, std 0.3530 (Fashion-MNIST train set).
* ImageNet (PyTorch example): RandomResizedCrop(224, scale (0.08, 1), ratio (3/4, 4/3)) + flip;
  eval: resize the shorter side to 256, centre-crop 224; mean (0.485, 0.456, 0.406),
  std (0.229, 0.224, 0.225). Deviations from torchvision: the crop box comes from
  `stateless_sample_distorted_bounding_box` (aspect ratio uniform instead of log-uniform; after 10
  failed attempts the whole image instead of a centre crop), resizing is TF bilinear with antialias
  (torchvision: PIL bilinear) and pixels are not rounded to uint8 after resizing.

Padding happens in pixel space before normalization, like torchvision's RandomCrop(padding=4) on the
PIL image, so padded pixels are black (value -mean/std after normalization).
"""
from typing import Sequence

import tensorflow as tf

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PAD = 4
IMAGENET_SIZE, IMAGENET_RESIZE = 224, 256
RRC_SCALE, RRC_RATIO, RRC_ATTEMPTS = (0.08, 1.0), (3 / 4, 4 / 3), 10


def normalize(image: tf.Tensor, mean: Sequence[float], std: Sequence[float]) -> tf.Tensor:
  """(image / 255 - mean) / std per channel; `image` holds pixel values in [0, 255]."""
  image = tf.cast(image, tf.float32) / 255.0
  return (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def pad_crop_flip_batch(images: tf.Tensor, seed: tf.Tensor, pad: int = PAD) -> tf.Tensor:
  """Per example: zero-pads `pad` pixels on each side, takes a random crop of the original size
  (offsets uniform in [0, 2 pad], independently per axis), flips L/R with probability 1/2.

  The same distribution as torchvision's RandomCrop(size, padding=pad) + RandomHorizontalFlip on
  each image, computed for the whole batch with two gathers (a tf.data map over single images
  costs far more per image on a CPU that also trains).

  Args:
    images: [B, H, W, C] pixels (any dtype; padding is 0 = black).
    seed: int tensor of shape [2]; the same seed and batch give the same crops and flips.
    pad: padding in pixels (4 for CIFAR and the MNIST family).
  """
  crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  shape = tf.shape(images)
  batch, height, width = shape[0], shape[1], shape[2]
  offsets = tf.random.stateless_uniform([batch, 2], crop_seed, minval=0, maxval=2 * pad + 1,
                                        dtype=tf.int32)
  flip = tf.random.stateless_uniform([batch], flip_seed) < 0.5
  rows = offsets[:, :1] + tf.range(height)[None, :]
  cols = offsets[:, 1:] + tf.range(width)[None, :]
  cols = tf.where(flip[:, None], tf.reverse(cols, axis=[1]), cols)  # a flip reverses the columns
  padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
  return tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)


def imagenet_train(encoded: tf.Tensor, seed: tf.Tensor, size: int = IMAGENET_SIZE) -> tf.Tensor:
  """RandomResizedCrop(size) + horizontal flip of a JPEG string; returns float [size, size, 3] pixels.

  Decodes only the crop window (`decode_and_crop_jpeg`), as the TF ImageNet reference pipelines do.
  """
  box_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  shape = tf.io.extract_jpeg_shape(encoded)
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=box_seed,
      min_object_covered=0.0, aspect_ratio_range=RRC_RATIO, area_range=RRC_SCALE,
      max_attempts=RRC_ATTEMPTS, use_image_if_no_bounding_boxes=True)
  window = tf.stack([begin[0], begin[1], crop_size[0], crop_size[1]])
  image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3)
  image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
  return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)


def resize_shorter_side(image: tf.Tensor, shorter: int = IMAGENET_RESIZE) -> tf.Tensor:
  """Bilinear resize so the shorter side is `shorter`; the longer one is int(shorter * long / short)
  like torchvision's Resize(int)."""
  shape = tf.shape(image)
  h, w = shape[0], shape[1]
  short, long = tf.minimum(h, w), tf.maximum(h, w)
  new_long = (shorter * long) // short
  new_h = tf.where(h <= w, shorter, new_long)
  new_w = tf.where(h <= w, new_long, shorter)
  return tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear", antialias=True)


def centre_crop(image: tf.Tensor, size: int) -> tf.Tensor:
  """The central size x size window (offsets floor((H - size) / 2), floor((W - size) / 2))."""
  shape = tf.shape(image)
  top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
  return image[top:top + size, left:left + size, :]


def imagenet_eval(image: tf.Tensor, size: int = IMAGENET_SIZE,
                  resize: int = IMAGENET_RESIZE) -> tf.Tensor:
  """Resize the shorter side to 256, centre-crop 224: float [size, size, C] pixels (not normalized)."""
  image = centre_crop(resize_shorter_side(image, resize), size)
  return tf.ensure_shape(image, [size, size, None])
