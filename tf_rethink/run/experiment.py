"""One experiment of the paper: train the large model, prune it, run the regimes, compare.

Workdir layout (every file written atomically, every stage reused when the command is re-run):
  config.json, flags.cfg   the resolved settings (identity checked on re-run)
  baseline/                the large model's run (checkpoints, TensorBoard, final weights)
  plan.json                the pruned architecture as data (`pruning.plan.Plan`: kept channels,
                           removed blocks, weight masks, reconstructions; one file)
  <regime>/                one run directory per regime
  results.json             one record per regime
  export/<regime>/         SavedModel of the physically smaller model, verified on reload
  summary.json             (--dry_run) params/FLOPs of both architectures and the Scratch-B epochs

Under `--strategy=multi_worker` every worker runs this same code on the same (shared) workdir; the
chief alone writes config.json, results.json, plan.json, TensorBoard and the exports
(`strategy.is_chief`), and the plan reaches the other workers by a collective broadcast
(`strategy.broadcast_text`), so every worker trains the chief's architecture.
"""
import contextlib
import os
from typing import Optional

from tf_rethink import data as data_lib
from tf_rethink import export as export_lib
from tf_rethink import flops as flops_lib
from tf_rethink.run import hparams as hparams_lib
from tf_rethink.run import artifacts
from tf_rethink.run import lock
from tf_rethink.run import repeats
from tf_rethink.run import validate
from tf_rethink.util import fs
from tf_rethink.util import progress
from tf_rethink.run import results as results_lib
from tf_rethink.run.config import Config
from tf_rethink.util.errors import UsageError
from tf_rethink.models import MODELS
from tf_rethink.pruning.methods import METHODS
from tf_rethink.pruning.plan import Plan
from tf_rethink.train import regimes as regimes_lib
from tf_rethink.train import strategy as strategy_lib
from tf_rethink.train.strategy import make_strategy

_CAP_BY_FAMILY = {"imagenet": 2.0}


def build_full_fn(config: Config):
  """() -> the freshly initialized large model of `config` (its model, dataset and widths)."""
  info = _lookup(data_lib.info, config.dataset)
  spec = _lookup(MODELS.get, config.model)

  def build_full():
    return spec.build(input_shape=info.input_shape, num_classes=info.num_classes,
                      width_multiplier=config.width_multiplier)
  return build_full


def make_pruner(config: Config, **overrides):
  """The `--method` of `config` with its variant, ratio and own options (`overrides` win)."""
  kwargs = dict(variant=config.variant or None, ratio=config.prune_ratio, round_to=config.round_to,
                **config.method_options)
  kwargs.update(overrides)
  return _lookup(METHODS.get, config.method)(**kwargs)


def scratch_b_cap(config: Config) -> Optional[float]:
  """The Scratch-B epoch-ratio cap: --scratch_b_cap, else 2 on ImageNet (the reference), none."""
  if config.scratch_b_cap is not None:
    return config.scratch_b_cap
  return _CAP_BY_FAMILY.get(data_lib.info(config.dataset).family)


def make_context(config: Config, pruner, *, plan=None) -> "regimes_lib.Context":
  """What every regime of `config` needs: strategy, data pipelines, builders, run directories
  under `config.workdir`; `plan` when the pruned architecture is already known."""
  family = data_lib.info(config.dataset).family
  schedule_family = family if family in ("cifar", "imagenet") else "cifar"
  return regimes_lib.Context(
      config=config,
      lr_schedule=schedule_family if config.lr_schedule == "auto" else config.lr_schedule,
      strategy=make_strategy(config.strategy), build_full=build_full_fn(config),
      train_ds=_pipeline(config, "train"), test_ds=_pipeline(config, "test"),
      run_dir=lambda name: os.path.join(config.workdir, name), pruner=pruner,
      scratch_b_cap=scratch_b_cap(config), plan=plan)


def record_regime(ctx, name: str, result, sparse: bool, **hparams) -> dict:
  """The results.json record of a finished regime; logs its TensorBoard HParams session."""
  record = results_lib.record(name, result, _counts(result.model, sparse))
  if strategy_lib.is_chief(ctx.strategy):
    hparams_lib.log_run(ctx.run_dir(name), hparams_lib.config_hparams(
        ctx.config, name, result.epochs, **hparams), record)
  return record


