"""Compile a semantic query into a sqlglot tree and SQL for any dialect.

The algorithm (see ``shared/semantic-layer.md``):

1. resolve every reference; expand derived metrics (cycles are errors);
2. group base metrics by their source fact;
3. for each fact, find the join path of every dimension and filter reference
   (:mod:`lore.semantic.graph`);
4. one CTE per fact, aggregated straight to the requested grain, with
   ``agg(CASE WHEN filter THEN expr END)`` for filtered metrics. When the
   fact's joins can repeat its rows (a one_to_many or many_to_many link whose
   key is not pinned) and a metric would change under repetition, the CTE
   aggregates over ``SELECT DISTINCT`` of the fact's primary key, the dimension
   values and the columns the metrics read: each fact row counts once per
   combination of dimension values it reaches. A fact without a primary key
   cannot be deduplicated and is refused;
5. several facts: UNION ALL of NULL-padded rows, then GROUP BY the dimensions;
6. the outer select computes derived metrics (NULL-safe division), metric
   filters (HAVING semantics), ORDER BY and LIMIT.

Everything is built as sqlglot expressions; literals are quoted by sqlglot.
"""

from __future__ import annotations

import calendar
import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialects
from sqlglot.errors import ParseError

from lore.errors import CompileError, FilterError, UnknownReference
from lore.semantic.graph import (
    FANNING,
    Edge,
    LinkGraph,
    Path,
    choose_path,
    conjuncts,
    describe_path,
    pinned_columns,
)
from lore.semantic.spec import (
    DUPLICATION_INVARIANT,
    GRAINS,
    METRIC_TIME,
    Column,
    DimensionRef,
    Metric,
    Node,
    DURATION_UNITS,
    SemanticLayer,
    inline_label,
    parse_duration,
)
from lore.tables import table_expr, table_key
from lore.types import ColumnMeta, CompiledQuery, Filter, OrderBy, SemanticQuery, TimeWindow

#: dialects the compiler is tested on (any sqlglot dialect is accepted)
DIALECTS = ("duckdb", "postgres", "snowflake", "bigquery", "trino", "spark")

_PLACEHOLDER = re.compile(r"^__ref(\d+)__$")


def portable(tree: exp.Expression, dialect: str) -> exp.Expression:
    """``tree`` with the functions ``dialect`` lacks written in ones it has (sqlglot renders the rest).

    PostgreSQL has no ``arg_min``/``arg_max``: the first of the values ordered by the key, NULLs skipped as DuckDB
    skips them (a layer's ``sql:`` node may use them, written in DuckDB's SQL).

    >>> tree = sqlglot.parse_one("SELECT arg_min(store, ordered_at) FROM orders", read="duckdb")
    >>> portable(tree, "postgres").sql("postgres")
    'SELECT (ARRAY_AGG(store ORDER BY ordered_at ASC) FILTER(WHERE NOT store IS NULL AND NOT ordered_at IS NULL))[1] FROM orders'
    """
    if dialect != "postgres":
        return tree

    def rewrite(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, (exp.ArgMin, exp.ArgMax)):
            return node
        value, key = node.this, node.expression
        ordered = exp.Ordered(this=key.copy(), desc=isinstance(node, exp.ArgMax), nulls_first=False)
        collected = exp.ArrayAgg(this=exp.Order(this=value.copy(), expressions=[ordered]))
        known = exp.and_(exp.not_(value.copy().is_(exp.null())), exp.not_(key.copy().is_(exp.null())))
        kept = exp.Filter(this=collected, expression=exp.Where(this=known))
        return exp.Bracket(this=exp.Paren(this=kept), expressions=[exp.Literal.number(1)], offset=1)

    return tree.copy().transform(rewrite)


def null_safe_eq(left: exp.Expression, right: exp.Expression, dialect: str) -> exp.Expression:
    """``left`` equals ``right``, NULL equal to NULL, as a join condition ``dialect`` can run.

    PostgreSQL runs a FULL JOIN only on a hash- or merge-joinable condition, which ``IS NOT DISTINCT FROM`` is
    not; one-element arrays compare NULLs as equal and hash, so two periods' rows pair up there too.

    >>> null_safe_eq(exp.column("x", table="a"), exp.column("x", table="b"), "duckdb").sql("duckdb")
    'a.x IS NOT DISTINCT FROM b.x'
    >>> null_safe_eq(exp.column("x", table="a"), exp.column("x", table="b"), "postgres").sql("postgres")
    'ARRAY[a.x] = ARRAY[b.x]'
    """
    if dialect == "postgres":
        return exp.EQ(this=exp.Array(expressions=[left]), expression=exp.Array(expressions=[right]))
    return exp.NullSafeEQ(this=left, expression=right)

#: node types a filter may contain: comparisons of references with literals
_FILTER_NODES: tuple[type[exp.Expression], ...] = (
    exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
    exp.In, exp.Between, exp.Like, exp.ILike, exp.Is, exp.Null, exp.Literal, exp.Boolean,
    exp.Column, exp.Identifier, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Cast,
    exp.DataType, exp.DataTypeParam, exp.Tuple, exp.Var, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Lower, exp.Upper, exp.Coalesce,
)

_AGGS: dict[str, Callable[[exp.Expression], exp.Expression]] = {
    "sum": lambda e: exp.Sum(this=e),
    "avg": lambda e: exp.Avg(this=e),
    "min": lambda e: exp.Min(this=e),
    "max": lambda e: exp.Max(this=e),
    "count": lambda e: exp.Count(this=e),
    "count_distinct": lambda e: exp.Count(this=exp.Distinct(expressions=[e])),
}


def suggest(name: str, options: Sequence[str], n: int = 5) -> list[str]:
    """The closest valid names to ``name``.

    >>> suggest("total_streaming_hour", ["total_streaming_hours", "cloud_cost"])
    ['total_streaming_hours']
    """
    close = difflib.get_close_matches(name, list(options), n=n, cutoff=0.5)
    if not close:
        low = name.lower()
        close = [o for o in options if low and (low in o.lower() or o.lower().split(".")[-1] in low)][:n]
    return close


def threshold_shown(fmt: str | None, value: float) -> str:
    """A threshold's number as its metric is shown ("10%" for 0.1 of a percent metric).

    >>> threshold_shown("percent", 0.1), threshold_shown("integer", 10.0), threshold_shown("currency", 500000.0)
    ('10%', '10', '500,000')
    """
    if fmt == "percent":
        return f"{value * 100:g}%"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


# --- references ---------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedDim:
    """A dimension reference resolved against the layer."""

    ref: DimensionRef
    node: Node | None  # None for metric_time
    column: Column | None

    @property
    def key(self) -> str:
        return self.ref.key

    @property
    def is_time(self) -> bool:
        return self.ref.is_metric_time or (self.column is not None and self.column.kind == "time")


def all_dimension_refs(layer: SemanticLayer) -> list[str]:
    refs = [METRIC_TIME]
    for node in layer.nodes.values():
        refs += [f"{node.name}.{c.name}" for c in node.columns]
    return refs


def resolve_dimension(layer: SemanticLayer, text: str) -> ResolvedDim:
    """Resolve ``node.attr[roles]:grain`` against the layer, with suggestions on failure."""
    ref = DimensionRef.parse(text)
    if ref.is_metric_time:
        return ResolvedDim(ref, None, None)
    node = layer.nodes.get(ref.node)
    if node is None:
        raise UnknownReference(f"unknown dimension '{text}': there is no node '{ref.node}'",
                               suggestions=suggest(f"{ref.node}.{ref.attribute}", all_dimension_refs(layer)))
    column = node.column(ref.attribute)
    if column is None:
        raise UnknownReference(
            f"unknown dimension '{text}': '{ref.node}' has no attribute '{ref.attribute}'",
            suggestions=suggest(f"{ref.node}.{ref.attribute}", all_dimension_refs(layer))
            or [f"{ref.node}.{c.name}" for c in node.columns][:8],
        )
    if ref.grain is not None:
        if column.kind != "time":
            raise UnknownReference(f"'{text}': a time grain applies only to time attributes, and {ref.node}.{ref.attribute} is {column.kind}")
        if ref.grain not in column.grains:
            raise UnknownReference(f"'{text}': grain '{ref.grain}' is not allowed", suggestions=[f"{ref.node}.{ref.attribute}:{g}" for g in column.grains])
    return ResolvedDim(ref, node, column)


#: the column of a listing that holds how many rows there are in all (shown as "N of M", not as a column)
TOTAL_ROWS = "__total_rows"
#: the rows a listing shows when the question sets no number
LISTING_LIMIT = 100


def with_adhoc(layer: SemanticLayer, adhoc) -> SemanticLayer:  # adhoc: Sequence[AdhocMetric]
    """The layer with a question's ad hoc metrics added as derived metrics (arithmetic over its metrics only)."""
    metrics = dict(layer.metrics)
    allowed = (exp.Column, exp.Identifier, exp.Literal, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Paren, exp.Neg)
    for a in adhoc:
        if a.name in layer.metrics:
            raise CompileError(f"the ad hoc metric '{a.name}' has the name of a governed metric")
        try:
            tree = sqlglot.parse_one(a.expr, read="duckdb")
        except ParseError as err:
            raise CompileError(f"the ad hoc metric '{a.label}' does not parse: {str(err).splitlines()[0]}") from None
        bad = [type(n).__name__ for n in tree.walk() if not isinstance(n, allowed)]
        if bad:
            raise CompileError(f"the ad hoc metric '{a.label}' may use metrics, numbers and + - * / only, not {bad[0]}")
        for col in tree.find_all(exp.Column):
            if col.name not in metrics:
                raise UnknownReference(f"the ad hoc metric '{a.label}' names '{col.name}', which is not a metric",
                                       suggestions=suggest(col.name, sorted(layer.metrics)))
        metrics[a.name] = Metric(name=a.name, label=a.label, expr=a.expr,
                                 description=f"Defined in the question as {a.expr}.")
    return layer.model_copy(update={"metrics": metrics})


def expand_metric(layer: SemanticLayer, name: str, _stack: tuple[str, ...] = ()) -> list[str]:
    """The base metrics a metric needs, in first-use order; derived cycles raise."""
    metric = layer.metrics.get(name)
    if metric is None:
        raise UnknownReference(f"unknown metric '{name}'", suggestions=suggest(name, sorted(layer.metrics)))
    if name in _stack:
        raise CompileError("derived metrics form a cycle: " + " -> ".join(_stack + (name,)))
    if not metric.is_derived:
        return [name]
    refs = derived_refs(metric)
    if not refs:  # no source and no metric in its expr: nothing to aggregate (`lore semantic validate` says so)
        raise CompileError(
            f"metric '{name}' has no definition: neither source and agg nor an expression over other metrics",
            hint="Fix the metric in the semantic layer; `lore semantic validate` lists it as metric_undefined.",
        )
    out: list[str] = []
    for ref in refs:
        for base in expand_metric(layer, ref, _stack + (name,)):
            if base not in out:
                out.append(base)
    return out


def derived_refs(metric: Metric) -> list[str]:
    """Metric names a derived metric's expression refers to.

    >>> derived_refs(Metric(name="r", expr="a / NULLIF(b, 0) + a"))
    ['a', 'b']
    """
    tree = sqlglot.parse_one(metric.expr, read="duckdb")
    names: list[str] = []
    for col in tree.find_all(exp.Column):
        if col.name not in names:
            names.append(col.name)
    return names


