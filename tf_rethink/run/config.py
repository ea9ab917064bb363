"""The resolved settings of one experiment, validated; no absl here (main.py owns the flags).

A workdir holds one experiment: the fields in `IDENTITY_FIELDS` decide what the baseline and the
plan are, so a workdir written with different values is refused instead of silently mixed.
"""
import dataclasses
import json
import os
from typing import Mapping, Optional, Tuple

from tf_rethink.run import validate
from tf_rethink.util import progress
from tf_rethink.util.errors import UsageError

# How training steps execute (train/speed.py's SpeedSettings has exactly these fields).
SPEED_FIELDS = ("steps_per_execution", "mixed_precision", "jit_compile", "intra_op_threads",
                "inter_op_threads", "conv_weight_grad")
# Fields that do not change what is trained (which regimes to run, where, how verbosely).
_RUN_ONLY_FIELDS = ("regime", "workdir", "strategy", "worker_timeout", "dry_run", "verbose",
                    "export", "seeds") + SPEED_FIELDS
# Per-dataset defaults for settings left unset: the paper's protocol on the full datasets (spec 3.1,
# 3.2), a CPU-scale run of a few minutes on the shipped subset and on full Fashion-MNIST.
PROTOCOL_DEFAULTS = {
    "embedded": {"width_multiplier": 0.25, "epochs": 6, "batch_size": 64},
    "fashion_mnist": {"width_multiplier": 0.25, "epochs": 6, "batch_size": 64},
    "cifar10": {"width_multiplier": 1.0, "epochs": 160, "batch_size": 64, "finetune_epochs": 40},
    "cifar100": {"width_multiplier": 1.0, "epochs": 160, "batch_size": 64, "finetune_epochs": 40},
    "imagenet2012": {"width_multiplier": 1.0, "epochs": 90, "batch_size": 256,
                     "finetune_epochs": 20},
}
REGIME_CHOICES = ("baseline", "finetune", "scratch_e", "scratch_b", "all", "lottery",
                  "lottery_random",   # lottery_random: train/lottery.py, the ticket's control
                  "uniform_e")        # train/uniform.py: the uniform architecture, same params
LR_SCHEDULES = ("auto", "cifar", "imagenet")
PRECISIONS = ("auto", "off", "bf16", "fp16")   # --mixed_precision (train/speed.py)
JIT_CHOICES = ("auto", "on", "off")            # --jit_compile (train/speed.py)
CONV_WEIGHT_GRAD_CHOICES = ("auto", "on", "off")   # --conv_weight_grad (train/conv_weight_grad.py)
AUGMENTATIONS = ("paper", "randaugment", "mixup", "cutmix", "keras_cv_crop")   # --augment (data/recipes.py RECIPES)


