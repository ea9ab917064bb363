"""HParams: one session per finished run dir, with the hyper-parameters and the final metrics."""
import glob
import os

import tf_rethink  # noqa: F401
import tensorflow as tf
from tensorboard.plugins.hparams import plugin_data_pb2

from tf_rethink.run import hparams
from tf_rethink.run.config import Config


def test_log_run_writes_session_once(tmp_path):
  config = Config(method="l1_norm", model="resnet56", prune_ratio=0.3, seed=4, augment="cutmix")
  hp = hparams.config_hparams(config, "scratch_b", 243)
  assert hp["ratio"] == 0.3 and hp["seed"] == 4 and hp["epochs"] == 243
  record = {"test_accuracy": 91.5, "best_test_accuracy": 92.0, "params": 100, "flops": 7}
  run_dir = str(tmp_path / "scratch_b")
  assert hparams.log_run(run_dir, hp, record)
  assert not hparams.log_run(run_dir, hp, record)
  files = glob.glob(os.path.join(run_dir, "tb", "hparams", "events.*"))
  assert len(files) == 1
  scalars, session = {}, None
  for event in tf.compat.v1.train.summary_iterator(files[0]):
    for v in event.summary.value:
      if v.metadata.plugin_data.plugin_name == "hparams":
        data = plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
        if data.HasField("session_start_info"):
          session = data.session_start_info
      elif v.tag.startswith("hparams/"):
        scalars[v.tag] = float(tf.make_ndarray(v.tensor))
  assert session.hparams["method"].string_value == "l1_norm"
  assert session.hparams["regime"].string_value == "scratch_b"
  assert session.hparams["epochs"].number_value == 243
  assert session.hparams["augment"].string_value == "cutmix"
  assert scalars == {"hparams/test_accuracy": 91.5, "hparams/best_test_accuracy": 92.0,
                     "hparams/params": 100.0, "hparams/flops": 7.0}
