"""The method/regime contract: a `PrunePlan` (which channels survive) and the `Pruner` interface.

A pruning method answers one question, which output channels of which layers survive, as a
serializable `PrunePlan`; every regime (fine-tune, Scratch-E, Scratch-B) starts from that plan
(Liu et al., ICLR 2019, section 3: the pruned architecture is what is evaluated).
"""
import abc
import dataclasses
import json
from typing import ClassVar, Dict, Mapping, Optional, Tuple

from tf_rethink.util.errors import UsageError


@dataclasses.dataclass(frozen=True)
class PrunePlan:
  """Which output channels of which layers survive.

  Attributes:
    model: registry name of the full model ("" for user models).
    keep: layer name -> kept OUTPUT channel indices (stored sorted ascending, no duplicates).
      Layers not named keep all their channels.
    dropped_blocks: residual blocks removed entirely (Sparse Structure Selection).
    method: provenance, the `--method` that made the plan.
    variant: provenance, e.g. "A" or "ratio=0.5".
  """
  model: str
  keep: Mapping[str, Tuple[int, ...]]
  dropped_blocks: Tuple[str, ...] = ()
  method: str = ""
  variant: str = ""

  def __post_init__(self):
    keep = {}
    for name in sorted(self.keep):
      idx = [int(i) for i in self.keep[name]]
      if not idx:
        raise UsageError(f"plan keeps no channel of layer {name!r}; keep at least one index")
      if min(idx) < 0:
        raise UsageError(f"plan for layer {name!r} has negative channel indices {sorted(idx)[:5]}")
      if len(set(idx)) != len(idx):
        raise UsageError(f"plan for layer {name!r} repeats channel indices; give each index once")
      keep[str(name)] = tuple(sorted(idx))
    object.__setattr__(self, "keep", keep)
    object.__setattr__(self, "dropped_blocks", tuple(str(b) for b in self.dropped_blocks))

  def widths(self) -> Dict[str, int]:
    """Layer name -> number of kept output channels (what Scratch-E/B build)."""
    return {name: len(idx) for name, idx in self.keep.items()}

  def to_json(self) -> str:
    """JSON text with sorted keys; `from_json(to_json())` gives an equal plan."""
    data = {"model": self.model, "keep": {k: list(v) for k, v in self.keep.items()},
            "dropped_blocks": list(self.dropped_blocks), "method": self.method,
            "variant": self.variant}
    return json.dumps(data, sort_keys=True, indent=1)

  @classmethod
  def from_json(cls, text: str) -> "PrunePlan":
    """Parses `to_json` output (lists become tuples); bad text raises UsageError."""
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise UsageError(f"plan is not valid JSON ({e}); pass the plan.json written by a prune run")
    fields = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(data, dict) or "keep" not in data or set(data) - fields:
      raise UsageError(f"plan JSON must be an object with keys among {sorted(fields)} and 'keep'")
    return cls(model=data.get("model", ""),
               keep={k: tuple(v) for k, v in data["keep"].items()},
               dropped_blocks=tuple(data.get("dropped_blocks", ())),
               method=data.get("method", ""), variant=data.get("variant", ""))


@dataclasses.dataclass(frozen=True)
class Option:
  """A method's own setting, exposed as a command-line flag (e.g. the slimming sparsity s)."""
  kind: type          # float, int, str or bool
  default: object
  help: str


class Pruner(abc.ABC):
  """A structured pruning method: selects a `PrunePlan` from a (trained) model.

  Subclasses set `name` (== module name == `--method` value) and `citation`, and state the
  paper's selection rule in `select`'s docstring. Method-specific keyword options are consumed by
  the subclass before calling `super().__init__`; leftovers raise UsageError.
  """
  name: ClassVar[str]
  citation: ClassVar[str]
  # Method-specific settings: option name -> Option. main.py turns each into a --flag of the same
  # name (shared names must agree on type and meaning) and passes the values to __init__.
  options: ClassVar[Dict[str, "Option"]] = {}

  def __init__(self, *, variant: Optional[str] = None, ratio: Optional[float] = None, **kwargs):
    if kwargs:
      raise UsageError(f"method {self.name!r} does not take option(s) {sorted(kwargs)}")
    self.variant = variant
    self.ratio = ratio

  def prepare(self, model):
    """Adds gates/wrappers needed before sparsity training (none by default)."""
    return model

  def callbacks(self, log_dir: Optional[str] = None):
    """Keras callbacks applied while training the large model (none by default); `log_dir` is
    where they may write TensorBoard summaries (the baseline run's tb/pruning)."""
    del log_dir
    return []

  @abc.abstractmethod
  def select(self, model, data=None, *, model_name: str = "") -> PrunePlan:
    """Returns the plan: the paper's selection rule applied to `model`."""

  def shrink(self, model, plan: PrunePlan):
    """The physically smaller model with the surviving weights (`surgery.shrink`)."""
    from tf_rethink.pruning import surgery  # pylint: disable=import-outside-toplevel
    return surgery.shrink(model, plan)

  # The hooks below let a method whose plan is not a PrunePlan (unstructured masks) plug into the
  # regimes; the defaults are the structured behaviour.
  # sparse: count params/FLOPs of pruned models over nonzero conv weights (flops convention B).
  sparse: ClassVar[bool] = False

  def build_fresh(self, build_full, plan):
    """The pruned architecture, freshly initialized (Scratch-E/B): `shrink(copy_weights=False)`."""
    from tf_rethink.pruning import surgery  # pylint: disable=import-outside-toplevel
    return surgery.shrink(build_full(), plan, copy_weights=False)

  def build_inherited(self, trained, plan):
    """The pruned model with the weights of `trained` (fine-tune; lottery passes the initial
    weights instead): `shrink`."""
    return self.shrink(trained, plan)

  def pruned_callbacks(self, log_dir: str):
    """Keras callbacks while training a pruned model (fine-tune, scratch, lottery); none here."""
    del log_dir
    return []

  def save_plan(self, plan, path: str) -> None:
    """Writes `plan` to `path` (workdir/plan.json)."""
    from tf_rethink.util import fs  # pylint: disable=import-outside-toplevel
    fs.write_text(path, plan.to_json())

  def load_plan(self, path: str):
    """Reads what `save_plan` wrote."""
    with open(path) as f:
      return PrunePlan.from_json(f.read())

  def export_model(self, model):
    """The model to export (SavedModel) from a trained pruned model: itself."""
    return model
