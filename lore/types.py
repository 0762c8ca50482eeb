"""Frozen pydantic models that cross stage boundaries.

Stages never hand each other dicts or DataFrames: a semantic query goes into
the compiler, a :class:`CompiledQuery` comes out, the guard and the engine turn
it into a :class:`ResultSet`, and so on.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

Scalar = Union[str, int, float, bool, None]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


FilterOp = Literal[
    "=", "!=", "<", "<=", ">", ">=", "in", "not_in", "between", "like", "not_like", "is_null", "is_not_null"
]


class Filter(Frozen):
    """A structured filter: a reference (dimension or metric), an operator and literal values.

    Values are quoted through sqlglot by the compiler, never pasted into SQL text.
    """

    ref: str
    op: FilterOp = "="
    values: tuple[Scalar, ...] = ()

    def describe(self) -> str:
        """A short human-readable form.

        >>> Filter(ref="accounts.plan", op="in", values=("premium", "standard")).describe()
        'accounts.plan in (premium, standard)'
        >>> Filter(ref="metric_time", op="between", values=("2026-01-01", "2026-03-31")).describe()
        'metric_time between 2026-01-01 and 2026-03-31'
        """
        vals = [str(v) for v in self.values]
        if self.op in ("in", "not_in"):
            return f"{self.ref} {self.op.replace('_', ' ')} ({', '.join(vals)})"
        if self.op == "between" and len(vals) == 2:
            return f"{self.ref} between {vals[0]} and {vals[1]}"
        if self.op in ("is_null", "is_not_null"):
            return f"{self.ref} {self.op.replace('_', ' ')}"
        return f"{self.ref} {self.op.replace('_', ' ')} {vals[0] if vals else ''}".rstrip()


class OrderBy(Frozen):
    """Order by a metric name or a dimension reference (as requested in the query)."""

    ref: str
    descending: bool = False


class AdhocMetric(Frozen):
    """A metric defined in the question itself ("margin, which is revenue minus supply cost"): arithmetic over
    governed metrics, compiled like a derived metric and always shown as ad hoc."""

    #: a name for its column, never a metric name of the layer
    name: str
    #: the words the question used for it
    label: str
    #: over metric names, numbers, + - * / and parentheses
    expr: str


class Share(Frozen):
    """Share of a total: each row's part of the whole, as a fraction (0..1), in a column ``<metric>_share``.

    - "hours by region, as a share of the total": ``Share()`` with the region as the query's dimension;
    - "each device's share within each region": ``Share(within=("countries.region",))``, both as dimensions;
    - "what % of hours came from mobile": the device as a dimension, ``keep`` the mobile row: the whole is
      every device's hours (the query's filters still apply), only the mobile row is shown;
    - "what share of each store's sales was food": ``Share(metric="food_sales", whole="sales")``, the cut over
      its whole in each row.

    Only a metric that adds up (a sum or a count) has shares; the compiler says so otherwise.
    """

    #: the metric whose share is taken (None: the query's first metric)
    metric: str | None = None
    #: dimensions of the query the whole is taken within (empty: the grand total)
    within: tuple[str, ...] = ()
    #: filters on the query's dimensions applied to the shares, after the whole is taken
    keep: tuple[Filter, ...] = ()
    #: the whole is another metric of the query, row by row: ``metric`` is a cut of it ("what share of sales was
    #: food": food sales over sales, in each row); no window, ``within`` and ``keep`` stay empty
    whole: str | None = None


class TimeWindow(Frozen):
    """A resolved date range (inclusive), applied to each fact's own time column."""

    start: date | None = None
    end: date | None = None
    label: str = ""

    def filter(self) -> Filter | None:
        """The metric_time filter for this window.

        >>> TimeWindow(start=date(2026, 1, 1), end=date(2026, 3, 31)).filter().values
        ('2026-01-01', '2026-03-31')
        """
        if self.start and self.end:
            return Filter(ref="metric_time", op="between", values=(self.start.isoformat(), self.end.isoformat()))
        if self.start:
            return Filter(ref="metric_time", op=">=", values=(self.start.isoformat(),))
        if self.end:
            return Filter(ref="metric_time", op="<=", values=(self.end.isoformat(),))
        return None


