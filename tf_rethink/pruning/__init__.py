"""Structured pruning: plans, pruners (METHODS registry), scores, selection, surgery.

Importing this package registers every method (`--method` value == module name == registry key).
"""
import tf_rethink  # noqa: F401  (selects tf_keras before TensorFlow is imported)
from tf_rethink.util.registry import Registry
from tf_rethink.pruning.base import Option, PrunePlan, Pruner

METHODS = Registry("method")

from tf_rethink.pruning import l1_norm  # noqa: E402,F401  (registers "l1_norm")
from tf_rethink.pruning import magnitude  # noqa: E402,F401  (registers "magnitude")
from tf_rethink.pruning import thinet  # noqa: E402,F401  (registers "thinet")
from tf_rethink.pruning import regression  # noqa: E402,F401  (registers "regression")
from tf_rethink.pruning import network_slimming  # noqa: E402,F401  (registers it)
from tf_rethink.pruning import soft_filter_pruning  # noqa: E402,F401  (registers it)
from tf_rethink.pruning import sparse_structure_selection  # noqa: E402,F401  (registers it)

__all__ = ["METHODS", "Option", "PrunePlan", "Pruner"]
