"""Augmentation recipes (`--augment`): the paper's, and modern ones on top of it.

A recipe is a function `(images, labels, seed) -> (images, labels)` of one training BATCH:
float32 pixels [B, H, W, C] in [0, 255] after the paper's crop and flip and before
normalization, int32 labels [B] (or one-hot float [B, classes]), and an int seed tensor of
shape [2] drawn per batch by the pipeline. Every random number is drawn statelessly from that
seed, so a batch's augmentation depends on (seed, batch) alone: the same seed gives the same
batches whatever the thread scheduling, and a run resumed at epoch k draws what the
uninterrupted run drew (the pipeline plugs recipes in through one hook, `data.pipeline`).

* `paper` (default): nothing beyond the reference's pad-crop-flip (ImageNet: random resized
  crop + flip); the pipeline is bit-for-bit the one without recipes.
* `randaugment` (Cubuk et al., 2020): keras-cv's RandAugment policy (its ten layers: auto
  contrast, equalize, solarize, colour, contrast, brightness, shear x/y, translate x/y, at
  keras-cv's default magnitude 0.5 +- 0.15); per image, `augmentations_per_image` = 3 times, a
  uniformly chosen layer is applied with probability 10/11, as keras-cv's RandAugment does.
  keras-cv's layers compute the image operations; their random draws (`_random_generator`,
  factor samplers) are replaced during the call by stateless draws from the batch seed
  (keras-cv's own generators are stateful: their draws depend on how many batches came
  before, not on the seed of this batch). Images of one channel skip the colour layer (the
  identity on grey images, and keras-cv's implementation needs three channels).
* `mixup` (Zhang et al., 2018): lambda ~ Beta(0.2, 0.2) per example, x = lambda x_i +
  (1 - lambda) x_perm(i), the same for the one-hot labels.
* `keras_cv_crop` (ImageNet only): the training crop is keras-cv's RandomCropAndResize (area
  (0.08, 1), aspect ratio (3/4, 4/3), sides clipped to the image, bilinear without antialias)
  on the fully decoded JPEG, instead of the paper's crop (`augment.imagenet_train`, which
  decodes only the crop window). Measured at the same speed (`tools/bench_augment.py`: 190 vs
  192 img/s on 2 cores); its crop distribution differs from torchvision's, so it is opt-in.
* `cutmix` (Yun et al., 2019): lambda ~ Beta(1, 1); a box of sides sqrt(1 - lambda) * (H, W)
  around a uniform centre, clipped to the image, is pasted from x_perm(i); the label weight
  of the pasted image is the pasted area fraction after clipping (as the CutMix authors'
  code; keras-cv's CutMix weights by the unclipped box and draws from stateful ops, so these
  two are written here, 20 lines each).

MixUp and CutMix produce soft labels: their pipelines yield one-hot float labels for training
(`Recipe.soft_labels`); the test set keeps int labels, and the trainer's loss and accuracy
accept both (`train.speed.CrossEntropy`, `train.speed.Accuracy`).
"""
import contextlib
import dataclasses
import functools
import io
from typing import Callable

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow and keras-cv are imported)
import tensorflow as tf

from tf_rethink.util.errors import UsageError
from tf_rethink.util.registry import Registry

MIXUP_ALPHA = 0.2
CUTMIX_ALPHA = 1.0
RANDAUGMENT_PER_IMAGE = 3
RANDAUGMENT_RATE = 10 / 11


@dataclasses.dataclass(frozen=True)
class Recipe:
  """One `--augment` choice: `fn(images, labels, seed)` (None for the paper's: nothing to add),
  whether it needs one-hot labels (it mixes examples), and `imagenet_crop(jpeg, seed, size)`
  replacing the paper's ImageNet training crop (None: `augment.imagenet_train`)."""
  name: str
  fn: Callable = None
  soft_labels: bool = False
  imagenet_crop: Callable = None


RECIPES: Registry[Recipe] = Registry("augmentation")


def beta(shape, alpha: float, seed: tf.Tensor) -> tf.Tensor:
  """Beta(alpha, alpha) samples as G1 / (G1 + G2), G ~ Gamma(alpha), drawn from `seed`."""
  s1, s2 = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  g1 = tf.random.stateless_gamma(shape, s1, alpha)
  g2 = tf.random.stateless_gamma(shape, s2, alpha)
  return g1 / (g1 + g2)


