"""Which chart fits a result: pure rules over the result's shape and the question's semantics.

Nothing here builds a spec or touches I/O. :func:`decide` looks at the columns of a
:class:`~lore.types.ResultSet` (metrics, dimensions, time) and a :class:`ChartRequest`
and returns a :class:`ChartPlan`: the chart kind from a closed set, the one-sentence
reason, the title and subtitle, which columns go where, and the rows to draw (sorted,
top-n and capped). :mod:`lore.chart.build` turns the plan into a Vega-Lite spec.

The rules, in order:

1. empty result, no numeric metric, too many columns, or 3+ dimensions: a table;
2. one row and one metric: a KPI (one big number);
3. a time dimension: a line (one line per series when a second dimension has few values,
   otherwise the top series);
4. one categorical dimension: a sorted horizontal bar chart (top 25), or a scatter plot
   for two metrics over many rows;
5. two categorical dimensions: grouped bars (stacked when the metric adds up and the
   grouped bars would be crowded) when one of them has few values, otherwise a table.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime

from lore.types import ChartKind, ColumnMeta, Frozen, ResultSet, Scalar

#: the most series (lines, bar groups, colours) a chart shows
FEW = 8
#: the most bars a bar chart shows
TOP_BARS = 25
#: the most categories on the axis of a grouped or stacked bar chart
TOP_GROUPS = 25
#: the most rows (points, bars, marks) a chart carries inline
MAX_POINTS = 5_000
#: a scatter plot needs at least this many rows; fewer read better as bars
SCATTER_MIN_ROWS = 10
#: more columns than this and a table reads better than a chart
MAX_CHART_COLUMNS = 8
#: a line chart marks the largest relative change between consecutive points above this
SHIFT_THRESHOLD = 0.4
#: grouped bars with more bars than this are crowded; additive metrics stack instead
CROWDED_BARS = 48
#: the longest title or label kept, in characters
MAX_TEXT = 120

_NUMERIC_TYPE = re.compile(
    r"^\s*(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?\d*|FLOAT\d*|DOUBLE|REAL|DECIMAL|NUMERIC|NUMBER)\b", re.I
)
_INTEGER_TYPE = re.compile(r"^\s*U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?\d*\b", re.I)
_TIME_TYPE = re.compile(r"^\s*(DATE|TIMESTAMP|DATETIME)", re.I)
_SPACES = re.compile(r"\s+")

Rows = Sequence[tuple[Scalar, ...]]
#: builds the title from the indices of the dimensions the chart is broken down by
TitleFn = Callable[[Sequence[int]], str]


class ChartRequest(Frozen):
    """What the question meant, as far as the chart cares.

    ``filters`` are human-readable phrases (``("premium", "2026")``); they all go into
    the title.
    """

    metric_labels: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    time_range: str | None = None
    #: largest first (True) or smallest first (False)
    sort_desc: bool = True
    #: the first metric adds up across a dimension (a sum or a count, not a ratio or an
    #: average), so its bars may be stacked
    additive: bool = False
    #: the columns an analysis operation plots, by name (a comparison's two periods or its change, a share, a
    #: running total); the result's other metrics stay in the tooltip
    plot: tuple[str, ...] = ()


class Shift(Frozen):
    """A sharp change on a line chart: the row (in :attr:`ChartPlan.rows`), the metric column, the change."""

    row: int
    measure: int
    #: relative to the previous point of the same series, as a fraction (0.5 is +50%)
    change: float


class ChartPlan(Frozen):
    """A decision: the chart kind, why, its titles, which columns go where, and the rows to draw."""

    kind: ChartKind
    reason: str
    title: str
    subtitle: str | None = None
    #: indices of the metric columns plotted (the first is the primary one)
    measures: tuple[int, ...] = ()
    #: index of the dimension on the main axis (time for a line, the category for bars)
    x: int | None = None
    #: index of the dimension drawn as colour (lines per series, bar groups)
    series: int | None = None
    #: several metrics of one unit drawn as series of one chart
    fold: bool = False
    #: the series values in colour order
    series_order: tuple[str, ...] = ()
    #: the categories in axis order (grouped and stacked bars)
    x_order: tuple[str, ...] = ()
    #: categories sorted largest first
    descending: bool = True
    #: the rows to draw, already sorted, cut to the top n and capped
    rows: tuple[tuple[Scalar, ...], ...] = ()
    #: a line chart's sharpest change, when it is sharp enough to mark
    shift: Shift | None = None


# --- text -------------------------------------------------------------------------------
def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """Make text safe and short for a title, a label or an axis: no control or invisible
    characters, single spaces, at most ``limit`` characters.

    >>> clean_text("Streaming\\n hours\\u200b\\x00 ")
    'Streaming hours'
    >>> clean_text("x" * 10, limit=5)
    'xxxx…'
    """
    kept = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    kept = _SPACES.sub(" ", kept).strip()
    return kept if len(kept) <= limit else kept[: limit - 1].rstrip() + "…"


def lower_first(label: str) -> str:
    """Lower-case a label's first letter for use inside a sentence, unless it starts an acronym.

    >>> lower_first("Region")
    'region'
    >>> lower_first("UA channel")
    'UA channel'
    >>> lower_first("")
    ''
    """
    if len(label) > 1 and label[1].isupper():
        return label
    return label[:1].lower() + label[1:]


def chart_title(metrics: Sequence[str], by: Sequence[str] = (), filters: Iterable[str] = ()) -> str:
    """The chart title: the metrics, what they are broken down by, and every filter.

    >>> chart_title(["Streaming hours"], ["region"], ["premium", "2026"])
    'Streaming hours by region · premium · 2026'
    >>> chart_title(["Cloud cost", "CPU utilization"], ["month", "team"])
    'Cloud cost and CPU utilization by month and team'
    >>> chart_title(["Installs"], [], ["iOS", "ios", " "])
    'Installs · iOS'
    """
    head = " and ".join(clean_text(m) for m in metrics if clean_text(m)) or "Result"
    if by:
        head += " by " + " and ".join(clean_text(b) for b in by)
    parts = [head]
    seen: set[str] = set()
    for phrase in filters:
        text = clean_text(phrase)
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            parts.append(text)
    return clean_text(" · ".join(parts), limit=2 * MAX_TEXT)


def axis_title(label: str, unit: str | None) -> str:
    """A label with its unit in brackets, unless the label already names it.

    >>> axis_title("Streaming hours", "h")
    'Streaming hours (h)'
    >>> axis_title("Cloud cost (USD)", "USD")
    'Cloud cost (USD)'
    >>> axis_title("Sessions", None)
    'Sessions'
    """
    label = clean_text(label)
    unit = clean_text(unit or "")
    if not unit or f"({unit})" in label:
        return label
    return f"{label} ({unit})"


def number_format(fmt: str | None, unit: str | None = None, type_: str | None = None) -> str:
    """A d3 number format from a column's display format (and its unit and SQL type).

    >>> number_format("currency", "USD")
    '$,.0f'
    >>> number_format("currency", "EUR")
    ',.0f'
    >>> number_format("percent")
    '.1%'
    >>> number_format("integer")
    ',d'
    >>> number_format(None, type_="BIGINT")
    ',d'
    >>> number_format(None, "h", "DOUBLE")
    ',.2~f'
    """
    if fmt == "currency":
        return "$,.0f" if (unit or "USD").strip().upper() in ("USD", "$", "US$") else ",.0f"
    if fmt == "percent":
        return ".1%"
    if fmt == "integer" or (fmt is None and type_ is not None and _INTEGER_TYPE.match(type_)):
        return ",d"
    if fmt == "duration":
        return ",.1f"
    return ",.2~f"


def time_format(grain: str | None) -> str:
    """A d3 time format for a time grain.

    >>> time_format("month")
    '%b %Y'
    >>> time_format("quarter")
    'Q%q %Y'
    >>> time_format(None)
    '%Y-%m-%d'
    """
    return {"year": "%Y", "quarter": "Q%q %Y", "month": "%b %Y", "week": "%d %b %Y", "day": "%d %b %Y"}.get(
        grain or "", "%Y-%m-%d"
    )


def field_names(columns: Sequence[ColumnMeta]) -> tuple[str, ...]:
    """Data field names for the spec: the column name when it is a plain identifier, else ``colN``.

    Vega-Lite reads dots and brackets in a field name as nested access, so names like
    ``"a.b"`` or ``"x[0]"`` are replaced. Names never start with ``_`` (kept for helper
    fields) and never repeat.

    >>> cols = [ColumnMeta(name=n, label=n) for n in ("region", "a.b", "_x", "region")]
    >>> field_names(cols)
    ('region', 'col1', 'col2', 'col3')
    """
    out: list[str] = []
    for i, col in enumerate(columns):
        name = col.name if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,62}", col.name) else f"col{i}"
        out.append(name if name not in out else f"col{i}")
    return tuple(out)


# --- values ------------------------------------------------------------------------------
def iso_datetime(value: Scalar) -> str | None:
    """An ISO date-time string that Vega reads as local time on every machine, or None.

    Vega parses ``"2026-01-31"`` as UTC midnight, which shows as the day before west of
    Greenwich; with a time part it is read as local time. Integer years become 1 January.

    >>> iso_datetime("2026-01-31")
    '2026-01-31T00:00:00'
    >>> iso_datetime("2026-01-31 12:30:00")
    '2026-01-31T12:30:00'
    >>> iso_datetime(2025)
    '2025-01-01T00:00:00'
    >>> iso_datetime("not a date") is None
    True
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return f"{value:04d}-01-01T00:00:00" if 1 <= value <= 9999 else None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if len(value.strip()) == 10:
        return date(parsed.year, parsed.month, parsed.day).isoformat() + "T00:00:00"
    return parsed.isoformat()


