"""The plan protocol: a pruned architecture as data, and everything needed to rebuild it.

A method answers one question (which channels, blocks or weights survive) with a `Plan`; every
regime starts from the plan, never from the pruner (Liu et al., ICLR 2019, section 3: the pruned
architecture is what is evaluated). One plan carries:
* `keep`: producer layer key -> kept output channel indices (channel pruning);
* `dropped_blocks`: residual blocks removed (Sparse Structure Selection);
* `masks`: conv layer key -> boolean mask of its kernel (weight-level pruning);
* `reconstruction`: consumer layer key -> its least-squares kernel (ThiNet, regression), valid
  for the weights it was computed on (`source`, a fingerprint of the consumer's kernel);
* where it came from (`model`, `method`, `variant`), the graph signature and the position of
  every named layer (to re-apply it to another instance whose layers Keras named differently),
  and `notes` (e.g. layers whose reconstruction fell back to plain slicing).

It knows how to `apply` itself to a model (the fine-tuned / lottery starting point), to
`build_fresh` the pruned architecture (Scratch-E/B), which `callbacks` its training needs, what to
export, and it saves / loads itself as ONE JSON file, atomically (arrays inline, zlib + base64).
"""
import base64
import dataclasses
import hashlib
import json
import logging
import zlib
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from tf_rethink.util import fs
from tf_rethink.util.errors import UsageError

_log = logging.getLogger(__name__)
FORMAT = "tf_rethink.plan/2"


def fingerprint(array) -> str:
  """A short hash of an array's float32 values (which weights a reconstruction was made for)."""
  return hashlib.sha1(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True, eq=False)
