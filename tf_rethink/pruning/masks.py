"""Weight masks as data (`MaskPlan`) and fixed-mask training through TF-MOT pruning wrappers.

The unstructured counterpart of `PrunePlan` (Liu et al., ICLR 2019, section 4.5 / spec 2.7): which
individual conv weights survive. Storage (`MaskPlan.save`): `plan.json` holds the provenance, the
per-layer and global sparsity and the name of a sidecar `plan.masks.npz`, which holds one
`np.packbits` array per layer (1 bit per weight, zlib-compressed; the kernel shape is in the JSON).

Fixed-mask training (spec 3.5, "masked training"): every masked conv is wrapped in TF-MOT's
`PruneLowMagnitude` with the `FixedMask` schedule, which never recomputes the mask; our mask is
written into the wrapper's `mask` variable. TF-MOT computes masks from magnitudes only, so this is
how an exact given mask is imposed. Each training step the wrapper assigns kernel <- kernel * mask
before the forward pass, so the loss always sees the masked kernel and the kept weights follow the
same trajectory as under the reference's gradient masking (the masked entries enter the loss as
0, their weight decay is 0); the optimizer step may leave masked entries nonzero until the next
forward pass, and `UpdatePruningStep` re-applies the mask at every epoch end, so every checkpoint
and the final weights have exact zeros (measured in tests/pruning/test_magnitude.py).
"""
import json
import os
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tensorflow as tf
import tf_keras as keras
import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_schedule
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

from tf_rethink.util import fs
from tf_rethink.util.errors import UsageError

PruneLowMagnitude = pruning_wrapper.PruneLowMagnitude
_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


class FixedMask(pruning_schedule.PruningSchedule):
  """A TF-MOT schedule that never updates the mask (constant sparsity, no mask recomputation)."""

  def __init__(self, sparsity: float = 0.0):
    self.sparsity = float(sparsity)

  def __call__(self, step):
    return tf.constant(False), tf.constant(self.sparsity, dtype=tf.float32)

  def get_config(self):
    return {"class_name": "FixedMask", "config": {"sparsity": self.sparsity}}


class MaskPlan:
  """Which conv weights survive: layer name -> boolean mask of the kernel's shape (True = kept).

  Attributes:
    model: registry name of the full model ("" for user models).
    masks: layer name -> bool array shaped like that layer's kernel.
    method, variant: provenance (e.g. "magnitude", "ratio=0.8 rounds=1").
  """

  def __init__(self, model: str, masks: Mapping[str, np.ndarray], method: str = "",
               variant: str = ""):
    self.model = model
    self.masks = {str(k): np.asarray(m, dtype=bool) for k, m in masks.items()}  # model order
    self.method = method
    self.variant = variant

  def sparsity(self) -> Dict[str, float]:
    """Layer name -> fraction of its kernel's weights that are pruned."""
    return {k: float(1.0 - m.mean()) for k, m in self.masks.items()}

  def global_sparsity(self) -> float:
    """Fraction of all masked-layer weights that are pruned."""
    total = sum(m.size for m in self.masks.values())
    return float(sum(m.size - m.sum() for m in self.masks.values()) / max(1, total))

  def summary(self) -> str:
    """One line: the global sparsity, then each layer's."""
    layers = ", ".join(f"{k} {100 * v:.1f}%" for k, v in self.sparsity().items())
    return f"mask plan: {100 * self.global_sparsity():.2f}% of conv weights pruned ({layers})"

  def __eq__(self, other):
    return (isinstance(other, MaskPlan) and self.model == other.model
            and self.method == other.method and self.variant == other.variant
            and list(self.masks) == list(other.masks)
            and all(np.array_equal(self.masks[k], other.masks[k]) for k in self.masks))

  def to_json(self, masks_file: str = "") -> str:
    data = {"kind": "mask", "model": self.model, "method": self.method, "variant": self.variant,
            "masks_file": masks_file, "global_sparsity": round(self.global_sparsity(), 6),
            "layers": [{"name": k, "shape": list(m.shape), "kept": int(m.sum()),
                        "sparsity": round(1.0 - float(m.mean()), 6)}
                       for k, m in self.masks.items()]}
    return json.dumps(data, sort_keys=True, indent=1)

  def save(self, path: str) -> None:
    """Writes `path` (JSON) and `<path stem>.masks.npz` (bit-packed masks); npz first, atomically."""
    stem = os.path.splitext(path)[0]
    npz = stem + ".masks.npz"
    with fs.atomic_path(npz) as tmp:
      np.savez_compressed(tmp, **{k: np.packbits(m.ravel()) for k, m in self.masks.items()})
    fs.write_text(path, self.to_json(os.path.basename(npz)))

  @classmethod
  def load(cls, path: str) -> "MaskPlan":
    try:
      data = fs.read_json(path)
      if data.get("kind") != "mask":
        raise ValueError("not a mask plan")
      packed = np.load(os.path.join(os.path.dirname(path), data["masks_file"]))
      masks = {}
      for info in data["layers"]:
        name = info["name"]
        shape = tuple(info["shape"])
        masks[name] = np.unpackbits(packed[name], count=int(np.prod(shape))).astype(bool)
        masks[name] = masks[name].reshape(shape)
        if int(masks[name].sum()) != info["kept"]:
          raise ValueError(f"layer {name}: mask file disagrees with the JSON")
    except (OSError, ValueError, KeyError) as e:
      raise UsageError(f"{path} is not a readable mask plan ({e}); delete it (and its "
                       ".masks.npz) to prune again") from None
    return cls(data.get("model", ""), masks, data.get("method", ""), data.get("variant", ""))


