"""The offline planner: a question in plain words -> a grounded plan, with no model and no network.

See :mod:`lore.plan.offline.planner` for the passes and their order.
"""

from lore.plan.offline.env import Context, Searcher
from lore.plan.offline.planner import PASSES, OfflinePlanner
from lore.plan.offline.request import safety_check
from lore.plan.offline.text import MAX_QUESTION_CHARS, normalise

__all__ = ["MAX_QUESTION_CHARS", "PASSES", "Context", "OfflinePlanner", "Searcher", "normalise", "safety_check"]
