"""Analysis operations end to end (shares of a total, top N within groups): the question, the plan, the SQL on
DuckDB and the answer's words, checked against hand-written SQL on the demo warehouse."""

from __future__ import annotations

from typing import Any

import pytest

HOURS_BY_DEVICE = ("SELECT s.device_type, SUM(s.streaming_hours) FROM streaming_sessions s "
                   "WHERE s.session_date >= DATE '2025-01-01' AND s.session_date < DATE '2026-01-01' GROUP BY 1")


def _hand_shares(lore: Any) -> dict[str, float]:
    rows = lore.run_sql(HOURS_BY_DEVICE).rows
    whole = sum(float(r[1]) for r in rows)
    return {str(r[0]): float(r[1]) / whole for r in rows}


def test_a_segments_share_is_its_part_of_every_segment(demo_lore: Any) -> None:
    answer = demo_lore.ask("what share of streaming hours came from mobile in 2025")
    assert answer.status == "answered", answer.message
    names = [c.name for c in answer.columns]
    assert names[-1] == "total_streaming_hours_share" and answer.columns[-1].format == "percent"
    assert [r[0] for r in answer.rows] == ["mobile"]
    expected = _hand_shares(demo_lore)["mobile"]
    assert answer.rows[0][-1] == pytest.approx(expected, rel=1e-9)
    assert answer.message.startswith(f"Of streaming hours (2025), {expected:.1%} came from mobile")
    assert answer.restatement is not None and answer.restatement.startswith("Share of streaming hours from mobile")
    assert answer.confidence >= 0.8


def test_each_parts_share_adds_up_to_the_whole(demo_lore: Any) -> None:
    answer = demo_lore.ask("percentage of streaming hours by device type in 2025")
    assert answer.status == "answered", answer.message
    shares = {r[0]: r[-1] for r in answer.rows}
    assert shares == pytest.approx(_hand_shares(demo_lore), rel=1e-9)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert answer.message.startswith("Share of streaming hours")
    assert answer.chart_kind == "bar" and answer.chart_title.startswith("Share of streaming hours by device")


def test_a_share_of_a_distinct_count_is_asked_back_with_the_reason(demo_lore: Any) -> None:
    answer = demo_lore.ask("what share of active subscribers are on premium")
    assert answer.status == "clarify" and "do not add up" in answer.message


TOP_GENRES_BY_REGION = """
SELECT region, genre, hours FROM (
  SELECT c.region, t.genre, SUM(s.streaming_hours) AS hours,
         RANK() OVER (PARTITION BY c.region ORDER BY SUM(s.streaming_hours) DESC) AS r
  FROM streaming_sessions s JOIN titles t ON t.title_id = s.title_id
  JOIN accounts a ON a.account_id = s.account_id JOIN countries c ON c.country_iso_code = a.country_iso_code
  GROUP BY 1, 2) WHERE r <= 2"""


def test_top_n_in_each_group_is_ranked_within_the_group(demo_lore: Any) -> None:
    answer = demo_lore.ask("top 2 genres by streaming hours in each region")
    assert answer.status == "answered", answer.message
    names = [c.name for c in answer.columns]
    got = sorted((r[names.index("region")], r[names.index("genre")], round(r[names.index("total_streaming_hours")], 6))
                 for r in answer.rows)
    want = sorted((r[0], r[1], round(r[2], 6)) for r in demo_lore.run_sql(TOP_GENRES_BY_REGION).rows)
    assert got == want and len({g[0] for g in got}) > 1  # every region, each with its own top 2
    assert answer.message.startswith("Top 2 genres by streaming hours in each region")
    assert answer.restatement is not None and answer.restatement.endswith("top 2 in each region")
