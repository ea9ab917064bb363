"""Sparse Structure Selection (Huang & Wang, "Data-Driven Sparse Structure Selection for Deep
Neural Networks", ECCV 2018, arXiv 1707.01213), spec 2.5.

Each residual block's branch output is multiplied by a learnable scalar lambda_b (`BlockScale`,
initialised to 1, inserted by `prepare` before the block's `..._add`). The large model trains
with an added strength * ||lambda||_1, optimised by a proximal step: after every optimizer step,
lambda <- sign(lambda) * max(|lambda| - lr * strength, 0) (`ProximalScales`; soft-thresholding,
the proximal-gradient form of the paper's modified Accelerated Proximal Gradient, without its
extra momentum term: a documented simplification). lambda also gets the coupled weight decay of
every parameter. A block whose lambda is exactly 0 contributes nothing, so it is removed: its
output becomes its shortcut (identity, option-A shortcut, or the projection conv + BN, which
stays, as in the reference's "b = False" stages); the ReLU after the add stays, so the removal
is exact. The plan lists the removed blocks (`PrunePlan.dropped_blocks`).

The paper's fixed architectures from ResNet-50 (spec 2.5; reference README, one (a, b) per stage:
a blocks remain, b = the stage's first block keeps its branch) are the variants `resnet41`,
`resnet32`, `resnet26` of `--model=resnet50`; they need no training to select and are what the
paper's Scratch-E/B train. Block discovery: a residual block is an `Add` layer named
`<block>_add` with two inputs, the branch first and the shortcut second (the zoo's ResNets).
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tf_rethink.pruning import blocks
from tf_rethink.pruning.graph import view
from tf_rethink.pruning.methods.base import Option, Pruner
from tf_rethink.pruning.methods.registry import METHODS
from tf_rethink.pruning.plan import Plan
from tf_rethink.pruning.rules import RULES, Pointwise
from tf_rethink.pruning.surgery import Edit, rebuild as rebuild_model
from tf_rethink.util.errors import UsageError

L = keras.layers
# (a, b) per stage of ResNet-50 (3, 4, 6, 3 blocks), spec 2.5 table.
FIXED = {
    "resnet41": ((0, False), (4, True), (6, True), (3, True)),
    "resnet32": ((1, False), (4, True), (4, True), (1, True)),
    "resnet26": ((0, False), (2, False), (5, False), (1, True)),
}
RESNET50_BLOCKS = (3, 4, 6, 3)


@keras.utils.register_keras_serializable(package="tf_rethink")
class BlockScale(keras.layers.Layer):
  """SSS's block scaling factor: output = lambda * input, lambda a learnable scalar.

  Args:
    initial_value: lambda at initialisation (1.0: the block starts as in the plain ResNet).
  """

  def __init__(self, initial_value: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    self.initial_value = float(initial_value)

  def build(self, input_shape):
    self.scale = self.add_weight(name="scale", shape=(), trainable=True,
                                 initializer=keras.initializers.Constant(self.initial_value))
    super().build(input_shape)

  def call(self, inputs):
    return inputs * tf.cast(self.scale, inputs.dtype)

  def get_prunable_weights(self):
    return []

  def get_config(self):
    config = super().get_config()
    config.update(initial_value=self.initial_value)
    return config


RULES.register_class(Pointwise(), BlockScale)   # a scalar scale: channels pass, 0 FLOPs


def residual_adds(model) -> Dict[str, str]:
  """Block name -> the key of its `<block>_add` layer (two inputs: branch, shortcut)."""
  return blocks.residual_adds(view(model))


def block_scales(model) -> Dict[str, BlockScale]:
  graph = view(model)
  return {key[:-len("_scale")]: graph.layer(key) for key in graph.keys()
          if isinstance(graph.layer(key), BlockScale)}


def rebuild(model, *, drop: Sequence[str] = (), insert_scales: bool = False):
  """A copy of `model` with the same weights, where each block in `drop` outputs its shortcut
  and, with `insert_scales`, every other block's branch goes through a `BlockScale` (named
  `<block>_scale`; blocks that already have one keep it)."""
  graph = view(model)
  edits = dict(blocks.block_edits(graph, drop=drop))
  if insert_scales:
    scaled = set(block_scales(model))
    for block, key in blocks.residual_adds(graph).items():
      if block not in drop and block not in scaled:
        edits[key] = Edit(before=lambda b=block: BlockScale(name=f"{b}_scale"))
  return rebuild_model(model, edits)


def fixed_dropped_blocks(variant: str, model) -> Tuple[str, ...]:
  """Blocks ResNet-50 loses for the paper's ResNet-41/32/26 (spec 2.5)."""
  adds = residual_adds(model)
  per_stage = [sum(1 for b in adds if b.startswith(f"stage{s}_")) for s in range(1, 5)]
  if tuple(per_stage) != RESNET50_BLOCKS or len(adds) != sum(RESNET50_BLOCKS):
    raise UsageError(f"sparse_structure_selection variant {variant} is defined for resnet50 "
                     f"(blocks {RESNET50_BLOCKS} per stage); model {model.name!r} has {per_stage}")
  dropped = []
  for s, ((a, first), n) in enumerate(zip(FIXED[variant], RESNET50_BLOCKS), start=1):
    kept = ([1] if first else []) + list(range(2, 2 + a - int(first)))
    dropped += [f"stage{s}_block{b}" for b in range(1, n + 1) if b not in kept]
  return tuple(dropped)


