"""The answer cache's shared tier on disk (issue 10, lore/cache/ DiskCache, .lore/answers.sqlite).

Warm in one Lore (or process), hit in another; invalidation by data and layer; size bound; a corrupt or
unusable file never fails or loses an answer; several processes share the file. No timing assertions.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_answer_cache import comparable, project, stages  # noqa: F401 - project is a fixture (a private copy)
from typer.testing import CliRunner

from lore import Lore
from lore.cache import DISK_FILE, DiskCache, TieredCache, warm
from lore.cli import app
from lore.types import Answer
from lore.pipeline.memo import answer_cache_key

QUESTIONS = ("streaming hours by region in 2026", "game installs by platform")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _shared_file_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared tier is what these tests check (tests/conftest.py turns it off for the others)."""
    monkeypatch.setenv("LORE_ANSWER_CACHE_DISK_MB", "256")


@pytest.fixture(scope="module")
def base_project(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's demo project with its index built once, and no cache file yet."""
    folder = tmp_path_factory.mktemp("perf-disk") / "project"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns("answers.sqlite*"))
    with Lore.open(folder) as lore:
        lore.warm_up()
    assert not (folder / ".lore" / DISK_FILE).exists()
    return folder


@pytest.fixture()
def cache_file(project: Path) -> Path:
    return project / ".lore" / DISK_FILE


def hit(answer: Answer) -> bool:
    assert answer.status == "answered", answer.message
    assert answer.trace is not None
    return answer.trace.cache_hit


