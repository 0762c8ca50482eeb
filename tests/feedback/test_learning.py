"""The loop end to end on a copy of the demo project: vote, verify, and the next question learns.

Every test works on its own copy of the demo project (fixture ``project``); the
numbers are checked against SQL written by hand on the raw warehouse (``raw_db``).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import pytest

from feedback import review
from feedback.store import open_store
from lore import Lore
from lore.errors import GuardError, OperatorError
from lore.types import Filter, QueryPlan, TimeWindow

BRAZIL_OCTOBER = """
    SELECT SUM(s.streaming_hours)
    FROM streaming_sessions s
    JOIN accounts a ON a.account_id = s.account_id
    JOIN countries c ON c.country_iso_code = a.country_iso_code
    WHERE c.country_name = 'Brazil' AND s.session_date BETWEEN DATE '2026-10-01' AND DATE '2026-10-31'
"""


def _verify(lore: Lore, question: str, *, user: str = "ana", reviewer: str = "ben") -> Any:
    """Ask, thumbs up, and have a reviewer approve; returns the answer."""
    answer = lore.ask(question, user=user)
    assert answer.status == "answered", answer.message
    vote = lore.feedback(answer.id, +1, user=user)
    assert vote.nomination_status == "pending"
    review.approve(open_store(lore), vote.nomination_id or "", reviewer=reviewer)
    return answer


def test_thumbs_up_verified_then_a_paraphrase_gets_the_verified_plan(project: Lore) -> None:
    original = project.ask("total streaming hours by region in 2026", user="ana")
    assert original.plan is not None and original.plan.planner == "offline"
    vote = project.feedback(original.id, +1, user="ana")
    paraphrase = "streaming hours per region for 2026"
    before = project.ask(paraphrase, user="bob")
    assert before.plan is not None and before.plan.planner == "offline"  # only nominated: nothing learned yet
    assert project.retriever.count("example") == 0

    review.approve(open_store(project), vote.nomination_id or "", reviewer="ben")
    assert project.retriever.count("example") == 1  # in the index at once

    after = project.ask(paraphrase, user="bob")
    assert after.status == "answered" and after.plan is not None
    assert after.plan.planner == "example"
    assert after.plan.key() == original.plan.key()
    grounding = after.plan.groundings[0]
    assert (grounding.kind, grounding.phrase, grounding.source) == ("example", original.question, "verified example")
    assert after.confidence_factors["example"] == 1.0 and after.confidence >= 0.8
    assert any("verified" in step for step in after.reasoning)
    assert after.rows == original.rows


def test_a_near_match_needs_the_same_values_numbers_and_time(project: Lore) -> None:
    _verify(project, "streaming hours in Brazil in 2026")
    _verify(project, "top 5 titles by streaming hours in 2026")
    same = {"Streaming hours in Brazil in 2026?": True, "streaming hours for Brazil during 2026": True,
            "streaming hours in Mexico in 2026": False, "streaming hours in Brazil in 2025": False,
            "streaming hours in Brazil excluding premium in 2026": False,
            "top 5 titles by streaming hours in 2026": True, "top 10 titles by streaming hours in 2026": False,
            "bottom 5 titles by streaming hours in 2026": False}
    for question, reused in same.items():
        answer = project.ask(question, user="cy")
        assert answer.plan is not None, question
        assert (answer.plan.planner == "example") is reused, question


def test_a_correction_makes_the_corrected_plan_win(project: Lore, raw_db: Any) -> None:
    question = "how big was Brazil last month"
    first = project.ask(question, user="ana")
    fixed = QueryPlan(metrics=("total_streaming_hours",),
                      filters=(Filter(ref="countries.country_name", values=("Brazil",)),),
                      time=TimeWindow(start=date(2026, 10, 1), end=date(2026, 10, 31), label="last month (October 2026)"))
    assert first.plan is None or first.plan.key() != fixed.key()  # the planner does not know what "big" means here
    vote = project.feedback(first.id, -1, user="ana", correction=fixed, comment="size means hours watched")
    assert vote.nomination_status == "pending"
    review.approve(open_store(project), vote.nomination_id or "", reviewer="ben")

    expected = raw_db.execute(BRAZIL_OCTOBER).fetchone()[0]
    for asked in ("How big was Brazil last month?", "how big was brazil during last month"):
        again = project.ask(asked, user="bob")
        assert again.status == "answered" and again.plan is not None and again.plan.planner == "example", asked
        assert again.rows[0][0] == pytest.approx(expected)
    other = project.ask("how big was Mexico last month", user="bob")
    assert other.plan is None or other.plan.planner != "example"


def test_a_verified_correction_replaces_the_rejected_example(project: Lore) -> None:
    question = "streaming hours by region in 2026"
    original = _verify(project, question)
    reused = project.ask(question, user="cy")
    assert reused.plan is not None and reused.plan.planner == "example"
    fixed = original.plan.model_copy(update={"metrics": ("active_streaming_accounts",), "groundings": ()})
    vote = project.feedback(reused.id, -1, user="cy", correction=fixed)
    review.approve(open_store(project), vote.nomination_id or "", reviewer="ben")
    store = open_store(project)
    assert [n.status for n in store.nominations("revoked")] == ["revoked"]
    now = project.ask(question, user="dee")
    assert now.plan is not None and now.plan.planner == "example" and now.plan.metrics == ("active_streaming_accounts",)


def test_a_thumbs_down_lowers_confidence_for_similar_questions(project: Lore) -> None:
    first = project.ask("streaming hours by device type in 2026", user="ana")
    assert first.status == "answered" and "feedback" not in first.confidence_factors
    project.feedback(first.id, -1, user="ana", comment="looks off")
    similar = project.ask("total streaming hours by device type in 2026", user="bob")
    assert similar.plan is not None and similar.plan.key() == first.plan.key()  # type: ignore[union-attr]
    assert similar.confidence_factors["feedback"] == 0.6
    assert similar.confidence < first.confidence
    assert any("voted down" in step for step in similar.reasoning)
    unrelated = project.ask("game installs by platform in 2026", user="bob")
    assert "feedback" not in unrelated.confidence_factors


def test_revoking_removes_the_example_at_once(project: Lore) -> None:
    question = "cloud cost by team in 2026"
    _verify(project, question)
    store = open_store(project)
    verified = store.nominations("verified")[0]
    assert project.ask(question).plan.planner == "example"  # type: ignore[union-attr]
    review.revoke(store, verified.id, reviewer="ben", reason="team mapping changed")
    assert project.retriever.count("example") == 0
    assert project.ask(question).plan.planner == "offline"  # type: ignore[union-attr]


def test_trusted_users_and_enough_distinct_users_verify_without_a_reviewer(project: Lore) -> None:
    (project.project.root / "feedback.yaml").write_text("trusted_users: [tess]\nauto_verify_min_users: 2\n", encoding="utf-8")
    trusted = project.ask("game installs by platform in 2026", user="tess")
    vote = project.feedback(trusted.id, +1, user="tess", verified=True)  # a signed-in identity
    assert vote.nomination_status == "verified" and "trusted user tess" in (vote.note or "")
    crowd = project.ask("cloud cost by service in 2026", user="u1")
    assert project.feedback(crowd.id, +1, user="u1", verified=True).nomination_status == "pending"
    assert project.feedback(crowd.id, +1, user="U1 ", verified=True, idempotency_key="again").nomination_status == "pending"
    second = project.ask("cloud cost by service in 2026", user="u2")
    assert project.feedback(second.id, +1, user="u2").nomination_status == "pending"  # a name nobody verified
    assert project.feedback(second.id, +1, user="u2", verified=True).nomination_status == "verified"
    assert project.retriever.count("example") == 2


def test_sql_that_fails_the_guard_is_never_verified(project: Lore) -> None:
    (project.project.root / "feedback.yaml").write_text("trusted_users: [tess]\n", encoding="utf-8")
    answer = project.ask("streaming hours in Brazil", user="tess")
    vote = project.feedback(answer.id, -1, user="tess", verified=True,
                            correction="SELECT * FROM read_csv('/etc/passwd')")  # even a trusted user's
    assert vote.nomination_status == "pending" and "not verified" in (vote.note or "")
    store = open_store(project)
    with pytest.raises(GuardError):
        review.approve(store, vote.nomination_id or "", reviewer="ben")
    assert store.nomination(vote.nomination_id or "").status == "pending"
    assert store.verified_examples() == [] and project.retriever.count("example") == 0


def test_reviewers_listed_in_the_policy_are_the_only_ones_who_decide(project: Lore) -> None:
    (project.project.root / "feedback.yaml").write_text("reviewers: [ben]\n", encoding="utf-8")
    answer = project.ask("streaming hours in Brazil", user="ana")
    vote = project.feedback(answer.id, +1, user="ana")
    with pytest.raises(OperatorError, match="not a reviewer"):
        review.approve(open_store(project), vote.nomination_id or "", reviewer="ana")
    assert review.approve(open_store(project), vote.nomination_id or "", reviewer="ben").status == "verified"


def test_another_process_learns_at_its_next_question(project: Lore) -> None:
    """The Slack bot verifies an example; the chat page's process picks it up at its next question."""
    other = Lore.open(project.project.root)
    try:
        question = "streaming hours by plan in 2026"
        assert other.ask(question).plan.planner == "offline"  # type: ignore[union-attr]  # its index is open
        _verify(project, question)
        assert other.ask(question).plan.planner == "example"  # type: ignore[union-attr]
    finally:
        other.close()


