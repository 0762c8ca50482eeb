"""Planner cases as data (tests/plan/cases.yaml): each question must get the plan the file gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lore.types import Filter

CASES = yaml.safe_load((Path(__file__).parent / "cases.yaml").read_text(encoding="utf-8"))["cases"]
SHOP_CASES = yaml.safe_load((Path(__file__).parent / "shop_cases.yaml").read_text(encoding="utf-8"))["cases"]
INSURER_CASES = yaml.safe_load((Path(__file__).parent / "insurer_cases.yaml").read_text(encoding="utf-8"))["cases"]


def _opened(tmp_path_factory: pytest.TempPathFactory, name: str, build: Any, **options: Any) -> Any:
    """Build a project with ``build(folder, **options)`` and open it (a generator for a module fixture)."""
    from lore import Lore

    folder = tmp_path_factory.mktemp(name) / "project"
    build(folder, **options)
    with Lore.open(folder, feedback=False) as lore:
        yield lore


@pytest.fixture(scope="module")
def shop_lore(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The jaffle shop (evals/jaffle): one year of jafgen data, seed 42."""
    from evals.jaffle.warehouse import build

    yield from _opened(tmp_path_factory, "shop", build, years=1, seed=42)


@pytest.fixture(scope="module")
def insurer_lore(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The insurer (evals/insurance): seed 7, a fifth of the default size."""
    from evals.insurance.warehouse import build

    yield from _opened(tmp_path_factory, "insurer", build, seed=7, scale=0.2)


def _filter(f: Filter) -> str:
    return f"{f.ref} {f.op} {', '.join(str(v) for v in f.values)}"


@pytest.mark.parametrize("case", CASES, ids=[c["question"][:60] for c in CASES])
def test_planner_case(demo_lore: Any, case: dict[str, Any]) -> None:
    _check(demo_lore.planner, case)


@pytest.mark.parametrize("case", SHOP_CASES, ids=[c["question"][:60] for c in SHOP_CASES])
def test_shop_planner_case(shop_lore: Any, case: dict[str, Any]) -> None:
    _check(shop_lore.planner, case)


@pytest.mark.parametrize("case", INSURER_CASES, ids=[c["question"][:60] for c in INSURER_CASES])
def test_insurer_planner_case(insurer_lore: Any, case: dict[str, Any]) -> None:
    _check(insurer_lore.planner, case)


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
    if "filters" in case:  # (a ranking leaves out the rows with no value of what it ranks: checked by not_null)
        shown = [f for f in p.filters if not (f.op == "is_not_null" and any(x.split(":")[0] == f.ref
                                                                            for x in p.dimensions))]
        assert sorted(_filter(f) for f in shown) == sorted(case["filters"]), p.filters
    if "not_null" in case:
        assert sorted(f.ref for f in p.filters if f.op == "is_not_null") == case["not_null"], p.filters
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
    if "share" in case:  # {within: [refs], keep: ["ref op value"]}; null: no share
        want = case["share"]
        if want is None:
            assert p.share is None, p.share
        else:
            assert p.share is not None, p
            assert sorted(p.share.within) == sorted(want.get("within", [])), p.share
            assert sorted(_filter(f) for f in p.share.keep) == sorted(want.get("keep", [])), p.share
    if "rank_within" in case:
        assert sorted(p.rank_within) == sorted(case["rank_within"]), p.rank_within
    if "compare" in case:  # the two periods' labels, earlier first; null: no comparison
        if case["compare"] is None:
            assert p.compare is None, p.compare
        else:
            assert p.compare is not None, p
            assert [w.label for w in p.compare.ordered()] == case["compare"], p.compare
    if "per" in case:  # {entity, grain} of a rate per entity; null: none
        if case["per"] is None:
            assert p.per is None, p.per
        else:
            assert p.per is not None, p
            assert (p.per.entity, p.per.grain) == (case["per"]["entity"], case["per"].get("grain")), p.per
            assert p.per.stat == case["per"].get("stat", "avg"), p.per
    if "running_total" in case:
        assert p.running_total == case["running_total"], p
    if "threshold" in case:  # "entity metric op value" of a count of entities past a threshold; null: none
        if case["threshold"] is None:
            assert p.threshold is None, p.threshold
        else:
            assert p.threshold is not None, p
            t = p.threshold
            assert f"{t.entity} {t.metric} {t.op} {t.value:g}" == case["threshold"], t
    if "capped" in case:
        assert ("coverage_cap" in out.signals) == case["capped"], out.signals


def test_a_follow_up_is_no_surer_than_the_answer_it_builds_on(shop_lore: Any) -> None:
    """A follow-up inherits the previous answer's plan, and with it its doubt: an unsure first answer (a word it
    did not use) caps the refinement's confidence; a sure one leaves it alone."""
    chat = shop_lore.chat()
    unsure = chat.ask("how many tweets saying nice things about us last quarter?")
    assert unsure.status == "answered" and unsure.confidence < 0.5, unsure.confidence_factors
    refined = chat.ask("break it down by store")
    assert refined.status == "answered" and "stores.name" in refined.plan.dimensions
    assert refined.confidence <= unsure.confidence, (refined.confidence, refined.confidence_factors)

    sure = shop_lore.chat()
    first = sure.ask("revenue last quarter")
    second = sure.ask("break it down by store")
    assert first.confidence >= 0.9 and second.confidence >= 0.8, (first.confidence, second.confidence)
