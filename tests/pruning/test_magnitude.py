"""Magnitude pruning: the global threshold rule, mask plans, fixed-mask training, scratch init,
sparse FLOPs, export; the lottery regime's starting weights."""
import os
import types

import numpy as np
import pytest

import tf_rethink  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from tests.helpers import randomize, vgg_like
from tf_rethink import export as export_lib
from tf_rethink import flops
from tf_rethink.util.errors import UsageError
from tf_rethink.pruning import METHODS, weight_masks as masks
from tf_rethink.pruning.methods.magnitude import sparsity_report
from tf_rethink.pruning.plan import Plan
from tf_rethink.train import regimes
from tf_rethink.train.strategy import make_strategy
from tf_rethink.train.trainer import TrainSpec, train


def _trained(seed=0):
  return randomize(vgg_like(), seed)


def _data(n=32):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, 8, 8, 3)).astype("float32")
  y = rng.integers(0, 5, n).astype("int32")
  ds = tf.data.Dataset.from_tensor_slices((x, y))
  return ds.batch(8), ds.take(16).batch(16)


def _conv_total(model):
  return sum(k.size for k in masks.conv_kernels(model).values())


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.8, 0.95])
def test_global_threshold_prunes_ratio_of_conv_weights(ratio):
  model = _trained()
  plan = METHODS.get("magnitude")(ratio=ratio).select(model, model_name="vgg_like")
  total = _conv_total(model)
  pruned = sum(int((~m).sum()) for m in plan.masks.values())
  # The reference keeps |w| > the value at index int(total * p): that element goes too.
  assert pruned - int(total * ratio) in (0, 1)
  assert abs(plan.global_sparsity() - ratio) <= 1.0 / total + 1e-12
  assert list(plan.masks) == ["conv1", "conv2", "conv3"]  # conv kernels only, model order
  # One global threshold: every kept |w| exceeds every pruned |w|.
  kernels = masks.conv_kernels(model)
  kept = np.concatenate([np.abs(kernels[k][m]) for k, m in plan.masks.items()])
  gone = np.concatenate([np.abs(kernels[k][~m]) for k, m in plan.masks.items()])
  assert kept.min() > gone.max()
  # The per-layer sparsities reported are what the masked model measures.
  wrapped = plan.apply(model)
  measured = sparsity_report(wrapped)
  for name, s in plan.sparsity().items():
    assert measured[name] == pytest.approx(s, abs=1e-12)
  assert measured["global"] == pytest.approx(plan.global_sparsity(), abs=1e-12)
  # Dense and BN weights are never pruned.
  for name in ("fc1", "logits", "conv1_bn"):
    np.testing.assert_array_equal(wrapped.get_layer(name).get_weights()[0],
                                  model.get_layer(name).get_weights()[0])


def test_iterative_rule_prunes_ratio_of_remaining():
  model = _trained()
  pruner = METHODS.get("magnitude")(ratio=0.5)
  first = pruner.select(model)
  second = pruner.select(first.apply(model))
  total = _conv_total(model)
  remaining = total - sum(int((~m).sum()) for m in first.masks.values())
  pruned2 = sum(int((~m).sum()) for m in second.masks.values())
  assert pruned2 - (total - remaining) - int(remaining * 0.5) in (0, 1)
  for name in first.masks:  # nested masks
    assert not (second.masks[name] & ~first.masks[name]).any()


def test_mask_plan_round_trip(tmp_path):
  plan = METHODS.get("magnitude")(ratio=0.7).select(_trained(), model_name="vgg_like")
  path = str(tmp_path / "plan.json")
  plan.save(path)
  assert os.listdir(str(tmp_path)) == ["plan.json"]          # the masks are inside (bits)
  again = Plan.load(path)
  assert again == plan and again.model == "vgg_like" and again.variant == "ratio=0.7"
  with open(path, "w") as f:
    f.write('{"masks": {"conv1": {"shape": [3, 3], "kept": 9, "bits": "eJwDAAAAAAE="}}}')
  with pytest.raises(UsageError, match="mask of 'conv1'"):
    Plan.load(path)


