"""The built Vega-Lite specs: titles, units, formats, palette, inline data, safety and schema validity."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from chart_fixtures import (
    ACCOUNTS,
    COST,
    COUNTRIES,
    COUNTRY,
    HOURS,
    MONTH,
    MONTHS,
    PLAN,
    PLANS,
    REGION,
    REGIONS,
    UTIL,
    dim,
    met,
    result,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lore.chart import PALETTE, ChartRequest, choose_chart, validate_spec
from lore.chart.build import INK, MUTED
from lore.errors import OperatorError
from lore.types import ChartSpec, ColumnMeta, ResultSet

SCRIPT = "<script>alert(1)</script>"
#: a comparison's columns (two periods, the change, the change in percent) and a share column, as the compiler names them
PERIODS = (met("hours_2025", "Streaming hours, 2025", unit="h"), met("hours_2026", "Streaming hours, 2026", unit="h"),
           met("hours_change", "Change in streaming hours", unit="h"),
           met("hours_change_pct", "Change in streaming hours (%)", format="percent"))
PERIODS_PLOT = ("hours_2025", "hours_2026")
SHARE = met("total_streaming_hours_share", "Share of streaming hours", format="percent", type="DOUBLE")


# --- helpers ---------------------------------------------------------------------------------
def views(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec and its layers."""
    return [spec, *spec.get("layer", [])]


def channel(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """The first definition of an encoding channel in the spec or its layers."""
    for view in views(spec):
        if name in view.get("encoding", {}):
            return view["encoding"][name]
    raise KeyError(name)


def values(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec["data"]["values"]


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, leaf) of a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, str(i)))
    else:
        yield path, node


def line_rows() -> list[tuple[str, float]]:
    return [(m, 100.0 + i) for i, m in enumerate(MONTHS)]


def all_charts() -> dict[str, ChartSpec]:
    """One chart of every kind, from small hand-made results."""
    team = dim("team_name", "Team", type="VARCHAR")
    spend = met("ua_spend", "UA spend", unit="USD", format="currency")
    shifted = [(m, v * (1.8 if i == 10 else 1.0)) for i, (m, v) in enumerate(line_rows())]
    by_region = [(m, r, 1.0 + i + j) for i, m in enumerate(MONTHS) for j, r in enumerate(REGIONS)]
    by_plan = [(r, p, i * 3 + j) for i, r in enumerate(REGIONS) for j, p in enumerate(PLANS)]
    by_country_plan = [(c, p, i + j) for i, c in enumerate(COUNTRIES) for j, p in enumerate(PLANS)]
    shapes: dict[str, tuple[ResultSet, ChartRequest]] = {
        "kpi": (result((HOURS,), [(1234.5,)]), ChartRequest(filters=("premium",))),
        "line": (result((MONTH, HOURS), shifted), ChartRequest()),
        "line_series": (result((MONTH, REGION, HOURS), by_region), ChartRequest()),
        "line_fold": (result((MONTH, COST, spend), [(m, 1.0, 2.0) for m in MONTHS]), ChartRequest()),
        "bar": (result((COUNTRY, COST), [(c, 10.0 * i) for i, c in enumerate(COUNTRIES)]), ChartRequest()),
        "grouped_bar": (result((REGION, PLAN, ACCOUNTS), by_plan), ChartRequest()),
        "stacked_bar": (result((COUNTRY, PLAN, ACCOUNTS), by_country_plan), ChartRequest(additive=True)),
        "scatter": (result((team, COST, UTIL), [(f"t{i}", 10.0 * i, i / 20) for i in range(15)]), ChartRequest()),
        "two_periods": (result(PERIODS, [(100.0, 120.0, 20.0, 0.2)]), ChartRequest(plot=PERIODS_PLOT)),
        "share": (result((REGION, HOURS, SHARE), [(r, 10.0 * i, i / 10) for i, r in enumerate(REGIONS)]),
                  ChartRequest(plot=(SHARE.name,))),
    }
    return {name: choose_chart(res, request) for name, (res, request) in shapes.items()}


@pytest.fixture(scope="module")
def charts() -> dict[str, ChartSpec]:
    return all_charts()


