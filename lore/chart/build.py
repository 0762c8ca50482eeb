"""Vega-Lite specs from chart plans: plain JSON dicts, declarative, data inline, never code.

:func:`choose_chart` is the stage's entry point: the rules in :mod:`lore.chart.rules`
decide, the builders here draw. Every spec carries its data as inline ``values`` with
helper-safe field names, every colour comes from :data:`PALETTE`, and text from the data
appears only as data values (titles and labels are cleaned).

The builders write the Vega-Lite dict directly (the same specs Altair produced, without
its per-chart cost of tens of milliseconds for object construction and JSON-schema
validation). Validity is proven in the tests: every kind, and many generated results,
are checked with :func:`validate_spec` against the Vega-Lite schema that Altair ships.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from lore.chart.rules import (
    ChartPlan,
    ChartRequest,
    axis_title,
    clean_text,
    decide,
    field_names,
    format_change,
    is_numeric,
    is_time,
    iso_datetime,
    number_format,
    series_key,
    time_format,
)
from lore.errors import OperatorError
from lore.types import ChartSpec, ColumnMeta, ResultSet, Scalar

if TYPE_CHECKING:  # pragma: no cover
    import jsonschema.protocols

#: the colours of every chart, in series order: Okabe & Ito's colour-blind-safe set
PALETTE: Final[tuple[str, ...]] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#999999",  # grey
    "#000000",  # black
)
#: text and annotation ink
INK: Final = "#333333"
#: secondary text
MUTED: Final = "#666666"

#: helper fields added to the data (column fields never start with "_")
SERIES_FIELD: Final = "_series"
VALUE_FIELD: Final = "_value"
NOTE_FIELD: Final = "_note"
LABEL_FIELD: Final = "_label"
RANK_FIELD: Final = "_rank"

LINE_HEIGHT: Final = 320
GROUPED_HEIGHT: Final = 340
SCATTER_HEIGHT: Final = 360
KPI_HEIGHT: Final = 150
BAR_STEP: Final = 24

#: the Vega-Lite schema the specs follow (the one Altair ships; a test keeps them equal)
SCHEMA_URL: Final = "https://vega.github.io/schema/vega-lite/v6.4.1.json"
#: the view configuration every chart carries (Altair's default theme, with the frame removed)
VIEW_CONFIG: Final = (("continuousWidth", 300), ("continuousHeight", 300), ("stroke", None))

#: the most ticks on a time axis with a grain of a month or more
MAX_TIME_TICKS: Final = 12
#: tick steps, in grains, tried in order until the ticks fit MAX_TIME_TICKS (whole quarters, years, decades)
TICK_MULTIPLES: Final = {"day": (1, 2, 7, 14), "week": (1, 2, 4, 8, 13, 26, 52), "month": (1, 2, 3, 6, 12, 24, 60, 120),
                         "quarter": (1, 2, 4, 8, 20, 40), "year": (1, 2, 5, 10, 20, 50, 100)}

Record = dict[str, Scalar]
Spec = dict[str, Any]


# --- entry points --------------------------------------------------------------------------
def choose_chart(result: ResultSet, request: ChartRequest) -> ChartSpec:
    """Choose a chart for a result by rules and build its Vega-Lite spec.

    >>> from lore.types import ColumnMeta
    >>> cols = (ColumnMeta(name="region", label="Region", kind="dimension", type="VARCHAR"),
    ...         ColumnMeta(name="hours", label="Streaming hours", kind="metric", unit="h"))
    >>> chart = choose_chart(ResultSet(columns=cols, rows=(("EMEA", 2.0), ("UCAN", 3.0))),
    ...                      ChartRequest(filters=("premium", "2026")))
    >>> chart.kind, chart.title
    ('bar', 'Streaming hours by region · premium · 2026')
    >>> chart.spec["encoding"]["x"]["title"], chart.spec["data"]["values"][0]
    ('Streaming hours (h)', {'region': 'UCAN', 'hours': 3.0})
    """
    return build_chart(decide(result, request), result)


def build_chart(plan: ChartPlan, result: ResultSet) -> ChartSpec:
    """Draw a plan: the Vega-Lite spec (None for a table) with the plan's title and reason."""
    if plan.kind == "table":
        return ChartSpec(kind="table", title=plan.title, subtitle=plan.subtitle, spec=None, reason=plan.reason)
    builders: dict[str, Callable[[ChartPlan, ResultSet], Spec]] = {
        "kpi": _kpi,
        "line": _line,
        "bar": _bar,
        "grouped_bar": _grouped_bar,
        "stacked_bar": _stacked_bar,
        "scatter": _scatter,
    }
    body = builders[plan.kind](plan, result)
    title: Spec = {"text": plan.title, "anchor": "start", "color": INK, "subtitleColor": MUTED}
    if plan.subtitle:
        title["subtitle"] = plan.subtitle
    spec: Spec = {
        "$schema": SCHEMA_URL,
        "config": {"view": dict(VIEW_CONFIG), "range": {"category": list(PALETTE)}},
        **body,
        "title": title,
        "width": "container",
        "description": clean_text(plan.reason),
        "autosize": {"type": "fit", "contains": "padding"},
    }
    return ChartSpec(kind=plan.kind, title=plan.title, subtitle=plan.subtitle, spec=spec, reason=plan.reason)


