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
(VGG, PreResNet BN2 / BN3), and the next conv's inputs follow. When that conv is coupled to others
(a residual stage of a ResNet: the convs summed by its adds), the group keeps a channel when ANY
of its members' BNs keeps it (the group's channel is one channel: removing it would remove it
from every member, so the channel survives if one BN says it matters) - a documented extension,
the reference slims only models whose residual streams pass through channel selections. A BN whose
channels cannot be decided (after an add or a concatenation without a selection, feeding the model
output) keeps all its channels; the plan notes it. The masked model (gamma and beta of pruned
channels zeroed, `apply_bn_masks`) computes exactly what the pruned model computes.

Scratch-E/B build from the saved plan (the selections keep their kept indices, as `main_E.py`
copies the `channel_selection` vectors); Scratch-B's epochs follow the plan's FLOPs per run.
"""
import math
import logging
from typing import Dict, Optional

import numpy as np

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.pruning.graph import view
from tf_rethink.pruning.groups import channel_groups
from tf_rethink.pruning.methods.base import Option, Pruner
from tf_rethink.pruning.methods.registry import METHODS
from tf_rethink.pruning.plan import Plan
from tf_rethink.pruning.rules import PRODUCER, RULES, Ctx
from tf_rethink.pruning.rules.normalization import BatchNormRule
from tf_rethink.pruning.select import rounded
from tf_rethink.pruning.surgery import Edit, rebuild
from tf_rethink.util.errors import UsageError

_log = logging.getLogger(__name__)
L = keras.layers
# Reference defaults (spec 2.4): lambda per model family and prune percent (CIFAR-10 rows).
DEFAULT_SPARSITY = (("vgg", 1e-4), ("", 1e-5))
DEFAULT_RATIO = (("vgg", 0.7), ("", 0.4))
MONITOR_FLOOR = 1e-2   # a channel with |gamma| <= this counts as switched off in TensorBoard


def _by_prefix(table, name):
  return next(v for prefix, v in table if name.startswith(prefix))


def slimming_bns(model) -> Dict[str, object]:
  """Key -> BatchNorm2d layer (4-D input, with a scale, one call) whose gammas enter the global
  threshold, in graph order."""
  graph = view(model)
  out = {}
  for key in graph.keys():
    sites = graph.calls_of(key)
    layer = sites[0].layer
    if (isinstance(RULES.lookup(layer), BatchNormRule) and getattr(layer, "scale", False)
        and len(graph.shape(sites[0].inputs[0])) == 4 and len(sites) == 1):
      out[key] = layer
  return out


def global_threshold(gammas, ratio: float) -> float:
  """Ascending sort of all |gamma|; the value at index int(total * ratio) (spec 6/D6)."""
  values = np.sort(np.abs(np.concatenate([np.ravel(g) for g in gammas])))
  return float(values[min(int(len(values) * ratio), len(values) - 1)])


def bn_masks(model, ratio: float, round_to: int = 1) -> Dict[str, np.ndarray]:
  """BN key -> boolean keep mask (|gamma| > threshold); an emptied layer keeps its top channel;
  with `round_to` each BN keeps its `select.rounded` count of largest |gamma| channels."""
  bns = slimming_bns(model)
  if not bns:
    raise UsageError(f"model {model.name!r} has no BatchNormalization for network slimming; use "
                     "a model with BN after its convs (vgg19_slim, preresnet164, densenet40)")
  gammas = {key: np.abs(np.asarray(bn.gamma)) for key, bn in bns.items()}
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
    k = rounded(int(mask.sum()), len(g), round_to)
    if k != int(mask.sum()):
      mask = np.zeros_like(mask)
      mask[np.argsort(-g, kind="stable")[:k]] = True
    masks[name] = mask
  return masks


def _selection_after(graph, bn_call) -> Optional[str]:
  """The key of the ChannelSelection / ChannelGather that alone reads the BN's output, if any."""
  consumers = graph.consumers(bn_call.outputs[0])
  if len(consumers) == 1 and type(consumers[0].layer).__name__ in ("ChannelSelection",
                                                                   "ChannelGather"):
    return consumers[0].key
  return None