def inner(layer):
  """The wrapped layer of a TF-MOT wrapper, else the layer itself."""
  return layer.layer if isinstance(layer, PruneLowMagnitude) else layer


def conv_kernels(model) -> Dict[str, np.ndarray]:
  """Layer name -> kernel (masked, if wrapped) of every conv layer, in model order."""
  out = {}
  for layer in model.layers:
    base = inner(layer)
    if isinstance(base, _CONVS):
      kernel = base.kernel.numpy()
      if isinstance(layer, PruneLowMagnitude):
        kernel = kernel * layer.pruning_vars[0][1].numpy()
      out[base.name] = kernel
  return out


def global_magnitude_masks(kernels: Mapping[str, np.ndarray], ratio: float) -> Dict[str, np.ndarray]:
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


def _check(model, plan: MaskPlan):
  kernels = conv_kernels(model)
  for name, m in plan.masks.items():
    if name not in kernels or kernels[name].shape != m.shape:
      got = kernels[name].shape if name in kernels else "no such conv"
      raise UsageError(f"mask plan layer {name!r} {m.shape} does not fit the model ({got}); use "
                       "the plan made for this model and width")


def wrap(model, plan: MaskPlan):
  """A copy of `model` with every planned conv in a fixed-mask `PruneLowMagnitude` (same layer
  names, same weights, kernels multiplied by the masks); `model` itself is not changed."""
  _check(model, plan)

  def clone(layer):
    if layer.name not in plan.masks:
      return layer.__class__.from_config(layer.get_config())
    # TF-MOT's mask op assigns the kernel read in the compute dtype back to the float32 variable,
    # which fails under mixed precision: masked convs compute in float32.
    fresh = layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})
    if layer.name in plan.masks:
      fresh = tfmot.sparsity.keras.prune_low_magnitude(
          fresh, pruning_schedule=FixedMask(1.0 - float(plan.masks[layer.name].mean())),
          dtype="float32")
      # TF-MOT forces the name "prune_low_magnitude_<name>"; keep the contract's stable names.
      fresh._name = layer.name  # pylint: disable=protected-access
    return fresh

  wrapped = keras.models.clone_model(model, clone_function=clone)
  for layer in model.layers:
    if layer.weights:
      inner(wrapped.get_layer(layer.name)).set_weights(layer.get_weights())
  apply_masks(wrapped, plan)
  return wrapped


def apply_masks(model, plan: MaskPlan) -> None:
  """Writes the plan's masks into the wrappers (or zeroes plain kernels) and masks the kernels."""
  for layer in model.layers:
    name = inner(layer).name
    if name not in plan.masks:
      continue
    m = plan.masks[name].astype(np.float32)
    if isinstance(layer, PruneLowMagnitude):
      layer.pruning_vars[0][1].assign(m)
    kernel = inner(layer).kernel
    kernel.assign(kernel.numpy() * m)


def reinit(model, plan: MaskPlan, seed: Optional[int] = None) -> None:
  """Scratch init of the masked convs (reference `cifar_E.py`, spec 3.3): N(0, 2/n) with
  n = nnz(mask) / C_in (the fan-out scaled by the density), then masked."""
  # Without a seed, draw one from NumPy's global state (seeded per regime by the experiment).
  rng = np.random.default_rng(seed if seed is not None else np.random.randint(2**31))
  for layer in model.layers:
    name = inner(layer).name
    if name not in plan.masks:
      continue
    m = plan.masks[name]
    n = max(1.0, m.sum() / m.shape[-2])
    kernel = inner(layer).kernel
    kernel.assign((rng.normal(0.0, np.sqrt(2.0 / n), m.shape) * m).astype(np.float32))
  apply_masks(model, plan)


def strip(model):
  """The plain Keras model without wrappers (TF-MOT `strip_pruning`); the zeros stay."""
  return tfmot.sparsity.keras.strip_pruning(model)


def callbacks(log_dir: Optional[str] = None) -> Tuple:
  """`UpdatePruningStep` (required by the wrappers; re-masks at epoch end) and, with a log_dir,
  `PruningSummaries` (per-layer sparsity curves in TensorBoard)."""
  out = [tfmot.sparsity.keras.UpdatePruningStep()]
  if log_dir:
    out.append(tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir, update_freq="epoch"))
  return tuple(out)
