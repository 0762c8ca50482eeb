"""Planner cases as data (tests/plan/cases.yaml): each question must get the plan the file gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lore.types import Filter

CASES = yaml.safe_load((Path(__file__).parent / "cases.yaml").read_text(encoding="utf-8"))["cases"]


def _filter(f: Filter) -> str:
    return f"{f.ref} {f.op} {', '.join(str(v) for v in f.values)}"


@pytest.mark.parametrize("case", CASES, ids=[c["question"][:60] for c in CASES])
def test_planner_case(demo_lore: Any, case: dict[str, Any]) -> None:
    planner = demo_lore.planner
    previous = None
    if "previous" in case:
        before = planner.plan(case["previous"])
        assert before.status == "plan", (case["previous"], before.message)
        previous = before.plan
    out = planner.plan(case["question"], previous)
    status = case.get("status", "plan")
    assert out.status == status, (out.status, out.message, out.plan)
    for text in case.get("message", []):
        assert text in out.message, out.message
    if status != "plan":
        return
    p = out.plan
    assert p is not None
    if "metrics" in case:
        assert list(p.metrics) == case["metrics"]
    if "dimensions" in case:
        assert sorted(p.dimensions) == sorted(case["dimensions"]), p.dimensions
    if "filters" in case:
        assert sorted(_filter(f) for f in p.filters) == sorted(case["filters"]), p.filters
    if "rows_of" in case:
        assert p.rows_of == case["rows_of"]
    if "adhoc" in case:
        assert [a.expr for a in p.adhoc] == [case["adhoc"]] and p.metrics == (p.adhoc[0].name,)
    if "limit" in case:
        assert p.limit == case["limit"]
    if "order" in case:
        ref, direction = case["order"].split()
        assert p.order_by and p.order_by[0].ref == ref and p.order_by[0].descending == (direction == "desc")
    if "time" in case:
        assert p.time is not None and case["time"] in p.time.label
    if "capped" in case:
        assert ("coverage_cap" in out.signals) == case["capped"], out.signals