# --- rules as seen in the specs ----------------------------------------------------------------
def test_two_periods_of_one_row_are_bars_in_time_order(charts: dict[str, ChartSpec]) -> None:
    chart = charts["two_periods"]
    assert chart.kind == "bar" and chart.spec is not None
    values = chart.spec["data"]["values"]
    assert [(v["_series"], v["_value"]) for v in values] == [("Streaming hours, 2025", 100.0),
                                                            ("Streaming hours, 2026", 120.0)]
    assert chart.spec["encoding"]["y"]["sort"] == ["Streaming hours, 2025", "Streaming hours, 2026"]


def test_a_share_is_plotted_on_a_percent_axis(charts: dict[str, ChartSpec]) -> None:
    chart = charts["share"]
    assert chart.kind == "bar" and chart.spec is not None
    assert chart.spec["encoding"]["x"]["field"] == SHARE.name
    assert "%" in chart.spec["encoding"]["x"]["axis"]["format"]


def test_every_kind_is_built(charts: dict[str, ChartSpec]) -> None:
    assert {c.kind for c in charts.values()} == {"kpi", "line", "bar", "grouped_bar", "stacked_bar", "scatter"}
    for chart in charts.values():
        assert chart.spec is not None
        assert chart.reason and chart.reason.endswith(".")


@pytest.mark.parametrize("name", list(all_charts()))
def test_every_spec_validates_against_the_vega_lite_schema(charts: dict[str, ChartSpec], name: str) -> None:
    spec = charts[name].spec
    assert spec is not None
    validate_spec(spec)
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6")


def test_validate_spec_rejects_invalid_specs() -> None:
    with pytest.raises(OperatorError, match="not valid Vega-Lite"):
        validate_spec({"mark": "exec", "data": {"values": []}})
    deep = {
        "data": {"values": [{"a": 1}]},
        "layer": [{"mark": "bar", "encoding": {"x": {"field": "a", "type": "money"}}}],
    }
    with pytest.raises(OperatorError, match="layer/0/encoding/x"):
        validate_spec(deep)
    with pytest.raises(OperatorError):
        validate_spec("{}")  # type: ignore[arg-type]


def test_kpi_is_a_text_mark_with_the_formatted_value_and_label(charts: dict[str, ChartSpec]) -> None:
    spec = charts["kpi"].spec
    assert spec is not None
    marks = [v["mark"]["type"] for v in spec["layer"]]
    assert marks == ["text", "text"]
    number = spec["layer"][0]["encoding"]["text"]
    assert number == {"field": "total_streaming_hours", "format": ",.2~f", "type": "quantitative"}
    assert values(spec) == [{"total_streaming_hours": 1234.5, "_label": "Streaming hours (h)"}]
    assert spec["title"]["text"] == "Streaming hours · premium"


def test_kpi_currency_format() -> None:
    chart = choose_chart(result((COST,), [(98765.4,)]), ChartRequest(filters=("2026",)))
    assert chart.spec is not None
    assert chart.spec["layer"][0]["encoding"]["text"]["format"] == "$,.0f"
    assert values(chart.spec)[0]["_label"] == "Cloud cost (USD)"


def test_line_chart_uses_temporal_iso_dates(charts: dict[str, ChartSpec]) -> None:
    spec = charts["line"].spec
    assert spec is not None
    x = channel(spec, "x")
    assert x["type"] == "temporal" and x["axis"]["format"] == "%b %Y" and x["title"] == "Month"
    assert values(spec)[0]["session_date__month"] == "2025-01-01T00:00:00"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00", r["session_date__month"]) for r in values(spec))
    assert channel(spec, "y")["title"] == "Streaming hours (h)"


def test_a_sharp_shift_gets_an_annotation_layer(charts: dict[str, ChartSpec]) -> None:
    spec = charts["line"].spec
    assert spec is not None
    assert [v["mark"]["type"] for v in spec["layer"]] == ["line", "point", "text"]
    note = spec["layer"][2]["data"]["values"]
    assert note == [
        {"session_date__month": "2025-11-01T00:00:00", "total_streaming_hours": 198.0, "_note": "+82% vs previous month"}
    ]
    assert charts["line"].subtitle == "Sharpest change marked: +82% in Nov 2025"