# --- filters ------------------------------------------------------------------


@dataclass
class Predicate:
    """A filter as a tree whose references are placeholders ``__refN__``."""

    tree: exp.Expression
    dims: dict[int, ResolvedDim] = field(default_factory=dict)
    metrics: dict[int, str] = field(default_factory=dict)
    text: str = ""

    @property
    def is_metric_filter(self) -> bool:
        return bool(self.metrics)


class _Refs:
    def __init__(self) -> None:
        self.n = 0

    def placeholder(self) -> tuple[int, exp.Column]:
        self.n += 1
        return self.n, exp.column(f"__ref{self.n}__")


def _literal(value: object) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _date_literals(tree: exp.Expression, time_ids: set[str]) -> exp.Expression:
    """Cast string literals compared with time references to DATE (portable date comparisons)."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Literal) and node.is_string:
            parent = node.parent
            cmp = parent.parent if isinstance(parent, (exp.Tuple, exp.Paren)) else parent
            if isinstance(cmp, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between)):
                sides = [cmp.this, cmp.args.get("expression")]
                is_time = any(isinstance(x, exp.Column) and x.name in time_ids for x in sides)
                if is_time and re.match(r"^\d{4}-\d{2}-\d{2}$", node.this):
                    return exp.Cast(this=node.copy(), to=exp.DataType.build("DATE"))
        return node

    return tree.transform(fix)


def _resolve_filter_ref(layer: SemanticLayer, col: exp.Column) -> tuple[str, str]:
    """``("metric", name)`` or ``("dim", ref text)`` for a column in a filter string."""
    name = col.name
    parts = [p.name for p in col.parts]
    text = ".".join(parts)
    if len(parts) == 1:
        if name in layer.metrics:
            return "metric", name
        if name == METRIC_TIME or any(ch in name for ch in ".[:"):
            return "dim", name
        raise UnknownReference(
            f"'{name}' in a filter is neither a metric nor node.attribute",
            suggestions=suggest(name, sorted(layer.metrics) + all_dimension_refs(layer)),
        )
    if len(parts) == 2:
        return "dim", text
    raise UnknownReference(f"'{text}' in a filter is not a reference", hint="Write node.attribute, e.g. countries.region.")


def _bracket_roles(node: exp.Expression) -> exp.Expression:
    """``airports.city[origin]`` parses as a subscript: turn it back into one reference."""
    if isinstance(node, exp.Bracket) and isinstance(node.this, exp.Column):
        roles = node.expressions
        if roles and all(isinstance(r, exp.Column) and not r.table for r in roles):
            text = ".".join(p.name for p in node.this.parts) + "[" + "->".join(r.name for r in roles) + "]"
            return exp.column(exp.to_identifier(text, quoted=True))
    return node


def parse_filter(layer: SemanticLayer, item: Filter | str, refs: _Refs) -> Predicate:
    """Turn a structured or string filter into a :class:`Predicate`."""
    if isinstance(item, Filter):
        return _structured_filter(layer, item, refs)
    text = item.strip()
    if not text:
        raise FilterError("empty filter", hint="Write a predicate such as accounts.plan = 'premium'.")
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except ParseError as err:
        raise FilterError(f"cannot parse filter {text!r}: {str(err).splitlines()[0]}",
                          hint="Write a predicate such as countries.region IN ('EMEA', 'APAC').") from None
    tree = tree.transform(_bracket_roles)
    for node in tree.walk():
        if not isinstance(node, _FILTER_NODES):
            raise FilterError(
                f"filter {text!r} uses {type(node).__name__}, which filters may not contain",
                hint="Filters compare references (node.attribute or a metric) with literal values, joined by AND/OR/NOT.",
            )
    pred = Predicate(tree=tree, text=text)
    time_ids: set[str] = set()

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            kind, name = _resolve_filter_ref(layer, node)
            n, ph = refs.placeholder()
            if kind == "metric":
                pred.metrics[n] = name
            else:
                dim = resolve_dimension(layer, name)
                pred.dims[n] = dim
                if dim.is_time:
                    time_ids.add(ph.name)
            return ph
        return node

    pred.tree = _date_literals(tree.transform(replace), time_ids)
    if pred.metrics and pred.dims:
        raise FilterError(f"filter {text!r} mixes metrics and dimensions",
                          hint="Split it: dimension filters apply to rows, metric filters to aggregated results.")
    return pred


def _structured_filter(layer: SemanticLayer, f: Filter, refs: _Refs) -> Predicate:
    n, ph = refs.placeholder()
    pred = Predicate(tree=ph, text=f"{f.ref} {f.op} {list(f.values)}")
    is_time = False
    if f.ref in layer.metrics:
        pred.metrics[n] = f.ref
    else:
        dim = resolve_dimension(layer, f.ref)
        pred.dims[n] = dim
        is_time = dim.is_time
    vals = [_literal(v) for v in f.values]
    need = {"is_null": 0, "is_not_null": 0, "between": 2}.get(f.op, None)
    if need is not None and len(vals) != need:
        raise FilterError(f"'{f.op}' takes {need} value(s), got {len(vals)} for {f.ref}")
    if f.op not in ("is_null", "is_not_null", "between", "in", "not_in") and len(vals) != 1:
        raise FilterError(f"'{f.op}' takes one value, got {len(vals)} for {f.ref}")
    if f.op in ("in", "not_in") and not vals:
        raise FilterError(f"'{f.op}' needs at least one value for {f.ref}")
    col = ph
    ops: dict[str, Callable[[], exp.Expression]] = {
        "=": lambda: exp.EQ(this=col, expression=vals[0]),
        "!=": lambda: exp.NEQ(this=col, expression=vals[0]),
        "<": lambda: exp.LT(this=col, expression=vals[0]),
        "<=": lambda: exp.LTE(this=col, expression=vals[0]),
        ">": lambda: exp.GT(this=col, expression=vals[0]),
        ">=": lambda: exp.GTE(this=col, expression=vals[0]),
        "in": lambda: exp.In(this=col, expressions=vals),
        "not_in": lambda: exp.Not(this=exp.In(this=col, expressions=vals)),
        "between": lambda: exp.Between(this=col, low=vals[0], high=vals[1]),
        "like": lambda: exp.Like(this=col, expression=vals[0]),
        "not_like": lambda: exp.Not(this=exp.Like(this=col, expression=vals[0])),
        "is_null": lambda: exp.Is(this=col, expression=exp.Null()),
        "is_not_null": lambda: exp.Not(this=exp.Is(this=col, expression=exp.Null())),
    }
    tree = ops[f.op]()
    pred.tree = _date_literals(tree, {ph.name} if is_time else set())
    pred.text = f.describe()
    return pred


def _equalities(preds: Sequence[Predicate]) -> list[tuple[str, str]]:
    """``(node, column)`` pairs fixed to a single literal by top-level equality filters."""
    return [(d.node.name, d.ref.attribute) for d in _equality_dims(preds) if d.node is not None]


def _equality_dims(preds: Sequence[Predicate]) -> list[ResolvedDim]:
    """Dimensions fixed to a single literal by top-level equality filters."""
    out = []
    for pred in preds:
        for c in conjuncts(pred.tree):
            subject = None
            if isinstance(c, exp.EQ) and isinstance(c.expression, (exp.Literal, exp.Cast)):
                subject = c.this
            elif isinstance(c, exp.In) and len(c.expressions) == 1 and not c.args.get("query"):
                subject = c.this
            if isinstance(subject, exp.Column):
                m = _PLACEHOLDER.match(subject.name)
                dim = pred.dims.get(int(m.group(1))) if m else None
                if dim is not None and dim.node is not None and not dim.ref.grain:
                    out.append(dim)
    return out


# --- SQL building blocks ---------------------------------------------------------


def time_trunc(col: exp.Expression, grain: str | None, dialect: str) -> exp.Expression:
    """Truncate a date column to a grain as a DATE; weeks start on Monday.

    >>> time_trunc(exp.column("d", "t"), "month", "duckdb").sql("duckdb")
    "CAST(DATE_TRUNC('MONTH', t.d) AS DATE)"
    >>> time_trunc(exp.column("d", "t"), "week", "bigquery").sql("bigquery")
    'CAST(DATE_TRUNC(t.d, ISOWEEK) AS DATE)'
    """
    if grain is None:
        return exp.Cast(this=col, to=exp.DataType.build("DATE"))
    unit = grain.upper()
    if grain == "week" and dialect == "bigquery":
        unit = "ISOWEEK"
    if grain == "day":
        return exp.Cast(this=col, to=exp.DataType.build("DATE"))
    return exp.Cast(this=exp.DateTrunc(this=col, unit=exp.var(unit)), to=exp.DataType.build("DATE"))


def _qualify_own(expr_text: str, node: Node, alias: str, what: str) -> exp.Expression:
    try:
        tree = sqlglot.parse_one(expr_text, read="duckdb")
    except ParseError as err:
        raise CompileError(f"{what}: cannot parse {expr_text!r}: {str(err).splitlines()[0]}") from None

    def fix(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Column):
            if n.table and n.table != node.name:
                raise CompileError(f"{what}: {n.sql()} is not a column of {node.name}")
            return exp.column(n.name, table=alias, quoted=False)
        return n

    return tree.transform(fix)


def metric_aggregate(metric: Metric, node: Node, alias: str) -> exp.Expression:
    """The aggregate expression of a base metric over its source, aliased ``alias``.

    >>> n = Node(name="s", table="s")
    >>> metric_aggregate(Metric(name="h", source="s", agg="sum", expr="hours", filter="kind = 'a'"), n, "s").sql()
    "SUM(CASE WHEN s.kind = 'a' THEN s.hours END)"
    >>> metric_aggregate(Metric(name="c", source="s", agg="count"), n, "s").sql()
    'COUNT(*)'
    """
    what = f"metric {metric.name}"
    arg: exp.Expression | None = None if metric.expr.strip() == "*" else _qualify_own(metric.expr, node, alias, what)
    if metric.filter:
        cond = _qualify_own(metric.filter, node, alias, what + " filter")
        arg = exp.Case(ifs=[exp.If(this=cond, true=arg if arg is not None else exp.Literal.number(1))])
    if arg is None:
        if metric.agg != "count":
            raise CompileError(f"{what}: '*' only works with agg: count")
        return exp.Count(this=exp.Star())
    return _AGGS[metric.agg or "sum"](arg)


def safe_divide(tree: exp.Expression) -> exp.Expression:
    """Make every division NULL-safe and floating-point.

    >>> safe_divide(sqlglot.parse_one("a / b")).sql()
    'CAST(a AS DOUBLE) / NULLIF(b, 0)'
    """

    def fix(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Div):
            return exp.Div(
                this=exp.Cast(this=n.this, to=exp.DataType.build("DOUBLE")),
                expression=exp.Nullif(this=n.expression, expression=exp.Literal.number(0)),
            )
        return n

    return tree.transform(fix)


def null_safe_sums(tree: exp.Expression) -> exp.Expression:
    """Make the metrics added or subtracted count as 0 where a group has none of their rows (``paid + expense -
    recoveries`` for a group with no recoveries is not NULL).

    >>> null_safe_sums(sqlglot.parse_one("a + b - c")).sql()
    'COALESCE(a, 0) + COALESCE(b, 0) - COALESCE(c, 0)'
    >>> null_safe_sums(sqlglot.parse_one("a / b")).sql()
    'a / b'
    """

    def fix(n: exp.Expression) -> exp.Expression:
        if isinstance(n, (exp.Add, exp.Sub)):
            for key in ("this", "expression"):
                side = n.args.get(key)
                if isinstance(side, exp.Column):
                    n.set(key, exp.Coalesce(this=side.copy(), expressions=[exp.Literal.number(0)]))
        return n

    return tree.transform(fix)


# --- the compiler -----------------------------------------------------------------


@dataclass
class _FactPlan:
    node: Node
    metrics: list[str]
    paths: dict[str, Path] = field(default_factory=dict)  # dim key -> path


def _dim_alias(dim: ResolvedDim) -> str:
    ref = dim.ref
    if ref.is_metric_time:
        return ref.grain or "date"
    base = ref.attribute if not ref.grain else f"{ref.attribute}_{ref.grain}"
    if ref.roles:
        base = "_".join(ref.roles) + "_" + base
    return base


def _dim_label(dim: ResolvedDim) -> str:
    ref = dim.ref
    if ref.is_metric_time:
        return (ref.grain or "date").capitalize()
    assert dim.column is not None
    label = dim.column.label or dim.column.name.replace("_", " ")
    label = label[0].upper() + label[1:] if label else label
    if ref.roles:
        label = " → ".join(r.replace("_", " ") for r in ref.roles).capitalize() + " " + label.lower()
    if ref.grain:
        label += f" ({ref.grain})"
    return label


#: the column ranking within groups adds
RANK_COLUMN = "rank"

def not_additive(metric: Metric) -> str | None:
    """Why a metric's parts do not add up to its whole (None: a sum or a count, they do), in words.

    >>> not_additive(Metric(name="m", source="t", agg="avg", expr="x"))
    'an average'
    """
    if metric.is_derived:
        return "a ratio of other metrics"
    return {"sum": None, "count": None, "avg": "an average", "min": "a minimum", "max": "a maximum",
            "count_distinct": "a count of distinct things (one can be counted in several parts)"}.get(metric.agg or "",
                                                                                                    "not a total")


def _period_names(early: TimeWindow, late: TimeWindow) -> tuple[str, str]:
    """Column suffixes for two compared periods, from their labels ("Q3 2025" -> ``q3_2025``), distinct.

    >>> from datetime import date
    >>> _period_names(TimeWindow(start=date(2025, 7, 1), end=date(2025, 9, 30), label="Q3 2025"),
    ...               TimeWindow(start=date(2026, 7, 1), end=date(2026, 9, 30), label="Q3 2026"))
    ('q3_2025', 'q3_2026')
    """
    def slug(w: TimeWindow) -> str:
        text = re.sub(r"[^a-z0-9]+", "_", (w.label or "").lower()).strip("_")
        return text or f"{w.start:%Y_%m_%d}"

    first, second = slug(early), slug(late)
    if first == second:
        return f"{first}_1", f"{second}_2"
    return first, second


def _ordered_limited(select: exp.Select, order: Sequence[exp.Expression], limit: int | None) -> exp.Select:
    if order:
        select = select.order_by(*order)
    return select.limit(limit) if limit is not None else select


def _wrapped_order(query: SemanticQuery, columns: Sequence[ColumnMeta], what: str, aliases: Mapping[str, str],
                   default: list[exp.Expression]) -> list[exp.Expression]:
    """The ORDER BY of a query wrapped around another (a rate per entity, a running total, a count past a
    threshold): each key is one of its columns, by name, by ``aliases`` (a metric -> the column standing for it) or
    a dimension by its reference; ``default`` when the query asks for no order."""
    order: list[exp.Expression] = []
    for ob in query.order_by:
        target = aliases.get(ob.ref) or next(
            (c.name for c in columns if ob.ref == c.name or (c.kind == "dimension" and c.ref and ob.ref == c.ref)), None)
        if target is None:
            raise UnknownReference(f"cannot order {what} by '{ob.ref}': it is not one of its columns",
                                   suggestions=[c.name for c in columns])
        order.append(exp.Ordered(this=exp.column(target), desc=ob.descending, nulls_first=False))
    return order or default


def _entity_word(dim: ResolvedDim, fallback: str) -> str:
    """An entity's name in the singular from its identifier's label ("Customers id" -> "customer")."""
    word = re.sub(r"\s*\b(?:id|ids|key|code|number|no)$", "", _dim_label(dim).lower()) or fallback
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


_RANGE_OPS: Mapping[type, str] = {exp.GTE: ">=", exp.GT: ">", exp.LTE: "<=", exp.LT: "<"}


def _time_filters(text: str) -> tuple[Filter | str, ...]:
    """A text filter as structured ``metric_time`` ranges when that is what it says (``metric_time between '2026-01-01'
    and '2026-03-31'``, ``metric_time >= '2026-01-01' AND ...``); other text unchanged; a text filter that reads
    ``metric_time`` any other way is refused (a time metric must know its dates to read the days before them).

    >>> [f.describe() for f in _time_filters("metric_time between '2026-01-01' and '2026-01-31'")]
    ['metric_time between 2026-01-01 and 2026-01-31']
    >>> [f.describe() for f in _time_filters("metric_time >= DATE '2026-01-01' AND metric_time < '2026-02-01'")]
    ['metric_time >= 2026-01-01', 'metric_time < 2026-02-01']
    >>> _time_filters("stores.name = 'Brooklyn'")
    ("stores.name = 'Brooklyn'",)
    """
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except ParseError:
        return (text,)  # parse_filter says what is wrong with it
    if not any(isinstance(c, exp.Column) and not c.table and c.name.lower() == METRIC_TIME for c in tree.find_all(exp.Column)):
        return (text,)

    def day(node: exp.Expression) -> str | None:
        node = node.this if isinstance(node, exp.Cast) else node
        return node.this if isinstance(node, exp.Literal) and node.is_string else None

    def is_time(node: exp.Expression) -> bool:
        return isinstance(node, exp.Column) and not node.table and node.name.lower() == METRIC_TIME

    out: list[Filter | str] = []
    for part in tree.flatten() if isinstance(tree, exp.And) else (tree,):
        if isinstance(part, exp.Between) and is_time(part.this) and (lo := day(part.args["low"])) \
                and (hi := day(part.args["high"])):
            out.append(Filter(ref=METRIC_TIME, op="between", values=(lo, hi)))
        elif type(part) in _RANGE_OPS and is_time(part.this) and (value := day(part.expression)):
            out.append(Filter(ref=METRIC_TIME, op=_RANGE_OPS[type(part)], values=(value,)))  # type: ignore[arg-type]
        elif any(is_time(c) for c in part.find_all(exp.Column)):
            raise CompileError(f"a time metric needs its dates as a range, not '{part.sql(dialect='duckdb')}'",
                               hint="Write metric_time between 'YYYY-MM-DD' and 'YYYY-MM-DD' (or >=, <=).")
        else:
            out.append(part.sql(dialect="duckdb"))
    return tuple(out)


def _time_bounds(filters: Sequence[Filter]) -> tuple[date | None, date | None]:
    """The first and last dates of a query's metric_time filters (None where open)."""
    start = end = None
    for f in filters:
        values = [date.fromisoformat(str(v)[:10]) for v in f.values]
        if f.op == "between" and len(values) == 2:
            start, end = max(filter(None, (start, values[0]))), min(filter(None, (end, values[1])))
        elif f.op in (">=", ">") and values:
            start = max(filter(None, (start, values[0])))
        elif f.op in ("<=", "<") and values:
            end = min(filter(None, (end, values[0])))
        else:
            raise CompileError(f"a time metric needs its dates as a range, not '{f.describe()}'")
    return start, end


