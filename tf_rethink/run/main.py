r"""Runs one experiment of "Rethinking the Value of Network Pruning" (Liu et al., ICLR 2019).

  python -m tf_rethink.main --method=l1_norm --regime=scratch_b
  python -m tf_rethink.main --flagfile=flags/l1_norm/vgg16_cifar10_all.cfg
  python -m tf_rethink.main --method=l1_norm --model=vgg16 --dataset=cifar10 --dry_run

The defaults run a small experiment on the embedded Fashion-MNIST subset in a few minutes on a CPU;
the flagfiles under flags/ set the paper's full-scale settings. A mistake in the command prints one
line that says how to fix it and exits with status 2.
"""
import os
import sys
from typing import Callable

# A program of its own: tf.keras is tf_keras here (TF-MOT, the regimes), before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tf_rethink  # noqa: E402,F401
from absl import app
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from tf_rethink.util import quiet
from tf_rethink.run.config import (AUGMENTATIONS, CONV_WEIGHT_GRAD_CHOICES, Config, JIT_CHOICES,
                                   LR_SCHEDULES, PRECISIONS, REGIME_CHOICES)
from tf_rethink.pruning import select
from tf_rethink.util import errors
from tf_rethink.util.errors import UsageError, fail, parse_flags

_D = Config()
flags.DEFINE_string("method", _D.method, "Pruning method (registry name), e.g. l1_norm.")
flags.DEFINE_string("regime", _D.regime, f"One of: {', '.join(REGIME_CHOICES)}.")
flags.DEFINE_string("model", _D.model, "Model (registry name), e.g. vgg16, resnet56.")
flags.DEFINE_string("dataset", _D.dataset,
                    "embedded (shipped Fashion-MNIST subset), fashion_mnist, cifar10, cifar100, "
                    "imagenet2012.")
flags.DEFINE_string("variant", _D.variant, "The method's predefined target, e.g. A or B (L1-norm); "
                    "empty: the method's default for the model.")
flags.DEFINE_float("prune_ratio", _D.prune_ratio, "Fraction of channels to remove in every prunable "
                   "layer, instead of a predefined variant.")
flags.DEFINE_string("round_to", str(_D.round_to), "Round every kept channel count to a multiple "
                    "of this (the channel block CPU/GPU kernels compute in; 1: the paper's counts; "
                    "auto: this machine's, 16 with AVX-512, 8 with AVX2 or a GPU).")
flags.DEFINE_float("width_multiplier", None, "Scales every layer width of the model (1.0 = the "
                   "paper's widths; default 1.0 on CIFAR/ImageNet, 0.25 on Fashion-MNIST data).")
flags.DEFINE_integer("epochs", None, "Epochs of the large model and of Scratch-E (default: 160 "
                     "CIFAR, 90 ImageNet, 6 Fashion-MNIST data).")
flags.DEFINE_integer("batch_size", None, "Global batch size (default: 64; 256 on ImageNet).")
flags.DEFINE_float("lr", _D.lr, "Initial learning rate.")
flags.DEFINE_float("weight_decay", _D.weight_decay, "Coupled L2 on every parameter (PyTorch SGD).")
flags.DEFINE_float("momentum", _D.momentum, "SGD momentum.")
flags.DEFINE_string("lr_schedule", _D.lr_schedule, f"One of {', '.join(LR_SCHEDULES)}: cifar drops "
                    "x0.1 at 50%/75% of the epochs, imagenet every third; auto follows the dataset.")
flags.DEFINE_integer("finetune_epochs", None, "Fine-tune epochs (default: 40 CIFAR, 20 ImageNet, "
                     "E/4 otherwise).")
flags.DEFINE_float("finetune_lr", _D.finetune_lr, "Fine-tune lr (default lr/100; paper: 0.001).")
flags.DEFINE_float("scratch_b_cap", _D.scratch_b_cap, "Cap on the Scratch-B epoch ratio (default 2 "
                   "on ImageNet as the reference, none otherwise; 0 = no cap).")
