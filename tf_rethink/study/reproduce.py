"""Named suites of small-scale experiments, one or more per table of the paper, run over seeds.

An experiment is one `--regime=all`-style workdir of `run/experiment.py`: `passes` lists the
`--regime` values run in it, in order, for every seed (e.g. ("all", "lottery", "lottery_random"):
the baseline, plan and Scratch-E are trained once and shared by the later passes, since the regime
is not part of a workdir's identity). Seeds go to <root>/<key>/seed_<n>/ (`run/repeats.py`), so a
re-run reuses every finished run: a seed whose results.json already holds every regime the passes
produce is skipped without loading TensorFlow, a partly finished one resumes (the trainer resumes
from its per-epoch checkpoint). After each run one progress line says its wall time and an ETA:
the mean wall time of the runs trained so far in this invocation times the runs left.

Shared baselines: two experiments whose large models train identically (`baseline_key`: equal
settings apart from the pruning-only fields, and methods that add nothing to the large model's
training) train the baseline once per seed; an experiment copies the finished baseline/ run
directory of another one in the same root, whether this invocation or an earlier one trained it
(the trainer then reuses it; its train_spec.json must match, so a wrong share is refused, not
silently used). Training is deterministic per seed, so this is the same model the experiment
would have trained itself.

A suite fixes the scale (dataset, widths, epochs, subset sizes, seeds); the experiments are the
same in every suite (`EXPERIMENTS`), a suite picks which of them it runs, in priority order.
"""
import dataclasses
import os
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from tf_rethink.run import repeats
from tf_rethink.util import fs
from tf_rethink.util.errors import UsageError

FAILED = "FAILED.txt"   # in an experiment's directory: why its last attempt stopped
# Config fields that only say how the trained large model is pruned and the pruned one trained.
PRUNING_ONLY_FIELDS = ("method", "variant", "prune_ratio", "round_to", "finetune_epochs",
                       "finetune_lr", "scratch_b_cap", "method_options")


@dataclasses.dataclass(frozen=True)
class Claim:
  """The paper's claim "A <kind> B" on two regimes of one experiment (study/claims.py rule)."""
  a: str
  b: str
  kind: str         # claims.KINDS
  text: str         # the paper's words, short


@dataclasses.dataclass(frozen=True)
class Experiment:
  key: str                    # its directory under the suite root
  table: str                  # paper_numbers.TABLES key
  label: str                  # the row as the report names it
  settings: Mapping[str, object]       # Config fields on top of the suite's (method, model, ...)
  passes: Tuple[str, ...]     # the --regime values run in its workdir, in order
  paper_row: Optional[Tuple[str, str, str, str]]   # paper_numbers key (table, dataset, model, label)
  claims: Tuple[Claim, ...]
  note: str = ""


@dataclasses.dataclass(frozen=True)
class Suite:
  name: str
  settings: Mapping[str, object]       # Config fields shared by every experiment
  seeds: Tuple[int, ...]
  experiments: Tuple[str, ...]         # EXPERIMENTS keys, in the order they run
  description: str


C1 = "training the pruned model from scratch is comparable to or better than fine-tuning (C1/C2)"
_FT_CLAIMS = (Claim("scratch_e", "finetune", "not_worse", "Scratch-E comparable to or better than "
                    "fine-tuned (C1, C3: usually enough)"),
              Claim("scratch_b", "finetune", "not_worse", "Scratch-B comparable to or better than "
                    "fine-tuned (C1, C2)"))
_SB_CLAIM = (Claim("scratch_b", "finetune", "not_worse", "Scratch-B comparable to or better than "
                   "fine-tuned (C2, C8)"),)
_LOTTERY_01 = Claim("lottery", "scratch_e", "no_gain", "at lr 0.1 the winning ticket is no better "
                    "than random init (C9)")
_LOTTERY_001 = Claim("lottery", "scratch_e", "better", "at lr 0.01 the winning ticket beats random "
                     "init (C9)")
_ARCH_SEARCH = Claim("scratch_e", "uniform_e", "better", "the method's architecture beats the "
                     "uniformly pruned one at the same parameter count, both from scratch (C10)")
_EQUAL_DIST = Claim("lottery", "lottery_random", "no_gain", "(our control) the ticket is no better "
                    "than a fresh draw of the SAME initial distribution under the same mask")

# gamma of SSS's block-scale penalty, measured on the small suite's ResNet-20 x0.5 (8 epochs): at
# 0.05 and 0.15 no block went (seed 1; smallest scale 0.20, 0.087); at 0.5 one block in seed 1
# and none in seeds 2 and 3 (reproduction/small_8ep/sss_gamma0.5/); at 0.7 three, two and one
# block in seeds 1-3 (reproduction/small_8ep/sss/); at 1.0 seven of 9 in seed 1 and all 9 in
# seed 2 (whose baseline fell to 55%); at 1.5 all 9 after the first epoch. At 16 epochs, 0.7
# removed three, none and four (REPRODUCTION.md). A block goes where its loss gradient
# |dL/dlambda| stays below gamma (the soft threshold's fixed point), which is why gamma, more than
# the schedule length, decides, and why the window is this narrow at this scale.
SSS_STRENGTH = 0.7