class ProximalScales(keras.callbacks.Callback):
  """After every optimizer step: lambda <- sign(lambda) max(|lambda| - lr * strength, 0); each
  epoch, TensorBoard gets the histogram of the lambdas and the number of nonzero ones."""

  def __init__(self, strength: float, log_dir: Optional[str] = None):
    super().__init__()
    self.strength, self.log_dir = float(strength), log_dir
    self._writer = None

  def on_train_batch_end(self, batch, logs=None):
    lr = float(keras.backend.get_value(self.model.optimizer.learning_rate))
    steps = int(keras.backend.get_value(getattr(self.model, "_steps_per_execution", None) or 1))
    t = lr * self.strength * steps
    for layer in block_scales(self.model).values():
      v = float(layer.scale.numpy())
      layer.scale.assign(np.sign(v) * max(abs(v) - t, 0.0))

  def on_epoch_end(self, epoch, logs=None):
    values = np.array([float(l.scale.numpy()) for l in block_scales(self.model).values()])
    if logs is not None:
      logs["sss_active_blocks"] = float((values != 0).sum())
    if self.log_dir and len(values):
      if self._writer is None:
        self._writer = tf.summary.create_file_writer(self.log_dir)
      with self._writer.as_default():
        tf.summary.histogram("block_scale/all", values, step=epoch)
        tf.summary.scalar("block_scale/active_blocks", int((values != 0).sum()), step=epoch)
        for name, layer in block_scales(self.model).items():
          tf.summary.scalar(f"block_scale/{name}", float(layer.scale.numpy()), step=epoch)
      self._writer.flush()


@METHODS.register("sparse_structure_selection")
class SparseStructureSelection(Pruner):
  """SSS: sparse block scales during training, removal of the zero-scale blocks.

  Args:
    variant: resnet41, resnet32 or resnet26 (the paper's fixed ResNet-50 architectures);
      default: the blocks the trained scales switched off.
    sss_strength: gamma of the L1 penalty on the block scales (proximal step).
  """
  name = "sparse_structure_selection"
  plan_kind = "blocks"
  citation = ("Huang & Wang, Data-Driven Sparse Structure Selection for Deep Neural Networks, "
              "ECCV 2018 (arXiv 1707.01213)")
  options = {"sss_strength": Option(float, 1e-2, "Sparse Structure Selection: gamma of the L1 "
                                    "penalty on the residual blocks' scales (soft-threshold of "
                                    "lr*gamma after every step).")}

  def __init__(self, *, variant=None, ratio=None, sss_strength: float = 1e-2, **kwargs):
    if ratio is not None:
      raise UsageError("sparse_structure_selection takes no --prune_ratio: blocks go when their "
                       "scale reaches 0 (raise --sss_strength) or pass --variant=resnet41/32/26")
    if variant is not None and str(variant).lower() not in FIXED:
      raise UsageError(f"sparse_structure_selection variant must be one of {sorted(FIXED)} (for "
                       f"resnet50), got {variant!r}")
    if float(sss_strength) < 0:
      raise UsageError(f"--sss_strength={sss_strength} must be >= 0")
    super().__init__(variant=None if variant is None else str(variant).lower(), ratio=None,
                     **kwargs)
    if self.round_to != 1:
      raise UsageError("--round_to rounds kept channel counts; sparse_structure_selection removes "
                       "whole blocks (leave --round_to at 1)")
    self.strength = float(sss_strength)

  def prepare(self, model):
    """The model with a `BlockScale` on every residual branch (same other weights)."""
    if not residual_adds(model):
      raise UsageError(f"model {model.name!r} has no residual blocks (`<block>_add`); SSS needs a "
                       "ResNet, e.g. resnet20/56/110 or resnet50")
    return rebuild(model, insert_scales=True)

  def callbacks(self, log_dir: Optional[str] = None):
    return [ProximalScales(self.strength, log_dir)]

  def select(self, model, data=None, *, model_name: str = "") -> Plan:
    """A fixed variant's blocks, or every block whose learned scale is exactly 0."""
    del data
    if self.variant:
      dropped = fixed_dropped_blocks(self.variant, model)
    else:
      dropped = tuple(b for b, l in block_scales(model).items() if float(l.scale.numpy()) == 0)
    if len(dropped) == len(residual_adds(model)):
      raise UsageError("every residual block's scale reached 0; lower --sss_strength")
    return Plan(model=model_name or model.name, dropped_blocks=dropped, method=self.name,
                variant=self.variant or f"strength={self.strength:g}").stamped(model)
