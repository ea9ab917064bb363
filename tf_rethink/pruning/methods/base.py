"""The common interface of pruning methods: a `Pruner` only selects.

A method answers one question, which channels (or blocks, or weights) of a trained model
survive, with a `Plan` (`tf_rethink.pruning.plan`); everything after that (fine-tuning, Scratch-E
/ Scratch-B, export) asks the plan. Methods that learn the architecture while the large model
trains (Network Slimming, SSS, SFP) also say how to `prepare` the model and which `callbacks`
train it.
"""
import abc
import dataclasses
from typing import ClassVar, Dict, Optional

from tf_rethink.pruning.select import resolve_round_to
from tf_rethink.util.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Option:
  """A method's own setting, exposed as a command-line flag (e.g. the slimming sparsity s)."""
  kind: type          # float, int, str or bool
  default: object
  help: str


class Pruner(abc.ABC):
  """A pruning method (see the module docstring).

  Subclasses set `name` (== module name == `--method` value), `citation`, `plan_kind` (what their
  plans hold: "channels", "blocks" or "weights") and state the paper's selection rule in
  `select`'s docstring. Method-specific keyword options (`options`) are consumed by the subclass
  before calling `super().__init__`; leftovers raise UsageError.
  """
  name: ClassVar[str]
  citation: ClassVar[str]
  plan_kind: ClassVar[str] = "channels"
  # Method-specific settings: option name -> Option. run/main.py turns each into a --flag of the
  # same name (shared names must agree on type and meaning) and passes the values to __init__.
  options: ClassVar[Dict[str, Option]] = {}

  def __init__(self, *, variant: Optional[str] = None, ratio: Optional[float] = None,
               round_to: int = 1, **kwargs):
    if kwargs:
      raise UsageError(f"method {self.name!r} does not take option(s) {sorted(kwargs)}; its "
                       f"options: {sorted(self.options) or 'none'}")
    self.variant = variant
    self.ratio = ratio
    self.round_to = resolve_round_to(round_to)   # "auto": this machine's channel block

  def describe(self, variant: str) -> str:
    """The plan's variant string: `variant`, with the rounding when there is one."""
    return variant if self.round_to == 1 else f"{variant},round_to={self.round_to}"

  def prepare(self, model):
    """The model the large-model training uses (gates, regularizers); `model` by default."""
    return model

  def callbacks(self, log_dir: Optional[str] = None) -> list:
    """Keras callbacks while training the large model (none by default); `log_dir` is where they
    may write TensorBoard summaries (the baseline run's tb/pruning)."""
    del log_dir
    return []

  @abc.abstractmethod
  def select(self, model, data=None, *, model_name: str = ""):
    """Returns the Plan: the paper's selection rule applied to the (trained) `model`."""
