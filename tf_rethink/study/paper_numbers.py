"""The paper's reported numbers (Liu et al., ICLR 2019), in ONE place, keyed for `tables.py`.

Every value comes from /work/shared/paper_spec.md sections 2.1-2.8 with its provenance tag:
[R]/[RM] the official repo and its READMEs, [X] independent copies of the paper's table, [O] the
original method papers, and [P?] values RECALLED from the paper and not checked against the PDF
(shown with the tag in every rendered table; verify before treating them as targets). Accuracies
are top-1 % (CIFAR: mean and std over 5 runs; ImageNet: single runs). A `None` cell is a number
the spec could not recover (SFP table, lottery figure values).

`ROWS` lists every row of every table with `match`, the config.json fields (dotted for nested
`method_options`) a run record must have to count for that row; `PAPER` maps (table, dataset,
model, variant label, regime) to the cell, `lookup(table, model, variant, regime, dataset)`.
"""
import dataclasses
from typing import Dict, Mapping, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Cell:
  """One reported number: value (%), std over runs (None: single run / not given), source tag."""
  value: Optional[float]
  std: Optional[float] = None
  tag: str = ""

  def text(self) -> str:
    if self.value is None:
      return "n/r"
    std = f" (±{self.std:.2f})" if self.std is not None else ""
    return f"{self.value:.2f}{std}" + (f" {self.tag}" if self.tag else "")


@dataclasses.dataclass(frozen=True)
class Row:
  table: str
  dataset: str
  model: str          # our registry name
  variant: str        # the paper's pruned-model label / ratio, e.g. "A", "70%", "ThiNet-30"
  match: Mapping[str, object]
  paper: Mapping[str, Cell]   # regime -> Cell
  note: str = ""


@dataclasses.dataclass(frozen=True)
class Table:
  key: str
  title: str
  columns: Tuple[Tuple[str, str], ...]    # (regime, column label)


_STD = (("baseline", "unpruned"), ("finetune", "fine-tuned"), ("scratch_e", "Scratch-E"),
        ("scratch_b", "Scratch-B"))
TABLES: Dict[str, Table] = {t.key: t for t in (
    Table("l1_norm", "Table L1: L1-norm filter pruning (Li et al., 2017), predefined", _STD),
    Table("thinet", "Table ThiNet (Luo et al., 2017), predefined, ImageNet", _STD),
    Table("regression", "Table Regression pruning (He et al., 2017), predefined, ImageNet", _STD),
    Table("network_slimming", "Table NS: Network Slimming (Liu et al., 2017), automatic", _STD),
    Table("sparse_structure_selection", "Table SSS: Sparse Structure Selection (Huang & Wang, "
          "2018), ImageNet", (("baseline", "unpruned"), ("finetune", "pruned (SSS paper)"),
                              ("scratch_e", "Scratch-E"), ("scratch_b", "Scratch-B"))),
    Table("soft_filter_pruning", "Table SFP: Soft Filter Pruning (He et al., 2018), CIFAR-10",
          _STD),
    Table("magnitude", "Table WL: unstructured weight-level magnitude pruning (Han et al., 2015)",
          _STD),
    Table("lottery", "Lottery ticket comparison (Frankle & Carbin, 2019), CIFAR-10",
          (("baseline", "unpruned"), ("lottery", "winning ticket"),
           ("scratch_e", "random init"))),
)}


def _c(value, std=None, tag="[P?]"):
  return Cell(value, std, tag)


def _cells(base, ft, e, b):
  return {"baseline": base, "finetune": ft, "scratch_e": e, "scratch_b": b}


def _row(table, dataset, model, variant, match, paper, note=""):
  match = {"method": table if table != "lottery" else match.pop("method"), "model": model,
           "dataset": dataset, **match}
  return Row(table, dataset, model, variant, match, paper, note)


