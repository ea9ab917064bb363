"""Public Python API: structured pruning of functional tf_keras and Keras 3 models.

```python
import tf_rethink
small, plan = tf_rethink.prune(model, method="l1_norm", ratio=0.3)
plan.save("plan.json")                                   # one JSON file (arrays inline)
again = tf_rethink.apply_plan(same_architecture, "plan.json")   # another instance: same model
fresh = tf_rethink.apply_plan(same_architecture, plan, copy_weights=False)   # Scratch-E/B
report = tf_rethink.channel_groups(model)    # coupled channel groups; what is left unpruned, why
print(report.summary())
```
A plan names layers by key (their names; `outer/inner` inside nested models) and records their
graph positions, so it re-applies to another instance of the architecture even when Keras named
its layers differently. With `l1_norm` in ratio mode the channels coupled by residual or
squeeze-and-excite merges are pruned as groups (`coupled=True`): every member of a group keeps the
same indices, chosen by the sum of the members' per-channel L1 norms (`pruning.methods.l1_norm`).
Data-driven methods (`thinet`, `regression`) take calibration `data`: an array of images, an
(images, labels) pair of arrays, or a batched or unbatched tf.data.Dataset.
"""
from typing import Optional, Tuple, Union

from tf_rethink.pruning.graph import require_tf_keras, view
from tf_rethink.pruning.groups import GroupReport, channel_groups as _channel_groups
from tf_rethink.pruning.methods import METHODS
from tf_rethink.pruning.plan import Plan
from tf_rethink.util.errors import UsageError


def prune(model, method: str = "l1_norm", ratio: Optional[float] = 0.3, *,
          variant: Optional[str] = None, data=None, coupled: bool = True,
          copy_weights: bool = True, **options) -> Tuple[object, Plan]:
  """Selects channels with `method` and returns (the physically smaller model, the plan).

  Args:
    model: a functional (or built Sequential) tf_keras or Keras 3 model, trained for the pruned
      weights to mean anything.
    method: a registered method (`tf_rethink.pruning.METHODS.names()`); for Keras 3 models the
      structured methods that need no training loop (l1_norm, thinet, regression).
    ratio: fraction of channels to remove per prunable layer / channel group.
    variant: a predefined variant instead of a ratio (e.g. l1_norm "A" on vgg16).
    data: calibration data of the data-driven methods (see the module docstring).
    coupled: methods that support it (l1_norm `prune_coupled`) also prune coupled groups.
    copy_weights: copy the surviving weights (False: fresh initialization, Scratch-E/B).
    **options: the method's own options (`METHODS.get(method).options`).
  """
  try:
    cls = METHODS.get(method)
  except KeyError:
    raise UsageError(f"unknown pruning method {method!r}; choose one of "
                     f"{', '.join(METHODS.names())}") from None
  view(model)   # a one-line error for anything that is not a functional Keras model
  if cls.plan_kind == "weights":
    require_tf_keras(model, f"method {method!r}")
  if "prune_coupled" in cls.options:
    options.setdefault("prune_coupled", coupled)
  pruner = cls(variant=variant, ratio=None if variant is not None else ratio, **options)
  plan = pruner.select(model, data)
  return plan.apply(model, copy_weights=copy_weights), plan


def apply_plan(model, plan: Union[Plan, str], *, copy_weights: bool = True):
  """`model` pruned by `plan` (a Plan, its JSON text, or a plan.json path)."""
  if isinstance(plan, str):
    plan = Plan.from_json(plan) if plan.lstrip().startswith("{") else Plan.load(plan)
  elif not isinstance(plan, Plan):
    raise UsageError(f"apply_plan needs a Plan, its JSON text or a plan.json path, got "
                     f"{type(plan).__name__}")
  return plan.apply(model, copy_weights=copy_weights)


def channel_groups(model) -> GroupReport:
  """The channel dependency groups of `model` and the layers pruning cannot follow."""
  return _channel_groups(view(model))
