"""The paper's augmentation and ImageNet preprocessing, checked against numpy references."""
import numpy as np
import pytest
import tensorflow as tf

from tf_rethink.data import augment


def _seed(i):
  return tf.constant([i, 7], tf.int64)


def _find_window(out, padded, size):
  """All (dy, dx, flipped) with out == padded window (flipped L/R if flipped)."""
  found = []
  for dy in range(padded.shape[0] - size[0] + 1):
    for dx in range(padded.shape[1] - size[1] + 1):
      window = padded[dy:dy + size[0], dx:dx + size[1]]
      for flipped, candidate in ((False, window), (True, window[:, ::-1])):
        if np.array_equal(out, candidate):
          found.append((dy, dx, flipped))
  return found


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_pad_crop_flip_batch_is_shifted_maybe_flipped_copies(shape):
  images = np.random.default_rng(0).integers(1, 256, (40,) + shape).astype(np.uint8)
  out = augment.pad_crop_flip_batch(tf.constant(images), _seed(3)).numpy()
  assert out.shape == images.shape and out.dtype == np.uint8
  seen = []
  for image, got in zip(images, out):
    matches = _find_window(got, np.pad(image, [(4, 4), (4, 4), (0, 0)]), shape[:2])
    assert len(matches) == 1, matches
    seen.append(matches[0])
  np.testing.assert_array_equal(out, augment.pad_crop_flip_batch(tf.constant(images), _seed(3)))
  assert not np.array_equal(out, augment.pad_crop_flip_batch(tf.constant(images), _seed(4)))
  assert {m[2] for m in seen} == {False, True}
  offsets = {m[:2] for m in seen}
  assert len(offsets) > 15 and all(0 <= d <= 8 for o in offsets for d in o)


def test_pad_crop_flip_batch_draws_uniform_offsets_and_fair_flips():
  images = np.zeros((4000, 12, 12, 1), np.uint8)
  images[:, 0, 0, 0] = 1  # a marker pixel: where it lands gives the offset and the flip
  out = augment.pad_crop_flip_batch(tf.constant(images), _seed(5)).numpy()[..., 0]
  found = out.reshape(len(out), -1).argmax(1)
  present = out.reshape(len(out), -1).max(1) == 1
  rows, cols = np.divmod(found[present], 12)
  assert 0.2 < present.mean() < 0.35  # 5 x 5 of the 81 offsets keep the corner: 25/81 = 0.31
  assert set(rows) == set(range(5))   # dy = 4 - row: every kept offset occurs
  flipped = cols >= 7                 # the corner pixel lands on the right half when flipped
  assert 0.45 < flipped.mean() < 0.55


def test_normalize_per_channel():
  image = tf.constant([[[0, 255, 51]]], tf.uint8)
  out = augment.normalize(image, augment.CIFAR_MEAN, augment.CIFAR_STD).numpy()[0, 0]
  expected = (np.array([0, 1, 0.2]) - np.array(augment.CIFAR_MEAN)) / np.array(augment.CIFAR_STD)
  np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_imagenet_eval_is_centre_crop_of_256_resize():
  # 512x640 -> shorter side 256 is an exact 2x downscale: antialiased bilinear = separable
  # triangle filter [1, 3, 3, 1] / 8 around pixels 2i, 2i+1; the 224 crop avoids the borders.
  image = np.random.default_rng(1).uniform(0, 255, (512, 640, 3)).astype(np.float32)
  k = np.array([1, 3, 3, 1], np.float64) / 8

  def down(a, axis):
    a = np.moveaxis(a, axis, 0)
    n = a.shape[0] // 2
    out = np.zeros((n,) + a.shape[1:])
    for i in range(1, n - 1):
      out[i] = np.tensordot(k, a[2 * i - 1:2 * i + 3], axes=1)
    return np.moveaxis(out, 0, axis)

  resized = down(down(image.astype(np.float64), 0), 1)  # 256 x 320
  expected = resized[16:240, 48:272]
  out = augment.imagenet_eval(tf.constant(image)).numpy()
  assert out.shape == (224, 224, 3)
  np.testing.assert_allclose(out, expected, atol=1e-3)


@pytest.mark.parametrize("hw, resized", [((300, 457), (256, 389)), ((457, 300), (389, 256)),
                                         ((256, 256), (256, 256))])
def test_resize_shorter_side_like_torchvision(hw, resized):
  image = tf.zeros(hw + (3,))
  assert tuple(augment.resize_shorter_side(image).shape[:2]) == resized
  assert augment.imagenet_eval(image).shape == (224, 224, 3)


def test_imagenet_train_crop_is_seeded():
  image = np.random.default_rng(2).integers(0, 256, (180, 240, 3), dtype=np.uint8)
  encoded = tf.io.encode_jpeg(image)
  a = augment.imagenet_train(encoded, _seed(1)).numpy()
  assert a.shape == (224, 224, 3) and a.dtype == np.float32
  np.testing.assert_array_equal(a, augment.imagenet_train(encoded, _seed(1)).numpy())
  assert not np.allclose(a, augment.imagenet_train(encoded, _seed(2)).numpy())