def rows_in(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {kind: n for kind, n in db.execute("SELECT kind, COUNT(*) FROM entries GROUP BY kind")}


# --- across Lore instances and processes -----------------------------------------------------------


def test_warm_in_one_lore_then_a_new_lore_hits(project: Path, cache_file: Path) -> None:
    with Lore.open(project) as first:
        assert isinstance(first.answer_cache, TieredCache)
        report = warm(first, QUESTIONS)
        assert report.stats is not None and report.stats.disk is not None
        assert (report.stats.disk.results, report.stats.disk.plans, report.stats.disk.error) == (2, 2, None)
        originals = [first.ask(q) for q in QUESTIONS]
    assert rows_in(cache_file) == {"result": 2, "plan": 2}
    with Lore.open(project) as later:
        answers = [later.ask(q) for q in QUESTIONS]
        for original, answer in zip(originals, answers):
            assert hit(answer) and answer.trace.plan_cache_hit  # type: ignore[union-attr]
            assert not {"compile", "guard", "execute", "chart"} & set(stages(answer))
            assert comparable(answer) == comparable(original)
            assert answer.chart == original.chart
        stats = later.answer_cache.stats()
        assert (stats.hits, stats.misses, stats.entries) == (2, 0, 2)
        assert stats.disk is not None and stats.disk.hits == 4  # 2 results and their 2 plans
        assert hit(later.ask(QUESTIONS[0]))  # now from memory


def test_new_data_or_a_new_layer_is_a_miss_in_a_new_lore(project: Path) -> None:
    with Lore.open(project) as first:
        assert not hit(first.ask(QUESTIONS[0]))
    warehouse = project / "warehouse.duckdb"
    st = warehouse.stat()
    os.utime(warehouse, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a load job touched it
    with Lore.open(project) as later:
        again = later.ask(QUESTIONS[0])
        assert not hit(again) and "execute" in stages(again)
    with Lore.open(project) as later:
        assert hit(later.ask(QUESTIONS[0]))  # stored under the new data version
    layer_file = sorted((project / "semantic").rglob("*.y*ml"))[0]
    layer_file.write_text(layer_file.read_text(encoding="utf-8") + "\n# edited by a metric owner\n", encoding="utf-8")
    with Lore.open(project) as later:
        assert not hit(later.ask(QUESTIONS[0]))


def test_another_day_or_other_limits_miss(project: Path) -> None:
    with Lore.open(project) as first:
        assert not hit(first.ask(QUESTIONS[1]))
    with Lore.open(project, default_limit=999) as other:
        assert not hit(other.ask(QUESTIONS[1]))
    with Lore.open(project) as same:
        today = same.today
    from datetime import timedelta

    with Lore.open(project, today=today + timedelta(days=1)) as tomorrow:
        assert not hit(tomorrow.ask(QUESTIONS[1]))


def test_disk_tier_off_writes_no_file(project: Path, cache_file: Path) -> None:
    with Lore.open(project, answer_cache_disk_mb=0) as lore:
        assert lore.disk_cache is None and not isinstance(lore.answer_cache, TieredCache)
        lore.ask(QUESTIONS[0])
        assert hit(lore.ask(QUESTIONS[0]))
    assert not cache_file.exists()


def test_two_processes_share_the_file(project: Path, cache_file: Path, tmp_path: Path) -> None:
    """`lore cache warm` in a subprocess while this process answers other questions: both write the file at
    once; afterwards a new Lore hits every question, and the subprocess's log shows no failure."""
    mine = ("top 5 titles by hours last quarter", "cloud cost by service by month", "CPU utilization by org")
    qfile = tmp_path / "q.yaml"
    qfile.write_text(json.dumps({"questions": list(QUESTIONS)}), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "lore.cli", "cache", "warm", "--project", str(project),
                             "--questions", str(qfile)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    with Lore.open(project) as lore:
        for q in mine * 2:
            lore.ask(q)
        assert lore.disk_cache is not None and lore.disk_cache.error is None
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Persisted in" in err and "unusable" not in err and "busy" not in err
    with Lore.open(project) as later:
        for q in (*QUESTIONS, *mine):
            assert hit(later.ask(q)), q
    assert rows_in(cache_file)["result"] == len(QUESTIONS) + len(mine)


def test_threads_of_two_lores_share_the_file(project: Path) -> None:
    """Two Lore instances (as the chat page and the Slack bot would be), two threads each, the same questions."""
    errors: list[BaseException] = []
    with Lore.open(project) as a, Lore.open(project) as b:
        a.warm_up()
        b.warm_up()

        def work(lore: Lore) -> None:
            try:
                for q in QUESTIONS * 2:
                    assert lore.ask(q).status == "answered"
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=work, args=(lore,)) for lore in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        assert a.disk_cache is not None and a.disk_cache.error is None
        assert b.disk_cache is not None and b.disk_cache.error is None
    with Lore.open(project) as later:
        assert all(hit(later.ask(q)) for q in QUESTIONS)


# --- failures never lose an answer -------------------------------------------------------------------


def test_a_garbage_file_is_logged_and_answers_still_come(project: Path, cache_file: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    cache_file.write_bytes(b"this is not a database\n" * 200)
    with caplog.at_level(logging.WARNING, logger="lore.cache"), Lore.open(project) as lore:
        first = lore.ask(QUESTIONS[0])
        second = lore.ask(QUESTIONS[0])
        assert not hit(first) and hit(second)  # the memory tier still works
        stats = lore.answer_cache.stats()
        assert stats.disk is not None and stats.disk.error is not None
    warnings = [r for r in caplog.records if r.name == "lore.cache"]
    assert len(warnings) == 1 and "lore cache clear" in warnings[0].getMessage()
    runner = CliRunner()
    assert runner.invoke(app, ["cache", "stats", "--project", str(project)]).exit_code == 1
    cleared = runner.invoke(app, ["cache", "clear", "--project", str(project)])
    assert cleared.exit_code == 0, cleared.output
    with Lore.open(project) as lore:
        assert not hit(lore.ask(QUESTIONS[0]))
    assert rows_in(cache_file) == {"result": 1, "plan": 1}


def test_an_unopenable_file_is_logged_and_answers_still_come(project: Path, cache_file: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    cache_file.mkdir()  # a folder where the file should be: SQLite cannot open it
    with caplog.at_level(logging.WARNING, logger="lore.cache"), Lore.open(project) as lore:
        assert not hit(lore.ask(QUESTIONS[1]))
        assert hit(lore.ask(QUESTIONS[1]))
        assert lore.disk_cache is not None and lore.disk_cache.error is not None
    assert any("answers are cached in memory only" in r.getMessage() for r in caplog.records)


def test_an_unwritable_folder_turns_the_tier_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    disk = DiskCache(blocker / DISK_FILE, max_bytes=1 << 20)
    with caplog.at_level(logging.WARNING, logger="lore.cache"):
        assert disk.put("result", "k", "{}") is False
        assert disk.get("result", "k") is None
        assert disk.stats().error is not None
    assert len([r for r in caplog.records if r.name == "lore.cache"]) == 1  # logged once


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_file_turns_writes_off(project: Path, cache_file: Path) -> None:
    with Lore.open(project) as lore:
        lore.ask(QUESTIONS[0])
    folder = cache_file.parent
    for path in (cache_file, folder):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        with Lore.open(project) as lore:
            assert lore.ask(QUESTIONS[1]).status == "answered"
            assert lore.ask(QUESTIONS[1]).trace.cache_hit  # type: ignore[union-attr]
    finally:
        folder.chmod(0o755)
        cache_file.chmod(0o644)


def test_a_row_that_does_not_read_back_is_a_dropped_miss(project: Path, cache_file: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with Lore.open(project) as lore:
        answer = lore.ask(QUESTIONS[0])
        assert answer.plan is not None
        key = answer_cache_key(lore, answer.plan)
    with sqlite3.connect(cache_file) as db:
        db.execute("UPDATE entries SET value = '{\"compiled\": 1}' WHERE kind = 'result' AND key = ?", (key,))
    with caplog.at_level(logging.WARNING, logger="lore.cache"), Lore.open(project) as lore:
        again = lore.ask(QUESTIONS[0])
        assert not hit(again) and "execute" in stages(again)
        assert again.rows == answer.rows
    assert any("does not read back" in r.getMessage() for r in caplog.records)
    with Lore.open(project) as lore:
        assert hit(lore.ask(QUESTIONS[0]))  # stored again, readable


# --- bounds and the file ---------------------------------------------------------------------------------


def test_the_file_is_bounded_and_drops_the_least_recently_used(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / DISK_FILE, max_bytes=3000)
    value = "x" * 900
    for key in ("a", "b", "c"):
        assert disk.put("result", key, value)
    assert disk.get("result", "a") == value  # a is now the most recently used
    assert disk.put("result", "d", value)  # 3600 bytes > 3000: b (least recently used) goes
    assert disk.get("result", "b") is None
    assert all(disk.get("result", k) == value for k in ("a", "c", "d"))
    stats = disk.stats()
    assert stats.bytes <= 3000 and stats.entries == 3
    assert not disk.put("result", "huge", "y" * 3001)  # larger than the bound alone
    assert disk.clear() == 3 and disk.stats().entries == 0


def test_the_file_uses_wal_and_named_migrations(project: Path, cache_file: Path) -> None:
    with Lore.open(project) as lore:
        lore.ask(QUESTIONS[0])
    with sqlite3.connect(cache_file) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = [r[0] for r in db.execute("SELECT name FROM migrations")]
        assert names == ["m001_create_entries", "m002_index_bytes"]
        columns = {r[1] for r in db.execute("PRAGMA table_info(entries)")}
    assert {"key", "value", "created_at", "bytes", "last_used"} <= columns


def test_cli_warm_stats_and_clear(project: Path, tmp_path: Path) -> None:
    qfile = tmp_path / "q.yaml"
    qfile.write_text("- streaming hours by region in 2026\n", encoding="utf-8")
    runner = CliRunner()
    warmed = runner.invoke(app, ["cache", "warm", "--project", str(project), "--questions", str(qfile)])
    assert warmed.exit_code == 0, warmed.output
    assert "Persisted in" in warmed.output and "later processes" in warmed.output
    stats = runner.invoke(app, ["cache", "stats", "--project", str(project), "--json"])
    assert stats.exit_code == 0, stats.output
    assert (json.loads(stats.stdout)["results"], json.loads(stats.stdout)["plans"]) == (1, 1)
    with Lore.open(project) as lore:
        assert hit(lore.ask(QUESTIONS[0]))
    cleared = runner.invoke(app, ["cache", "clear", "--project", str(project), "--json"])
    assert cleared.exit_code == 0 and json.loads(cleared.stdout)["removed"] == 2
    with Lore.open(project) as lore:
        assert not hit(lore.ask(QUESTIONS[0]))
    helped = runner.invoke(app, ["cache", "--help"])
    assert "answers.sqlite" in helped.output and "clear" in helped.output and "stats" in helped.output


def test_the_bound_is_summed_from_an_index_also_in_a_file_of_an_earlier_version(tmp_path: Path) -> None:
    """Every write sums the rows' bytes: from the entries_bytes index, never by reading each row's value (that took
    20 ms a write at a few thousand answers, under the lock every worker's cache reads and writes wait for)."""
    from lore.cache.disk import DISK_MIGRATIONS, TOTAL_BYTES_SQL
    from lore.llm.log import migrate

    path = tmp_path / DISK_FILE
    with sqlite3.connect(path) as old:  # a file made before the index existed
        migrate(old, DISK_MIGRATIONS[:1])
        old.execute("INSERT INTO entries VALUES ('result', 'k', '{}', '2026-01-01', 1.0, 2)")
    disk = DiskCache(path, max_bytes=10_000)
    assert disk.get("result", "k") == "{}" and disk.put("result", "k2", '{"a": 1}')
    with sqlite3.connect(path) as db:
        plan = " ".join(str(row) for row in db.execute(f"EXPLAIN QUERY PLAN {TOTAL_BYTES_SQL}"))
        assert db.execute(TOTAL_BYTES_SQL).fetchone()[0] == 2 + len('{"a": 1}')
    disk.close()
    assert "COVERING INDEX entries_bytes" in plan, plan
