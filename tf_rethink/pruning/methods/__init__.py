"""Pruning methods: one module per method, each registering one `Pruner` (`--method` value ==
module name == registry key). Every module of this package is imported here, so a new method is
one file (plus its test); `registry` and `base` hold the registry and the common interface.
"""
import importlib
import pkgutil

from tf_rethink.pruning.methods.base import Option, Pruner
from tf_rethink.pruning.methods.registry import METHODS

for _module in pkgutil.iter_modules(__path__):
  if _module.name not in ("base", "registry"):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "Option", "Pruner"]
