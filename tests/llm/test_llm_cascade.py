"""The cascade: the real offline planner first, the LLM planner (scripted model) for the rest; and the wiring in Lore."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llm_helpers import flt, outcomes, reply

from lore.core import Lore
from lore.llm.chat import StructuredChat
from lore.llm.models import ModelHandle
from lore.llm.scripted import ScriptedChatModel
from lore.plan.cascade import CascadePlanner, grounded_fully
from lore.plan.llm import LLMPlanner
from lore.plan.offline import OfflinePlanner

#: the offline planner grounds these fully (checked below, so the tests notice if that changes)
FULL = "streaming hours by region in 2026"
#: ... this one only partly ("orgs" and "the" left unexplained: coverage 0.8)
#: the offline planner reads it, but leaves a word unused ("flagship"): the model is asked too
WEAK = "cloud cost excluding the security and data orgs, flagship spend only"
#: ... this one not at all (no metric found: it asks back); retrieval barely supports UA spend for it
UNGROUNDED = "what was our revenue last quarter?"
LAST_QUARTER = {"start_date": "2026-07-01", "end_date": "2026-09-30"}
#: ... and here the offline metric is a similarity guess (metric_match < 0.5)
GUESS = "how much did we spend acquiring users on tiktok"


@pytest.fixture
def offline(demo_lore: Any) -> OfflinePlanner:
    planner = demo_lore.planner
    assert isinstance(planner, OfflinePlanner)  # the demo Lore runs with --model offline
    return planner


def test_a_fully_grounded_question_never_reaches_the_model(offline, make_planner, exchange_log) -> None:
    llm, model = make_planner([])
    out = CascadePlanner(offline, llm).plan(FULL)
    assert grounded_fully(out) and out.plan.planner == "offline" and "agreement" not in out.signals
    assert model.calls == [] and outcomes(exchange_log) == []


def test_refusals_and_precise_clarifications_are_final(offline, make_planner) -> None:
    llm, model = make_planner([])
    cascade = CascadePlanner(offline, llm)
    assert cascade.plan("drop table accounts").status == "refuse"  # unsafe
    assert cascade.plan("what's the weather going to be in Paris tomorrow?").status == "refuse"  # out of scope
    atlantis = cascade.plan("streaming hours in Atlantis last month")  # a value that is not in the data
    assert atlantis.status == "clarify" and atlantis.signals.items() == [("value_match", 0.0)]
    assert cascade.plan("word error rate by device type").status == "clarify"  # a dimension it cannot reach
    assert model.calls == []


def test_agreement_keeps_the_offline_plan_and_raises_confidence(offline, make_planner) -> None:
    off = offline.plan(WEAK)
    assert off.status == "plan" and not grounded_fully(off)
    llm, model = make_planner([reply(metrics=["cloud_cost"], filters=[flt("teams.org", "security", "data", operator="not_in")])])
    out = CascadePlanner(offline, llm).plan(WEAK)
    assert len(model.calls) == 1
    assert out.signals.agreement == 1.0 and out.plan.planner == "offline"
    assert out.plan.groundings == off.plan.groundings  # the offline plan, with its word-level groundings
    assert any("read the question the same way" in n for n in out.plan.notes)


def test_disagreement_keeps_a_named_metric_reading_and_lowers_confidence(offline, make_planner) -> None:
    # the offline metric was named outright (metric_match 1.0), only words were left over: its reading stays
    llm, _ = make_planner([reply(metrics=["cloud_cost"], filters=[flt("teams.org", "security", "data", operator="in")])])
    out = CascadePlanner(offline, llm).plan(WEAK)
    assert out.signals.agreement == 0.5
    assert out.plan.planner == "offline" and out.plan.filters[0].op == "not_in"
    assert any("model read it differently" in n and "teams.org in (security, data)" in n for n in out.plan.notes)


def test_disagreement_prefers_the_model_when_the_offline_metric_was_a_guess(offline, make_planner) -> None:
    off = offline.plan(GUESS)
    assert off.status == "plan" and off.signals.metric_match < 0.5 and off.plan.metrics == ("ua_spend",)
    llm, _ = make_planner([reply(metrics=["ua_spend"])])
    out = CascadePlanner(offline, llm).plan(GUESS)
    assert out.signals.agreement == 0.5
    assert out.plan.planner == "llm:scripted" and out.plan.filters == ()
    assert any("offline planner read it differently" in n for n in out.plan.notes)


def test_a_model_that_declines_leaves_the_weak_offline_plan_with_lower_confidence(offline, make_planner) -> None:
    llm, _ = make_planner([reply(status="clarify", message="Which orgs?")])
    out = CascadePlanner(offline, llm).plan(WEAK)
    assert out.status == "plan" and out.plan.planner == "offline" and out.signals.agreement == 0.5


def test_what_the_offline_planner_cannot_ground_goes_to_the_model(offline, make_planner) -> None:
    off = offline.plan(UNGROUNDED)
    assert off.status == "clarify" and off.signals.get("metric_match") == 0.0
    # the model's metric is used when retrieval supports it at least min_evidence ...
    llm, _ = make_planner([reply(metrics=["ua_spend"], **LAST_QUARTER)])
    out = CascadePlanner(offline, llm, min_evidence=0.1).plan(UNGROUNDED)
    assert out.status == "plan" and out.plan.metrics == ("ua_spend",) and "agreement" not in out.signals
    assert 0.1 <= out.signals.metric_evidence < 0.3


def test_a_metric_retrieval_does_not_support_only_becomes_a_suggestion(offline, make_planner) -> None:
    # ... and below it (the default 0.3), the offline question back stands, offering the model's metric first
    llm, model = make_planner([reply(metrics=["ua_spend"], **LAST_QUARTER)])
    out = CascadePlanner(offline, llm).plan(UNGROUNDED)
    assert len(model.calls) == 1
    assert out.status == "clarify" and out.suggestions[0] == "ua_spend"


def test_the_model_is_made_only_when_needed(offline, make_planner) -> None:
    made: list[LLMPlanner] = []

    def factory() -> LLMPlanner:
        planner, _ = make_planner([reply(metrics=["ua_spend"], **LAST_QUARTER)])
        made.append(planner)
        return planner

    cascade = CascadePlanner(offline, factory)
    cascade.plan(FULL)
    assert made == []
    cascade.plan(UNGROUNDED)
    assert len(made) == 1


def _lore_with(demo_lore: Lore, model: ScriptedChatModel, **settings: Any) -> Lore:
    """A Lore on the demo project whose chat model is the scripted one (everything else shared with demo_lore)."""
    lore = Lore(demo_lore.project, demo_lore.settings.model_copy(update={"model": "scripted", **settings}))
    for part in ("engine", "layer", "schema", "values", "retriever"):  # the project's parts, opened once
        lore.parts.__dict__[part] = getattr(demo_lore.parts, part)
    for part in ("compiler", "catalog"):
        lore.__dict__[part] = getattr(demo_lore, part)
    lore.parts.__dict__["model"] = ModelHandle(chat=StructuredChat(model, name="scripted", log=lore.llm_log), spec="scripted")
    return lore


def test_ask_runs_the_cascade_end_to_end(demo_lore, raw_db) -> None:
    model = ScriptedChatModel(replies=[reply(metrics=["ua_spend"], filters=[flt("ua_campaigns.channel", "tiktok")])])
    lore = _lore_with(demo_lore, model)
    answer = lore.chat(user="t").ask(GUESS)
    assert answer.status == "answered", answer.message
    (expected,) = raw_db.execute("SELECT SUM(spend_usd) FROM ua_campaigns WHERE channel = 'tiktok'").fetchone()
    assert answer.rows[0][0] == pytest.approx(expected)
    assert answer.confidence_factors["agreement"] == 1.0  # both planners read it the same way
    full = lore.chat(user="t").ask(FULL)
    assert full.status == "answered" and full.plan.planner == "offline"
    assert len(model.calls) == 1  # the grounded question did not call the model
    logged = lore.llm_log.recent(5)
    assert logged[0].question == GUESS and logged[0].outcome == "ok"


def test_agreement_shows_in_the_confidence_factors(demo_lore) -> None:
    model = ScriptedChatModel(replies=[reply(metrics=["cloud_cost"],
                                             filters=[flt("teams.org", "security", "data", operator="not_in")])])
    answer = _lore_with(demo_lore, model).chat(user="t").ask(WEAK)
    assert answer.status == "answered" and answer.confidence_factors["agreement"] == 1.0


def test_the_llm_alone_when_configured(demo_lore) -> None:
    model = ScriptedChatModel(replies=[reply(metrics=["total_streaming_hours"], dimensions=["countries.region"],
                                             start_date="2026-01-01", end_date="2026-12-31")])
    lore = _lore_with(demo_lore, model, planner="llm")
    assert isinstance(lore.planner, LLMPlanner)
    answer = lore.chat(user="t").ask(FULL)
    assert answer.status == "answered" and answer.plan.planner == "llm:scripted" and len(model.calls) == 1


def test_free_sql_from_the_model_runs_through_the_guard_with_lower_confidence(demo_lore, raw_db) -> None:
    sql = "SELECT title_type, COUNT(*) AS titles FROM titles WHERE release_date >= DATE '2025-01-01' GROUP BY title_type"
    model = ScriptedChatModel(replies=[reply(status="sql", sql=sql)])
    question = "how many titles of each type were released since 2025"
    assert demo_lore.planner.plan(question).status != "plan"  # the layer has no metric for it
    answer = _lore_with(demo_lore, model).chat(user="t").ask(question)
    assert answer.status == "answered", answer.message
    assert sorted(answer.rows) == sorted(tuple(r) for r in raw_db.execute(sql).fetchall())
    assert any("wrote SQL over the allowed tables" in step for step in answer.reasoning)
    assert answer.confidence_factors["metric"] == 0.6 and answer.confidence < 0.9


def test_an_execution_error_goes_back_to_the_model_once(demo_lore, raw_db) -> None:
    """SQL that binds (so every check passes) but fails on the data is sent back with the engine's error, once."""
    failing = "SELECT CAST(title_name AS INTEGER) AS n FROM titles"
    good = "SELECT title_type, COUNT(*) AS titles FROM titles GROUP BY title_type"
    model = ScriptedChatModel(replies=[reply(status="sql", sql=failing), reply(status="sql", sql=good)])
    lore = _lore_with(demo_lore, model, planner="llm")
    answer = lore.chat(user="t").ask("how many titles of each type are there, as numbers please")
    assert answer.status == "answered", answer.message
    assert sorted(answer.rows) == sorted(tuple(r) for r in raw_db.execute(good).fetchall())
    assert len(model.calls) == 2
    second = model.calls[1].prompt
    assert "failed when it ran" in second and "CAST" in second  # the model saw its plan and the engine's error
    assert any("first query failed when it ran" in step for step in answer.reasoning)
    assert answer.confidence_factors["execution"] == 0.8  # a second try is not a clean run
    linked = lore.llm_log.recent(5, answer_id=answer.id)
    assert len(linked) == 2  # both exchanges carry the answer's id