def as_number(value: Scalar) -> float | None:
    """A value as a finite float, or None when it is not one.

    >>> as_number(3), as_number(2.5), as_number("7"), as_number(True), as_number(None)
    (3.0, 2.5, None, None, None)
    >>> as_number(float("nan")), as_number(float("inf"))
    (None, None)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def largest_shift(values: Sequence[float | None]) -> tuple[int, float] | None:
    """The point with the largest relative change from the previous non-null point.

    Returns ``(index, change)`` with ``change`` as a fraction (0.5 is +50%), or None
    when there are fewer than two usable points. A change from zero is not relative and
    is skipped.

    >>> index, change = largest_shift([100, 110, 60, 66])
    >>> index, round(change, 3)
    (2, -0.455)
    >>> largest_shift([10, None, 30])
    (2, 2.0)
    >>> largest_shift([0, 5]) is None
    True
    """
    best: tuple[int, float] | None = None
    prev: float | None = None
    for i, value in enumerate(values):
        if value is None:
            continue
        if prev is not None and prev != 0:
            change = (value - prev) / abs(prev)
            if best is None or abs(change) > abs(best[1]):
                best = (i, change)
        prev = value
    return best


def find_shift(rows: Rows, series: int | None, measures: Sequence[int]) -> Shift | None:
    """The sharpest relative change between consecutive points of any series, if above
    :data:`SHIFT_THRESHOLD`. ``rows`` must be in time order.

    >>> rows = [("2026-01-01", "a", 100), ("2026-01-01", "b", 10), ("2026-02-01", "a", 105),
    ...         ("2026-02-01", "b", 16), ("2026-03-01", "a", 104), ("2026-03-01", "b", 17)]
    >>> find_shift(rows, 1, [2])
    Shift(row=3, measure=2, change=0.6)
    >>> find_shift(rows[::2], None, [2]) is None
    True
    """
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(series_key(row[series]) if series is not None else "", []).append(i)
    best: Shift | None = None
    for m in measures:
        for indices in groups.values():
            found = largest_shift([as_number(rows[i][m]) for i in indices])
            if found and (best is None or abs(found[1]) > abs(best.change)):
                best = Shift(row=indices[found[0]], measure=m, change=found[1])
    return best if best is not None and abs(best.change) > SHIFT_THRESHOLD else None


def describe_time(value: Scalar, grain: str | None) -> str:
    """A time value in words, at its grain.

    >>> describe_time("2026-03-01", "month"), describe_time("2026-04-01", "quarter")
    ('Mar 2026', 'Q2 2026')
    >>> describe_time("2026-03-05 10:00:00", None), describe_time(2025, "year")
    ('2026-03-05', '2025')
    """
    iso = iso_datetime(value)
    if iso is None:
        return series_key(value)
    moment = datetime.fromisoformat(iso)
    if grain == "year":
        return f"{moment.year}"
    if grain == "quarter":
        return f"Q{(moment.month - 1) // 3 + 1} {moment.year}"
    if grain == "month":
        return moment.strftime("%b %Y")
    return moment.date().isoformat()


def format_change(change: float) -> str:
    """A relative change as a signed percentage.

    >>> format_change(0.623), format_change(-0.5)
    ('+62%', '−50%')
    """
    sign = "+" if change >= 0 else "−"
    return f"{sign}{abs(change):.0%}"


# --- column roles --------------------------------------------------------------------------
def is_numeric(column: ColumnMeta, values: Iterable[Scalar] = ()) -> bool:
    """Whether a column holds numbers: by its SQL type, or (without one) by its values.

    >>> is_numeric(ColumnMeta(name="h", label="h", type="DECIMAL(18,2)"))
    True
    >>> is_numeric(ColumnMeta(name="c", label="c", type="VARCHAR"))
    False
    >>> is_numeric(ColumnMeta(name="x", label="x"), [1, 2.5, None])
    True
    """
    if column.type:
        return bool(_NUMERIC_TYPE.match(column.type))
    present = [v for v in values if v is not None]
    return bool(present) and all(as_number(v) is not None for v in present)


def is_time(column: ColumnMeta) -> bool:
    """Whether a column is a time dimension: it has a grain or a date/timestamp type.

    >>> is_time(ColumnMeta(name="m", label="Month", kind="dimension", grain="month"))
    True
    >>> is_time(ColumnMeta(name="d", label="Date", type="TIMESTAMP WITH TIME ZONE"))
    True
    >>> is_time(ColumnMeta(name="r", label="Region", kind="dimension", type="VARCHAR"))
    False
    """
    return column.grain is not None or bool(column.type and _TIME_TYPE.match(column.type))


def split_roles(result: ResultSet) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Indices of the measure columns and of the dimension columns.

    Metrics are the ``kind="metric"`` columns and dimensions the ``kind="dimension"`` ones.
    A result without metrics (plain SQL) counts its numeric value columns as measures; a
    result without dimensions counts its other value columns (text, dates) as dimensions.

    >>> cols = (ColumnMeta(name="r", label="Region", kind="dimension"),
    ...         ColumnMeta(name="h", label="Hours", kind="metric"))
    >>> split_roles(ResultSet(columns=cols, rows=(("EMEA", 1.0),)))
    ((1,), (0,))
    >>> cols = (ColumnMeta(name="d", label="d", type="DATE"), ColumnMeta(name="n", label="n", type="BIGINT"))
    >>> split_roles(ResultSet(columns=cols, rows=()))
    ((1,), (0,))
    """
    cols = result.columns
    measures = [i for i, c in enumerate(cols) if c.kind == "metric"]
    dims = [i for i, c in enumerate(cols) if c.kind == "dimension"]
    values = [i for i, c in enumerate(cols) if c.kind == "value"]
    if not measures:
        measures = [i for i in values if is_numeric(cols[i], (row[i] for row in result.rows))]
    if not dims:
        dims = [i for i in values if i not in measures]
    return tuple(measures), tuple(dims)