def _shift(day: date | None, n: int, unit: str) -> date | None:
    """``day`` moved ``n`` units (negative: back); a month's last day stays its last day.

    >>> _shift(date(2026, 3, 31), -1, "month"), _shift(date(2026, 10, 1), -7, "day")
    (datetime.date(2026, 2, 28), datetime.date(2026, 9, 24))
    """
    if day is None:
        return None
    if unit in ("day", "week"):
        return day + timedelta(days=n * (7 if unit == "week" else 1))
    months = n * {"month": 1, "quarter": 3, "year": 12}[unit]
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = calendar.monthrange(year, month)[1]
    at_end = day.day == calendar.monthrange(day.year, day.month)[1]
    return date(year, month, last if at_end else min(day.day, last))


def _period_start(day: date, grain: str) -> date:
    """The first day of the ``grain`` period holding ``day`` (weeks start on Monday).

    >>> _period_start(date(2026, 8, 19), "quarter"), _period_start(date(2026, 8, 19), "week")
    (datetime.date(2026, 7, 1), datetime.date(2026, 8, 17))
    """
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _renamed(tree: exp.Expression, columns: Sequence[ColumnMeta], old: str, new: str) -> exp.Expression:
    """A compiled query with its metric column ``old`` renamed ``new``."""
    ctes = _hoisted(tree, "n_")
    out = [exp.alias_(exp.column(c.name), new) if c.name == old else exp.column(c.name) for c in columns]
    return _with_ctes(exp.select(*out).from_("n_rows"), ctes)


def _with_ctes(select: exp.Select, ctes: Sequence[tuple[str, exp.Expression]]) -> exp.Select:
    for name, body in ctes:
        select = select.with_(name, as_=body)
    return select


def _hoisted(tree: exp.Expression, prefix: str) -> list[tuple[str, exp.Expression]]:
    """``tree``'s common table expressions, then ``tree`` itself as ``<prefix>rows``, each renamed with ``prefix``
    so two compiled queries can share one WITH."""
    key = "with_" if "with_" in type(tree).arg_types else "with"  # (sqlglot 29 renamed it)
    with_ = tree.args.get(key)
    ctes = list(with_.expressions) if with_ is not None else []
    tree.set(key, None)
    names = {cte.alias for cte in ctes}

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in names:
            renamed = exp.to_table(prefix + node.name)
            if node.alias:
                renamed = renamed.as_(node.alias)
            return renamed
        return node

    out = [(prefix + cte.alias, cte.this.transform(rename)) for cte in ctes]
    out.append((f"{prefix}rows", tree.transform(rename)))
    return out


def _keep_condition(f: Filter, alias: str) -> exp.Expression:
    """A share's ``keep`` filter over the query's output column ``alias``."""
    col = exp.column(alias)
    values = [_literal(v) for v in f.values]
    if f.op == "=" and len(values) == 1:
        return exp.EQ(this=col, expression=values[0])
    if f.op == "!=" and len(values) == 1:
        return exp.NEQ(this=col, expression=values[0])
    if f.op == "in" and values:
        return col.isin(*values)
    if f.op == "not_in" and values:
        return exp.Not(this=col.isin(*values))
    raise CompileError(f"a share keeps segments by equal values (=, !=, in, not in), not by '{f.op}'")


def _metric_type(layer: SemanticLayer, name: str) -> str:
    m = layer.metrics[name]
    if m.is_derived:
        return "DOUBLE"
    return {"count": "BIGINT", "count_distinct": "BIGINT"}.get(m.agg or "", "DOUBLE")