class Compare(Frozen):
    """Two periods side by side ("Q3 2026 vs Q3 2025", "from last month to this month", "year over year"): each
    metric of the query once per period, then its change and its percent change, in each row of the query's
    dimensions ("which region grew most from 2025 to 2026": ordered by the change).

    Columns, per metric ``m``: ``m_<earlier period>``, ``m_<later period>`` (named from the periods' labels),
    ``m_change`` (later minus earlier) and ``m_change_pct`` (the change as a fraction of the earlier; empty when the
    earlier is 0 or missing). A metric that adds up (a sum or a count) counts a row missing from a period as 0;
    any other (a ratio, an average, a distinct count) leaves it empty. Each period is computed whole, as the query
    would compute it over that period alone, so every kind of metric compares correctly.
    """

    #: the two periods, each with a start and an end (in any order: the earlier is the base of the change)
    periods: tuple[TimeWindow, TimeWindow]

    @field_validator("periods")
    @classmethod
    def _bounded(cls, periods: tuple[TimeWindow, TimeWindow]) -> tuple[TimeWindow, TimeWindow]:
        for p in periods:
            if p.start is None or p.end is None:
                raise ValueError(f"each compared period needs a start and an end (got {p.label or p})")
            if p.start > p.end:
                raise ValueError(f"the period {p.label or p} ends before it starts")
        if (periods[0].start, periods[0].end) == (periods[1].start, periods[1].end):
            raise ValueError("the two compared periods are the same")
        return periods

    def ordered(self) -> tuple[TimeWindow, TimeWindow]:
        """The periods, the earlier (the base of the change) first."""
        a, b = self.periods
        return (a, b) if (a.start, a.end) <= (b.start, b.end) else (b, a)  # type: ignore[operator]


class PerEntity(Frozen):
    """A metric per entity ("hours per premium account", "minutes per active player", "sessions per viewer each
    month"): the metric computed for each entity (each value of ``entity``, an identifier dimension such as
    ``accounts.account_id``), then averaged over the entities, in each row of the query's dimensions. Only
    entities with rows count (the "active" ones: an account that streamed nothing has no hours to average).
    ``grain`` takes each entity's value per time bucket first ("per account per month": every account-month, then
    their average). The column is ``<metric>_per_<entity's node>``.

    ``stat`` takes the highest or the lowest entity's value instead of the average ("the priciest single order",
    "the most anyone spent on one order": ``max``); the column is then ``max_<metric>_per_<entity>`` (``min_``)."""

    #: the identifier dimension naming the entity
    entity: str
    #: a time grain each entity's value is taken at before the average ("per month"), None for the whole period
    grain: str | None = None
    #: what is taken over the entities' values: their average, the highest or the lowest
    stat: Literal["avg", "max", "min"] = "avg"


class Threshold(Frozen):
    """How many entities pass a metric threshold ("accounts that streamed more than 10 hours in October",
    "customers who ordered more than 5 times"): ``metric`` computed for each entity (each value of ``entity``) in
    each row of the query's dimensions, and the entities whose value passes ``op value`` counted, in a column
    ``<entity's node>_count``. The query names no other metric (its ``metrics`` are empty or this one)."""

    #: the identifier dimension naming the entities counted
    entity: str
    #: the metric each entity's value is
    metric: str
    op: Literal[">", ">=", "<", "<=", "=", "!="]
    value: float


