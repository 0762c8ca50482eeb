"""The Spark engine over Spark Connect (lore/execute/spark.py, ``LORE_SPARK_REMOTE=sc://...``): a real Spark Connect
server the session starts (evals/servers/spark_connect.py, a JVM of its own on loopback) answers the demo as DuckDB
does, over a Parquet folder and over the server's catalog, with the same hardening and limits as local mode."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from parity import (
    QUESTIONS,
    assert_golden_subset_equal,
    assert_runs_its_dialect,
    assert_same_answer,
    assert_same_draft,
    parquet_as_duckdb,
)
from spark_checks import (
    assert_cancel_stops_a_running_query,
    assert_row_cap_and_byte_cap,
    assert_runs_queries_only,
    assert_threads_share_one_engine,
    assert_time_limit,
)

from evals.servers.spark_connect import SparkConnectServer
from lore import Lore
from lore.errors import ConfigError, EngineError, OperatorError
from lore.settings import Settings

pytest.importorskip("pyspark")

from lore.execute.spark import SparkEngine  # noqa: E402 - after the skip: importing it imports pyspark

#: the variable the projects of this module read the server's URL from
REMOTE_ENV = "LORE_TEST_SPARK_CONNECT"


@pytest.fixture(scope="module")
def connect_engine(spark_connect_server: SparkConnectServer, spark_demo: dict) -> Iterator[SparkEngine]:
    engine = SparkEngine.open(Settings(query_timeout_s=20, max_rows=1000), tables=spark_demo["folder"],
                              remote=spark_connect_server.url)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def connect_project(spark_connect_server: SparkConnectServer, spark_demo: dict,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project on the session's Parquet folder, its engine reached over Spark Connect."""
    project = tmp_path_factory.mktemp("connect") / "project"
    project.mkdir()
    (project / "semantic").symlink_to(spark_demo["project"] / "semantic")
    config = yaml.safe_load((spark_demo["project"] / "lore.yaml").read_text())
    config["engine"] = {"type": "spark", "tables": str(spark_demo["folder"]), "url_env": REMOTE_ENV}
    (project / "lore.yaml").write_text(yaml.safe_dump(config))
    return project


@pytest.fixture(scope="module")
def connect_lore(connect_project: Path, spark_connect_server: SparkConnectServer) -> Iterator[Lore]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv(REMOTE_ENV, spark_connect_server.url)
        lore = Lore.open(connect_project)
        lore.warm_up()  # the index, before the first question (as `lore ask` and the servers do)
        yield lore
        lore.close()


# --- the same answers ----------------------------------------------------------------------------------------


def test_the_engine_is_remote(connect_lore: Lore, spark_connect_server: SparkConnectServer) -> None:
    assert connect_lore.engine.description.endswith(f"(over Spark Connect {spark_connect_server.url})")
    assert connect_lore.dialect == "spark"


@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_equal_duckdb(question: str, connect_lore: Lore, demo_lore: Lore) -> None:
    assert_same_answer(connect_lore, demo_lore, question)


def test_a_connect_engine_leaves_local_mode_possible(connect_engine: SparkEngine) -> None:
    """PySpark's own builder marks the process as Spark Connect for good; LORE's session does not, so a local-mode
    engine still opens in the same process (the suite opens both)."""
    assert connect_engine.run("SELECT 1").rows == ((1,),)
    assert "SPARK_CONNECT_MODE_ENABLED" not in os.environ and "SPARK_REMOTE" not in os.environ


def test_answers_run_spark_sql(connect_lore: Lore) -> None:
    assert_runs_its_dialect(connect_lore, "spark")


def test_golden_subset_equals_duckdb(connect_lore: Lore, demo_lore: Lore) -> None:
    assert_golden_subset_equal(connect_lore, demo_lore)


@pytest.fixture(scope="module")
def server_catalog(spark_connect_server: SparkConnectServer, spark_demo: dict) -> list[str]:
    """The demo's tables in the server's catalog, as a cluster's catalog holds them."""
    return spark_connect_server.register_tables(spark_demo["folder"])


