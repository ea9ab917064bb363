"""Public Python API: structured pruning of any tf_keras functional model.

```python
import tf_rethink
small, plan = tf_rethink.prune(model, method="l1_norm", ratio=0.3)
open("plan.json", "w").write(plan.to_json())
again = tf_rethink.apply_plan(build_same_architecture(), "plan.json")   # Scratch-E/B start here
report = tf_rethink.channel_groups(model)    # coupled channel groups, unfollowable layers
```
A plan names layers, so it re-applies to any model with the same architecture and layer names.
With `l1_norm` in ratio mode the channels coupled by residual or squeeze-and-excite merges are
pruned as groups (`coupled=True`): every member of a group keeps the same indices, chosen by the
sum of the members' per-channel L1 norms (`tf_rethink.pruning.l1_norm`).
"""
import os
from typing import Optional, Tuple, Union

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.pruning import METHODS, coupling, surgery
from tf_rethink.pruning.base import PrunePlan


def prune(model: keras.Model, method: str = "l1_norm", ratio: Optional[float] = 0.3, *,
          variant: Optional[str] = None, data=None, coupled: bool = True,
          copy_weights: bool = True, **options) -> Tuple[keras.Model, PrunePlan]:
  """Selects channels with `method` and returns (the physically smaller model, the plan).

  Args:
    model: a functional tf_keras model (trained, for the pruned weights to mean anything).
    method: a registered pruning method (`tf_rethink.pruning.METHODS.names()`).
    ratio: fraction of channels to remove per prunable layer / channel group.
    variant: a predefined variant instead of a ratio (e.g. l1_norm "A" on vgg16).
    data: what data-driven methods select from (e.g. a tf.data.Dataset); None for l1_norm.
    coupled: methods that support it (l1_norm `prune_coupled`) also prune coupled groups.
    copy_weights: copy the surviving weights (False: fresh initialization, Scratch-E/B).
    **options: the method's own options (`METHODS.get(method).options`).
  """
  try:
    cls = METHODS.get(method)
  except KeyError:
    raise UsageError(f"unknown pruning method {method!r}; choose one of "
                     f"{', '.join(METHODS.names())}") from None
  if "prune_coupled" in cls.options:
    options.setdefault("prune_coupled", coupled)
  pruner = cls(variant=variant, ratio=None if variant is not None else ratio, **options)
  plan = pruner.select(model, data)
  small = pruner.shrink(model, plan) if copy_weights else apply_plan(model, plan,
                                                                    copy_weights=False)
  return small, plan


def apply_plan(model: keras.Model, plan: Union[PrunePlan, str], *,
               copy_weights: bool = True) -> keras.Model:
  """`model` with only the channels `plan` keeps (a PrunePlan, its JSON text or a plan.json path)."""
  if isinstance(plan, str):
    if os.path.isfile(plan):
      with open(plan) as f:
        plan = f.read()
    plan = PrunePlan.from_json(plan)
  return surgery.shrink(model, plan, copy_weights=copy_weights)


def channel_groups(model: keras.Model) -> coupling.GroupReport:
  """The channel dependency groups of `model` and the layers pruning cannot follow."""
  return coupling.channel_groups(model, surgery.RULES)
