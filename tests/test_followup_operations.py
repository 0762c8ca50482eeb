"""Follow-ups that switch or keep an analysis operation, end to end on the demo warehouse: "and vs last year?",
"compare that with Q2", "which one grew the most?", "now as a share", "make that a running total", and a filter
or a new period that keeps the previous operation. Checked against hand-written SQL."""

from __future__ import annotations

from typing import Any

import pytest

from lore.types import OrderBy

SS_REGION = ("streaming_sessions s JOIN accounts a ON a.account_id = s.account_id "
             "JOIN countries c ON c.country_iso_code = a.country_iso_code")


def _by_region(lore: Any, start: str, end: str, where: str = "") -> dict[str, float]:
    sql = (f"SELECT c.region, SUM(s.streaming_hours) FROM {SS_REGION} "
           f"WHERE s.session_date BETWEEN DATE '{start}' AND DATE '{end}' {where} GROUP BY 1")
    return {str(r): float(h) for r, h in lore.run_sql(sql).rows}


def _grew_most(lore: Any, before: tuple[str, str], after: tuple[str, str]) -> str:
    """The region whose streaming hours rose most from the period ``before`` to the period ``after``."""
    early, late = _by_region(lore, *before), _by_region(lore, *after)
    change = {k: late[k] - early.get(k, 0.0) for k in late}
    return max(change, key=change.__getitem__)


def test_and_vs_last_year_compares_the_previous_period_a_year_earlier(demo_lore: Any) -> None:
    chat = demo_lore.chat()
    chat.ask("streaming hours by region in Q3 2026")
    answer = chat.ask("and vs last year?")
    assert answer.status == "answered", answer.message
    assert answer.plan is not None and answer.plan.compare is not None
    assert sorted(w.label for w in answer.plan.compare.periods) == ["Q3 2025", "Q3 2026"]
    before, after = _by_region(demo_lore, "2025-07-01", "2025-09-30"), _by_region(demo_lore, "2026-07-01", "2026-09-30")
    got = {r[0]: r[1:3] for r in answer.rows}
    assert got == {k: pytest.approx((before.get(k, 0.0), after[k])) for k in after}


def test_compare_that_with_a_named_period_then_rank_by_the_change(demo_lore: Any) -> None:
    chat = demo_lore.chat()
    chat.ask("streaming hours by region in Q3 2026")
    compared = chat.ask("compare that with Q2 2026")
    assert compared.plan is not None and compared.plan.compare is not None
    assert sorted(w.label for w in compared.plan.compare.periods) == ["Q2 2026", "Q3 2026"]
    ranked = chat.ask("which one grew the most?")
    assert ranked.status == "answered", ranked.message
    assert ranked.plan is not None and ranked.plan.order_by == (OrderBy(ref="total_streaming_hours_change",
                                                                        descending=True),)
    assert [r[0] for r in ranked.rows] == [_grew_most(demo_lore, ("2026-04-01", "2026-06-30"), ("2026-07-01", "2026-09-30"))]


def test_and_in_percent_terms_ranks_by_the_percent_change(demo_lore: Any) -> None:
    chat = demo_lore.chat()
    chat.ask("streaming hours by region, Q2 2026 vs Q3 2026")
    chat.ask("which one grew the most?")
    relative = chat.ask("and in % terms?")
    assert relative.status == "answered", relative.message
    assert relative.plan is not None and relative.plan.order_by == (OrderBy(ref="total_streaming_hours_change_pct",
                                                                            descending=True),)
    early = _by_region(demo_lore, "2026-04-01", "2026-06-30")
    late = _by_region(demo_lore, "2026-07-01", "2026-09-30")
    pct = {k: (late[k] - early[k]) / early[k] for k in late if early.get(k)}
    assert [r[0] for r in relative.rows] == [max(pct, key=pct.__getitem__)]


def test_a_filter_keeps_the_comparison(demo_lore: Any) -> None:
    chat = demo_lore.chat()
    chat.ask("streaming hours by region, Q3 2026 vs Q2 2026")
    answer = chat.ask("only premium")
    assert answer.plan is not None and answer.plan.compare is not None
    premium = "AND a.plan = 'premium'"
    q2 = _by_region(demo_lore, "2026-04-01", "2026-06-30", premium)
    q3 = _by_region(demo_lore, "2026-07-01", "2026-09-30", premium)
    assert {r[0]: r[1:3] for r in answer.rows} == {k: pytest.approx((q2.get(k, 0.0), q3[k])) for k in q3}


def test_growth_after_one_period_is_from_the_period_before(demo_lore: Any) -> None:
    chat = demo_lore.chat()
    chat.ask("streaming hours by region in October 2026")
    answer = chat.ask("which region grew the most?")
    assert answer.status == "answered", answer.message
    assert answer.plan is not None and answer.plan.compare is not None
    assert sorted(w.label for w in answer.plan.compare.periods) == ["October 2026", "September 2026"]
    assert [r[0] for r in answer.rows] == [_grew_most(demo_lore, ("2026-09-01", "2026-09-30"), ("2026-10-01", "2026-10-31"))]


def test_now_as_a_share_and_a_running_total(demo_lore: Any) -> None:
    chat = demo_lore.chat()
    chat.ask("streaming hours by region in 2026")
    share = chat.ask("now as a share")
    assert share.plan is not None and share.plan.share is not None
    hours = _by_region(demo_lore, "2026-01-01", "2026-12-31")
    assert {r[0]: r[-1] for r in share.rows} == {k: pytest.approx(v / sum(hours.values())) for k, v in hours.items()}
    chat = demo_lore.chat()
    chat.ask("streaming hours by month in 2026")
    running = chat.ask("make that a running total")
    assert running.plan is not None and running.plan.running_total
    assert running.rows[-1][-1] == pytest.approx(sum(hours.values()))


def test_a_new_period_keeps_the_top_n_in_each_group(demo_lore: Any) -> None:
    chat = demo_lore.chat()
    chat.ask("top 3 genres by streaming hours in each region")
    answer = chat.ask("and in 2025?")
    assert answer.plan is not None and answer.plan.rank_within == ("countries.region",) and answer.plan.limit == 3
    assert answer.plan.time is not None and answer.plan.time.label == "2025"
    per_region: dict[str, int] = {}
    for row in answer.rows:
        per_region[row[1]] = per_region.get(row[1], 0) + 1
    assert set(per_region.values()) == {3}