class Reconstruction:
  """A consumer's least-squares kernel over its kept inputs (all its outputs), for `source`."""
  kernel: np.ndarray
  source: str


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
  """See the module docstring. Build plans with keyword arguments; `stamped(model)` records the
  graph signature and layer positions of the model the plan was selected on."""
  model: str = ""
  keep: Mapping[str, Tuple[int, ...]] = dataclasses.field(default_factory=dict)
  dropped_blocks: Tuple[str, ...] = ()
  method: str = ""
  variant: str = ""
  masks: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
  reconstruction: Mapping[str, Reconstruction] = dataclasses.field(default_factory=dict)
  signature: str = ""
  positions: Mapping[str, int] = dataclasses.field(default_factory=dict)
  notes: Tuple[str, ...] = ()

  def __post_init__(self):
    keep = {}
    for name in sorted(self.keep):
      idx = self.keep[name]
      if isinstance(idx, (str, bytes)) or not all(_is_int(i) for i in idx):
        raise UsageError(f"the plan's kept channels of layer {name!r} must be integers, got "
                         f"{list(idx)[:5]!r}")
      idx = [int(i) for i in idx]
      if not idx:
        raise UsageError(f"the plan keeps no channel of layer {name!r}; keep at least one index")
      if min(idx) < 0:
        raise UsageError(f"the plan for layer {name!r} has negative channel indices "
                         f"{sorted(idx)[:5]}")
      if len(set(idx)) != len(idx):
        raise UsageError(f"the plan for layer {name!r} repeats channel indices; give each once")
      keep[str(name)] = tuple(sorted(idx))
    object.__setattr__(self, "keep", keep)
    object.__setattr__(self, "dropped_blocks", tuple(str(b) for b in self.dropped_blocks))
    object.__setattr__(self, "masks", {str(k): np.asarray(m, bool) for k, m in self.masks.items()})
    object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))

  # -- what it is
  @property
  def sparse(self) -> bool:
    """Weight masks: counted in FLOPs convention B, trained with fixed masks."""
    return bool(self.masks)

  def widths(self) -> Dict[str, int]:
    """Layer key -> number of kept output channels (what Scratch-E/B build)."""
    return {name: len(idx) for name, idx in self.keep.items()}

  def sparsity(self) -> Dict[str, float]:
    """Masked layer key -> fraction of its kernel's weights that are pruned."""
    return {k: float(1.0 - m.mean()) for k, m in self.masks.items()}

  def global_sparsity(self) -> float:
    """Fraction of all masked weights that are pruned (0 without masks)."""
    total = sum(m.size for m in self.masks.values())
    return float(sum(m.size - m.sum() for m in self.masks.values()) / max(1, total))

  def summary(self) -> str:
    """One line a person can read."""
    parts = [f"plan ({self.method or 'unknown method'}{', ' + self.variant if self.variant else ''})"]
    if self.keep:
      parts.append(f"{len(self.keep)} layers pruned")
    if self.dropped_blocks:
      parts.append(f"{len(self.dropped_blocks)} blocks removed ({', '.join(self.dropped_blocks[:4])}"
                   f"{', ...' if len(self.dropped_blocks) > 4 else ''})")
    if self.masks:
      parts.append(f"{100 * self.global_sparsity():.2f}% of the weights of {len(self.masks)} "
                   "convs pruned")
    if self.reconstruction:
      parts.append(f"{len(self.reconstruction)} consumers reconstructed by least squares")
    if self.notes:
      parts.append(f"{len(self.notes)} notes: " + "; ".join(self.notes[:3]) +
                   ("; ..." if len(self.notes) > 3 else ""))
    return ", ".join(parts)

  def replace(self, **changes) -> "Plan":
    return dataclasses.replace(self, **changes)

  def stamped(self, model) -> "Plan":
    """This plan with the graph signature and layer positions of `model` (its source)."""
    from tf_rethink.pruning.graph import view  # pylint: disable=import-outside-toplevel
    graph = view(model)
    positions = graph.positions()
    names = self._names()
    return self.replace(signature=graph.signature(),
                        positions={k: positions[k] for k in names if k in positions})

  def _names(self) -> List[str]:
    return sorted(set(self.keep) | set(self.masks) | set(self.reconstruction))

  # -- matching another instance
  def resolve(self, model) -> "Plan":
    """This plan with its layer keys mapped onto `model`'s: by name when they all exist, else by
    graph position when `model` has the source's architecture (Keras named it differently)."""
    from tf_rethink.pruning.graph import view  # pylint: disable=import-outside-toplevel
    graph = view(model)
    keys = set(graph.keys())
    names = self._names()
    missing = [n for n in names if n not in keys]
    if not missing:
      return self
    if not self.signature or graph.signature() != self.signature or not all(
        n in self.positions for n in names):
      shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                        else "")
      raise UsageError(f"the plan names layers that model {model.name!r} does not have ({shown}) "
                       "and the model's architecture is not the plan's, so they cannot be matched "
                       "by position either; was the plan made for another model?")
    rename = {n: graph.calls[self.positions[n]].key for n in names}
    clashes = [n for n in names if n in keys and rename[n] != n]
    if clashes:
      _log.warning("plan matched by graph position; layer name(s) %s exist in model %r at other "
                   "positions (ambiguous names ignored)", ", ".join(clashes[:5]), model.name)
    else:
      _log.info("plan matched by graph position: %d layers are named differently in model %r",
                len(missing), model.name)
    return self.replace(
        keep={rename[k]: v for k, v in self.keep.items()},
        masks={rename[k]: v for k, v in self.masks.items()},
        reconstruction={rename[k]: v for k, v in self.reconstruction.items()},
        positions={rename[k]: v for k, v in self.positions.items() if k in rename})

  # -- rebuilding the pruned model
  def apply(self, model, *, copy_weights: bool = True):
    """The pruned model: blocks removed, channels cut (surviving weights copied, reconstructed
    consumers where the plan's reconstruction was made for `model`'s weights), weights masked
    with fixed-mask wrappers. `copy_weights=False`: fresh initialization (no reconstruction)."""
    from tf_rethink.pruning import surgery  # pylint: disable=import-outside-toplevel
    plan = self.resolve(model)
    out = model
    if plan.dropped_blocks:
      from tf_rethink.pruning import blocks  # pylint: disable=import-outside-toplevel
      from tf_rethink.pruning.graph import view  # pylint: disable=import-outside-toplevel
      out = surgery.rebuild(out, blocks.block_edits(view(out), drop=plan.dropped_blocks),
                            copy_weights=copy_weights)
    if plan.keep:
      out = surgery.shrink(out, plan.keep, copy_weights=copy_weights)
      if copy_weights and plan.reconstruction:
        plan._reconstruct(model, out)
    if plan.masks:
      from tf_rethink.pruning import weight_masks  # pylint: disable=import-outside-toplevel
      out = weight_masks.wrap(out, plan.masks)
    if out is model:      # an empty plan: still a new model, never the caller's own
      out = surgery.rebuild(model, copy_weights=copy_weights)
    return out

  def _reconstruct(self, source, small) -> None:
    from tf_rethink.pruning.graph import view  # pylint: disable=import-outside-toplevel
    source_graph, small_graph = view(source), view(small)
    skipped = []
    for key, rec in self.reconstruction.items():
      weights = source_graph.layer(key).get_weights()
      if fingerprint(weights[0]) != rec.source:
        skipped.append(key)
        continue
      kernel = rec.kernel
      if key in self.keep:
        kernel = np.take(kernel, self.keep[key], axis=-1)
      layer = small_graph.layer(key)
      new = layer.get_weights()
      new[0] = kernel.reshape(new[0].shape).astype(new[0].dtype)
      layer.set_weights(new)
    if skipped:
      _log.info("plan: reconstruction of %s skipped (made for other weights); plain slicing",
                ", ".join(skipped))

  def build_fresh(self, build_full: Callable[[], object]):
    """The pruned architecture freshly initialized (Scratch-E / Scratch-B). Masked convs get the
    reference's N(0, 2/n), n = nnz / C_in (spec 3.3)."""
    model = self.apply(build_full(), copy_weights=False)
    if self.masks:
      from tf_rethink.pruning import weight_masks  # pylint: disable=import-outside-toplevel
      weight_masks.reinit(model, self.resolve(model).masks)
    return model

  def callbacks(self, log_dir: Optional[str] = None) -> list:
    """Keras callbacks for training the pruned model (fixed masks need TF-MOT's step)."""
    if not self.masks:
      return []
    from tf_rethink.pruning import weight_masks  # pylint: disable=import-outside-toplevel
    return list(weight_masks.callbacks(log_dir))

  def export_model(self, model):
    """The model to export from a trained pruned model (mask wrappers stripped; zeros stay)."""
    if not self.masks:
      return model
    from tf_rethink.pruning import weight_masks  # pylint: disable=import-outside-toplevel
    return weight_masks.strip(model)

  # -- storage
  def to_json(self) -> str:
    data = {
        "format": FORMAT, "model": self.model, "method": self.method, "variant": self.variant,
        "keep": {k: list(v) for k, v in self.keep.items()},
        "dropped_blocks": list(self.dropped_blocks),
        "masks": {k: {"shape": list(m.shape), "kept": int(m.sum()),
                      "sparsity": round(1.0 - float(m.mean()), 6),
                      "bits": _pack(np.packbits(m.ravel()).tobytes())}
                  for k, m in self.masks.items()},
        "reconstruction": {k: {"shape": list(r.kernel.shape), "source": r.source,
                               "float32": _pack(np.ascontiguousarray(r.kernel, np.float32)
                                                .tobytes())}
                           for k, r in self.reconstruction.items()},
        "signature": self.signature, "positions": dict(self.positions),
        "notes": list(self.notes), "summary": self.summary()}
    return json.dumps(data, sort_keys=True, indent=1)

  @classmethod
  def from_json(cls, text: str, *, source: str = "plan") -> "Plan":
    """Parses `to_json` output; anything else is a one-line UsageError naming `source`."""
    try:
      data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
      raise UsageError(f"{source} is not valid JSON ({e}); pass a plan.json written by "
                       "tf_rethink, or delete it to prune again") from None
    return _parse(data, source)

  def save(self, path: str) -> None:
    """Writes the plan (one JSON file) atomically."""
    fs.write_text(path, self.to_json())

  @classmethod
  def load(cls, path: str) -> "Plan":
    """Reads a saved plan; a missing, unreadable or malformed file is a one-line UsageError."""
    try:
      with open(path, encoding="utf-8") as f:
        text = f.read()
    except (OSError, UnicodeDecodeError) as e:
      raise UsageError(f"cannot read the plan {path} ({e.__class__.__name__}: "
                       f"{getattr(e, 'strerror', None) or e}); pass a plan.json written by "
                       "tf_rethink, or delete it to prune again") from None
    return cls.from_json(text, source=path)

  def __eq__(self, other) -> bool:
    if not isinstance(other, Plan):
      return NotImplemented
    return (self.to_json() == other.to_json())

  __hash__ = None