def test_a_gentle_line_has_no_annotation() -> None:
    chart = choose_chart(result((MONTH, HOURS), line_rows()), ChartRequest())
    assert chart.spec is not None
    assert "layer" not in chart.spec and chart.spec["mark"]["type"] == "line"


def test_line_per_series_is_coloured_by_the_series_in_palette_order(charts: dict[str, ChartSpec]) -> None:
    spec = charts["line_series"].spec
    assert spec is not None
    color = channel(spec, "color")
    assert color["field"] == "region"
    assert color["scale"]["range"] == list(PALETTE[:4])
    assert color["sort"] == {"field": "total_streaming_hours", "op": "sum", "order": "descending"}


def test_folded_metrics_share_one_axis_with_their_unit(charts: dict[str, ChartSpec]) -> None:
    spec = charts["line_fold"].spec
    assert spec is not None
    assert channel(spec, "y")["title"] == "Cloud cost / UA spend (USD)"
    assert channel(spec, "y")["axis"]["format"] == "$,.0f"
    assert channel(spec, "color")["scale"]["domain"] == ["Cloud cost", "UA spend"]
    assert len(values(spec)) == 2 * len(MONTHS)


def test_bar_is_horizontal_sorted_and_top_25(charts: dict[str, ChartSpec]) -> None:
    chart = charts["bar"]
    spec = chart.spec
    assert spec is not None
    y, x = channel(spec, "y"), channel(spec, "x")
    assert y["type"] == "nominal" and y["sort"] == "-x" and y["title"] == "Country"
    assert x["type"] == "quantitative" and x["title"] == "Cloud cost (USD)" and x["axis"]["format"] == "$,.0f"
    assert len(values(spec)) == 20  # fewer than 25: all kept
    assert chart.subtitle is None
    many = choose_chart(result((dim("t", "Title"), HOURS), [(f"t{i}", float(i)) for i in range(30)]), ChartRequest())
    assert many.spec is not None and len(values(many.spec)) == 25
    assert many.spec["title"]["subtitle"] == "Top 25 of 30 shown; 5 more not plotted"


def test_ascending_bars_sort_ascending() -> None:
    chart = choose_chart(result((REGION, HOURS), [("EMEA", 1.0), ("APAC", 2.0)]), ChartRequest(sort_desc=False))
    assert chart.spec is not None and channel(chart.spec, "y")["sort"] == "x"


def test_grouped_bars_use_x_offset(charts: dict[str, ChartSpec]) -> None:
    spec = charts["grouped_bar"].spec
    assert spec is not None
    assert channel(spec, "x")["field"] == "region"
    assert channel(spec, "xOffset")["field"] == "plan"
    assert channel(spec, "color")["field"] == "plan"
    assert channel(spec, "y")["axis"]["format"] == ",d"
    assert charts["grouped_bar"].title == "Active accounts by region and plan"


def test_stacked_bars_stack_largest_series_first(charts: dict[str, ChartSpec]) -> None:
    spec = charts["stacked_bar"].spec
    assert spec is not None
    assert channel(spec, "x")["stack"] == "zero"
    assert channel(spec, "order")["field"] == "_rank"
    ranks = {r["plan"]: r["_rank"] for r in values(spec)}
    assert ranks == {"premium": 0, "standard": 1, "basic_with_ads": 2}


def test_scatter_axes_carry_units_and_formats(charts: dict[str, ChartSpec]) -> None:
    spec = charts["scatter"].spec
    assert spec is not None
    assert spec["mark"]["type"] == "circle"
    assert channel(spec, "x")["title"] == "Cloud cost (USD)" and channel(spec, "x")["axis"]["format"] == "$,.0f"
    assert channel(spec, "y")["title"] == "CPU utilization" and channel(spec, "y")["axis"]["format"] == ".1%"


