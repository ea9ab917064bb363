"""Weight gradients of small, wide bfloat16 convolutions as one matmul per kernel tap.

For a stride-1, undilated 2-D convolution y = conv(x, W) (NHWC, "same" or "valid" padding) the
weight gradient is, for every kernel tap (i, j),

    dW[i, j] = X_ij^T dY      X_ij: the (padded) input shifted by (i, j), as rows [M, C_in]
                              dY:   the output gradient, as rows            [M, C_out]

with M = batch x output positions: one [C_in, M] x [M, C_out] matmul per tap, the same sums as
TensorFlow's `Conv2DBackpropFilter` in another order. TensorFlow 2.21 computes dW with oneDNN's
convolution backward-weights primitive, which in bfloat16 on an AVX512-BF16 CPU without AMX
(`jit_bf16:avx512_core_bf16`) runs small feature maps with many channels far below oneDNN's
bfloat16 matmul (`brg_matmul`). dW of one 3x3 convolution, batch 64, C_in = C_out = C, time of the
per-tap matmuls over Conv2DBackpropFilter's (AMD EPYC, AVX512-BF16, no AMX, 2 threads; `python
tools/bench_conv_grad.py`, output in docs/bench/amd-epyc-avx512-2026-12-07/):

    output map      C = 64      128      256      512
    16x16            1.16      1.18     0.97     0.80
    8x8              0.90      0.90     0.78     0.65
    4x4              0.79      0.95     0.62     0.46
    2x2              0.69      0.61     0.59     0.26

Controls (same file): at batch 128 the 16x16 maps lose (1.41 at C = 128, 1.01 at 256) and 8x8
is level (0.99, 1.08; 0.43 at 512); at one thread 16x16 loses (1.21-1.29 at C <= 256); in
float32, whose backward-weights kernel is a different one, the taps lose at 4x4-8x8 (1.06-1.23 at
C <= 256). Two probes (scratch scripts, not kept): stride 2 lost (strided slices: 2.5x at
16x16 -> 8x8, C = 256), and in a whole model the extra ops of narrow layers cost more than they
save (ResNet-56, whose widest 8x8 layer is 64 x 64: 240 vs 287 img/s with 8x8 maps of any width
tapped). Hence the rule `pays`: stride 1, no
dilation, bfloat16, at most 64 output positions (8x8) and C_in x C_out >= 128 x 128. VGG-16's nine
layers at 8x8 and below qualify: 0.83x -> 0.98x of PyTorch channels-last + bf16 (`bench_train`,
this machine). On AMX CPUs this was not measured, so `--conv_weight_grad=auto` leaves it off there
(`speed.SpeedSettings.tap_matmul_weight_grads`); `on` uses it on any device.

Only the backward pass changes: the forward convolution and dX (`Conv2DBackpropInput`) are
TensorFlow's own, the variables and the saved model are untouched.
"""
import types
from typing import Sequence, Tuple

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

MAX_OUTPUT_POSITIONS = 64             # output height x width (8 x 8)
MIN_CHANNEL_PRODUCT = 128 * 128       # C_in x C_out
_PATCH_MARK = "_tf_rethink_tap_matmul_weight_grad"