class SemanticQuery(Frozen):
    """What to compute: metrics at a dimensional grain, with filters, order and limit.

    ``filters`` holds structured :class:`Filter` objects or SQL predicate strings over
    references (``"accounts.plan = 'premium'"``); predicates on dimensions become WHERE,
    on metrics HAVING.
    """

    metrics: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    filters: tuple[Union[Filter, str], ...] = ()
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    #: metrics defined by the question (their names may appear in ``metrics``)
    adhoc: tuple[AdhocMetric, ...] = ()
    #: a listing: rows of this node, with ``dimensions`` as its columns and no aggregation
    rows_of: str | None = None
    #: each row's share of a total (see :class:`Share`)
    share: Share | None = None
    #: dimensions of the query to rank within: ``limit`` rows of each of their groups, by ``order_by``
    #: ("top 3 genres in each region"), ties kept, with a ``rank`` column
    rank_within: tuple[str, ...] = ()
    #: two periods side by side with the change (see :class:`Compare`); the query's filters must not bound its
    #: time: each period does
    compare: Compare | None = None
    #: each metric per entity, averaged over the entities (see :class:`PerEntity`)
    per: PerEntity | None = None
    #: a running total of each metric over the query's time breakdown ("cumulative revenue by month"), in a column
    #: ``<metric>_running_total`` next to each bucket's own value, restarting for each value of the other
    #: breakdowns; only metrics that add up (sums and counts) have one
    running_total: bool = False
    #: how many entities pass a metric threshold (see :class:`Threshold`)
    threshold: Threshold | None = None


class ColumnMeta(Frozen):
    """One output column: its SQL name, a readable label and what it means."""

    name: str
    label: str
    kind: Literal["metric", "dimension", "value"] = "value"
    ref: str | None = None
    type: str | None = None
    unit: str | None = None
    format: str | None = None
    grain: str | None = None


class CompiledQuery(Frozen):
    """The compiler's output: SQL for one dialect plus what every column means."""

    sql: str
    dialect: str = "duckdb"
    columns: tuple[ColumnMeta, ...] = ()
    query: SemanticQuery = Field(default_factory=SemanticQuery)
    #: physical tables read
    tables: tuple[str, ...] = ()
    #: human-readable joins, e.g. "streaming_sessions -> accounts (account_id)"
    joins: tuple[str, ...] = ()
    #: base metrics computed, after derived metrics were expanded
    base_metrics: tuple[str, ...] = ()


class ResultSet(Frozen):
    """A query result: columns with types, and JSON-serialisable rows."""

    columns: tuple[ColumnMeta, ...]
    rows: tuple[tuple[Scalar, ...], ...]
    truncated: bool = False
    elapsed_ms: float = 0.0
    sql: str | None = None
    #: a listing: how many rows there are in all (the rows shown may be fewer)
    total_rows: int | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def described_by(self, columns: tuple[ColumnMeta, ...]) -> ResultSet:
        """This result with the compiler's meaning of each column (label, kind, unit, format), matched by name;
        by position only when the names differ in case or quoting alone. Unchanged when they do not fit.

        >>> r = ResultSet(columns=(ColumnMeta(name="hours", label="hours"),), rows=((1.0,),))
        >>> r.described_by((ColumnMeta(name="hours", label="Streaming hours", kind="metric"),)).columns[0].label
        'Streaming hours'
        >>> r.described_by((ColumnMeta(name="region", label="Region"),)).columns[0].label
        'hours'
        """
        if not columns or len(columns) != len(self.columns):
            return self
        mine = [c.name.strip('"').lower() for c in self.columns]
        if mine != [c.name.strip('"').lower() for c in columns]:
            return self
        return self.model_copy(update={"columns": columns})

    def records(self) -> list[dict[str, Scalar]]:
        names = self.column_names
        return [dict(zip(names, row)) for row in self.rows]