flags.DEFINE_enum("augment", _D.augment, AUGMENTATIONS, "Training augmentation: paper (the "
                  "reference's crop + flip); randaugment (keras-cv), mixup, cutmix on top of it; "
                  "keras_cv_crop: keras-cv RandomCropAndResize as the ImageNet crop.")
flags.DEFINE_integer("seed", _D.seed, "Random seed (initialization, data order, augmentation).")
flags.DEFINE_string("seeds", _D.seeds, "Repeat the experiment over seeds: a count N (--seed .. "
                    "--seed+N-1) or a list 1,2,3; runs go to workdir/seed_<n>, mean +- std to "
                    "workdir/results_summary.json.")
flags.DEFINE_integer("limit_train", _D.limit_train, "Use only the first N training images.")
flags.DEFINE_integer("limit_test", _D.limit_test, "Use only the first N test images.")
flags.DEFINE_string("data_dir", _D.data_dir, "tensorflow-datasets data directory (prepared data).")
flags.DEFINE_string("idx_dir", _D.idx_dir, "Directory with the Fashion-MNIST IDX .gz files.")
flags.DEFINE_string("workdir", _D.workdir, "Where the runs, plan, results and exports go.")
flags.DEFINE_string("strategy", _D.strategy, "mirrored, one_device or multi_worker (TF_CONFIG; "
                    "docs/multi_worker.md).")
flags.DEFINE_float("worker_timeout", _D.worker_timeout, "multi_worker: seconds to wait at start "
                   "for every task of the cluster before failing with the missing ones named.")
flags.DEFINE_bool("dry_run", _D.dry_run, "Build both architectures, print params/FLOPs and the "
                  "Scratch-B epochs, write workdir/summary.json; no data, no training.")
flags.DEFINE_integer("verbose", _D.verbose, "Training output: 0 silent, 1 progress bar, 2 one "
                     "line per epoch; default: 1 on a terminal, 2 when the output is a file/pipe.")
flags.DEFINE_bool("export", _D.export, "Export the last regime's model as a verified SavedModel.")
flags.DEFINE_integer("steps_per_execution", _D.steps_per_execution, "Training steps per tf.function "
                     "call (speed only; measured default, see README Performance).")
flags.DEFINE_enum("mixed_precision", _D.mixed_precision, PRECISIONS, "auto: float16 + loss scaling "
                  "on a GPU, bfloat16 on a CPU with AVX512_BF16 or AMX, float32 on other CPUs; "
                  "bf16: bfloat16 compute; fp16: float16; off: float32.")
flags.DEFINE_enum("jit_compile", _D.jit_compile, JIT_CHOICES, "XLA; auto: on a GPU only.")
flags.DEFINE_integer("intra_op_threads", _D.intra_op_threads, "TensorFlow intra-op threads (0: one "
                     "per core).")
flags.DEFINE_integer("inter_op_threads", _D.inter_op_threads, "TensorFlow inter-op threads (0: one "
                     "per core).")
flags.DEFINE_enum("conv_weight_grad", _D.conv_weight_grad, CONV_WEIGHT_GRAD_CHOICES, "Weight "
                  "gradients of small, wide bfloat16 convs as one matmul per kernel tap (speed only; "
                  "train/conv_weight_grad.py); auto: on a CPU running oneDNN without AMX.")

FLAGS = flags.FLAGS
_FLAG_DEFINERS = {float: flags.DEFINE_float, int: flags.DEFINE_integer, str: flags.DEFINE_string,
                  bool: flags.DEFINE_bool}