def _is_int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _pack(raw: bytes) -> str:
  return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def _unpack(text: str) -> bytes:
  return zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))


_FIELDS = {"format", "model", "method", "variant", "keep", "dropped_blocks", "masks",
           "reconstruction", "signature", "positions", "notes", "summary"}


def _parse(data, source: str) -> Plan:
  def bad(why):
    raise UsageError(f"{source} is not a tf_rethink plan ({why}); pass a plan.json written by "
                     "tf_rethink, or delete it to prune again")
  if not isinstance(data, dict):
    bad("not a JSON object")
  if data.get("kind") == "mask" or "masks_file" in data:
    bad("a weight-mask plan of an older tf_rethink version, with its masks in a separate file")
  if "format" in data and data["format"] != FORMAT:
    bad(f"format {data['format']!r}, expected {FORMAT!r}")
  unknown = sorted(set(data) - _FIELDS)
  if unknown:
    bad(f"unknown keys {unknown[:5]}")
  if not any(k in data for k in ("keep", "masks", "dropped_blocks")):
    bad("no 'keep', 'masks' or 'dropped_blocks'")
  for key, kind in (("model", str), ("method", str), ("variant", str), ("keep", dict),
                    ("dropped_blocks", list), ("masks", dict), ("reconstruction", dict),
                    ("signature", str), ("positions", dict), ("notes", list)):
    if key in data and not isinstance(data[key], kind):
      bad(f"'{key}' must be a JSON {kind.__name__.replace('dict', 'object').replace('str', 'string')}")
  keep = {}
  for name, idx in data.get("keep", {}).items():
    if not isinstance(idx, list):
      bad(f"the kept channels of {name!r} must be a list of integers")
    keep[name] = tuple(idx)
  masks = {}
  for name, info in data.get("masks", {}).items():
    try:
      shape = tuple(int(d) for d in info["shape"])
      bits = np.frombuffer(_unpack(info["bits"]), np.uint8)
      mask = np.unpackbits(bits, count=int(np.prod(shape))).astype(bool).reshape(shape)
      if int(mask.sum()) != int(info["kept"]):
        bad(f"the mask of {name!r} disagrees with its kept count")
    except UsageError:
      raise
    except (KeyError, TypeError, ValueError, zlib.error):
      bad(f"the mask of {name!r} is damaged")
    masks[name] = mask
  recon = {}
  for name, info in data.get("reconstruction", {}).items():
    try:
      shape = tuple(int(d) for d in info["shape"])
      kernel = np.frombuffer(_unpack(info["float32"]), np.float32).reshape(shape).copy()
      recon[name] = Reconstruction(kernel, str(info["source"]))
    except (KeyError, TypeError, ValueError, zlib.error):
      bad(f"the reconstruction of {name!r} is damaged")
  positions = {}
  for name, pos in data.get("positions", {}).items():
    if not _is_int(pos):
      bad(f"the position of {name!r} must be an integer")
    positions[name] = int(pos)
  if not all(isinstance(b, str) for b in data.get("dropped_blocks", [])):
    bad("'dropped_blocks' must be a list of block names")
  return Plan(model=data.get("model", ""), method=data.get("method", ""),
              variant=data.get("variant", ""), keep=keep,
              dropped_blocks=tuple(data.get("dropped_blocks", ())), masks=masks,
              reconstruction=recon, signature=data.get("signature", ""), positions=positions,
              notes=tuple(str(n) for n in data.get("notes", ())))


# The name the first round's API used for channel plans.
PrunePlan = Plan
