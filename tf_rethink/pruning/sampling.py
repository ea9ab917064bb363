"""Streaming feature sampling for the data-driven methods (ThiNet, regression; `data_driven`).

A pruned layer's "consumer" is the layer that reads its channels one to one: the next Conv2D, or
the Dense after a global pool, reached through channel-wise layers (BN, activations, pooling,
padding, dropout: rules with `pointwise`). For a consumer with kernel W (kh, kw, C, n), an input
patch x in R^{kh kw x C} at an output location gives y_o = sum_c sum_k x[k,c] W[k,c,o] (+ bias).

`sample_statistics` streams the calibration data once: every consumer's input comes out of one
evaluation of the graph per chunk of `CHUNK` images (`Graph.run`, so consumers inside nested
models are reached too), the sampled patches are reduced on the spot to Gram matrices (C x C for
ThiNet, (kh kw C)^2 for the regression), and nothing else is kept, so memory is bounded by one
chunk's activations plus the Gram matrices whatever the number of images. Every fifth image goes
to a held-out split with Gram matrices of its own: `data_driven` checks each reconstruction on it.
"""
import dataclasses
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from tf_rethink.pruning.graph import Call, Graph
from tf_rethink.pruning.rules import RULES
from tf_rethink.util.errors import UsageError

CHUNK = 32          # images per evaluation while sampling (bounds activation memory)
MAX_SCAN = 4        # stop after scanning MAX_SCAN x the wanted images (class caps may not fill)
HELD_OUT_EVERY = 5  # every fifth sampled image is held out
KEEP_HELD_OUT = 64  # held-out images kept in memory for the whole-model check


def is_consumer(call: Call, graph: Graph) -> bool:
  """A Conv2D (groups 1, no dilation, channels last) or a Dense on a 2-D input."""
  layer = call.layer
  names = {cls.__name__ for cls in type(layer).__mro__}
  if type(layer).__name__ == "Conv2D" or ("Conv2D" in names and not names & {
      "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"}):
    return (int(getattr(layer, "groups", 1) or 1) == 1
            and tuple(layer.dilation_rate) == (1, 1)
            and getattr(layer, "data_format", "channels_last") == "channels_last")
  return "Dense" in names and len(graph.shape(call.inputs[0])) == 2


def find_consumer(graph: Graph, key: str) -> Optional[Call]:
  """The call that consumes layer `key`'s output channels one to one, or None.

  Follows a single path of single-call, channel-wise layers to the first consumer
  (`is_consumer`); branches, merges, model outputs and other layers end the search with None.
  """
  sites = graph.calls_of(key)
  if len(sites) != 1:
    return None
  tensor = sites[0].outputs[0]
  while True:
    consumers = graph.consumers(tensor)
    if len(consumers) != 1 or graph.is_output(tensor):
      return None
    nxt = consumers[0]
    if len(graph.calls_of(nxt.key)) != 1 or len(nxt.inputs) != 1:
      return None
    if is_consumer(nxt, graph):
      return nxt
    rule = RULES.rule_for(nxt, graph)
    if rule is None or not rule.pointwise:
      return None
    tensor = nxt.outputs[0]


def consumer_kernel(layer) -> np.ndarray:
  """The consumer's kernel as (kh, kw, C, n) (a Dense is a 1x1 conv)."""
  w = np.asarray(layer.get_weights()[0])
  return w.reshape((1, 1) + w.shape) if w.ndim == 2 else w


def calibration_batches(data, input_shape: Sequence) -> Iterator[Tuple[np.ndarray,
                                                                       Optional[np.ndarray]]]:
  """(images, labels or None) numpy batches from what users pass as calibration data: an array of
  images, an (images, labels) pair, a batched or unbatched tf.data.Dataset, or an iterable of
  batches. UsageError for anything else or images of the wrong shape."""
  rank = len(input_shape)            # the model input's rank, batch included
  want = tuple(input_shape[1:])
  if isinstance(data, np.ndarray) or (isinstance(data, (tuple, list)) and len(data) == 2 and all(
      isinstance(a, np.ndarray) for a in data)):
    images, labels = (data, None) if isinstance(data, np.ndarray) else data
    if images.ndim == rank - 1:
      images = images[None]
    _check_images(images, want)
    for start in range(0, len(images), CHUNK):
      yield images[start:start + CHUNK], (None if labels is None else
                                          np.asarray(labels)[start:start + CHUNK])
    return
  try:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if isinstance(data, tf.data.Dataset):
      spec = data.element_spec
      image_spec = spec[0] if isinstance(spec, (tuple, list)) else spec
      if getattr(image_spec, "shape", None) is not None and image_spec.shape.rank == rank - 1:
        data = data.batch(CHUNK)
  except ImportError:
    pass
  try:
    iterator = iter(data)
  except TypeError:
    raise UsageError(f"calibration data must be an array of images, an (images, labels) pair, a "
                     f"tf.data.Dataset or an iterable of batches, got {type(data).__name__}"
                     ) from None
  for batch in iterator:
    x, y = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)
    x = np.asarray(x, np.float32)
    if x.ndim == rank - 1:
      x = x[None]
    _check_images(x, want)
    yield x, None if y is None else np.asarray(y)


def _check_images(images, want) -> None:
  got = tuple(images.shape[1:])
  if len(got) != len(want) or any(w is not None and g != w for g, w in zip(got, want)):
    raise UsageError(f"calibration images have shape {got}, the model takes {want}; pass images "
                     "of the model's input shape (an array, (images, labels), or a dataset)")


