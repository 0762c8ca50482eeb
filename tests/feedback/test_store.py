"""The feedback store on its own: schema, durability settings, idempotency, votes per user, penalties, policy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from feedback_fixtures import make_answer

from feedback.policy import FeedbackPolicy, load_policy
from feedback.store import MIGRATIONS, FeedbackStore
from lore.errors import AskerError, ConfigError, OperatorError, UnknownReference
from lore.plugins import Correction, FeedbackBackend
from lore.project import Project
from lore.types import Filter, Grounding, QueryPlan


@pytest.fixture
def store(fast_dir: Path) -> FeedbackStore:
    s = FeedbackStore(fast_dir / ".lore" / "feedback.sqlite")
    s.record_answer(make_answer("a1"))
    return s


def _raw(store: FeedbackStore) -> sqlite3.Connection:
    return sqlite3.connect(store.path)


# --- schema and durability -------------------------------------------------------------------


def test_store_is_a_feedback_backend(store: FeedbackStore) -> None:
    assert isinstance(store, FeedbackBackend)


def test_named_migrations_apply_once_in_order(store: FeedbackStore) -> None:
    con = _raw(store)
    applied = con.execute("SELECT name, applied_at FROM migrations ORDER BY rowid").fetchall()
    assert [name for name, _ in applied] == [name for name, _ in MIGRATIONS]
    again = FeedbackStore(store.path)
    again.stats()  # opening again applies nothing new
    assert con.execute("SELECT name, applied_at FROM migrations ORDER BY rowid").fetchall() == applied


def test_wal_full_sync_and_busy_timeout(store: FeedbackStore) -> None:
    con = store._conn()
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert con.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_answer_records_skip_the_disk_flush_and_votes_keep_it(store: FeedbackStore,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer record commits with synchronous=NORMAL, then the connection is FULL again for votes."""
    con = store._conn()
    seen: list[int] = []
    real_write = store._connections.write

    def watched():  # the synchronous level each write transaction ran with
        seen.append(con.execute("PRAGMA synchronous").fetchone()[0])
        return real_write()

    monkeypatch.setattr(store._connections, "write", watched)
    store.record_answer(make_answer("sync1"))
    store.vote("sync1", 1, user="ana", idempotency_key="sync-k1")
    assert seen[0] == 1 and seen[-1] == 2  # NORMAL for the answer, FULL for the vote
    assert con.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert _raw(store).execute("SELECT COUNT(*) FROM answers WHERE id = 'sync1'").fetchone()[0] == 1


def test_events_are_append_only(store: FeedbackStore) -> None:
    store.vote("a1", 1, user="ana", idempotency_key="k1")
    con = _raw(store)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE events SET actor = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM events")
    assert con.execute("SELECT actor FROM events").fetchall() == [("ana",)]


def test_a_vote_is_committed_when_it_returns(store: FeedbackStore) -> None:
    vote = store.vote("a1", 1, user="ana", comment="right on")
    con = _raw(store)  # another connection sees it at once: it was committed before vote() returned
    row = con.execute("SELECT id, kind, actor FROM events WHERE idempotency_key = ?", (vote.idempotency_key,)).fetchone()
    assert row == (vote.id, "vote", "ana")


def test_record_answer_is_idempotent_and_keeps_the_conversation(store: FeedbackStore) -> None:
    store.record_answer(make_answer("a1"))
    store.record_answer(make_answer("c1", "streaming hours by region", conversation_id="conv"))
    follow = make_answer("c2", "now only premium", conversation_id="conv",
                         plan=QueryPlan(metrics=("total_streaming_hours",),
                                        groundings=(Grounding(kind="context", ref="x", phrase="previous question",
                                                              source="previous turn"),)))
    store.record_answer(follow)
    assert store.stats().answers == 3
    recorded = store.answer("c2")
    assert recorded.context["previous_questions"] == ["streaming hours by region"]
    assert recorded.context["followup"] is True
    assert recorded.result == {"columns": [{"name": "total_streaming_hours", "label": "Streaming hours", "kind": "metric"}],
                               "rows": 1, "truncated": False, "chart_kind": None}
    assert recorded.factors == {"metric": 1.0, "execution": 1.0}


# --- votes ------------------------------------------------------------------------------------


def test_idempotent_retry_returns_the_stored_vote(store: FeedbackStore) -> None:
    first = store.vote("a1", 1, user="ana", idempotency_key="slack-evt-1")
    retry = store.vote("a1", 1, user="ana", idempotency_key="slack-evt-1")
    assert retry.duplicate and not first.duplicate
    assert retry.id == first.id and retry.nomination_id == first.nomination_id
    assert store.stats().votes == 1
    with pytest.raises(OperatorError, match="already used for a different event"):
        store.vote("a1", -1, user="ana", idempotency_key="slack-evt-1")
    assert store.stats().votes == 1


