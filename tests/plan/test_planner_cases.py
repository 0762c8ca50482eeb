"""Planner cases as data (tests/plan/cases.yaml): each question must get the plan the file gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lore.types import Filter

CASES = yaml.safe_load((Path(__file__).parent / "cases.yaml").read_text(encoding="utf-8"))["cases"]
SHOP_CASES = yaml.safe_load((Path(__file__).parent / "shop_cases.yaml").read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="module")
def shop_lore(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The jaffle shop (evals/jaffle): one year of jafgen data, seed 42."""
    from evals.jaffle.warehouse import build
    from lore import Lore

    folder = tmp_path_factory.mktemp("shop") / "project"
    build(folder, years=1, seed=42)
    with Lore.open(folder, feedback=False) as lore:
        yield lore


def _filter(f: Filter) -> str:
    return f"{f.ref} {f.op} {', '.join(str(v) for v in f.values)}"


@pytest.mark.parametrize("case", CASES, ids=[c["question"][:60] for c in CASES])
def test_planner_case(demo_lore: Any, case: dict[str, Any]) -> None:
    _check(demo_lore.planner, case)


@pytest.mark.parametrize("case", SHOP_CASES, ids=[c["question"][:60] for c in SHOP_CASES])
def test_shop_planner_case(shop_lore: Any, case: dict[str, Any]) -> None:
    _check(shop_lore.planner, case)


def _check(planner: Any, case: dict[str, Any]) -> None:
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