EXPERIMENTS: Dict[str, Experiment] = {e.key: e for e in (
    Experiment("l1_norm_vgg16_A", "l1_norm", "L1-norm VGG-16-A (+ structured lottery, lr 0.1)",
               {"method": "l1_norm", "model": "vgg16", "variant": "A"}, ("all", "lottery"),
               ("l1_norm", "cifar10", "vgg16", "VGG-16-A"), _FT_CLAIMS + (_LOTTERY_01,)),
    Experiment("lottery_magnitude_p80_lr0.1", "lottery", "Lottery, one-shot magnitude 80%, lr 0.1",
               {"method": "magnitude", "model": "vgg16", "prune_ratio": 0.8, "lr": 0.1},
               ("lottery", "lottery_random"),
               ("lottery", "cifar10", "vgg16", "one-shot 80%, lr 0.1"), (_LOTTERY_01, _EQUAL_DIST)),
    Experiment("lottery_magnitude_p80_lr0.01", "lottery", "Lottery, one-shot magnitude 80%, lr 0.01",
               {"method": "magnitude", "model": "vgg16", "prune_ratio": 0.8, "lr": 0.01},
               ("lottery",), ("lottery", "cifar10", "vgg16", "one-shot 80%, lr 0.01"),
               (_LOTTERY_001,)),
    Experiment("magnitude_vgg16_p30", "magnitude", "Weight-level magnitude 30% (VGG-16; paper VGG-19)",
               {"method": "magnitude", "model": "vgg16", "prune_ratio": 0.3}, ("all",),
               ("magnitude", "cifar10", "vgg19", "30%"), _SB_CLAIM),
    Experiment("network_slimming_vgg16_p50", "network_slimming",
               "Network Slimming 50% (VGG-16; paper VGG-19 70%)",
               {"method": "network_slimming", "model": "vgg16", "prune_ratio": 0.5},
               ("all", "uniform_e"), ("network_slimming", "cifar10", "vgg19_slim", "70%"),
               _SB_CLAIM + (_ARCH_SEARCH,),
               note="uniform_e is the architecture-search comparison of the paper's section 5 "
                    "(Figure 3: VGG-19 on CIFAR-100): the uniformly pruned VGG at the same "
                    "parameter count, trained like Scratch-E"),
    Experiment("thinet_vgg16_p50", "thinet", "ThiNet 50% of every conv (VGG-16; paper ImageNet "
               "VGG-Conv), Scratch-B cap 2 as the ImageNet reference",
               {"method": "thinet", "model": "vgg16", "prune_ratio": 0.5, "scratch_b_cap": 2.0,
                "method_options": {"thinet_images_per_class": 16}},
               ("all",), ("thinet", "imagenet2012", "vgg16_imagenet", "VGG-Conv"), _FT_CLAIMS),
    Experiment("regression_vgg16_p50", "regression", "Regression pruning 50% (VGG-16; paper ImageNet "
               "VGG-16-5x), Scratch-B cap 2",
               {"method": "regression", "model": "vgg16", "prune_ratio": 0.5, "scratch_b_cap": 2.0},
               ("all",), ("regression", "imagenet2012", "vgg16_imagenet", "VGG-16-5x"),
               (_FT_CLAIMS[1],)),
    Experiment("soft_filter_pruning_resnet20", "soft_filter_pruning", "SFP rate 0.7, ResNet-20 x0.5",
               {"method": "soft_filter_pruning", "model": "resnet20", "width_multiplier": 0.5},
               ("all",),
               ("soft_filter_pruning", "cifar10", "resnet20", "rate 0.7"), _SB_CLAIM),
    Experiment("sparse_structure_selection_resnet20", "sparse_structure_selection",
               "Sparse Structure Selection, ResNet-20 x0.5 (paper: ImageNet ResNet-50 -> 41/32/26)",
               {"method": "sparse_structure_selection", "model": "resnet20",
                "width_multiplier": 0.5, "method_options": {"sss_strength": SSS_STRENGTH}},
               ("all",), None, _SB_CLAIM),
    Experiment("lottery_magnitude_p80_lr0.1_long", "lottery",
               "Lottery, magnitude 80%, lr 0.1, 2x the epochs (schedule-length check)",
               {"method": "magnitude", "model": "vgg16", "prune_ratio": 0.8, "lr": 0.1,
                "epochs_factor": 2}, ("lottery", "lottery_random"), None,
               (_LOTTERY_01, _EQUAL_DIST)),
)}