@pytest.mark.parametrize("rating", [0, 2, True, "up"])
def test_bad_ratings_are_refused(store: FeedbackStore, rating: object) -> None:
    with pytest.raises(AskerError, match="rating"):
        store.vote("a1", rating, user="ana")  # type: ignore[arg-type]


def test_votes_need_a_user_and_a_recorded_answer(store: FeedbackStore) -> None:
    with pytest.raises(AskerError, match="user"):
        store.vote("a1", 1, user=" ")
    with pytest.raises(UnknownReference, match="nope"):
        store.vote("nope", 1, user="ana")
    with pytest.raises(AskerError, match="thumbs down"):
        store.vote("a1", 1, user="ana", correction="SELECT 1")
    assert store.stats().votes == 0


def test_fifty_votes_from_one_user_count_once(fast_dir: Path) -> None:
    store = FeedbackStore(fast_dir / "f.sqlite", policy=FeedbackPolicy(auto_verify_min_users=2))
    for i in range(50):  # the same question and plan, asked and voted 50 times by one user
        store.record_answer(make_answer(f"a{i}", "Total streaming hours in Brazil?"))
        vote = store.vote(f"a{i}", 1, user="mallory", verified=True)
    nomination = store.nomination(vote.nomination_id or "")
    assert nomination.up_users == ("mallory",)
    assert nomination.status == "pending"  # one untrusted user cannot push it through alone
    assert vote.note == "Nominated: it teaches LORE once a reviewer approves it."
    assert store.stats().votes == 50 and store.verified_examples() == []


def test_a_users_latest_vote_replaces_the_earlier_one(store: FeedbackStore) -> None:
    up = store.vote("a1", 1, user="ana")
    store.vote("a1", -1, user="ana")
    store.vote("a1", 1, user="ben")
    nomination = store.nomination(up.nomination_id or "")
    assert nomination.up_users == ("ben",) and nomination.down_users == ("ana",)


def test_follow_ups_and_unanswered_questions_are_not_nominated(store: FeedbackStore) -> None:
    plan = QueryPlan(metrics=("total_streaming_hours",),
                     groundings=(Grounding(kind="context", ref="x", phrase="previous question", source="previous turn"),))
    store.record_answer(make_answer("f1", "now only premium", plan=plan))
    store.record_answer(make_answer("c1", "how is it going", status="clarify"))
    follow = store.vote("f1", 1, user="ana")
    clarify = store.vote("c1", 1, user="ana")
    assert follow.nomination_id is None and "Follow-up" in (follow.note or "")
    assert clarify.nomination_id is None and "Only answered" in (clarify.note or "")
    assert store.nominations(None) == []


def test_a_correction_nominates_the_corrected_pair(store: FeedbackStore) -> None:
    fixed = QueryPlan(metrics=("total_streaming_hours",),
                      filters=(Filter(ref="countries.country_name", values=("Brazil",)),
                               Filter(ref="accounts.plan", values=("premium",))))
    vote = store.vote("a1", -1, user="ana", correction=fixed, comment="premium only")
    assert vote.correction == Correction(plan=fixed)
    nomination = store.nomination(vote.nomination_id or "")
    assert (nomination.status, nomination.source, nomination.corrects) == ("pending", "correction", ("a1",))
    assert nomination.plan.filters == fixed.filters and nomination.plan.planner == "correction"
    assert nomination.up_users == ("ana",)
    # the rejected answer's own pair got the thumbs down (it is not nominated)
    rejected = [n for n in store.nominations("none")]
    assert len(rejected) == 1 and rejected[0].down_users == ("ana",)
    same = store.vote("a1", -1, user="ben", correction=make_answer().plan)
    assert same.nomination_id is None and "same as the answer" in (same.note or "")


def test_sql_corrections_are_stored_as_sql_plans(store: FeedbackStore) -> None:
    vote = store.vote("a1", -1, user="ana", correction="SELECT 42 AS answer")
    nomination = store.nomination(vote.nomination_id or "")
    assert nomination.plan.sql == "SELECT 42 AS answer" and nomination.sql == "SELECT 42 AS answer"


# --- decisions, examples and penalties ------------------------------------------------------------


