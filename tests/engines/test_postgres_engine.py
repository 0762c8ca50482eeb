"""The PostgreSQL engine (lore/execute/postgres.py) on the session's throwaway server: the demo answers as on
DuckDB, and the hardening holds even for SQL that never went through the guard."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from parity import (
    QUESTIONS,
    assert_chat_page_answers,
    assert_golden_subset_equal,
    assert_runs_its_dialect,
    assert_same_answer,
    assert_same_draft,
)
from evals.servers.postgres import READER_PASSWORD, PgServer

from lore import Lore
from lore.errors import ConfigError, EngineError, OperatorError, QueryTimeout, ResultTooLarge
from lore.execute.copy import copy_duckdb_to_postgres
from lore.execute.postgres import PostgresEngine
from lore.settings import Settings

psycopg = pytest.importorskip("psycopg")

URL_ENV = "LORE_TEST_PG_URL"



@pytest.fixture(scope="module")
def demo_pg(pg_server: PgServer, demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The session's demo warehouse copied into a fresh database, LORE's read-only role created by the documented
    script, and a project that names the PostgreSQL engine (its URL in an environment variable)."""
    folder = tmp_path_factory.mktemp("pgdemo")
    source = folder / "source.duckdb"
    shutil.copy(demo_dir / "warehouse.duckdb", source)  # a file no engine of this process has open
    pg_server.create_database("demo")
    copied = copy_duckdb_to_postgres(source, pg_server.url_for("postgres", pg_server.password, "demo"))
    url = pg_server.create_reader("demo")
    project = folder / "project"
    project.mkdir()
    shutil.copytree(demo_dir / "semantic", project / "semantic")
    config = yaml.safe_load((demo_dir / "lore.yaml").read_text())
    config.pop("warehouse", None)
    config["engine"] = {"type": "postgres", "url_env": URL_ENV}
    (project / "lore.yaml").write_text(yaml.safe_dump(config))
    yield {"project": project, "url": url, "copied": copied}


@pytest.fixture()
def pg_lore(demo_pg: dict, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lore]:
    monkeypatch.setenv(URL_ENV, demo_pg["url"])
    lore = Lore.open(demo_pg["project"])
    yield lore
    lore.close()


@pytest.fixture()
def reader(demo_pg: dict) -> Iterator[PostgresEngine]:
    engine = PostgresEngine.open(demo_pg["url"], Settings(query_timeout_s=5, max_rows=1000))
    yield engine
    engine.close()


# --- the same answers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_equal_duckdb(question: str, pg_lore: Lore, demo_lore: Lore) -> None:
    assert_same_answer(pg_lore, demo_lore, question)


def test_the_chat_page_answers_on_postgresql(demo_pg: dict, demo_lore: Lore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, demo_pg["url"])
    assert_chat_page_answers(demo_pg["project"], demo_lore, monkeypatch, "PostgreSQL")