def plan_from_masks(model, masks: Dict[str, np.ndarray], *, model_name: str = "",
                    variant: str = "") -> Plan:
  """The plan of `bn_masks` (see the module docstring for which layer each mask prunes)."""
  graph = view(model)
  report = channel_groups(graph)
  keep: Dict[str, tuple] = {}
  group_masks: Dict[tuple, np.ndarray] = {}
  notes = []
  for key in slimming_bns(model):
    mask = masks.get(key)
    if mask is None or mask.all():
      continue
    call = graph.calls_of(key)[0]
    selection = _selection_after(graph, call)
    if selection is not None:
      keep[selection] = tuple(int(i) for i in np.flatnonzero(mask))
      continue
    producer = graph.producer(call.inputs[0])
    ctx = Ctx(producer, graph, ()) if producer is not None else None
    rule = RULES.rule_for(producer, graph) if producer is not None else None
    if (producer is None or rule is None or rule.role_of(ctx) != PRODUCER
        or len(graph.consumers(producer.outputs[0])) != 1):
      notes.append(f"{key}: kept whole (its channels do not come straight from a conv)")
      continue
    group = report.group_of(producer.key)
    if not group.prunable:
      notes.append(f"{key}: kept whole ({(group.blocked_by or ('unprunable',))[0]})")
      continue
    prev = group_masks.get(group.members)
    group_masks[group.members] = mask if prev is None else (prev | mask)
  for members, mask in group_masks.items():
    if mask.all():
      continue
    keep.update({m: tuple(int(i) for i in np.flatnonzero(mask)) for m in members})
  plan = Plan(model=model_name, keep=keep, method="network_slimming", variant=variant,
              notes=tuple(notes)).stamped(model)
  plan.apply(model, copy_weights=False)   # fails here, not later, on a plan that does not fit
  return plan


def apply_bn_masks(model, masks: Dict[str, np.ndarray]) -> None:
  """Zeroes, in place, gamma AND beta of the pruned channels (the reference does both before
  testing the pruned model, so the masked model equals the physically pruned one)."""
  for key, bn in slimming_bns(model).items():
    removed = ~masks[key]
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
    gammas = {key: np.abs(np.asarray(bn.gamma)) for key, bn in bns.items()}
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
    sparsity: lambda of the L1 penalty (None: 1e-4 for VGG, 1e-5 otherwise; 0: off; negative or
      not finite: UsageError).
  """
  name = "network_slimming"
  citation = ("Liu et al., Learning Efficient Convolutional Networks through Network Slimming, "
              "ICCV 2017 (arXiv 1708.06519)")
  options = {"sparsity": Option(float, None, "L1 strength s on every BN gamma during the large "
                                "model's training (adds s*sign(gamma) to its gradient); unset: "
                                "the paper's value, 1e-4 for VGG, 1e-5 for PreResNet/DenseNet.")}

  def __init__(self, *, variant=None, ratio=None, sparsity: Optional[float] = None, **kwargs):
    if variant:
      raise UsageError("network_slimming has no variants; pass --prune_ratio (paper: 0.7 for "
                       "VGG-19 on CIFAR-10, 0.5 on CIFAR-100, 0.4 or 0.6 for PreResNet/DenseNet)")
    super().__init__(variant=None, ratio=ratio, **kwargs)
    if sparsity is not None and not (math.isfinite(float(sparsity)) and float(sparsity) >= 0):
      raise UsageError(f"--sparsity={sparsity} must be a finite number >= 0 (0: no penalty; "
                       "leave it unset for the paper's value)")
    self.sparsity = None if sparsity is None else float(sparsity)

  def sparsity_for(self, model) -> float:
    return self.sparsity if self.sparsity is not None else _by_prefix(DEFAULT_SPARSITY, model.name)

  def ratio_for(self, name: str) -> float:
    return self.ratio if self.ratio is not None else _by_prefix(DEFAULT_RATIO, name)

  def prepare(self, model):
    """A copy of `model` (same weights) whose BN2d gammas carry `L1(s)` regularizers."""
    s = self.sparsity_for(model)
    if s == 0:
      return model
    edits = {key: Edit(config={"gamma_regularizer": keras.regularizers.L1(s)})
             for key in slimming_bns(model)}
    return rebuild(model, edits)

  def callbacks(self, log_dir: Optional[str] = None):
    """`SlimmingMonitor` (gamma histograms, per-layer widths) when a log dir is given."""
    if log_dir is None:
      return []
    return [SlimmingMonitor(log_dir, self.ratio_for)]

  def select(self, model, data=None, *, model_name: str = "") -> Plan:
    """Global threshold over all BN |gamma| at the prune ratio; keep |gamma| > threshold."""
    del data
    name = model_name or model.name
    ratio = self.ratio_for(name)
    return plan_from_masks(model, bn_masks(model, ratio, self.round_to), model_name=name,
                           variant=self.describe(f"ratio={ratio:g}"))
