r"""Accuracy and speed of real training runs with and without each speed setting.

  python tools/speed_accuracy.py                                  # the README's table
  python tools/speed_accuracy.py --setting=mixed_precision=off --setting=mixed_precision=bf16
  python tools/speed_accuracy.py --quick                          # seconds; output format only

The speed settings (`tf_rethink/train/speed.py`) must not change what training computes beyond
rounding. For every `--setting` (comma-separated `name=value` speed flags of `tf_rethink.main`;
an empty string is the defaults) this runs the baseline regime of `tf_rethink.main` (L1-norm's
baseline: plain training of the large model, the trainer's path end to end: data pipeline,
strategy, SGD, schedule, evaluation) for `--seeds` seeds, each setting in its own process (thread
pools are fixed per process), and prints per setting:

  * the final and best test accuracy, mean +- sample std over the seeds;
  * the difference of the final accuracy from the first setting (the reference), in points;
  * steady-state training speed: the median epoch time without the first epoch (tracing), and
    img/s = training examples / that time (evaluation included, as a user sees it);

after the machine's line (CPU, ISA, load when the runs started).

Seeds are the same for every setting, so the runs differ only by the setting (and by float
rounding, which makes runs of one setting differ too: compare the difference with the std).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tf_rethink.run import config as config_lib  # noqa: E402  (TensorFlow-free)
from tf_rethink.util import machine  # noqa: E402  (TensorFlow-free)

DEFAULT_SETTINGS = ["mixed_precision=off", "", "mixed_precision=off,steps_per_execution=4",
                    "mixed_precision=off,intra_op_threads=1", "mixed_precision=off,inter_op_threads=1"]

_SETTINGS = flags.DEFINE_multi_string("setting", None, "Speed settings of one contestant, "
                                      "'name=value,...' ('' = the defaults); the first is the "
                                      f"reference. Default: {DEFAULT_SETTINGS}.")
_MODEL = flags.DEFINE_string("model", "vgg16", "Registered model.")
_WIDTH = flags.DEFINE_float("width_multiplier", 0.25, "Width multiplier.")
_DATASET = flags.DEFINE_string("dataset", "embedded", "Dataset (the shipped subset by default).")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Epochs per run (lr x0.1 at 50% and 75%).")
_SEEDS = flags.DEFINE_integer("seeds", 2, "Seeds per setting (1, 2, ...).")
_LIMIT = flags.DEFINE_integer("limit_train", None, "Use only the first N training images.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the runs go (default: a temporary "
                               "directory, deleted afterwards).")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny runs: checks the output, not accuracy or speed.")
_JSON = flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")


def parse_setting(text: str) -> dict:
  try:
    return config_lib.parse_speed_settings(text)
  except config_lib.UsageError as e:
    raise app.UsageError(f"--setting: {e}") from None


def run_setting(setting: dict, cfg: dict, workdir: str) -> dict:
  """Runs the baseline regime for every seed in a child process; returns the row."""
  cmd = [sys.executable, "-m", "tf_rethink.main", "--method=l1_norm", "--regime=baseline",
         f"--model={cfg['model']}", f"--dataset={cfg['dataset']}",
         f"--width_multiplier={cfg['width_multiplier']}", f"--epochs={cfg['epochs']}",
         f"--seeds={cfg['seeds']}", f"--workdir={workdir}", "--noexport", "--verbose=0",
         *[f"--{k}={v}" for k, v in setting.items()]]
  if cfg["limit_train"]:
    cmd.append(f"--limit_train={cfg['limit_train']}")
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if proc.returncode != 0:
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
  with open(os.path.join(workdir, "results_summary.json")) as f:
    summary = json.load(f)["regimes"]["baseline"]
  epoch_times = []
  for seed in summary["seeds"]:
    with open(os.path.join(workdir, f"seed_{seed}", "baseline", "train_result.json")) as f:
      times = json.load(f)["history"]["epoch_time"]
    epoch_times += times[1:] or times
  with open(os.path.join(workdir, f"seed_{summary['seeds'][0]}", "config.json")) as f:
    examples = _train_examples(json.load(f))  # the seeds share the data settings
  epoch_s = statistics.median(epoch_times)
  return {"setting": ",".join(f"{k}={v}" for k, v in setting.items()) or "(defaults)",
          "test_accuracy": summary["test_accuracy"], "best_test_accuracy":
          summary["best_test_accuracy"], "epoch_s": epoch_s, "img_per_s": examples / epoch_s}


def _train_examples(config: dict) -> int:
  from tf_rethink import data  # pylint: disable=import-outside-toplevel
  return data.num_examples(config["dataset"], "train", data_dir=config.get("data_dir"),
                           idx_dir=config.get("idx_dir"), limit=config.get("limit_train"))


def format_rows(rows, cfg) -> str:
  ref = rows[0]["test_accuracy"]["mean"]
  lines = [machine.format_machine(cfg["machine"]) if cfg.get("machine") else "machine: unknown",
           f"{cfg['model']} x{cfg['width_multiplier']:g} on {cfg['dataset']}, {cfg['epochs']} "
           f"epochs, {cfg['seeds']} seed(s) per setting; accuracy in % (mean +- std)",
           f"{'setting':<48} {'final acc':>14} {'vs first':>8} {'best acc':>14} {'epoch s':>8} "
           f"{'img/s':>7}"]
  for r in rows:
    t, b = r["test_accuracy"], r["best_test_accuracy"]
    lines.append(f"{r['setting']:<48} {t['mean']:6.2f} +- {t['std']:4.2f} "
                 f"{t['mean'] - ref:+8.2f} {b['mean']:6.2f} +- {b['std']:4.2f} "
                 f"{r['epoch_s']:8.1f} {r['img_per_s']:7.0f}")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  texts = _SETTINGS.value if _SETTINGS.value is not None else DEFAULT_SETTINGS
  settings = [parse_setting(t) for t in texts]
  cfg = dict(model=_MODEL.value, width_multiplier=_WIDTH.value, dataset=_DATASET.value,
             epochs=_EPOCHS.value, seeds=_SEEDS.value, limit_train=_LIMIT.value,
             machine=machine.describe())
  if _QUICK.value:
    cfg.update(width_multiplier=0.0625, epochs=2, seeds=1, limit_train=128)
  if cfg["seeds"] < 1 or cfg["epochs"] < 1:
    raise app.UsageError("--seeds and --epochs must be at least 1")
  with tempfile.TemporaryDirectory() as tmp:
    base = _WORKDIR.value or tmp
    rows = []
    for i, setting in enumerate(settings):
      rows.append(run_setting(setting, cfg, os.path.join(base, f"setting_{i}")))
      print(f"done: {rows[-1]['setting']}", file=sys.stderr, flush=True)
  print(format_rows(rows, cfg))
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump({"config": cfg, "rows": rows}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
