"""The analysis operations filled by a model: each reply (scripted at the seam) is checked, becomes the plan's typed
operation, compiles through the semantic layer and runs on DuckDB, and its rows equal hand-written SQL; what is
wrong goes back to the model with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from llm_helpers import flt, reply

from lore.types import OrderBy, QueryPlan

SS_REGION = """streaming_sessions s JOIN accounts a ON a.account_id = s.account_id
               JOIN countries c ON c.country_iso_code = a.country_iso_code"""
Q3_2026 = {"start_date": "2026-07-01", "end_date": "2026-09-30"}
Q3_2025 = {"start_date": "2025-07-01", "end_date": "2025-09-30"}


def run(lore: Any, plan: QueryPlan) -> list[tuple]:
    compiled = lore.compiler.compile(plan.semantic_query(), dialect="duckdb")
    return [tuple(r) for r in lore.run_compiled(compiled).rows]


def hand(raw_db: Any, sql: str) -> list[tuple]:
    return [tuple(r) for r in raw_db.execute(sql).fetchall()]


def test_two_periods_side_by_side(make_planner, demo_lore, raw_db) -> None:
    planner, _ = make_planner([reply(metrics=["total_streaming_hours"], dimensions=["countries.region"], **Q3_2026,
                                     compare_with=Q3_2025)])
    out = planner.plan("streaming hours by region, Q3 2026 vs Q3 2025")
    assert out.status == "plan", out.message
    plan = out.plan
    assert plan.compare is not None and [p.label for p in plan.compare.ordered()] == ["Q3 2025", "Q3 2026"]
    got = {r[0]: r[1:] for r in run(demo_lore, plan)}
    expected = hand(raw_db, f"""SELECT c.region,
        SUM(CASE WHEN s.session_date BETWEEN DATE '2025-07-01' AND DATE '2025-09-30' THEN s.streaming_hours ELSE 0 END),
        SUM(CASE WHEN s.session_date BETWEEN DATE '2026-07-01' AND DATE '2026-09-30' THEN s.streaming_hours ELSE 0 END)
        FROM {SS_REGION} GROUP BY 1""")
    assert set(got) == {r[0] for r in expected}
    for region, before, after in expected:
        assert got[region][:3] == pytest.approx((before, after, after - before))
        assert got[region][3] == pytest.approx((after - before) / before)


def test_which_segment_grew_most_is_ordered_by_the_change(make_planner, demo_lore, raw_db) -> None:
    planner, _ = make_planner([reply(metrics=["total_streaming_hours"], dimensions=["countries.region"], **Q3_2026,
                                     compare_with=Q3_2025, order_by="total_streaming_hours_change", limit=1)])
    out = planner.plan("which region grew the most in streaming hours, Q3 2026 vs Q3 2025")
    assert out.status == "plan", out.message
    assert out.plan.order_by == (OrderBy(ref="total_streaming_hours_change", descending=True),)
    change = dict(hand(raw_db, f"""SELECT c.region,
        SUM(CASE WHEN s.session_date BETWEEN DATE '2026-07-01' AND DATE '2026-09-30' THEN s.streaming_hours ELSE 0 END)
      - SUM(CASE WHEN s.session_date BETWEEN DATE '2025-07-01' AND DATE '2025-09-30' THEN s.streaming_hours ELSE 0 END)
        FROM {SS_REGION} GROUP BY 1"""))
    assert [r[0] for r in run(demo_lore, out.plan)] == [max(change, key=change.__getitem__)]


def test_a_segments_share_of_the_whole(make_planner, demo_lore, raw_db) -> None:
    planner, _ = make_planner([reply(metrics=["total_streaming_hours"], dimensions=["streaming_sessions.device_type"],
                                     start_date="2026-01-01", end_date="2026-12-31",
                                     share={"within": [], "whole_metric": None,
                                            "show_only": [flt("streaming_sessions.device_type", "mobile")]})])
    out = planner.plan("what % of streaming hours came from mobile in 2026")
    assert out.status == "plan", out.message
    rows = run(demo_lore, out.plan)
    [(share,)] = hand(raw_db, """SELECT SUM(streaming_hours) FILTER (WHERE device_type = 'mobile') / SUM(streaming_hours)
                                 FROM streaming_sessions WHERE session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31'""")
    assert [r[0] for r in rows] == ["mobile"] and rows[0][-1] == pytest.approx(share)


def test_top_n_within_each_group(make_planner, demo_lore, raw_db) -> None:
    planner, _ = make_planner([reply(metrics=["total_streaming_hours"], dimensions=["titles.genre", "countries.region"],
                                     order_by="total_streaming_hours", limit=2, top_n_within=["countries.region"])])
    out = planner.plan("top 2 genres by streaming hours in each region")
    assert out.status == "plan", out.message
    assert out.plan.rank_within == ("countries.region",)
    got = {(r[1], r[0]) for r in run(demo_lore, out.plan)}
    expected = hand(raw_db, f"""SELECT region, genre FROM (
        SELECT c.region, t.genre, RANK() OVER (PARTITION BY c.region ORDER BY SUM(s.streaming_hours) DESC) AS r
        FROM {SS_REGION} JOIN titles t ON t.title_id = s.title_id GROUP BY 1, 2) WHERE r <= 2""")
    assert got == set(expected)


