"""Streaming feature sampling for the data-driven methods (ThiNet, regression; `data_driven`).

A pruned layer's "consumer" is the layer that reads its channels one to one (the next conv, or
the Dense after a global pool, reached through BN, ReLU, pooling, padding or dropout). For a
consumer with kernel W (kh, kw, C, n), an input patch x in R^{kh kw x C} at an output location
gives y_o = sum_c sum_k x[k,c] W[k,c,o] (+ bias).

`sample_statistics` streams the training pipeline once: every consumer's input comes out of one
forward pass per chunk of `CHUNK` images, the sampled patches are reduced on the spot to Gram
matrices (C x C for ThiNet, (kh kw C)^2 for the regression), and nothing else is kept, so memory
is bounded by one chunk's activations plus the Gram matrices whatever the number of images.
"""
import dataclasses
import hashlib
from typing import Dict, Optional, Sequence

import numpy as np

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tensorflow as tf
import tf_keras as keras

from tf_rethink.util import progress
from tf_rethink.util.errors import UsageError

L = keras.layers
CHUNK = 32          # images per forward pass while sampling (bounds activation memory)
MAX_SCAN = 4        # stop after scanning MAX_SCAN x the wanted images (class caps may not fill)
_PASS = (L.BatchNormalization, L.ReLU, L.Activation, L.MaxPooling2D, L.AveragePooling2D,
         L.GlobalAveragePooling2D, L.ZeroPadding2D, L.Dropout, L.Identity)


# ----------------------------------------------------------------------------- graph helpers


def _in_model(model, layer, node) -> bool:
  index = layer._inbound_nodes.index(node)  # pylint: disable=protected-access
  return f"{layer.name}_ib-{index}" in model._network_nodes  # pylint: disable=protected-access


def _supported_conv(layer) -> bool:
  return (type(layer) is L.Conv2D and layer.groups == 1 and tuple(layer.dilation_rate) == (1, 1)
          and layer.data_format == "channels_last")


def find_consumer(model, name: str) -> Optional[keras.layers.Layer]:
  """The layer that consumes `name`'s output channels one to one, or None.

  Follows a single path through channel-wise layers (`_PASS`) to the first Conv2D (groups 1, no
  dilation) or Dense on a 2-D input (after a global pool). Branches, merges, flatten and other
  layers end the search with None.
  """
  layer = model.get_layer(name)
  while True:
    nodes = [n for n in layer._outbound_nodes if _in_model(model, n.layer, n)]  # pylint: disable=protected-access
    if len(nodes) != 1:
      return None
    nxt = nodes[0].layer
    if _supported_conv(nxt):
      return nxt
    if type(nxt) is L.Dense and len(nxt.input_shape) == 2:
      return nxt
    if not isinstance(nxt, _PASS) or len(nxt._inbound_nodes) != 1:  # pylint: disable=protected-access
      return None
    layer = nxt


def consumer_kernel(layer) -> np.ndarray:
  """The consumer's kernel as (kh, kw, C, n) (a Dense is a 1x1 conv)."""
  w = layer.get_weights()[0]
  return w.reshape((1, 1) + w.shape) if w.ndim == 2 else w


