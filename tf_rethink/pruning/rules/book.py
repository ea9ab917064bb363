"""The rule book: layer class -> `Rule`, one registration per layer type for every Keras.

`RULES.register(rule, "Conv2D", ...)` maps the class of that name in `tf_keras.layers` and in
Keras 3's `keras.layers` (each resolved the first time a layer of that Keras is looked up, so
tf_keras users never import Keras 3); `"tf_keras:<module>.<Class>"` / `"keras3:<module>.<Class>"`
name a class of one Keras only (tf_keras' `TFOpLambda`, Keras 3's `keras.ops` operations), and
`RULES.register_class(rule, cls)` takes a class object (a zoo layer registers its rule next to its
definition). Lookup follows the layer's MRO, so a subclass inherits its base's rule unless it has
its own; the MRO walk comes first, so a subclass of a registered class (e.g. a layer derived from
Conv2D) is found even before the names of its Keras are resolved. `rule_for(call, graph)` adds the fallback of `probe` for types without a rule.
"""
import sys
from typing import Dict, List, Optional

from tf_rethink.pruning.rules.base import Rule


class RuleBook:
  """Layer class -> rule (see the module docstring)."""

  def __init__(self):
    self._names: List[tuple] = []             # (name, rule) in registration order
    self._classes: Dict[type, Rule] = {}
    self._pending: Dict[str, List[tuple]] = {}   # api name -> names not resolved yet

  def register(self, rule: Rule, *names: str) -> Rule:
    for name in names:
      self._names.append((name, rule))
      for pending in self._pending.values():
        pending.append((name, rule))
    return rule

  def register_class(self, rule: Rule, *classes: type) -> Rule:
    for cls in classes:
      self._classes[cls] = rule
    return rule

  def _resolve(self, api_name: str, layers_module) -> None:
    """Maps the names of `api_name` to classes. A `<api>:<module>.<Class>` name is looked up only
    once its module is imported (a model cannot hold a class of a module never imported), so
    resolving never imports anything; unresolved names are retried on later lookups."""
    pending = self._pending.setdefault(api_name, list(self._names))
    still = []
    for name, rule in pending:
      cls = _resolve_name(name, api_name, layers_module)
      if cls is not None:
        self._classes.setdefault(cls, rule)
      elif name.startswith(f"{api_name}:") or ":" not in name:
        still.append((name, rule))
    self._pending[api_name] = still

  def lookup(self, layer) -> Optional[Rule]:
    """The registered rule of `layer`'s class (or of its nearest registered base class)."""
    from tf_rethink.pruning import graph as graph_lib  # pylint: disable=import-outside-toplevel
    rule = self._find(type(layer))
    if rule is None:
      api = graph_lib.adapter_of(layer)
      self._resolve(api.NAME, api.layers)
      rule = self._find(type(layer))
    return rule

  def _find(self, cls: type) -> Optional[Rule]:
    for base in cls.__mro__:
      if base in self._classes:
        return self._classes[base]
    return None

  def rule_for(self, call, graph) -> Optional[Rule]:
    """The rule of a call: the registered one, else a rule `probe` establishes by running it."""
    rule = self.lookup(call.layer)
    if rule is None:
      from tf_rethink.pruning.rules import probe  # pylint: disable=import-outside-toplevel
      rule = probe.probed_rule(call, graph)
    return rule


def _resolve_name(name: str, api_name: str, layers_module):
  if ":" in name:
    api, path = name.split(":", 1)
    module, _, attr = path.rpartition(".")
    if api != api_name or module not in sys.modules:
      return None
    return getattr(sys.modules[module], attr, None)
  return getattr(layers_module, name, None)


RULES = RuleBook()
