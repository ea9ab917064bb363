"""The engine on models no one here wrote: every keras.applications family, pruned and checked.

`FAMILIES` lists, per family, its members buildable offline (weights=None) at a small input size
(the smallest each allows); `check(name)` prunes one with L1-norm at a ratio (channel groups
included) and measures what the README's table shows: params and FLOPs before / after, channel
groups pruned and left unpruned (with why), the share of conv / dense layers pruned, and the
seconds the pruning took. The tests (`tests/pruning/test_applications.py`) add the equivalence
checks (shrunk = masked original, a fresh instance re-pruned by position, the serving export).
"""
import dataclasses
import time
from typing import Callable, Dict, Tuple

import numpy as np

HEAD = dict(weights=None, classes=10, classifier_activation=None)


_FAMILIES = (  # (name, family, options, smallest convenient input)
    ("ResNet50", "ResNet", {}, (32, 32, 3)), ("ResNet101", "ResNet", {}, (32, 32, 3)),
    ("ResNet50V2", "ResNetV2", {}, (32, 32, 3)), ("ResNetRS50", "ResNetRS", {}, (32, 32, 3)),
    ("MobileNet", "MobileNet", {"alpha": 0.25}, (32, 32, 3)),
    ("MobileNetV2", "MobileNetV2", {"alpha": 0.35}, (32, 32, 3)),
    ("MobileNetV3Small", "MobileNetV3", {}, (32, 32, 3)),
    ("MobileNetV3Large", "MobileNetV3", {}, (32, 32, 3)),
    ("EfficientNetB0", "EfficientNet", {}, (32, 32, 3)),
    ("EfficientNetV2B0", "EfficientNetV2", {}, (32, 32, 3)),
    ("DenseNet121", "DenseNet", {}, (32, 32, 3)), ("InceptionV3", "Inception", {}, (75, 75, 3)),
    ("InceptionResNetV2", "InceptionResNet", {}, (75, 75, 3)),
    ("Xception", "Xception", {}, (71, 71, 3)), ("NASNetMobile", "NASNet", {}, (32, 32, 3)),
    ("RegNetX002", "RegNet", {}, (32, 32, 3)), ("RegNetY002", "RegNet", {}, (32, 32, 3)),
    ("ConvNeXtTiny", "ConvNeXt", {}, (32, 32, 3)), ("VGG16", "VGG", {}, (32, 32, 3)),
)


def _builders(keras) -> Dict[str, Tuple[str, Callable, tuple]]:
  """name -> (family, builder(input_shape), input shape) of the models this Keras has (Keras 3
  has no ResNetRS / RegNet)."""
  a = keras.applications

  def app(name, options):
    return lambda shape: getattr(a, name)(input_shape=shape, **HEAD, **options)
  return {name: (family, app(name, options), shape) for name, family, options, shape in _FAMILIES
          if hasattr(a, name)}


def build(name: str, keras=None, input_shape=None):
  """A keras.applications model (tf_keras unless `keras` is given) with random weights."""
  if keras is None:
    import tf_rethink  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    import tf_keras as keras  # pylint: disable=import-outside-toplevel
  _, builder, shape = _builders(keras)[name]
  return builder(tuple(input_shape or shape))


def names(keras=None):
  if keras is None:
    import tf_rethink  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    import tf_keras as keras  # pylint: disable=import-outside-toplevel
  return list(_builders(keras))


def family(name: str) -> str:
  import tf_rethink  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  import tf_keras as keras  # pylint: disable=import-outside-toplevel
  return _builders(keras)[name][0]


@dataclasses.dataclass(frozen=True)
class Row:
  """One model's measured row of the README table."""
  name: str
  family: str
  input_shape: tuple
  params: Tuple[int, int]
  flops: Tuple[int, int]
  groups_pruned: int
  groups_left: int
  layers_pruned: int
  layers: int
  left_unpruned: str
  prune_seconds: float


