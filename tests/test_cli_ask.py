"""``lore ask``: questions from the command line, answers checked against hand-written SQL.

Runs the real Typer app in-process on the session's demo project (today pinned
to 2026-11-01 by its lore.yaml); ``raw_db`` is a plain DuckDB copy for the
reference SQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from lore.cli import app

REGION_2026 = """SELECT c.region, SUM(s.streaming_hours) FROM streaming_sessions s
    JOIN accounts a ON a.account_id = s.account_id
    JOIN countries c ON c.country_iso_code = a.country_iso_code
    WHERE s.session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31' {extra} GROUP BY c.region"""


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def rows_by_kind(payload: dict) -> dict[str, float]:
    """{first dimension value: first metric value} from an answer's JSON."""
    kinds = [c["kind"] for c in payload["columns"]]
    d, m = kinds.index("dimension"), kinds.index("metric")
    return {row[d]: row[m] for row in payload["rows"]}


def expected(raw_db: Any, sql: str) -> dict[str, float]:
    return {k: v for k, v in raw_db.execute(sql).fetchall()}


def assert_same(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key


def test_ask_json_matches_hand_sql(demo_dir: Any, raw_db: Any) -> None:
    out = run("ask", "--project", str(demo_dir), "--json", "streaming hours by region in 2026")
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["status"] == "answered" and payload["sql"]
    assert payload["chart_kind"] == "bar" and payload["confidence"] >= 0.8
    assert "trace" not in payload
    assert_same(rows_by_kind(payload), expected(raw_db, REGION_2026.format(extra="")))


def test_several_questions_are_one_conversation(demo_dir: Any, raw_db: Any) -> None:
    out = run("ask", "--project", str(demo_dir), "--json", "--user", "ana",
              "streaming hours by region in 2026", "now only for premium accounts")
    assert out.exit_code == 0, out.output
    first, second = json.loads(out.output)
    assert first["conversation_id"] == second["conversation_id"] and second["user"] == "ana"
    assert_same(rows_by_kind(second), expected(raw_db, REGION_2026.format(extra="AND a.plan = 'premium'")))


def test_today_option_moves_relative_dates(demo_dir: Any, raw_db: Any) -> None:
    out = run("ask", "--project", str(demo_dir), "--json", "--today", "2026-06-15", "streaming hours last month")
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    [(want,)] = raw_db.execute("SELECT SUM(streaming_hours) FROM streaming_sessions "
                               "WHERE session_date BETWEEN DATE '2026-05-01' AND DATE '2026-05-31'").fetchall()
    assert payload["rows"][0][0] == pytest.approx(want, rel=1e-9)


def test_explain_shows_plan_reasoning_sql_and_confidence(demo_dir: Any) -> None:
    out = run("ask", "--project", str(demo_dir), "--explain", "hours per account by plan this year")
    assert out.exit_code == 0, out.output
    for part in ("Plan", "Reasoning", "SQL", "Confidence factors", "total_streaming_hours / active_streaming_accounts"):
        assert part in out.output, part


def test_explain_json_includes_the_trace(demo_dir: Any) -> None:
    out = run("ask", "--project", str(demo_dir), "--json", "--explain", "cloud cost by org in 2026")
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["trace"]["guarded"]["sql"] and {t["stage"] for t in payload["trace"]["timings"]} >= {"plan", "execute"}


def test_refusal_prints_a_reason_and_runs_nothing(demo_dir: Any) -> None:
    out = run("ask", "--project", str(demo_dir), "--json", "DROP TABLE titles")
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["status"] == "refused" and payload["sql"] is None and payload["rows"] == []


def test_clarify_lists_the_closest_metrics(demo_dir: Any) -> None:
    out = run("ask", "--project", str(demo_dir), "What was revenue last month?")
    assert out.exit_code == 0, out.output
    assert "clarify" in out.output and "Closest:" in out.output


@pytest.mark.parametrize("args", [
    ("--today", "yesterday"),
    ("--model", "gpt-nonexistent"),
])
def test_misuse_exits_2(demo_dir: Any, args: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LORE_MODEL"):  # the result must not depend on the caller's shell
        monkeypatch.delenv(name, raising=False)
    out = run("ask", "--project", str(demo_dir), *args, "streaming hours in 2026")
    assert out.exit_code == 2, out.output


def test_help_mentions_conversations() -> None:
    out = run("ask", "--help")
    assert out.exit_code == 0
    assert "conversation" in out.output and "--explain" in out.output
