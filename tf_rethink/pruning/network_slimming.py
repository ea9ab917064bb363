"""Network Slimming (Liu et al., "Learning Efficient Convolutional Networks through Network
Slimming", ICCV 2017, arXiv 1708.06519), as the Rethinking reference runs it (spec 2.4).

Sparsity training (`cifar/network-slimming/main.py -sr --s`): every BatchNorm2d scale gamma gets
s * sign(gamma) added to its gradient, on top of weight decay and not averaged, i.e. a loss term
s * sum |gamma|. Here `prepare` gives every 4-D BatchNormalization `gamma_regularizer=L1(s)`,
whose gradient is exactly s * sign(gamma) (sign(0) = 0, as torch.sign). s defaults to the
reference's value per model: 1e-4 for VGG, 1e-5 for PreResNet and DenseNet (CIFAR).

Pruning (`vggprune.py`, `resprune.py`, `denseprune.py`): |gamma| of all BN2d layers in one vector,
sorted ascending; threshold = the value at index int(total * p); a channel survives iff
|gamma| > threshold (strict: the threshold element and any ties with it go). The reference
crashes when a layer loses every channel (issue #50); here such a layer keeps its largest-|gamma|
channel and a warning is logged (spec 7.6, a documented deviation).

What a BN's mask prunes: when the BN feeds a `ChannelSelection` (PreResNet BN1 and final BN,
every DenseNet BN) the plan keeps the masked channels at that selection (the BN stays full, the
consuming conv's input shrinks); otherwise the BN's producer conv loses those output channels
(VGG, PreResNet BN2 / BN3), and the next conv's inputs follow. The masked model (gamma and beta of
pruned channels zeroed, `apply_bn_masks`) computes exactly what the pruned model computes.

Scratch-E/B build from the saved plan (the selections keep their kept indices, as `main_E.py`
copies the `channel_selection` vectors); Scratch-B's epochs follow the plan's FLOPs per run.
"""
import logging
from typing import Dict, List, Optional

import numpy as np

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tensorflow as tf
import tf_keras as keras

from tf_rethink.util.errors import UsageError
from tf_rethink.models.channel_gather import ChannelGather
from tf_rethink.pruning import METHODS, groups, surgery
from tf_rethink.pruning import data_driven  # noqa: F401  (registers the ChannelGather rule)
from tf_rethink.pruning.base import Option, PrunePlan, Pruner

_log = logging.getLogger(__name__)
L = keras.layers
# Reference defaults (spec 2.4): lambda per model family and prune percent (CIFAR-10 rows).
DEFAULT_SPARSITY = (("vgg", 1e-4), ("", 1e-5))
DEFAULT_RATIO = (("vgg", 0.7), ("", 0.4))
MONITOR_FLOOR = 1e-2   # a channel with |gamma| <= this counts as switched off in TensorBoard


def _by_prefix(table, name):
  return next(v for prefix, v in table if name.startswith(prefix))


def slimming_bns(model) -> List[L.BatchNormalization]:
  """The BatchNorm2d layers (4-D input, with a scale) whose gammas enter the global threshold."""
  return [l for l in groups.layers_in_order(model)
          if isinstance(l, L.BatchNormalization) and l.scale and len(l.input_shape) == 4]


def global_threshold(gammas, ratio: float) -> float:
  """Ascending sort of all |gamma|; the value at index int(total * ratio) (spec 6/D6)."""
  values = np.sort(np.abs(np.concatenate([np.ravel(g) for g in gammas])))
  return float(values[min(int(len(values) * ratio), len(values) - 1)])


def bn_masks(model, ratio: float) -> Dict[str, np.ndarray]:
  """BN name -> boolean keep mask (|gamma| > threshold); an emptied layer keeps its top channel."""
  bns = slimming_bns(model)
  if not bns:
    raise UsageError(f"model {model.name!r} has no BatchNormalization for network slimming; use "
                     "a model with BN after its convs (vgg19_slim, preresnet164, densenet40)")
  gammas = {bn.name: np.abs(bn.gamma.numpy()) for bn in bns}
  threshold = global_threshold(list(gammas.values()), ratio)
  if all(np.all(g == threshold) for g in gammas.values()):
    _log.warning("network_slimming: every BN |gamma| equals %.4g (an untrained model, e.g. "
                 "--dry_run): the strict threshold keeps one channel per layer", threshold)
  masks = {}
  for name, g in gammas.items():
    mask = g > threshold
    if not mask.any():
      _log.warning("network_slimming: the global threshold %.4g removes every channel of %s; "
                   "keeping its largest-|gamma| channel (the reference crashes here, spec 7.6)",
                   threshold, name)
      mask[int(np.argmax(g))] = True
    masks[name] = mask
  return masks


def _consumers(layer):
  return [n.outbound_layer for n in layer._outbound_nodes]  # pylint: disable=protected-access


def decider(model, bn) -> Optional[str]:
  """The layer whose plan entry carries `bn`'s mask: the ChannelSelection right after it, or
  the conv/dense producing its input (None: neither, the BN cannot be pruned)."""
  consumers = [c for c in _consumers(bn) if c.name in {l.name for l in model.layers}]
  if len(consumers) == 1 and isinstance(consumers[0], ChannelGather):
    return consumers[0].name
  producer = bn._inbound_nodes[0].inbound_layers  # pylint: disable=protected-access
  if isinstance(producer, (L.Conv2D, L.Dense)) and surgery.RULES.prunable(producer):
    return producer.name
  return None


