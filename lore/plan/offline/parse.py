"""One question while it is planned: its tokens, what explained each of them, and the plan under construction.

A :class:`Parse` is made for each question and handed from pass to pass; nothing about a question is ever
kept on the planner, so one planner answers any number of questions at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from lore.plan.catalog import PhraseMatch, Token
from lore.plan.offline.text import tokens_in
from lore.plan.timeparse import TimeRange
from lore.plan.words import PEOPLE_COUNT_RE
from lore.types import (AdhocMetric, Compare, Filter, Grounding, OrderBy, PerEntity, PlanOutcome, QueryPlan, Share,
                        Threshold, TimeWindow)


@dataclass
class Draft:
    """The plan being built."""

    metrics: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    time: TimeWindow | None = None
    order_by: list[OrderBy] = field(default_factory=list)
    limit: int | None = None
    groundings: list[Grounding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
    #: metrics to suggest when none could be chosen
    candidates: list[str] = field(default_factory=list)
    #: filters carried over from the previous turn (a new value on the same node replaces them)
    inherited_filters: list[Filter] = field(default_factory=list)
    #: metrics defined in the question itself
    adhoc: list[AdhocMetric] = field(default_factory=list)
    #: a listing: the node whose rows are listed (no aggregation)
    rows_of: str | None = None
    #: each row's share of a total
    share: Share | None = None
    #: breakdowns the ranking is taken within ("top 3 products in each store")
    rank_within: list[str] = field(default_factory=list)
    #: two periods side by side, with the change ("2025 vs 2026"); ``time`` is then the window covering both
    compare: Compare | None = None
    #: each metric per entity, averaged ("hours per account")
    per: PerEntity | None = None
    #: a running total over the time breakdown ("cumulative revenue by month")
    running_total: bool = False
    #: how many entities pass a metric threshold ("accounts that streamed more than 10 hours")
    threshold: Threshold | None = None

    def base_metrics(self) -> list[str]:
        """The metrics, with each ad hoc metric replaced by the governed metrics its expression names."""
        out: list[str] = []
        adhoc = {a.name: a for a in self.adhoc}
        for name in self.metrics:
            parts = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", adhoc[name].expr) if name in adhoc else [name]
            out += [x for x in parts if x not in out]
        return out

    def add_dimension(self, ref: str, grounding: Grounding) -> bool:
        """Add a breakdown once (a time attribute at another grain replaces nothing: it is another column)."""
        if ref in self.dimensions:
            return False
        self.dimensions.append(ref)
        self.groundings.append(grounding)
        return True

    def plan(self, planner: str = "offline") -> QueryPlan:
        live = set(self.metrics) | set(self.dimensions) | {f.describe() for f in self.filters} | \
            ({self.time.label} if self.time else set())
        groundings = [g for g in self.groundings if g.kind not in ("metric", "dimension", "grain", "filter", "time")
                      or g.ref in live]
        # the same metric or breakdown named twice ("orders ... ordered", "quarterly ... by quarter") is asked once
        return QueryPlan(metrics=tuple(dict.fromkeys(self.metrics)), dimensions=tuple(dict.fromkeys(self.dimensions)),
                         filters=tuple(self.filters),
                         time=self.time, order_by=tuple(self.order_by), limit=self.limit,
                         groundings=tuple(groundings), planner=planner, notes=tuple(dict.fromkeys(self.notes)),
                         adhoc=tuple(self.adhoc), rows_of=self.rows_of, share=self.share,
                         rank_within=tuple(self.rank_within), compare=self.compare,
                         per=self.per, running_total=self.running_total, threshold=self.threshold)


@dataclass(frozen=True)
class Mention:
    """A value named in the question: the attribute it belongs to, the value, where, and how sure (0..1)."""

    ref: str
    value: str
    span: tuple[int, int]
    score: float


@dataclass(frozen=True)
class Unresolved:
    """Words after a breakdown trigger that name nothing the layer knows ("by payment method")."""

    trigger: str
    words: str
    tokens: tuple[int, ...]


@dataclass
class Parse:
    """Everything known about one question while it is planned (see the module docstring)."""

    question: str
    today: date
    previous: QueryPlan | None
    tokens: list[Token] = field(default_factory=list)
    draft: Draft = field(default_factory=Draft)
    #: token index -> what explained it ("time", "metric", "dimension", "value", "order", "operator", ...)
    used: dict[int, str] = field(default_factory=dict)
    #: time ranges for the metric's own time, and ranges that name a date attribute ("signed up in 2025")
    ranges: list[TimeRange] = field(default_factory=list)
    attached: list[tuple[TimeRange, list[str], list[int]]] = field(default_factory=list)
    #: the compared periods are one period and the same one a unit earlier ("YoY"): cut short alike by the data
    like_for_like: bool = False
    #: an offset compared the latest period because the question named none ("and vs last year?"): its unit, so a
    #: follow-up compares the previous answer's period instead
    latest_offset: str | None = None
    #: ranges that turned out to be part of a name ("the Q3 2025 pricing test")
    name_ranges: list[TimeRange] = field(default_factory=list)
    grain_tokens: set[int] = field(default_factory=set)
    #: value mentions found, and those accepted as filters-to-be
    mentions: list[Mention] = field(default_factory=list)
    accepted: list[Mention] = field(default_factory=list)
    #: every value mention found, also those a metric phrase took ("the least popular *drink*")
    all_mentions: list[Mention] = field(default_factory=list)
    #: tokens of value mentions (a metric phrase may not take them)
    reserved: set[int] = field(default_factory=set)
    metric_matches: list[PhraseMatch] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    #: the words each breakdown was read from
    dimension_tokens: dict[str, tuple[int, ...]] = field(default_factory=dict)
    followup: bool = False
    #: set by a pass that settles the question (a refusal or a clarifying question): planning stops
    outcome: PlanOutcome | None = None

    def use(self, indexes: set[int] | range | list[int], why: str) -> None:
        """Mark tokens as explained (the first explanation stays)."""
        for i in indexes:
            self.used.setdefault(i, why)

    @property
    def consumed(self) -> set[int]:
        return set(self.used)

    def words(self, start: int, end: int) -> str:
        """The question's own text from token ``start`` to ``end`` (exclusive)."""
        return self.question[self.tokens[start].start:self.tokens[end - 1].end]

    def people_counted(self) -> int | None:
        """The token of the people the question counts ("how many *customers*", "number of unique *users*")."""
        hit = PEOPLE_COUNT_RE.search(self.question)
        if hit is None:
            return None
        return min(tokens_in(self.tokens, hit.span(2)), default=None)

    def settle(self, outcome: PlanOutcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