@lru_cache(maxsize=1)
def _vega_lite_validator() -> jsonschema.protocols.Validator:
    """A validator for the Vega-Lite JSON schema that Altair ships (loaded once, on first use)."""
    import jsonschema  # lazy: the schema check loads when a spec is first checked
    from altair.vegalite.v6.schema.core import load_schema

    schema = load_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def validate_spec(spec: dict[str, Any]) -> None:
    """Check a spec against the Vega-Lite JSON schema that Altair ships.

    Raises :class:`~lore.errors.OperatorError` naming the first problem.

    >>> validate_spec({"mark": "bar", "data": {"values": [{"a": 1}]},
    ...                "encoding": {"x": {"field": "a", "type": "quantitative"}}})
    >>> validate_spec({"mark": "exec"})
    Traceback (most recent call last):
    ...
    lore.errors.OperatorError: The chart spec is not valid Vega-Lite ...
    """
    import jsonschema  # lazy: the schema check loads when a spec is first checked

    if not isinstance(spec, dict):
        raise OperatorError(f"The chart spec is not valid Vega-Lite: expected an object, got {type(spec).__name__}.")
    error = jsonschema.exceptions.best_match(_vega_lite_validator().iter_errors(spec))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise OperatorError(
            f"The chart spec is not valid Vega-Lite at {where}: {error.message[:300]}",
            hint="This is a bug in the chart rules; report it with the question that produced it.",
        )


def field_def(field: str, type_: str, **props: Any) -> Spec:
    """An encoding's field definition; properties that are None are left out.

    >>> field_def("hours", "quantitative", title="Hours", format=None)
    {'field': 'hours', 'type': 'quantitative', 'title': 'Hours'}
    """
    return {"field": field, "type": type_, **{k: v for k, v in props.items() if v is not None}}


def mark(type_: str, **props: Any) -> Spec:
    """A mark definition.

    >>> mark("bar", color="#0072B2")
    {'type': 'bar', 'color': '#0072B2'}
    """
    return {"type": type_, **props}


# --- data ------------------------------------------------------------------------------------
def _clean_number(value: Scalar) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def records(plan: ChartPlan, result: ResultSet) -> list[Record]:
    """The plan's rows as records with spec-safe field names: dates as ISO strings,
    categories as text, numbers as numbers, everything else as plain data values."""
    cols = result.columns
    fields = field_names(cols)
    categorical = {i for i in (plan.x, plan.series) if i is not None and not is_time(cols[i])}
    out: list[Record] = []
    for row in plan.rows:
        record: Record = {}
        for i, (col, value) in enumerate(zip(cols, row)):
            if is_time(col):
                record[fields[i]] = iso_datetime(value)
            elif i in categorical:
                record[fields[i]] = series_key(value)
            else:
                record[fields[i]] = _clean_number(value)
        out.append(record)
    return out