def test_a_second_execution_failure_is_a_clear_error_not_a_loop(demo_lore) -> None:
    failing = "SELECT CAST(title_name AS INTEGER) AS n FROM titles"
    model = ScriptedChatModel(replies=[reply(status="sql", sql=failing), reply(status="sql", sql=failing)])
    answer = _lore_with(demo_lore, model, planner="llm").chat(user="t").ask("titles as numbers, please")
    assert answer.status == "error" and "could not run" in answer.message
    assert len(model.calls) == 2


def test_a_timeout_is_not_sent_back_to_the_model(demo_lore) -> None:
    """A time (or size) limit would only be hit again, at twice the cost: the answer says so at once."""
    slow = ("SELECT COUNT(*) AS n FROM streaming_sessions AS a CROSS JOIN streaming_sessions AS b "
            "CROSS JOIN streaming_sessions AS c")
    model = ScriptedChatModel(replies=[reply(status="sql", sql=slow), reply(status="sql", sql=slow)])
    lore = _lore_with(demo_lore, model, planner="llm", query_timeout_s=0.5)
    answer = lore.chat(user="t").ask("count every triple of sessions")
    assert answer.status == "error" and "stopped" in answer.message
    assert len(model.calls) == 1


def test_reading_the_prompt_version_never_starts_a_model(tmp_path: Path) -> None:
    """Recording an answer asks which prompt made it: a cascade whose model is not made yet says None and stays
    unmade; once made, its template id. A fresh Lore reports nothing built, and builds nothing to say so."""
    from types import SimpleNamespace

    from lore.demo.project import init_demo

    made: list[int] = []

    def make() -> SimpleNamespace:
        made.append(1)
        return SimpleNamespace(plan=lambda *a, **k: None, prompt_version="plan_v9")

    cascade = CascadePlanner(offline=SimpleNamespace(plan=lambda *a, **k: None), llm=make)
    assert cascade.prompt_version is None and made == []
    assert cascade.llm.prompt_version == "plan_v9" and made == [1]
    assert cascade.prompt_version == "plan_v9"

    init_demo(tmp_path / "demo", scale=0.01, seed=3)
    with Lore.open(tmp_path / "demo", feedback=False) as lore:
        assert lore.built_versions() == (None, None) and not lore.parts.opened("layer")
        lore.ask("streaming hours last month")
        layer_version, prompt = lore.built_versions()
        assert layer_version == lore.layer.version and prompt is None  # the offline planner sends no prompt
