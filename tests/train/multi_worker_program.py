"""One worker of the multi-worker tests: trains tiny models with `trainer.train` (a 64-example
deterministic, unshuffled set, global batch 16) in `--run_dir/<model>`, one after the other.

  python -m tests.train.multi_worker_program --strategy=multi_worker --run_dir=DIR  (TF_CONFIG set)
  python -m tests.train.multi_worker_program --strategy=reference --run_dir=DIR

Models: "bn" (`tests.helpers.tiny_convnet`: conv, BatchNorm, dense) and "nobn" (the same without
BatchNorm). `reference` is one process with 2 logical CPUs: "bn" trains under a MirroredStrategy
of 2 replicas (the replica count, per-replica batch and per-replica BatchNorm of 2 one-replica
workers), "nobn" under OneDeviceStrategy (one machine, the whole global batch on one device).
`--batch_sleep` slows every step (the fault test kills a worker in the middle of an epoch).
"""
import argparse
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

GLOBAL_BATCH, EXAMPLES, EPOCHS = 16, 64, 3


def data():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  x = rng.normal(size=(EXAMPLES, 8, 8, 3)).astype("float32")
  y = rng.integers(0, 3, EXAMPLES).astype("int32")
  x[np.arange(EXAMPLES), :, :, y] += 1.0
  ds = tf.data.Dataset.from_tensor_slices((x, y))
  return ds.batch(GLOBAL_BATCH), ds.take(EXAMPLES // 2).batch(GLOBAL_BATCH)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--strategy", required=True)
  parser.add_argument("--run_dir", required=True)
  parser.add_argument("--epochs", type=int, default=EPOCHS)
  parser.add_argument("--worker_timeout", type=float, default=60)
  parser.add_argument("--models", default="bn,nobn")
  parser.add_argument("--batch_sleep", type=float, default=0.0)
  args = parser.parse_args()
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_rethink.train import strategy as strategy_lib  # pylint: disable=import-outside-toplevel

  def threads():
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if args.strategy == "reference":
      cpu = tf.config.list_physical_devices("CPU")[0]
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

  if args.strategy == "reference":
    threads()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategies = {"bn": strategy_lib.make_strategy("mirrored", devices=cpus),
                  "nobn": strategy_lib.make_strategy("one_device")}
  else:
    strategy = strategy_lib.start(args.strategy, worker_timeout=args.worker_timeout,
                                  before=threads)
    strategies = {"bn": strategy, "nobn": strategy}
  import time  # pylint: disable=import-outside-toplevel
  import tf_keras as keras  # pylint: disable=import-outside-toplevel
  from tests.helpers import tiny_convnet  # pylint: disable=import-outside-toplevel
  from tf_rethink.train.trainer import TrainSpec, train  # pylint: disable=import-outside-toplevel
  builders = {"bn": tiny_convnet, "nobn": tiny_convnet_without_bn}
  sleep = [keras.callbacks.LambdaCallback(
      on_train_batch_end=lambda *_: time.sleep(args.batch_sleep))] if args.batch_sleep else []
  for name in args.models.split(","):
    keras.utils.set_random_seed(1)
    train_ds, test_ds = data()
    spec = TrainSpec(epochs=args.epochs, lr=0.1, batch_size=GLOBAL_BATCH, weight_decay=1e-3,
                     milestones=(2,))
    result = train(builders[name], train_ds, test_ds, spec, strategy=strategies[name],
                   run_dir=os.path.join(args.run_dir, name), verbose=2, extra_callbacks=sleep)
    print(f"{name}: replicas {strategies[name].num_replicas_in_sync} losses "
          f"{result.history['loss']}", flush=True)


def tiny_convnet_without_bn():
  """`tests.helpers.tiny_convnet` without its BatchNorm (seeded init)."""
  import tf_keras as keras  # pylint: disable=import-outside-toplevel
  init = keras.initializers.HeNormal(seed=3)
  x = inp = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer=init, name="conv1")(x)
  x = keras.layers.ReLU(name="conv1_relu")(x)
  x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
  x = keras.layers.Dense(3, kernel_initializer=init, name="logits")(x)
  return keras.Model(inp, x)


if __name__ == "__main__":
  main()
