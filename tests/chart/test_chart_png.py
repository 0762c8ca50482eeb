"""PNG export through vl-convert: offline, real rendering."""

from __future__ import annotations

import struct

import pytest
from chart_fixtures import COUNTRIES, COUNTRY, COST, HOURS, MONTH, MONTHS, REGION, result

from lore.chart import ChartRequest, chart_png, choose_chart
from lore.chart.png import PNG_WIDTH, fixed_width
from lore.errors import OperatorError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG header (IHDR is the first chunk)."""
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_bar_chart_exports_png() -> None:
    chart = choose_chart(result((COUNTRY, COST), [(c, 10.0 * i) for i, c in enumerate(COUNTRIES)]), ChartRequest())
    assert chart.kind == "bar"
    data = chart_png(chart)
    assert data.startswith(PNG_SIGNATURE)
    width, height = png_size(data)
    assert width >= PNG_WIDTH * 2 * 0.9  # the container width became a fixed width, at scale 2
    assert height > 300


def test_line_chart_with_annotation_exports_png() -> None:
    rows = [(m, 100.0 * (2 if i == 5 else 1)) for i, m in enumerate(MONTHS)]
    chart = choose_chart(result((MONTH, HOURS), rows), ChartRequest(filters=("premium",)))
    assert chart.kind == "line" and "layer" in (chart.spec or {})
    assert chart_png(chart).startswith(PNG_SIGNATURE)


def test_kpi_exports_png() -> None:
    chart = choose_chart(result((HOURS,), [(1234.5,)]), ChartRequest())
    assert chart_png(chart, scale=1).startswith(PNG_SIGNATURE)


def test_a_table_has_no_png() -> None:
    chart = choose_chart(result((REGION, HOURS), []), ChartRequest())
    assert chart.kind == "table"
    with pytest.raises(OperatorError, match="no chart"):
        chart_png(chart)


def test_fixed_width_leaves_the_data_and_the_original_alone() -> None:
    spec = {"width": "container", "data": {"values": [{"width": "container"}]}, "mark": "bar"}
    fixed = fixed_width(spec, 500)
    assert fixed["width"] == 500
    assert fixed["data"]["values"][0]["width"] == "container"
    assert spec["width"] == "container"
