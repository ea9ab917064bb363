"""Each full-scale flagfile's expected GPU wall time, written into its header.

For every flags/**/*.cfg except flags/common/ and smoke files: the flagfile's settings (nested
--flagfile lines first, `tables.parse_flagfile`) become a Config with --dry_run, `experiment.run`
builds both architectures and computes the epochs and training FLOPs of every regime
(`study/budget.py`), and the header line `# Expected GPU wall time: ...` is replaced (or inserted
after the first comment line). Rewrites are atomic; a flagfile whose settings fail is reported and
left unchanged.
"""
import dataclasses
import os
import typing
from typing import Dict, List, Tuple

from tf_rethink.study import budget
from tf_rethink.study.tables import parse_flagfile
from tf_rethink.util import fs

HEADER = "# Expected GPU wall time:"
# Methods whose pruned architecture is learned while the large model trains: a dry run cannot know
# it, so every pruned regime is counted at the large model's cost and Scratch-B at the large
# model's budget (its definition): an upper bound.
TRAINED_PLAN_METHODS = ("network_slimming", "sparse_structure_selection", "soft_filter_pruning")
SKIP_DIRS = ("common", "arch_search")   # arch_search: flagfiles of tools/arch_search.py
_RUN_ONLY = {"workdir", "dry_run", "verbose", "export"}


def flagfiles(flags_dir: str) -> List[str]:
  out = []
  for dirpath, _, files in os.walk(flags_dir):
    if os.path.basename(dirpath) in SKIP_DIRS:
      continue
    out += [os.path.join(dirpath, f) for f in sorted(files)
            if f.endswith(".cfg") and "smoke" not in f]
  return sorted(out)


def _convert(kind, value: str):
  base = [t for t in typing.get_args(kind) if t is not type(None)] or [kind]
  kind = base[0]
  if kind is bool:
    return value.lower() in ("1", "true", "yes")
  if kind in (int, float):
    return kind(value)
  return value


def config_of(path: str, repo_root: str, workdir: str):
  """The dry-run Config of a flagfile."""
  from tf_rethink.pruning import METHODS  # pylint: disable=import-outside-toplevel
  from tf_rethink.run.config import Config  # pylint: disable=import-outside-toplevel
  values = parse_flagfile(path, repo_root)
  fields = {f.name: f for f in dataclasses.fields(Config)}
  kwargs, options = {}, {}
  method = values.get("method", Config.method)
  method_options = METHODS.get(method).options
  for name, value in values.items():
    if name in _RUN_ONLY:
      continue
    if name in fields:
      kwargs[name] = _convert(fields[name].type, value)
    elif name in method_options:
      options[name] = _convert(method_options[name].kind, value)
  return Config(method_options=options, dry_run=True, workdir=workdir, verbose=0, **kwargs)


def upper_bound(summary: Dict, config) -> Dict:
  """The summary of a TRAINED_PLAN_METHODS flagfile: pruned regimes at the large model's MACs,
  Scratch-B at the large model's budget (E epochs of the large model)."""
  epochs = dict(summary["regime_epochs"])
  sizes = budget.examples(config.dataset, config.limit_train, config.limit_test)
  costed = dict(epochs, **({"scratch_b": config.epochs} if "scratch_b" in epochs else {}))
  flops = budget.training_flops(costed, summary["full"]["macs"], summary["full"]["macs"], False,
                                *sizes)
  if "scratch_b" in epochs:
    epochs["scratch_b"] = "E_B (from the trained plan)"
  return dict(summary, regime_epochs=epochs, training_flops=flops,
              gpu_hours=budget.gpu_hours(flops["total"]), bound=True)


def header_line(summary: Dict) -> str:
  epochs = ", ".join(f"{r} {e}" for r, e in summary["regime_epochs"].items())
  bound = (" at most (pruned regimes counted at the large model's cost, Scratch-B at its budget)"
           if summary.get("bound") else "")
  if summary.get("untrained_mask"):
    bound += " (Scratch-B epochs from a global mask of untrained weights: approximate)"
  return (f"{HEADER} ~{summary['gpu_hours']:.1f} GPU-hours{bound} for {epochs} epochs "
          f"({summary['training_flops']['total']:.2e} training FLOPs at an assumed sustained "
          f"{budget.GPU_TFLOPS:g} TFLOP/s, one V100-class GPU; data loading not counted; "
          "rules: tf_rethink/study/budget.py)")


def with_header(text: str, line: str) -> str:
  """`text` with its HEADER line replaced by `line`, or `line` inserted after the first line."""
  lines = text.splitlines()
  kept = [x for x in lines if not x.startswith(HEADER)]
  at = 1 if kept and kept[0].startswith("#") else 0
  return "\n".join(kept[:at] + [line] + kept[at:]) + "\n"


def update(flags_dir: str, workdir: str, log=print) -> List[Tuple[str, str]]:
  """Rewrites every flagfile's header; returns (path, header line or error)."""
  from tf_rethink.run import experiment  # pylint: disable=import-outside-toplevel
  repo_root = os.path.dirname(os.path.abspath(flags_dir))
  done = []
  for path in flagfiles(flags_dir):
    try:
      config = config_of(path, repo_root, workdir)
      summary = experiment.run(config)
      if config.method in TRAINED_PLAN_METHODS and "gpu_hours" in summary:
        summary = upper_bound(summary, config)
      if config.method == "magnitude":
        summary = dict(summary, untrained_mask=True)
    except Exception as err:  # pylint: disable=broad-except
      log(f"{path}: skipped ({type(err).__name__}: {err})")
      done.append((path, f"error: {err}"))
      continue
    if "gpu_hours" not in summary:
      log(f"{path}: skipped (dataset size unknown)")
      continue
    line = header_line(summary)
    with open(path) as f:
      text = f.read()
    fs.write_text(path, with_header(text, line))
    log(f"{os.path.relpath(path, repo_root)}: {line[len(HEADER):].strip()}")
    done.append((path, line))
  return done
