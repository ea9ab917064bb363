"""Soft Filter Pruning (He et al., "Soft Filter Pruning for Accelerating Deep Convolutional
Neural Networks", IJCAI 2018), as the Rethinking reference runs it (spec 2.6;
`cifar/soft-filter-pruning/pruning_cifar10_resnet.py`).

Before epoch 0 and after every epoch (`--epoch_prune 1`), in EVERY conv layer (the stem and both
convs of each block: parameters 0, 3, ..., layer_end of the reference), the int(N * (1 - rate))
filters with the smallest L2 norm (over kh, kw, C_in) are set to zero. Nothing else is frozen:
zeroed filters keep receiving gradients and may grow back, and the mask is recomputed from the
current weights each time ("soft"). `--sfp_rate=0.7` keeps 70%: 16 -> 12, 32 -> 23, 64 -> 45 (4, 9
and 19 filters zeroed). Ties in the norm are broken by index order (stable sort). As in the
reference, the BN after a zeroed filter is untouched (its beta still leaks, spec 7.5).

After training the final masks are removed physically ("hard"). Deviation, documented: the
channel engine can only remove channels that are not coupled through a residual addition or the
option-A shortcut, so the plan removes the zeroed filters of each block's first conv
(`stage{s}_block{b}_conv1`) and leaves the stem and the convs feeding the additions at full width
(their zeroed filters stay in the fine-tuned model as zero weights and count as dense FLOPs). The
reference keeps the whole model in mask form instead. Models: the CIFAR ResNets (`resnet20`,
`resnet32`, `resnet56`, `resnet110`; the reference's DownsampleA shortcut subsamples where ours
averages, spec 2.6 vs 4.2), or any model with convs.
"""
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
from tf_rethink.pruning.select import rounded
from tf_rethink.util.errors import UsageError

L = keras.layers


def sfp_convs(model):
  """Every Conv2D of the model, in topological order (the reference's selected parameters)."""
  graph = view(model)
  return [graph.layer(k) for k in graph.keys() if type(graph.layer(k)) is L.Conv2D]


def filter_norms(kernel) -> np.ndarray:
  """L2 norm of each output filter of a (kh, kw, C_in, N) kernel."""
  k = np.asarray(kernel)
  return np.sqrt(np.sum(np.square(k.reshape(-1, k.shape[-1])), axis=0))


def pruned_count(n: int, prune_fraction: float) -> int:
  return int(n * prune_fraction)


def lowest_filters(kernel, prune_fraction: float) -> np.ndarray:
  """Indices of the int(N * prune_fraction) smallest-L2-norm filters (stable ties)."""
  norms = filter_norms(kernel)
  return np.sort(np.argsort(norms, kind="stable")[:pruned_count(len(norms), prune_fraction)])


def soft_prune(model, prune_fraction: float) -> Dict[str, np.ndarray]:
  """Zeroes, in place, the lowest-norm filters of every conv; returns name -> zeroed indices."""
  zeroed = {}
  for conv in sfp_convs(model):
    idx = lowest_filters(conv.kernel.numpy(), prune_fraction)
    if len(idx):
      kernel = conv.kernel.numpy()
      kernel[..., idx] = 0
      conv.kernel.assign(kernel)
      if conv.use_bias:
        bias = conv.bias.numpy()
        bias[idx] = 0
        conv.bias.assign(bias)
    zeroed[conv.name] = idx
  return zeroed


class SoftFilterPruning(keras.callbacks.Callback):
  """Zeroes the lowest-norm filters of every conv before training and after every epoch; logs
  the number of zeroed filters that grew back to nonzero during each epoch (TensorBoard)."""

  def __init__(self, prune_fraction: float, log_dir: Optional[str] = None):
    super().__init__()
    self.prune_fraction = prune_fraction
    self.log_dir = log_dir
    self.zeroed: Dict[str, np.ndarray] = {}

  def on_train_begin(self, logs=None):
    self.zeroed = soft_prune(self.model, self.prune_fraction)

  def on_epoch_end(self, epoch, logs=None):
    regrown = sum(int((filter_norms(self.model.get_layer(n).kernel.numpy())[idx] > 0).sum())
                  for n, idx in self.zeroed.items())
    self.zeroed = soft_prune(self.model, self.prune_fraction)
    if logs is not None:
      logs["sfp_regrown_filters"] = float(regrown)
    if self.log_dir:
      with tf.summary.create_file_writer(self.log_dir).as_default():
        tf.summary.scalar("sfp/regrown_filters", regrown, step=epoch)


@METHODS.register("soft_filter_pruning")
class SoftFilterPruner(Pruner):
  """Soft Filter Pruning: soft zeroing every epoch during the large model's training, then
  physical removal of the final zero filters (uncoupled convs, see the module docstring).

  Args:
    ratio: fraction of filters zeroed per layer (overrides `sfp_rate`: int(N * ratio) go).
    sfp_rate: fraction KEPT, the reference's `--rate` (0.7: int(N * 0.3) filters zeroed).
  """
  name = "soft_filter_pruning"
  citation = ("He et al., Soft Filter Pruning for Accelerating Deep Convolutional Neural "
              "Networks, IJCAI 2018 (arXiv 1808.06866)")
  options = {"sfp_rate": Option(float, 0.7, "Soft Filter Pruning: fraction of filters KEPT per "
                                "conv (the reference's --rate; 0.7 zeroes int(N*0.3)); "
                                "--prune_ratio, if given, is the fraction zeroed instead.")}

  def __init__(self, *, variant=None, ratio=None, sfp_rate: float = 0.7, **kwargs):
    if variant:
      raise UsageError("soft_filter_pruning has no variants; pass --sfp_rate (kept fraction, "
                       "e.g. 0.7) or --prune_ratio (zeroed fraction)")
    if not 0.0 < float(sfp_rate) <= 1.0:
      raise UsageError(f"--sfp_rate={sfp_rate} must be in (0, 1]: the fraction of filters kept")
    super().__init__(variant=None, ratio=ratio, **kwargs)
    self.sfp_rate = float(sfp_rate)

  @property
  def prune_fraction(self) -> float:
    return self.ratio if self.ratio is not None else 1.0 - self.sfp_rate

  def callbacks(self, log_dir: Optional[str] = None):
    return [SoftFilterPruning(self.prune_fraction, log_dir)]

  def select(self, model, data=None, *, model_name: str = "") -> Plan:
    """The final mask: in each uncoupled conv, drop the int(N * fraction) lowest-norm filters
    (after SFP training these are exactly its zero filters)."""
    del data
    keep = {}
    graph = view(model)
    convs = {l.name for l in sfp_convs(model)}
    for name in [n for n in channel_groups(graph).uncoupled() if n in convs]:
      kernel = graph.layer(name).kernel.numpy()
      order = np.argsort(filter_norms(kernel), kind="stable")
      n = kernel.shape[-1]
      kept = rounded(n - pruned_count(n, self.prune_fraction), n, self.round_to)
      drop = set(order[:n - kept].tolist())
      if drop:
        keep[name] = tuple(i for i in range(kernel.shape[-1]) if i not in drop)
    if not keep:
      raise UsageError(f"soft_filter_pruning found no conv of {model.name!r} to remove filters "
                       "from; raise --prune_ratio or lower --sfp_rate")
    variant = self.describe(f"ratio={self.ratio:g}" if self.ratio is not None else
                            f"rate={self.sfp_rate:g}")
    return Plan(model=model_name or model.name, keep=keep, method=self.name,
                variant=variant).stamped(model)
