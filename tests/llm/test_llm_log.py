"""The exchange log: SQLite, WAL, named migrations applied once; and `lore logs`."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from typer.testing import CliRunner

from lore.cli import app
from lore.llm.log import MIGRATIONS, Exchange, ExchangeLog, migrate


def _exchange(i: int, outcome: str = "ok") -> Exchange:
    return Exchange(model="scripted", prompt=({"role": "user", "content": f"question {i}"},), response=f'{{"n": {i}}}',
                    outcome=outcome, latency_ms=12.5 + i, tokens_in=100 + i, tokens_out=20, question=f"question {i}",
                    answer_id=f"a{i}", attempt=1, prompt_version="plan_v1", structured="json_schema")


def test_migrations_are_named_applied_once_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    log = ExchangeLog.open(path)
    assert log.applied_migrations() == [m.__name__ for m in MIGRATIONS]
    log.record(_exchange(1))
    ExchangeLog.open(path)  # again: nothing re-applied, nothing lost
    assert log.applied_migrations() == [m.__name__ for m in MIGRATIONS]
    assert log.count() == 1
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_new_migration_is_applied_to_an_old_log_once(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    ExchangeLog.open(path).record(_exchange(1))

    def m004_add_user(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE exchanges ADD COLUMN user TEXT")

    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert migrate(db, (*MIGRATIONS, m004_add_user)) == ["m004_add_user"]
        assert migrate(db, (*MIGRATIONS, m004_add_user)) == []
        columns = [r[1] for r in db.execute("PRAGMA table_info(exchanges)")]
    assert "user" in columns and ExchangeLog(path).count() == 1


def test_a_failing_migration_leaves_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    ExchangeLog.open(path)

    def m004_broken(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE exchanges ADD COLUMN half TEXT")
        db.execute("THIS IS NOT SQL")

    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        try:
            migrate(db, (*MIGRATIONS, m004_broken))
        except sqlite3.OperationalError:
            pass
        columns = [r[1] for r in db.execute("PRAGMA table_info(exchanges)")]
        names = [r[0] for r in db.execute("SELECT name FROM migrations")]
    assert "half" not in columns and "m004_broken" not in names


def test_exchanges_round_trip_newest_first(tmp_path: Path) -> None:
    log = ExchangeLog.open(tmp_path / "llm.sqlite")
    for i in range(5):
        log.record(_exchange(i, "invalid" if i == 2 else "ok"))
    recent = log.recent(3)
    assert [e.question for e in recent] == ["question 4", "question 3", "question 2"]
    e = recent[2]
    assert (e.outcome, e.tokens_in, e.tokens_out, e.latency_ms, e.answer_id) == ("invalid", 102, 20, 14.5, "a2")
    assert e.prompt == ({"role": "user", "content": "question 2"},) and e.created_at and e.id
    assert [x.question for x in log.recent(10, answer_id="a1")] == ["question 1"]


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "lore.yaml").write_text("name: t\n", encoding="utf-8")
    return folder


def test_lore_logs_shows_the_latest_exchanges(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    log = ExchangeLog.for_project(folder / ".lore")
    for i in range(3):
        log.record(_exchange(i, "timeout" if i == 1 else "ok"))
    runner = CliRunner()
    res = runner.invoke(app, ["logs", "--project", str(folder), "-n", "2", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [d["question"] for d in data] == ["question 2", "question 1"]
    assert data[1]["outcome"] == "timeout" and data[0]["tokens_in"] == 102 and data[0]["model"] == "scripted"
    table = runner.invoke(app, ["logs", "--project", str(folder)])
    assert table.exit_code == 0 and "scripted" in table.output and "timeout" in table.output and "102→20 tokens" in table.output
    assert "Q: question 0" in table.output and "answer a2" in table.output
    one = runner.invoke(app, ["logs", "--project", str(folder), "--answer", "a1", "--json"])
    assert one.exit_code == 0 and [d["question"] for d in json.loads(one.output)] == ["question 1"]


def test_lore_logs_on_a_project_without_exchanges(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["logs", "--project", str(_project(tmp_path))])
    assert res.exit_code == 0 and "No LLM exchanges logged yet" in res.output