def test_every_answer_is_recorded_with_what_made_it(project: Lore) -> None:
    chat = project.chat(user="ana")
    first = chat.ask("streaming hours by region in 2026")
    follow = chat.ask("now only premium accounts")
    store = open_store(project)
    recorded = store.answer(first.id)
    assert recorded.question == first.question and recorded.user == "ana"
    assert recorded.plan == first.plan and recorded.sql == first.sql
    assert recorded.confidence == first.confidence and recorded.factors == first.confidence_factors
    assert recorded.result["rows"] == len(first.rows) and recorded.result["columns"][0]["name"] == first.columns[0].name
    assert recorded.model == "offline" and recorded.layer_version == project.layer.version
    assert recorded.context["today"] == "2026-11-01" and recorded.context["retrieved"]
    assert store.answer(follow.id).context["previous_questions"] == [first.question]


def test_a_failed_recording_is_logged_and_the_answer_kept(project: Lore, caplog: pytest.LogCaptureFixture) -> None:
    (project.project.state_dir / "feedback.sqlite").mkdir(parents=True)  # the store cannot open
    with caplog.at_level(logging.WARNING, logger="lore.feedback"):
        answer = project.ask("streaming hours in Brazil", user="ana")
    assert answer.status == "answered"
    assert any(f"answer {answer.id} was not recorded" in r.getMessage() for r in caplog.records)


