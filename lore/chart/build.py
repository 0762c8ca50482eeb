"""Vega-Lite specs from chart plans, built with Altair: declarative, data inline, never code.

:func:`choose_chart` is the stage's entry point: the rules in :mod:`lore.chart.rules`
decide, the builders here draw. Every spec carries its data as inline ``values`` with
helper-safe field names, every colour comes from :data:`PALETTE`, and text from the data
appears only as data values (titles and labels are cleaned). Altair checks each spec
against the Vega-Lite schema as it is built; :func:`validate_spec` checks any other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Final

import altair as alt
import jsonschema

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

Record = dict[str, Scalar]


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
    builders: dict[str, Callable[[ChartPlan, ResultSet], alt.TopLevelMixin]] = {
        "kpi": _kpi,
        "line": _line,
        "bar": _bar,
        "grouped_bar": _grouped_bar,
        "stacked_bar": _stacked_bar,
        "scatter": _scatter,
    }
    chart = builders[plan.kind](plan, result)
    chart = chart.properties(
        title=alt.TitleParams(
            text=plan.title,
            subtitle=plan.subtitle if plan.subtitle else alt.Undefined,
            anchor="start",
            color=INK,
            subtitleColor=MUTED,
        ),
        width="container",
        description=clean_text(plan.reason),
        autosize=alt.AutoSizeParams(type="fit", contains="padding"),
    )
    chart = chart.configure_range(category=list(PALETTE)).configure_view(stroke=None)
    spec = inline_datasets(chart.to_dict())  # to_dict() validates against the Vega-Lite schema
    return ChartSpec(kind=plan.kind, title=plan.title, subtitle=plan.subtitle, spec=spec, reason=plan.reason)


def _vega_lite_validator() -> jsonschema.protocols.Validator:
    """A validator for the Vega-Lite JSON schema that Altair ships (loading it takes milliseconds)."""
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
    if not isinstance(spec, dict):
        raise OperatorError(f"The chart spec is not valid Vega-Lite: expected an object, got {type(spec).__name__}.")
    error = jsonschema.exceptions.best_match(_vega_lite_validator().iter_errors(spec))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise OperatorError(
            f"The chart spec is not valid Vega-Lite at {where}: {error.message[:300]}",
            hint="This is a bug in the chart rules; report it with the question that produced it.",
        )


def inline_datasets(spec: dict[str, Any]) -> dict[str, Any]:
    """Put Altair's consolidated ``datasets`` back inline, as ``{"values": [...]}`` in each view.

    >>> inline_datasets({"data": {"name": "d1"}, "datasets": {"d1": [{"a": 1}]}, "mark": "bar"})
    {'data': {'values': [{'a': 1}]}, 'mark': 'bar'}
    """
    datasets = spec.get("datasets", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "datasets":
                continue
            if key == "data" and isinstance(value, dict) and set(value) == {"name"} and value["name"] in datasets:
                out[key] = {"values": datasets[value["name"]]}
            else:
                out[key] = walk(value)
        return out

    return walk(spec)


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


def tooltips(plan: ChartPlan, result: ResultSet) -> list[alt.Tooltip]:
    """A tooltip for every column of the result, labelled and formatted."""
    cols = result.columns
    fields = field_names(cols)
    tips: list[alt.Tooltip] = []
    for i, col in enumerate(cols):
        title = axis_title(col.label, col.unit)
        if is_time(col):
            tips.append(alt.Tooltip(fields[i], type="temporal", title=title, format=time_format(col.grain)))
        elif i not in (plan.x, plan.series) and _numeric_column(col, i, plan):
            fmt = number_format(col.format, col.unit, col.type)
            tips.append(alt.Tooltip(fields[i], type="quantitative", title=title, format=fmt))
        else:
            tips.append(alt.Tooltip(fields[i], type="nominal", title=title))
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


def _by_total(field: str, descending: bool = True) -> alt.EncodingSortField:
    """Sort a channel by the total of a field: the spec orders categories itself, so data
    values never appear outside the data."""
    return alt.EncodingSortField(field=field, op="sum", order="descending" if descending else "ascending")


def _series_color(plan: ChartPlan, result: ResultSet) -> alt.Color | None:
    """Colour by series: the largest series first, colours from :data:`PALETTE` in order."""
    n = len(plan.series_order)
    legend = alt.Legend(orient="bottom")
    scale = alt.Scale(range=list(PALETTE[:n]))
    if plan.fold:  # the series are metric labels, not data
        return alt.Color(
            SERIES_FIELD,
            type="nominal",
            title="Metric",
            sort=list(plan.series_order),
            scale=alt.Scale(domain=list(plan.series_order), range=list(PALETTE[:n])),
            legend=legend,
        )
    if plan.series is None:
        return None
    col = result.columns[plan.series]
    value_field = field_names(result.columns)[plan.measures[0]]
    return alt.Color(
        field_names(result.columns)[plan.series],
        type="nominal",
        title=clean_text(col.label),
        sort=_by_total(value_field),
        scale=scale,
        legend=legend,
    )


# --- builders ----------------------------------------------------------------------------------
def _kpi(plan: ChartPlan, result: ResultSet) -> alt.TopLevelMixin:
    cols = result.columns
    m = plan.measures[0]
    field = field_names(cols)[m]
    data = [{**record, LABEL_FIELD: axis_title(cols[m].label, cols[m].unit)} for record in records(plan, result)]
    number = alt.Chart().mark_text(fontSize=56, fontWeight="bold", color=PALETTE[0], baseline="middle").encode(
        text=alt.Text(field, type="quantitative", format=number_format(cols[m].format, cols[m].unit, cols[m].type))
    )
    label = alt.Chart().mark_text(fontSize=16, color=MUTED, baseline="top", dy=38).encode(
        text=alt.Text(LABEL_FIELD, type="nominal")
    )
    return (
        alt.layer(number, label, data=alt.Data(values=data))
        .encode(tooltip=tooltips(plan, result))
        .properties(height=KPI_HEIGHT)
    )


def _line(plan: ChartPlan, result: ResultSet) -> alt.TopLevelMixin:
    cols = result.columns
    fields = field_names(cols)
    assert plan.x is not None
    t = cols[plan.x]
    data = records(plan, result)
    if plan.fold:
        data = folded(plan, result, data)
    y_field, y_title, y_format = _measure_axis(plan, result)
    x = alt.X(
        fields[plan.x],
        type="temporal",
        title=clean_text(t.grain.capitalize() if t.grain else t.label),
        axis=alt.Axis(format=time_format(t.grain)),
    )
    y = alt.Y(y_field, type="quantitative", title=y_title, axis=alt.Axis(format=y_format))
    color = _series_color(plan, result)
    encoding: dict[str, Any] = {"x": x, "y": y, "tooltip": tooltips(plan, result)}
    if color is not None:
        encoding["color"] = color
    mark: dict[str, Any] = {"strokeWidth": 2, "point": len(data) <= 60}
    if color is None:
        mark["color"] = PALETTE[0]
        if mark["point"]:
            mark["point"] = alt.OverlayMarkDef(color=PALETTE[0], filled=True)
    line = alt.Chart().mark_line(**mark).encode(**encoding)
    if plan.shift is None:
        return line.properties(data=alt.Data(values=data), height=LINE_HEIGHT)
    row = plan.rows[plan.shift.row]
    value = _clean_number(row[plan.shift.measure])
    note = f"{format_change(plan.shift.change)} vs previous {t.grain or 'point'}"
    marker = alt.Chart(alt.Data(values=[{fields[plan.x]: iso_datetime(row[plan.x]), y_field: value, NOTE_FIELD: note}]))
    marker = marker.encode(x=x, y=y)
    ring = marker.mark_point(size=220, filled=False, strokeWidth=2, color=INK)
    align, dx = _note_alignment(plan, result)
    text = marker.mark_text(dy=-16, dx=dx, align=align, fontWeight="bold", color=INK).encode(
        text=alt.Text(NOTE_FIELD, type="nominal")
    )
    return alt.layer(line, ring, text, data=alt.Data(values=data)).properties(height=LINE_HEIGHT)


def _bar(plan: ChartPlan, result: ResultSet) -> alt.TopLevelMixin:
    cols = result.columns
    fields = field_names(cols)
    assert plan.x is not None
    x_field, x_title, x_format = _measure_axis(plan, result)
    dim = cols[plan.x]
    order = _unique([series_key(row[plan.x]) for row in plan.rows])
    bars = alt.Chart().mark_bar(color=PALETTE[0], cornerRadiusEnd=2)
    labels = alt.Chart().mark_text(align="left", baseline="middle", dx=3, color=MUTED).encode(
        text=alt.Text(x_field, type="quantitative", format=x_format)
    )
    return (
        alt.layer(bars, labels, data=alt.Data(values=records(plan, result)))
        .encode(
            y=alt.Y(fields[plan.x], type="nominal", title=clean_text(dim.label), sort="-x" if plan.descending else "x"),
            x=alt.X(x_field, type="quantitative", title=x_title, axis=alt.Axis(format=x_format)),
            tooltip=tooltips(plan, result),
        )
        .properties(height=max(120, BAR_STEP * len(order)))
    )


def _grouped_bar(plan: ChartPlan, result: ResultSet) -> alt.TopLevelMixin:
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
    return (
        alt.Chart(alt.Data(values=data))
        .mark_bar(cornerRadiusEnd=2)
        .encode(
            x=alt.X(
                fields[plan.x],
                type="nominal",
                title=clean_text(cols[plan.x].label),
                sort=_by_total(y_field, plan.descending),
                axis=alt.Axis(labelAngle=-40 if long_labels else 0, labelLimit=140),
            ),
            xOffset=alt.XOffset(
                offset_field, type="nominal", sort=list(plan.series_order) if plan.fold else _by_total(y_field)
            ),
            y=alt.Y(y_field, type="quantitative", title=y_title, axis=alt.Axis(format=y_format)),
            color=color,
            tooltip=tooltips(plan, result),
        )
        .properties(height=GROUPED_HEIGHT)
    )


def _stacked_bar(plan: ChartPlan, result: ResultSet) -> alt.TopLevelMixin:
    cols = result.columns
    fields = field_names(cols)
    assert plan.x is not None and plan.series is not None
    x_field, x_title, x_format = _measure_axis(plan, result)
    color = _series_color(plan, result)
    assert color is not None
    series_field = fields[plan.series]
    rank = {name: i for i, name in enumerate(plan.series_order)}
    data = [{**record, RANK_FIELD: rank.get(str(record[series_field]), len(rank))} for record in records(plan, result)]
    return (
        alt.Chart(alt.Data(values=data))
        .mark_bar()
        .encode(
            y=alt.Y(
                fields[plan.x],
                type="nominal",
                title=clean_text(cols[plan.x].label),
                sort=_by_total(x_field, plan.descending),
            ),
            x=alt.X(x_field, type="quantitative", title=x_title, axis=alt.Axis(format=x_format), stack="zero"),
            color=color,
            order=alt.Order(RANK_FIELD, type="quantitative", sort="ascending"),  # largest series first
            tooltip=tooltips(plan, result),
        )
        .properties(height=max(120, BAR_STEP * len(plan.x_order)))
    )


def _scatter(plan: ChartPlan, result: ResultSet) -> alt.TopLevelMixin:
    cols = result.columns
    fields = field_names(cols)
    a, b = plan.measures[0], plan.measures[1]

    def axis(i: int) -> dict[str, Any]:
        col = cols[i]
        fmt = number_format(col.format, col.unit, col.type)
        return {
            "field": fields[i],
            "type": "quantitative",
            "title": axis_title(col.label, col.unit),
            "axis": alt.Axis(format=fmt, labelOverlap=True),
        }

    return (
        alt.Chart(alt.Data(values=records(plan, result)))
        .mark_circle(size=70, opacity=0.8, color=PALETTE[0])
        .encode(x=alt.X(**axis(a)), y=alt.Y(**axis(b)), tooltip=tooltips(plan, result))
        .properties(height=SCATTER_HEIGHT)
    )


# --- small helpers --------------------------------------------------------------------------
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
