"""Folds inference-mode BatchNormalization into the conv or dense layer that feeds it.

In inference BN is the per-channel affine map y = s * (x - mean) + beta with
s = gamma / sqrt(var + eps). When x = conv(w, input) + b and the conv feeds only that BN, then
y = conv(w * s, input) + (b - mean) * s + beta: the same function with one layer fewer, one pass
less over every activation and fewer variables, which is what an exported model should run
(`export.export_serving`). Training-mode BN (batch statistics) cannot be folded: the result is for
inference only.

Folded: a `Conv2D` (any groups: its output channels are the BN's), `DepthwiseConv2D` (output
channel i * multiplier + j scales kernel[..., i, j]) or `Dense` whose output goes only to a
`BatchNormalization` over the last axis. Anything else (BN after an add or a
concatenation, BN over another axis, layers shared between calls) is left as it is.
"""
from typing import Dict

import numpy as np

import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tf_keras as keras


_FOLDABLE = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def foldable_pairs(model) -> Dict[str, str]:
  """BN layer name -> the name of the Conv2D / DepthwiseConv2D / Dense layer folded into it."""
  pairs = {}
  for layer in model.layers:
    if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
      continue
    axis = layer.axis if isinstance(layer.axis, int) else (
        layer.axis[0] if len(layer.axis) == 1 else None)
    rank = len(layer.input_shape)
    if axis is None or axis % rank != rank - 1:
      continue
    producer = layer._inbound_nodes[0].inbound_layers
    if (isinstance(producer, _FOLDABLE)
        and not isinstance(producer, keras.layers.Conv2DTranspose)
        and len(producer._inbound_nodes) == 1 and len(producer._outbound_nodes) == 1):
      pairs[layer.name] = producer.name
  return pairs


def fold_batchnorm(model: keras.Model) -> keras.Model:
  """A copy of functional `model` with every foldable BN folded into its producer (module
  docstring); the BN layers become identities of the same name. Same outputs in inference."""
  pairs = foldable_pairs(model)
  producers = {p: bn for bn, p in pairs.items()}

  def clone(layer):
    if layer.name in pairs:
      return keras.layers.Activation("linear", name=layer.name)
    config = layer.get_config()
    if layer.name in producers:
      config["use_bias"] = True
    return layer.__class__.from_config(config)

  folded = keras.models.clone_model(model, clone_function=clone)
  for layer in model.layers:
    if layer.name in pairs:
      continue
    target = folded.get_layer(layer.name)
    if layer.name in producers:
      target.set_weights(_folded_weights(layer, model.get_layer(producers[layer.name])))
    else:
      target.set_weights(layer.get_weights())
  return folded


def _folded_weights(producer, bn):
  """[kernel * s, (bias - mean) * s + beta] with s = gamma / sqrt(var + eps) per out channel
  (a depthwise kernel [kh, kw, in, multiplier] holds out channel i * multiplier + j at [.., i, j])."""
  weights = producer.get_weights()
  kernel = weights[0].astype(np.float64)
  bias = weights[1].astype(np.float64) if producer.use_bias else np.zeros(kernel.shape[-1])
  mean = bn.moving_mean.numpy().astype(np.float64)
  gamma = bn.gamma.numpy().astype(np.float64) if bn.scale else np.ones_like(mean)
  beta = bn.beta.numpy().astype(np.float64) if bn.center else np.zeros_like(mean)
  scale = gamma / np.sqrt(bn.moving_variance.numpy().astype(np.float64) + bn.epsilon)
  dtype = weights[0].dtype
  kernel_scale = scale.reshape(kernel.shape[-2:]) if isinstance(
      producer, keras.layers.DepthwiseConv2D) else scale
  return [(kernel * kernel_scale).astype(dtype),
          ((bias - mean) * scale + beta).astype(dtype)]