def test_tooltips_cover_every_column_formatted(charts: dict[str, ChartSpec]) -> None:
    spec = charts["scatter"].spec
    assert spec is not None
    tips = channel(spec, "tooltip")
    assert [t["field"] for t in tips] == ["team_name", "cloud_cost", "cpu_utilization"]
    assert [t.get("format") for t in tips] == [None, "$,.0f", ".1%"]
    assert [t["title"] for t in tips] == ["Team", "Cloud cost (USD)", "CPU utilization"]
    line = charts["line_series"].spec
    assert line is not None
    assert [t["type"] for t in channel(line, "tooltip")] == ["temporal", "nominal", "quantitative"]


def test_titles_name_the_metric_and_every_filter() -> None:
    chart = choose_chart(
        result((REGION, HOURS), [("EMEA", 1.0), ("APAC", 2.0)]),
        ChartRequest(filters=("premium", "2026")),
    )
    assert chart.title == "Streaming hours by region · premium · 2026"
    assert chart.spec is not None and chart.spec["title"]["text"] == chart.title
    ranged = choose_chart(
        result((MONTH, HOURS), line_rows()), ChartRequest(filters=("premium", "tv"), time_range="last 12 months")
    )
    assert ranged.title == "Streaming hours by month · premium · tv · last 12 months"
    table = choose_chart(result((REGION, HOURS), []), ChartRequest(filters=("premium",)))
    assert (table.kind, table.spec, table.title) == ("table", None, "Streaming hours by region · premium")


def test_width_is_responsive_and_height_is_set(charts: dict[str, ChartSpec]) -> None:
    for chart in charts.values():
        assert chart.spec is not None
        assert chart.spec["width"] == "container"
        assert isinstance(chart.spec["height"], int) and 100 <= chart.spec["height"] <= 700


def test_every_colour_comes_from_the_palette(charts: dict[str, ChartSpec]) -> None:
    allowed = {c.lower() for c in (*PALETTE, INK, MUTED)}
    for chart in charts.values():
        assert chart.spec is not None
        assert chart.spec["config"]["range"]["category"] == list(PALETTE)
        found = {str(v).lower() for _, v in walk(chart.spec) if isinstance(v, str) and v.startswith("#")}
        assert found and found <= allowed, (chart.kind, found - allowed)
    # single-series charts use the first colour
    bar = charts["bar"].spec
    assert bar is not None and bar["layer"][0]["mark"]["color"] == PALETTE[0]


def test_palette_is_small_distinct_and_immutable() -> None:
    assert isinstance(PALETTE, tuple) and 6 <= len(PALETTE) <= 10
    assert len({c.lower() for c in PALETTE}) == len(PALETTE)
    assert all(re.fullmatch(r"#[0-9A-Fa-f]{6}", c) for c in PALETTE)


def test_data_is_inline_and_spec_is_plain_json(charts: dict[str, ChartSpec]) -> None:
    for chart in charts.values():
        assert chart.spec is not None
        assert "datasets" not in chart.spec
        assert isinstance(values(chart.spec), list)
        text = json.dumps(chart.spec, allow_nan=False)  # no NaN, no objects: plain JSON
        assert '"url"' not in text


# --- safety -----------------------------------------------------------------------------------
def test_a_script_in_the_data_stays_a_plain_data_value() -> None:
    rows = [(SCRIPT, 3.0), ("EMEA", 2.0), ("javascript:alert(1)", 1.0)]
    for res in (
        result((REGION, HOURS), rows),
        result((MONTH, REGION, HOURS), [(m, r, v) for m in MONTHS[:3] for r, v in rows]),
        result((REGION, PLAN, HOURS), [(r, p, v) for p in PLANS for r, v in rows]),
    ):
        chart = choose_chart(res, ChartRequest())
        assert chart.spec is not None
        hits = [path for path, leaf in walk(chart.spec) if isinstance(leaf, str) and "<script>" in leaf]
        assert hits, chart.kind
        assert all(path[0] == "data" and path[1] == "values" for path in hits), hits
        assert SCRIPT in [r["region"] for r in values(chart.spec)]
        validate_spec(chart.spec)