# Run order of the small and full suites: the brief's priorities first (L1-norm, the lottery
# investigation, slimming, ThiNet), so a run cut short by its budget still has whole rows.
_PRIORITY = ("l1_norm_vgg16_A", "lottery_magnitude_p80_lr0.1", "lottery_magnitude_p80_lr0.01",
             "network_slimming_vgg16_p50", "thinet_vgg16_p50", "magnitude_vgg16_p30",
             "lottery_magnitude_p80_lr0.1_long", "regression_vgg16_p50",
             "soft_filter_pruning_resnet20", "sparse_structure_selection_resnet20")

SUITES: Dict[str, Suite] = {s.name: s for s in (
    Suite("tiny", {"dataset": "embedded", "width_multiplier": 0.125, "epochs": 1, "batch_size": 64,
                   "limit_train": 256, "limit_test": 256}, (1,),
          ("l1_norm_vgg16_A", "lottery_magnitude_p80_lr0.1"),
          "seconds-long plumbing check on the embedded subset: 1 seed, 1 epoch (not a result)"),
    Suite("small", {"dataset": "fashion_mnist", "width_multiplier": 0.25, "epochs": 16,
                    "batch_size": 128, "limit_train": 10000, "limit_test": 2000}, (1, 2, 3),
          _PRIORITY,
          "CPU-sized: VGG-16 x0.25 on the first 10,000 Fashion-MNIST training and 2,000 test "
          "images, 16 epochs (lr 0.1, x0.1 at epochs 8 and 12), batch 128, 3 seeds"),
    Suite("full", {"dataset": "fashion_mnist", "width_multiplier": 0.5, "epochs": 40,
                   "batch_size": 64}, (1, 2, 3, 4, 5), _PRIORITY,
          "all 60,000 Fashion-MNIST training and 10,000 test images, VGG-16 x0.5, 40 epochs, "
          "5 seeds (not run here: GPU-sized)"),
)}


def suite(name: str) -> Suite:
  if name not in SUITES:
    raise UsageError(f"unknown --suite={name!r}; choose one of: {', '.join(SUITES)}")
  return SUITES[name]


def expected_regimes(passes: Sequence[str]) -> Tuple[str, ...]:
  """The regimes the passes leave in results.json (the Config.regimes of each, in order)."""
  from tf_rethink.run.config import Config  # pylint: disable=import-outside-toplevel
  out = []
  for p in passes:
    for r in Config(regime=p).regimes:
      if r not in out:
        out.append(r)
  return tuple(out)


def experiment_config(s: Suite, e: Experiment, root: str, overrides: Mapping[str, object],
                      seeds: Sequence[int]):
  """The Config of experiment `e` in suite `s`: the suite's settings, then the experiment's, then
  the user's overrides (the user wins, e.g. `--width_multiplier` also over the ResNet rows' 0.5);
  the experiment's `epochs_factor` scales E, the user's `--epochs` included."""
  from tf_rethink.run.config import Config  # pylint: disable=import-outside-toplevel
  fields = dict(s.settings)
  settings = dict(e.settings)
  factor = settings.pop("epochs_factor", 1)
  fields.update(settings)
  fields.update(overrides)
  fields["epochs"] = int(fields.get("epochs") or Config(dataset=fields["dataset"]).epochs) * factor
  # Always a comma list: a lone "2" would be Config's count form (seeds 2 and 3).
  seeds_text = ",".join(str(x) for x in seeds) + ("," if len(seeds) == 1 else "")
  fields.update(regime=e.passes[0], workdir=os.path.join(root, e.key), export=False,
                seeds=seeds_text, seed=seeds[0])
  known = set(Config.__dataclass_fields__)
  unknown = sorted(set(fields) - known)
  if unknown:
    raise UsageError(f"unknown setting(s) {', '.join(unknown)} for experiment {e.key}")
  return Config(**fields)


def is_finished(workdir: str, passes: Sequence[str]) -> bool:
  """Whether results.json in `workdir` holds every regime the passes produce."""
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    return False
  try:
    records = fs.read_json(path)
  except ValueError:
    return False
  return all(r in records for r in expected_regimes(passes))


def baseline_key(config) -> Optional[str]:
  """What defines the trained large model of `config`, as a string; None when its method trains
  the large model its own way (overrides `Pruner.prepare` or `Pruner.callbacks`: sparsity
  regularizers, gates, soft pruning), so its baseline is never shared."""
  from tf_rethink.pruning.methods import METHODS  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning.methods.base import Pruner  # pylint: disable=import-outside-toplevel
  cls = METHODS.get(config.method)
  if cls.prepare is not Pruner.prepare or cls.callbacks is not Pruner.callbacks:
    return None
  # The seed is left out too: donors are matched seed by seed (run_suite).
  identity = {k: v for k, v in config.identity().items()
              if k not in PRUNING_ONLY_FIELDS and k != "seed"}
  return repr(sorted(identity.items()))