# --- rows ------------------------------------------------------------------------------------
def series_key(value: Scalar) -> str:
    """A dimension value as the text shown on an axis or in a legend.

    >>> series_key(None), series_key("EMEA"), series_key(3), series_key(True)
    ('(none)', 'EMEA', '3', 'true')
    """
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def totals_by(rows: Sequence[Sequence[Scalar]], key: int, measure: int) -> dict[str, float]:
    """The sum of a measure per value of a column, nulls counting as zero.

    >>> totals_by([("a", 1), ("b", 5), ("a", 2), ("c", None)], 0, 1)
    {'a': 3.0, 'b': 5.0, 'c': 0.0}
    """
    totals: dict[str, float] = {}
    for row in rows:
        name = series_key(row[key])
        totals[name] = totals.get(name, 0.0) + (as_number(row[measure]) or 0.0)
    return totals


def ranked(totals: dict[str, float], descending: bool = True) -> tuple[str, ...]:
    """Keys ordered by their totals (ties by name).

    >>> ranked({"a": 1.0, "b": 5.0, "c": 5.0})
    ('b', 'c', 'a')
    >>> ranked({"a": 1.0, "b": 5.0}, descending=False)
    ('a', 'b')
    """
    sign = -1.0 if descending else 1.0
    return tuple(sorted(totals, key=lambda k: (sign * totals[k], k)))