def test_lore_doctor_names_the_engine(demo_pg: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from lore.cli import app

    monkeypatch.setenv(URL_ENV, demo_pg["url"])
    result = CliRunner().invoke(app, ["doctor", "--no-local-model", "--json", "--project", str(demo_pg["project"])])
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["warehouse"]["status"] == "ok", checks["warehouse"]
    assert "opens hardened on PostgreSQL (SECURITY.md): 15 tables" in checks["warehouse"]["detail"]
    assert demo_pg["url"] not in result.stdout and "lore_reader@127.0.0.1" in checks["warehouse"]["detail"]


def test_answers_run_postgres_sql(pg_lore: Lore) -> None:
    assert_runs_its_dialect(pg_lore, "postgres")


def test_golden_subset_equals_duckdb(pg_lore: Lore, demo_lore: Lore) -> None:
    """The demo golden set (the CI subset: its first 40 cases) scores case for case as on DuckDB."""
    assert_golden_subset_equal(pg_lore, demo_lore)


def test_copy_kept_every_table(demo_pg: dict, pg_lore: Lore, demo_lore: Lore) -> None:
    assert set(pg_lore.engine.schema()) == set(demo_lore.engine.schema())
    for table, rows in demo_pg["copied"].items():
        assert pg_lore.engine.run(f'SELECT COUNT(*) FROM "{table}"').rows[0][0] == rows


# --- hardening -----------------------------------------------------------------------------------------------


def test_superuser_is_refused(pg_server: PgServer) -> None:
    with pytest.raises(OperatorError, match="superuser") as err:
        PostgresEngine.open(pg_server.admin_url, Settings())
    assert pg_server.password not in str(err.value)
    assert "postgres-readonly-role.sql" in str(err.value)


def test_a_role_that_may_write_is_refused(pg_server: PgServer, pg_database: str) -> None:
    pg_server.run_sql("CREATE ROLE lore_writer LOGIN PASSWORD 'w'", pg_database)
    pg_server.run_sql("CREATE TABLE t (a int); GRANT SELECT, INSERT ON t TO lore_writer", pg_database)
    with pytest.raises(OperatorError, match="may write tables"):
        PostgresEngine.open(pg_server.url_for("lore_writer", "w", pg_database), Settings())
    pg_server.run_sql("REVOKE INSERT ON t FROM lore_writer; GRANT CREATE ON SCHEMA public TO lore_writer",
                      pg_database)
    with pytest.raises(OperatorError, match="may create objects"):
        PostgresEngine.open(pg_server.url_for("lore_writer", "w", pg_database), Settings())


def test_writes_fail_even_past_the_guard(reader: PostgresEngine) -> None:
    """What the guard would refuse fails on the engine too: a server-side cursor takes only a query, and the
    transaction is read-only (a function that writes fails)."""
    for sql in ("INSERT INTO accounts (account_id) VALUES (-1)", "CREATE TEMP TABLE x (a int)",
                "SET default_transaction_read_only = off", "DELETE FROM accounts",
                "WITH gone AS (DELETE FROM accounts RETURNING *) SELECT COUNT(*) FROM gone"):
        with pytest.raises(EngineError):
            reader.run(sql)
    assert reader.run("SELECT current_setting('transaction_read_only')").rows == (("on",),)


def test_a_function_that_writes_fails_or_is_rolled_back(pg_server: PgServer, pg_database: str) -> None:
    """nextval() is refused in the read-only transaction; what PostgreSQL lets a read-only transaction do anyway
    (create a large object) is rolled back with it: each query's transaction is never committed."""
    url = pg_server.create_reader(pg_database)
    pg_server.run_sql("CREATE SEQUENCE s; GRANT USAGE ON SEQUENCE s TO lore_reader", pg_database)
    with PostgresEngine.open(url, Settings()) as engine:
        with pytest.raises(EngineError, match="read-only transaction"):
            engine.run("SELECT nextval('s')")
        assert engine.run("SELECT lo_create(0) > 0").rows == ((True,),)
    assert pg_server.run_sql("SELECT COUNT(*) FROM pg_largeobject_metadata", pg_database) == [(0,)]


def test_a_session_setting_changed_by_a_query_does_not_outlive_it(reader: PostgresEngine) -> None:
    """set_config() inside a query is undone with the query's transaction (rolled back, never committed)."""
    reader.run("SELECT set_config('statement_timeout', '0', false), "
               "set_config('default_transaction_read_only', 'off', false)")
    for _ in range(6):  # every session of the pool
        row = reader.run("SELECT current_setting('statement_timeout'), "
                         "current_setting('default_transaction_read_only')").rows[0]
        assert row[0] != "0" and row[1] == "on"


def test_time_limit(reader: PostgresEngine) -> None:
    with pytest.raises(QueryTimeout, match="longer than 0.5s"):
        reader.run("SELECT pg_sleep(5)", timeout_s=0.5)
    assert reader.run("SELECT 1").rows == ((1,),)  # the session is usable again


def test_row_cap_and_byte_cap(demo_pg: dict) -> None:
    with PostgresEngine.open(demo_pg["url"], Settings(max_rows=50, max_result_mb=0.05)) as engine:
        result = engine.run("SELECT g FROM generate_series(1, 100000) AS g")
        assert len(result.rows) == 50 and result.truncated
        small = engine.run("SELECT g FROM generate_series(1, 20) AS g")
        assert len(small.rows) == 20 and not small.truncated
        with pytest.raises(ResultTooLarge):
            engine.run("SELECT repeat('x', 10000) FROM generate_series(1, 40)")


def test_cancel_stops_a_running_query(reader: PostgresEngine) -> None:
    caught: list[BaseException] = []

    def slow() -> None:
        try:
            reader.run("SELECT pg_sleep(4)")
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion
            caught.append(err)

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.5)
    reader.cancel()
    worker.join(10)
    assert len(caught) == 1 and isinstance(caught[0], EngineError) and not isinstance(caught[0], QueryTimeout)
    assert "interrupted" in str(caught[0])


def test_threads_share_one_engine(reader: PostgresEngine) -> None:
    results: dict[int, object] = {}

    def work(n: int) -> None:
        results[n] = reader.run(f"SELECT {n} * 2 AS v, pg_sleep(0.05)").rows[0][0]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {n: n * 2 for n in range(12)}