def reuse_baseline(workdir: str, donors: Sequence[str]) -> Optional[str]:
  """Copies the first finished baseline/ of the `donors` (seed directories) into `workdir` when
  `workdir` has no finished one; returns the donor used (None: nothing copied). A partly trained
  baseline/ of `workdir` (an interrupted run) gives way to a donor's finished one, the model it
  would have become (training is deterministic per seed); without a donor it resumes."""
  import shutil  # pylint: disable=import-outside-toplevel
  from tf_rethink.train import trainer  # pylint: disable=import-outside-toplevel
  target = os.path.join(workdir, "baseline")
  if os.path.exists(os.path.join(target, trainer.RESULT_JSON)):
    return None
  for donor in donors:
    src = os.path.join(donor, "baseline")
    if os.path.exists(os.path.join(src, trainer.RESULT_JSON)):
      tmp = fs.partial_dir(target)
      shutil.copytree(src, tmp, dirs_exist_ok=True)
      fs.replace_dir(tmp, target)
      return donor
  return None


def format_duration(seconds: float) -> str:
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
  """Counts runs; `line(...)` is the one line printed after each run, with the ETA rule of the
  module docstring (runs reused from disk do not count towards the mean)."""

  def __init__(self, total: int, clock: Callable[[], float] = time.time):
    self.total, self.clock = total, clock
    self.start = clock()
    self.done = 0
    self.trained_times: List[float] = []

  def line(self, key: str, seed: int, seconds: Optional[float]) -> str:
    self.done += 1
    if seconds is None:
      what = "reused (finished on disk)"
    else:
      self.trained_times.append(seconds)
      what = f"trained in {format_duration(seconds)}"
    left = self.total - self.done
    if self.trained_times:
      eta = format_duration(left * sum(self.trained_times) / len(self.trained_times))
    else:
      eta = "unknown (no run trained yet)" if left else "0s"
    return (f"[{self.done}/{self.total}] {key} seed {seed}: {what}; elapsed "
            f"{format_duration(self.clock() - self.start)}, ETA {eta} for {left} runs")


def run_suite(s: Suite, root: str, overrides: Mapping[str, object], seeds: Sequence[int],
              only: Sequence[str] = (), run_pass: Optional[Callable] = None,
              log: Callable[[str], None] = print) -> List[str]:
  """Runs the experiments of `s` (or those in `only`) over `seeds` under `root`; returns the
  keys run. `run_pass(config)` trains one pass of one seed (default `experiment.run`)."""
  keys = [k for k in s.experiments if not only or k in only]
  missing = sorted(set(only) - set(s.experiments))
  if missing:
    raise UsageError(f"--only names {', '.join(missing)}, not in suite {s.name} "
                     f"({', '.join(s.experiments)})")
  if run_pass is None:
    from tf_rethink.run import experiment  # pylint: disable=import-outside-toplevel
    run_pass = experiment.run
  # Every experiment of the suite can donate, not only those of this invocation: a run split by
  # --only (or resumed) reuses a baseline another invocation finished in the same root.
  every = {}
  for k in s.experiments:
    try:
      every[k] = experiment_config(s, EXPERIMENTS[k], root, overrides, seeds)
    except UsageError:
      if k in keys:
        raise
  shares = {k: baseline_key(c) for k, c in every.items()}
  progress = Progress(len(keys) * len(seeds))
  for key in keys:
    e, config, share = EXPERIMENTS[key], every[key], shares[key]
    donors = [every[k].workdir for k in every if k != key and share and shares[k] == share]

    def one_seed(cfg, flags_text="", e=e, donors=donors):
      del flags_text
      if is_finished(cfg.workdir, e.passes):
        log(progress.line(e.key, cfg.seed, None))
        return fs.read_json(os.path.join(cfg.workdir, "results.json"))
      used = reuse_baseline(cfg.workdir, [repeats.seed_dir(d, cfg.seed) for d in donors])
      if used:
        log(f"{e.key} seed {cfg.seed}: baseline reused from {used} (same large-model training)")
      t0 = time.time()
      records = {}
      for regime in e.passes:
        records = run_pass(dataclasses.replace(cfg, regime=regime))
      log(progress.line(e.key, cfg.seed, time.time() - t0))
      return records

    try:
      repeats.run(config, one_seed)
    except Exception as err:  # pylint: disable=broad-except
      # One experiment failing (e.g. a method that cannot prune this model) must not stop the
      # others; the report shows the reason from FAILED.txt.
      fs.write_text(os.path.join(config.workdir, FAILED), f"{type(err).__name__}: {err}\n")
      log(f"{key}: FAILED ({type(err).__name__}: {err}); continuing with the next experiment")
  return keys