def fingerprint(array) -> str:
  return hashlib.sha1(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()[:16]


# ----------------------------------------------------------------------------- sampling


def _patches(x, layer, rng, locations: int):
  """Sampled input patches of `layer` from its input batch x: (S, kh*kw, C), S = B*locations."""
  if len(x.shape) == 2:                              # Dense after a global pool: one "location"
    return x[:, None, :]
  kh, kw = layer.kernel_size
  sh, sw = layer.strides
  h, w = int(x.shape[1]), int(x.shape[2])
  ho, wo = int(layer.output_shape[1]), int(layer.output_shape[2])
  if layer.padding == "same":
    ph = max((ho - 1) * sh + kh - h, 0)
    pw = max((wo - 1) * sw + kw - w, 0)
    x = tf.pad(x, [[0, 0], [ph // 2, ph - ph // 2], [pw // 2, pw - pw // 2], [0, 0]])
  b = tf.shape(x)[0]
  oy = rng.uniform((b, locations), 0, ho, dtype=tf.int32)
  ox = rng.uniform((b, locations), 0, wo, dtype=tf.int32)
  shape = tf.stack([b, locations, kh, kw])
  iy = tf.broadcast_to(oy[:, :, None, None] * sh + tf.range(kh)[None, None, :, None], shape)
  ix = tf.broadcast_to(ox[:, :, None, None] * sw + tf.range(kw)[None, None, None, :], shape)
  ib = tf.broadcast_to(tf.range(b)[:, None, None, None], shape)
  patches = tf.gather_nd(x, tf.stack([ib, iy, ix], axis=-1))          # (B, L, kh, kw, C)
  return tf.reshape(patches, [-1, kh * kw, int(x.shape[-1])])


@dataclasses.dataclass
class Statistics:
  """Per consumer: the accumulated Gram matrix and the number of samples behind it."""
  gram: Dict[str, np.ndarray]
  samples: Dict[str, int]
  images: int


def sample_statistics(model, consumers: Sequence[keras.layers.Layer], data, *, kind: str,
                      images: int, per_class: Optional[int], locations: int, seed: int = 0,
                      desc: str = "sampling") -> Statistics:
  """Streams `data` once and accumulates, per consumer, the Gram matrix of its samples.

  kind "thinet": each sample (image, location, random output channel o) gives the per-channel
  contributions xhat_c = sum_k x[k,c] W[k,c,o]; gram = sum xhat xhat^T (C x C).
  kind "patch": each sample (image, location) gives the flattened input patch p (kh kw C, channel
  fastest); gram = sum p p^T.

  Args:
    data: a tf.data pipeline (or iterable) of (images, labels) batches, or of images.
    images: stop after this many images; per_class: at most this many per label (None: no cap).
    locations: sampled output locations per image (Dense consumers: 1).
  """
  if data is None:
    raise ValueError("sample_statistics needs data")
  tap = keras.Model(model.inputs, [c.input for c in consumers])
  kernels = [tf.constant(consumer_kernel(c)) for c in consumers]
  grams = []
  for k in kernels:
    kh, kw, c, _ = k.shape
    size = c if kind == "thinet" else kh * kw * c
    grams.append(tf.Variable(tf.zeros((size, size), tf.float64), trainable=False))
  counts = [tf.Variable(0, dtype=tf.int64, trainable=False) for _ in consumers]
  rng = tf.random.Generator.from_seed(seed)

  @tf.function(input_signature=[tf.TensorSpec([None] + list(model.input_shape[1:]), tf.float32)])
  def step(x):
    outs = tap(x, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for out, layer, kernel, gram, count in zip(outs, consumers, kernels, grams, counts):
      p = _patches(out, layer, rng, locations)
      if kind == "thinet":
        kh, kw, c, n = kernel.shape
        w = tf.reshape(kernel, [kh * kw, c, n])
        o = rng.uniform(tf.shape(p)[:1], 0, n, dtype=tf.int32)
        w_sel = tf.transpose(tf.gather(w, o, axis=2), [2, 0, 1])      # (S, k, C)
        s = tf.reduce_sum(p * w_sel, axis=1)                           # (S, C)
      else:
        s = tf.reshape(p, [tf.shape(p)[0], -1])                        # (S, k*C)
      gram.assign_add(tf.cast(tf.matmul(s, s, transpose_a=True), tf.float64))
      count.assign_add(tf.cast(tf.shape(s)[0], tf.int64))

  taken, scanned, seen = 0, 0, {}
  with progress.progress(desc, total=images, unit="img") as bar:
    for batch in data:
      x, y = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)
      x = np.asarray(x, np.float32)
      scanned += len(x)
      if y is not None and per_class is not None:
        chosen = []
        for i, label in enumerate(np.asarray(y).reshape(len(x), -1)[:, 0].tolist()):
          if seen.get(label, 0) < per_class and taken + len(chosen) < images:
            seen[label] = seen.get(label, 0) + 1
            chosen.append(i)
        x = x[chosen]
      x = x[:images - taken]
      for start in range(0, len(x), CHUNK):
        step(tf.constant(x[start:start + CHUNK]))
      taken += len(x)
      bar.update(len(x))
      if taken >= images or scanned >= MAX_SCAN * images:
        break
  if taken == 0:
    raise UsageError("the sampling pass got no images; check the training data")
  return Statistics(gram={c.name: g.numpy() for c, g in zip(consumers, grams)},
                    samples={c.name: int(n.numpy()) for c, n in zip(consumers, counts)},
                    images=taken)
