"""``lore feedback ...`` through Typer's CliRunner, on a copy of the demo project."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from feedback.cli import register
from feedback.export import validate_file
from lore import Lore
from lore.cli import app as lore_app


@pytest.fixture
def cli() -> typer.Typer:
    """A `lore`-like app with only the feedback commands registered (as the entry point does)."""
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


def test_the_commands_are_registered_through_entry_points() -> None:
    commands = {ep.name: ep for ep in entry_points(group="lore.commands")}
    assert commands["feedback"].load() is register
    plugins = {ep.name: ep for ep in entry_points(group="lore.plugins")}
    assert plugins["feedback"].value == "feedback.store:open_backend"


def test_help_lists_every_command(cli: typer.Typer) -> None:
    out = _run(cli, "feedback", "--help")
    for command in ("vote", "review", "seed", "export", "stats"):
        assert command in out
    assert "--approve" in _run(cli, "feedback", "review", "--help")


def test_vote_review_export_stats(cli: typer.Typer, project: Lore, tmp_path: Path) -> None:
    folder = str(project.project.root)
    asked = json.loads(_run(lore_app, "ask", "streaming hours by region in 2026", "--json", "--project", folder))
    vote = json.loads(_run(cli, "feedback", "vote", asked["id"], "--up", "--user", "ana", "--key", "k1",
                           "--project", folder, "--json"))
    assert vote["nomination_status"] == "pending" and vote["duplicate"] is False
    retry = json.loads(_run(cli, "feedback", "vote", asked["id"], "--up", "--user", "ana", "--key", "k1",
                            "--project", folder, "--json"))
    assert retry["duplicate"] is True and retry["id"] == vote["id"]
    pid = vote["nomination_id"]

    listed = _run(cli, "feedback", "review", "--project", folder)
    assert pid in listed and "pending" in listed
    assert [n["id"] for n in json.loads(_run(cli, "feedback", "review", "--project", folder, "--json"))] == [pid]
    assert f"{pid} is verified (by ben)" in _run(cli, "feedback", "review", "--approve", pid, "--reviewer", "ben",
                                                 "--project", folder)
    assert "Nothing to review." in _run(cli, "feedback", "review", "--project", folder)

    out = tmp_path / "ft.jsonl"
    report = json.loads(_run(cli, "feedback", "export", "--format", "openai-chat", "--out", str(out),
                             "--project", folder, "--json"))
    assert report["rows"] == {"all": 1} and validate_file(out, "openai-chat") == 1
    assert "Wrote 0 preference rows" in _run(cli, "feedback", "export", "--format", "preference", "--out",
                                             str(tmp_path / "p.jsonl"), "--project", folder)
    stats = json.loads(_run(cli, "feedback", "stats", "--project", folder, "--json"))
    assert (stats["answers"], stats["votes"], stats["pairs"]["verified"]) == (1, 1, 1)
    assert "thumbs up" in _run(cli, "feedback", "stats", "--project", folder)

    assert "revoked" in _run(cli, "feedback", "review", "--revoke", pid, "--reviewer", "ben", "--reason", "stale",
                             "--project", folder)
    assert json.loads(_run(cli, "feedback", "export", "--out", str(out), "--project", folder, "--json"))["rows"] == {"all": 0}


def test_corrections_from_the_command_line(cli: typer.Typer, project: Lore, tmp_path: Path) -> None:
    folder = str(project.project.root)
    answer = project.ask("streaming hours by region in 2026", user="ana")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"metrics": ["active_streaming_accounts"], "dimensions": ["countries.region"]}))
    fixed = json.loads(_run(cli, "feedback", "vote", answer.id, "--down", "--user", "ana", "--correct-plan", str(plan),
                            "--project", folder, "--json"))
    assert fixed["correction"]["plan"]["metrics"] == ["active_streaming_accounts"]
    bad = json.loads(_run(cli, "feedback", "vote", answer.id, "--down", "--user", "bob", "--correct-sql",
                          "SELECT * FROM read_csv('/etc/passwd')", "--project", folder, "--json"))
    out = _run(cli, "feedback", "review", "--approve", bad["nomination_id"], "--reviewer", "ben", "--project", folder,
               code=1)  # the guard refuses: a failed check
    assert "Refused by the SQL guard" in out
    assert "verified" in _run(cli, "feedback", "review", "--approve", fixed["nomination_id"], "--reviewer", "ben",
                              "--project", folder)


@pytest.mark.parametrize("args", [
    ("vote", "x", "--up", "--down", "--user", "a"),
    ("vote", "x", "--up"),
    ("vote", "no-such-answer", "--up", "--user", "a"),
    ("review", "--approve", "p-000000000000", "--reviewer", "ben"),
    ("review", "--approve", "a", "--reject", "b"),
    ("export", "--format", "csv", "--out", "x.jsonl"),
    ("export", "--split", "1.5", "--out", "x.jsonl"),
])
def test_misuse_exits_2_with_a_message(cli: typer.Typer, project: Lore, args: tuple[str, ...]) -> None:
    out = _run(cli, "feedback", *args, "--project", str(project.project.root), code=2)
    assert "Error:" in out