def to_scalar(value: Any) -> Scalar:
    """Turn a database value into a JSON-serialisable scalar.

    >>> to_scalar(date(2026, 1, 31))
    '2026-01-31'
    >>> from decimal import Decimal
    >>> to_scalar(Decimal("1.50"))
    1.5
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    try:
        if isinstance(value, Decimal):
            return float(value)
    except ImportError:  # pragma: no cover
        pass
    return str(value)


ChartKind = Literal["kpi", "line", "bar", "grouped_bar", "stacked_bar", "scatter", "table"]


class ChartSpec(Frozen):
    """A chart chosen by rules from a closed set: a declarative Vega-Lite spec, never code.

    ``spec`` is ``None`` for kind ``"table"`` (the result reads best as a table).
    """

    kind: ChartKind
    title: str
    subtitle: str | None = None
    #: the Vega-Lite spec, data inline; None for kind "table"
    spec: dict[str, Any] | None
    #: why this chart was chosen, one sentence
    reason: str


# --- retrieval and the guard ------------------------------------------------


Kind = Literal["metric", "dimension", "value", "example"]


class ValueMatch(NamedTuple):
    """A dimension value mentioned in a question: where, and how sure (0..1)."""

    ref: str
    value: str
    span: tuple[int, int]
    score: float


class Hit(Frozen):
    """One retrieved document and why it scored."""

    kind: Kind
    #: the document id in the index, e.g. ``metric:total_streaming_hours``
    id: str
    #: metric name | dimension ref ``node.attr`` | for values the dimension ref | example id
    ref: str
    #: the value, for kind=value
    value: str | None = None
    #: what was indexed
    text: str
    #: combined score, 0..1
    score: float
    vector_score: float
    lexical_score: float


class RetrievalResult(Frozen):
    """What a search found: up to ``k`` hits of each kind searched, best first overall.

    The ``retrieve`` stage searches every kind for the question (:meth:`lore.retrieve.Retriever.retrieve`) and
    also records the indexed values the question names verbatim (``values``); planners take what they need
    from it (:meth:`top`) instead of searching again.
    """

    question: str
    hits: tuple[Hit, ...] = ()
    #: how many hits of each kind were kept (0: unknown, a result of another search)
    k: int = 0
    #: the kinds searched
    kinds: tuple[str, ...] = ()
    #: indexed values named verbatim in the question (None: not looked up)
    values: tuple[ValueMatch, ...] | None = None

    def of_kind(self, kind: str) -> list[Hit]:
        """The hits of one kind, best first."""
        return [h for h in self.hits if h.kind == kind]

    def serves(self, question: str, k: int, kinds: tuple[str, ...] | list[str] | None = None) -> bool:
        """Whether this result holds the ``k`` best hits of ``kinds`` for ``question`` (so no new search is needed)."""
        wanted = kinds if kinds is not None else ("metric", "dimension", "value", "example")
        return question == self.question and 0 < k <= self.k and all(kind in self.kinds for kind in wanted)

    def top(self, k: int, kinds: tuple[str, ...] | list[str] | None = None) -> RetrievalResult:
        """The best ``k`` hits of each of ``kinds`` (default: all), in this result's order."""
        seen: dict[str, int] = {}
        kept: list[Hit] = []
        for hit in self.hits:
            if kinds is not None and hit.kind not in kinds:
                continue
            if seen.get(hit.kind, 0) < k:
                seen[hit.kind] = seen.get(hit.kind, 0) + 1
                kept.append(hit)
        return self.model_copy(update={"hits": tuple(kept), "k": k, "kinds": tuple(kinds or self.kinds)})


class GuardedSQL(Frozen):
    """SQL that passed the guard, regenerated from the checked tree."""

    #: the SQL to execute: dialect-rendered, identifiers qualified and quoted, comments stripped
    sql: str
    #: allowed (physical) tables the query reads, sorted
    tables: tuple[str, ...]
    #: the outer LIMIT of ``sql``
    limit: int
    #: the query had no LIMIT and the default was added
    limit_added: bool = False
    #: the query asked for more than ``max_rows`` rows and the LIMIT was lowered
    limit_clamped: bool = False
    #: tables whose rows were limited to the user's access scope (see lore/access)
    row_filtered: tuple[str, ...] = ()


