"""TensorBoard HParams: one session per regime run, so regimes (and seeds, and architectures of the
architecture search) can be compared side by side in the HParams dashboard.

Each finished regime run writes, once, into `<run_dir>/tb/hparams/` its hyper-parameters (method,
regime, model, dataset, variant, ratio, seed, epochs, lr, width multiplier, augmentation) and its final metrics
as scalars `hparams/test_accuracy`, `hparams/best_test_accuracy` (%), `hparams/params`,
`hparams/flops`. `tensorboard --logdir=<workdir>` then shows every regime's training curves
(`<regime>/tb/train`, `<regime>/tb/validation`) in one view and the sessions in the HParams tab.
"""
import os
from typing import Mapping

import tf_rethink  # noqa: F401
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

SUBDIR = os.path.join("tb", "hparams")
METRICS = ("test_accuracy", "best_test_accuracy", "params", "flops")


def config_hparams(config, regime: str, epochs: int, **extra) -> dict:
  """The hyper-parameters of one regime run of `config` (values: str, float, int or bool)."""
  out = {"method": config.method, "regime": regime, "model": config.model,
         "dataset": config.dataset, "variant": config.variant or "",
         "ratio": float(config.prune_ratio or 0.0), "seed": int(config.seed),
         "epochs": int(epochs), "lr": float(config.lr),
         "width_multiplier": float(config.width_multiplier), "augment": config.augment}
  out.update(extra)
  return out


def log_run(run_dir: str, hparams: Mapping[str, object], record: Mapping[str, float]) -> bool:
  """Writes the HParams session of a finished run (once); returns whether it wrote one."""
  logdir = os.path.join(run_dir, SUBDIR)
  if os.path.isdir(logdir) and os.listdir(logdir):
    return False
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    hp.hparams(dict(hparams), trial_id=os.path.normpath(run_dir))
    for name in METRICS:
      if name in record:
        tf.summary.scalar(f"hparams/{name}", float(record[name]), step=0)
  writer.flush()
  writer.close()
  return True
