"""The training budget of one experiment: epochs of every regime, total training FLOPs, and the
GPU wall time they imply under a stated throughput assumption (pure arithmetic, no TensorFlow).

Rules:
- Epochs: baseline, Scratch-E, lottery, lottery_random and uniform_e E; fine-tune
  `finetune_epochs` (default round(E/4), as train/regimes.py); Scratch-B its FLOPs-scaled E_B;
  lottery x `lottery_rounds`.
- FLOPs per training image = 3 x 2 x MACs (forward 2 FLOPs per multiply-accumulate; backward about
  twice the forward); every epoch also evaluates the test split once (2 x MACs per image).
- A weight-masked (sparse) pruned model trains at its DENSE cost (a GPU computes the zeros), so
  masked regimes use the large model's MACs; channel-pruned ones the pruned model's.
- GPU time = FLOPs / sustained throughput. The default, 4 TFLOP/s, is an assumption: about 25%
  of a V100's fp32 peak (CIFAR-sized convs at batch 64 keep a GPU far from peak); data loading,
  checkpoints and the pruning step itself are not counted. ImageNet-sized convs sustain more
  (roughly 2x), so for ImageNet flagfiles the estimate errs long.
"""
from typing import Dict, Mapping, Optional, Sequence

# (train, test) examples of each dataset's full splits.
SPLIT_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000),
               "imagenet2012": (1_281_167, 50_000), "fashion_mnist": (60_000, 10_000),
               "embedded": (10_000, 2_000)}
GPU_TFLOPS = 4.0


def regime_epochs(regimes: Sequence[str], epochs: int, scratch_b_epochs: int,
                  finetune_epochs: Optional[int] = None, lottery_rounds: int = 1) -> Dict[str, int]:
  """regime -> epochs it trains (baseline included when listed)."""
  per = {"baseline": epochs, "finetune": finetune_epochs or max(1, round(epochs / 4)),
         "scratch_e": epochs, "scratch_b": scratch_b_epochs, "lottery": epochs * lottery_rounds,
         "lottery_random": epochs, "uniform_e": epochs}
  return {r: per[r] for r in regimes}


def training_flops(epochs: Mapping[str, int], macs_full: int, macs_pruned: int, sparse: bool,
                   train_examples: int, test_examples: int) -> Dict[str, float]:
  """regime -> training + per-epoch evaluation FLOPs, and "total"."""
  out = {}
  for regime, e in epochs.items():
    macs = macs_full if regime == "baseline" or sparse else macs_pruned
    out[regime] = float(e) * macs * (6.0 * train_examples + 2.0 * test_examples)
  out["total"] = sum(out.values())
  return out


def examples(dataset: str, limit_train: Optional[int], limit_test: Optional[int]):
  """(train, test) examples the run uses; None when the dataset's size is not known here."""
  if dataset not in SPLIT_SIZES:
    return None
  train, test = SPLIT_SIZES[dataset]
  return (min(train, limit_train) if limit_train else train,
          min(test, limit_test) if limit_test else test)


def gpu_hours(total_flops: float, tflops: float = GPU_TFLOPS) -> float:
  return total_flops / (tflops * 1e12) / 3600.0


def text(epochs: Mapping[str, int], flops: Mapping[str, float], tflops: float = GPU_TFLOPS) -> str:
  """The --dry_run lines: epochs per regime, training FLOPs, the GPU-time estimate."""
  ep = ", ".join(f"{r} {e}" for r, e in epochs.items())
  return (f"epochs per regime: {ep}\ntraining FLOPs (3 x forward per training image, plus one "
          f"test pass per epoch): {flops['total']:.3e}; at an assumed sustained {tflops:g} TFLOP/s "
          f"(one V100-class GPU): {gpu_hours(flops['total']):.1f} GPU-hours, data loading "
          "not counted")