def sort_by_measure(
    rows: Sequence[tuple[Scalar, ...]], measure: int, descending: bool = True
) -> list[tuple[Scalar, ...]]:
    """Rows ordered by a measure, nulls last.

    >>> sort_by_measure([("a", 1), ("b", None), ("c", 3)], 1)
    [('c', 3), ('a', 1), ('b', None)]
    >>> sort_by_measure([("a", 1), ("b", None), ("c", 3)], 1, descending=False)
    [('a', 1), ('c', 3), ('b', None)]
    """
    present = [r for r in rows if as_number(r[measure]) is not None]
    missing = [r for r in rows if as_number(r[measure]) is None]
    present.sort(key=lambda r: as_number(r[measure]) or 0.0, reverse=descending)
    return present + missing


def sort_by_time(rows: Sequence[tuple[Scalar, ...]], column: int) -> list[tuple[Scalar, ...]]:
    """Rows in time order; values that are not dates go last.

    >>> sort_by_time([("2026-02-01",), (None,), ("2026-01-01",)], 0)
    [('2026-01-01',), ('2026-02-01',), (None,)]
    """
    return sorted(rows, key=lambda r: (iso_datetime(r[column]) is None, iso_datetime(r[column]) or ""))


def same_unit(columns: Sequence[ColumnMeta]) -> bool:
    """Whether columns share a unit and a format, so they can share an axis.

    >>> a = ColumnMeta(name="a", label="A", unit="USD", format="currency")
    >>> b = ColumnMeta(name="b", label="B", unit="USD", format="currency")
    >>> same_unit([a, b]), same_unit([a, ColumnMeta(name="c", label="C", format="percent")])
    (True, False)
    """
    return len({(c.unit, c.format) for c in columns}) <= 1


