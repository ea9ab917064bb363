"""A list of bad inputs a new user could give (command lines and API calls), and the runner that
checks each: exit status 2 (API: a UsageError), exactly one line on stderr, no traceback, the
workdir's files unchanged (a hash of the tree before and after).

Used by tests/run/test_bad_inputs.py, and by `python tests/run/bad_inputs.py` to count how a
source tree fares (`PYTHONPATH=/other/tree python tests/run/bad_inputs.py`: the before/after
counts of docs/reliability.md). The command lines run in-process (`run.main.main` after
`parse_flags`, SystemExit caught), so 100+ cases take seconds, not a process start each.
"""
import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import time
import traceback
from typing import Callable, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IDX_DIR = "/usr/share/datasets/fashion-mnist"
TINY = ["--dataset=embedded", "--width_multiplier=0.0625", "--epochs=1", "--limit_train=128",
        "--limit_test=64", "--batch_size=64", "--verbose=0", "--noexport"]


@dataclasses.dataclass
class Case:
  """One bad input: `argv` (a command line; {w} is the workdir, {d} a scratch dir) or `api`
  (a function of (workdir, scratch dir) that should raise UsageError); `setup(workdir, scratch)`
  prepares files first; `finished`: the workdir starts as a copy of a finished tiny baseline."""
  name: str
  argv: Optional[List[str]] = None
  api: Optional[Callable] = None
  setup: Optional[Callable] = None
  finished: bool = False
  env: Optional[dict] = None


def _write(path, data, mode="w"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, mode) as f:
    f.write(data)


def _idx_case(name, mutate):
  """A copy of the official IDX files with one of them damaged by `mutate(path)`."""
  def setup(w, d):
    del w
    os.makedirs(os.path.join(d, "idx"), exist_ok=True)
    for f in os.listdir(IDX_DIR):
      shutil.copy(os.path.join(IDX_DIR, f), os.path.join(d, "idx", f))
    mutate(os.path.join(d, "idx"))
  return Case(name, ["--dataset=fashion_mnist", "--idx_dir={d}/idx", *TINY[1:], "--workdir={w}"],
              setup=setup)


def _truncate(stem, keep):
  def mutate(idx):
    p = os.path.join(idx, stem + ".gz")
    data = open(p, "rb").read()
    open(p, "wb").write(data[:keep])
  return mutate


def _replace(stem, data, gz=True):
  def mutate(idx):
    p = os.path.join(idx, stem + ".gz")
    os.remove(p)
    target = p if gz else p[:-3]
    open(target, "wb").write(gzip.compress(data) if gz else data)
  return mutate


def _flip_inside(stem):
  def mutate(idx):
    p = os.path.join(idx, stem + ".gz")
    data = bytearray(open(p, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(p, "wb").write(bytes(data))
  return mutate


def _official_bytes(stem):
  return gzip.open(os.path.join(IDX_DIR, stem + ".gz")).read()


def _damaged_content(stem):
  def mutate(idx):
    data = bytearray(_official_bytes(stem))
    data[-100] ^= 0x55    # same size, one byte off: only the sha256 can tell
    _replace(stem, bytes(data))(idx)
  return mutate


def _flagfile(text, mode="w"):
  def setup(w, d):
    del w
    _write(os.path.join(d, "flags.cfg"), text, mode)
  return setup


def _in_workdir(rel, data, mode="w"):
  def setup(w, d):
    del d
    path = os.path.join(w, rel)
    if os.path.isdir(path):
      shutil.rmtree(path)
    _write(path, data, mode)
  return setup


def _dir_at(rel):
  def setup(w, d):
    del d
    path = os.path.join(w, rel)
    if os.path.isfile(path):
      os.remove(path)
    os.makedirs(path, exist_ok=True)
  return setup


def _edit_json(rel, edit):
  def setup(w, d):
    del d
    path = os.path.join(w, rel)
    data = json.load(open(path))
    data = edit(data)
    _write(path, json.dumps(data))
  return setup


def _truncate_file(rel, keep=100):
  def setup(w, d):
    del d
    path = os.path.join(w, rel)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:keep])
  return setup