def test_the_server_catalog_serves_without_a_folder(spark_connect_server: SparkConnectServer, server_catalog: list[str],
                                                    connect_engine: SparkEngine, demo_lore: Lore) -> None:
    """No engine.tables: the tables of the server catalog's current database, as a cluster's catalog holds them."""
    assert "accounts" in server_catalog
    with SparkEngine.open(Settings(), tables=None, remote=spark_connect_server.url) as engine:
        assert engine.description == f"spark {spark_connect_server.url} (catalog)"
        assert set(engine.schema()) == set(demo_lore.engine.schema())
        assert engine.schema()["accounts"] == connect_engine.schema()["accounts"]
        sql = "SELECT plan, COUNT(*) AS n FROM accounts GROUP BY plan ORDER BY plan"
        assert engine.run(sql).rows == connect_engine.run(sql).rows
        stamp = engine.data_version()
        assert stamp.startswith("spark|") and stamp == engine.data_version()


def test_other_databases_go_by_database_dot_table(spark_connect_server: SparkConnectServer, server_catalog: list[str],
                                                 spark_demo: dict, demo_lore: Lore, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """engine.databases: the tables of other catalog databases, named database.table in the layer, answer as the
    current database's do."""
    url = spark_connect_server.url
    spark_connect_server.register_tables(spark_demo["folder"], database="raw")
    with SparkEngine.open(Settings(), tables=None, remote=url, databases=("raw",)) as engine:
        schema = engine.schema()
        assert set(schema) == set(server_catalog) | {f"raw.{name}" for name in server_catalog}
        assert schema["raw.accounts"] == schema["accounts"]
        assert engine.distinct_values("raw.accounts", "plan") == engine.distinct_values("accounts", "plan")
        from lore.execute.introspect import read_catalog  # what lore init's survey reads: raw's tables by schema

        found = {(t.schema_name, t.name): t.ref for t in read_catalog(engine)}
        assert found[("raw", "accounts")] == "raw.accounts" and found[("main", "accounts")] == "accounts"
    project = tmp_path / "p"
    shutil.copytree(spark_demo["project"] / "semantic", project / "semantic")
    dims = project / "semantic" / "dimensions.yaml"
    dims.write_text(dims.read_text().replace("table: accounts\n", "table: raw.accounts\n"))
    config = yaml.safe_load((spark_demo["project"] / "lore.yaml").read_text())
    config["engine"] = {"type": "spark", "url_env": REMOTE_ENV, "databases": ["raw"]}
    (project / "lore.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv(REMOTE_ENV, url)
    with Lore.open(project) as lore:
        lore.warm_up()  # the index, before the first question
        question = "total streaming hours by region last quarter, only premium accounts"
        answer = lore.ask(question)
        assert "`raw`.`accounts`" in answer.sql
        assert_same_answer(lore, demo_lore, question)
    with pytest.raises(OperatorError, match="no database 'nope'") as err:
        SparkEngine.open(Settings(), tables=None, remote=url, databases=("nope",))
    assert "raw" in (err.value.hint or "")
    with pytest.raises(ConfigError, match="one or the other"):
        SparkEngine.open(Settings(), tables=spark_demo["folder"], remote=url, databases=("raw",))


def test_lore_init_drafts_from_the_server_catalog(spark_connect_server: SparkConnectServer, server_catalog: list[str],
                                                  spark_demo: dict, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`lore init DIR --engine spark` with no folder, LORE_SPARK_REMOTE set: the draft comes from the server's
    catalog, and is the one drafted from a DuckDB file holding the same tables."""
    from lore.onboard.init import init_project
    from lore.project import EngineConfig

    monkeypatch.setenv("LORE_SPARK_REMOTE", spark_connect_server.url)
    on_duck = init_project(tmp_path / "duck", parquet_as_duckdb(spark_demo["folder"], tmp_path / "same.duckdb"))
    on_connect = init_project(tmp_path / "sc", None, engine=EngineConfig(type="spark"))
    assert on_connect.warehouse == f"spark {spark_connect_server.url} (catalog)" and not on_connect.errors
    assert on_connect.draft.metrics == on_duck.draft.metrics
    assert_same_draft(on_connect.root, on_duck)
    assert yaml.safe_load((tmp_path / "sc" / "lore.yaml").read_text())["engine"] == {
        "type": "spark", "url_env": "LORE_SPARK_REMOTE"}  # the URL stays in the environment


# --- hardening and limits, as in local mode ---------------------------------------------------------------


def test_writes_and_ddl_fail_even_past_the_guard(connect_engine: SparkEngine) -> None:
    """The client cannot reach the server's parser: sqlglot's reads the SQL, and only one query passes."""
    assert_runs_queries_only(connect_engine)


def test_sql_cannot_call_java_or_read_files(spark_demo: dict, connect_engine: SparkEngine) -> None:
    for function in ("reflect", "java_method", "TRY_REFLECT"):
        with pytest.raises(EngineError, match="does not call Java"):
            connect_engine.run(f"SELECT {function}('java.lang.System', 'getProperty', 'user.home')")
    for sql in (f"SELECT * FROM parquet.`{spark_demo['folder'] / 'accounts.parquet'}`",
                "SELECT * FROM text.`/etc/passwd`"):
        with pytest.raises(EngineError, match="TABLE_OR_VIEW_NOT_FOUND"):
            connect_engine.run(sql)
    assert connect_engine.run("SELECT current_timezone()").rows == (("UTC",),)


def test_time_limit_and_cancel(connect_engine: SparkEngine) -> None:
    assert_time_limit(connect_engine, within_s=15)
    assert_cancel_stops_a_running_query(connect_engine)


def test_row_cap_and_byte_cap(spark_connect_server: SparkConnectServer, spark_demo: dict) -> None:
    with SparkEngine.open(Settings(max_rows=50, max_result_mb=0.05), tables=spark_demo["folder"],
                          remote=spark_connect_server.url) as engine:
        assert_row_cap_and_byte_cap(engine)


def test_threads_share_one_session(connect_engine: SparkEngine) -> None:
    assert_threads_share_one_engine(connect_engine, threads=6)


def test_closing_one_session_leaves_the_server_and_others(spark_connect_server: SparkConnectServer,
                                                          spark_demo: dict, connect_engine: SparkEngine) -> None:
    with SparkEngine.open(Settings(), tables=spark_demo["folder"], remote=spark_connect_server.url) as other:
        assert other.run("SELECT COUNT(*) FROM accounts").rows == connect_engine.run(
            "SELECT COUNT(*) FROM accounts").rows
    assert connect_engine.run("SELECT COUNT(*) FROM accounts").rows[0][0] > 0


# --- what goes wrong says what to do ---------------------------------------------------------------------------


def test_a_server_that_is_not_there_fails_fast_and_says_what_to_do(spark_demo: dict) -> None:
    from evals.servers.postgres import free_port

    url = f"sc://127.0.0.1:{free_port()}/;token=s3cret"
    started = time.monotonic()
    with pytest.raises(OperatorError, match="Could not reach the Spark Connect server") as err:
        SparkEngine.open(Settings(), tables=spark_demo["folder"], remote=url)
    assert time.monotonic() - started < 30  # the client's own retries would wait ten minutes
    assert "s3cret" not in str(err.value) and "LORE_SPARK_REMOTE" in (err.value.hint or "")
    assert "Connection refused" in str(err.value) or "failed to connect" in str(err.value)


def test_without_the_connect_client_says_what_to_do(spark_demo: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql.connect.client.retries", None)  # as if not installed
    with pytest.raises(ConfigError, match="Spark Connect needs") as err:
        SparkEngine.open(Settings(), tables=spark_demo["folder"], remote="sc://127.0.0.1:15002/;token=s3cret")
    assert "lore-analytics[spark]" in (err.value.hint or "") and "s3cret" not in str(err.value)
