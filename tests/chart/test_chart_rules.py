"""The chart rules: which kind each result shape gets, and why (pure, no spec building)."""

from __future__ import annotations

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

from lore.chart.rules import (
    FEW,
    MAX_POINTS,
    TOP_BARS,
    ChartRequest,
    decide,
    field_names,
    split_roles,
)
from lore.types import ColumnMeta

REQ = ChartRequest()


def test_one_row_one_metric_is_a_kpi() -> None:
    plan = decide(result((HOURS,), [(1234.5,)]), ChartRequest(filters=("premium", "2026")))
    assert plan.kind == "kpi"
    assert plan.title == "Streaming hours · premium · 2026"
    assert plan.measures == (0,)


def test_kpi_with_a_filtered_dimension_names_its_value_in_the_subtitle() -> None:
    plan = decide(result((REGION, HOURS), [("EMEA", 10.0)]), REQ)
    assert plan.kind == "kpi"
    assert plan.subtitle == "Region: EMEA"


def test_one_row_with_a_null_metric_is_a_table() -> None:
    assert decide(result((HOURS,), [(None,)]), REQ).kind == "table"


@pytest.mark.parametrize(
    ("columns", "rows", "why"),
    [
        ((REGION, HOURS), [], "empty"),
        ((REGION, dim("name", "Name", type="VARCHAR")), [("EMEA", "x"), ("APAC", "y")], "no numeric metric"),
        ((HOURS, COST), [(1.0, 2.0)], "single row with several metrics"),
        (
            (REGION, PLAN, COUNTRY, HOURS),
            [("EMEA", "premium", "FR", 1.0), ("APAC", "basic", "JP", 2.0)],
            "3 dimensions",
        ),
        (
            tuple(met(f"m{i}", f"Metric {i}") for i in range(9)),
            [tuple(float(i) for i in range(9)), tuple(float(i + 1) for i in range(9))],
            "9 columns",
        ),
    ],
)
def test_a_table_only_when_a_chart_would_not_help(columns: tuple[ColumnMeta, ...], rows: list, why: str) -> None:
    plan = decide(result(columns, rows), REQ)
    assert plan.kind == "table"
    assert why in plan.reason
    assert plan.reason.endswith(".") and plan.reason.count(".") == 1  # one sentence


def test_a_time_dimension_with_a_grain_is_a_line() -> None:
    rows = [(m, 100.0 + i) for i, m in enumerate(MONTHS)]
    plan = decide(result((MONTH, HOURS), rows[::-1]), ChartRequest(time_range="2025-2026"))
    assert plan.kind == "line"
    assert plan.title == "Streaming hours by month · 2025-2026"
    assert [r[0] for r in plan.rows] == list(MONTHS)  # in time order
    assert plan.series is None and plan.shift is None


@pytest.mark.parametrize("type_", ["DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"])
def test_a_date_typed_column_without_grain_is_a_line(type_: str) -> None:
    day = dim("session_date", "Session date", type=type_)
    plan = decide(result((day, HOURS), [("2026-01-01", 1.0), ("2026-01-02", 2.0)]), REQ)
    assert plan.kind == "line"
    assert plan.title == "Streaming hours by session date"


def test_a_line_per_series_when_the_second_dimension_has_few_values() -> None:
    rows = [(m, r, float((j + 1) * 100 + i)) for i, m in enumerate(MONTHS) for j, r in enumerate(REGIONS)]
    plan = decide(result((MONTH, REGION, HOURS), rows), REQ)
    assert plan.kind == "line"
    assert plan.series == 1
    assert plan.series_order == ("APAC", "LATAM", "EMEA", "UCAN")  # largest total first
    assert plan.title == "Streaming hours by month and region"


def test_many_series_keep_the_top_ones_and_say_so() -> None:
    rows = [(m, c, float(k + 1)) for m in MONTHS[:3] for k, c in enumerate(COUNTRIES)]
    plan = decide(result((MONTH, COUNTRY, HOURS), rows), REQ)
    assert plan.kind == "line"
    assert len(plan.series_order) == FEW
    assert plan.series_order[0] == "ID"  # the largest
    assert {r[1] for r in plan.rows} == set(plan.series_order)
    assert plan.subtitle is not None and f"Top {FEW} of {len(COUNTRIES)}" in plan.subtitle


def test_metrics_of_one_unit_over_time_are_folded_into_series() -> None:
    spend = met("ua_spend", "UA spend", unit="USD", format="currency")
    plan = decide(result((MONTH, COST, spend), [(m, 10.0, 20.0) for m in MONTHS[:4]]), REQ)
    assert plan.kind == "line" and plan.fold
    assert plan.series_order == ("Cloud cost", "UA spend")


def test_metrics_of_different_units_over_time_plot_the_first_and_name_the_rest() -> None:
    plan = decide(result((MONTH, COST, UTIL), [(m, 10.0, 0.5) for m in MONTHS[:4]]), REQ)
    assert plan.kind == "line" and not plan.fold
    assert plan.measures == (1,)
    assert plan.subtitle == "CPU utilization in the tooltip"