def run(config: Config, flags_text: str = "") -> dict:
  """Runs `config`; returns the results (or the dry-run summary)."""
  if config.seed_list and not config.dry_run:  # one run per seed in workdir/seed_<n> (repeats.py)
    return repeats.run(config, run, flags_text)
  import tf_keras as keras
  regimes = [_lookup(regimes_lib.REGIMES.get, name) for name in config.regimes]
  pruner = make_pruner(config)
  if not config.dry_run:
    artifacts.check(config)            # every file a re-run would reuse, by its schema (cheap)
  full, plan = preflight(config, pruner)
  if config.dry_run:
    return _dry_run(config, full, plan, scratch_b_cap(config))
  keras.utils.set_random_seed(config.seed)
  ctx = make_context(config, pruner)   # data files and strategy: checked before the claim
  chief = strategy_lib.is_chief(ctx.strategy)
  # One writer per workdir: the chief holds the lock (the other workers of a multi_worker run
  # share the workdir and write nothing kept there).
  with (lock.hold(config.workdir) if chief else contextlib.nullcontext()):
    _claim_workdir(config, flags_text, write=chief)
    records = artifacts.load_records(config.workdir)
    final_model = None
    for name, regime in zip(config.regimes, regimes):
      if name != "baseline" and ctx.plan is None:
        _prune(ctx, config, records["baseline"])
      keras.utils.set_random_seed(config.seed)
      result = regime(ctx)
      if name == "baseline":
        ctx.baseline_weights = os.path.join(ctx.run_dir("baseline"), "final.weights.h5")
      records[name] = record_regime(ctx, name, result, ctx.sparse and name != "baseline")
      if chief:
        fs.write_json(os.path.join(config.workdir, "results.json"), records)
      final_model = result.model
    if chief:
      print(results_lib.table(records))
    if config.export and final_model is not None:   # every worker (collective reads), chief keeps
      with strategy_lib.chief_or_temp(ctx.strategy, config.workdir) as workdir:
        _export(config, ctx, final_model, workdir, report=chief)
  return records


def preflight(config: Config, pruner):
  """Everything checkable without data or training (`validate`): the method vs the model, the
  model vs the input size, TF_CONFIG, and the --dry_run path (both architectures built, the plan
  selected on the untrained model: an unknown variant fails here). Returns (full model, plan)."""
  info = _lookup(data_lib.info, config.dataset)
  spec = _lookup(MODELS.get, config.model)
  validate.check_method_model(config.method, config.model)
  validate.check_model_input(spec.family, config.model, info)
  validate.check_tf_config(config.strategy)
  full = validate.build_checked(build_full_fn(config))
  plan = pruner.select(full, None, model_name=config.model)
  validate.build_checked(lambda: plan.build_fresh(build_full_fn(config)))
  return full, plan


def _export(config: Config, ctx, model, workdir: str, report: bool = True) -> None:
  """Exports the large and the final pruned model, each as a verified trainable Keras SavedModel
  (`export/<name>` under `workdir`) and as a verified inference SavedModel
  (`export/serving/<name>`: BN folded, frozen; `export.export_serving`); prints the sizes. A finished export (export/sizes.json
  written last, every export directory ours) is not redone."""
  last = config.regimes[-1]
  names = ("baseline",) if last == "baseline" else ("baseline", last)   # --regime=baseline: one
  # Whether the exports are finished is read from the shared workdir by every worker alike (all
  # workers must export together or not at all: saving reads BatchNorm statistics collectively).
  def export_dirs(root):
    return [os.path.join(root, "export", *sub, n) for n in names for sub in ((), ("serving",))]
  if os.path.isfile(os.path.join(config.workdir, "export", "sizes.json")) and all(
      export_lib.ownership.is_export(d) for d in export_dirs(config.workdir)):
    if report:
      print(f"exports in {os.path.join(config.workdir, 'export')} are complete; not redone")
    return
  dirs = export_dirs(workdir)
  for d in dirs:   # refuse a user's path before any model is written
    export_lib.ownership.check_replaceable(d)
  sample = next(iter(ctx.test_ds))[0][:8]
  full = ctx.build_full()
  full.load_weights(ctx.baseline_weights)
  sizes, gzipped, serving = {}, {}, {}
  models = [("baseline", full)] + [(n, ctx.plan.export_model(model)) for n in names[1:]]
  with progress.progress("exporting SavedModels", total=2 * len(models), unit="models",
                         verbose=config.verbose if report else 0) as bar:
    for name, m in models:
      path = os.path.join(workdir, "export", name)
      sizes[name] = export_lib.export_and_verify(m, path, sample)["bytes"]
      gzipped[name] = export_lib.gzip_size(path)
      bar.update(1)
      serving[name] = export_lib.export_serving(
          m, os.path.join(workdir, "export", "serving", name), sample)["bytes"]
      bar.update(1)
  if report:
    if last == "baseline":
      sizes_text = (f"baseline {sizes['baseline']:,} bytes, gzipped {gzipped['baseline']:,}; "
                    f"inference-only (BN folded, frozen) in export/serving: "
                    f"{serving['baseline']:,} bytes")
    else:
      sizes_text = (f"baseline {sizes['baseline']:,} bytes, {last} {sizes[last]:,} bytes "
                    f"({sizes['baseline'] / sizes[last]:.2f}x smaller); gzipped "
                    f"{gzipped['baseline']:,} vs {gzipped[last]:,} bytes "
                    f"({gzipped['baseline'] / gzipped[last]:.2f}x smaller); inference-only (BN "
                    f"folded, frozen) in export/serving: {serving['baseline']:,} vs "
                    f"{serving[last]:,} bytes")
    print(f"exported SavedModels to {os.path.join(workdir, 'export')} (reloaded and verified): "
          + sizes_text)
  fs.write_json(os.path.join(workdir, "export", "sizes.json"),
                      {"bytes": sizes, "gzip_bytes": gzipped, "serving_bytes": serving})


