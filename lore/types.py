"""Frozen pydantic models that cross stage boundaries.

Stages never hand each other dicts or DataFrames: a semantic query goes into
the compiler, a :class:`CompiledQuery` comes out, the guard and the engine turn
it into a :class:`ResultSet`, and so on.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

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
        from decimal import Decimal

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
        if self.time is not None and (tf := self.time.filter()) is not None:
            filters.append(tf)
        return SemanticQuery(metrics=self.metrics, dimensions=self.dimensions, filters=tuple(filters),
                             order_by=self.order_by, limit=self.limit, adhoc=self.adhoc, rows_of=self.rows_of)

    def key(self) -> str:
        """A canonical text of what the plan computes (for caches and comparisons)."""
        import json

        fields = {"metrics", "dimensions", "filters", "time", "order_by", "limit", "sql"}
        if self.adhoc:
            fields.add("adhoc")
        if self.rows_of:
            fields.add("rows_of")
        return json.dumps(self.model_dump(include=fields, mode="json"), sort_keys=True)


class PlanOutcome(Frozen):
    """What a planner returns: a plan, a clarifying question, or a refusal."""

    status: Literal["plan", "clarify", "refuse"]
    plan: QueryPlan | None = None
    message: str = ""
    #: for clarify: the closest metrics (or other choices) to offer
    suggestions: tuple[str, ...] = ()
    #: named signals for the confidence score, each 0..1
    signals: dict[str, float] = Field(default_factory=dict)


class StageTiming(Frozen):
    stage: str
    ms: float


class Trace(Frozen):
    """Every intermediate artifact of one answer (MetricFlow-style explain)."""

    question: str
    retrieved: tuple[dict[str, Any], ...] = ()
    outcome: PlanOutcome | None = None
    compiled: CompiledQuery | None = None
    guarded_sql: str | None = None
    timings: tuple[StageTiming, ...] = ()
    error: str | None = None
    #: the result and chart came from the answer cache: compile, guard, execute and chart were skipped
    cache_hit: bool = False
    #: retrieval and planning were skipped: the same question, in the same context, was planned before
    plan_cache_hit: bool = False


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
