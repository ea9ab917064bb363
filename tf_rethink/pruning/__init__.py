"""Structured pruning: plans, pruners (METHODS registry), scores, selection, surgery.

Importing this package registers every method (`--method` value == module name == registry key).
"""
import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
from tf_rethink.registry import Registry
from tf_rethink.pruning.base import Option, PrunePlan, Pruner

METHODS = Registry("method")

from tf_rethink.pruning import l1_norm  # noqa: E402,F401  (registers "l1_norm")

__all__ = ["METHODS", "Option", "PrunePlan", "Pruner"]
