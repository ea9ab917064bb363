"""PyTorch-equivalent SGD with coupled L2 weight decay (paper spec 3.1, 3.5).

The reference trains every model with `torch.optim.SGD(params, lr, momentum=0.9,
weight_decay=wd)`, whose update for each parameter w with gradient g is

    d = g + wd * w                      (coupled L2, on EVERY parameter: BN gamma/beta, biases)
    v <- mu * v + d                     (v starts at 0, so the first step gives v = d)
    w <- w - lr * v                     (nesterov: w <- w - lr * (d + mu * v))

Keras' own SGD keeps lr inside the velocity (v <- mu*v - lr*g; w <- w + v), which differs from
PyTorch after every lr drop, and its `weight_decay=` is decoupled (applied to w outside the
gradient). This optimizer implements the PyTorch recurrence exactly.

Distribution: `tf_keras` sums the replicas' gradients (each replica's loss is already scaled by
1/num_replicas) before `update_step`, which then runs once per mirrored copy of the variable
with the same aggregated gradient. Adding `wd * w` inside `update_step` therefore adds it once,
exactly as on one device (tested in tests/train/test_optimizer.py on 2 logical CPUs).
"""
import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="tf_rethink")
class SGD(keras.optimizers.Optimizer):
  """`torch.optim.SGD` semantics: momentum buffer without lr, coupled L2 on all variables.

  Args:
    learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
    momentum: mu in [0, 1]; 0 means plain SGD (no buffer), as in PyTorch.
    nesterov: PyTorch's Nesterov variant (used by Soft Filter Pruning only).
    weight_decay: COUPLED L2 coefficient wd: wd * w is added to the gradient before momentum on
      every trainable variable (PyTorch's `weight_decay`). Stored as `coupled_weight_decay`;
      the base class' decoupled `weight_decay` stays None.
    jit_compile: XLA for the update step; the base class turns it off when there is no GPU.
    name, **kwargs: forwarded to `keras.optimizers.Optimizer` (clipnorm etc.).
  """

  def __init__(self, learning_rate=0.1, momentum=0.9, nesterov=False, weight_decay=0.0,
               jit_compile=True, name="SGD", **kwargs):
    kwargs.pop("coupled_weight_decay", None)
    super().__init__(name=name, weight_decay=None, jit_compile=jit_compile, **kwargs)
    if not 0.0 <= float(momentum) <= 1.0:
      raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    if float(weight_decay) < 0.0:
      raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if nesterov and float(momentum) <= 0.0:
      raise ValueError("nesterov=True needs momentum > 0 (as in PyTorch)")
    self._learning_rate = self._build_learning_rate(learning_rate)
    self.momentum = float(momentum)
    self.nesterov = bool(nesterov)
    self.coupled_weight_decay = float(weight_decay)

  def build(self, var_list):
    """Creates one momentum buffer (zeros) per variable, like PyTorch's lazily created buffer."""
    super().build(var_list)
    if getattr(self, "_built", False):
      return
    self.momentums = [self.add_variable_from_reference(model_variable=v, variable_name="m")
                      for v in var_list]
    self._built = True

  def update_step(self, gradient, variable):
    """One PyTorch SGD step for `variable` (gradient already aggregated over replicas)."""
    if isinstance(gradient, tf.IndexedSlices):
      # PyTorch applies the (dense) weight decay to every row; so do we.
      gradient = tf.convert_to_tensor(gradient)
    dtype = variable.dtype
    lr = tf.cast(self.learning_rate, dtype)
    d = gradient
    if self.coupled_weight_decay:
      d = d + tf.cast(self.coupled_weight_decay, dtype) * variable
    if self.momentum == 0.0:
      variable.assign_sub(lr * d)
      return
    m = self.momentums[self._index_dict[self._var_key(variable)]]
    # One fused kernel (TF's ApplyMomentum is PyTorch's recurrence: m <- mu*m + d, then
    # w <- w - lr*m, or w <- w - lr*(d + mu*m) with use_nesterov) instead of about ten ops per
    # variable: a third of the optimizer's memory traffic and of its op launches.
    tf.raw_ops.ResourceApplyMomentum(var=variable.handle, accum=m.handle, lr=lr, grad=d,
                                     momentum=tf.cast(self.momentum, dtype),
                                     use_locking=False, use_nesterov=self.nesterov)

  def get_config(self):
    config = super().get_config()
    config.update({
        "learning_rate": self._serialize_hyperparameter(self._learning_rate),
        "momentum": self.momentum,
        "nesterov": self.nesterov,
        "weight_decay": self.coupled_weight_decay,
    })
    return config
