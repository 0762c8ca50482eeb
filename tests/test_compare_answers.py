"""Two periods side by side end to end: the question, the plan, the SQL on DuckDB and the answer's words, checked
against hand-written SQL on the demo warehouse."""

from __future__ import annotations

from typing import Any

import pytest

from lore.types import OrderBy

HOURS_BY_REGION_AND_YEAR = (
    "SELECT c.region, EXTRACT(year FROM s.session_date) AS y, SUM(s.streaming_hours) FROM streaming_sessions s "
    "JOIN accounts a ON a.account_id = s.account_id JOIN countries c ON c.country_iso_code = a.country_iso_code "
    "WHERE s.session_date BETWEEN DATE '2025-01-01' AND DATE '2026-12-31' GROUP BY 1, 2")


def _by_region(lore: Any) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for region, year, hours in lore.run_sql(HOURS_BY_REGION_AND_YEAR).rows:
        out.setdefault(str(region), {})[int(year)] = float(hours)
    return out


def test_two_years_are_one_row_with_the_change(demo_lore: Any) -> None:
    answer = demo_lore.ask("streaming hours in 2026 vs 2025")
    assert answer.status == "answered", answer.message
    assert answer.plan is not None and answer.plan.compare is not None and not answer.plan.dimensions
    names = [c.name for c in answer.columns]
    assert names == ["total_streaming_hours_2025", "total_streaming_hours_2026", "total_streaming_hours_change",
                     "total_streaming_hours_change_pct"]
    totals = {y: sum(v.get(y, 0.0) for v in _by_region(demo_lore).values()) for y in (2025, 2026)}
    before, after, change, pct = answer.rows[0]
    assert (before, after) == pytest.approx((totals[2025], totals[2026]), rel=1e-9)
    assert change == pytest.approx(totals[2026] - totals[2025], rel=1e-9)
    assert pct == pytest.approx((totals[2026] - totals[2025]) / totals[2025], rel=1e-9)
    verb = "rose" if change > 0 else "fell"
    assert answer.message.startswith(f"Streaming hours {verb} {abs(pct):.1%} from 2025 to 2026: "), answer.message
    assert answer.restatement == "Streaming hours, 2025 vs 2026"
    assert answer.confidence >= 0.8


def test_two_quarters_by_region_keep_every_region(demo_lore: Any) -> None:
    answer = demo_lore.ask("streaming hours by region, 2025 compared with 2026")
    assert answer.status == "answered", answer.message
    hand = _by_region(demo_lore)
    got = {r[0]: r[1:] for r in answer.rows}
    assert set(got) == set(hand)
    for region, (before, after, change, _pct) in got.items():
        assert before == pytest.approx(hand[region].get(2025, 0.0), rel=1e-9)
        assert after == pytest.approx(hand[region].get(2026, 0.0), rel=1e-9)
        assert change == pytest.approx(after - before, rel=1e-9)
    rose = sum(1 for v in got.values() if v[2] > 0)
    assert f"{rose} of {len(got)} rose" in answer.message, answer.message


def test_a_comparison_can_be_ranked_by_its_change(demo_lore: Any) -> None:
    """The compiler ranks by the change ("which region grew most"), not by the later period's size."""
    plan = demo_lore.ask("streaming hours by region, 2025 vs 2026").plan
    assert plan is not None and plan.compare is not None
    ranked = plan.model_copy(update={"order_by": (OrderBy(ref="total_streaming_hours_change", descending=True),),
                                     "limit": 1})
    result = demo_lore.run_compiled(demo_lore.compile_plan(ranked))
    hand = _by_region(demo_lore)
    best = max(hand, key=lambda r: hand[r].get(2026, 0.0) - hand[r].get(2025, 0.0))
    assert [row[0] for row in result.rows] == [best]
