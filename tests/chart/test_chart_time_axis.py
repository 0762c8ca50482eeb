"""Time axes: whole-grain ticks (a month label never repeats), checked in the rendered SVG; the spec builder
follows the schema Altair ships."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from chart_fixtures import HOURS, MONTH, MONTHS, REGION, REGIONS, dim, result

from lore.chart import ChartRequest, choose_chart, validate_spec
from lore.chart.build import SCHEMA_URL
from lore.chart.png import fixed_width
from lore.types import ChartSpec

_TEXT = re.compile(r"<text[^>]*>([^<]*)</text>")
_MONTH_LABEL = re.compile(r"^[A-Z][a-z]{2} \d{4}$")


def svg_texts(chart: ChartSpec, width: int = 720) -> list[str]:
    """Every text the rendered chart shows (axis labels, titles), in drawing order."""
    import vl_convert

    assert chart.spec is not None
    return _TEXT.findall(vl_convert.vegalite_to_svg(fixed_width(chart.spec, width), allowed_base_urls=[]))


def monthly(n: int, *, series: bool = False) -> ChartSpec:
    if series:
        rows = [(m, r, 100.0 + i + j) for i, m in enumerate(MONTHS[:n]) for j, r in enumerate(REGIONS)]
        return choose_chart(result((MONTH, REGION, HOURS), rows), ChartRequest())
    return choose_chart(result((MONTH, HOURS), [(m, 100.0 + (i % 3) * 5) for i, m in enumerate(MONTHS[:n])]),
                        ChartRequest())


@pytest.mark.parametrize(("months", "width"), [(2, 720), (3, 720), (5, 720), (7, 360), (13, 720), (22, 360)])
def test_monthly_tick_labels_never_repeat(months: int, width: int) -> None:
    chart = monthly(months)
    assert chart.kind == "line"
    labels = [t for t in svg_texts(chart, width) if _MONTH_LABEL.match(t)]
    assert labels, "the x axis shows month labels"
    assert len(labels) == len(set(labels)), labels
    assert len(labels) <= 12


def test_a_short_monthly_range_labels_every_month() -> None:
    labels = [t for t in svg_texts(monthly(4)) if _MONTH_LABEL.match(t)]
    assert labels == ["Jan 2025", "Feb 2025", "Mar 2025", "Apr 2025"]


def test_monthly_series_and_quarters_use_whole_grain_ticks() -> None:
    spec = monthly(5, series=True).spec
    assert spec is not None
    assert spec["encoding"]["x"]["axis"]["tickCount"] == {"interval": "month", "step": 1}
    quarter = dim("d__quarter", "Date", type="DATE", grain="quarter")
    rows = [(f"{y}-{m:02d}-01", 100.0 + m) for y in (2024, 2025) for m in (1, 4, 7, 10)]
    chart = choose_chart(result((quarter, HOURS), rows), ChartRequest())
    assert chart.spec is not None
    assert chart.spec["encoding"]["x"]["axis"]["tickCount"] == {"interval": "month", "step": 3}
    labels = [t for t in svg_texts(chart) if re.match(r"^Q\d \d{4}$", t)]
    assert labels and len(labels) == len(set(labels))
    validate_spec(chart.spec)


def test_a_daily_line_has_no_ticks_inside_a_day() -> None:
    day = dim("d__day", "Date", type="DATE", grain="day")
    rows = [((date(2026, 3, 1) + timedelta(days=i)).isoformat(), 5.0 + i) for i in range(3)]
    chart = choose_chart(result((day, HOURS), rows), ChartRequest())
    assert chart.spec is not None
    validate_spec(chart.spec)
    labels = [t for t in svg_texts(chart) if re.match(r"^\d\d [A-Z][a-z]{2} \d{4}$", t)]
    assert labels and len(labels) == len(set(labels)), labels


def test_the_schema_url_is_the_one_altair_ships() -> None:
    import altair as alt

    assert SCHEMA_URL == alt.SCHEMA_URL
    spec = monthly(3).spec
    assert spec is not None and spec["$schema"] == SCHEMA_URL