def permutation(n: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """A uniformly random permutation of range(n) drawn from `seed`."""
  return tf.argsort(tf.random.stateless_uniform([n], seed))


def _mix_labels(labels, perm, weight):
  """(1 - weight) * labels + weight * labels[perm], per example (labels one-hot [B, C])."""
  weight = tf.reshape(weight, [-1, 1])
  return (1.0 - weight) * labels + weight * tf.gather(labels, perm)


def mixup(images, labels, seed, alpha: float = MIXUP_ALPHA):
  """MixUp of a batch (one-hot labels): lambda x_i + (1 - lambda) x_perm(i), lambda ~ Beta."""
  lam_seed, perm_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  n = tf.shape(images)[0]
  lam = beta([n], alpha, lam_seed)
  perm = permutation(n, perm_seed)
  w = tf.reshape(lam, [-1, 1, 1, 1])
  return w * images + (1.0 - w) * tf.gather(images, perm), _mix_labels(labels, perm, 1.0 - lam)


def cutmix(images, labels, seed, alpha: float = CUTMIX_ALPHA):
  """CutMix of a batch (one-hot labels): a clipped box from x_perm(i) pasted into x_i; the
  pasted image's label weight is the pasted area fraction."""
  lam_seed, perm_seed, centre_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
  shape = tf.shape(images)
  n, height, width = shape[0], shape[1], shape[2]
  ratio = tf.sqrt(1.0 - beta([n], alpha, lam_seed))
  perm = permutation(n, perm_seed)
  cut_h = tf.cast(ratio * tf.cast(height, tf.float32), tf.int32)
  cut_w = tf.cast(ratio * tf.cast(width, tf.float32), tf.int32)
  centres = tf.random.stateless_uniform([n, 2], centre_seed, minval=0, maxval=tf.int32.max,
                                        dtype=tf.int32) % tf.stack([height, width])
  top = tf.maximum(centres[:, 0] - cut_h // 2, 0)
  bottom = tf.minimum(centres[:, 0] - cut_h // 2 + cut_h, height)
  left = tf.maximum(centres[:, 1] - cut_w // 2, 0)
  right = tf.minimum(centres[:, 1] - cut_w // 2 + cut_w, width)
  rows, cols = tf.range(height)[None, :], tf.range(width)[None, :]
  in_rows = (rows >= top[:, None]) & (rows < bottom[:, None])      # [B, H]
  in_cols = (cols >= left[:, None]) & (cols < right[:, None])      # [B, W]
  pasted = in_rows[:, :, None] & in_cols[:, None, :]               # [B, H, W]
  mixed = tf.where(pasted[..., None], tf.gather(images, perm), images)
  area = tf.reduce_mean(tf.cast(pasted, tf.float32), axis=[1, 2])
  return mixed, _mix_labels(labels, perm, area)


class _StatelessDraws:
  """The part of tf.random.Generator's API keras-cv's layers call (`uniform`, `normal`), each
  call drawing statelessly from its own seed folded out of one batch seed."""

  def __init__(self, seed: tf.Tensor):
    self._seed, self._calls = seed, 0

  def next_seed(self) -> tf.Tensor:
    self._calls += 1
    return tf.random.experimental.stateless_fold_in(self._seed, self._calls)

  def uniform(self, shape, minval=0, maxval=None, dtype=tf.float32, name=None):
    del name
    if maxval is None:
      maxval = 1
    return tf.random.stateless_uniform(shape, self.next_seed(), minval, maxval, dtype)

  def normal(self, shape, mean=0.0, stddev=1.0, dtype=tf.float32, name=None):
    del name
    return tf.random.stateless_normal(shape, self.next_seed(), mean, stddev, dtype)


class _StatelessFactor:
  """A keras-cv FactorSampler's distribution (uniform, clipped normal or constant), drawn from
  `_StatelessDraws`."""

  def __init__(self, sampler, draws: _StatelessDraws):
    self._sampler, self._draws = sampler, draws

  def __call__(self, shape=(), dtype="float32"):
    s = self._sampler
    if hasattr(s, "stddev"):
      x = self._draws.normal(shape, s.mean, s.stddev, dtype)
      return tf.clip_by_value(x, s.min_value, s.max_value)
    if hasattr(s, "lower"):
      return self._draws.uniform(shape, s.lower, s.upper, dtype)
    return s(shape=shape, dtype=dtype)   # ConstantFactorSampler: no randomness


@contextlib.contextmanager
def stateless_randomness(layer, seed: tf.Tensor):
  """While inside, keras-cv `layer` draws every random number statelessly from `seed`: its
  `_random_generator` and its factor samplers are swapped for stateless ones (restored after)."""
  factor_sampler = _keras_cv().core.FactorSampler
  draws = _StatelessDraws(seed)
  saved = dict(vars(layer))
  swapped = {"_random_generator": draws}
  swapped.update({name: _StatelessFactor(value, draws) for name, value in saved.items()
                  if isinstance(value, factor_sampler)})
  try:
    for name, value in swapped.items():
      object.__setattr__(layer, name, value)
    yield layer
  finally:
    for name in swapped:
      object.__setattr__(layer, name, saved[name])


def _keras_cv():
  """keras-cv, imported on first use (its backend, keras-core, prints "Using TensorFlow
  backend" on stdout while importing: not into our logs)."""
  with contextlib.redirect_stdout(io.StringIO()):
    import keras_cv  # pylint: disable=import-outside-toplevel
  return keras_cv


@functools.lru_cache(maxsize=None)
def randaugment_layers(channels: int) -> tuple:
  """keras-cv's standard RandAugment policy on [0, 255] pixels (one-channel images: without the
  colour layer)."""
  keras_cv = _keras_cv()
  layers = keras_cv.layers.RandAugment.get_standard_policy((0, 255), magnitude=0.5,
                                                            magnitude_stddev=0.15)
  if channels == 1:
    layers = [layer for layer in layers
              if not isinstance(layer, keras_cv.layers.RandomColorDegeneration)]
  return tuple(layers)


def randaugment(images, labels, seed, per_image: int = RANDAUGMENT_PER_IMAGE,
                rate: float = RANDAUGMENT_RATE):
  """RandAugment of a batch with keras-cv's layers: `per_image` rounds; in each, every image
  gets one uniformly chosen layer with probability `rate` (else stays as it is). Images are
  partitioned by their choice, so each layer runs once per round on the images that chose it
  (the rounds are one tf.while_loop: the layers are traced once)."""
  layers = randaugment_layers(int(images.shape[-1]))
  n = tf.shape(images)[0]
  round_seeds = tf.random.experimental.stateless_split(seed, per_image)

  def one_round(i, images):
    choice_seed, apply_seed, layer_seed = tf.unstack(
        tf.random.experimental.stateless_split(round_seeds[i], 3))
    choice = tf.random.stateless_uniform([n], choice_seed, 0, len(layers), tf.int32)
    applied = tf.random.stateless_uniform([n], apply_seed) <= rate
    choice = tf.where(applied, choice, len(layers))         # len(layers): left unchanged
    parts = tf.dynamic_partition(images, choice, len(layers) + 1)
    where = tf.dynamic_partition(tf.range(n), choice, len(layers) + 1)
    outputs = []
    for k, (layer, part) in enumerate(zip(layers, parts)):
      def apply(layer=layer, part=part, k=k):
        with stateless_randomness(layer, tf.random.experimental.stateless_fold_in(layer_seed, k)):
          return tf.ensure_shape(layer(part), part.shape)
      # keras-cv's Equalization fails on an empty batch; no image chose this layer: skip it.
      outputs.append(tf.cond(tf.shape(part)[0] > 0, apply, lambda part=part: part))
    stitched = tf.dynamic_stitch(where, outputs + [parts[-1]])
    return i + 1, tf.ensure_shape(stitched, images.shape)

  _, images = tf.while_loop(lambda i, _: i < per_image, one_round,
                            (tf.constant(0), tf.ensure_shape(images, [None] + images.shape[1:])))
  return images, labels


@functools.lru_cache(maxsize=None)
def _random_crop_and_resize_layer(size: int):
  return _keras_cv().layers.RandomCropAndResize(target_size=(size, size), crop_area_factor=(0.08, 1.0),
                                             aspect_ratio_factor=(3 / 4, 4 / 3))


def imagenet_train_keras_cv(encoded: tf.Tensor, seed: tf.Tensor, size: int = 224) -> tf.Tensor:
  """The candidate replacement of `augment.imagenet_train` (one JPEG string per call): decode
  the whole image, keras-cv's RandomCropAndResize (area (0.08, 1), ratio (3/4, 4/3)) with
  stateless draws, flip (`--augment=keras_cv_crop`; `tools/bench_augment.py` times it against
  `augment.imagenet_train`)."""
  crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  image = tf.cast(tf.io.decode_jpeg(encoded, channels=3), tf.float32)
  layer = _random_crop_and_resize_layer(size)
  with stateless_randomness(layer, crop_seed):
    image = layer(image)
  return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)


PAPER = RECIPES.add("paper", Recipe("paper"))
RECIPES.add("randaugment", Recipe("randaugment", randaugment))
RECIPES.add("keras_cv_crop", Recipe("keras_cv_crop", imagenet_crop=imagenet_train_keras_cv))
RECIPES.add("mixup", Recipe("mixup", mixup, soft_labels=True))
RECIPES.add("cutmix", Recipe("cutmix", cutmix, soft_labels=True))


def get(name: str) -> Recipe:
  """The recipe `name`; a UsageError naming the choices when there is none."""
  if name not in RECIPES:
    raise UsageError(f"unknown --augment={name!r}; choose one of: {', '.join(RECIPES.names())}")
  return RECIPES.get(name)
