"""Time metrics a metric owner declares in the layer (offset, grain_to_date), end to end: a jaffle shop project
with two appended, asked in words, planned, compiled, run on DuckDB and checked against hand-written SQL; a time
metric's own time words name it, not a period."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TIME_METRICS = """
  - name: revenue_last_year
    label: revenue a year earlier
    description: Revenue in the same period one year before.
    synonyms: [revenue a year ago]
    expr: revenue
    offset: 1 year
  - name: revenue_mtd
    label: month-to-date revenue
    description: Revenue from the first of the month.
    synonyms: [MTD revenue]
    expr: revenue
    grain_to_date: month
"""


@pytest.fixture(scope="module")
def timed_lore(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from evals.jaffle.warehouse import build
    from lore import Lore

    folder: Path = tmp_path_factory.mktemp("timed") / "project"
    build(folder, years=2, seed=42)
    orders = folder / "semantic" / "orders.yaml"
    orders.write_text(orders.read_text(encoding="utf-8").rstrip("\n") + "\n" + TIME_METRICS, encoding="utf-8")
    with Lore.open(folder, feedback=False) as lore:
        yield lore


def _monthly(lore: Any, start: str, end: str) -> dict[str, float]:
    sql = (f"SELECT CAST(date_trunc('month', ordered_at) AS DATE), SUM(order_total) / 100.0 FROM orders "
           f"WHERE ordered_at >= DATE '{start}' AND ordered_at < DATE '{end}' GROUP BY 1")
    return {str(m): float(v) for m, v in lore.run_sql(sql).rows}


def test_an_offset_metric_beside_its_base_by_month(timed_lore: Any) -> None:
    answer = timed_lore.ask("revenue and revenue a year ago by month in 2020")
    assert answer.status == "answered", answer.message
    assert answer.plan is not None and answer.plan.metrics == ("revenue", "revenue_last_year")
    this_year, last_year = _monthly(timed_lore, "2020-01-01", "2021-01-01"), _monthly(timed_lore, "2019-01-01", "2020-01-01")
    for month, revenue, before in answer.rows:
        assert revenue == pytest.approx(this_year[str(month)])
        assert before == pytest.approx(last_year[str(month).replace("2020", "2019", 1)])


def test_a_to_date_metric_named_with_time_words_is_the_metric(timed_lore: Any) -> None:
    answer = timed_lore.ask("MTD revenue by day in July 2020")
    assert answer.status == "answered", answer.message
    assert answer.plan is not None and answer.plan.metrics == ("revenue_mtd",)
    assert answer.plan.time is not None and answer.plan.time.label == "July 2020"
    daily = timed_lore.run_sql("SELECT CAST(ordered_at AS DATE), SUM(order_total) / 100.0 FROM orders WHERE "
                               "ordered_at >= DATE '2020-07-01' AND ordered_at < DATE '2020-08-01' GROUP BY 1 ORDER BY 1")
    running = 0.0
    got = {str(r[0]): r[1] for r in answer.rows}
    for day, value in daily.rows:
        running += float(value)
        assert got[str(day)] == pytest.approx(running)
    assert answer.columns[-1].label == "Month-to-date revenue"


def test_a_to_date_metric_without_a_period_is_asked_back(timed_lore: Any) -> None:
    answer = timed_lore.ask("revenue month to date")
    assert answer.status == "clarify"
    assert "ask for a period" in answer.message


def test_a_date_range_written_as_text_reads_the_days_before_it(timed_lore: Any) -> None:
    """`lore sql --filter "metric_time between ..."` gives a time metric the same numbers as a structured range: the
    month-to-date sum on 3 July counts 1-3 July, and a year-earlier value reads last year's rows; a text filter that
    reads metric_time any other way is refused, never answered from too few days."""
    from lore.errors import CompileError
    from lore.types import Filter

    def run(filters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        compiled = timed_lore.semantic.compile(["revenue_mtd", "revenue_last_year"], ["metric_time:day"], filters)
        return list(timed_lore.run_compiled(compiled).rows)

    text = run(("metric_time between '2020-07-02' and '2020-07-03'",))
    structured = run((Filter(ref="metric_time", op="between", values=("2020-07-02", "2020-07-03")),))
    assert text == structured and len(text) == 2
    want = timed_lore.run_sql("SELECT SUM(order_total) / 100.0 FROM orders WHERE ordered_at >= DATE '2020-07-01' "
                              "AND ordered_at < DATE '2020-07-04'").rows[0][0]
    assert text[-1][1] == pytest.approx(float(want))
    with pytest.raises(CompileError, match="needs its dates as a range"):
        run(("metric_time in ('2020-07-02') or metric_time is null",))