def _define_method_flags() -> dict:
  """One flag per method option (pruning/base.py `Option`); returns flag name -> owning methods."""
  quiet.import_tensorflow()
  from tf_rethink.pruning import METHODS  # pylint: disable=import-outside-toplevel
  owners = {}
  for method in METHODS.names():
    for name, option in METHODS.get(method).options.items():
      if name not in owners:
        _FLAG_DEFINERS[option.kind](name, option.default, f"[{method}] {option.help}")
      owners.setdefault(name, []).append(method)
  return owners


_METHOD_FLAGS = _define_method_flags()


def config_from_flags() -> Config:
  """The Config of the parsed flags (the method's own options included)."""
  fields = {name: FLAGS[name].value for name in Config.__dataclass_fields__
            if name != "method_options"}
  fields["round_to"] = select.resolve_round_to(fields["round_to"])   # "auto" -> this machine's
  options = {name: FLAGS[name].value for name, owners in _METHOD_FLAGS.items()
             if FLAGS.method in owners}
  for name, owners in _METHOD_FLAGS.items():
    if FLAGS[name].present and FLAGS.method not in owners:
      raise UsageError(f"--{name} is an option of {', '.join(owners)}, not of "
                       f"--method={FLAGS.method}; drop it or pass --method={owners[0]}")
  return Config(method_options=options, **fields)


def entry(body: Callable[[Config], object]) -> Callable[[list], None]:
  """An absl main for a command taking these flags: builds the Config, applies the thread
  settings (and makes a multi_worker strategy), then calls `body(config)`; a UsageError anywhere
  is one line and exit status 2; a lost multi_worker peer one line and status 1."""
  def main(argv):
    # Keras's informational warnings (e.g. about optimizer slots when reloading a finished run)
    # are noise to users here; errors still show. Our own progress goes to stdout.
    logging.set_verbosity(logging.ERROR)
    tf = quiet.import_tensorflow()
    tf.get_logger().setLevel("ERROR")
    if len(argv) > 1:
      fail(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    try:
      config = config_from_flags()
      from tf_rethink.train import speed  # thread pools: before anything runs on TensorFlow
      from tf_rethink.train import strategy
      settings = speed.from_config(config)
      # multi_worker configures collective ops as the runtime starts: made here, first thing
      # (make_strategy returns this object to the experiment); the others are made on demand.
      if config.strategy == "multi_worker" and not config.dry_run:
        strategy.start(config.strategy, worker_timeout=config.worker_timeout,
                       before=lambda: speed.set_threads(settings))
      else:
        speed.set_threads(settings, restart=True)
      try:
        body(config)
      except (tf.errors.UnavailableError, tf.errors.AbortedError) as e:
        if config.strategy != "multi_worker":
          raise
        _peer_lost(e)
    except UsageError as e:
      fail(str(e))
    except OSError as e:  # a user path that cannot be read or written (ENOSPC, EROFS, ENOTDIR)
      fail(errors.describe_os_error(e))
    except Exception as e:  # TensorFlow's file errors (checkpoints, SavedModels) are OpErrors
      message = errors.describe_file_op_error(e)
      if message is None:
        raise
      fail(message)
  return main


def _peer_lost(error) -> None:
  """A worker of the cluster stopped (TensorFlow aborts the collectives of the others when its
  heartbeats stop): one line and exit status 1; the job resumes when every worker is relaunched."""
  why = " ".join(str(getattr(error, "message", error)).split())
  start = why.find("Collective ops is aborted by:")
  why = why[start if start >= 0 else 0:][:240]
  print(f"error: a worker of the cluster stopped ({type(error).__name__}: {why}); relaunch every "
        "worker with the same command to resume from the last epoch checkpoint", file=sys.stderr)
  sys.exit(1)


def _experiment(config: Config) -> None:
  from tf_rethink.run import experiment  # imports TensorFlow; after flag checks for a fast error
  experiment.run(config, flags_text=FLAGS.flags_into_string())


main = entry(_experiment)


def cli():
  """The `tf-rethink` console command and `python -m tf_rethink.main`."""
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  cli()
