"""Config validation: every user mistake is a one-line UsageError that names the fix."""
import pytest

from tf_rethink.run.config import Config
from tf_rethink.util.errors import UsageError


@pytest.mark.parametrize("kwargs,needle", [
    ({"prune_ratio": 1.5}, "outside (0, 1)"),
    ({"prune_ratio": 0.0}, "outside (0, 1)"),
    ({"epochs": 0}, "--epochs=0 must be a positive integer"),
    ({"batch_size": -3}, "--batch_size=-3"),
    ({"regime": "sideways"}, "choose one of: baseline, finetune, scratch_e, scratch_b, all"),
    ({"lr": 0.0}, "--lr=0.0 must be a finite number > 0"),
    ({"lr": float("inf")}, "--lr=inf must be a finite number > 0"),
    ({"momentum": -5.0}, "--momentum=-5.0 must be in [0, 1)"),
    ({"workdir": ""}, "--workdir is empty"),
    ({"scratch_b_cap": 0.5}, "must be >= 1"),
    ({"augment": "autoaugment"}, "--augment='autoaugment'; choose one of: paper, randaugment"),
])
def test_bad_values_raise_one_line(kwargs, needle):
  with pytest.raises(UsageError) as e:
    Config(**kwargs)
  assert needle in str(e.value)
  assert "\n" not in str(e.value)


def test_regimes_and_identity():
  assert Config(regime="all").regimes == ("baseline", "finetune", "scratch_e", "scratch_b")
  assert Config(regime="scratch_b").regimes == ("baseline", "scratch_b")
  a, b = Config(regime="finetune", workdir="/x"), Config(regime="scratch_e", workdir="/y")
  assert a.identity() == b.identity()
  assert Config(epochs=7).identity() != Config(epochs=8).identity()
  assert Config().identity()["augment"] == "paper"
  assert Config(augment="mixup").identity() != Config().identity()


def test_protocol_defaults_follow_the_dataset():
  cifar = Config(dataset="cifar10")
  assert (cifar.width_multiplier, cifar.epochs, cifar.batch_size, cifar.finetune_epochs) == (
      1.0, 160, 64, 40)
  imagenet = Config(dataset="imagenet2012")
  assert (imagenet.epochs, imagenet.batch_size, imagenet.finetune_epochs) == (90, 256, 20)
  small = Config()
  assert (small.width_multiplier, small.epochs, small.finetune_epochs) == (0.25, 6, None)
  assert Config(dataset="cifar10", epochs=3, width_multiplier=0.5).epochs == 3


def test_workdir_tilde_is_expanded():
  import os
  assert Config(workdir="~/x").workdir == os.path.join(os.path.expanduser("~"), "x")