def folded(plan: ChartPlan, result: ResultSet, rows: Sequence[Record]) -> list[Record]:
    """Long records for several metrics drawn as series: one record per row and metric."""
    fields = field_names(result.columns)
    out: list[Record] = []
    for record in rows:
        for m, label in zip(plan.measures, plan.series_order):
            out.append({**record, SERIES_FIELD: label, VALUE_FIELD: record[fields[m]]})
    return out


def _numeric_column(col: ColumnMeta, i: int, plan: ChartPlan) -> bool:
    if col.kind == "metric" or i in plan.measures:
        return True
    return col.kind == "value" and is_numeric(col, (r[i] for r in plan.rows))


def tooltips(plan: ChartPlan, result: ResultSet) -> list[Spec]:
    """A tooltip for every column of the result, labelled and formatted."""
    cols = result.columns
    fields = field_names(cols)
    tips: list[Spec] = []
    for i, col in enumerate(cols):
        title = axis_title(col.label, col.unit)
        if is_time(col):
            tips.append(field_def(fields[i], "temporal", title=title, format=time_format(col.grain)))
        elif i not in (plan.x, plan.series) and _numeric_column(col, i, plan):
            fmt = number_format(col.format, col.unit, col.type)
            tips.append(field_def(fields[i], "quantitative", title=title, format=fmt))
        else:
            tips.append(field_def(fields[i], "nominal", title=title))
    return tips


def _measure_axis(plan: ChartPlan, result: ResultSet) -> tuple[str, str, str]:
    """(field, axis title, number format) of the plotted value."""
    cols = result.columns
    m = plan.measures[0]
    col = cols[m]
    fmt = number_format(col.format, col.unit, col.type)
    if plan.fold:
        title = axis_title(" / ".join(clean_text(cols[i].label) for i in plan.measures), col.unit)
        return VALUE_FIELD, clean_text(title), fmt
    return field_names(cols)[m], axis_title(col.label, col.unit), fmt


def _by_total(field: str, descending: bool = True) -> Spec:
    """Sort a channel by the total of a field: the spec orders categories itself, so data
    values never appear outside the data.

    >>> _by_total("hours", descending=False)
    {'field': 'hours', 'op': 'sum', 'order': 'ascending'}
    """
    return {"field": field, "op": "sum", "order": "descending" if descending else "ascending"}


def _series_color(plan: ChartPlan, result: ResultSet) -> Spec | None:
    """Colour by series: the largest series first, colours from :data:`PALETTE` in order."""
    n = len(plan.series_order)
    legend = {"orient": "bottom"}
    if plan.fold:  # the series are metric labels, not data
        return field_def(SERIES_FIELD, "nominal", title="Metric", sort=list(plan.series_order),
                         scale={"domain": list(plan.series_order), "range": list(PALETTE[:n])}, legend=legend)
    if plan.series is None:
        return None
    col = result.columns[plan.series]
    value_field = field_names(result.columns)[plan.measures[0]]
    return field_def(field_names(result.columns)[plan.series], "nominal", title=clean_text(col.label),
                     sort=_by_total(value_field), scale={"range": list(PALETTE[:n])}, legend=legend)


# --- builders: each returns the chart's body (data, mark or layers, encoding, height) ----------------
def _kpi(plan: ChartPlan, result: ResultSet) -> Spec:
    cols = result.columns
    m = plan.measures[0]
    field = field_names(cols)[m]
    data = [{**record, LABEL_FIELD: axis_title(cols[m].label, cols[m].unit)} for record in records(plan, result)]
    fmt = number_format(cols[m].format, cols[m].unit, cols[m].type)
    number = {"mark": mark("text", fontSize=56, fontWeight="bold", color=PALETTE[0], baseline="middle"),
              "encoding": {"text": field_def(field, "quantitative", format=fmt)}}
    label = {"mark": mark("text", fontSize=16, color=MUTED, baseline="top", dy=38),
             "encoding": {"text": field_def(LABEL_FIELD, "nominal")}}
    return {"layer": [number, label], "data": {"values": data}, "encoding": {"tooltip": tooltips(plan, result)},
            "height": KPI_HEIGHT}