def _results_edit(fn):
  def edit(r):
    fn(r["baseline"])
    return r
  return _edit_json("results.json", edit)


def _cli(name, *args, **kw):
  return Case(name, [*TINY, "--workdir={w}", *args], **kw)


def _api(name, fn, **kw):
  return Case(name, api=fn, **kw)


def _cfg(**kw):
  from tf_rethink.run.config import Config
  return Config(**kw)


def _run_api(**kw):
  from tf_rethink.run import experiment
  from tf_rethink.run.config import Config
  base = dict(dataset="embedded", width_multiplier=0.0625, epochs=1, limit_train=128,
              limit_test=64, verbose=0, export=False)
  base.update(kw)
  return lambda w, d: experiment.run(Config(**{"workdir": w, **base}))


def _pipeline(**kw):
  args = dict(batch_size=8, seed=1, limit=16)
  args.update(kw)
  name, split = args.pop("name", "embedded"), args.pop("split", "train")

  def fn(w, d):
    from tf_rethink.data.pipeline import pipeline
    return pipeline(name, split, **args)
  return fn


def _tiny_model():
  from tf_rethink.models import MODELS
  return MODELS.get("vgg11").build(input_shape=(28, 28, 1), num_classes=10, width_multiplier=0.0625)


def _export_over(kind, user):
  """export_and_verify / export_serving onto a path holding a user's file or directory."""
  def setup(w, d):
    if user == "dir":
      _write(os.path.join(w, "mine", "notes.txt"), "my notes")
    else:
      _write(os.path.join(w, "mine"), "my file")

  def fn(w, d):
    import numpy as np
    from tf_rethink import export
    getattr(export, kind)(_tiny_model(), os.path.join(w, "mine"),
                          np.zeros((2, 28, 28, 1), np.float32))
  return dict(api=fn, setup=setup)


def _plan_load(text):
  def setup(w, d):
    _write(os.path.join(d, "plan.json"), text, "wb" if isinstance(text, bytes) else "w")

  def fn(w, d):
    from tf_rethink.pruning.plan import Plan
    Plan.load(os.path.join(d, "plan.json"))
  return dict(api=fn, setup=setup)


def _idx_load(mutate):
  def setup(w, d):
    os.makedirs(os.path.join(d, "idx"), exist_ok=True)
    for f in os.listdir(IDX_DIR):
      if f.startswith("t10k"):
        shutil.copy(os.path.join(IDX_DIR, f), os.path.join(d, "idx", f))
    mutate(os.path.join(d, "idx"))

  def fn(w, d):
    from tf_rethink.data import idx
    idx.load(os.path.join(d, "idx"), "test")
  return dict(api=fn, setup=setup)


