"""What every pass may consult: the layer's lexicon, retrieval and today. Built once per planner, read-only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from lore.plan.catalog import Catalog
from lore.plan.offline.lexicon import Lexicon


class Searcher(Protocol):
    """What the planner needs from retrieval (the real :class:`lore.retrieve.Retriever` fits)."""

    def search(self, question: str, *, k: int = 8, kinds=None): ...  # noqa: ANN001, ANN201

    def match_values(self, question: str): ...  # noqa: ANN201


@dataclass
class Context:
    """Everything the planner consults; built once per project and reused."""

    catalog: Catalog
    searcher: Searcher | None
    today: date
    #: the distinct values the value index holds (ref -> values); lets aliases reach every attribute with that value
    values: dict[str, list[str]] = field(default_factory=dict)
    #: each fact's first and last day of data (node -> (first, last), ISO dates)
    bounds: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Env:
    """The read-only view the passes share: the lexicon, retrieval, the data's bounds and the day questions are
    asked on."""

    lex: Lexicon
    searcher: Searcher | None
    today: date
    bounds: dict[str, tuple[str, str]] = field(default_factory=dict)