def _prune(ctx, config: Config, baseline_record: dict) -> None:
  """Selects the pruned architecture once per workdir (plan.json) and records both FLOPs.

  Several workers: the chief selects (on the whole unsharded training pipeline, as one machine
  would) and writes plan.json; the others receive the plan's JSON from it (`broadcast_text`)."""
  path = os.path.join(config.workdir, "plan.json")
  chief = strategy_lib.is_chief(ctx.strategy)
  text = None
  if chief and os.path.exists(path):
    text = Plan.load(path).to_json()
  elif chief:
    trained = ctx.pruner.prepare(ctx.build_full())  # e.g. with the method's gates
    trained.load_weights(ctx.baseline_weights)
    # Data-driven selection samples the paper's training distribution, whatever --augment is.
    data = ctx.train_ds if config.augment == "paper" else _pipeline(config, "train", "paper")
    plan = ctx.pruner.select(trained, data, model_name=config.model)
    plan.save(path)
    text = plan.to_json()
  ctx.plan = Plan.from_json(strategy_lib.broadcast_text(ctx.strategy, text), source=path)
  if chief:
    print(ctx.plan.summary())
  ctx.flops_full = baseline_record["flops"]
  ctx.flops_pruned = _counts(ctx.plan.build_fresh(ctx.build_full), ctx.plan.sparse).flops


def _dry_run(config: Config, full, plan, cap) -> dict:
  """Both architectures (random weights: the plan is a shape preview only, not saved)."""
  pruned = plan.build_fresh(build_full_fn(config))
  full_counts, pruned_counts = _counts(full), _counts(pruned, plan.sparse)
  summary = {
      "full": _counts_dict(full_counts),
      "pruned": _counts_dict(pruned_counts),
      "scratch_b_epochs": regimes_lib.scratch_b_epochs(
          config.epochs, full_counts.flops, pruned_counts.flops, cap),
  }
  # Every regime's epochs and the training FLOPs they cost (study/budget.py states the rules).
  from tf_rethink.study import budget  # pylint: disable=import-outside-toplevel
  summary["regime_epochs"] = budget.regime_epochs(
      config.regimes, config.epochs, summary["scratch_b_epochs"], config.finetune_epochs,
      int(config.method_options.get("lottery_rounds", 1)))
  sizes = budget.examples(config.dataset, config.limit_train, config.limit_test)
  if sizes is not None:
    summary["training_flops"] = budget.training_flops(
        summary["regime_epochs"], full_counts.macs, pruned_counts.macs, plan.sparse, *sizes)
    summary["gpu_hours"] = budget.gpu_hours(summary["training_flops"]["total"])
  fs.write_json(os.path.join(config.workdir, "summary.json"), summary)
  print(results_lib.summary_text(summary))
  if sizes is not None:
    print(budget.text(summary["regime_epochs"], summary["training_flops"]))
  else:
    print("epochs per regime: " + ", ".join(f"{r} {e}" for r, e in summary["regime_epochs"].items()))
  return summary


def _lookup(get, name: str):
  """A registry lookup whose unknown-name KeyError becomes a one-line UsageError."""
  try:
    return get(name)
  except KeyError as e:
    raise UsageError(e.args[0]) from None


def _counts(model, sparse=False):
  return flops_lib.count(model, sparse=sparse)


def _counts_dict(counts) -> dict:
  return {"params": counts.params, "flops": counts.flops, "macs": counts.macs}


def _pipeline(config: Config, split: str, augment: Optional[str] = None):
  limit = config.limit_train if split == "train" else config.limit_test
  return data_lib.pipeline(config.dataset, split, batch_size=config.batch_size, seed=config.seed,
                           data_dir=config.data_dir, idx_dir=config.idx_dir, limit=limit,
                           augment=augment or config.augment)


def _claim_workdir(config: Config, flags_text: str, write: bool = True) -> None:
  """Records this experiment's settings (after `artifacts.check` refused a different one);
  `write`: the chief (the other workers of a multi_worker run only check)."""
  artifacts.check(config)   # again, now under the lock
  if not write:
    return
  fs.write_text(os.path.join(config.workdir, "config.json"), config.to_json() + "\n")
  if flags_text:
    fs.write_text(os.path.join(config.workdir, "flags.cfg"), flags_text)