def test_a_rate_per_entity(make_planner, demo_lore, raw_db) -> None:
    planner, _ = make_planner([reply(metrics=["total_streaming_hours"], start_date="2026-01-01", end_date="2026-12-31",
                                     per_entity={"entity": "accounts.account_id", "grain": None})])
    out = planner.plan("streaming hours per account in 2026")
    assert out.status == "plan", out.message
    [(value,)] = run(demo_lore, out.plan)
    [(expected,)] = hand(raw_db, """SELECT AVG(h) FROM (SELECT account_id, SUM(streaming_hours) AS h FROM streaming_sessions
        WHERE session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31' GROUP BY 1)""")
    assert value == pytest.approx(expected)


def test_the_highest_single_entity(make_planner, demo_lore, raw_db) -> None:
    planner, _ = make_planner([reply(metrics=["total_streaming_hours"], start_date="2026-01-01", end_date="2026-12-31",
                                     per_entity={"entity": "accounts.account_id", "grain": None, "stat": "max"})])
    out = planner.plan("the most hours any single account streamed in 2026")
    assert out.status == "plan", out.message
    assert out.plan.per is not None and out.plan.per.stat == "max"
    [(value,)] = run(demo_lore, out.plan)
    [(expected,)] = hand(raw_db, """SELECT MAX(h) FROM (SELECT account_id, SUM(streaming_hours) AS h FROM streaming_sessions
        WHERE session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31' GROUP BY 1)""")
    assert value == pytest.approx(expected)


def test_a_running_total(make_planner, demo_lore, raw_db) -> None:
    planner, _ = make_planner([reply(metrics=["total_streaming_hours"], dimensions=["metric_time:month"],
                                     start_date="2026-01-01", end_date="2026-12-31", running_total=True)])
    out = planner.plan("cumulative streaming hours by month in 2026")
    assert out.status == "plan", out.message
    rows = sorted(run(demo_lore, out.plan), key=lambda r: str(r[0]))
    monthly = hand(raw_db, """SELECT date_trunc('month', session_date) AS m, SUM(streaming_hours) FROM streaming_sessions
        WHERE session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31' GROUP BY 1 ORDER BY 1""")
    running = 0.0
    for row, (_, hours) in zip(rows, monthly, strict=True):
        running += hours
        assert row[-1] == pytest.approx(running)


def test_a_threshold_count(make_planner, demo_lore, raw_db) -> None:
    planner, _ = make_planner([reply(metrics=["total_streaming_hours"], start_date="2026-10-01", end_date="2026-10-31",
                                     threshold={"entity": "accounts.account_id", "metric": "total_streaming_hours",
                                                "operator": ">", "value": 10})])
    out = planner.plan("how many accounts streamed more than 10 hours in October 2026")
    assert out.status == "plan", out.message
    [(count,)] = run(demo_lore, out.plan)
    [(expected,)] = hand(raw_db, """SELECT COUNT(*) FROM (SELECT account_id FROM streaming_sessions
        WHERE session_date BETWEEN DATE '2026-10-01' AND DATE '2026-10-31' GROUP BY 1 HAVING SUM(streaming_hours) > 10)""")
    assert count == expected


@pytest.mark.parametrize("question, wrong, reason", [
    ("streaming hours by region in 2026", {"dimensions": ["countries.region"], "start_date": "2026-01-01",
                                           "end_date": "2026-12-31", "compare_with": Q3_2025},
     "does not compare two periods"),
    ("cumulative streaming hours in 2026", {"start_date": "2026-01-01", "end_date": "2026-12-31", "running_total": True},
     "running_total needs exactly one metric_time dimension"),
    ("streaming hours by genre and region", {"dimensions": ["titles.genre", "countries.region"],
                                             "top_n_within": ["countries.region"]}, "top_n_within needs a limit"),
    ("streaming hours per account", {"per_entity": {"entity": "games.game_id", "grain": None}},
     "is not an entity of these metrics"),
    ("which region streamed the most hours", {"dimensions": ["countries.region"], "limit": 1,
                                              "order_by": "total_streaming_hours_change"}, "needs compare_with"),
])
def test_a_wrong_operation_goes_back_with_the_reason(make_planner, question: str, wrong: dict, reason: str) -> None:
    planner, model = make_planner([reply(metrics=["total_streaming_hours"], **wrong),
                                   reply(metrics=["total_streaming_hours"])])
    out = planner.plan(question)
    assert out.status == "plan" and len(model.calls) == 2
    sent_back = model.calls[1].prompt
    assert reason in sent_back, sent_back


def test_the_schema_offers_a_comparison_only_when_two_periods_are_named(make_planner) -> None:
    from lore.plan.llm import plan_schema

    planner, _ = make_planner([])
    one = plan_schema(planner.choices("streaming hours by region last month"))
    two = plan_schema(planner.choices("streaming hours by region, Q3 2026 vs the same quarter last year"))
    assert one["properties"]["compare_with"] == {"type": "null"}
    assert "total_streaming_hours_change" not in one["properties"]["order_by"]["anyOf"][0]["enum"]
    assert two["properties"]["compare_with"]["anyOf"][0]["type"] == "object"
    assert "total_streaming_hours_change" in two["properties"]["order_by"]["anyOf"][0]["enum"]
    assert "accounts.account_id" in two["properties"]["threshold"]["anyOf"][0]["properties"]["entity"]["enum"]
    tight = plan_schema(planner.choices("streaming hours, Q3 2026 vs the same quarter last year"), tight=True)
    assert tight["properties"]["compare_with"]["anyOf"][0]["properties"]["start_date"]["enum"] == ["2025-07-01",
                                                                                                   "2026-07-01"]
