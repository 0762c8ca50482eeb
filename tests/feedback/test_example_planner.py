"""The example planner's notion of "the same question": signatures over the demo layer (read-only)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from lore.plan.example import question_key, refs_exist, retime, signature
from lore.plan.timeparse import parse_time
from lore.types import Grounding, QueryPlan, TimeWindow

TODAY = date(2026, 11, 1)

SAME = [
    ("total streaming hours by region in 2026", "streaming hours per region for 2026"),
    ("total streaming hours by region in 2026", "what were the hours streamed in each region in 2026"),
    ("streaming hours in Brazil", "Streaming hours for Brazil?"),
    ("game installs by platform last month", "installs of games per platform during last month"),
    ("top 5 titles by streaming hours", "top five titles by streaming hours"),
]
DIFFERENT = [
    ("streaming hours in Brazil", "streaming hours in Mexico"),
    ("hours in Brazil", "hours in the US"),
    ("streaming hours by region in 2026", "streaming hours by country in 2026"),
    ("streaming hours by region in 2026", "streaming hours by region in 2025"),
    ("streaming hours by region last month", "streaming hours by region last quarter"),
    ("streaming hours by month", "streaming hours by week"),
    ("top 5 titles by streaming hours", "top 10 titles by streaming hours"),
    ("top 5 titles by streaming hours", "bottom 5 titles by streaming hours"),
    ("streaming hours in Brazil", "streaming hours excluding Brazil"),
    ("streaming hours in Brazil excluding premium", "streaming hours in premium excluding Brazil"),
    ("streaming hours in Brazil", "streaming hours in Brazil on weekends"),
    ("how much did people watch in Brazil", "how many people watched in Brazil"),
    ("average streaming hours in Brazil", "streaming hours in Brazil"),
    ("streaming hours in Brazil", "game installs in Brazil"),
]


def _sig(lore: Any, question: str):  # noqa: ANN202
    return signature(question, lore.catalog, lore.retriever, TODAY)


@pytest.mark.parametrize(("a", "b"), SAME)
def test_paraphrases_have_the_same_signature(demo_lore: Any, a: str, b: str) -> None:
    assert _sig(demo_lore, a) == _sig(demo_lore, b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_other_questions_differ(demo_lore: Any, a: str, b: str) -> None:
    assert _sig(demo_lore, a) != _sig(demo_lore, b)


def test_question_keys_ignore_case_punctuation_and_invisible_characters() -> None:
    assert question_key("Streaming hours, by region?") == question_key("streaming\u200b hours by  region")
    assert question_key("hours in Brazil") != question_key("hours in Mexico")


def test_a_relative_window_is_resolved_again_only_when_it_came_from_the_words() -> None:
    september = TimeWindow(start=date(2026, 9, 1), end=date(2026, 9, 30), label="last month (September 2026)")
    from_words = QueryPlan(metrics=("m",), time=september,
                           groundings=(Grounding(kind="time", ref="x", phrase="last month", source="rule"),))
    now = parse_time("m last month", TODAY)
    assert retime(from_words, now, now) == TimeWindow(start=date(2026, 10, 1), end=date(2026, 10, 31),
                                                      label="last month (October 2026)")
    assert retime(from_words.model_copy(update={"groundings": ()}), now, now) is False  # set by hand: stale
    fixed = parse_time("m in 2025", TODAY)
    kept = QueryPlan(metrics=("m",), time=TimeWindow(start=date(2025, 4, 1), end=date(2026, 3, 31), label="FY2025"))
    assert retime(kept, fixed, fixed) == kept.time  # a verified fixed window is kept
    assert retime(QueryPlan(sql="SELECT 1"), now, now) is False  # free SQL hides its dates


def test_a_stored_plan_must_still_fit_the_layer(demo_lore: Any) -> None:
    assert refs_exist(QueryPlan(metrics=("total_streaming_hours",), dimensions=("countries.region", "metric_time:month")),
                      demo_lore.catalog)
    assert not refs_exist(QueryPlan(metrics=("retired_metric",)), demo_lore.catalog)
    assert not refs_exist(QueryPlan(metrics=("total_streaming_hours",), dimensions=("countries.continent",)),
                          demo_lore.catalog)
