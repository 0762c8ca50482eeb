"""``lore feedback seed``: a file of questions and plans becomes verified examples, on a copy of the demo project."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from feedback.cli import register
from feedback.seed import computes, seed
from feedback.store import open_store
from lore import Lore
from lore.cli import app as lore_app
from lore.onboard.examples import parse_seed, read_seed_file
from lore.types import QueryPlan

RIGHT = "total streaming hours by region in 2026"
DIFFERENT = "game installs by platform in 2026"

SEEDS = dedent("""
    # one the planner answers right, one it answers otherwise (by quarter too)
    - question: total streaming hours by region in 2026
      plan:
        metrics: [total_streaming_hours]
        dimensions: [countries.region]
        time: {start: 2026-01-01, end: 2026-12-31}
    - question: game installs by platform in 2026
      note: installs are read by quarter here
      plan:
        metrics: [game_installs]
        dimensions: [game_installs.platform, "metric_time:quarter"]
        time: {start: 2026-01-01, end: 2026-12-31, label: "2026"}
""")

BROKEN = dedent("""
    - question: cloud spend by team in 2026
      plan: {metrics: [cloud_spend_total], dimensions: [countries.region]}
""")


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """lore"""

    register(app)
    return app


def _run(app: typer.Typer, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output + (repr(result.exception) if result.exception else "")
    return result.output


def _seed(cli: typer.Typer, project: Lore, path: Path, code: int = 0) -> dict[str, Any]:
    out = _run(cli, "feedback", "seed", str(path), "--as", "ana", "--project", str(project.project.root), "--json",
               code=code)
    return {r["question"]: r for r in json.loads(out)}


def _plan(text: str, number: int) -> QueryPlan:
    entry = parse_seed(text)[number]
    assert entry.example is not None, entry.problem
    return entry.example.plan


def test_seeded_examples_are_verified_and_answer_their_questions(cli: typer.Typer, project: Lore,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "seeds.yaml"
    path.write_text(SEEDS, encoding="utf-8")
    before = project.ask(DIFFERENT, user="bo")
    assert before.plan is not None and computes(before.plan) != computes(_plan(SEEDS, 1))

    results = _seed(cli, project, path)
    assert {q: r["outcome"] for q, r in results.items()} == {RIGHT: "already_right", DIFFERENT: "corrected"}
    store = open_store(project)
    verified = {n.question: n for n in store.nominations("verified")}
    assert set(verified) == {RIGHT, DIFFERENT}
    assert {n.decided_by for n in verified.values()} == {"ana"}
    assert verified[DIFFERENT].source == "correction"

    for question, number in ((RIGHT, 0), (DIFFERENT, 1), ("Game installs per platform for 2026?", 1)):
        answer = project.ask(question, user="cy")
        assert answer.status == "answered" and answer.plan is not None, question
        assert answer.plan.planner == "example", question
        assert computes(answer.plan) == computes(_plan(SEEDS, number)), question
        assert answer.plan.groundings[0].kind == "example"
    asked = json.loads(_run(lore_app, "ask", DIFFERENT, "--json", "--project", str(project.project.root)))
    assert asked["plan"]["groundings"][0]["kind"] == "example"
    assert asked["plan"]["dimensions"] == ["game_installs.platform", "metric_time:quarter"]

    events = store.stats().events
    again = _seed(cli, project, path)
    assert {r["outcome"] for r in again.values()} == {"already_verified"}
    assert store.stats().events == events
    assert {r["nomination_id"] for r in again.values()} == {n.id for n in verified.values()}


def test_a_broken_example_fails_and_nothing_else_is_affected(cli: typer.Typer, project: Lore, tmp_path: Path) -> None:
    path = tmp_path / "seeds.yaml"
    path.write_text(SEEDS + BROKEN, encoding="utf-8")
    results = _seed(cli, project, path, code=1)
    broken = results["cloud spend by team in 2026"]
    assert broken["outcome"] == "failed" and broken["nomination_id"] is None
    assert "cloud_spend_total" in broken["reason"]
    assert {results[RIGHT]["outcome"], results[DIFFERENT]["outcome"]} == {"already_right", "corrected"}
    store = open_store(project)
    assert not store.pairs_for("cloud spend by team in 2026")  # never asked, never voted
    assert {n.question for n in store.nominations("verified")} == {RIGHT, DIFFERENT}
    assert store.nominations("pending") == []

    text = _run(cli, "feedback", "seed", str(path), "--as", "ana", "--project", str(project.project.root), code=1)
    assert "already verified" in text and "failed" in text


def test_the_file_is_read_with_every_problem_and_the_operator_must_be_a_reviewer(project: Lore,
                                                                                 tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(dedent("""
        examples:
          - question: orders
          - {question: x, plan: {metrics: [m], colour: red}}
          - {question: y, plan: {sql: "SELECT 1"}}
          - {question: z, plan: {metrics: [m]}, owner: ana}
    """), encoding="utf-8")
    problems = [e.problem for e in read_seed_file(path)]
    assert "'plan' is missing" in problems[0] and "colour" in problems[1]
    assert "holds no sql" in problems[2] and "owner" in problems[3]

    (project.project.root / "feedback.yaml").write_text("reviewers: [ben]\n", encoding="utf-8")
    with Lore.open(project.project.root) as other:
        from lore.errors import OperatorError

        with pytest.raises(OperatorError, match="not a reviewer"):
            seed(other, open_store(other), [], operator="ana")