def _line(plan: ChartPlan, result: ResultSet) -> Spec:
    cols = result.columns
    fields = field_names(cols)
    assert plan.x is not None
    t = cols[plan.x]
    data = records(plan, result)
    if plan.fold:
        data = folded(plan, result, data)
    y_field, y_title, y_format = _measure_axis(plan, result)
    x = field_def(fields[plan.x], "temporal", title=clean_text(t.grain.capitalize() if t.grain else t.label),
                  axis=time_axis(t.grain, [iso_datetime(row[plan.x]) for row in plan.rows]))
    y = field_def(y_field, "quantitative", title=y_title, axis={"format": y_format})
    color = _series_color(plan, result)
    encoding: Spec = {"x": x, "y": y, "tooltip": tooltips(plan, result)}
    if color is not None:
        encoding["color"] = color
    line_mark = mark("line", strokeWidth=2, point=len(data) <= 60)
    if color is None:
        line_mark["color"] = PALETTE[0]
        if line_mark["point"]:
            line_mark["point"] = {"color": PALETTE[0], "filled": True}
    line = {"mark": line_mark, "encoding": encoding}
    if plan.shift is None:
        return {**line, "data": {"values": data}, "height": LINE_HEIGHT}
    row = plan.rows[plan.shift.row]
    value = _clean_number(row[plan.shift.measure])
    note = f"{format_change(plan.shift.change)} vs previous {t.grain or 'point'}"
    marker = [{fields[plan.x]: iso_datetime(row[plan.x]), y_field: value, NOTE_FIELD: note}]
    ring = {"data": {"values": marker}, "mark": mark("point", size=220, filled=False, strokeWidth=2, color=INK),
            "encoding": {"x": x, "y": y}}
    align, dx = _note_alignment(plan, result)
    text = {"data": {"values": marker}, "mark": mark("text", dy=-16, dx=dx, align=align, fontWeight="bold", color=INK),
            "encoding": {"x": x, "y": y, "text": field_def(NOTE_FIELD, "nominal")}}
    return {"layer": [line, ring, text], "data": {"values": data}, "height": LINE_HEIGHT}


def _bar(plan: ChartPlan, result: ResultSet) -> Spec:
    if plan.x is None:
        return _metric_bars(plan, result)
    cols = result.columns
    fields = field_names(cols)
    x_field, x_title, x_format = _measure_axis(plan, result)
    dim = cols[plan.x]
    order = _unique([series_key(row[plan.x]) for row in plan.rows])
    bars = {"mark": mark("bar", color=PALETTE[0], cornerRadiusEnd=2)}
    labels = {"mark": mark("text", align="left", baseline="middle", dx=3, color=MUTED),
              "encoding": {"text": field_def(x_field, "quantitative", format=x_format)}}
    return {
        "layer": [bars, labels],
        "data": {"values": records(plan, result)},
        "encoding": {
            "y": field_def(fields[plan.x], "nominal", title=clean_text(dim.label), sort="-x" if plan.descending else "x"),
            "x": field_def(x_field, "quantitative", title=x_title, axis={"format": x_format}),
            "tooltip": tooltips(plan, result),
        },
        "height": max(120, BAR_STEP * len(order)),
    }


def _metric_bars(plan: ChartPlan, result: ResultSet) -> Spec:
    """One row's metrics of one unit as bars in the plan's order (a comparison's two periods)."""
    data = folded(plan, result, records(plan, result))
    col = result.columns[plan.measures[0]]
    fmt = number_format(col.format, col.unit, col.type)
    title = axis_title(clean_text(col.label).split(",")[0], col.unit)
    bars = {"mark": mark("bar", color=PALETTE[0], cornerRadiusEnd=2)}
    labels = {"mark": mark("text", align="left", baseline="middle", dx=3, color=MUTED),
              "encoding": {"text": field_def(VALUE_FIELD, "quantitative", format=fmt)}}
    return {
        "layer": [bars, labels],
        "data": {"values": data},
        "encoding": {
            "y": field_def(SERIES_FIELD, "nominal", title=None, sort=list(plan.series_order)),
            "x": field_def(VALUE_FIELD, "quantitative", title=title, axis={"format": fmt}),
            "tooltip": [field_def(SERIES_FIELD, "nominal", title="Metric"),
                        field_def(VALUE_FIELD, "quantitative", title=title, format=fmt)],
        },
        "height": max(120, 2 * BAR_STEP * len(plan.measures)),
    }