@dataclasses.dataclass(frozen=True)
class Config:
  """One experiment: method x model x dataset, and the regimes to run on it."""
  method: str = "l1_norm"
  regime: str = "scratch_b"
  model: str = "vgg16"
  dataset: str = "embedded"
  variant: str = ""
  prune_ratio: Optional[float] = None
  round_to: int = 1            # kept channel counts rounded to a multiple (pruning/select.py)
  width_multiplier: Optional[float] = None   # None: PROTOCOL_DEFAULTS of the dataset
  epochs: Optional[int] = None
  batch_size: Optional[int] = None
  lr: float = 0.1
  weight_decay: float = 1e-4
  momentum: float = 0.9
  lr_schedule: str = "auto"
  finetune_epochs: Optional[int] = None
  finetune_lr: Optional[float] = None
  scratch_b_cap: Optional[float] = None
  augment: str = "paper"   # training augmentation recipe (data/recipes.py); part of the identity
  method_options: Mapping[str, object] = dataclasses.field(default_factory=dict)
  seed: int = 1
  seeds: str = ""   # "N" (N runs: seed, seed+1, ...) or "1,4,7"; each in workdir/seed_<n> (seeds.py)
  limit_train: Optional[int] = None
  limit_test: Optional[int] = None
  data_dir: Optional[str] = None
  idx_dir: Optional[str] = None
  workdir: str = "/tmp/tf_rethink"
  strategy: str = "mirrored"
  worker_timeout: float = 120.0   # multi_worker: seconds to wait for every task at start
  dry_run: bool = False
  verbose: Optional[int] = None   # None: a progress bar on a terminal, one line per epoch otherwise
  export: bool = True
  # Speed (train/speed.py; defaults measured with tools/bench_train.py): how steps execute.
  steps_per_execution: int = 1
  mixed_precision: str = "auto"
  jit_compile: str = "auto"
  intra_op_threads: int = 0
  inter_op_threads: int = 0
  conv_weight_grad: str = "auto"

  def __post_init__(self):
    for name, value in PROTOCOL_DEFAULTS.get(self.dataset, PROTOCOL_DEFAULTS["embedded"]).items():
      if getattr(self, name) is None:
        object.__setattr__(self, name, value)
    _check(self.regime in REGIME_CHOICES,
           f"unknown --regime={self.regime!r}; choose one of: {', '.join(REGIME_CHOICES)}")
    _check(self.augment in AUGMENTATIONS,
           f"unknown --augment={self.augment!r}; choose one of: {', '.join(AUGMENTATIONS)}")
    _check(self.lr_schedule in LR_SCHEDULES,
           f"unknown --lr_schedule={self.lr_schedule!r}; choose one of: {', '.join(LR_SCHEDULES)}")
    if isinstance(self.workdir, str):
      object.__setattr__(self, "workdir", os.path.expanduser(self.workdir))
    validate.check_fields(self)   # numbers finite and in range, workdir, method options
    _check(self.worker_timeout > 0, f"--worker_timeout={self.worker_timeout} must be positive")
    progress.check_verbose(self.verbose)
    check_speed_settings(self)
    self.seed_list  # pylint: disable=pointless-statement  (validates --seeds)

  @property
  def seed_list(self) -> Tuple[int, ...]:
    """The seeds of a multi-seed run (`--seeds`): "N" -> seed..seed+N-1, "a,b,c" -> (a, b, c)."""
    text = str(self.seeds).strip()
    if not text:
      return ()
    try:
      if "," in text:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
      else:
        seeds = tuple(range(self.seed, self.seed + int(text)))
    except ValueError:
      raise UsageError(f"--seeds={self.seeds!r} is neither a count nor a comma list; pass e.g. "
                       "--seeds=5 or --seeds=1,2,3") from None
    _check(len(seeds) > 0 and len(set(seeds)) == len(seeds), f"--seeds={self.seeds!r} must name "
           "at least one seed, each once (e.g. --seeds=5 or --seeds=1,2,3)")
    return seeds

  @property
  def regimes(self) -> Tuple[str, ...]:
    """The regimes to run, in order; `all` runs the three after one shared baseline and prune."""
    if self.regime == "all":
      return ("baseline", "finetune", "scratch_e", "scratch_b")
    if self.regime == "baseline":
      return ("baseline",)
    if self.regime == "lottery":  # the winning ticket against random init with the same plan
      return ("baseline", "lottery", "scratch_e")
    return ("baseline", self.regime)

  def identity(self) -> dict:
    """The fields that define the trained baseline and the plan in a workdir."""
    return {k: v for k, v in dataclasses.asdict(self).items() if k not in _RUN_ONLY_FIELDS}

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def check_speed_settings(settings) -> None:
  """Validates the speed fields shared by Config and train/speed.py's SpeedSettings."""
  _check(settings.mixed_precision in PRECISIONS, f"unknown --mixed_precision="
         f"{settings.mixed_precision!r}; choose one of: {', '.join(PRECISIONS)}")
  _check(settings.jit_compile in JIT_CHOICES, f"unknown --jit_compile={settings.jit_compile!r}; "
         f"choose one of: {', '.join(JIT_CHOICES)}")
  _check(settings.conv_weight_grad in CONV_WEIGHT_GRAD_CHOICES, "unknown --conv_weight_grad="
         f"{settings.conv_weight_grad!r}; choose one of: {', '.join(CONV_WEIGHT_GRAD_CHOICES)}")
  _check(int(settings.steps_per_execution) >= 1,
         f"--steps_per_execution={settings.steps_per_execution} must be a positive integer")
  for name in ("intra_op_threads", "inter_op_threads"):
    _check(int(getattr(settings, name)) >= 0, f"--{name}={getattr(settings, name)} must be >= 0 "
           "(0: TensorFlow's default, one thread per core)")


def parse_speed_settings(text: str) -> dict:
  """'mixed_precision=bf16,steps_per_execution=4' -> {"mixed_precision": "bf16",
  "steps_per_execution": 4} (integers converted); UsageError for an unknown name."""
  out = {}
  for item in filter(None, (t.strip() for t in text.split(","))):
    key, sep, value = item.partition("=")
    _check(bool(sep) and key in SPEED_FIELDS, f"speed setting {item!r} must be name=value with a "
           f"name among {', '.join(SPEED_FIELDS)}")
    out[key] = int(value) if value.lstrip("-").isdigit() else value
  return out


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise UsageError(message)
