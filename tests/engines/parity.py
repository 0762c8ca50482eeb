"""What the engine tests compare: the questions asked of every engine, and rows equal up to order and rounding."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import sqlglot

#: asked of DuckDB and of each other engine: the answers must be the same
QUESTIONS = [
    "total streaming hours by region last quarter, only premium accounts",
    "streaming hours by month this year",
    "how did streaming hours change from last month to this month in Brazil",
    "what % of streaming hours came from mobile this year",
    "top 3 genres by hours in each region",
    "how many accounts streamed more than 10 hours last month",
    "cumulative streaming hours by month this year",
    "average revenue per paying user by country",
    "which country had the biggest growth in hours year over year",
]


def same_rows(left: list, right: list) -> bool:
    """Equal up to row order and float rounding."""
    def key(row: tuple) -> tuple:
        return tuple(round(v, 6) if isinstance(v, float) else v for v in row)

    if len(left) != len(right):
        return False
    for a, b in zip(sorted(left, key=lambda r: repr(key(r))), sorted(right, key=lambda r: repr(key(r)))):
        for x, y in zip(a, b):
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def assert_same_answer(lore: Any, demo_lore: Any, question: str) -> None:
    """``lore`` (another engine) answers ``question`` as the DuckDB project does: status, confidence, columns,
    rows (up to order and rounding) and words."""
    there, on_duck = lore.ask(question), demo_lore.ask(question)
    assert there.status == on_duck.status, (there.message, on_duck.message)
    assert there.confidence == pytest.approx(on_duck.confidence)
    if on_duck.status == "answered":
        assert [c.name for c in there.columns] == [c.name for c in on_duck.columns]
        assert same_rows(list(there.rows), list(on_duck.rows)), (there.sql, on_duck.sql)
        assert there.message == on_duck.message


def assert_runs_its_dialect(lore: Any, dialect: str) -> None:
    answer = lore.ask("streaming hours by region")
    assert answer.status == "answered"
    assert lore.dialect == dialect
    sqlglot.parse_one(answer.sql, read=dialect)  # what ran parses back in its own dialect


def assert_golden_subset_equal(lore: Any, demo_lore: Any, cases: int = 40) -> None:
    """The demo golden set (the CI subset: its first ``cases`` cases) scores case for case as on DuckDB."""
    from evals.harness import load_golden, run_golden

    golden = load_golden(Path(__file__).resolve().parents[2] / "evals" / "golden" / "demo.yaml")
    subset = golden.model_copy(update={"cases": golden.cases[:cases]})
    there = {c.id: c for c in run_golden(lore, subset)}
    on_duck = {c.id: c for c in run_golden(demo_lore, subset)}
    assert sum(c.correct for c in on_duck.values()) >= 30  # the subset means something
    differ = [(i, on_duck[i].correct, there[i].correct, there[i].status) for i in on_duck
              if (on_duck[i].correct, on_duck[i].status) != (there[i].correct, there[i].status)]
    assert not differ


def assert_same_draft(root: Path, reference: Any) -> None:
    """The project `lore init` wrote in ``root`` has the layer of ``reference`` (another init's result): the same
    files, word for word but for line 1 (which names the source)."""
    assert tuple(sorted(p.name for p in (root / "semantic").iterdir())) == reference.files
    for name in reference.files:
        expected = (reference.root / "semantic" / name).read_text().splitlines()[1:]
        assert (root / "semantic" / name).read_text().splitlines()[1:] == expected, name


def parquet_as_duckdb(folder: Path, target: Path) -> Path:
    """A DuckDB file holding a folder's Parquet tables as they are (no keys, no comments, like the Parquet files)."""
    import duckdb

    from lore.execute.spark import table_sources

    with duckdb.connect(str(target)) as con:
        for source in table_sources(folder):
            path = str(source.path / "*.parquet" if source.path.is_dir() else source.path).replace("'", "''")
            con.execute(f'CREATE TABLE "{source.name}" AS SELECT * FROM read_parquet(\'{path}\')')
    return target


def assert_chat_page_answers(project: Path, demo_lore: Any, monkeypatch: pytest.MonkeyPatch, engine: str,
                             question: str = QUESTIONS[0]) -> None:
    """The chat page (Streamlit's AppTest: the real script) on ``project`` answers ``question`` as the DuckDB
    project does, and its SQL panel names the ``engine`` that ran it."""
    import sys

    from streamlit.testing.v1 import AppTest

    from ui.cli import APP_PATH

    monkeypatch.setenv("LORE_PROJECT", str(project))
    monkeypatch.setattr(sys, "argv", [str(APP_PATH)])
    page = AppTest.from_file(str(APP_PATH), default_timeout=300)
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    page.chat_input[0].set_value(question).run()
    assert not page.exception, [e.value for e in page.exception]
    turn = page.session_state["history"][-1]
    assert turn.answer is not None, turn.error
    on_duck = demo_lore.ask(question)
    assert turn.answer.status == on_duck.status == "answered"
    assert same_rows(list(turn.answer.rows), list(on_duck.rows)), (turn.answer.sql, on_duck.sql)
    assert any(f"The exact query that ran on {engine}," in c.value for c in page.caption)
