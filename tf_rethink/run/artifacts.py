"""A workdir's files checked before they are trusted (experiment.run calls `check` before it
claims the workdir or trains anything).

Rule: every file a re-run would reuse is opened and checked by its schema: config.json (a JSON
object; the same experiment), results.json (one record per regime with every field of
`run.results.record`, typed), plan.json (`Plan.load`), and per regime run directory
train_spec.json, history.json (a list of per-epoch objects of numbers), train_result.json, the
weights files (opened with h5py, every array read) and the per-epoch checkpoint (every tensor
read). A damaged file is one UsageError naming it and the command that redoes just its stage;
a path of the wrong kind (a file where a directory belongs, or the reverse) is one too.
"""
import json
import numbers
import os
import shlex

from tf_rethink.util.errors import UsageError

RECORD_FIELDS = {"regime": str, "test_accuracy": numbers.Real, "best_test_accuracy": numbers.Real,
                 "params": numbers.Integral, "flops": numbers.Integral,
                 "macs": numbers.Integral, "epochs": numbers.Integral,
                 "wall_time_s": numbers.Real}
RESULT_FIELDS = {"test_accuracy": numbers.Real, "best_test_accuracy": numbers.Real,
                 "history": dict, "wall_time": numbers.Real, "epochs": numbers.Integral}
_WEIGHTS = ("final.weights.h5", "init.weights.h5")


def _redo(path: str, why: str, stage_dir: str) -> UsageError:
  return UsageError(f"{path} is damaged ({why}); to redo just that stage: rm -r "
                    f"{shlex.quote(stage_dir)} and re-run the same command")


def _read_json(path: str, stage_dir: str):
  if os.path.isdir(path):
    raise UsageError(f"{path} is a directory where a JSON file belongs; remove it and re-run")
  try:
    with open(path, "rb") as f:
      return json.loads(f.read().decode("utf-8"))
  except (ValueError, UnicodeDecodeError) as e:
    raise _redo(path, f"not JSON: {type(e).__name__}", stage_dir) from None


def _is(value, kind) -> bool:
  return isinstance(value, kind) and not isinstance(value, bool)


def check_records(records, path: str) -> dict:
  """results.json: {regime: record}, every record with `RECORD_FIELDS` of their types."""
  hint = "delete it and re-run the same command (finished stages are reused, not retrained)"
  if not isinstance(records, dict):
    raise UsageError(f"{path} is damaged (not a JSON object of records); {hint}")
  for name, r in records.items():
    if not isinstance(r, dict):
      raise UsageError(f"{path} is damaged (record {name!r} is not an object); {hint}")
    for field, kind in RECORD_FIELDS.items():
      if field not in r:
        raise UsageError(f"{path} is damaged (record {name!r} lacks {field!r}); {hint}")
      if not _is(r[field], kind) or (kind is numbers.Real and r[field] != r[field]):
        raise UsageError(f"{path} is damaged (record {name!r} has {field}={r[field]!r}); {hint}")
    if r["regime"] != name:
      raise UsageError(f"{path} is damaged (record {name!r} names regime {r['regime']!r}); {hint}")
  return records


def load_records(workdir: str) -> dict:
  """results.json of `workdir`, checked ({} when there is none)."""
  path = os.path.join(workdir, "results.json")
  if not os.path.lexists(path):
    return {}
  hint = "delete it and re-run the same command (finished stages are reused, not retrained)"
  if os.path.isdir(path):
    raise UsageError(f"{path} is a directory where a JSON file belongs; {hint}")
  try:
    with open(path, "rb") as f:
      records = json.loads(f.read().decode("utf-8"))
  except (ValueError, UnicodeDecodeError):
    raise UsageError(f"{path} is corrupt (not JSON); {hint}") from None
  return check_records(records, path)


def check_h5(path: str, stage_dir: str) -> None:
  """Opens a Keras weights file and reads every array."""
  import h5py  # pylint: disable=import-outside-toplevel
  if os.path.isdir(path):
    raise UsageError(f"{path} is a directory where a weights file belongs; remove it and re-run")
  try:
    with h5py.File(path, "r") as f:
      def read(_, obj):
        if isinstance(obj, h5py.Dataset):
          obj[()]  # pylint: disable=pointless-statement
      f.visititems(read)
  except (OSError, ValueError, KeyError, RuntimeError) as e:
    raise _redo(path, f"unreadable weights: {type(e).__name__}", stage_dir) from None