_C10, _C100, _IN = "cifar10", "cifar100", "imagenet2012"
ROWS: Tuple[Row, ...] = (
    # --- L1-norm (spec 2.1) -------------------------------------------------------------------
    _row("l1_norm", _C10, "vgg16", "VGG-16-A", {"variant": "A"},
         _cells(_c(93.63, .16), _c(93.41, .12), _c(93.62, .11), _c(93.78, .15))),
    _row("l1_norm", _C10, "resnet56", "ResNet-56-A", {"variant": "A"},
         _cells(_c(93.14, .12, "[X]"), _c(92.97, .17), _c(92.96, .26, "[X]"),
                _c(93.09, .14, "[X]"))),
    _row("l1_norm", _C10, "resnet56", "ResNet-56-B", {"variant": "B"},
         _cells(_c(93.14, .12, "[X]"), _c(92.67, .14), _c(92.54, .19, "[X]"),
                _c(93.05, .18, "[X]"))),
    _row("l1_norm", _C10, "resnet110", "ResNet-110-A", {"variant": "A"},
         _cells(_c(93.14, .24, "[X]"), _c(93.14, .16), _c(93.25, .29, "[X]"),
                _c(93.22, .22, "[X]"))),
    _row("l1_norm", _C10, "resnet110", "ResNet-110-B", {"variant": "B"},
         _cells(_c(93.14, .24, "[X]"), _c(92.69, .09), _c(92.89, .43, "[X]"),
                _c(93.60, .25, "[X]"))),
    _row("l1_norm", _IN, "resnet34", "ResNet-34-A", {"variant": "A"},
         _cells(_c(73.31, None, "[X]"), _c(72.56, None, "[RM]"), _c(72.77, None, "[RM]"),
                _c(73.03, None, "[X]"))),
    _row("l1_norm", _IN, "resnet34", "ResNet-34-B", {"variant": "B"},
         _cells(_c(73.31, None, "[X]"), _c(72.29, None, "[RM]"), _c(72.55, None, "[RM]"),
                _c(72.91, None, "[X]"))),
    # --- ThiNet (spec 2.2): fine-tuned = the ThiNet paper [O]; unpruned = "our PyTorch" [P?] ---
    _row("thinet", _IN, "vgg16_imagenet", "VGG-Conv", {"variant": "conv"},
         _cells(_c(71.51), _c(69.80, None, "[O]"), _c(68.76, None, "[RM]"),
                _c(71.72, None, "[RM]"))),
    _row("thinet", _IN, "vgg16_imagenet_gap", "VGG-GAP", {"variant": "gap"},
         _cells(_c(71.51), _c(67.34, None, "[O]"), _c(66.85, None, "[RM]"),
                _c(68.66, None, "[RM]"))),
    _row("thinet", _IN, "vgg16_imagenet_gap", "VGG-Tiny", {"variant": "tiny"},
         _cells(_c(71.51), _c(59.34, None, "[O]"), _c(57.15, None, "[RM]"),
                _c(59.93, None, "[RM]"))),
    _row("thinet", _IN, "resnet50", "ThiNet-30", {"variant": "30"},
         _cells(_c(76.13), _c(68.42, None, "[O]"), _c(70.91, None, "[RM]"),
                _c(71.57, None, "[RM]"))),
    _row("thinet", _IN, "resnet50", "ThiNet-50", {"variant": "50"},
         _cells(_c(76.13), _c(71.01, None, "[O]"), _c(73.31, None, "[RM]"),
                _c(73.90, None, "[RM]"))),
    _row("thinet", _IN, "resnet50", "ThiNet-70", {"variant": "70"},
         _cells(_c(76.13), _c(72.04, None, "[O]"), _c(74.42, None, "[RM]"),
                _c(75.14, None, "[RM]"))),
    # --- Regression (spec 2.3): fine-tuned only as recalled relative drops -> not absolute ---
    _row("regression", _IN, "vgg16_imagenet", "VGG-16-5x", {"variant": "5x"},
         _cells(_c(71.51), _c(None), _c(68.05, None, "[RM]"), _c(71.00, None, "[RM]")),
         "fine-tuned: recalled relative drop -2.67 [P?]"),
    _row("regression", _IN, "resnet50_select", "ResNet-50-2x", {"variant": "2x"},
         _cells(_c(76.13), _c(None), _c(71.26, None, "[RM]"), _c(74.58, None, "[RM]")),
         "fine-tuned: recalled relative drop -3.25 (?) [P?]"),
    # --- Network Slimming (spec 2.4) ---------------------------------------------------------
    *[_row("network_slimming", ds, model, f"{int(round(p * 100))}%", {"prune_ratio": p},
           _cells(_c(*base), _c(*ft), _c(*e), _c(*b)))
      for ds, model, p, base, ft, e, b in (
          (_C10, "vgg19_slim", .7, (93.53, .16), (93.60, .16), (93.30, .11), (93.81, .14)),
          (_C10, "preresnet164", .4, (95.04, .16), (94.77, .12), (94.70, .11), (94.90, .04)),
          (_C10, "preresnet164", .6, (95.04, .16), (94.23, .21), (94.58, .18), (94.71, .21)),
          (_C10, "densenet40", .4, (94.10, .12), (94.00, .20), (93.68, .18), (94.06, .12)),
          (_C10, "densenet40", .6, (94.10, .12), (93.87, .13), (93.58, .21), (93.85, .25)),
          (_C100, "vgg19_slim", .5, (72.63, .21), (72.32, .28), (71.94, .17), (73.08, .22)),
          (_C100, "preresnet164", .4, (76.80, .19), (76.22, .20), (76.36, .32), (76.68, .35)),
          (_C100, "preresnet164", .6, (76.80, .19), (74.17, .33), (75.05, .08), (75.73, .29)),
          (_C100, "densenet40", .4, (73.82, .34), (73.35, .17), (73.24, .29), (73.19, .26)),
          (_C100, "densenet40", .6, (73.82, .34), (72.46, .22), (72.62, .36), (72.91, .34)))],
    _row("network_slimming", _IN, "vgg11_imagenet", "50%", {"prune_ratio": .5},
         _cells(_c(70.84), _c(68.62, None, "[RM]"), _c(70.00, None, "[RM]"),
                _c(71.18, None, "[RM]")), "fine-tuned is the mask implementation"),
    # --- Sparse Structure Selection (spec 2.5): "pruned" = the SSS paper's model [O] ----------
    *[_row("sparse_structure_selection", _IN, "resnet50", label, {"variant": variant},
           _cells(_c(76.12, None, "[O]"), _c(sss, None, "[O]"), _c(e, None, "[RM]"),
                  _c(b, None, "[RM]")))
      for label, variant, sss, e, b in (("ResNet-41", "resnet41", 75.44, 75.70, 76.17),
                                        ("ResNet-32", "resnet32", 74.18, 73.79, 74.67),
                                        ("ResNet-26", "resnet26", 71.82, 72.31, 73.41))],
    # --- Soft Filter Pruning (spec 2.6): the table was not recovered ---------------------------
    *[_row("soft_filter_pruning", _C10, f"resnet{d}", "rate 0.7",
           {"method_options.sfp_rate": 0.7}, _cells(_c(None), _c(None), _c(None), _c(None)),
           "paper values not recovered (spec 2.6)") for d in (20, 32, 56, 110)],
    # --- Weight-level magnitude (spec 2.7): CIFAR [P?] low confidence, ImageNet [RM] ----------
    *[_row("magnitude", ds, model, f"{int(round(p * 100))}%", {"prune_ratio": p},
           _cells(_c(*base), _c(*ft), _c(*e), _c(*b)))
      for ds, model, p, base, ft, e, b in (
          (_C10, "vgg19", .3, (93.50, .11), (93.51, .05), (93.71, .09), (93.31, .26)),
          (_C10, "vgg19", .8, (93.50, .11), (93.52, .10), (93.71, .08), (93.64, .09)),
          (_C10, "preresnet110", .3, (95.04, .15), (95.06, .05), (94.84, .07), (95.11, .09)),
          (_C10, "preresnet110", .8, (95.04, .15), (94.55, .11), (93.76, .10), (94.52, .13)),
          (_C10, "densenet_bc100", .3, (95.24, .17), (95.21, .17), (95.22, .18), (95.23, .14)),
          (_C10, "densenet_bc100", .8, (95.24, .17), (95.04, .15), (94.42, .12), (95.12, .04)),
          (_C100, "vgg19", .3, (71.70, .31), (71.96, .36), (72.81, .31), (73.30, .25)),
          (_C100, "vgg19", .5, (71.70, .31), (71.85, .30), (73.12, .36), (73.77, .23)),
          (_C100, "preresnet110", .3, (76.96, .34), (76.88, .31), (76.36, .26), (76.96, .31)),
          (_C100, "preresnet110", .5, (76.96, .34), (76.60, .36), (75.45, .23), (76.42, .39)),
          (_C100, "densenet_bc100", .3, (77.59, .19), (77.23, .05), (77.58, .25), (77.97, .31)),
          (_C100, "densenet_bc100", .5, (77.59, .19), (77.41, .14), (77.65, .09), (77.80, .23)))],
    *[_row("magnitude", _IN, model, f"{int(round(p * 100))}%", {"prune_ratio": p},
           _cells(_c(base), _c(ft, None, "[RM]"), _c(e, None, "[RM]"), _c(b, None, "[RM]")))
      for model, p, base, ft, e, b in (
          ("vgg16_bn_imagenet", .3, 73.37, 73.68, 72.75, 74.02),
          ("vgg16_bn_imagenet", .6, 73.37, 73.63, 71.50, 73.42),
          ("resnet50", .3, 76.15, 76.06, 74.77, 75.60),
          ("resnet50", .6, 76.15, 76.09, 73.69, 74.90))],
    # --- Lottery (spec 2.8): qualitative only (lr 0.1: ticket ~ random; lr 0.01: ticket > random)
    *[_row("lottery", _C10, model, label, dict(match, method=method, lr=lr, regime="lottery"),
           {"baseline": _c(None), "lottery": _c(None), "scratch_e": _c(None)},
           "qualitative: ticket ~ random init at lr 0.1; ticket > random at lr 0.01 (below 0.1)")
      for lr in (0.1, 0.01)
      for model, method, label, match in (
          ("vgg16", "magnitude", f"one-shot 80%, lr {lr}",
           {"prune_ratio": .8, "method_options.lottery_rounds": 1}),
          ("vgg16", "magnitude", f"iterative 20%x7, lr {lr}",
           {"prune_ratio": .2, "method_options.lottery_rounds": 7}),
          ("resnet56", "magnitude", f"one-shot 80%, lr {lr}",
           {"prune_ratio": .8, "method_options.lottery_rounds": 1}),
          ("vgg16", "l1_norm", f"L1 VGG-16-A, lr {lr}", {"variant": "A"}),
          ("resnet56", "l1_norm", f"L1 ResNet-56-B, lr {lr}", {"variant": "B"}))],
)


def key(row: Row) -> Tuple[str, str, str, str]:
  """(table, dataset, model, variant label): unique per row."""
  return (row.table, row.dataset, row.model, row.variant)


PAPER: Dict[Tuple[str, str, str, str, str], Cell] = {
    (*key(r), regime): cell for r in ROWS for regime, cell in r.paper.items()}


def lookup(table: str, model: str, variant: str, regime: str,
           dataset: Optional[str] = None) -> Optional[Cell]:
  """The paper's number for (table, model, variant label, regime) on `dataset` (default: the
  only, or the first listed, dataset of that row), or None if the paper has no such cell."""
  for r in ROWS:
    if (r.table, r.model, r.variant) == (table, model, variant) and dataset in (None, r.dataset):
      return r.paper.get(regime)
  return None


def rows(table: str):
  return [r for r in ROWS if r.table == table]
