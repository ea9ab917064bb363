"""Weight masks: the global magnitude rule, and fixed-mask training through TF-MOT wrappers.

The unstructured counterpart of channel plans (Liu et al., ICLR 2019, section 4.5 / spec 2.7):
which individual conv weights survive; a `Plan` carries them (`Plan.masks`, layer key -> bool
array of the kernel's shape).

Fixed-mask training (spec 3.5, "masked training"): every masked conv is wrapped in TF-MOT's
`PruneLowMagnitude` with the `FixedMask` schedule, which never recomputes the mask; our mask is
written into the wrapper's `mask` variable. TF-MOT computes masks from magnitudes only, so this is
how an exact given mask is imposed. Each training step the wrapper assigns kernel <- kernel * mask
before the forward pass, so the loss always sees the masked kernel and the kept weights follow the
same trajectory as under the reference's gradient masking (the masked entries enter the loss as
0, their weight decay is 0); the optimizer step may leave masked entries nonzero until the next
forward pass, and `UpdatePruningStep` re-applies the mask at every epoch end, so every checkpoint
and the final weights have exact zeros (measured in tests/pruning/test_magnitude.py).

TF-MOT works with tf_keras models only: a Keras 3 model is refused in one line
(`graph.require_tf_keras`).
"""
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from tf_rethink.pruning.graph import require_tf_keras, view
from tf_rethink.pruning.rules.conv import is_conv
from tf_rethink.pruning.surgery import Edit, rebuild
from tf_rethink.util.errors import UsageError




def _tfmot():
  """TF-MOT, imported on first use (it sets TF_USE_LEGACY_KERAS for its process when imported, so
  a Keras 3 user who never masks weights never imports it)."""
  import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
  from tensorflow_model_optimization.python.core.sparsity.keras import (  # pylint: disable=import-outside-toplevel
      pruning_schedule, pruning_wrapper)
  return tfmot, pruning_schedule, pruning_wrapper





def _inner(layer):
  _, _, wrapper = _tfmot()
  return layer.layer if isinstance(layer, wrapper.PruneLowMagnitude) else layer


def conv_kernels(model) -> Dict[str, np.ndarray]:
  """Layer key -> effective kernel (times its mask, if wrapped) of every conv, in model order."""
  _, _, wrapper = _tfmot()
  out = {}
  graph = view(model)
  for key in graph.keys():
    layer = graph.layer(key)
    base = _inner(layer)
    if is_conv(base):
      kernel = base.kernel.numpy()
      if isinstance(layer, wrapper.PruneLowMagnitude):
        kernel = kernel * layer.pruning_vars[0][1].numpy()
      out[key] = kernel
  return out


def global_magnitude_masks(kernels: Mapping[str, np.ndarray], ratio: float
                           ) -> Dict[str, np.ndarray]:
  """The reference rule (spec 2.7/2.8): one threshold over all |w| of `kernels`.

  Sorted ascending, the threshold is the value at index (#zeros + int(#nonzero * ratio)); weights
  with |w| > threshold are kept. On a dense model this is index int(total * ratio); on a masked
  model it prunes `ratio` of the remaining weights (iterative pruning). The threshold element
  itself is pruned too, so int(total * ratio) + 1 weights go (ties aside).
  """
  flat = np.concatenate([np.abs(k).ravel() for k in kernels.values()])
  zeros = int((flat == 0).sum())
  index = min(flat.size - 1, zeros + int((flat.size - zeros) * ratio))
  threshold = np.sort(flat)[index]
  return {name: np.abs(k) > threshold for name, k in kernels.items()}


def _check(model, masks: Mapping[str, np.ndarray]):
  require_tf_keras(model, "a weight-mask plan")
  kernels = conv_kernels(model)
  for name, m in masks.items():
    if name not in kernels or kernels[name].shape != m.shape:
      got = kernels[name].shape if name in kernels else "no such conv"
      raise UsageError(f"mask plan layer {name!r} {m.shape} does not fit the model ({got}); use "
                       "the plan made for this model and width")


def wrap(model, masks: Mapping[str, np.ndarray]):
  """A copy of `model` with every masked conv in a fixed-mask `PruneLowMagnitude` (same layer
  names, same weights, kernels multiplied by the masks); `model` itself is not changed."""
  _check(model, masks)
  tfmot, schedule, _ = _tfmot()

  class FixedMask(schedule.PruningSchedule):
    """A TF-MOT schedule that never updates the mask."""

    def __init__(self, sparsity: float = 0.0):
      self.sparsity = float(sparsity)

    def __call__(self, step):
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      return tf.constant(False), tf.constant(self.sparsity, dtype=tf.float32)

    def get_config(self):
      return {"class_name": "FixedMask", "config": {"sparsity": self.sparsity}}

  def make(layer, config):
    # TF-MOT's mask op assigns the kernel read in the compute dtype back to the float32 variable,
    # which fails under mixed precision: masked convs compute in float32.
    fresh = type(layer).from_config({**config, "dtype": "float32"})
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(
        fresh, pruning_schedule=FixedMask(1.0 - float(masks[layer.name].mean())), dtype="float32")
    wrapped._name = layer.name  # pylint: disable=protected-access  (TF-MOT renames; keep keys)
    return wrapped

  def assign(new, old):
    new.layer.set_weights(old.get_weights())

  graph = view(model)
  edits = {key: Edit(make=make, assign=assign) for key in masks if graph.calls_of(key)}
  wrapped = rebuild(model, edits)
  apply_masks(wrapped, masks)
  return wrapped


def apply_masks(model, masks: Mapping[str, np.ndarray]) -> None:
  """Writes the masks into the wrappers (or zeroes plain kernels) and masks the kernels."""
  _, _, wrapper = _tfmot()
  graph = view(model)
  for key in graph.keys():
    if key not in masks:
      continue
    layer = graph.layer(key)
    m = masks[key].astype(np.float32)
    if isinstance(layer, wrapper.PruneLowMagnitude):
      layer.pruning_vars[0][1].assign(m)
    kernel = _inner(layer).kernel
    kernel.assign(kernel.numpy() * m)


def reinit(model, masks: Mapping[str, np.ndarray], seed: Optional[int] = None) -> None:
  """Scratch init of the masked convs (reference `cifar_E.py`, spec 3.3): N(0, 2/n) with
  n = nnz(mask) / C_in (the fan-out scaled by the density), then masked."""
  # Without a seed, draw one from NumPy's global state (seeded per regime by the experiment).
  rng = np.random.default_rng(seed if seed is not None else np.random.randint(2**31))
  graph = view(model)
  for key in graph.keys():
    if key not in masks:
      continue
    m = masks[key]
    n = max(1.0, m.sum() / m.shape[-2])
    kernel = _inner(graph.layer(key)).kernel
    kernel.assign((rng.normal(0.0, np.sqrt(2.0 / n), m.shape) * m).astype(np.float32))
  apply_masks(model, masks)


def strip(model):
  """The plain Keras model without wrappers (TF-MOT `strip_pruning`); the zeros stay."""
  tfmot, _, _ = _tfmot()
  return tfmot.sparsity.keras.strip_pruning(model)


def callbacks(log_dir: Optional[str] = None) -> Tuple:
  """`UpdatePruningStep` (required by the wrappers; re-masks at epoch end) and, with a log_dir,
  `PruningSummaries` (per-layer sparsity curves in TensorBoard)."""
  tfmot, _, _ = _tfmot()
  out = [tfmot.sparsity.keras.UpdatePruningStep()]
  if log_dir:
    out.append(tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir, update_freq="epoch"))
  return tuple(out)
