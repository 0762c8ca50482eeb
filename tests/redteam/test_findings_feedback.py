"""Red-team findings against learning from feedback, replayed on copies of the demo project.

Each test replays one finding the way a hostile or careless user would, through the public doors
(``Lore.ask``, ``Lore.feedback``, ``feedback.review``, the ``lore`` and ``lore feedback`` commands), and
checks the effect: what was verified, what a voter was told, and what later answers run. Several
``Lore`` objects opened on one project stand for several processes (each has its own memory cache and
index; they share the project's files: the feedback store and the answer cache on disk).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from feedback import review
from feedback.cli import register
from feedback.store import MIGRATIONS, FeedbackStore, open_store
from lore import Lore
from lore.cli import app as lore_app
from lore.errors import AskerError, OperatorError
from lore.types import Filter, QueryPlan, TimeWindow

YEAR_2026 = TimeWindow(start=date(2026, 1, 1), end=date(2026, 12, 31), label="2026")
#: the access section of the red-team pass: ana sees four streaming metrics, EMEA rows only; bob sees everything
ACCESS = {
    "default": "none",
    "groups": {
        "emea_viewers": {
            "members": ["ana"],
            "metrics": ["total_streaming_hours", "streaming_session_count", "active_streaming_accounts",
                        "hours_per_streaming_account"],
            "hide_dimensions": ["accounts.age_band"],
            "rows": ["countries.region = 'EMEA'"],
        },
    },
    "users": {
        "ana": {"identities": ["slack:T1:UANA"]},
        "bob": {"unrestricted": True},
    },
}
ANA_SLACK = "slack:T1:UANA"


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(demo_dir: Path, demo_lore: Lore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo project with its own retrieval index (built once, with the session's warm embedder)."""
    from lore.retrieve import Retriever

    folder = tmp_path_factory.mktemp("redteam-feedback") / "project"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns("index", "feedback.sqlite*", "answers.sqlite*"))
    with Lore.open(folder) as lore:
        Retriever.open(lore.project.state_dir / "index", lore.layer, lore.values, embedder=demo_lore.retriever.embedder)
    return folder