def test_magnitude_needs_ratio_and_fitting_plan():
  with pytest.raises(UsageError, match="needs --prune_ratio"):
    METHODS.get("magnitude")().select(_trained())
  plan = METHODS.get("magnitude")(ratio=0.5).select(_trained())
  other = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 3, name="conv1")])
  with pytest.raises(UsageError, match="does not fit the model"):
    masks.wrap(other, plan.masks)


@pytest.mark.parametrize("devices", [1, 2])
def test_masked_weights_stay_zero_through_training(tmp_path, devices):
  """Fine-tune (inherited weights) and scratch (re-initialized) keep exact zeros off the mask."""
  pruner = METHODS.get("magnitude")(ratio=0.6)
  trained = _trained()
  plan = pruner.select(trained)
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")][:devices]
  strategy = make_strategy("mirrored", devices=cpus)
  train_ds, test_ds = _data()
  spec = TrainSpec(epochs=2, lr=0.05, batch_size=8, weight_decay=1e-4)
  for name, build in (("finetune", lambda: plan.apply(_trained())),
                      ("scratch", lambda: plan.build_fresh(vgg_like))):
    with strategy.scope():
      start = {k: v.copy() for k, v in masks.conv_kernels(build()).items()}
    run_dir = str(tmp_path / name)
    result = train(build, train_ds, test_ds, spec, strategy=strategy, run_dir=run_dir,
                   extra_callbacks=plan.callbacks(os.path.join(run_dir, "tb", "pruning")),
                   verbose=0)
    for layer in result.model.layers:
      if type(layer).__name__ == "PruneLowMagnitude":
        m = plan.masks[layer.name]
        kernel = layer.layer.kernel.numpy()
        for copy in getattr(layer.layer.kernel, "values", [layer.layer.kernel]):  # every replica
          assert np.all(copy.numpy()[~m] == 0.0), (name, layer.name)
          np.testing.assert_array_equal(copy.numpy(), kernel)
        assert np.all(layer.pruning_vars[0][1].numpy() == m)  # the mask was never recomputed
        assert not np.allclose(kernel[m], start[layer.name][m])  # the kept weights trained
    assert os.listdir(os.path.join(run_dir, "tb", "pruning"))  # PruningSummaries wrote
    if devices > 1:  # BN moving statistics are per replica (not synced), so stop here
      continue
    # The stripped model computes exactly what the wrapped one does.
    x = next(iter(test_ds))[0]
    np.testing.assert_allclose(plan.export_model(result.model)(x).numpy(),
                               result.model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_scratch_init_is_masked_density_scaled_he_and_new():
  pruner = METHODS.get("magnitude")(ratio=0.5)
  big = lambda: keras.Sequential([keras.Input((8, 8, 64)),  # noqa: E731
                                  keras.layers.Conv2D(64, 3, use_bias=False, name="conv1")])
  trained = randomize(big(), 1)
  plan = pruner.select(trained)
  fresh = plan.build_fresh(big)
  kernel = masks.conv_kernels(fresh)["conv1"]
  m = plan.masks["conv1"]
  assert np.all(kernel[~m] == 0)
  n = m.sum() / 64  # nnz / C_in (spec 3.3)
  assert kernel[m].std() == pytest.approx(np.sqrt(2.0 / n), rel=0.05)
  assert not np.allclose(kernel[m], trained.get_layer("conv1").kernel.numpy()[m])


def test_sparse_flops_count_only_nonzero_conv_weights():
  model = _trained()
  dense = flops.count(model)
  assert flops.count(model, sparse=True) == dense  # no zeros: convention B == A
  pruner = METHODS.get("magnitude")(ratio=0.8)
  plan = pruner.select(model)
  wrapped = plan.apply(model)
  assert flops.count(wrapped) == dense  # wrappers add no params (mask/threshold/step skipped)
  sparse = flops.count(wrapped, sparse=True)
  kernels = masks.conv_kernels(wrapped)
  spatial = {"conv1": 64, "conv2": 64, "conv3": 16}  # 8x8, 8x8, 4x4 outputs
  zeros = {k: int((v == 0).sum()) for k, v in kernels.items()}
  assert sparse.macs == dense.macs - sum(zeros[k] * spatial[k] for k in zeros)
  assert sparse.flops == dense.flops - 2 * sum(zeros[k] * spatial[k] for k in zeros)
  assert sparse.params == dense.params - sum(zeros.values())
  # Scratch-B budget from the intended (sparse) ratio, not the reference bug's ratio of 1.
  assert regimes.scratch_b_epochs(160, dense.flops, sparse.flops) > 160


def test_export_keeps_zeros_and_gzip_is_much_smaller(tmp_path):
  # Weights large enough (77K conv weights) to dominate the SavedModel's graph protos.
  model = randomize(keras.Sequential([
      keras.Input((8, 8, 16)), keras.layers.Conv2D(96, 3, padding="same", name="conv1"),
      keras.layers.BatchNormalization(name="conv1_bn"), keras.layers.ReLU(name="conv1_relu"),
      keras.layers.Conv2D(64, 3, padding="same", name="conv2"),
      keras.layers.GlobalAveragePooling2D(name="avgpool"), keras.layers.Dense(10, name="logits")]),
      2)
  pruner = METHODS.get("magnitude")(ratio=0.9)
  plan = pruner.select(model)
  stripped = plan.export_model(plan.apply(model))
  assert not any(type(l).__name__ == "PruneLowMagnitude" for l in stripped.layers)
  x = np.random.default_rng(0).normal(size=(4, 8, 8, 16)).astype("float32")
  sparse_dir, dense_dir = str(tmp_path / "sparse"), str(tmp_path / "dense")
  export_lib.export_and_verify(stripped, sparse_dir, x)
  export_lib.export_and_verify(model, dense_dir, x)
  reloaded = export_lib.load(sparse_dir)
  for name, m in plan.masks.items():
    kernel = reloaded.get_layer(name).kernel.numpy()
    assert np.all(kernel[~m] == 0.0) and np.all(kernel[m] != 0.0)
  dense_gz, sparse_gz = export_lib.gzip_size(dense_dir), export_lib.gzip_size(sparse_dir)
  assert sparse_gz < 0.5 * dense_gz
  h5_dense, h5_sparse = str(tmp_path / "d.h5"), str(tmp_path / "s.h5")
  model.save_weights(h5_dense)
  stripped.save_weights(h5_sparse)
  assert export_lib.gzip_size(h5_sparse) < 0.5 * export_lib.gzip_size(h5_dense)


def _ctx(tmp_path, pruner, plan=None):
  """A Context whose fit only builds the model (what a regime would start training from)."""
  strategy = make_strategy("one_device")
  ctx = regimes.Context(config=types.SimpleNamespace(epochs=4, lr=0.1, batch_size=8,
                                                     weight_decay=1e-4, momentum=0.9, model="",
                                                     finetune_epochs=None, finetune_lr=None,
                                                     method_options={"lottery_rounds": getattr(
                                                         pruner, "lottery_rounds", 1)}),
                        lr_schedule="cifar", strategy=strategy,
                        build_full=lambda: vgg_like(), train_ds=None, test_ds=None,
                        run_dir=lambda name: str(tmp_path / name), plan=plan, pruner=pruner)
  started = []

  def fit(name, build_model, spec, extra_callbacks=()):
    with strategy.scope():
      model = build_model()
    started.append((name, model))
    return types.SimpleNamespace(model=model)
  ctx.fit = fit
  return ctx, started


def test_baseline_saves_init_and_lottery_starts_from_it(tmp_path):
  pruner = METHODS.get("magnitude")(ratio=0.7)
  ctx, started = _ctx(tmp_path, pruner)
  keras.utils.set_random_seed(5)
  regimes.REGIMES.get("baseline")(ctx)
  init_model = started[-1][1]
  assert os.path.exists(ctx.init_weights())
  theta0 = masks.conv_kernels(init_model)
  trained = randomize(vgg_like(), 7)  # stands in for the trained baseline
  ctx.baseline_weights = str(tmp_path / "trained.weights.h5")
  trained.save_weights(ctx.baseline_weights)
  ctx.plan = pruner.select(trained)

  regimes.REGIMES.get("lottery")(ctx)
  ticket = masks.conv_kernels(started[-1][1])
  regimes.REGIMES.get("scratch_e")(ctx)
  scratch = masks.conv_kernels(started[-1][1])
  regimes.REGIMES.get("finetune")(ctx)
  finetune = masks.conv_kernels(started[-1][1])
  for name, m in ctx.plan.masks.items():
    np.testing.assert_array_equal(ticket[name][m], theta0[name][m])
    assert np.all(ticket[name][~m] == 0) and np.all(scratch[name][~m] == 0)
    np.testing.assert_array_equal(finetune[name][m], trained.get_layer(name).kernel.numpy()[m])
    assert not np.isin(scratch[name][m], theta0[name][m]).any()
    assert not np.isin(scratch[name][m], finetune[name][m]).any()
  # Non-conv layers of the ticket are theta_0 too.
  np.testing.assert_array_equal(started[0][1].get_layer("fc1").get_weights()[0],
                                init_model.get_layer("fc1").get_weights()[0])


def test_iterative_lottery_rounds_prune_remaining_and_rewind(tmp_path):
  pruner = METHODS.get("magnitude")(ratio=0.5, lottery_rounds=3)
  ctx, started = _ctx(tmp_path, pruner)
  regimes.REGIMES.get("baseline")(ctx)
  theta0 = masks.conv_kernels(started[-1][1])
  ctx.baseline_weights = ctx.init_weights()
  ctx.plan = pruner.select(randomize(vgg_like(), 3))
  regimes.REGIMES.get("lottery")(ctx)
  assert [name for name, _ in started[1:]] == [os.path.join("lottery", f"round{r}")
                                               for r in (1, 2, 3)]
  assert ctx.plan.global_sparsity() == pytest.approx(1 - 0.5 ** 3, abs=0.01)
  assert os.path.exists(str(tmp_path / "lottery" / "round3" / "plan.json"))
  last = masks.conv_kernels(started[-1][1])
  for name, m in ctx.plan.masks.items():
    np.testing.assert_array_equal(last[name][m], theta0[name][m])


def test_structured_lottery_shrinks_the_initial_weights(tmp_path):
  pruner = METHODS.get("l1_norm")(ratio=0.5)
  ctx, started = _ctx(tmp_path, pruner)
  regimes.REGIMES.get("baseline")(ctx)
  init_model = started[-1][1]
  ctx.plan = pruner.select(randomize(vgg_like(), 4))
  regimes.REGIMES.get("lottery")(ctx)
  ticket = started[-1][1]
  for name, kept in ctx.plan.keep.items():
    want = init_model.get_layer(name).kernel.numpy()[..., list(kept)]
    assert ticket.get_layer(name).kernel.shape[-1] == len(kept)
    if name == "conv1":
      np.testing.assert_array_equal(ticket.get_layer(name).kernel.numpy(), want)


def test_lottery_without_init_weights_is_a_usage_error(tmp_path):
  ctx, _ = _ctx(tmp_path, METHODS.get("magnitude")(ratio=0.5))
  with pytest.raises(UsageError, match="init.weights.h5 is missing"):
    regimes.REGIMES.get("lottery")(ctx)