def _grouped_bar(plan: ChartPlan, result: ResultSet) -> Spec:
    cols = result.columns
    fields = field_names(cols)
    assert plan.x is not None
    data = records(plan, result)
    if plan.fold:
        data = folded(plan, result, data)
    y_field, y_title, y_format = _measure_axis(plan, result)
    offset_field = SERIES_FIELD if plan.fold else fields[plan.series if plan.series is not None else plan.x]
    long_labels = any(len(label) > 6 for label in plan.x_order) or len(plan.x_order) > 12
    color = _series_color(plan, result)
    assert color is not None
    return {
        "data": {"values": data},
        "mark": mark("bar", cornerRadiusEnd=2),
        "encoding": {
            "x": field_def(fields[plan.x], "nominal", title=clean_text(cols[plan.x].label),
                           sort=_by_total(y_field, plan.descending),
                           axis={"labelAngle": -40 if long_labels else 0, "labelLimit": 140}),
            "xOffset": field_def(offset_field, "nominal",
                                 sort=list(plan.series_order) if plan.fold else _by_total(y_field)),
            "y": field_def(y_field, "quantitative", title=y_title, axis={"format": y_format}),
            "color": color,
            "tooltip": tooltips(plan, result),
        },
        "height": GROUPED_HEIGHT,
    }


def _stacked_bar(plan: ChartPlan, result: ResultSet) -> Spec:
    cols = result.columns
    fields = field_names(cols)
    assert plan.x is not None and plan.series is not None
    x_field, x_title, x_format = _measure_axis(plan, result)
    color = _series_color(plan, result)
    assert color is not None
    series_field = fields[plan.series]
    rank = {name: i for i, name in enumerate(plan.series_order)}
    data = [{**record, RANK_FIELD: rank.get(str(record[series_field]), len(rank))} for record in records(plan, result)]
    return {
        "data": {"values": data},
        "mark": mark("bar"),
        "encoding": {
            "y": field_def(fields[plan.x], "nominal", title=clean_text(cols[plan.x].label),
                           sort=_by_total(x_field, plan.descending)),
            "x": field_def(x_field, "quantitative", title=x_title, axis={"format": x_format}, stack="zero"),
            "color": color,
            "order": field_def(RANK_FIELD, "quantitative", sort="ascending"),  # largest series first
            "tooltip": tooltips(plan, result),
        },
        "height": max(120, BAR_STEP * len(plan.x_order)),
    }


def _scatter(plan: ChartPlan, result: ResultSet) -> Spec:
    cols = result.columns
    fields = field_names(cols)
    a, b = plan.measures[0], plan.measures[1]

    def axis(i: int) -> Spec:
        col = cols[i]
        fmt = number_format(col.format, col.unit, col.type)
        return field_def(fields[i], "quantitative", title=axis_title(col.label, col.unit),
                         axis={"format": fmt, "labelOverlap": True})

    return {
        "data": {"values": records(plan, result)},
        "mark": mark("circle", size=70, opacity=0.8, color=PALETTE[0]),
        "encoding": {"x": axis(a), "y": axis(b), "tooltip": tooltips(plan, result)},
        "height": SCATTER_HEIGHT,
    }