def test_decisions_follow_the_state_machine(store: FeedbackStore) -> None:
    pid = store.vote("a1", 1, user="ana").nomination_id or ""
    with pytest.raises(OperatorError, match="reject it instead"):
        store.decide(pid, "revoke", actor="ben")
    before = store.examples_revision()
    store.decide(pid, "approve", actor="ben", verified_sql="SELECT 1")
    assert store.examples_revision() > before
    with pytest.raises(OperatorError, match="revoke it instead"):
        store.decide(pid, "reject", actor="ben")
    with pytest.raises(UnknownReference):
        store.decide("p-000000000000", "approve", actor="ben")
    changes = store.example_changes(before)
    assert [e.id for e in changes.verified] == [pid] and changes.removed == ()
    mid = store.examples_revision()
    store.decide(pid, "revoke", actor="ben", reason="wrong")
    changes = store.example_changes(mid)
    assert changes.verified == () and changes.removed == (pid,) and changes.revision > mid
    assert store.verified_examples() == []


def test_a_verified_pair_replaces_the_earlier_one_for_the_same_question(store: FeedbackStore) -> None:
    old = store.vote("a1", 1, user="ana").nomination_id or ""
    store.decide(old, "approve", actor="ben", verified_sql="SELECT 1")
    fixed = QueryPlan(metrics=("active_streaming_accounts",),
                      filters=(Filter(ref="countries.country_name", values=("Brazil",)),))
    new = store.vote("a1", -1, user="cy", correction=fixed).nomination_id or ""
    store.decide(new, "approve", actor="ben", verified_sql="SELECT 2")
    assert store.nomination(old).status == "revoked" and store.nomination(old).reason == f"replaced by {new}"
    assert [e.id for e in store.verified_examples()] == [new]


def test_a_thumbs_down_penalises_similar_questions_with_the_same_plan(store: FeedbackStore) -> None:
    plan_key = make_answer().plan.key()  # type: ignore[union-attr]
    assert store.penalty("streaming hours in Brazil", plan_key) is None
    store.vote("a1", -1, user="bob")
    assert store.penalty("how many streaming hours in Brazil?", plan_key) == 0.6
    assert store.penalty("game installs by platform", plan_key) is None  # not similar
    assert store.penalty("total streaming hours in Brazil", QueryPlan(metrics=("game_installs",)).key()) is None
    pid = store.nominations("none")[0].id
    store.decide(pid, "approve", actor="reviewer", verified_sql="SELECT 1")  # a reviewer vouched for it since
    assert store.penalty("total streaming hours in Brazil", plan_key) is None
    store.vote("a1", -1, user="cy")  # voted down again after the review
    assert store.penalty("total streaming hours in Brazil", plan_key) == 0.6


def test_stats_count_votes_and_pairs(store: FeedbackStore) -> None:
    store.vote("a1", 1, user="ana")
    store.vote("a1", -1, user="bob", correction="SELECT 2")
    stats = store.stats()
    assert (stats.answers, stats.votes, stats.up, stats.down, stats.corrections, stats.voters) == (1, 2, 1, 1, 1, 2)
    assert stats.pairs["pending"] == 2


def test_an_unwritable_store_is_an_operator_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OperatorError, match="feedback store"):
        FeedbackStore(blocker / "feedback.sqlite").stats()


# --- policy -----------------------------------------------------------------------------------------


def _project(tmp_path: Path, lore_yaml: str, feedback_yaml: str | None = None) -> Project:
    (tmp_path / "lore.yaml").write_text(lore_yaml, encoding="utf-8")
    if feedback_yaml is not None:
        (tmp_path / "feedback.yaml").write_text(feedback_yaml, encoding="utf-8")
    return Project.open(tmp_path)


def test_policy_from_feedback_yaml_or_lore_yaml(tmp_path: Path) -> None:
    assert load_policy(_project(tmp_path, "name: p\n")) == FeedbackPolicy()
    policy = load_policy(_project(tmp_path, "name: p\nfeedback:\n  trusted_users: [ana]\n  auto_verify_min_users: 3\n"))
    assert policy.trusted_users == ("ana",) and policy.auto_verify_min_users == 3
    with pytest.raises(ConfigError, match="set twice"):
        load_policy(_project(tmp_path, "name: p\nfeedback:\n  penalty: 0.5\n", "penalty: 0.7\n"))
    policy = load_policy(_project(tmp_path, "name: p\n", "reviewers: ben\npenalty: 0.7\n"))
    assert policy.reviewers == ("ben",) and policy.penalty == 0.7


@pytest.mark.parametrize("text", ["auto_verify_min_users: 1\n", "penalty: 1.5\n", "trusted: [ana]\n", "- a\n", "a: [\n"])
def test_bad_policies_are_config_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_policy(_project(tmp_path, "name: p\n", text))
