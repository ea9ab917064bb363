"""The regime registry (`--regime` values): each regime module registers its functions here."""
from tf_rethink.util.registry import Registry

REGIMES: Registry = Registry("regime")