def test_a_sharp_shift_is_found_and_noted() -> None:
    values = [100.0, 102.0, 104.0, 170.0, 171.0]
    plan = decide(result((MONTH, HOURS), list(zip(MONTHS, values))), REQ)
    assert plan.shift is not None
    assert plan.shift.row == 3 and plan.shift.measure == 1
    assert plan.shift.change == pytest.approx(66 / 104)
    assert plan.subtitle == "Sharpest change marked: +63% in Apr 2025"


def test_a_gentle_line_has_no_shift() -> None:
    values = [100.0, 120.0, 150.0, 180.0]  # +20%, +25%, +20%
    assert decide(result((MONTH, HOURS), list(zip(MONTHS, values))), REQ).shift is None


def test_a_long_line_is_capped_and_the_cap_is_noted() -> None:
    day = dim("d", "Date", type="TIMESTAMP")
    rows = [(f"2026-01-01 00:{i // 60 % 60:02d}:{i % 60:02d}", float(i)) for i in range(3600)]
    rows += [(f"2026-01-02 00:{i // 60 % 60:02d}:{i % 60:02d}", float(i)) for i in range(3600)]
    plan = decide(result((day, HOURS), rows), REQ)
    assert len(plan.rows) == MAX_POINTS
    assert plan.rows[-1][0] == "2026-01-02 00:59:59"  # the latest points are kept
    assert plan.subtitle is not None and "5,000 of 7,200" in plan.subtitle


def test_rows_without_a_date_are_dropped_from_a_line_and_counted() -> None:
    plan = decide(result((MONTH, HOURS), [("2026-01-01", 1.0), (None, 5.0), ("2026-02-01", 1.1)]), REQ)
    assert len(plan.rows) == 2
    assert plan.subtitle is not None and "1 rows without a valid date" in plan.subtitle


def test_one_categorical_dimension_is_a_bar_sorted_by_value() -> None:
    rows = [("UCAN", 5.0), ("EMEA", 9.0), ("LATAM", None), ("APAC", 7.0)]
    plan = decide(result((REGION, HOURS), rows), ChartRequest(filters=("premium", "2026")))
    assert plan.kind == "bar"
    assert plan.title == "Streaming hours by region · premium · 2026"
    assert [r[0] for r in plan.rows] == ["EMEA", "APAC", "UCAN", "LATAM"]  # nulls last
    assert plan.subtitle is None


def test_bars_keep_the_top_25_and_note_the_rest() -> None:
    rows = [(f"title {i:02d}", float(i)) for i in range(40)]
    plan = decide(result((dim("title_name", "Title", type="VARCHAR"), HOURS), rows), REQ)
    assert len(plan.rows) == TOP_BARS
    assert plan.rows[0] == ("title 39", 39.0)
    assert plan.subtitle == "Top 25 of 40 shown; 15 more not plotted"


def test_ascending_bars_keep_the_bottom_ones() -> None:
    rows = [(f"title {i:02d}", float(i)) for i in range(40)]
    plan = decide(result((dim("title_name", "Title", type="VARCHAR"), HOURS), rows), ChartRequest(sort_desc=False))
    assert plan.rows[0] == ("title 00", 0.0)
    assert plan.subtitle is not None and plan.subtitle.startswith("Bottom 25 of 40")


def test_two_dimensions_with_a_small_one_are_grouped_bars() -> None:
    rows = [(p, r, float((i + 1) * (j + 1))) for i, r in enumerate(REGIONS) for j, p in enumerate(PLANS)]
    plan = decide(result((PLAN, REGION, ACCOUNTS), rows), REQ)
    assert plan.kind == "grouped_bar"
    # the dimension with fewer values (plan: 3) becomes the colour, the other the axis
    assert (plan.x, plan.series) == (1, 0)
    assert plan.title == "Active accounts by region and plan"
    assert plan.x_order == ("APAC", "LATAM", "EMEA", "UCAN")


def test_an_additive_metric_over_many_groups_stacks() -> None:
    rows = [(c, p, float(i + j)) for i, c in enumerate(COUNTRIES) for j, p in enumerate(PLANS)]
    res = result((COUNTRY, PLAN, ACCOUNTS), rows)
    assert decide(res, ChartRequest(additive=True)).kind == "stacked_bar"
    assert decide(res, ChartRequest(additive=False)).kind == "grouped_bar"  # a ratio must not stack


def test_two_dimensions_that_both_have_many_values_are_a_table() -> None:
    rows = [(c, f"title {k}", 1.0) for c in COUNTRIES for k in range(FEW + 1)]
    plan = decide(result((COUNTRY, dim("title_name", "Title", type="VARCHAR"), HOURS), rows), REQ)
    assert plan.kind == "table"