# --- questions, plans, answers --------------------------------------------


class Grounding(Frozen):
    """Why a plan element is there: the words of the question it came from and how they matched."""

    #: metric | dimension | filter | time | grain | order | limit | context | example
    kind: str
    #: the metric name, dimension reference or filter description it grounded
    ref: str
    #: the words of the question (or "previous question")
    phrase: str
    #: how it matched: name | label | synonym | value | description | vector | rule | previous turn | verified example
    source: str
    #: strength of the match, 0..1
    score: float = 1.0


class QueryPlan(Frozen):
    """A grounded plan: a semantic query plus where each part of it came from."""

    metrics: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    time: TimeWindow | None = None
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    groundings: tuple[Grounding, ...] = ()
    #: which planner made it: offline | example | llm:<model>
    planner: str = "offline"
    #: free SQL written by an LLM for a question the layer cannot express (guarded like any SQL)
    sql: str | None = None
    notes: tuple[str, ...] = ()
    #: metrics the question defined itself (see :class:`AdhocMetric`)
    adhoc: tuple[AdhocMetric, ...] = ()
    #: a listing: the node whose rows are listed, ``dimensions`` being the columns shown
    rows_of: str | None = None
    #: each row's share of a total (see :class:`Share`)
    share: Share | None = None
    #: rank within each group of these dimensions ("top 3 genres in each region"; see :class:`SemanticQuery`)
    rank_within: tuple[str, ...] = ()
    #: two periods side by side with the change (see :class:`Compare`); ``time`` is then the window covering both
    compare: Compare | None = None
    #: each metric per entity, averaged over the entities (see :class:`PerEntity`)
    per: PerEntity | None = None
    #: a running total of each metric over the query's time breakdown ("cumulative revenue by month"), in a column
    #: ``<metric>_running_total`` next to each bucket's own value, restarting for each value of the other
    #: breakdowns; only metrics that add up (sums and counts) have one
    running_total: bool = False
    #: how many entities pass a metric threshold (see :class:`Threshold`)
    threshold: Threshold | None = None

    @property
    def runs_sql(self) -> bool:
        """Whether this plan runs its free SQL (it names no metric) rather than its compiled semantic query.

        A plan naming metrics always runs its semantic query, even when it also carries SQL: the SQL is then
        only a claim about the same result (a correction's, checked when it is reviewed).

        >>> QueryPlan(sql="SELECT 1").runs_sql, QueryPlan(metrics=("m",), sql="SELECT 1").runs_sql
        (True, False)
        """
        return bool(self.sql) and not self.metrics

    def semantic_query(self) -> SemanticQuery:
        filters: list[Filter | str] = list(self.filters)
        if self.time is not None and self.compare is None and (tf := self.time.filter()) is not None:
            filters.append(tf)  # (a comparison's periods bound its time, each its own side)
        return SemanticQuery(metrics=self.metrics, dimensions=self.dimensions, filters=tuple(filters),
                             order_by=self.order_by, limit=self.limit, adhoc=self.adhoc, rows_of=self.rows_of,
                             share=self.share, rank_within=self.rank_within, compare=self.compare, per=self.per,
                             running_total=self.running_total, threshold=self.threshold)

    def key(self) -> str:
        """A canonical text of what the plan computes (for caches and comparisons)."""
        fields = {"metrics", "dimensions", "filters", "time", "order_by", "limit", "sql"}
        # the operations join the key only when set, so a plan without them keeps the key it always had
        fields |= {f for f in ("adhoc", "rows_of", "share", "rank_within", "compare", "per", "running_total",
                               "threshold") if getattr(self, f)}
        return json.dumps(self.model_dump(include=fields, mode="json"), sort_keys=True)