def check(model, name: str = "", ratio: float = 0.3) -> Tuple[Row, object, object]:
  """Prunes `model` with L1-norm at `ratio` (coupled groups too); returns (row, small, plan)."""
  import tf_rethink  # pylint: disable=import-outside-toplevel
  from tf_rethink import flops  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning.graph import view  # pylint: disable=import-outside-toplevel
  from tf_rethink.pruning.rules import PRODUCER, RULES, Ctx  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  small, plan = tf_rethink.prune(model, method="l1_norm", ratio=ratio)
  seconds = time.perf_counter() - start
  report = tf_rethink.channel_groups(model)
  graph = view(model)
  producers = []
  for key in graph.keys():
    call = graph.calls_of(key)[0]
    rule = RULES.rule_for(call, graph)
    if rule is not None and rule.role_of(Ctx(call, graph, ())) == PRODUCER and rule.kernel(
        call.layer) is not None:
      producers.append(key)
  before, after = flops.count(model), flops.count(small)
  left = [g for g in report.groups if not g.prunable]
  row = Row(name=name or model.name, family=family(name) if name else "",
            input_shape=tuple(model.input_shape[1:]), params=(before.params, after.params),
            flops=(before.flops, after.flops), groups_pruned=len(report.groups) - len(left),
            groups_left=len(left), layers_pruned=sum(1 for k in producers if k in plan.keep),
            layers=len(producers), left_unpruned=report.summary(),
            prune_seconds=round(seconds, 2))
  return row, small, plan


def table(rows) -> str:
  """Markdown: the README's table of models proven."""
  lines = ["| model | input | params before -> after | FLOPs before -> after | conv/dense layers "
           "pruned | groups pruned / left | prune s |", "|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r.name} | {r.input_shape[0]}x{r.input_shape[1]} | {r.params[0] / 1e6:.2f}M "
                 f"-> {r.params[1] / 1e6:.2f}M | {r.flops[0] / 1e6:.0f}M -> {r.flops[1] / 1e6:.0f}M"
                 f" | {r.layers_pruned}/{r.layers} ({100 * r.layers_pruned / max(1, r.layers):.0f}%)"
                 f" | {r.groups_pruned} / {r.groups_left} | {r.prune_seconds:.1f} |")
  return "\n".join(lines)


def is_a(layer, class_name: str) -> bool:
  """isinstance by class name, for tf_keras and Keras 3 layers alike."""
  return class_name in {cls.__name__ for cls in type(layer).__mro__}


def random_weights(model, seed: int = 0):
  """Random weights that keep activations at scale through deep models (untrained models have
  BN statistics (0, 1) and would pass the zero-initialized paths of some families unchanged):
  kernels N(0, 1/fan_in), BN gamma U(0.5, 1.5), beta and mean N(0, 0.2), variance U(0.5, 1.5),
  other vectors N(0, 0.1). Every layer, nested models' included; returns `model`."""
  from tf_rethink.pruning.graph import view  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  graph = view(model)
  for layer in (graph.layer(k) for k in graph.keys()):
    weights = layer.get_weights() if hasattr(layer, "get_weights") else []
    if weights:
      new = _scaled(rng, layer, weights)
      layer.set_weights([np.asarray(n).astype(w.dtype) for n, w in zip(new, weights)])
  return model


def _scaled(rng, layer, weights):
  if is_a(layer, "Normalization"):   # mean, variance (> 0), count
    return [rng.normal(0, 0.1, weights[0].shape), rng.uniform(0.5, 1.5, weights[1].shape)
            ] + list(weights[2:])
  if is_a(layer, "BatchNormalization"):
    kinds = (["gamma"] if layer.scale else []) + (["beta"] if layer.center else []) + ["m", "v"]
    draw = {"gamma": lambda s: rng.uniform(0.5, 1.5, s), "beta": lambda s: rng.normal(0, 0.2, s),
            "m": lambda s: rng.normal(0, 0.2, s), "v": lambda s: rng.uniform(0.5, 1.5, s)}
    return [draw[k](w.shape) for k, w in zip(kinds, weights)]
  out = []
  for w in weights:
    if w.ndim < 2:
      out.append(rng.normal(0, 0.1, w.shape))
      continue
    per_output = is_a(layer, "DepthwiseConv2D") or (is_a(layer, "SeparableConv2D") and w is
                                                     weights[0])
    fan_in = int(np.prod(w.shape[:-2] if per_output else w.shape[:-1]))
    out.append(rng.normal(0, 1.0 / np.sqrt(max(fan_in, 1)), w.shape))
  return out


def sample(model, n: int = 2, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=(n,) + tuple(model.input_shape[1:])).astype(
      np.float32)
