"""The model registry: `ModelSpec` (a registered architecture) and `MODELS` (`--model` values)."""
import dataclasses
import math
from typing import Callable

import tf_rethink  # noqa: F401
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.util.registry import Registry
from tf_rethink.util.widths import scale_widths


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A registered architecture.

  Attributes:
    name: registry key (`--model` value).
    family: "cifar" or "imagenet" (default input sizes, Scratch-B cap).
    default_widths: returns a fresh copy of the reference cfg (format: module docstring).
    builder: builder(widths, *, input_shape, num_classes, width_multiplier=1.0, **kw) -> Model.
  """
  name: str
  family: str
  default_widths: Callable[[], list]
  builder: Callable[..., keras.Model]

  def build(self, widths=None, *, input_shape, num_classes, width_multiplier=1.0, **kwargs):
    """Builds the functional model; widths=None means the default cfg scaled by the multiplier."""
    if not (math.isfinite(width_multiplier) and width_multiplier > 0):
      raise UsageError(f"width_multiplier must be > 0, got {width_multiplier}")
    if widths is None:
      widths = scale_widths(self.default_widths(), width_multiplier)
    else:
      widths = list(widths)
    return self.builder(widths, input_shape=tuple(input_shape), num_classes=int(num_classes),
                        width_multiplier=width_multiplier, **kwargs)


MODELS: Registry[ModelSpec] = Registry("model")