def _labels_1d(y, n):
  y = np.asarray(y)
  if y.ndim > 1 and y.shape[-1] > 1:
    return y.reshape(n, -1).argmax(-1)
  return y.reshape(n, -1)[:, 0]


def _patches(x, call, graph, rng, locations: int):
  """Sampled input patches of a consumer from its input batch x: (S, kh*kw, C), S = B*locations."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  layer = call.layer
  if len(x.shape) == 2:                              # Dense after a global pool: one "location"
    return x[:, None, :]
  kh, kw = layer.kernel_size
  sh, sw = layer.strides
  h, w = int(x.shape[1]), int(x.shape[2])
  out_shape = graph.shape(call.outputs[0])
  ho, wo = int(out_shape[1]), int(out_shape[2])
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
  """Per consumer key: Gram matrices and sample counts of the fit and held-out splits."""
  gram: Dict[str, np.ndarray]
  samples: Dict[str, int]
  held_out_gram: Dict[str, np.ndarray]
  held_out_samples: Dict[str, int]
  images: int
  held_out_images: List[np.ndarray]     # up to KEEP_HELD_OUT held-out images


def sample_statistics(graph: Graph, consumers: Sequence[Call], data, *, kind: str, images: int,
                      per_class: Optional[int], locations: int, seed: int = 0,
                      desc: str = "sampling") -> Statistics:
  """Streams `data` once and accumulates, per consumer, the Gram matrices of its samples.

  kind "thinet": each sample (image, location, random output channel o) gives the per-channel
  contributions xhat_c = sum_k x[k,c] W[k,c,o]; gram = sum xhat xhat^T (C x C).
  kind "patch": each sample (image, location) gives the flattened input patch p (kh kw C, channel
  fastest); gram = sum p p^T.

  Args:
    data: calibration data (`calibration_batches`).
    images: stop after this many images; per_class: at most this many per label (None: no cap).
    locations: sampled output locations per image (Dense consumers: 1).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if data is None:
    raise UsageError("the data-driven methods need calibration data (data=...)")
  kernels = [tf.constant(consumer_kernel(c.layer)) for c in consumers]
  taps = [c.inputs[0] for c in consumers]

  def accumulators():
    grams = []
    for k in kernels:
      kh, kw, c, _ = k.shape
      size = c if kind == "thinet" else kh * kw * c
      grams.append(tf.Variable(tf.zeros((size, size), tf.float64), trainable=False))
    return grams, [tf.Variable(0, dtype=tf.int64, trainable=False) for _ in consumers]

  splits = {False: accumulators(), True: accumulators()}
  rng = tf.random.Generator.from_seed(seed)
  input_spec = tf.TensorSpec([None] + list(graph.shape(graph.inputs[0])[1:]), tf.float32)

  def make_step(held_out):
    grams, counts = splits[held_out]

    @tf.function(input_signature=[input_spec])
    def step(x):
      outs = graph.run([x], fetch=taps)
      for out, call, kernel, gram, count in zip(outs, consumers, kernels, grams, counts):
        p = _patches(out, call, graph, rng, locations)
        if kind == "thinet":
          kh, kw, c, n = kernel.shape
          w = tf.reshape(kernel, [kh * kw, c, n])
          o = rng.uniform(tf.shape(p)[:1], 0, n, dtype=tf.int32)
          w_sel = tf.transpose(tf.gather(w, o, axis=2), [2, 0, 1])      # (S, k, C)
          s = tf.reduce_sum(p * tf.cast(w_sel, p.dtype), axis=1)         # (S, C)
        else:
          s = tf.reshape(p, [tf.shape(p)[0], -1])                        # (S, k*C)
        s = tf.cast(s, tf.float64)
        gram.assign_add(tf.matmul(s, s, transpose_a=True))
        count.assign_add(tf.cast(tf.shape(s)[0], tf.int64))
    return step

  steps = {False: make_step(False), True: make_step(True)}
  taken, scanned, seen, kept_held = 0, 0, {}, []
  from tf_rethink.util.progress import progress  # pylint: disable=import-outside-toplevel
  with progress(desc, total=images, unit="img") as bar:
    for x, y in calibration_batches(data, graph.shape(graph.inputs[0])):
      scanned += len(x)
      if y is not None and per_class is not None:
        chosen = []
        for i, label in enumerate(_labels_1d(y, len(x)).tolist()):
          if seen.get(label, 0) < per_class and taken + len(chosen) < images:
            seen[label] = seen.get(label, 0) + 1
            chosen.append(i)
        x = x[chosen]
      x = x[:images - taken]
      held = (np.arange(taken, taken + len(x)) % HELD_OUT_EVERY) == HELD_OUT_EVERY - 1
      for split, part in ((False, x[~held]), (True, x[held])):
        for start in range(0, len(part), CHUNK):
          steps[split](tf.constant(part[start:start + CHUNK], tf.float32))
      kept_held.extend(x[held][:max(0, KEEP_HELD_OUT - len(kept_held))])
      taken += len(x)
      bar.update(len(x))
      if taken >= images or scanned >= MAX_SCAN * images:
        break
  if taken == 0:
    raise UsageError("the calibration data gave no images; check the data passed for sampling")
  (grams, counts), (h_grams, h_counts) = splits[False], splits[True]
  keys = [c.key for c in consumers]
  return Statistics(gram={k: g.numpy() for k, g in zip(keys, grams)},
                    samples={k: int(n.numpy()) for k, n in zip(keys, counts)},
                    held_out_gram={k: g.numpy() for k, g in zip(keys, h_grams)},
                    held_out_samples={k: int(n.numpy()) for k, n in zip(keys, h_counts)},
                    images=taken, held_out_images=kept_held)