class Compiler:
    """Compiles semantic queries against one layer (reusable; holds the link graph)."""

    def __init__(self, layer: SemanticLayer, *, schema: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.layer = layer
        self.graph = LinkGraph(layer)
        self.schema = {table_key(t): {c.lower(): ty for c, ty in cols.items()} for t, cols in (schema or {}).items()}

    # public ---------------------------------------------------------------------
    def compile(self, query: SemanticQuery, *, dialect: str = "duckdb") -> CompiledQuery:
        try:
            sqlglot.Dialect.get_or_raise(dialect)
        except ValueError:
            names = sorted(d.value for d in Dialects if d.value)
            raise UnknownReference(f"unknown SQL dialect '{dialect}'", suggestions=suggest(dialect, names) or list(DIALECTS)) from None
        tree, columns, info = self.compile_tree(query, dialect=dialect)
        sql = portable(tree, dialect).sql(dialect=dialect, pretty=True)
        try:
            sqlglot.parse_one(sql, read=dialect)
        except ParseError as err:  # pragma: no cover - a compiler bug, surfaced loudly
            raise CompileError(f"the compiled SQL does not re-parse in {dialect}: {err}") from None
        return CompiledQuery(
            sql=sql, dialect=dialect, columns=tuple(columns), query=query,
            tables=tuple(info["tables"]), joins=tuple(info["joins"]), base_metrics=tuple(info["base_metrics"]),
        )

    def compile_tree(self, query: SemanticQuery, *, dialect: str = "duckdb") -> tuple[exp.Expression, list[ColumnMeta], dict]:
        if query.adhoc:
            # metrics the question defined: derived metrics of this query only, checked like the layer's
            extended = with_adhoc(self.layer, query.adhoc)
            inner = Compiler(extended, schema=self.schema)
            inner.schema = self.schema
            tree, columns, info = inner.compile_tree(query.model_copy(update={"adhoc": ()}), dialect=dialect)
            adhoc = {a.name: a for a in query.adhoc}
            columns = [c.model_copy(update={"label": adhoc[c.name].label[:1].upper() + adhoc[c.name].label[1:] + " (ad hoc)"})
                       if c.kind == "metric" and c.name in adhoc else c for c in columns]
            return tree, columns, info
        layer = self.layer
        if query.rows_of:
            return self._listing(query, dialect)
        if query.compare is not None:
            return self._compared(query, dialect)
        if query.per is not None:
            return self._per_entity(query, dialect)
        if query.running_total:
            return self._running_total(query, dialect)
        if query.threshold is not None:
            return self._threshold(query, dialect)
        if any(m in layer.metrics and layer.metrics[m].time_type for m in query.metrics):
            return self._time_metrics(query, dialect)
        if not query.metrics:
            raise CompileError("a query needs at least one metric", suggestions=sorted(layer.metrics)[:8])
        if query.limit is not None and query.limit < 1:
            raise CompileError(f"limit must be a positive number, got {query.limit}")

        repeated = sorted({m for m in query.metrics if query.metrics.count(m) > 1})
        if repeated:
            raise CompileError(f"metric '{repeated[0]}' is requested twice")
        dims = [resolve_dimension(layer, d) for d in query.dimensions]
        seen_keys: set[str] = set()
        for d in dims:
            if d.key in seen_keys:
                raise CompileError(f"dimension '{d.key}' is requested twice")
            seen_keys.add(d.key)

        refs = _Refs()
        preds = [parse_filter(layer, f, refs) for f in query.filters]
        where = [p for p in preds if not p.is_metric_filter]
        having = [p for p in preds if p.is_metric_filter]

        # metrics needed: requested, in metric filters, in ordering
        order_metrics = [o.ref for o in query.order_by if o.ref in layer.metrics]
        needed = list(dict.fromkeys(list(query.metrics) + [m for p in having for m in p.metrics.values()] + order_metrics))
        base: list[str] = []
        for name in needed:
            for b in expand_metric(layer, name):
                if b not in base:
                    base.append(b)

        facts: dict[str, _FactPlan] = {}
        for b in base:
            src = layer.metrics[b].source
            assert src is not None
            node = layer.nodes.get(src)
            if node is None:
                raise CompileError(f"metric {b} aggregates over '{src}', which is not a node of the layer")
            facts.setdefault(src, _FactPlan(node=node, metrics=[])).metrics.append(b)

        pinned = pinned_columns(layer, self.graph, _equalities(where))

        # aliases for dimensions, unique and distinct from metric names
        aliases: dict[str, str] = {}
        taken = set(needed) | set(base)
        for d in dims:
            alias = _dim_alias(d)
            if alias in taken and d.node is not None:
                alias = f"{d.node.name}_{alias}"
            n = 2
            stem = alias
            while alias in taken:
                alias, n = f"{stem}_{n}", n + 1
            taken.add(alias)
            aliases[d.key] = alias

        ctes: list[tuple[str, exp.Select]] = []
        tables: list[str] = []
        joins: list[str] = []
        for fact in facts.values():
            cte_name = f"{fact.node.name}_metrics"
            select, fact_tables, fact_joins = self._fact_select(fact, dims, aliases, where, pinned, dialect)
            ctes.append((cte_name, select))
            tables += [t for t in fact_tables if t not in tables]
            joins += [j for j in fact_joins if j not in joins]

        dim_aliases = [aliases[d.key] for d in dims]
        if len(ctes) == 1:
            from_name = ctes[0][0]
        else:
            branches = []
            for name, _ in ctes:
                own = set(facts[name[: -len("_metrics")]].metrics)
                cols: list[exp.Expression] = [exp.column(a) for a in dim_aliases]
                cols += [exp.column(b) if b in own else exp.alias_(exp.Null(), b) for b in base]
                branches.append(exp.select(*cols).from_(name))
            union: exp.Expression = branches[0]
            for br in branches[1:]:
                union = exp.union(union, br, distinct=False)
            ctes.append(("combined", union))  # type: ignore[arg-type]
            merged = exp.select(
                *[exp.column(a) for a in dim_aliases],
                *[exp.alias_(exp.Max(this=exp.column(b)), b) for b in base],
            ).from_("combined")
            if dim_aliases:
                merged = merged.group_by(*[exp.column(a) for a in dim_aliases])
            ctes.append(("merged", merged))
            from_name = "merged"

        def metric_expr(name: str, stack: tuple[str, ...] = ()) -> exp.Expression:
            m = layer.metrics[name]
            if not m.is_derived:
                return exp.column(name)
            tree = safe_divide(sqlglot.parse_one(m.expr, read="duckdb"))
            tree = null_safe_sums(tree)
            tree = tree.transform(
                lambda n: metric_expr(n.name, stack + (name,)) if isinstance(n, exp.Column) else n
            )
            return exp.Paren(this=tree) if not isinstance(tree, (exp.Column, exp.Paren)) else tree

        outer = exp.select(*[exp.column(a) for a in dim_aliases])
        for name in query.metrics:
            e = metric_expr(name)
            outer = outer.select(exp.alias_(e.this if isinstance(e, exp.Paren) else e, name) if not isinstance(e, exp.Column) or e.name != name else e)
        outer = outer.from_(from_name)
        if len(ctes) > 1:
            # a fact present only for ORDER BY must not add rows of its own
            shown = {b for name in list(query.metrics) + [m for p in having for m in p.metrics.values()]
                     for b in expand_metric(layer, name)}
            order_only = [b for b in base if b not in shown]
            if order_only and shown:
                present = [exp.Not(this=exp.Is(this=exp.column(b), expression=exp.Null())) for b in base if b in shown]
                cond: exp.Expression = present[0]
                for extra in present[1:]:
                    cond = exp.Or(this=cond, expression=extra)
                outer = outer.where(cond)
        for pred in having:
            tree = pred.tree.transform(
                lambda n: metric_expr(pred.metrics[int(_PLACEHOLDER.match(n.name).group(1))])  # type: ignore[union-attr]
                if isinstance(n, exp.Column) and _PLACEHOLDER.match(n.name) else n
            )
            outer = outer.where(tree)

        share_column: ColumnMeta | None = None
        if query.share is not None:
            outer, share_column = self._with_share(outer, query, dims, aliases, metric_expr)

        order: list[exp.Expression] = []
        for ob in query.order_by:
            if share_column is not None and ob.ref == share_column.name:
                order.append(exp.Ordered(this=exp.column(ob.ref), desc=ob.descending, nulls_first=False))
                continue
            if share_column is not None and query.share.keep and ob.ref in layer.metrics and ob.ref not in query.metrics:  # type: ignore[union-attr]
                raise CompileError(f"a share kept to one segment can be ordered by what it shows, not by '{ob.ref}'",
                                   suggestions=[*query.metrics, share_column.name])
            order.append(self._order_expr(ob, dims, aliases, metric_expr, query))
        if not order:
            order = [exp.Ordered(this=exp.column(aliases[d.key]), nulls_first=False) for d in dims if d.is_time]
            order += [exp.Ordered(this=exp.column(aliases[d.key]), nulls_first=False) for d in dims if not d.is_time]
        rank_column: ColumnMeta | None = None
        if query.rank_within:
            outer, rank_column = self._ranked_within(outer, query, dims, aliases, order, metric_expr)
        else:
            outer = _ordered_limited(outer, order, query.limit)
        outer = _with_ctes(outer, ctes)

        columns = [
            ColumnMeta(
                name=aliases[d.key], label=_dim_label(d), kind="dimension", ref=d.key,
                type=self._dim_type(d), unit=d.column.unit if d.column else None,
                grain=d.ref.grain or ("day" if d.ref.is_metric_time else None),
            )
            for d in dims
        ]
        for name in query.metrics:
            m = layer.metrics[name]
            columns.append(ColumnMeta(name=name, label=m.display[0].upper() + m.display[1:], kind="metric", ref=name,
                                      type=_metric_type(layer, name), unit=m.unit, format=m.format))
        if share_column is not None:
            columns.append(share_column)
        if rank_column is not None:
            columns.append(rank_column)
        return outer, columns, {"tables": tables, "joins": joins, "base_metrics": base}

    def _compared(self, query: SemanticQuery, dialect: str) -> tuple[exp.Expression, list[ColumnMeta], dict]:
        """Two periods side by side (see :class:`~lore.types.Compare`): the query computed whole over each period,
        the two joined on its dimensions, with each metric's change and percent change."""
        compare = query.compare
        assert compare is not None
        if query.share is not None or query.rank_within or query.rows_of:
            raise CompileError("a comparison of two periods cannot also take shares, rank within groups or list rows: "
                               "ask for one of them")
        for ref in query.dimensions:
            if resolve_dimension(self.layer, ref).is_time:
                raise CompileError(f"a comparison of two periods shows each period whole, so it has no time breakdown "
                                   f"('{ref}'): drop it, or ask for the whole range by that grain instead")
        for f in query.filters:
            if isinstance(f, Filter) and f.ref.split(":", 1)[0] == METRIC_TIME:
                raise CompileError(f"a comparison's periods bound its time; it takes no other time filter "
                                   f"('{f.describe()}')")
        early, late = compare.ordered()
        names = _period_names(early, late)
        side = query.model_copy(update={"compare": None, "order_by": (), "limit": None})
        ctes: list[tuple[str, exp.Expression]] = []
        columns: list[ColumnMeta] = []
        info: dict = {"tables": [], "joins": [], "base_metrics": []}
        for tag, window in (("a", early), ("b", late)):
            bound = window.filter()
            assert bound is not None  # (Compare requires both ends)
            tree, columns, one = self.compile_tree(side.model_copy(update={"filters": (*side.filters, bound)}),
                                                   dialect=dialect)
            ctes += _hoisted(tree, f"{tag}_")
            for key in info:
                info[key] += [x for x in one[key] if x not in info[key]]
        dims = [c for c in columns if c.kind == "dimension"]
        a, b = exp.to_identifier("a"), exp.to_identifier("b")
        out: list[exp.Expression] = [exp.alias_(exp.Coalesce(this=exp.column(d.name, table=a), expressions=[
            exp.column(d.name, table=b)]), d.name) for d in dims]
        metas = list(dims)
        named: dict[str, exp.Expression] = {}
        for c in columns:
            if c.kind != "metric":
                continue
            metric = self.layer.metrics.get(c.name) or self.layer.metrics.get(c.ref or "")
            if metric is None:
                raise CompileError(f"'{c.name}' cannot be compared between two periods: ask for each period on its own")
            before, after = exp.column(c.name, table=a), exp.column(c.name, table=b)
            # (a total: a row missing from a period is 0 in it; a value per entity is no total)
            if not_additive(metric) is None and query.per is None:
                before = exp.Coalesce(this=before, expressions=[exp.Literal.number(0)])
                after = exp.Coalesce(this=after, expressions=[exp.Literal.number(0)])
            change = exp.Sub(this=after.copy(), expression=before.copy())
            pct = exp.Div(this=exp.cast(exp.Paren(this=change.copy()), "DOUBLE"),
                          expression=exp.Nullif(this=before.copy(), expression=exp.Literal.number(0)))
            label, change_label = c.label, f"Change in {inline_label(c.label)}"
            for (window, suffix), value in zip(((early, names[0]), (late, names[1])), (before, after)):
                name = f"{c.name}_{suffix}"
                out.append(exp.alias_(value, name))
                metas.append(c.model_copy(update={"name": name, "label": f"{label}, {window.label or suffix}"}))
            out += [exp.alias_(change, f"{c.name}_change"), exp.alias_(pct, f"{c.name}_change_pct")]
            metas.append(c.model_copy(update={"name": f"{c.name}_change", "label": change_label}))
            metas.append(ColumnMeta(name=f"{c.name}_change_pct", label=f"{change_label} (%)",
                                    kind="metric", ref=c.name, type="DOUBLE", format="percent"))
            named[c.name] = exp.column(f"{c.name}_{names[1]}")
        join: exp.Expression | None = None
        if dims:
            conds = [null_safe_eq(exp.column(d.name, table=a), exp.column(d.name, table=b), dialect) for d in dims]
            join = exp.and_(*conds)
        outer = exp.select(*out).from_(exp.to_table("a_rows").as_("a"))
        outer = outer.join(exp.to_table("b_rows").as_("b"), on=join, join_type="full outer") if join is not None \
            else outer.join(exp.to_table("b_rows").as_("b"), join_type="cross")
        shown = {m.name for m in metas}
        order: list[exp.Expression] = []
        for ob in query.order_by:
            if ob.ref in shown:
                target: exp.Expression = exp.column(ob.ref)
            elif ob.ref in named:  # the metric itself: its value in the later period
                target = named[ob.ref]
            else:
                try:
                    key = DimensionRef.parse(ob.ref).key
                except UnknownReference:
                    key = ob.ref
                hit = next((d.name for d in dims if d.ref and DimensionRef.parse(d.ref).key == key), None)
                if hit is None:
                    raise UnknownReference(f"cannot order a comparison by '{ob.ref}': it is not one of its columns",
                                           suggestions=suggest(ob.ref, sorted(shown)) or sorted(shown))
                target = exp.column(hit)
            order.append(exp.Ordered(this=target, desc=ob.descending, nulls_first=False))
        if not order:
            order = [exp.Ordered(this=exp.column(d.name), nulls_first=False) for d in dims]
        return _with_ctes(_ordered_limited(outer, order, query.limit), ctes), metas, info

    def _threshold(self, query: SemanticQuery, dialect: str) -> tuple[exp.Expression, list[ColumnMeta], dict]:
        """How many entities pass a metric threshold (see :class:`~lore.types.Threshold`): the metric by entity in
        each row of the query's dimensions, the entities passing it counted."""
        t = query.threshold
        assert t is not None
        if query.share is not None or query.rank_within or query.rows_of or query.per is not None \
                or query.running_total:
            raise CompileError("a count of entities past a threshold cannot also take shares, rank within groups, "
                               "rates per entity, running totals or list rows: ask for one of them")
        if set(query.metrics) - {t.metric}:
            raise CompileError(f"a count of entities past a threshold of '{t.metric}' computes no other metric",
                               suggestions=[t.metric])
        entity = resolve_dimension(self.layer, t.entity)
        if entity.is_time:
            raise CompileError(f"'{t.entity}' is a date, not an entity to count: name an identifier")
        if entity.key in {resolve_dimension(self.layer, d).key for d in query.dimensions}:
            raise CompileError(f"'{t.entity}' is both a breakdown and the entity counted: drop one")
        side = query.model_copy(update={"threshold": None, "metrics": (t.metric,), "order_by": (), "limit": None,
                                        "dimensions": (*query.dimensions, t.entity)})
        tree, columns, info = self.compile_tree(side, dialect=dialect)
        ctes = _hoisted(tree, "t_")
        dims = columns[:len(query.dimensions)]
        key = columns[len(query.dimensions)].name
        value = next(c for c in columns if c.kind == "metric")
        ops = {">": exp.GT, ">=": exp.GTE, "<": exp.LT, "<=": exp.LTE, "=": exp.EQ, "!=": exp.NEQ}
        number = exp.Literal.number(int(t.value) if float(t.value).is_integer() else t.value)
        passes = ops[t.op](this=exp.Coalesce(this=exp.column(value.name), expressions=[exp.Literal.number(0)])
                           if not_additive(self.layer.metrics[t.metric]) is None else exp.column(value.name),
                           expression=number)
        plural = _entity_word(entity, t.entity) + "s"
        name = f"{re.sub(r'[^a-z0-9]+', '_', plural).strip('_')}_count"
        outer = exp.select(*[exp.column(d.name) for d in dims],
                           exp.alias_(exp.Count(this=exp.Star()), name)).from_(exp.to_table("t_rows").as_("t")).where(
            exp.and_(exp.Not(this=exp.Is(this=exp.column(key), expression=exp.Null())), passes))
        if dims:
            outer = outer.group_by(*[exp.column(d.name) for d in dims])
        shown = f"{value.label[:1].upper()}{value.label[1:]}"
        meta = ColumnMeta(name=name, label=f"{plural[:1].upper()}{plural[1:]} with {inline_label(shown)} {t.op} "
                                          f"{threshold_shown(value.format, t.value)}", kind="value", type="BIGINT",
                          format="integer")
        metas = [*dims, meta]
        order = _wrapped_order(query, metas, "a count past a threshold", {t.metric: name},
                               [exp.Ordered(this=exp.column(d.name), nulls_first=False) for d in dims])
        return _with_ctes(_ordered_limited(outer, order, query.limit), ctes), metas, info

    def _running_total(self, query: SemanticQuery, dialect: str) -> tuple[exp.Expression, list[ColumnMeta], dict]:
        """Each metric with its running total over the query's one time breakdown (a window sum ordered by the
        bucket, restarting for each value of the other breakdowns)."""
        if query.share is not None or query.rank_within or query.rows_of or query.per is not None:
            raise CompileError("a running total cannot also take shares, rank within groups, rates per entity or "
                               "list rows: ask for one of them")
        resolved = [resolve_dimension(self.layer, d) for d in query.dimensions]
        times = [i for i, d in enumerate(resolved) if d.is_time]
        if len(times) != 1:
            raise CompileError("a running total runs over one time breakdown: ask for it by day, week, month, "
                               "quarter or year" if not times else "a running total runs over one time breakdown, "
                               "not several")
        for name in query.metrics:
            metric = self.layer.metrics.get(name)
            kind = not_additive(metric) if metric is not None else "defined in the question"
            if kind is not None:
                raise CompileError(f"'{name}' has no running total: it is {kind}, so its values do not add up over "
                                   "time", suggestions=[m for m in query.metrics if m != name])
        side = query.model_copy(update={"running_total": False, "order_by": (), "limit": None})
        tree, columns, info = self.compile_tree(side, dialect=dialect)
        ctes = _hoisted(tree, "r_")
        dims = [c for c in columns if c.kind == "dimension"]
        time_col = dims[times[0]].name
        others = [exp.column(d.name) for i, d in enumerate(dims) if i != times[0]]
        out: list[exp.Expression] = [exp.column(c.name) for c in columns]
        metas = list(columns)
        for c in columns:
            if c.kind != "metric":
                continue
            window = exp.Window(this=exp.Sum(this=exp.Coalesce(this=exp.column(c.name), expressions=[exp.Literal.number(0)])),
                                partition_by=others or None,
                                order=exp.Order(expressions=[exp.Ordered(this=exp.column(time_col))]),
                                spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                                                    end="CURRENT ROW"))
            name = f"{c.name}_running_total"
            out.append(exp.alias_(window, name))
            metas.append(c.model_copy(update={"name": name, "label": f"Running total of {inline_label(c.label)}"}))
        outer = exp.select(*out).from_(exp.to_table("r_rows").as_("r"))
        order = _wrapped_order(query, metas, "a running total", {},
                               [*(exp.Ordered(this=o.copy(), nulls_first=False) for o in others),
                                exp.Ordered(this=exp.column(time_col))])
        return _with_ctes(_ordered_limited(outer, order, query.limit), ctes), metas, info

    def _time_metrics(self, query: SemanticQuery, dialect: str) -> tuple[exp.Expression, list[ColumnMeta], dict]:
        """The query with time metrics (``offset``, ``window``, ``grain_to_date``): the other metrics as usual,
        each time metric as its own query of the metric it is built on over the dates it needs, joined on the
        dimensions (rows are the first part's)."""
        if query.share is not None or query.rank_within or query.rows_of or query.per is not None or \
                query.running_total or query.compare is not None or query.threshold is not None:
            raise CompileError("a time metric (offset, window, to date) cannot also take shares, comparisons, ranks "
                               "within groups, rates, running totals, thresholds or listings: ask for it alone")
        resolved = [resolve_dimension(self.layer, d) for d in query.dimensions]
        times = [d for d in resolved if d.is_time]
        if len(times) > 1 or (times and not times[0].ref.is_metric_time):
            raise CompileError("a time metric runs over the metric's own date: break it down by metric_time (by day, "
                               "week, month, quarter or year), once")
        grain = (times[0].ref.grain or "day") if times else None
        # (a date range written as text reads like a structured one: the sums need to see dates before it)
        filters = [g for f in query.filters for g in (_time_filters(f) if isinstance(f, str) else (f,))]
        bound = [f for f in filters if isinstance(f, Filter) and f.ref.split(":", 1)[0] == METRIC_TIME]
        rest = tuple(f for f in filters if f not in bound)
        start, end = _time_bounds(bound)
        timed = [m for m in query.metrics if self.layer.metrics[m].time_type]
        plain = [m for m in query.metrics if m not in timed]
        ctes: list[tuple[str, exp.Expression]] = []
        info: dict = {"tables": [], "joins": [], "base_metrics": []}
        parts: list[tuple[str, list[ColumnMeta]]] = []

        def add(tag: str, tree: exp.Expression, columns: list[ColumnMeta], one: dict) -> None:
            ctes.extend(_hoisted(tree, f"{tag}_"))
            parts.append((tag, columns))
            for k in info:
                info[k] += [x for x in one[k] if x not in info[k]]

        if plain:
            tree, columns, one = self.compile_tree(query.model_copy(update={"metrics": tuple(plain), "order_by": (),
                                                                          "limit": None}), dialect=dialect)
            add("m", tree, columns, one)
        for i, name in enumerate(timed):
            add(f"t{i}", *self._time_metric(self.layer.metrics[name], query, rest, grain, start, end, dialect))
        dims = [c for c in parts[0][1] if c.kind == "dimension"]
        first = parts[0][0]
        out: list[exp.Expression] = [exp.column(d.name, table=first) for d in dims]
        by_name = {c.name: (tag, c) for tag, cols in parts for c in cols if c.kind == "metric"}
        metas = list(dims)
        for name in query.metrics:
            tag, col = by_name[name]
            out.append(exp.alias_(exp.column(name, table=tag), name))
            metas.append(col)
        outer = exp.select(*out).from_(exp.to_table(f"{first}_rows").as_(first))
        for tag, _ in parts[1:]:
            on = exp.and_(*(null_safe_eq(exp.column(d.name, table=first), exp.column(d.name, table=tag), dialect)
                            for d in dims)) if dims else exp.true()
            outer = outer.join(exp.to_table(f"{tag}_rows").as_(tag), on=on, join_type="left")
        order = _wrapped_order(query, metas, "a time metric", {},
                               [exp.Ordered(this=exp.column(d.name), nulls_first=False) for d in dims])
        wrapped = exp.select(*(exp.column(c.name) for c in metas)).from_(outer.subquery("q"))
        return _with_ctes(_ordered_limited(wrapped, order, query.limit), ctes), metas, info

    def _time_metric(self, metric: Metric, query: SemanticQuery, rest: tuple, grain: str | None,
                     start: date | None, end: date | None, dialect: str) -> tuple[exp.Expression, list[ColumnMeta], dict]:
        """One time metric as a query of its base metric: shifted back by its offset; summed over its trailing
        window; summed from the start of each of its periods. Columns: the query's dimensions, then the metric."""
        base = metric.expr.strip()
        kind = metric.time_type
        label = metric.label or metric.name.replace("_", " ")
        meta = ColumnMeta(name=metric.name, label=label[:1].upper() + label[1:],
                          kind="metric", ref=metric.name, unit=metric.unit or self.layer.metrics[base].unit,
                          format=metric.format or self.layer.metrics[base].format, type="DOUBLE")

        def side(lo: date | None, hi: date | None) -> tuple[exp.Expression, list[ColumnMeta], dict]:
            window = TimeWindow(start=lo, end=hi).filter()
            sub = SemanticQuery(metrics=(base,), dimensions=query.dimensions,
                                filters=(*rest, *((window,) if window is not None else ())))
            return self.compile_tree(sub, dialect=dialect)

        if kind == "offset":
            n, unit = parse_duration(metric.offset or "")
            if grain is not None and DURATION_UNITS.index(unit) < DURATION_UNITS.index(grain):
                raise CompileError(f"'{metric.name}' looks {metric.offset} back, less than one {grain}: break it "
                                   f"down by {unit} or finer", suggestions=[f"{METRIC_TIME}:{unit}"])
            tree, columns, info = side(_shift(start, -n, unit), _shift(end, -n, unit))
            ctes = _hoisted(tree, "o_")
            out = []
            for c in columns:
                col = exp.column(c.name)
                if c.kind == "metric":
                    out.append(exp.alias_(col, metric.name))
                elif c.grain is not None and c.ref and c.ref.startswith(METRIC_TIME):
                    moved = exp.DateAdd(this=col, expression=exp.Literal.number(n), unit=exp.var(unit.upper()))
                    out.append(exp.alias_(time_trunc(moved, c.grain, dialect), c.name))
                else:
                    out.append(col)
            select = exp.select(*out).from_("o_rows")
            return _with_ctes(select, ctes), [*(c for c in columns if c.kind != "metric"), meta], info
        if grain is None:  # one number: the window or the period to date ending at the query's last date
            if end is None:
                raise CompileError(f"'{metric.name}' is counted back from a date: ask for a period (a month, a "
                                   "quarter, a year) or break it down by day, week or month")
            if kind == "window":
                n, unit = parse_duration(metric.window or "")
                lo = _shift(end, -n, unit) + timedelta(days=1)  # type: ignore[operator]
            else:
                lo = _period_start(end, metric.grain_to_date or "month")
            tree, columns, info = side(lo, end)
            return _renamed(tree, columns, base, metric.name), [*(c for c in columns if c.kind != "metric"), meta], info
        if kind == "window":
            n, unit = parse_duration(metric.window or "")
            if DURATION_UNITS.index(unit) < DURATION_UNITS.index(grain):
                raise CompileError(f"'{metric.name}' sums a {metric.window} window, shorter than one {grain}: break "
                                   f"it down by {unit} or finer", suggestions=[f"{METRIC_TIME}:{unit}"])
            tree, columns, info = side(_shift(start, -n, unit), end)
        else:
            to = metric.grain_to_date or "month"
            if DURATION_UNITS.index(to) < DURATION_UNITS.index(grain):
                raise CompileError(f"'{metric.name}' sums from the start of each {to}, which a {grain} breakdown "
                                   f"cannot show: break it down by {to} or finer", suggestions=[f"{METRIC_TIME}:{to}"])
            tree, columns, info = side(_period_start(start, to) if start else None, end)
        ctes = _hoisted(tree, "w_")
        dims = [c for c in columns if c.kind == "dimension"]
        t = next(c.name for c in dims if c.ref and c.ref.startswith(METRIC_TIME))
        others = [c.name for c in dims if c.name != t]
        if kind == "window":
            a, b = exp.to_identifier("a"), exp.to_identifier("b")
            since = exp.DateAdd(this=exp.column(t, table=a), expression=exp.Literal.number(-n), unit=exp.var(unit.upper()))
            on = exp.and_(*(null_safe_eq(exp.column(o, table=a), exp.column(o, table=b), dialect) for o in others),
                          exp.GT(this=exp.column(t, table=b), expression=since),
                          exp.LTE(this=exp.column(t, table=b), expression=exp.column(t, table=a)))
            keys = [exp.column(d.name, table=a) for d in dims]
            select = (exp.select(*keys, exp.alias_(exp.Sum(this=exp.column(base, table=b)), metric.name))
                      .from_(exp.to_table("w_rows").as_("a")).join(exp.to_table("w_rows").as_("b"), on=on)
                      .group_by(*(k.copy() for k in keys)))
        else:
            period = time_trunc(exp.column(t), metric.grain_to_date, dialect)
            summed = exp.Window(this=exp.Sum(this=exp.column(base)), partition_by=[*map(exp.column, others), period],
                                order=exp.Order(expressions=[exp.Ordered(this=exp.column(t))]),
                                spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                                                    end="CURRENT ROW"))
            select = exp.select(*(exp.column(d.name) for d in dims), exp.alias_(summed, metric.name)).from_("w_rows")
        if start is not None:  # the dates before the query's first were read for the sums only
            first = exp.cast(exp.Literal.string(start.isoformat()), "DATE")
            select = exp.select("*").from_(select.subquery("s")).where(
                exp.GTE(this=exp.column(t), expression=time_trunc(first, grain, dialect)))
        return _with_ctes(select, ctes), [*dims, meta], info

    def _per_entity(self, query: SemanticQuery, dialect: str) -> tuple[exp.Expression, list[ColumnMeta], dict]:
        """Each metric per entity, averaged over the entities (see :class:`~lore.types.PerEntity`): the query
        computed by the entity (and the grain), then the average (or the highest, the lowest) of every metric over
        those rows in each row of the query's own dimensions."""
        per = query.per
        assert per is not None
        if query.share is not None or query.rank_within or query.rows_of:
            raise CompileError("a metric per entity cannot also take shares, rank within groups or list rows: ask "
                               "for one of them")
        entity = resolve_dimension(self.layer, per.entity)
        if entity.is_time:
            raise CompileError(f"'{per.entity}' is a date, not an entity to average over: name an identifier such "
                               "as an account or a customer")
        keys = {resolve_dimension(self.layer, d).key for d in query.dimensions}
        if entity.key in keys:
            raise CompileError(f"'{per.entity}' is both a breakdown and the entity averaged over: drop one")
        extra = [per.entity]
        if per.grain is not None:
            if per.grain not in GRAINS:
                raise CompileError(f"unknown grain '{per.grain}' for a rate per entity", suggestions=list(GRAINS))
            grain_ref = f"{METRIC_TIME}:{per.grain}"
            if not any(resolve_dimension(self.layer, d).is_time for d in query.dimensions):
                extra.append(grain_ref)
        side = query.model_copy(update={"per": None, "order_by": (), "limit": None,
                                        "dimensions": (*query.dimensions, *extra)})
        tree, columns, info = self.compile_tree(side, dialect=dialect)
        ctes = _hoisted(tree, "e_")
        dims = columns[:len(query.dimensions)]
        node = per.entity.split(".")[0].split(":")[0]
        out: list[exp.Expression] = [exp.column(d.name) for d in dims]
        metas = list(dims)
        names: dict[str, str] = {}
        what = _entity_word(entity, node)
        for c in columns:
            if c.kind != "metric":
                continue
            name = f"{c.name}_per_{re.sub(r'[^a-z0-9]+', '_', what).strip('_') or 'entity'}"
            at = f" per {per.grain}" if per.grain and len(extra) > 1 else ""
            if per.stat == "avg":
                out.append(exp.alias_(exp.Avg(this=exp.cast(exp.column(c.name), "DOUBLE")), name))
                label = f"{c.label} per {what}{at}"
                update = {"type": "DOUBLE", "format": c.format if c.format in ("currency", "duration") else "number"}
            else:  # the highest (lowest) entity's value, in the metric's own type and format
                name = f"{per.stat}_{name}"
                agg = exp.Max if per.stat == "max" else exp.Min
                out.append(exp.alias_(agg(this=exp.column(c.name)), name))
                label = (f"{'Highest' if per.stat == 'max' else 'Lowest'} {c.label[:1].lower() + c.label[1:]} "
                         f"of one {what}{at}")
                update = {}
            names[c.name] = name
            metas.append(c.model_copy(update={"name": name, "label": label, **update}))
        key = columns[len(query.dimensions)].name  # (the rows with no entity are no entity's)
        outer = exp.select(*out).from_(exp.to_table("e_rows").as_("e")).where(
            exp.Not(this=exp.Is(this=exp.column(key), expression=exp.Null())))
        if dims:
            outer = outer.group_by(*[exp.column(d.name) for d in dims])
        order = _wrapped_order(query, metas, "a rate per entity", names,
                               [exp.Ordered(this=exp.column(d.name), nulls_first=False) for d in dims])
        return _with_ctes(_ordered_limited(outer, order, query.limit), ctes), metas, info

    def _ranked_within(self, outer: exp.Select, query: SemanticQuery, dims: list[ResolvedDim], aliases: dict[str, str],
                       order: list[exp.Expression], metric_expr) -> tuple[exp.Select, ColumnMeta]:
        """The top ``limit`` rows of each group of ``rank_within`` by ``order`` (RANK over the group: ties kept),
        with the rank as a column."""
        if query.limit is None:
            raise CompileError("ranking within groups needs a limit: how many of each group to keep (\"top 3 ... "
                               "in each region\")")
        by_key = {d.key: aliases[d.key] for d in dims}
        within: list[str] = []
        for ref in query.rank_within:
            key = resolve_dimension(self.layer, ref).key
            if key not in by_key:
                raise CompileError(f"'{ref}' is not a breakdown of this query: a ranking is taken within the "
                                   "query's own breakdowns", suggestions=list(by_key))
            within.append(by_key[key])
        within = list(dict.fromkeys(within))
        if len(within) >= len(dims):
            raise CompileError("a ranking within every breakdown ranks one row per group: leave at least one "
                               "breakdown to rank", suggestions=list(by_key))
        ranking = [o for o in order if not (isinstance(o, exp.Ordered) and isinstance(o.this, exp.Column)
                                            and o.this.name in within)]
        if not ranking or not query.order_by:
            first = query.metrics[0]
            ranking = [exp.Ordered(this=metric_expr(first), desc=True, nulls_first=False)]
        window = exp.Window(this=exp.Rank(), partition_by=[exp.column(a) for a in within],
                            order=exp.Order(expressions=[o.copy() for o in ranking]))
        inner = outer.select(exp.alias_(window, RANK_COLUMN))
        shown = [exp.column(e.alias_or_name) for e in inner.expressions]
        ties = [aliases[d.key] for d in dims if aliases[d.key] not in within]  # tied rows in one order, any engine
        ranked = (exp.select(*shown).from_(inner.subquery("ranked"))
                  .where(exp.LTE(this=exp.column(RANK_COLUMN), expression=exp.Literal.number(query.limit)))
                  .order_by(*[exp.Ordered(this=exp.column(a), nulls_first=False) for a in within],
                            exp.Ordered(this=exp.column(RANK_COLUMN)),
                            *[exp.Ordered(this=exp.column(a), nulls_first=False) for a in ties]))
        labels = " and ".join(_dim_label(d).lower() for d in dims if aliases[d.key] in within)
        meta = ColumnMeta(name=RANK_COLUMN, label=f"Rank in its {labels}", kind="value", type="BIGINT", format="integer")
        return ranked, meta

    def _with_share(self, outer: exp.Select, query: SemanticQuery, dims: list[ResolvedDim], aliases: dict[str, str],
                    metric_expr) -> tuple[exp.Select, ColumnMeta]:
        """``outer`` with each row's share of the whole (a window sum over the aggregated rows, within the
        ``within`` breakdowns), and, with ``keep``, only the kept rows (filtered after the whole is taken)."""
        share = query.share
        assert share is not None
        layer = self.layer
        name = share.metric or query.metrics[0]
        if name not in query.metrics:
            raise CompileError(f"the share is of '{name}', which this query does not compute", suggestions=list(query.metrics))
        metric = layer.metrics[name]
        if share.whole is not None:  # a cut over its whole: a distinct count is a part of its whole too
            return self._cut_share(query, name, metric, metric_expr, outer)
        how = not_additive(metric)
        if how is not None:
            additive = [n for n, m in layer.metrics.items() if not m.is_derived and m.agg in ("sum", "count")]
            same_rows = [n for n in additive if layer.metrics[n].source == metric.source]  # over the same rows first
            raise CompileError(f"{metric.display} has no share of a total: it is {how}, so its parts do not add up to "
                               "the whole. Shares are taken of a metric that is a sum or a count.",
                               suggestions=(same_rows + [n for n in additive if n not in same_rows])[:5])
        if not dims:
            raise CompileError("a share of the total needs a breakdown (the parts) or a segment to keep "
                               "(\"what share came from mobile\")")
        by_key = {d.key: aliases[d.key] for d in dims}

        def alias_of(ref: str) -> str:
            key = resolve_dimension(layer, ref).key
            if key not in by_key:
                raise CompileError(f"'{ref}' is not a breakdown of this query: a share is taken within, or kept to, "
                                   "the query's own breakdowns", suggestions=list(by_key))
            return by_key[key]

        within = list(dict.fromkeys(alias_of(r) for r in share.within))
        if len(within) == len(dims):
            raise CompileError("each row's share within all of its own breakdowns is always 100%: take the share "
                               "within fewer breakdowns", suggestions=list(by_key))
        value = metric_expr(name)
        whole = exp.Window(this=exp.Sum(this=value.copy()), partition_by=[exp.column(a) for a in within] or None)
        ratio = exp.Div(this=exp.cast(value.copy(), "DOUBLE"),
                        expression=exp.Nullif(this=whole, expression=exp.Literal.number(0)))
        column = f"{name}_share"
        outer = outer.select(exp.alias_(ratio, column))
        if share.keep:
            conditions = [_keep_condition(f, alias_of(f.ref)) for f in share.keep]
            shown = [exp.column(e.alias_or_name) for e in outer.expressions]
            outer = exp.select(*shown).from_(outer.subquery("shares")).where(exp.and_(*conditions))
        within_words = " within each " + " and ".join(_dim_label(d).lower() for d in dims if aliases[d.key] in within) \
            if within else ""
        meta = ColumnMeta(name=column, label=f"Share of {metric.display}{within_words}", kind="metric", ref=name,
                          type="DOUBLE", format="percent")
        return outer, meta

    def _cut_share(self, query: SemanticQuery, name: str, metric: Metric, metric_expr,
                   outer: exp.Select) -> tuple[exp.Select, ColumnMeta]:
        """The share of a whole that a cut of it is, row by row (``share.whole``)."""
        share = query.share
        assert share is not None and share.whole is not None
        whole = self.layer.metrics.get(share.whole)
        if whole is None or share.whole not in query.metrics:
            raise CompileError(f"the whole of a share must be a metric of the query, not '{share.whole}'",
                               suggestions=list(query.metrics))
        if share.within or share.keep:
            raise CompileError("a share of a whole metric is taken row by row: it has no 'within' or 'keep'")
        if metric.is_derived or whole.is_derived or whole.agg != metric.agg or whole.source != metric.source \
                or metric.agg not in ("sum", "count", "count_distinct"):
            raise CompileError(f"{metric.display} is not a part of {whole.display}: a share of a whole needs both "
                               "to add up the same rows the same way (one a filtered cut of the other)",
                               suggestions=[n for n in self.layer.metrics if n in query.metrics])
        ratio = exp.Div(this=exp.cast(metric_expr(name), "DOUBLE"),
                        expression=exp.Nullif(this=metric_expr(share.whole), expression=exp.Literal.number(0)))
        column = f"{name}_share"
        meta = ColumnMeta(name=column, label=f"{metric.display[:1].upper() + metric.display[1:]} as a share of "
                          f"{whole.display}", kind="metric", ref=name, type="DOUBLE", format="percent")
        return outer.select(exp.alias_(ratio, column)), meta

    def _listing(self, query: SemanticQuery, dialect: str) -> tuple[exp.Expression, list[ColumnMeta], dict]:
        """Rows of one node with the attributes asked for (reached through many-to-one links), filtered, ordered
        and capped, plus how many rows there are in all (``__total_rows``)."""
        layer = self.layer
        node = layer.nodes.get(query.rows_of or "")
        if node is None:
            raise UnknownReference(f"unknown node '{query.rows_of}' to list", suggestions=suggest(query.rows_of or "", sorted(layer.nodes)))
        if query.metrics:
            raise CompileError("a listing shows rows, not metrics: ask for the metric by an attribute instead")
        if not query.dimensions:
            raise CompileError(f"a listing of {node.display} needs at least one attribute to show")
        dims = [resolve_dimension(layer, d) for d in query.dimensions]
        refs = _Refs()
        preds = [parse_filter(layer, f, refs) for f in query.filters]
        if any(p.is_metric_filter for p in preds):
            raise CompileError("a listing cannot be filtered by a metric")
        aliases: dict[str, str] = {}
        taken: set[str] = set()
        for d in dims:
            alias = _dim_alias(d)
            if alias in taken and d.node is not None:
                alias = f"{d.node.name}_{alias}"
            taken.add(alias)
            aliases[d.key] = alias
        pinned = pinned_columns(layer, self.graph, _equalities(preds))
        fact = _FactPlan(node=node, metrics=[])
        select, tables, joins = self._fact_select(fact, dims, aliases, preds, pinned, dialect, listing=True)
        outer = exp.select(*[exp.column(aliases[d.key]) for d in dims],
                           exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), TOTAL_ROWS)).from_("listed")
        order: list[exp.Expression] = []
        for ob in query.order_by:
            if ob.ref in aliases.values() or ob.ref in aliases:
                order.append(exp.Ordered(this=exp.column(aliases.get(ob.ref, ob.ref)), desc=ob.descending,
                                         nulls_first=False))
        order = order or [exp.Ordered(this=exp.column(aliases[d.key]), nulls_first=False) for d in dims]
        outer = outer.order_by(*order).limit(query.limit or LISTING_LIMIT)
        outer = outer.with_("listed", as_=select)
        columns = [ColumnMeta(name=aliases[d.key], label=_dim_label(d), kind="dimension", ref=d.key,
                              type=self._dim_type(d), unit=d.column.unit if d.column else None,
                              grain=d.ref.grain or ("day" if d.ref.is_metric_time else None)) for d in dims]
        columns.append(ColumnMeta(name=TOTAL_ROWS, label="Rows in all", kind="value", type="BIGINT"))
        return outer, columns, {"tables": tables, "joins": joins, "base_metrics": []}

    # helpers --------------------------------------------------------------------
    def _dim_type(self, d: ResolvedDim) -> str | None:
        if d.is_time:
            return "DATE"
        assert d.column is not None and d.node is not None
        if d.column.type:
            return d.column.type.upper()
        return self.schema.get(table_key(d.node.table or ""), {}).get(d.column.name.lower())

    def _holds_times_of_day(self, d: ResolvedDim, fact_node: Node) -> bool:
        """Whether a time dimension's column is a timestamp (its values have times of day), from the warehouse
        schema or the column's declared type; a DATE or an unknown type is taken as whole days."""
        node = fact_node if d.ref.is_metric_time else d.node
        if node is None:
            return False
        name = node.time_column if d.ref.is_metric_time else (d.column.name if d.column else None)
        if not name:
            return False
        declared = next((c.type for c in node.columns if c.name == name and c.type), None)
        found = declared or self.schema.get(table_key(node.table or ""), {}).get(name.lower()) or ""
        return any(word in found.upper() for word in ("TIMESTAMP", "DATETIME"))

    def _order_expr(self, ob: OrderBy, dims: list[ResolvedDim], aliases: dict[str, str], metric_expr, query: SemanticQuery) -> exp.Expression:
        target: exp.Expression | None = None
        if ob.ref in self.layer.metrics:
            target = exp.column(ob.ref) if ob.ref in query.metrics else metric_expr(ob.ref)
        elif ob.ref in aliases.values():
            target = exp.column(ob.ref)
        else:
            for d in dims:
                try:
                    if DimensionRef.parse(ob.ref).key == d.key:
                        target = exp.column(aliases[d.key])
                except UnknownReference:
                    pass
        if target is None:
            valid = list(query.metrics) + [d.key for d in dims] + list(aliases.values())
            raise UnknownReference(f"cannot order by '{ob.ref}': it is not a metric or dimension of this query",
                                   suggestions=suggest(ob.ref, valid) or valid)
        return exp.Ordered(this=target, desc=ob.descending, nulls_first=False)

    def _fact_select(
        self, fact: _FactPlan, dims: list[ResolvedDim], aliases: dict[str, str], where: list[Predicate],
        pinned: set[tuple[str, str]], dialect: str, *, listing: bool = False,
    ) -> tuple[exp.Select, list[str], list[str]]:
        layer, node = self.layer, fact.node
        invariant = not listing and all(layer.metrics[m].agg in DUPLICATION_INVARIANT for m in fact.metrics)
        fact_alias = node.name
        join_aliases: dict[Path, str] = {(): fact_alias}
        used_aliases = {fact_alias}

        def path_for(dim: ResolvedDim) -> Path:
            assert dim.node is not None
            return choose_path(
                self.graph, node.name, dim.node.name, roles=dim.ref.roles, allow_fanning=not listing,
                pinned=pinned, ref=dim.key, metrics=fact.metrics,
            )

        def column_for(dim: ResolvedDim) -> exp.Expression:
            if dim.ref.is_metric_time:
                if not node.time_column:
                    raise CompileError(
                        f"'{METRIC_TIME}' needs a time column, and {node.name} (for {', '.join(fact.metrics)}) declares none",
                        hint=f"Set time_column on {node.name} or group by one of its attributes.",
                    )
                col: exp.Expression = exp.column(node.time_column, table=fact_alias)
                return col
            path = path_for(dim)
            for i in range(1, len(path) + 1):
                prefix = path[:i]
                if prefix not in join_aliases:
                    target = prefix[-1].target
                    alias = target
                    if alias in used_aliases:
                        roles = [e.link.role for e in prefix if e.link.role]
                        alias = f"{target}__{'_'.join(roles) if roles else len(join_aliases)}"
                    while alias in used_aliases:
                        alias += "_"
                    used_aliases.add(alias)
                    join_aliases[prefix] = alias
            assert dim.column is not None
            return exp.column(dim.column.name, table=join_aliases[path])

        def grain_of(dim: ResolvedDim, col: exp.Expression) -> exp.Expression:
            return time_trunc(col, dim.ref.grain, dialect) if dim.is_time else col

        dim_cols = [(aliases[d.key], grain_of(d, column_for(d))) for d in dims]
        conds = []
        for pred in where:
            def sub(n: exp.Expression, pred: Predicate = pred) -> exp.Expression:
                if isinstance(n, exp.Column):
                    m = _PLACEHOLDER.match(n.name)
                    if m:
                        dim = pred.dims[int(m.group(1))]
                        col = column_for(dim)
                        if dim.ref.grain or (dim.is_time and self._holds_times_of_day(dim, node)):
                            # a day is a whole day: a timestamp is compared by its date, so 'BETWEEN July 1 and
                            # July 31' keeps the orders of July 31 afternoon
                            return time_trunc(col, dim.ref.grain, dialect)
                        return col
                return n

            conds.append(pred.tree.copy().transform(sub))

        fanning: list[tuple[Path, list[str]]] = []
        if not invariant:
            pins = {(join_aliases[path_for(d)], d.ref.attribute) for d in _equality_dims(where)}
            fanning = self._unpinned_fanning(join_aliases, pins, node)
            if fanning and (listing or not node.primary_key):
                raise self._fan_out_error(fanning[0], fact, listing=listing)
        aggregates = [(m, metric_aggregate(layer.metrics[m], node, fact_alias)) for m in fact.metrics]
        own_filters = [layer.metrics[m].filter for m in fact.metrics]
        if own_filters and all(own_filters) and not listing:
            # every metric of this fact counts only the rows its filter keeps: the other rows are left out, so a
            # breakdown shows no groups those metrics never count ("jaffles sold by product" lists the jaffles)
            keep = [_qualify_own(f, node, fact_alias, "metric filter") for f in dict.fromkeys(own_filters)]
            conds.append(keep[0] if len(keep) == 1 else exp.or_(*[exp.paren(k) for k in keep]))

        def joined(sel: exp.Select) -> exp.Select:
            sel = sel.from_(self._table_expr(node, fact_alias))
            for prefix, alias in sorted(join_aliases.items(), key=lambda kv: len(kv[0])):
                if prefix:
                    sel = sel.join(self._table_expr(layer.nodes[prefix[-1].target], alias),
                                   on=self._join_condition(prefix[-1], join_aliases[prefix[:-1]], alias),
                                   join_type=prefix[-1].link.join_type.upper())
            for c in conds:
                sel = sel.where(c)
            return sel

        if not fanning:
            sel = joined(exp.select(*[exp.alias_(e, a) for a, e in dim_cols],
                                    *[exp.alias_(e, m) for m, e in aggregates]))
            if dim_cols and not listing:
                sel = sel.group_by(*[e.copy() for _, e in dim_cols])
        else:
            sel = self._deduplicated(node, fact_alias, joined, dim_cols, aggregates)

        fanning_paths = {prefix for prefix, _ in fanning}
        joins_text = []
        tables = [node.table or node.name]
        for prefix, alias in sorted(join_aliases.items(), key=lambda kv: len(kv[0])):
            if not prefix:
                continue
            edge = prefix[-1]
            target = layer.nodes[edge.target]
            tables.append(target.table or target.name)
            dedup = (f"; {node.name} rows counted once, by {', '.join(node.primary_key)}"
                     if prefix in fanning_paths else "")
            joins_text.append(f"{describe_path(prefix)} ({edge.link.cardinality}, on {edge.link.on}{dedup})")
        return sel, tables, joins_text

    @staticmethod
    def _join_condition(edge: Edge, src_alias: str, alias: str) -> exp.Expression:
        """The link's ``on`` with its node names replaced by the aliases of this join."""
        return edge.condition.copy().transform(
            lambda n: (
                exp.column(n.name, table=src_alias) if isinstance(n, exp.Column) and n.table == edge.source
                else exp.column(n.name, table=alias) if isinstance(n, exp.Column) and n.table == edge.target
                else n
            )
        )

    @staticmethod
    def _deduplicated(
        node: Node, fact_alias: str, joined: Callable[[exp.Select], exp.Select],
        dim_cols: list[tuple[str, exp.Expression]], aggregates: list[tuple[str, exp.Expression]],
    ) -> exp.Select:
        """Aggregate over the distinct (fact key, dimension values) the joins reach, so a fact row repeated by a
        fanning link counts once per combination of dimension values.

        The inner ``SELECT DISTINCT`` carries the fact's primary key, the dimension values and the fact columns the
        metrics read (they depend on the key, so they do not split a row); it is aliased as the fact, so the
        metric aggregates read it unchanged.
        """
        read = [c for c in dict.fromkeys(c.name for _, e in aggregates for c in e.find_all(exp.Column))
                if c not in node.primary_key]
        fact_cols = [*node.primary_key, *read]
        inner_names: list[str] = []
        inner_dims: list[exp.Expression] = []
        for alias, e in dim_cols:
            if isinstance(e, exp.Column) and e.table == fact_alias and e.name in fact_cols:
                inner_names.append(e.name)  # a column of the fact the inner query selects anyway
                continue
            name, n = alias, 2
            while name in fact_cols or name in inner_names:
                name, n = f"{alias}_{n}", n + 1
            inner_names.append(name)
            inner_dims.append(exp.alias_(e, name))
        inner = joined(exp.select(
            *[exp.column(c, table=fact_alias) for c in node.primary_key],
            *inner_dims,
            *[exp.column(c, table=fact_alias) for c in read],
        ).distinct())
        outer_dims = [exp.column(name, table=fact_alias) for name in inner_names]
        sel = exp.select(
            *[exp.alias_(col, alias) for col, (alias, _) in zip(outer_dims, dim_cols)],
            *[exp.alias_(e, m) for m, e in aggregates],
        ).from_(exp.alias_(exp.Subquery(this=inner), fact_alias, table=True))
        if outer_dims:
            sel = sel.group_by(*[c.copy() for c in outer_dims])
        return sel

    def _unpinned_fanning(
        self, join_aliases: dict[Path, str], pins: set[tuple[str, str]], fact_node: Node,
    ) -> list[tuple[Path, list[str]]]:
        """The fanning links of a join tree that are not pinned on *their own* join path, each with the target key
        columns left free.

        ``pins`` holds ``(alias, column)`` fixed by equality filters; constant conditions in a link's ``on`` pin
        the columns they fix on that link's alias. Pins spread along the tree through link equalities, and a
        pinned unique column or full primary key pins the node's whole key.
        """
        layer = self.layer
        pins = set(pins)
        for prefix, alias in join_aliases.items():
            if prefix:
                pins.update((alias, c) for c in prefix[-1].constants)
        node_of = {alias: (prefix[-1].target if prefix else fact_node.name) for prefix, alias in join_aliases.items()}
        changed = True
        while changed:
            changed = False
            for prefix, alias in join_aliases.items():
                n = layer.nodes[node_of[alias]]
                cols = {c for a, c in pins if a == alias}
                unique = {c.name for c in n.columns if c.unique}
                if n.primary_key and (cols & unique or set(n.primary_key) <= cols):
                    for key in n.primary_key:
                        if (alias, key) not in pins:
                            pins.add((alias, key))
                            changed = True
                if prefix:
                    parent = join_aliases[prefix[:-1]]
                    for src_col, dst_col in prefix[-1].pairs:
                        a, b = (parent, src_col), (alias, dst_col)
                        if (a in pins) != (b in pins):
                            pins.update((a, b))
                            changed = True
        out = []
        for prefix, alias in sorted(join_aliases.items(), key=lambda kv: len(kv[0])):
            if not prefix or prefix[-1].link.cardinality not in FANNING:
                continue
            edge = prefix[-1]
            target = layer.nodes[edge.target]
            covered = edge.fixed_target_columns | {c for a, c in pins if a == alias}
            if not target.primary_key or not set(target.primary_key) <= covered:
                out.append((prefix, [k for k in target.primary_key if k not in covered]))
        return out

    @staticmethod
    def _fan_out_error(fanning: tuple[Path, list[str]], fact: _FactPlan, *, listing: bool) -> CompileError:
        """Why a fanning join cannot be compiled: a listing would repeat rows; a fact without a key cannot be
        deduplicated."""
        prefix, free = fanning
        edge, name = prefix[-1], fact.node.name
        pin = (f"Fix {', '.join(edge.target + '.' + k for k in free)} with an equality filter on this path, or "
               if free else "")
        if listing:
            hint = f"{pin}show attributes reached through many-to-one links."
            return CompileError(
                f"listing {name} through the {edge.link.cardinality} link '{edge.label}' would repeat {name} rows",
                hint=hint[0].upper() + hint[1:],
            )
        return CompileError(
            f"joining {name} through the {edge.link.cardinality} link '{edge.label}' would duplicate {name} rows and "
            f"inflate {', '.join(fact.metrics)}, and {name} declares no primary_key to count each row once by",
            hint=f"Declare primary_key on {name} (the column(s) that identify one row). {pin}"
                 + ("a" if pin else "A") + "sk for a duplication-invariant metric (count_distinct, min, max).",
        )

    @staticmethod
    def _table_expr(node: Node, alias: str) -> exp.Expression:
        if node.table:  # ``raw.orders``: schema and table as two identifiers, each quoted only when it must be
            return exp.alias_(table_expr(node.table), alias, table=True)
        assert node.sql is not None
        return exp.alias_(exp.Subquery(this=sqlglot.parse_one(node.sql, read="duckdb")), alias, table=True)


def compile_query(
    layer: SemanticLayer,
    query: SemanticQuery,
    *,
    dialect: str = "duckdb",
    schema: Mapping[str, Mapping[str, str]] | None = None,
) -> CompiledQuery:
    """Compile ``query`` against ``layer`` for ``dialect`` (see the module docstring)."""
    return Compiler(layer, schema=schema).compile(query, dialect=dialect)