def plan_from_masks(model, masks: Dict[str, np.ndarray], *, model_name: str = "",
                    variant: str = "") -> PrunePlan:
  """The plan of `bn_masks`: each BN's kept channels at its `decider`."""
  keep = {}
  for bn in slimming_bns(model):
    mask = masks[bn.name]
    if mask.all():
      continue
    target = decider(model, bn)
    if target is None:
      raise UsageError(f"network_slimming cannot prune BN {bn.name!r}: it neither feeds a "
                       "ChannelSelection nor follows a conv; use vgg19_slim, preresnet164/110 or "
                       "densenet40")
    keep[target] = tuple(int(i) for i in np.flatnonzero(mask))
  plan = PrunePlan(model=model_name, keep=keep, method="network_slimming", variant=variant)
  groups.propagate(model, plan.keep, surgery.RULES)   # fails here, not later, on coupled convs
  return plan


def apply_bn_masks(model, masks: Dict[str, np.ndarray]) -> None:
  """Zeroes, in place, gamma AND beta of the pruned channels (the reference does both before
  testing the pruned model, so the masked model equals the physically pruned one)."""
  for bn in slimming_bns(model):
    removed = ~masks[bn.name]
    weights = bn.get_weights()
    for i in range(int(bn.scale) + int(bn.center)):
      weights[i] = np.where(removed, 0, weights[i]).astype(weights[i].dtype)
    bn.set_weights(weights)


class SlimmingMonitor(keras.callbacks.Callback):
  """TensorBoard during sparsity training, each epoch: a histogram of every BN's gammas (and of
  all of them), and each BN's current width, the channels with |gamma| above the global
  threshold at the prune ratio (`width/...`) and above 1e-2 (`alive/...`)."""

  def __init__(self, log_dir: str, ratio_for):
    super().__init__()
    self.log_dir, self.ratio_for = log_dir, ratio_for
    self._writer = None

  def on_epoch_end(self, epoch, logs=None):
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(self.log_dir)
    bns = slimming_bns(self.model)
    gammas = {bn.name: np.abs(bn.gamma.numpy()) for bn in bns}
    threshold = global_threshold(list(gammas.values()), self.ratio_for(self.model.name))
    with self._writer.as_default():
      tf.summary.histogram("gamma/all", np.concatenate(list(gammas.values())), step=epoch)
      tf.summary.scalar("threshold", threshold, step=epoch)
      for name, g in gammas.items():
        tf.summary.histogram(f"gamma/{name}", g, step=epoch)
        tf.summary.scalar(f"width/{name}", int((g > threshold).sum()), step=epoch)
        tf.summary.scalar(f"alive/{name}", int((g > MONITOR_FLOOR).sum()), step=epoch)
    self._writer.flush()

  def on_train_end(self, logs=None):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


@METHODS.register("network_slimming")
class NetworkSlimmingPruner(Pruner):
  """Network Slimming: L1 sparsity on BN scales, global |gamma| threshold, channel removal.

  Args:
    ratio: fraction of all BN channels to prune (default: 0.7 for VGG, 0.4 otherwise).
    sparsity: lambda of the L1 penalty (negative: 1e-4 for VGG, 1e-5 otherwise; 0: off).
  """
  name = "network_slimming"
  citation = ("Liu et al., Learning Efficient Convolutional Networks through Network Slimming, "
              "ICCV 2017 (arXiv 1708.06519)")
  options = {"sparsity": Option(float, -1.0, "L1 strength s on every BN gamma during the large "
                                "model's training (adds s*sign(gamma) to its gradient); negative: "
                                "the paper's value, 1e-4 for VGG, 1e-5 for PreResNet/DenseNet.")}

  def __init__(self, *, variant=None, ratio=None, sparsity: float = -1.0, **kwargs):
    if variant:
      raise UsageError("network_slimming has no variants; pass --prune_ratio (paper: 0.7 for "
                       "VGG-19 on CIFAR-10, 0.5 on CIFAR-100, 0.4 or 0.6 for PreResNet/DenseNet)")
    super().__init__(variant=None, ratio=ratio, **kwargs)
    self.sparsity = float(sparsity)

  def sparsity_for(self, model) -> float:
    return self.sparsity if self.sparsity >= 0 else _by_prefix(DEFAULT_SPARSITY, model.name)

  def ratio_for(self, name: str) -> float:
    return self.ratio if self.ratio is not None else _by_prefix(DEFAULT_RATIO, name)

  def prepare(self, model):
    """A copy of `model` (same weights) whose BN2d gammas carry `L1(s)` regularizers."""
    s = self.sparsity_for(model)
    if s == 0:
      return model
    names = {bn.name for bn in slimming_bns(model)}

    def clone(layer):
      config = layer.get_config()
      if layer.name in names:
        config["gamma_regularizer"] = keras.regularizers.L1(s)
      return type(layer).from_config(config)

    sparse = keras.models.clone_model(model, clone_function=clone)
    sparse.set_weights(model.get_weights())
    return sparse

  def callbacks(self, log_dir: Optional[str] = None):
    """`SlimmingMonitor` (gamma histograms, per-layer widths) when a log dir is given."""
    if log_dir is None:
      return []
    return [SlimmingMonitor(log_dir, self.ratio_for)]

  def select(self, model, data=None, *, model_name: str = "") -> PrunePlan:
    """Global threshold over all BN |gamma| at the prune ratio; keep |gamma| > threshold."""
    del data
    name = model_name or model.name
    ratio = self.ratio_for(name)
    return plan_from_masks(model, bn_masks(model, ratio), model_name=name,
                           variant=f"ratio={ratio:g}")
