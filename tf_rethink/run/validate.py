"""Every setting of a Config checked once, before anything is written or trained.

Two layers, both raising a one-line `UsageError` that names the flag and the fix:
  - `check_fields(config)` (no TensorFlow; called by `Config.__post_init__`): each number finite
    and in its range (lr, finetune_lr, width_multiplier > 0; momentum in [0, 1); weight_decay >= 0;
    prune_ratio in (0, 1); seed in [0, 2**31)), each enum among its choices, --workdir not empty
    (and `~` expanded by the Config), the method options by their own rules (`OPTION_RULES`).
  - `preflight(config)` (experiment.run calls it before the workdir is claimed): what needs the
    registries but no training: the method, model and dataset names, the method vs the model
    (`METHOD_MODELS`), the model vs the input size (an ImageNet model on 28x28/32x32 images, a
    pooling that outruns the input), the variant (the --dry_run path: the plan selected on the
    untrained model's shapes), the strategy and TF_CONFIG, the data files.
"""
import json
import math
import numbers
import os

from tf_rethink.util.errors import UsageError

SEED_LIMIT = 2 ** 31   # numpy and TensorFlow seeds
STRATEGIES = ("mirrored", "one_device", "multi_worker")   # train/strategy.py

# Method option name -> (rule, message tail); `rule(value)` True when the value is valid.
OPTION_RULES = {
    "sparsity": (lambda v: v is None or (math.isfinite(v) and v >= 0),
                 "must be a finite number >= 0 (0: no sparsity penalty; leave it unset for the "
                 "paper's value)"),
    "sfp_rate": (lambda v: math.isfinite(v) and 0 < v <= 1,
                 "must be in (0, 1]: the fraction of filters kept"),
    "sss_strength": (lambda v: math.isfinite(v) and v >= 0, "must be a finite number >= 0"),
}
_COUNT_OPTIONS = ("lottery_rounds", "regression_images", "regression_locations",
                  "thinet_images_per_class", "thinet_locations")

# Methods that apply to some architectures only (paper section 4): name -> model name prefixes.
METHOD_MODELS = {
    # SFP zeroes the filters of residual blocks' inner convs (He et al. 2018: ResNets only).
    "soft_filter_pruning": ("resnet", "preresnet"),
}


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise UsageError(message)


def _finite(name: str, value, rule: str, ok) -> None:
  if value is None:
    return
  _check(isinstance(value, numbers.Real) and not isinstance(value, bool),
         f"--{name}={value!r} must be a number")
  _check(math.isfinite(value) and ok(value), f"--{name}={value} {rule}")


def check_fields(c) -> None:
  """The per-field rules (module docstring); `c` is a `run.config.Config`."""
  _finite("lr", c.lr, "must be a finite number > 0 (e.g. --lr=0.1)", lambda v: v > 0)
  _finite("finetune_lr", c.finetune_lr, "must be a finite number > 0 (e.g. 0.001)",
          lambda v: v > 0)
  _finite("width_multiplier", c.width_multiplier, "must be a finite number > 0 (1.0: the "
          "paper's widths)", lambda v: v > 0)
  _finite("momentum", c.momentum, "must be in [0, 1) (the paper: 0.9)", lambda v: 0 <= v < 1)
  _finite("weight_decay", c.weight_decay, "must be a finite number >= 0 (the paper: 1e-4)",
          lambda v: v >= 0)
  _finite("prune_ratio", c.prune_ratio, "is outside (0, 1); pass the fraction of channels to "
          "remove, e.g. --prune_ratio=0.3", lambda v: 0 < v < 1)
  _finite("scratch_b_cap", c.scratch_b_cap, "must be >= 1 (or 0 for no cap)",
          lambda v: v == 0 or v >= 1)
  for name in ("epochs", "batch_size", "finetune_epochs", "limit_train", "limit_test", "round_to",
               "steps_per_execution"):
    value = getattr(c, name)
    if value is not None:
      _check(isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1,
             f"--{name}={value!r} must be a positive integer")
  _check(isinstance(c.seed, numbers.Integral) and 0 <= c.seed < SEED_LIMIT,
         f"--seed={c.seed!r} must be an integer in [0, {SEED_LIMIT})")
  _check(c.strategy in STRATEGIES, f"unknown --strategy={c.strategy!r}; choose one of: "
         f"{', '.join(STRATEGIES)}")
  _check(isinstance(c.workdir, str) and c.workdir.strip() != "",
         "--workdir is empty; pass the directory for this experiment, e.g. --workdir=/tmp/run1")
  _check("\0" not in c.workdir, "--workdir contains a NUL byte")
  for name, value in dict(c.method_options).items():
    if isinstance(value, float) or name in OPTION_RULES:
      rule, tail = OPTION_RULES.get(name, (lambda v: math.isfinite(v), "must be finite"))
      _check(value is None or (isinstance(value, numbers.Real) and rule(value)),
             f"--{name}={value} {tail}")
    if name in _COUNT_OPTIONS:
      _check(isinstance(value, numbers.Integral) and value >= 1, f"--{name}={value} must be a positive integer")


def check_method_model(method: str, model: str) -> None:
  """The method applies to the model (`METHOD_MODELS`)."""
  prefixes = METHOD_MODELS.get(method)
  if prefixes and not model.startswith(prefixes):
    raise UsageError(f"--method={method} prunes residual networks only (the paper applies it to "
                     f"ResNets); --model={model} has no residual blocks; pass e.g. "
                     "--model=resnet56")


def check_model_input(model_family: str, model: str, dataset_info) -> None:
  """An ImageNet architecture needs ImageNet-sized inputs (its stem downsamples 4x at once)."""
  size = dataset_info.input_shape[0]
  if model_family == "imagenet" and size < 64:
    raise UsageError(f"--model={model} is an ImageNet architecture (224x224 inputs); "
                     f"--dataset={dataset_info.name} has {size}x{size} images; use a CIFAR model "
                     "(e.g. vgg16, resnet56) or --dataset=imagenet2012")


def check_tf_config(strategy: str) -> None:
  """TF_CONFIG, when set and used, must be a JSON object (cluster and task)."""
  text = os.environ.get("TF_CONFIG")
  if strategy != "multi_worker" or not text:
    return
  try:
    value = json.loads(text)
  except ValueError as e:
    raise UsageError(f"the TF_CONFIG environment variable is not JSON ({e.msg} at char "
                     f"{e.pos}); set it to {{\"cluster\": ..., \"task\": ...}}") from None
  _check(isinstance(value, dict) and isinstance(value.get("cluster"), dict) and
         isinstance(value.get("task"), dict),
         "the TF_CONFIG environment variable must be a JSON object with 'cluster' and 'task' "
         "objects")


def build_checked(build):
  """`build()`, with a model that cannot be built for the input (e.g. a pooling that outruns a
  28x28 image) a one-line UsageError instead of Keras's traceback."""
  try:
    return build()
  except UsageError:
    raise
  except ValueError as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UsageError(f"the model cannot be built for this input ({first[:200]}); pick a model "
                     "made for the dataset's image size or a larger --width_multiplier") from None