def test_text_from_filters_and_labels_is_cleaned_in_titles() -> None:
    label = "Hours\u200b\n\x1b[31m"
    chart = choose_chart(
        result((REGION, met("h", label, unit="h")), [("EMEA", 1.0), ("APAC", 2.0)]),
        ChartRequest(filters=(SCRIPT + "\n2026",)),
    )
    assert chart.title == f"Hours [31m by region · {SCRIPT} 2026"
    assert chart.spec is not None
    assert all("\n" not in leaf and "\x1b" not in leaf for _, leaf in walk(chart.spec) if isinstance(leaf, str))


def test_odd_column_names_become_safe_fields() -> None:
    cols = (dim("countries.region", "Region"), met("sum(hours)['x']", "Hours"))
    chart = choose_chart(result(cols, [("EMEA", 1.0), ("APAC", 2.0)]), ChartRequest())
    assert chart.spec is not None
    assert values(chart.spec)[0] == {"col0": "APAC", "col1": 2.0}
    validate_spec(chart.spec)


def test_non_finite_numbers_become_nulls() -> None:
    rows = [("EMEA", float("nan")), ("APAC", float("inf")), ("UCAN", 1.0)]
    chart = choose_chart(result((REGION, HOURS), rows), ChartRequest())
    assert chart.spec is not None
    json.dumps(chart.spec, allow_nan=False)
    assert [r["total_streaming_hours"] for r in values(chart.spec)] == [1.0, None, None]


# --- robustness --------------------------------------------------------------------------------
_values = st.one_of(
    st.none(),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.integers(min_value=-1000, max_value=1000),
    st.sampled_from([float("nan"), float("inf"), 0.0]),
)
_labels = st.sampled_from(["EMEA", "APAC", SCRIPT, "a.b", "", "x" * 200])
_dates = st.sampled_from(list(MONTHS[:6]) + [None])


@st.composite
def results(draw: st.DrawFn) -> ResultSet:
    n_dims = draw(st.integers(0, 3))
    n_metrics = draw(st.integers(0, 3))
    with_time = n_dims > 0 and draw(st.booleans())
    cols: list[ColumnMeta] = []
    for i in range(n_dims):
        cols.append(MONTH if (i == 0 and with_time) else dim(f"d{i}", f"Dim {i}", type="VARCHAR"))
    fmts = [None, "currency", "percent", "integer"]
    for i in range(n_metrics):
        unit, fmt = draw(st.sampled_from([None, "h", "USD"])), draw(st.sampled_from(fmts))
        cols.append(met(f"m{i}", f"Metric {i}", unit=unit, format=fmt))
    n_rows = draw(st.integers(0, 30))
    rows = []
    for _ in range(n_rows):
        row = [draw(_dates) if c is MONTH else draw(_labels) if c.kind == "dimension" else draw(_values) for c in cols]
        rows.append(tuple(row))
    return ResultSet(columns=tuple(cols), rows=tuple(rows))


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(res=results(), desc=st.booleans(), additive=st.booleans())
def test_any_small_result_gets_a_valid_chart_or_a_table(res: ResultSet, desc: bool, additive: bool) -> None:
    chart = choose_chart(res, ChartRequest(filters=("premium",), sort_desc=desc, additive=additive))
    assert chart.title.endswith(" · premium")
    if chart.kind == "table":
        assert chart.spec is None
    else:
        assert chart.spec is not None
        validate_spec(chart.spec)
        json.dumps(chart.spec, allow_nan=False)
        assert len(values(chart.spec)) <= 5_000


def test_specs_hold_no_expressions_or_urls(charts: dict[str, ChartSpec]) -> None:
    """Nothing executable: no Vega expressions, signals, calculate/filter transforms, label
    expressions or external URLs, only marks, encodings and inline data."""
    forbidden = {"expr", "signal", "calculate", "filter", "labelExpr", "url", "href", "transform", "params"}
    for chart in charts.values():
        assert chart.spec is not None
        keys = {part for path, _ in walk(chart.spec) for part in path if not part.isdigit()}
        data_keys = {k for r in values(chart.spec) for k in r}
        assert not (keys - data_keys) & forbidden, (chart.kind, (keys - data_keys) & forbidden)