class Signals(Frozen):
    """What a planner knows about how sure its reading is: named numbers (most in 0..1), each set only when it
    applies. :func:`lore.explain.confidence.factors_from_signals` turns them into the confidence factors.

    A planner may build them as a dict (``PlanOutcome(signals={"metric_match": 1.0})``): the names are
    checked, so a misspelt signal fails where it is written instead of being silently ignored.

    >>> s = Signals(metric_match=0.9)
    >>> s.get("metric_match"), s.get("coverage", 1.0), "coverage" in s
    (0.9, 1.0, False)
    >>> s.with_(coverage=0.5).items()
    [('metric_match', 0.9), ('coverage', 0.5)]
    """

    # -- how the metric was found
    #: the weakest metric grounding (1: named outright; lower: found by likeness; 0: none found)
    metric_match: float | None = None
    #: how far the best metric found by likeness was ahead of the next one
    metric_margin: float | None = None
    #: the vector score of the best metric found by likeness
    metric_vector_score: float | None = None
    #: how many metrics were candidates by likeness
    vector_candidates: float | None = None
    #: the model's evidence for its metric (its retrieval score)
    metric_evidence: float | None = None
    # -- how much of the question the plan explains
    #: the share of the question's content words the plan explains
    coverage: float | None = None
    #: the confidence never exceeds this (a word unexplained, a guess)
    coverage_cap: float | None = None
    #: how many content words were left unexplained
    unexplained_words: float | None = None
    # -- values, attributes and words
    #: how surely filter values were recognised
    value_match: float | None = None
    #: a value with several readings
    value_ambiguity: float | None = None
    #: a value whose attribute the metric cannot reach
    value_unreachable: float | None = None
    #: 0: a value named that no metric reaches
    value_reach: float | None = None
    #: 0: a breakdown no metric reaches
    dimension_reach: float | None = None
    #: a word read as another, one letter off
    spelling: float | None = None
    #: a time word read as a name
    time_is_name: float | None = None
    # -- the kind of answer
    #: a metric the question defined itself (never high confidence)
    adhoc: float | None = None
    #: the plan refines the previous answer
    followup: float | None = None
    #: a ranking was asked for
    ranked: float | None = None
    #: a superlative ("the most") was asked for
    superlative: float | None = None
    #: the period asked for has no data
    no_data: float | None = None
    # -- why a question was not planned (0 says which check stopped it)
    intent: float | None = None
    in_scope: float | None = None
    safety: float | None = None
    access: float | None = None
    # -- where the plan came from
    #: reused from a verified example
    example: float | None = None
    #: the offline planner and the model agreed (1) or not (0.5)
    agreement: float | None = None
    #: a similar question with this plan was voted down
    feedback: float | None = None
    #: free SQL written by the model
    free_sql: float | None = None
    #: 1 / the model's attempt that produced the plan
    llm_attempts: float | None = None
    #: 0: the model's replies stayed invalid
    llm_retries: float | None = None
    #: the model asked back
    llm_clarify: float | None = None

    def get(self, name: str, default: float | None = None) -> float | None:
        """The signal ``name``, or ``default`` when it is not set."""
        value = getattr(self, name) if name in type(self).model_fields else None
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, float]]:
        """The signals that are set, as (name, value) pairs."""
        return [(k, v) for k, v in self if v is not None]

    def __repr_args__(self):  # noqa: ANN204 - pydantic's repr hook: only the signals that are set
        return [(k, v) for k, v in super().__repr_args__() if v is not None]

    def with_(self, **changes: float) -> Signals:
        """A copy with ``changes`` set (names checked)."""
        return type(self).model_validate({**dict(self.items()), **changes})


class PlanOutcome(Frozen):
    """What a planner returns: a plan, a clarifying question, or a refusal."""

    status: Literal["plan", "clarify", "refuse"]
    plan: QueryPlan | None = None
    message: str = ""
    #: for clarify: the closest metrics (or other choices) to offer
    suggestions: tuple[str, ...] = ()
    #: what the planner knows about how sure its reading is
    signals: Signals = Field(default_factory=Signals)

    @field_validator("signals", mode="before")
    @classmethod
    def _signals_from_dict(cls, value: Any) -> Any:
        return Signals.model_validate(value) if isinstance(value, dict) else value