def _join_notes(notes: Iterable[str]) -> str | None:
    kept = [n for n in notes if n]
    return clean_text("; ".join(kept), limit=3 * MAX_TEXT) if kept else None


def _distinct(rows: Sequence[Sequence[Scalar]], column: int) -> int:
    return len({series_key(r[column]) for r in rows})


# --- the decision ----------------------------------------------------------------------------
def decide(result: ResultSet, request: ChartRequest) -> ChartPlan:
    """Choose a chart for a result; a result cut short by the engine's row limit says so.

    >>> cols = (ColumnMeta(name="r", label="Region", kind="dimension"),
    ...         ColumnMeta(name="h", label="Hours", kind="metric"))
    >>> decide(ResultSet(columns=cols, rows=(("EMEA", 1.0), ("APAC", 2.0)), truncated=True), ChartRequest()).subtitle
    'Only the first 2 rows came back (row limit)'
    """
    plan = _decide(result, request)
    if not result.truncated:
        return plan
    note = f"Only the first {len(result.rows):,} rows came back (row limit)"
    return plan.model_copy(update={"subtitle": _join_notes([note, plan.subtitle or ""])})


def _decide(result: ResultSet, request: ChartRequest) -> ChartPlan:
    """Choose a chart for a result: a pure function of the result's shape and the request.

    >>> cols = (ColumnMeta(name="h", label="Streaming hours", kind="metric", unit="h"),)
    >>> plan = _decide(ResultSet(columns=cols, rows=((1234.5,),)), ChartRequest(filters=("premium",)))
    >>> plan.kind, plan.title
    ('kpi', 'Streaming hours · premium')
    """
    cols = result.columns
    rows = list(result.rows)
    measures, dims = split_roles(result)
    names = [c.name for c in cols]
    plotted = tuple(names.index(n) for n in request.plot if n in names)
    measures = plotted or measures
    metric_labels = request.metric_labels or tuple(cols[i].label for i in measures)
    filters = (*request.filters, *((request.time_range,) if request.time_range else ()))
    time_dims = [d for d in dims if is_time(cols[d])]

    def title(by: Sequence[int] = ()) -> str:
        words = [cols[d].grain if cols[d].grain else lower_first(cols[d].label) for d in by]
        return chart_title(metric_labels, words, filters)

    def table(reason: str) -> ChartPlan:
        return ChartPlan(kind="table", reason=reason, title=title(dims), measures=measures)

    if not rows:
        return table("The result is empty, so there is nothing to plot.")
    if not measures:
        return table("The result has no numeric metric to plot, so it reads best as a table.")
    if len(cols) > MAX_CHART_COLUMNS:
        return table(f"The result has {len(cols)} columns, too many for one chart, so it is shown as a table.")
    if len(rows) == 1:
        if len(measures) == 1 and as_number(rows[0][measures[0]]) is None:
            return table("The metric has no value here, so there is no number to show.")
        if len(measures) == 1:
            subtitle = _join_notes(
                f"{clean_text(cols[d].label)}: {clean_text(series_key(rows[0][d]))}" for d in dims
            )
            return ChartPlan(
                kind="kpi",
                reason="One row with one metric reads best as a single big number.",
                title=title(),
                subtitle=subtitle,
                measures=measures,
                rows=tuple(rows),
            )
        if plotted and not dims and same_unit([cols[m] for m in measures]):
            return ChartPlan(
                kind="bar",
                reason="Two periods of one metric read best as bars side by side, in time order.",
                title=title(),
                measures=measures,
                fold=True,
                series_order=tuple(clean_text(cols[m].label) for m in measures),
                rows=tuple(rows),
            )
        return table("A single row with several metrics reads best as a table.")
    if len(dims) >= 3:
        return table(f"The result has {len(dims)} dimensions, more than one chart can show clearly.")
    if time_dims:
        return _line(result, request, rows, measures, dims, time_dims[0], title)
    if not dims:
        if len(measures) == 2 and len(rows) >= SCATTER_MIN_ROWS:
            return _scatter(rows, measures, None, title)
        return table("The result has several rows but no dimension to plot them against.")
    if len(dims) == 1:
        return _one_dimension(result, request, rows, measures, dims[0], title)
    return _two_dimensions(result, request, rows, measures, dims, title)