def test_without_a_backend_feedback_is_an_operator_error(project: Lore) -> None:
    off = Lore.open(project.project.root, feedback=False)
    try:
        assert off.ask("streaming hours in Brazil").status == "answered"
        with pytest.raises(OperatorError, match="not available"):
            off.feedback("x", 1, user="ana")
        assert not (project.project.state_dir / "feedback.sqlite").exists()
    finally:
        off.close()


def test_few_shot_examples_for_the_llm_planner(project: Lore) -> None:
    assert project.examples.nearest("streaming hours by country") == []
    _verify(project, "streaming hours by region in 2026")
    shots = project.examples.nearest("how many hours did people stream in each country last year", k=2)
    assert [s.question for s in shots] == ["streaming hours by region in 2026"]


def test_a_verified_sql_correction_answers_through_the_guard(project: Lore, raw_db: Any) -> None:
    question = "how many titles are in the catalogue"
    first = project.ask(question, user="ana")
    vote = project.feedback(first.id, -1, user="ana", correction="SELECT COUNT(*) AS titles FROM titles")
    review.approve(open_store(project), vote.nomination_id or "", reviewer="ben")
    again = project.ask("How many titles are in the catalogue?", user="bob")
    assert again.status == "answered" and again.plan is not None and again.plan.planner == "example"
    assert again.rows == ((raw_db.execute("SELECT COUNT(*) FROM titles").fetchone()[0],),)
    assert again.sql is not None and "LIMIT" in again.sql  # regenerated by the guard, not the stored text
