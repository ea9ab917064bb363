"""The method registry (`--method` values): each method module registers its `Pruner` here."""
from tf_rethink.util.registry import Registry

METHODS: Registry = Registry("method")