@pytest.fixture
def folder(template: Path, demo_lore: Lore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the template; every index opened in the test reuses the session's embedder."""
    import lore.retrieve.index as index_module

    root = tmp_path / "project"
    shutil.copytree(template, root)
    embedder = demo_lore.retriever.embedder
    monkeypatch.setattr(index_module, "Embedder", lambda *a, **k: embedder)
    return root


@pytest.fixture
def project(folder: Path) -> Iterator[Lore]:
    with Lore.open(folder) as lore:
        yield lore


def _with_access(root: Path, policy: str) -> None:
    config = yaml.safe_load((root / "lore.yaml").read_text())
    config["access"] = ACCESS
    (root / "lore.yaml").write_text(yaml.safe_dump(config))
    (root / "feedback.yaml").write_text(policy, encoding="utf-8")


@pytest.fixture
def guarded_project(folder: Path) -> Iterator[Lore]:
    """The demo project with the red-team access section and ``trusted_users: [ana]``."""
    _with_access(folder, "trusted_users: [ana]\nreviewers: [Ben]\n")
    with Lore.open(folder) as lore:
        yield lore


def _feedback_cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """lore"""

    register(app)
    return app


def _run(app: typer.Typer, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output + (repr(result.exception) if result.exception else "")
    return result.output


# --- F2: reviewed is what runs ------------------------------------------------------------------------------


TABLET_2026_SQL = """
    SELECT SUM(streaming_hours) AS hours FROM streaming_sessions
    WHERE device_type = 'tablet' AND session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31'
"""


def test_f2_a_correction_is_one_thing_and_the_review_shows_what_runs(project: Lore, raw_db: Any) -> None:
    """F2: a correction carrying a plan (tablet hours) and a different SQL (all hours) showed only the SQL in
    `lore feedback review`, was verified by running only the SQL, and then answered with the plan. Now the
    listing shows the plan and its compiled SQL, approval refuses a plan and SQL that disagree, and a pair
    whose SQL agrees with its plan answers with the plan that was checked."""
    question = "how big were tablets in 2026"
    first = project.ask(question, user="ana")
    tablet_plan = {"metrics": ["total_streaming_hours"], "time": YEAR_2026.model_dump(mode="json"),
                   "filters": [{"ref": "streaming_sessions.device_type", "values": ["tablet"]}]}
    all_devices = "SELECT SUM(streaming_hours) AS hours FROM streaming_sessions WHERE session_date >= DATE '2026-01-01'"
    vote = project.feedback(first.id, -1, user="ana", correction={**tablet_plan, "sql": all_devices})
    assert vote.correction is not None and vote.correction.kind == "both"
    pair = vote.nomination_id or ""

    folder = str(project.project.root)
    listed = json.loads(_run(_feedback_cli(), "feedback", "review", "--project", folder, "--json"))
    item = next(n for n in listed if n["id"] == pair)
    assert item["runs"]["kind"] == "both" and "tablet" in item["runs"]["sql"]  # the plan's compiled SQL
    assert item["runs"]["claimed_sql"] == all_devices and item["plan"]["sql"] is None
    table = _run(_feedback_cli(), "feedback", "review", "--project", folder)
    assert "its SQL:" in table and "'tablet'" in table and "total_streaming_hours" in table

    refused = CliRunner().invoke(_feedback_cli(), ["feedback", "review", "--approve", pair, "--reviewer", "ben",
                                                   "--project", folder])
    assert refused.exit_code == 1 and "different results" in refused.output  # a failed check
    store = open_store(project)
    with pytest.raises(AskerError, match="different results"):
        review.approve(store, pair, reviewer="ben")
    assert store.nomination(pair).status == "pending" and store.verified_examples() == []

    agreeing = project.feedback(first.id, -1, user="ana", correction={**tablet_plan, "sql": TABLET_2026_SQL})
    verified = review.approve(store, agreeing.nomination_id or "", reviewer="ben")
    assert verified.status == "verified" and verified.kind == "both"
    assert verified.verified_sql is not None and "tablet" in verified.verified_sql

    again = project.ask("How big were tablets in 2026?", user="bob")
    assert again.plan is not None and again.plan.planner == "example" and again.plan.sql is None
    assert again.plan.filters == (Filter(ref="streaming_sessions.device_type", values=("tablet",)),)
    assert again.rows[0][0] == pytest.approx(raw_db.execute(TABLET_2026_SQL).fetchone()[0])


def test_f2_f5_feedback_stored_before_keeps_working(tmp_path: Path) -> None:
    """F2 and F5, stored data: a feedback.sqlite written before (votes keyed by the name as typed; a verified
    pair whose plan carried its own SQL) opens through named migrations. The votes keep counting once per
    person, unverified; the pair that ran one thing after another was verified goes back to review, split
    into the plan that runs and the SQL it claims, and leaves the verified examples."""
    path = tmp_path / "feedback.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, statements in MIGRATIONS[:3]:  # the schema as it was
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO migrations VALUES (?, '2026-01-01')", (name,))
    both = QueryPlan(metrics=("total_streaming_hours",), planner="correction",
                     filters=(Filter(ref="streaming_sessions.device_type", values=("tablet",)),), sql="SELECT 1")
    con.execute("INSERT INTO events (id, idempotency_key, kind, actor, payload, digest, created_at) "
                "VALUES ('e1', 'k1', 'approve', 'ben', '{}', 'd', '2026-01-01')")
    con.execute("INSERT INTO pairs (id, question, question_key, plan, plan_key, sql, answer_id, source, status, "
                "status_seq, verified_sql, created_at, updated_at) VALUES ('p-legacy', 'q', 'q', ?, ?, NULL, 'a1', "
                "'correction', 'verified', 1, 'SELECT 1', '2026-01-01', '2026-01-01')",
                (both.model_dump_json(), both.key()))
    for user, seq in (("Mallory", 1), ("mallory ", 2), ("trent", 3)):
        con.execute("INSERT INTO pair_votes VALUES ('p-legacy', ?, 1, 'a1', ?)", (user, seq))
    con.execute("UPDATE state SET value = 1")
    con.commit()
    con.close()

    store = FeedbackStore(path)
    assert [n for n, _ in MIGRATIONS][3:] == ["004_vote_principals", "005_one_thing_per_pair"]
    pair = store.nomination("p-legacy")
    assert pair.status == "pending" and pair.kind == "both"
    assert pair.plan.sql is None and pair.sql == "SELECT 1" and pair.plan_key == both.model_copy(update={"sql": None}).key()
    assert sorted(v.principal for v in pair.up_voters) == ["mallory", "trent"]
    assert not any(v.verified for v in pair.up_voters)
    assert store.verified_examples() == [] and store.examples_revision() > 1
    assert store.integrity_check() == "ok"


# --- F3: learning follows revocation and new examples in every process ----------------------------------------------


def test_f3_every_process_sees_new_and_revoked_examples_at_once(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F3: the plan memo in .lore/answers.sqlite was keyed by an examples revision that stayed 0 until the
    retriever opened, and a memo hit never opened it: a fresh process kept answering from plans made before
    an example was verified, and kept a revoked example. Now the key holds the store's own revision, read in
    every process, through the Python API and the CLI."""
    monkeypatch.setenv("LORE_ANSWER_CACHE_DISK_MB", "64")  # the memo shared through the project's file
    question = "streaming hours by device type in 2026"
    first = Lore.open(folder)
    second = Lore.open(folder)
    try:
        asked = first.ask(question, user="ana")
        assert asked.plan is not None and asked.plan.planner == "offline"

        # the other process verifies a correction for this question
        answer = second.ask(question, user="ana")
        assert answer.trace is not None and answer.trace.plan_cache_hit  # from the shared memo
        fixed = QueryPlan(metrics=("streaming_session_count",), dimensions=("streaming_sessions.device_type",),
                          time=YEAR_2026)
        vote = second.feedback(answer.id, -1, user="ana", correction=fixed)
        review.approve(open_store(second), vote.nomination_id or "", reviewer="ben")

        fresh = Lore.open(folder)  # a process that answers from the memo
        try:
            learned = fresh.ask(question, user="bob")
            assert learned.plan is not None and learned.plan.planner == "example"
            assert learned.plan.metrics == ("streaming_session_count",)
            assert first.ask(question, user="bob").plan.planner == "example"  # type: ignore[union-attr]
            cli = json.loads(_run(lore_app, "ask", question, "--json", "--project", str(folder)))
            assert cli["plan"]["planner"] == "example"

            again = Lore.open(folder)  # answers from the memo without opening the index
            try:
                memo = again.ask(question, user="cy")
                assert memo.trace is not None and memo.trace.plan_cache_hit and not again.parts.opened("retriever")
                assert memo.plan is not None and memo.plan.planner == "example"

                review.revoke(open_store(first), vote.nomination_id or "", reviewer="ben", reason="wrong metric")
                for process in (again, fresh, second, first):
                    after = process.ask(question, user="cy")
                    assert after.plan is not None and after.plan.planner == "offline", process
                    assert after.plan.metrics == ("total_streaming_hours",)
                cli = json.loads(_run(lore_app, "ask", question, "--json", "--project", str(folder)))
                assert cli["plan"]["planner"] == "offline"
            finally:
                again.close()
        finally:
            fresh.close()
    finally:
        first.close()
        second.close()


# --- F4: verification runs in the voter's scope ----------------------------------------------------------------------


LEAKY_SQL = "SELECT CAST(team_name || '|' || CAST(cost_usd AS VARCHAR) AS INTEGER) AS x FROM cloud_costs"
CLOUD_SQL = "SELECT team_name, SUM(cost_usd) AS cost FROM cloud_costs GROUP BY team_name"


def test_f4_a_voters_correction_is_verified_in_their_scope_and_errors_quote_no_data(
        guarded_project: Lore, raw_db: Any) -> None:
    """F4: with `trusted_users: [ana]`, ana's correction SQL over cloud costs (a table she may not see) was
    verified with the operator's access, and a failing one came back with an engine error quoting cloud-cost
    rows. Now verification runs in ana's scope: both are refused, and her note names no warehouse value."""
    lore = guarded_project
    teams = [r[0] for r in raw_db.execute("SELECT DISTINCT team_name FROM cloud_costs").fetchall()]
    asked = lore.ask("streaming hours by region in 2025", user="ana")
    assert asked.status == "answered" and {r[0] for r in asked.rows} == {"EMEA"}

    leaky = lore.feedback(asked.id, -1, user="ana", verified=True, correction=LEAKY_SQL)
    assert leaky.nomination_status == "pending"
    note = leaky.note or ""
    assert "not verified" in note
    assert not any(team in note for team in teams), note
    assert "|" not in note and "Conversion" not in note

    # a failing query over a table she may read: the engine's message quotes a row, so the note says only that it failed
    own = lore.feedback(asked.id, -1, user="ana", verified=True,
                        correction="SELECT CAST(country_name || '|' || region AS INTEGER) AS x FROM countries")
    countries = [r[0] for r in raw_db.execute("SELECT country_name FROM countries").fetchall()]
    assert own.nomination_status == "pending" and "failed when it ran" in (own.note or "")
    assert not any(name in (own.note or "") for name in countries), own.note

    broad = lore.feedback(asked.id, -1, user="ana", verified=True, correction=CLOUD_SQL)
    assert broad.nomination_status == "pending" and "not verified" in (broad.note or "")
    assert not any(team in (broad.note or "") for team in teams)
    store = open_store(lore)
    assert store.verified_examples() == []

    # the operator (a reviewer) can still check the same SQL with the project's access
    assert review.approve(store, broad.nomination_id or "", reviewer="Ben").status == "verified"


def test_f4_an_example_answers_only_where_its_plan_is_valid_in_the_askers_scope(guarded_project: Lore) -> None:
    """F4: a correction over cloud costs, verified for a streaming question, answered other people with
    cloud-cost rows. An example verified in one scope must answer only askers in whose scope its plan runs:
    bob and the operator get it; ana, who may not read cloud costs, gets her own streaming answer."""
    lore = guarded_project
    question = "streaming hours by region in 2025"
    asked = lore.ask(question, user="bob")
    vote = lore.feedback(asked.id, -1, user="bob", verified=True, correction=CLOUD_SQL)
    review.approve(open_store(lore), vote.nomination_id or "", reviewer="Ben")
    cost_plan = QueryPlan(metrics=("cloud_cost",), dimensions=("teams.team_name",))
    other = lore.ask("cloud cost by team", user="bob")
    assert other.plan is not None and other.plan.key() == cost_plan.key()
    review.approve(open_store(lore), lore.feedback(other.id, +1, user="bob").nomination_id or "", reviewer="Ben")

    for who in ("bob", None):
        reused = lore.ask(question, user=who)
        assert reused.plan is not None and reused.plan.planner == "example", who
    mine = lore.ask(question, user=ANA_SLACK)
    assert mine.status == "answered" and mine.plan is not None and mine.plan.planner != "example"
    assert mine.plan.metrics == ("total_streaming_hours",) and {r[0] for r in mine.rows} == {"EMEA"}
    costs = lore.ask("cloud cost by team", user="ana")
    assert costs.plan is None or costs.plan.planner != "example"
    assert costs.status != "answered"
    scoped = lore.for_user("ana")
    assert scoped.examples.nearest(question, k=3) == []


# --- F5: votes count per verified principal --------------------------------------------------------------------------


def test_f5_votes_count_once_per_verified_person(project: Lore) -> None:
    """F5: with `auto_verify_min_users: 3`, the same correction sent as `mallory`, `Mallory` and `mallory2`
    was verified: voters were free-text names, compared case-sensitively. Now votes count per person, and only
    votes whose identity an authenticated channel vouched for count toward the rule."""
    (project.project.root / "feedback.yaml").write_text("auto_verify_min_users: 3\n", encoding="utf-8")
    answer = project.ask("how many titles are in the catalogue", user="mallory")
    fix = "SELECT COUNT(*) AS titles FROM titles"
    votes = [project.feedback(answer.id, -1, user=name, correction=fix) for name in ("mallory", "Mallory", "mallory2")]
    assert [v.nomination_status for v in votes] == ["pending"] * 3
    assert [v.verified for v in votes] == [False] * 3 and votes[0].principal == votes[1].principal == "mallory"
    store = open_store(project)
    pair = store.nomination(votes[0].nomination_id or "")
    assert sorted(v.principal for v in pair.up_voters) == ["mallory", "mallory2"]

    # signed-in votes: the same person under two spellings still counts once
    for name in ("mallory", " MALLORY", "mallory2"):
        assert project.feedback(answer.id, -1, user=name, correction=fix, verified=True).nomination_status == "pending"
    done = project.feedback(answer.id, -1, user="trent", correction=fix, verified=True)
    assert done.nomination_status == "verified" and "3 distinct verified users" in (done.note or "")


def test_f5_trusted_users_and_reviewers_are_matched_as_people(guarded_project: Lore) -> None:
    """F5: trusted users and reviewers were matched by the raw string. Now `trusted_users: [ana]` matches ana
    under any of her identities, only when the identity was verified; `reviewers: [Ben]` matches ` ben `."""
    lore = guarded_project
    asked = lore.ask("streaming hours by region in 2026", user="ana")
    assert lore.feedback(asked.id, +1, user="ana").nomination_status == "pending"  # typed, not signed in
    trusted = lore.feedback(asked.id, +1, user="SLACK:t1:uana", verified=True)
    assert trusted.principal == "user:ana" and trusted.nomination_status == "verified"
    store = open_store(lore)
    assert [v.principal for v in store.nomination(trusted.nomination_id or "").up_voters] == ["user:ana"]
    review.revoke(store, trusted.nomination_id or "", reviewer=" ben ")
    with pytest.raises(OperatorError, match="not a reviewer"):
        review.approve(store, trusted.nomination_id or "", reviewer="ana")