def test_catalog_names_and_types(pg_server: PgServer, pg_database: str) -> None:
    pg_server.run_sql("CREATE SCHEMA raw; CREATE TABLE raw.orders (id bigint, amount numeric(12,2), at date, "
                      "note varchar(20), ok boolean, ts timestamp); CREATE TABLE items (id int, price double precision)",
                      pg_database)
    url = pg_server.create_reader(pg_database, schema="raw")
    pg_server.create_reader(pg_database, schema="public")
    with PostgresEngine.open(url, Settings()) as engine:
        schema = engine.schema()
    assert schema["raw.orders"] == {"id": "BIGINT", "amount": "DECIMAL(12,2)", "at": "DATE", "note": "VARCHAR",
                                    "ok": "BOOLEAN", "ts": "TIMESTAMP"}
    assert schema["items"] == {"id": "INTEGER", "price": "DOUBLE"}


def test_data_version_follows_writes(pg_server: PgServer, pg_database: str) -> None:
    pg_server.run_sql("CREATE TABLE t (a int); INSERT INTO t VALUES (1)", pg_database)
    url = pg_server.create_reader(pg_database)
    with PostgresEngine.open(url, Settings()) as engine:
        before = engine.data_version()
    pg_server.run_sql("INSERT INTO t VALUES (2), (3)", pg_database)
    deadline = time.monotonic() + 15
    changed = False
    while not changed and time.monotonic() < deadline:  # the server's statistics trail a write
        time.sleep(0.5)
        with PostgresEngine.open(url, Settings()) as engine:
            changed = engine.data_version() != before
    assert changed


def test_configuration_errors_say_what_to_do(demo_pg: dict, pg_server: PgServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    with pytest.raises(ConfigError, match=URL_ENV):
        Lore.open(demo_pg["project"]).engine  # noqa: B018 - opening the engine is the test
    wrong = pg_server.url_for("lore_reader", "not-the-password", "demo")
    with pytest.raises(OperatorError, match="Could not connect") as err:
        PostgresEngine.open(wrong, Settings())
    assert "not-the-password" not in str(err.value)


def test_lore_yaml_engine_section(tmp_path: Path) -> None:
    from lore.project import Project, ProjectConfig, write_config

    (tmp_path / "lore.yaml").write_text("engine: postgres\n")
    project = Project.open(tmp_path)
    assert project.config.engine.type == "postgres" and project.config.engine.url_env == "LORE_POSTGRES_URL"
    assert project.dialect == "postgres"
    write_config(tmp_path, project.config)
    again = Project.open(tmp_path)
    assert again.config == project.config
    (tmp_path / "lore.yaml").write_text("engine:\n  type: postgres\n  url_env: postgresql://u:p@h/db\n")
    with pytest.raises(ConfigError, match="not an environment variable"):
        Project.open(tmp_path)
    (tmp_path / "lore.yaml").write_text("engine: oracle\n")
    with pytest.raises(ConfigError, match="engine"):
        Project.open(tmp_path)
    write_config(tmp_path, ProjectConfig())
    assert "engine" not in (tmp_path / "lore.yaml").read_text()  # DuckDB projects' lore.yaml is unchanged


# --- lore init on PostgreSQL ---------------------------------------------------------------------------------


def test_lore_init_drafts_the_same_layer_as_on_duckdb(demo_pg: dict, demo_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The survey reads PostgreSQL's catalog (tables, types, comments, keys) and profiles the data with the same
    questions in its dialect: the draft equals the one drafted from the DuckDB file the data came from."""
    from lore.onboard.init import init_project
    from lore.project import EngineConfig, Project

    monkeypatch.setenv(URL_ENV, demo_pg["url"])
    source = tmp_path / "source.duckdb"
    shutil.copy(demo_dir / "warehouse.duckdb", source)
    on_duck = init_project(tmp_path / "duck", source)
    on_pg = init_project(tmp_path / "pg", None, engine=EngineConfig(type="postgres", url_env=URL_ENV))
    assert on_pg.draft.metrics == on_duck.draft.metrics
    assert_same_draft(on_pg.root, on_duck)
    assert "postgresql://lore_reader@127.0.0.1" in on_pg.warehouse and READER_PASSWORD not in on_pg.warehouse
    project = Project.open(tmp_path / "pg")
    assert project.config.engine.type == "postgres" and project.config.engine.url_env == URL_ENV
    assert not on_pg.errors
    with Lore.open(tmp_path / "pg") as lore:  # the draft answers on PostgreSQL
        metric = sorted(lore.layer.metrics)[0]
        assert lore.semantic.data([metric]).rows