# --- small helpers --------------------------------------------------------------------------
def time_axis(grain: str | None, times: Sequence[str | None]) -> Spec:
    """The axis of a time dimension: its label format and ticks only on whole grain steps, so a label never
    repeats (left to itself Vega puts several ticks inside one month on a short range, each labelled
    "Jan 2025", or several inside one day). At most :data:`MAX_TIME_TICKS` ticks.

    >>> time_axis("month", ["2025-01-01T00:00:00", "2025-04-01T00:00:00"])
    {'format': '%b %Y', 'tickCount': {'interval': 'month', 'step': 1}}
    >>> time_axis("month", [f"{y}-{m:02d}-01T00:00:00" for y in (2024, 2025) for m in range(1, 13)])["tickCount"]
    {'interval': 'month', 'step': 2}
    >>> time_axis("quarter", ["2025-01-01T00:00:00", "2025-10-01T00:00:00"])["tickCount"]
    {'interval': 'month', 'step': 3}
    >>> time_axis("year", ["2001-01-01T00:00:00", "2026-01-01T00:00:00"])["tickCount"]
    {'interval': 'year', 'step': 5}
    >>> time_axis("week", ["2026-01-05T00:00:00", "2026-03-30T00:00:00"])["tickCount"]
    {'interval': 'week', 'step': 2}
    >>> time_axis("day", [None, "2026-03-01T00:00:00"])["tickCount"]
    {'interval': 'day', 'step': 1}
    >>> time_axis("day", ["2025-01-01T00:00:00", "2026-03-01T00:00:00"])["tickCount"]
    {'interval': 'month', 'step': 2}
    >>> time_axis(None, [])
    {'format': '%Y-%m-%d'}
    """
    axis: Spec = {"format": time_format(grain)}
    if grain not in TICK_MULTIPLES:
        return axis
    days = sorted({d for d in map(_day_number, times) if d is not None})
    span = days[-1] - days[0] if days else 0
    per = 7 if grain == "week" else 1
    if grain in ("day", "week") and span // per + 1 <= MAX_TIME_TICKS * TICK_MULTIPLES[grain][-1]:
        return {**axis, "tickCount": _tick_step(grain, span // per + 1, TICK_MULTIPLES[grain])}
    months = sorted({_month_number(d) for d in days})  # a long daily or weekly range ticks on months
    per = {"quarter": 3, "year": 12}.get(grain, 1)
    steps = (months[-1] - months[0]) // per + 1 if months else 1
    if grain == "year":
        return {**axis, "tickCount": _tick_step("year", steps, TICK_MULTIPLES["year"])}
    multiples = TICK_MULTIPLES["quarter" if grain == "quarter" else "month"]
    return {**axis, "tickCount": _tick_step("month", steps, multiples, per=per)}


def _tick_step(interval: str, steps: int, multiples: Sequence[int], per: int = 1) -> Spec:
    """The first multiple of the grain that puts at most :data:`MAX_TIME_TICKS` ticks on ``steps`` grain steps.

    >>> _tick_step("month", 13, (1, 2, 3))
    {'interval': 'month', 'step': 2}
    """
    multiple = next((k for k in multiples if math.ceil(steps / k) <= MAX_TIME_TICKS), multiples[-1])
    return {"interval": interval, "step": multiple * per}


def _day_number(text: str | None) -> int | None:
    """The day number (proleptic Gregorian ordinal) of an ISO date-time string, None when it is not one.

    >>> _day_number("0001-01-02T00:00:00"), _day_number("x")
    (2, None)
    """
    try:
        return date.fromisoformat((text or "")[:10]).toordinal()
    except ValueError:
        return None


def _month_number(day: int) -> int:
    """The month count (year * 12 + month - 1) of a day number.

    >>> _month_number(date(2025, 2, 3).toordinal()) - 2025 * 12
    1
    """
    when = date.fromordinal(day)
    return when.year * 12 + when.month - 1


def _note_alignment(plan: ChartPlan, result: ResultSet) -> tuple[str, int]:
    """Where a line annotation's text goes so it stays inside the plot: left of a point near
    the right edge, right of a point near the left edge, centred otherwise."""
    assert plan.x is not None and plan.shift is not None
    times = sorted({iso_datetime(row[plan.x]) or "" for row in plan.rows})
    position = times.index(iso_datetime(plan.rows[plan.shift.row][plan.x]) or "") / max(1, len(times) - 1)
    if position > 0.8:
        return "right", 10
    if position < 0.2:
        return "left", -10
    return "center", 0


def _unique(values: Sequence[str]) -> list[str]:
    """Values in first-seen order, without repeats.

    >>> _unique(["b", "a", "b"])
    ['b', 'a']
    """
    return list(dict.fromkeys(values))