def check_checkpoint(backup_dir: str) -> None:
  """The per-epoch checkpoint of `train.callbacks.Backup`: every tensor readable."""
  from tf_rethink.train import callbacks  # pylint: disable=import-outside-toplevel
  callbacks.check_checkpoint(backup_dir)


def check_run_dir(run_dir: str) -> None:
  """One regime's run directory (train/trainer.py's layout)."""
  if not os.path.lexists(run_dir):
    return
  if not os.path.isdir(run_dir):
    raise UsageError(f"{run_dir} is a file where a run directory belongs; remove it and re-run")
  spec = os.path.join(run_dir, "train_spec.json")
  if os.path.lexists(spec) and not isinstance(_read_json(spec, run_dir), dict):
    raise _redo(spec, "not a JSON object", run_dir)
  history = os.path.join(run_dir, "history.json")
  if os.path.lexists(history):
    epochs = _read_json(history, run_dir)
    if not (isinstance(epochs, list) and all(
        isinstance(e, dict) and all(_is(v, numbers.Real) for v in e.values()) for e in epochs)):
      raise _redo(history, "not a list of per-epoch objects of numbers", run_dir)
  result = os.path.join(run_dir, "train_result.json")
  if os.path.lexists(result):
    r = _read_json(result, run_dir)
    if not isinstance(r, dict):
      raise _redo(result, "not a JSON object", run_dir)
    for field, kind in RESULT_FIELDS.items():
      if not _is(r.get(field), kind):
        raise _redo(result, f"{field!r} missing or not a {kind.__name__}", run_dir)
  for name in _WEIGHTS:
    path = os.path.join(run_dir, name)
    if os.path.lexists(path):
      check_h5(path, run_dir)
  check_checkpoint(os.path.join(run_dir, "backup"))


def check(config) -> None:
  """Checks `config.workdir`'s files (module docstring); nothing is written."""
  workdir = config.workdir
  if not os.path.lexists(workdir):
    parent = os.path.dirname(os.path.abspath(workdir))
    while parent and not os.path.exists(parent):
      parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
      raise UsageError(f"--workdir={workdir} lies under {parent}, which is a file, not a directory")
    return
  if not os.path.isdir(workdir):
    raise UsageError(f"--workdir={workdir} is a file, not a directory; pass another --workdir")
  path = os.path.join(workdir, "config.json")
  if os.path.lexists(path):
    previous = _read_json(path, workdir)
    if not isinstance(previous, dict):
      raise UsageError(f"{path} is damaged (not a JSON object); delete {workdir} to start this "
                       "experiment afresh")
    mine = config.identity()
    differing = sorted(k for k in mine if previous.get(k, mine[k]) != mine[k])
    if differing:
      diff = ", ".join(f"{k}={previous.get(k)!r} (now {mine[k]!r})" for k in differing)
      raise UsageError(f"--workdir={workdir} holds a different experiment ({diff}); "
                       "pass a new --workdir or delete that one")
  load_records(workdir)
  plan = os.path.join(workdir, "plan.json")
  if os.path.lexists(plan):
    from tf_rethink.pruning.plan import Plan  # pylint: disable=import-outside-toplevel
    if os.path.isdir(plan):
      raise UsageError(f"{plan} is a directory where the plan file belongs; remove it and re-run")
    Plan.load(plan)
  for name in config.regimes:
    check_run_dir(os.path.join(workdir, name))
  export = os.path.join(workdir, "export")
  if os.path.lexists(export) and not os.path.isdir(export):
    raise UsageError(f"{export} is a file where the exports' directory belongs; move it away and "
                     "re-run")
  if config.export:
    from tf_rethink.export import ownership  # pylint: disable=import-outside-toplevel
    for name in ("baseline", config.regimes[-1]):
      for path in (os.path.join(export, name), os.path.join(export, "serving", name)):
        ownership.check_replaceable(path)