def tap_matmul_weight_grad(x, dy, kernel_size: Sequence[int], padding: str):
  """dW [kh, kw, C_in, C_out] of a stride-1, undilated NHWC convolution with input `x` and output
  gradient `dy`, padding "SAME" or "VALID" (TensorFlow's: SAME puts the odd pad at the end), as
  one matmul per kernel tap. The spatial sizes of `dy` must be static."""
  kh, kw = kernel_size
  ho, wo, cout = dy.shape[1], dy.shape[2], dy.shape[3]
  cin = x.shape[3]
  if padding == "SAME":
    x = tf.pad(x, [[0, 0], [(kh - 1) // 2, kh - 1 - (kh - 1) // 2],
                   [(kw - 1) // 2, kw - 1 - (kw - 1) // 2], [0, 0]])
  elif padding != "VALID":
    raise ValueError(f"padding must be SAME or VALID, not {padding!r}")
  dy_rows = tf.reshape(dy, [-1, cout])
  taps = [tf.matmul(tf.reshape(x[:, i:i + ho, j:j + wo, :], [-1, cin]), dy_rows, transpose_a=True)
          for i in range(kh) for j in range(kw)]
  return tf.reshape(tf.stack(taps), [kh, kw, cin, cout])


def tap_matmul_conv2d(x, kernel, padding: str):
  """`tf.nn.conv2d(x, kernel, 1, padding)` whose kernel gradient is `tap_matmul_weight_grad`.

  `kernel` may be a variable (a Keras AutoCastVariable under mixed precision): it is read once,
  and its gradient flows back through that read (and cast) to the variable."""
  kernel = tf.convert_to_tensor(kernel)
  kernel_size = tuple(kernel.shape[:2])

  @tf.custom_gradient
  def conv(x, w):
    def grad(dy):
      dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                                          strides=[1, 1, 1, 1], padding=padding)
      return dx, tap_matmul_weight_grad(x, dy, kernel_size, padding)
    return tf.nn.conv2d(x, w, strides=1, padding=padding), grad

  return conv(x, kernel)


def pays(output_hw: Tuple[int, int], in_channels: int, out_channels: int, *,
         strides=(1, 1), dilation_rate=(1, 1), dtype="bfloat16") -> bool:
  """The measured rule (module docstring): per-tap matmuls beat TensorFlow's kernel for this
  convolution. Unknown (None) output sizes never pay."""
  h, w = output_hw
  return (tf.as_dtype(dtype) == tf.bfloat16 and tuple(strides) == (1, 1)
          and tuple(dilation_rate) == (1, 1) and h is not None and w is not None
          and h > 0 and w > 0 and h * w <= MAX_OUTPUT_POSITIONS and in_channels * out_channels >= MIN_CHANNEL_PRODUCT)


def _is_plain_conv2d(layer) -> bool:
  """A Keras 2-D convolution whose call goes through the base class's `convolution_op` (not a
  transposed, depthwise, separable or grouped one, nor a subclass with its own op)."""
  from tf_keras.src.layers.convolutional.base_conv import Conv  # pylint: disable=import-outside-toplevel
  return (isinstance(layer, keras.layers.Conv2D) and type(layer).call is Conv.call
          and type(layer).convolution_op is Conv.convolution_op and layer.groups == 1
          and layer.data_format == "channels_last" and layer.padding in ("same", "valid"))


def _convolution_op(layer, inputs, kernel):
  """The patched `layer.convolution_op`: per-tap weight gradients where `pays` for this call's
  static shapes, the layer's own op otherwise."""
  kh, kw = layer.kernel_size
  h, w = inputs.shape[1], inputs.shape[2]
  if layer.padding == "valid" and h is not None and w is not None:
    h, w = h - kh + 1, w - kw + 1
  if pays((h, w), inputs.shape[-1] or 0, kernel.shape[-1], strides=layer.strides,
          dilation_rate=layer.dilation_rate, dtype=kernel.dtype):
    return tap_matmul_conv2d(inputs, kernel, layer.padding.upper())
  return type(layer).convolution_op(layer, inputs, kernel)


def use_tap_matmul_weight_grads(model) -> Tuple[str, ...]:
  """Gives every plain Conv2D of `model` (nested models included) the per-tap weight gradient
  where `pays` for the shapes it is called with; returns the names of the layers where it pays at
  their built shapes. Call before the training step is traced (trainer.compile_model does)."""
  for layer in model.submodules:
    if _is_plain_conv2d(layer) and not getattr(layer, _PATCH_MARK, False):
      # Instance attributes, set past Keras's attribute tracking: no variable, no config changes.
      object.__setattr__(layer, "convolution_op", types.MethodType(_convolution_op, layer))
      object.__setattr__(layer, _PATCH_MARK, True)
  return tapped_layers(model)


def tapped_layers(model) -> Tuple[str, ...]:
  """Names of the layers of `model` whose weight gradient is per-tap matmuls at their built
  shapes (`use_tap_matmul_weight_grads` was applied and `pays`)."""
  return tuple(l.name for l in model.submodules
               if getattr(l, _PATCH_MARK, False) and _pays_at_built_shape(l))


def _pays_at_built_shape(layer) -> bool:
  try:
    out = layer.output_shape
  except (AttributeError, RuntimeError):   # not called yet, or called on several shapes
    return False
  if not layer.built or not isinstance(out, tuple) or len(out) != 4:
    return False
  return pays(out[1:3], layer.kernel.shape[2], layer.filters, strides=layer.strides,
              dilation_rate=layer.dilation_rate, dtype=layer.compute_dtype)
