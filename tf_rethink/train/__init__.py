"""Training: strategies, PyTorch-equivalent SGD, step lr schedule, resumable `train`."""
from tf_rethink.train.optimizer import SGD
from tf_rethink.train.schedules import StepLR, StepSchedule, lr_at_epoch
from tf_rethink.train.strategy import STRATEGIES, make_strategy
from tf_rethink.train.trainer import TrainResult, TrainSpec, train
from tf_rethink.train.registry import REGIMES
from tf_rethink.train import regimes, lottery, uniform  # noqa: F401  (register the regimes)

__all__ = ["REGIMES", "SGD", "STRATEGIES", "StepLR", "StepSchedule", "TrainResult", "TrainSpec",
           "lr_at_epoch", "make_strategy", "train"]