def _others_note(cols: Sequence[ColumnMeta], measures: Sequence[int]) -> str:
    others = [clean_text(cols[m].label) for m in measures[1:]]
    return f"{', '.join(others)} in the tooltip" if others else ""


def _line(
    result: ResultSet,
    request: ChartRequest,
    rows: Rows,
    measures: Sequence[int],
    dims: Sequence[int],
    t: int,
    title: TitleFn,
) -> ChartPlan:
    cols = result.columns
    others = [d for d in dims if d != t]
    series = others[0] if others else None
    notes: list[str] = []
    rows = sort_by_time(rows, t)
    series_order: tuple[str, ...] = ()
    fold = False
    plotted = tuple(measures)
    if series is not None:
        plotted = (measures[0],)
        series_order = ranked(totals_by(rows, series, measures[0]))
        if len(series_order) > FEW:
            notes.append(
                f"Top {FEW} of {len(series_order)} {lower_first(clean_text(cols[series].label))} values by total shown"
            )
            series_order = series_order[:FEW]
            keep = set(series_order)
            rows = [r for r in rows if series_key(r[series]) in keep]
        notes.append(_others_note(cols, measures))
        reason = (
            f"A time dimension with a second dimension of {len(series_order)} shown values reads best "
            "as one line per series."
        )
    elif len(measures) > 1 and len(measures) <= FEW and same_unit([cols[m] for m in measures]):
        fold = True
        series_order = tuple(clean_text(cols[m].label) for m in measures)
        reason = "Several metrics of the same unit over time read best as one line per metric."
    else:
        plotted = (measures[0],)
        notes.append(_others_note(cols, measures))
        reason = "A metric over a time dimension reads best as a line chart."
    dated = [r for r in rows if iso_datetime(r[t]) is not None]
    if len(dated) < len(rows):
        notes.append(f"{len(rows) - len(dated)} rows without a valid date not shown")
        rows = dated
    points = len(rows) * (len(plotted) if fold else 1)
    if points > MAX_POINTS:
        keep_rows = MAX_POINTS // (len(plotted) if fold else 1)
        notes.append(f"Latest {keep_rows:,} of {len(rows):,} rows shown (capped at {MAX_POINTS:,} points)")
        rows = rows[-keep_rows:]
    by = [t] + ([series] if series is not None else [])
    shift = find_shift(rows, series, plotted)
    if shift is not None:
        when = describe_time(rows[shift.row][t], cols[t].grain)
        notes.append(f"Sharpest change marked: {format_change(shift.change)} in {when}")
    return ChartPlan(
        kind="line",
        reason=reason,
        title=title(by),
        subtitle=_join_notes(notes),
        measures=plotted,
        x=t,
        series=series,
        fold=fold,
        series_order=series_order,
        rows=tuple(rows),
        shift=shift,
    )


def _scatter(rows: Rows, measures: Sequence[int], dim: int | None, title: TitleFn) -> ChartPlan:
    notes: list[str] = []
    if len(rows) > MAX_POINTS:
        notes.append(f"First {MAX_POINTS:,} of {len(rows):,} rows shown")
        rows = rows[:MAX_POINTS]
    return ChartPlan(
        kind="scatter",
        reason="Two metrics over many rows read best as a scatter plot of one against the other.",
        title=title([dim] if dim is not None else []),
        subtitle=_join_notes(notes),
        measures=tuple(measures[:2]),
        x=dim,
        rows=tuple(rows),
    )