class StageTiming(Frozen):
    stage: str
    ms: float


class Context(Frozen):
    """What a question builds on in its conversation: the last answer's plan and confidence (a follow-up refines
    the plan and can be no surer than it)."""

    previous: QueryPlan | None = None
    #: the confidence of the answer ``previous`` came from
    confidence: float | None = None


class Question(Frozen):
    """One question as every stage sees it: cleaned text, who asked, in which conversation, on what context."""

    #: the answer's id (made when the question is asked, so the model's log can link to it)
    id: str
    #: the question, cleaned (:func:`lore.inputs.clean_question`)
    text: str
    user: str | None = None
    conversation_id: str | None = None
    #: when it was asked (UTC, ISO 8601, seconds)
    asked_at: str = ""
    context: Context = Field(default_factory=Context)

    @property
    def previous(self) -> QueryPlan | None:
        return self.context.previous


class Trace(Frozen):
    """Every artifact of one answer, as the stages made them (MetricFlow-style explain): ``--explain``, the eval
    harness and the chat page's "How I got this" all read this one object."""

    question: str
    #: the retrieve stage's documents and value mentions (the planners read the same object)
    retrieval: RetrievalResult | None = None
    #: the plan stage's outcome (a plan, a clarifying question or a refusal, with its signals)
    outcome: PlanOutcome | None = None
    #: the compile stage's SQL and column meanings
    compiled: CompiledQuery | None = None
    #: the guard stage's checked SQL (what ran)
    guarded: GuardedSQL | None = None
    #: the execute stage's rows (not serialised: the answer holds the same rows)
    result: ResultSet | None = Field(default=None, exclude=True)
    #: the chart stage's choice
    chart: ChartSpec | None = None
    timings: tuple[StageTiming, ...] = ()
    error: str | None = None
    #: the result and chart came from the answer cache: compile, guard, execute and chart were skipped
    cache_hit: bool = False
    #: retrieval and planning were skipped: the same question, in the same context, was planned before
    plan_cache_hit: bool = False

    @property
    def retrieved(self) -> tuple[Hit, ...]:
        """The retrieved documents, best first."""
        return self.retrieval.hits if self.retrieval is not None else ()

    @property
    def guarded_sql(self) -> str | None:
        return self.guarded.sql if self.guarded is not None else None


class Answer(Frozen):
    """LORE's answer to one question (the public contract used by the UI, Slack and the evals)."""

    id: str
    question: str
    status: Literal["answered", "clarify", "refused", "error"]
    message: str
    #: one line saying what was computed ("Revenue by store and month, 2025"), shown before the answer
    restatement: str | None = None
    sql: str | None = None
    columns: tuple[ColumnMeta, ...] = ()
    rows: tuple[tuple[Scalar, ...], ...] = ()
    chart: dict[str, Any] | None = None
    chart_kind: str | None = None
    chart_title: str | None = None
    reasoning: tuple[str, ...] = ()
    confidence: float = 0.0
    confidence_factors: dict[str, float] = Field(default_factory=dict)
    suggestions: tuple[str, ...] = ()
    plan: QueryPlan | None = None
    truncated: bool = False
    user: str | None = None
    conversation_id: str | None = None
    created_at: str = ""
    trace: Trace | None = None

    @property
    def confidence_label(self) -> str:
        """high (>= 0.8), medium (>= 0.5) or low.

        >>> Answer(id="a", question="q", status="answered", message="", confidence=0.85).confidence_label
        'high'
        """
        return "high" if self.confidence >= 0.8 else "medium" if self.confidence >= 0.5 else "low"

    @property
    def reasoning_text(self) -> str:
        return "\n".join(f"{i}. {step}" for i, step in enumerate(self.reasoning, 1))

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (without the trace)."""
        return self.model_dump(mode="json", exclude={"trace"})
