"""The rule book: one rule per layer type, read by every part of the engine (see `base`, `book`).

Importing this package registers the rules of the Keras layers (`conv`, `normalization`,
`elementwise`, `shape`, `ops`) and of keras.applications' custom layers (`applications`); the
package's own zoo layers register theirs where they are defined (`tf_rethink.models.layers`,
`tf_rethink.models.channel_gather`). Adding a layer type is one `RULES.register(...)` call.
"""
from tf_rethink.pruning.rules.base import (MAP, MERGE, PRODUCER, Cost, Ctx, Cut, Free, Idx,
                                           Pointwise, Rule, channels, expand, full)
from tf_rethink.pruning.rules.book import RULES, RuleBook
from tf_rethink.pruning.rules import conv, elementwise, normalization, shape  # noqa: F401
from tf_rethink.pruning.rules import ops, applications, tfmot  # noqa: F401

__all__ = ["MAP", "MERGE", "PRODUCER", "RULES", "Cost", "Ctx", "Cut", "Free", "Idx", "Pointwise",
           "Rule", "RuleBook", "channels", "expand", "full"]