def cases() -> List[Case]:
  """The list (>= 100 entries; command lines and API calls)."""
  out = []
  # --- numbers: not finite, out of range, wrong type -------------------------------------------
  for flag, values in {
      "lr": ["inf", "nan", "0", "-0.1"], "finetune_lr": ["inf", "-1", "0"],
      "width_multiplier": ["inf", "nan", "0", "-1"], "momentum": ["-5", "1", "1.5", "nan"],
      "weight_decay": ["-1", "inf", "nan"], "prune_ratio": ["0", "1", "nan", "-0.2", "inf"],
      "epochs": ["0", "-3"], "batch_size": ["0", "-1"], "finetune_epochs": ["0", "-2"],
      "scratch_b_cap": ["0.5", "-1", "nan", "inf"], "round_to": ["0", "-4", "fast", "1.5"],
      "limit_train": ["0", "-5"], "limit_test": ["0"], "seed": ["-1", "4294967296"],
      "verbose": ["7", "-1"], "steps_per_execution": ["0"],
  }.items():
    for v in values:
      out.append(_cli(f"flag-{flag}={v}", f"--{flag}={v}"))
  for flag, v in (("epochs", "abc"), ("lr", "fast"), ("dry_run", "maybe"), ("seed", "1.5")):
    out.append(_cli(f"syntax-{flag}={v}", f"--{flag}={v}"))
  out += [
      _cli("unknown-flag", "--no_such_flag=1"),
      _cli("positional-argument", "extra"),
      _cli("seeds-not-a-list", "--seeds=abc"),
      _cli("seeds-repeated", "--seeds=1,1"),
      _cli("seeds-zero", "--seeds=0"),
      _cli("empty-workdir", "--workdir="),
      # --- enums ------------------------------------------------------------------------------
      _cli("regime", "--regime=sideways"), _cli("method", "--method=nope"),
      _cli("model", "--model=vgg99"), _cli("dataset", "--dataset=mnist3"),
      _cli("lr_schedule", "--lr_schedule=weird"), _cli("strategy", "--strategy=weird"),
      _cli("augment", "--augment=bad"), _cli("mixed_precision", "--mixed_precision=fp8"),
      _cli("jit_compile", "--jit_compile=maybe"),
      # --- method options ---------------------------------------------------------------------
      _cli("sparsity-negative", "--method=network_slimming", "--sparsity=-1"),
      _cli("sparsity-nan", "--method=network_slimming", "--sparsity=nan"),
      _cli("sparsity-inf", "--method=network_slimming", "--sparsity=inf"),
      _cli("sfp_rate-zero", "--method=soft_filter_pruning", "--model=resnet20", "--sfp_rate=0"),
      _cli("sfp_rate-above-1", "--method=soft_filter_pruning", "--model=resnet20",
           "--sfp_rate=1.5"),
      _cli("sss_strength-negative", "--method=sparse_structure_selection", "--model=resnet20",
           "--sss_strength=-1"),
      _cli("lottery_rounds-zero", "--method=magnitude", "--regime=lottery", "--lottery_rounds=0"),
      _cli("thinet_locations-negative", "--method=thinet", "--thinet_locations=-1"),
      _cli("option-of-another-method", "--sparsity=1e-4"),
      # --- cross-flag rules -------------------------------------------------------------------
      _cli("variant-unknown", "--model=resnet56", "--variant=Z"),
      _cli("variant-on-slimming", "--method=network_slimming", "--variant=A"),
      _cli("sfp-on-vgg", "--method=soft_filter_pruning", "--model=vgg16"),
      _cli("imagenet-model-on-28x28", "--model=resnet50", "--prune_ratio=0.3"),
      _cli("imagenet-vgg-pooling-outruns-28x28", "--model=vgg16_imagenet", "--prune_ratio=0.3"),
      _cli("keras_cv_crop-on-embedded", "--augment=keras_cv_crop"),
      _cli("multi_worker-without-TF_CONFIG", "--strategy=multi_worker", env={"TF_CONFIG": ""}),
      _cli("TF_CONFIG-not-json", "--strategy=multi_worker", env={"TF_CONFIG": "{cluster"}),
      _cli("TF_CONFIG-a-list", "--strategy=multi_worker", env={"TF_CONFIG": "[1, 2]"}),
      _cli("cifar-data-missing", "--dataset=cifar10", "--data_dir={d}/none"),
      _cli("idx_dir-missing", "--dataset=fashion_mnist", "--idx_dir={d}/none"),
      # --- the workdir on the file system -----------------------------------------------------
      Case("workdir-is-a-file", [*TINY, "--workdir={d}/file"],
           setup=lambda w, d: _write(os.path.join(d, "file"), "x")),
      Case("workdir-under-a-file", [*TINY, "--workdir={d}/file/sub"],
           setup=lambda w, d: _write(os.path.join(d, "file"), "x")),
      Case("workdir-under-proc", [*TINY, "--workdir=/proc/tf_rethink_test"]),
      Case("workdir-under-sys", [*TINY, "--workdir=/sys/tf_rethink_test/x"]),
      Case("dry-run-workdir-is-a-file", [*TINY, "--dry_run", "--workdir={d}/file"],
           setup=lambda w, d: _write(os.path.join(d, "file"), "x")),
      # --- flagfiles --------------------------------------------------------------------------
      Case("flagfile-binary", [*TINY, "--workdir={w}", "--flagfile={d}/flags.cfg"],
           setup=_flagfile(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00", "wb")),
      Case("flagfile-nul-bytes", [*TINY, "--workdir={w}", "--flagfile={d}/flags.cfg"],
           setup=_flagfile(b"--epochs=1\x00\x00\n", "wb")),
      Case("flagfile-includes-itself", [*TINY, "--workdir={w}", "--flagfile={d}/flags.cfg"],
           setup=lambda w, d: _write(os.path.join(d, "flags.cfg"),
                                     f"--epochs=1\n--flagfile={d}/flags.cfg\n")),
      Case("flagfile-loop-of-two", [*TINY, "--workdir={w}", "--flagfile={d}/a.cfg"],
           setup=lambda w, d: (_write(os.path.join(d, "a.cfg"), f"--flagfile={d}/b.cfg\n"),
                               _write(os.path.join(d, "b.cfg"), f"--flagfile={d}/a.cfg\n"))),
      Case("flagfile-missing", [*TINY, "--workdir={w}", "--flagfile={d}/none.cfg"]),
      Case("flagfile-is-a-directory", [*TINY, "--workdir={w}", "--flagfile={d}"]),
      Case("flagfile-bad-line", [*TINY, "--workdir={w}", "--flagfile={d}/flags.cfg"],
           setup=_flagfile("--epochs=many\n")),
      Case("flagfile-unknown-flag", [*TINY, "--workdir={w}", "--flagfile={d}/flags.cfg"],
           setup=_flagfile("--epoch=2\n")),
      # --- IDX files --------------------------------------------------------------------------
      _idx_case("idx-truncated-gzip", _truncate("t10k-labels-idx1-ubyte", 2000)),
      _idx_case("idx-truncated-images", _truncate("t10k-images-idx3-ubyte", 100000)),
      _idx_case("idx-not-gzip", lambda idx: open(os.path.join(
          idx, "t10k-labels-idx1-ubyte.gz"), "wb").write(b"this is not gzip data at all")),
      _idx_case("idx-corrupt-deflate", _flip_inside("t10k-labels-idx1-ubyte")),
      _idx_case("idx-empty-file", lambda idx: open(os.path.join(
          idx, "t10k-labels-idx1-ubyte.gz"), "wb").close()),
      _idx_case("idx-wrong-magic", _replace("t10k-labels-idx1-ubyte",
                                             b"\x00\x00\x08\x03" + _official_bytes(
                                                 "t10k-labels-idx1-ubyte")[4:])),
      _idx_case("idx-header-claims-more", _replace(
          "t10k-labels-idx1-ubyte", b"\x00\x00\x08\x01" + (20000).to_bytes(4, "big") +
          _official_bytes("t10k-labels-idx1-ubyte")[8:])),
      _idx_case("idx-header-only", _replace("t10k-labels-idx1-ubyte", b"\x00\x00\x08\x01\x00")),
      _idx_case("idx-count-mismatch", _replace(
          "t10k-labels-idx1-ubyte", b"\x00\x00\x08\x01" + (9000).to_bytes(4, "big") +
          _official_bytes("t10k-labels-idx1-ubyte")[8:9008])),
      _idx_case("idx-damaged-content-same-size", _damaged_content("t10k-labels-idx1-ubyte")),
      _idx_case("idx-raw-damaged-content", lambda idx: (
          _damaged_content("t10k-images-idx3-ubyte")(idx),
          os.rename(os.path.join(idx, "t10k-images-idx3-ubyte.gz"),
                    os.path.join(idx, "t10k-images-idx3-ubyte.tmp")),
          open(os.path.join(idx, "t10k-images-idx3-ubyte"), "wb").write(gzip.open(
              os.path.join(idx, "t10k-images-idx3-ubyte.tmp")).read()),
          os.remove(os.path.join(idx, "t10k-images-idx3-ubyte.tmp")))),
      _idx_case("idx-a-directory", lambda idx: (os.remove(os.path.join(
          idx, "t10k-labels-idx1-ubyte.gz")), os.makedirs(os.path.join(
              idx, "t10k-labels-idx1-ubyte.gz")))),
  ]
  # --- a finished workdir's files, damaged or of the wrong kind -------------------------------
  fin = dict(finished=True)
  out += [
      _cli("config-not-json", "--regime=all", setup=_in_workdir("config.json", "{oops"), **fin),
      _cli("config-a-list", "--regime=all", setup=_in_workdir("config.json", "[1]"), **fin),
      _cli("config-binary", "--regime=all", setup=_in_workdir("config.json", b"\xff\xfe", "wb"),
           **fin),
      _cli("config-a-directory", "--regime=all", setup=_dir_at("config.json"), **fin),
      _cli("config-other-experiment", "--regime=all", "--epochs=2", **fin),
      _cli("results-not-json", "--regime=all", setup=_in_workdir("results.json", "{"), **fin),
      _cli("results-a-list", "--regime=all", setup=_in_workdir("results.json", "[]"), **fin),
      _cli("results-a-directory", "--regime=all", setup=_dir_at("results.json"), **fin),
      _cli("results-record-missing-flops", "--regime=all",
           setup=_results_edit(lambda r: r.pop("flops")), **fin),
      _cli("results-accuracy-a-string", "--regime=all",
           setup=_results_edit(lambda r: r.update(test_accuracy="high")), **fin),
      _cli("results-record-a-number", "--regime=all",
           setup=_edit_json("results.json", lambda r: {**r, "baseline": 3}), **fin),
      _cli("results-flops-a-float", "--regime=all",
           setup=_results_edit(lambda r: r.update(flops=1.5)), **fin),
      _cli("plan-not-json", "--regime=all", setup=_in_workdir("plan.json", "{"), **fin),
      _cli("plan-a-list", "--regime=all", setup=_in_workdir("plan.json", "[]"), **fin),
      _cli("plan-masks_file-absolute", "--regime=all", setup=_in_workdir(
          "plan.json", json.dumps({"keep": {}, "masks_file": "/etc/passwd"})), **fin),
      _cli("plan-masks_file-dotdot", "--regime=all", setup=_in_workdir(
          "plan.json", json.dumps({"keep": {}, "masks_file": "../../x.npz"})), **fin),
      _cli("plan-keep-not-lists", "--regime=all", setup=_in_workdir(
          "plan.json", json.dumps({"keep": {"conv1": 3}})), **fin),
      _cli("plan-a-directory", "--regime=all", setup=_dir_at("plan.json"), **fin),
      _cli("history-truncated", "--regime=all", setup=_truncate_file("baseline/history.json", 20),
           **fin),
      _cli("history-an-object", "--regime=all",
           setup=_in_workdir("baseline/history.json", '{"loss": 1}'), **fin),
      _cli("history-a-directory", "--regime=all", setup=_dir_at("baseline/history.json"), **fin),
      _cli("train_result-truncated", "--regime=all",
           setup=_truncate_file("baseline/train_result.json", 30), **fin),
      _cli("train_result-missing-keys", "--regime=all",
           setup=_in_workdir("baseline/train_result.json", '{"epochs": 1}'), **fin),
      _cli("train_spec-a-list", "--regime=all",
           setup=_in_workdir("baseline/train_spec.json", "[1]"), **fin),
      _cli("final-weights-truncated", "--regime=all",
           setup=_truncate_file("baseline/final.weights.h5", 800), **fin),
      _cli("final-weights-garbage", "--regime=all",
           setup=_in_workdir("baseline/final.weights.h5", b"\x00" * 64, "wb"), **fin),
      _cli("init-weights-truncated", "--regime=all",
           setup=_truncate_file("baseline/init.weights.h5", 800), **fin),
      _cli("baseline-dir-a-file", "--regime=all", setup=_in_workdir("baseline", "x"), **fin),
      _cli("backup-checkpoint-corrupt", "--regime=all", setup=lambda w, d: (
          os.remove(os.path.join(w, "baseline", "train_result.json")),
          _write(os.path.join(w, "baseline", "backup", "chief", "checkpoint"), "garbage")), **fin),
      _cli("export-a-file", "--regime=all", "--export",
           setup=_in_workdir("export", "my file"), **fin),
      _cli("export-user-directory", "--regime=all", "--export",
           setup=_in_workdir("export/baseline/notes.txt", "mine"), **fin),
      _cli("export-serving-user-file", "--regime=all", "--export",
           setup=_in_workdir("export/serving/scratch_b", "mine"), **fin),
  ]
  # --- API calls: the same mistakes raise the same UsageError ---------------------------------
  inf, nan = float("inf"), float("nan")
  for kw in (dict(lr=inf), dict(lr=nan), dict(momentum=-5.0), dict(momentum=1.0),
             dict(width_multiplier=inf), dict(width_multiplier=0.0), dict(weight_decay=nan),
             dict(prune_ratio=nan), dict(scratch_b_cap=inf), dict(epochs=0), dict(epochs=1.5),
             dict(batch_size=-1), dict(verbose=7), dict(workdir=""), dict(seed=-1),
             dict(regime="sideways"), dict(strategy="weird"), dict(finetune_lr=inf),
             dict(method_options={"sparsity": -1.0}), dict(limit_train=0)):
    out.append(_api(f"api-Config-{'-'.join(f'{k}={v}' for k, v in kw.items())}",
                    lambda w, d, kw=kw: _cfg(**kw)))
  out += [
      _api("api-run-unknown-method", _run_api(method="nope")),
      _api("api-run-unknown-model", _run_api(model="vgg99")),
      _api("api-run-unknown-variant", _run_api(model="resnet56", variant="Z")),
      _api("api-run-sfp-on-vgg", _run_api(method="soft_filter_pruning", model="vgg16")),
      _api("api-run-imagenet-model-on-28x28", _run_api(model="resnet50", prune_ratio=0.3)),
      Case("api-run-workdir-a-file", api=lambda w, d: _run_api()(os.path.join(d, "f"), d),
           setup=lambda w, d: _write(os.path.join(d, "f"), "x")),
      _api("api-pipeline-batch-size-0", _pipeline(batch_size=0)),
      _api("api-pipeline-unknown-split", _pipeline(split="val")),
      _api("api-pipeline-unknown-dataset", _pipeline(name="mnist3")),
      _api("api-pipeline-limit-0", _pipeline(limit=0)),
      _api("api-plan-load-directory", lambda w, d: __import__(
          "tf_rethink.pruning.plan", fromlist=["Plan"]).Plan.load(d)),
      Case("api-plan-load-list", **_plan_load("[]")),
      Case("api-plan-load-binary", **_plan_load(b"\xff\xfe{")),
      Case("api-plan-masks_file", **_plan_load(json.dumps({"keep": {}, "masks_file": "/x.npz"}))),
      _api("api-strategy-unknown", lambda w, d: __import__(
          "tf_rethink.train.strategy", fromlist=["x"]).make_strategy("weird")),
      Case("api-idx-truncated", **_idx_load(_truncate("t10k-labels-idx1-ubyte", 2000))),
      Case("api-idx-not-gzip", **_idx_load(lambda idx: open(os.path.join(
          idx, "t10k-labels-idx1-ubyte.gz"), "wb").write(b"plain text"))),
      Case("api-idx-corrupt-deflate", **_idx_load(_flip_inside("t10k-images-idx3-ubyte"))),
      _api("api-slimming-negative-sparsity", lambda w, d: __import__(
          "tf_rethink.pruning.methods", fromlist=["METHODS"]).METHODS.get("network_slimming")(
              sparsity=-2.0)),
      _api("api-sfp-rate-2", lambda w, d: __import__(
          "tf_rethink.pruning.methods", fromlist=["METHODS"]).METHODS.get(
              "soft_filter_pruning")(sfp_rate=2.0)),
      _api("api-model-width-inf", lambda w, d: __import__(
          "tf_rethink.models", fromlist=["MODELS"]).MODELS.get("vgg11").build(
              input_shape=(28, 28, 1), num_classes=10, width_multiplier=inf)),
      Case("api-export-over-user-dir", **_export_over("export_and_verify", "dir")),
      Case("api-export-over-user-file", **_export_over("export_and_verify", "file")),
      Case("api-serving-over-user-file", **_export_over("export_serving", "file")),
  ]
  return out


# --- the runner ------------------------------------------------------------------------------

def tree_hash(path: str) -> str:
  """A hash of every file (relative name and bytes) and directory under `path` ('' if absent)."""
  if not os.path.lexists(path):
    return ""
  h = hashlib.sha256()
  if not os.path.isdir(path):
    h.update(open(path, "rb").read())
    return h.hexdigest()
  for root, dirs, files in os.walk(path):
    dirs.sort()
    for name in sorted(dirs):
      h.update(b"D" + os.path.relpath(os.path.join(root, name), path).encode())
    for name in sorted(files):
      full = os.path.join(root, name)
      h.update(b"F" + os.path.relpath(full, path).encode())
      if os.path.isfile(full):
        h.update(open(full, "rb").read())
  return h.hexdigest()


@dataclasses.dataclass
class Outcome:
  code: object        # exit status, "raised <type>" (API: "usage" for a UsageError), or 0
  stderr: str
  changed: bool

  @property
  def ok(self) -> bool:
    lines = [l for l in self.stderr.strip().splitlines() if l.strip()]
    return (self.code in (2, "usage") and len(lines) == 1 and "Traceback" not in self.stderr
            and not self.changed)


def run_cli(argv: List[str]):
  """(exit status, stderr) of the command, run in this process."""
  from absl import flags
  from tf_rethink.run import main as main_lib
  flags.FLAGS.unparse_flags()
  err = io.StringIO()
  code = 0
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
      rest = main_lib.parse_flags(["tf-rethink", *argv])
      main_lib.main(rest)
    except SystemExit as e:
      code = e.code
    except BaseException:  # noqa: BLE001  (what a user would see as a traceback)
      traceback.print_exc(file=err)
      code = 1
  flags.FLAGS.unparse_flags()
  return code, err.getvalue()


def run_case(case: Case, workdir: str, scratch: str) -> Outcome:
  """Runs one case (its setup first) and checks the workdir stays as it was."""
  if case.setup:
    case.setup(workdir, scratch)
  watched = [workdir, scratch]
  before = [tree_hash(p) for p in watched]
  env_old = {k: os.environ.get(k) for k in (case.env or {})}
  os.environ.update(case.env or {})
  try:
    if case.argv is not None:
      code, stderr = run_cli([a.replace("{w}", workdir).replace("{d}", scratch)
                              for a in case.argv])
    else:
      from tf_rethink.util.errors import UsageError
      try:
        with contextlib.redirect_stdout(io.StringIO()):
          case.api(workdir, scratch)
        code, stderr = 0, ""
      except UsageError as e:
        code, stderr = "usage", str(e)
      except Exception as e:  # noqa: BLE001
        code, stderr = f"raised {type(e).__name__}", "Traceback\n" + traceback.format_exc()
  finally:
    for k, v in env_old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  return Outcome(code, stderr, [tree_hash(p) for p in watched] != before)


def finished_baseline(workdir: str) -> None:
  """A finished tiny baseline in `workdir` (the start of the `finished` cases)."""
  code, err = run_cli([*TINY, "--regime=baseline", f"--workdir={workdir}"])
  assert code == 0, err


def main():
  import tempfile
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  tmp = tempfile.mkdtemp()
  finished = os.path.join(tmp, "finished")
  finished_baseline(finished)
  counts = {"ok": 0, "traceback": 0, "accepted": 0, "other": 0}
  items = cases()
  start = int(os.environ.get("BAD_INPUTS_START", "0"))   # resume a long count
  for i, case in enumerate(items):
    if i < start:
      continue
    w, d = os.path.join(tmp, f"w{i}"), os.path.join(tmp, f"d{i}")
    os.makedirs(d)
    if case.finished:
      shutil.copytree(finished, w)
    t0 = time.perf_counter()
    o = run_case(case, w, d)
    dt = time.perf_counter() - t0
    kind = ("ok" if o.ok else "traceback" if "Traceback" in o.stderr else
            "accepted" if o.code == 0 else "other")
    counts[kind] += 1
    first = (o.stderr.strip().splitlines() or [""])[-1][:150]
    print(f"{kind:9} {dt:5.1f}s {case.name:45} code={o.code} changed={o.changed} {first}", flush=True)
  print(f"{len(items)} cases ({sum(c.argv is not None for c in items)} command lines, "
        f"{sum(c.api is not None for c in items)} API calls): {counts}")
  shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  sys.path.insert(0, os.environ.get("PYTHONPATH", ROOT).split(":")[0])
  main()