def test_two_metrics_over_many_rows_are_a_scatter() -> None:
    team = dim("team_name", "Team", type="VARCHAR")
    rows = [(f"team {i}", 100.0 * i, i / 20) for i in range(12)]
    plan = decide(result((team, COST, UTIL), rows), REQ)
    assert plan.kind == "scatter"
    assert plan.measures == (1, 2)
    assert plan.title == "Cloud cost and CPU utilization by team"


def test_two_metrics_over_few_rows_are_grouped_bars_when_they_share_a_unit() -> None:
    spend = met("ua_spend", "UA spend", unit="USD", format="currency")
    plan = decide(result((REGION, COST, spend), [(r, 1.0, 2.0) for r in REGIONS]), REQ)
    assert plan.kind == "grouped_bar" and plan.fold
    assert decide(result((REGION, COST, UTIL), [(r, 1.0, 0.2) for r in REGIONS]), REQ).kind == "table"


def test_a_truncated_result_says_so() -> None:
    plan = decide(result((REGION, HOURS), [("EMEA", 1.0), ("APAC", 2.0)], truncated=True), REQ)
    assert plan.subtitle == "Only the first 2 rows came back (row limit)"


def test_plain_sql_results_get_roles_from_their_types() -> None:
    cols = (
        ColumnMeta(name="day", label="day", type="DATE"),
        ColumnMeta(name="device_type", label="device_type", type="VARCHAR"),
        ColumnMeta(name="hours", label="hours", type="DOUBLE"),
    )
    res = result(cols, [("2026-01-01", "tv", 1.0), ("2026-01-02", "tv", 2.0)])
    assert split_roles(res) == ((2,), (0, 1))
    assert decide(res, REQ).kind == "line"


def test_metric_labels_from_the_request_name_the_title() -> None:
    plan = decide(result((REGION, HOURS), [("EMEA", 1.0), ("APAC", 2.0)]), ChartRequest(metric_labels=("Total hours",)))
    assert plan.title == "Total hours by region"


def test_field_names_never_carry_paths_or_collide() -> None:
    cols = [ColumnMeta(name=n, label=n) for n in ("a.b", "x['y']", "ok", "OK", "ok", "_series", "1st")]
    names = field_names(cols)
    assert len(set(names)) == len(names)
    assert all(n.replace("_", "").isalnum() and not n.startswith("_") for n in names)


# --- analysis operations: the request names the columns to plot -----------------------------------------------
CHANGE = met("hours_change", "Change in streaming hours", unit="h", type="DOUBLE")
PCT = met("hours_change_pct", "Change in streaming hours (%)", format="percent", type="DOUBLE")
A = met("hours_2025", "Streaming hours, 2025", unit="h", type="DOUBLE")
B = met("hours_2026", "Streaming hours, 2026", unit="h", type="DOUBLE")


def test_two_periods_by_a_dimension_are_grouped_bars_of_the_periods_only() -> None:
    rows = [(r, 10.0 + i, 12.0 + i, 2.0, 0.1) for i, r in enumerate(REGIONS)]
    plan = decide(result((REGION, A, B, CHANGE, PCT), rows), ChartRequest(plot=(A.name, B.name)))
    assert plan.kind == "grouped_bar" and plan.measures == (1, 2) and plan.fold
    assert plan.series_order == ("Streaming hours, 2025", "Streaming hours, 2026")


def test_a_comparison_ranked_by_its_change_is_bars_of_the_change_sorted() -> None:
    rows = [(r, 10.0, 10.0 + d, d, d / 10) for r, d in zip(REGIONS, (5.0, -3.0, 8.0, 1.0))]
    plan = decide(result((REGION, A, B, CHANGE, PCT), rows), ChartRequest(plot=(CHANGE.name,)))
    assert plan.kind == "bar" and plan.measures == (3,)
    assert [r[0] for r in plan.rows] == ["LATAM", "UCAN", "APAC", "EMEA"]


def test_without_a_plot_request_a_comparison_of_mixed_units_is_a_table() -> None:
    rows = [(r, 10.0, 12.0, 2.0, 0.2) for r in REGIONS]
    assert decide(result((REGION, A, B, CHANGE, PCT), rows), REQ).kind == "table"


def test_two_periods_of_one_row_are_side_by_side_bars() -> None:
    plan = decide(result((A, B, CHANGE, PCT), [(10.0, 12.0, 2.0, 0.2)]), ChartRequest(plot=(A.name, B.name)))
    assert plan.kind == "bar" and plan.x is None and plan.fold and plan.measures == (0, 1)


def test_a_running_total_is_the_line_drawn() -> None:
    run = met("hours_running_total", "Running total of streaming hours", unit="h", type="DOUBLE")
    rows = [(m, 1.0, float(i + 1)) for i, m in enumerate(MONTHS)]
    plan = decide(result((MONTH, HOURS, run), rows), ChartRequest(plot=(run.name,)))
    assert plan.kind == "line" and plan.measures == (2,) and not plan.fold