def _one_dimension(
    result: ResultSet, request: ChartRequest, rows: Rows, measures: Sequence[int], dim: int, title: TitleFn
) -> ChartPlan:
    cols = result.columns
    if len(measures) == 2 and len(rows) >= SCATTER_MIN_ROWS:
        return _scatter(rows, measures, dim, title)
    if len(measures) > 1:
        if len(measures) <= FEW and same_unit([cols[m] for m in measures]):
            order = ranked(totals_by(rows, dim, measures[0]), request.sort_desc)
            notes: list[str] = []
            if len(order) > TOP_GROUPS:
                notes.append(f"{_top_word(request)} {TOP_GROUPS} of {len(order)} shown")
                order = order[:TOP_GROUPS]
            keep = set(order)
            return ChartPlan(
                kind="grouped_bar",
                reason="Several metrics of the same unit by one dimension read best as grouped bars.",
                title=title([dim]),
                subtitle=_join_notes(notes),
                measures=tuple(measures),
                x=dim,
                fold=True,
                x_order=order,
                descending=request.sort_desc,
                series_order=tuple(clean_text(cols[m].label) for m in measures),
                rows=tuple(r for r in rows if series_key(r[dim]) in keep),
            )
        return table_plan(
            "Several metrics with different units by one dimension read best as a table.", title([dim]), measures
        )
    ordered = sort_by_measure(rows, measures[0], request.sort_desc)
    notes: list[str] = []
    if len(ordered) > TOP_BARS:
        rest = len(ordered) - TOP_BARS
        notes.append(f"{_top_word(request)} {TOP_BARS} of {len(ordered)} shown; {rest} more not plotted")
        ordered = ordered[:TOP_BARS]
    return ChartPlan(
        kind="bar",
        reason="One metric by one categorical dimension reads best as bars sorted by value.",
        title=title([dim]),
        subtitle=_join_notes(notes),
        measures=tuple(measures[:1]),
        x=dim,
        descending=request.sort_desc,
        rows=tuple(ordered),
    )


def _two_dimensions(
    result: ResultSet,
    request: ChartRequest,
    rows: Rows,
    measures: Sequence[int],
    dims: Sequence[int],
    title: TitleFn,
) -> ChartPlan:
    cols = result.columns
    a, b = dims
    series, main = (b, a) if _distinct(rows, b) <= _distinct(rows, a) else (a, b)
    n_series = _distinct(rows, series)
    if n_series > FEW:
        return table_plan(
            f"Both dimensions have more than {FEW} values, too many for grouped bars, so it is shown as a table.",
            title(dims),
            measures,
        )
    m = measures[0]
    order = ranked(totals_by(rows, main, m), request.sort_desc)
    notes: list[str] = []
    if len(order) > TOP_GROUPS:
        what = lower_first(clean_text(cols[main].label))
        notes.append(f"{_top_word(request)} {TOP_GROUPS} of {len(order)} {what} values shown")
        order = order[:TOP_GROUPS]
    notes.append(_others_note(cols, measures))
    keep = set(order)
    kept_rows = tuple(r for r in rows if series_key(r[main]) in keep)
    series_order = ranked(totals_by(kept_rows, series, m))
    stacked = request.additive and len(order) * n_series > CROWDED_BARS
    reason = (
        "A metric that adds up, by one dimension with many values and one with few, reads best as stacked bars."
        if stacked
        else f"A metric by two dimensions, one with {n_series} values, reads best as grouped bars."
    )
    return ChartPlan(
        kind="stacked_bar" if stacked else "grouped_bar",
        reason=reason,
        title=title([main, series]),
        subtitle=_join_notes(notes),
        measures=(m,),
        x=main,
        series=series,
        x_order=order,
        series_order=series_order,
        descending=request.sort_desc,
        rows=kept_rows,
    )


def table_plan(reason: str, title: str, measures: Sequence[int] = ()) -> ChartPlan:
    """A plan for a table (no chart).

    >>> table_plan("Nothing to plot.", "Streaming hours").kind
    'table'
    """
    return ChartPlan(kind="table", reason=reason, title=title, measures=tuple(measures))


def _top_word(request: ChartRequest) -> str:
    return "Top" if request.sort_desc else "Bottom"
