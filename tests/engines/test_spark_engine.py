"""The Spark engine (lore/execute/spark.py) in local mode over the demo written as Parquet: the demo answers as on
DuckDB, the hardening holds even for SQL that never went through the guard, and the Parquet export keeps values.

One Spark driver serves the whole module (starting its JVM takes about ten seconds): every engine opened here is a
session of its own on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml
from parity import (
    QUESTIONS,
    assert_chat_page_answers,
    assert_golden_subset_equal,
    assert_runs_its_dialect,
    assert_same_answer,
    assert_same_draft,
    parquet_as_duckdb,
)
from spark_checks import (
    SLOW,
    assert_cancel_stops_a_running_query,
    assert_row_cap_and_byte_cap,
    assert_runs_queries_only,
    assert_threads_share_one_engine,
    assert_time_limit,
)

from lore import Lore
from lore.errors import ConfigError, EngineError, GuardError, OperatorError, QueryTimeout
from lore.execute.copy import export_duckdb_to_parquet
from lore.guard import guard_sql
from lore.project import EngineConfig
from lore.settings import Settings

pytest.importorskip("pyspark")

from lore.execute.spark import SparkEngine  # noqa: E402 - after the skip: importing it imports pyspark



@pytest.fixture(scope="module")
def spark_engine(spark_demo: dict) -> Iterator[SparkEngine]:
    engine = SparkEngine.open(Settings(query_timeout_s=20, max_rows=1000), tables=spark_demo["folder"])
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def spark_lore(spark_demo: dict, spark_engine: SparkEngine) -> Iterator[Lore]:
    lore = Lore.open(spark_demo["project"])
    lore.retriever  # noqa: B018 - the index, built before the first question (as `lore index build` does): on
    # Spark its 33 value and date-range queries take 6-11 s, which the first question's time budget cannot spare
    yield lore
    lore.close()


# --- the same answers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_equal_duckdb(question: str, spark_lore: Lore, demo_lore: Lore) -> None:
    assert_same_answer(spark_lore, demo_lore, question)


def test_the_chat_page_answers_on_spark(spark_demo: dict, spark_engine: SparkEngine, demo_lore: Lore,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert_chat_page_answers(spark_demo["project"], demo_lore, monkeypatch, "Apache Spark")


def test_answers_run_spark_sql(spark_lore: Lore) -> None:
    assert_runs_its_dialect(spark_lore, "spark")


def test_golden_subset_equals_duckdb(spark_lore: Lore, demo_lore: Lore) -> None:
    """The demo golden set (the CI subset: its first 40 cases) scores case for case as on DuckDB."""
    assert_golden_subset_equal(spark_lore, demo_lore)


def test_export_kept_every_table(spark_demo: dict, spark_engine: SparkEngine, demo_lore: Lore) -> None:
    assert set(spark_engine.schema()) == set(demo_lore.engine.schema())
    assert spark_engine.schema()["accounts"] == {"account_id": "BIGINT", "country_iso_code": "VARCHAR",
                                                 "plan": "VARCHAR", "signup_date": "DATE", "age_band": "VARCHAR"}
    assert spark_engine.schema()["streaming_sessions"]["streaming_hours"] == "DOUBLE"
    for table, rows in spark_demo["written"].items():
        assert spark_engine.run(f"SELECT COUNT(*) FROM `{table}`").rows[0][0] == rows


# --- the Parquet export --------------------------------------------------------------------------------------

EVERY_TYPE_SQL = r"""
CREATE TABLE every_type (
    id INTEGER, "Claim Amount" DECIMAL(12, 2), wide DECIMAL(38, 10), note VARCHAR, flag BOOLEAN, tiny TINYINT,
    small SMALLINT, big BIGINT, ubig UBIGINT, ratio FLOAT, measure DOUBLE, day DATE, stamp TIMESTAMP,
    stamp_ms TIMESTAMP_MS, instant TIMESTAMPTZ, raw BLOB
);
INSERT INTO every_type VALUES
    (1, 1234567890.12, 1234567890123456789012345678.0123456789, 'tab	and ünïcødé 🙂', TRUE, -128, -32768,
     -9223372036854775808, 18446744073709551615, 0.5, 1e300, DATE '2024-02-29', TIMESTAMP '2024-01-02 03:04:05.123456',
     TIMESTAMP_MS '2024-01-02 03:04:05.123', TIMESTAMPTZ '2024-07-01 01:02:03.456789+05:30', '\x00\x5C\xFF'::BLOB),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE VIEW big_claims AS SELECT id, "Claim Amount" FROM every_type WHERE "Claim Amount" > 0;
"""

#: each column as Spark's text (CAST ... AS STRING, the session in UTC), for row 1
EVERY_TYPE_TEXT = {
    "id": "1", "Claim Amount": "1234567890.12", "wide": "1234567890123456789012345678.0123456789",
    "note": "tab\tand ünïcødé 🙂", "flag": "true", "tiny": "-128", "small": "-32768", "big": "-9223372036854775808",
    "ubig": "18446744073709551615", "ratio": "0.5", "measure": "1.0E300", "day": "2024-02-29",
    "stamp": "2024-01-02 03:04:05.123456", "stamp_ms": "2024-01-02 03:04:05.123",
    "instant": "2024-06-30 19:32:03.456789", "raw": "005CFF",
}
EVERY_TYPE_TYPES = {
    "id": "INTEGER", "Claim Amount": "DECIMAL(12,2)", "wide": "DECIMAL(38,10)", "note": "VARCHAR", "flag": "BOOLEAN",
    "tiny": "TINYINT", "small": "SMALLINT", "big": "BIGINT", "ubig": "DECIMAL(20,0)", "ratio": "FLOAT",
    "measure": "DOUBLE", "day": "DATE", "stamp": "TIMESTAMP", "stamp_ms": "TIMESTAMP",
    "instant": "TIMESTAMP WITH TIME ZONE", "raw": "BLOB",
}


def _build(path: Path, script: str) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute(script)
    return path


def test_export_round_trips_values_and_types(tmp_path: Path, spark_engine: SparkEngine) -> None:
    source = _build(tmp_path / "every.duckdb", EVERY_TYPE_SQL)
    written = export_duckdb_to_parquet(source, tmp_path / "out")
    assert written == {"every_type": 2, "big_claims": 1}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["big_claims.parquet", "every_type.parquet"]
    with SparkEngine.open(Settings(), tables=tmp_path / "out") as engine:
        assert engine.schema()["every_type"] == EVERY_TYPE_TYPES
        texts = ", ".join(f"CAST(`{c}` AS STRING)" if c != "raw" else "hex(raw)" for c in EVERY_TYPE_TEXT)
        row, empty = engine.run(f"SELECT {texts} FROM every_type ORDER BY id").rows
        assert dict(zip(EVERY_TYPE_TEXT, row)) == EVERY_TYPE_TEXT
        assert empty[1:] == (None,) * (len(EVERY_TYPE_TEXT) - 1)
        result = engine.run("SELECT day, stamp, instant, `Claim Amount`, flag FROM every_type WHERE id = 1")
        assert result.rows == (("2024-02-29", "2024-01-02 03:04:05.123456", "2024-06-30 19:32:03.456789+00:00",
                                1234567890.12, True),)
        assert [c.type for c in result.columns] == ["DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "DECIMAL(12,2)",
                                                    "BOOLEAN"]
        assert engine.run("SELECT * FROM big_claims").rows == ((1, 1234567890.12),)


def test_export_refuses_what_spark_would_not_read_back(tmp_path: Path) -> None:
    source = _build(tmp_path / "odd.duckdb", "CREATE TABLE t (n HUGEINT, stamp TIMESTAMP_NS, d DATE); "
                                             "CREATE SCHEMA raw; CREATE TABLE raw.u (a INTEGER)")
    with pytest.raises(OperatorError) as err:
        export_duckdb_to_parquet(source, tmp_path / "out")
    text = str(err.value)
    assert 'column "n": HUGEINT' in text and 'column "stamp": TIMESTAMP_NS' in text and "raw.u" in text
    assert '"d"' not in text and "nothing was written" in text
    assert not (tmp_path / "out").exists()


def test_export_refuses_existing_files_unless_replace(tmp_path: Path) -> None:
    source = _build(tmp_path / "w.duckdb", "CREATE TABLE t AS SELECT 1 AS a")
    out = tmp_path / "out"
    export_duckdb_to_parquet(source, out)
    before = (out / "t.parquet").read_bytes()
    with duckdb.connect(str(source)) as con:
        con.execute("INSERT INTO t VALUES (2)")
    with pytest.raises(OperatorError, match="already exist"):
        export_duckdb_to_parquet(source, out)
    assert (out / "t.parquet").read_bytes() == before
    assert export_duckdb_to_parquet(source, out, replace=True) == {"t": 2}
    assert [p.name for p in out.iterdir()] == ["t.parquet"]  # no staging folder left behind


# --- hardening -----------------------------------------------------------------------------------------------


def test_writes_and_ddl_fail_even_past_the_guard(spark_engine: SparkEngine) -> None:
    """Spark runs DDL and DML eagerly; the engine lets its own parser accept one query and nothing else."""
    assert_runs_queries_only(spark_engine)


def test_sql_cannot_read_files(spark_demo: dict, spark_engine: SparkEngine) -> None:
    """spark.sql.runSQLOnFiles is off: a path as a table is an unknown table (and the guard refuses it first)."""
    for sql in (f"SELECT * FROM parquet.`{spark_demo['folder'] / 'accounts.parquet'}`", "SELECT * FROM text.`/etc/passwd`",
                "SELECT * FROM json.`/etc/passwd`"):
        with pytest.raises(EngineError, match="TABLE_OR_VIEW_NOT_FOUND"):
            spark_engine.run(sql)
        with pytest.raises(GuardError):
            guard_sql(sql, spark_engine.schema(), dialect="spark")


def test_sql_cannot_call_java(spark_engine: SparkEngine) -> None:
    """reflect, java_method and try_reflect are dropped from LORE's session (and the guard refuses them first)."""
    for function in ("reflect", "java_method", "try_reflect"):
        sql = f"SELECT {function}('java.lang.System', 'getProperty', 'user.home')"
        with pytest.raises(EngineError, match="UNRESOLVED_ROUTINE"):
            spark_engine.run(sql)
        with pytest.raises(GuardError):
            guard_sql(sql, spark_engine.schema(), dialect="spark")


def test_the_driver_is_local_private_and_read_back(spark_engine: SparkEngine) -> None:
    from pyspark import SparkContext

    conf = dict(SparkContext.getOrCreate().getConf().getAll())
    assert conf["spark.sql.catalogImplementation"] == "in-memory"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.master"].startswith("local")
    assert conf["spark.driver.maxResultSize"] == "128m"  # twice the first engine's byte cap (64 MB by default)
    assert spark_engine.run("SELECT current_timezone()").rows == (("UTC",),)


def test_time_limit(spark_engine: SparkEngine) -> None:
    assert_time_limit(spark_engine, within_s=10)


def test_row_cap_and_byte_cap(spark_demo: dict, spark_engine: SparkEngine) -> None:
    with SparkEngine.open(Settings(max_rows=50, max_result_mb=0.05), tables=spark_demo["folder"]) as engine:
        assert_row_cap_and_byte_cap(engine)


def test_cancel_stops_a_running_query(spark_engine: SparkEngine) -> None:
    assert_cancel_stops_a_running_query(spark_engine)


def test_threads_share_one_engine(spark_engine: SparkEngine) -> None:
    assert_threads_share_one_engine(spark_engine)


def test_a_timeout_in_one_thread_leaves_the_others_alone(spark_engine: SparkEngine) -> None:
    """Each query's jobs carry their own tag: the watchdog of one cancels its jobs only."""
    outcome: dict[str, object] = {}

    def slow() -> None:
        try:
            spark_engine.run(SLOW, timeout_s=1.5)
        except QueryTimeout as err:
            outcome["slow"] = err

    def fast() -> None:
        time.sleep(0.5)
        outcome["fast"] = [spark_engine.run("SELECT COUNT(*) FROM accounts").rows for _ in range(5)]

    threads = [threading.Thread(target=slow), threading.Thread(target=fast)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(outcome["slow"], QueryTimeout)
    assert len(outcome["fast"]) == 5


def test_data_version_follows_the_files(tmp_path: Path, spark_engine: SparkEngine) -> None:
    source = _build(tmp_path / "w.duckdb", "CREATE TABLE t AS SELECT 1 AS a")
    export_duckdb_to_parquet(source, tmp_path / "out")
    with SparkEngine.open(Settings(), tables=tmp_path / "out") as engine:
        before = engine.data_version()
        assert engine.data_version() == before
        with duckdb.connect(str(source)) as con:
            con.execute("INSERT INTO t VALUES (2)")
        export_duckdb_to_parquet(source, tmp_path / "out", replace=True)
        assert engine.data_version() != before
        assert engine.description == f"{tmp_path / 'out'} (spark local[2])"


def test_engine_errors_say_what_to_do(spark_engine: SparkEngine) -> None:
    with pytest.raises(EngineError) as err:
        spark_engine.run("SELECT no_such_column FROM accounts")
    assert "UNRESOLVED_COLUMN" in str(err.value)
    assert err.value.hint == "The query names a table, column or function the warehouse does not have."
    assert err.value.sql == "SELECT no_such_column FROM accounts"


# --- configuration -------------------------------------------------------------------------------------------


def test_bad_folders_say_what_to_do(tmp_path: Path, spark_engine: SparkEngine) -> None:
    with pytest.raises(OperatorError, match="No folder of Parquet tables") as err:
        SparkEngine.open(Settings(), tables=tmp_path / "missing")
    assert "lore warehouse copy --to spark" in (err.value.hint or "")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OperatorError, match="holds no Parquet tables") as err:
        SparkEngine.open(Settings(), tables=tmp_path / "empty")
    assert "lore warehouse copy --to spark" in (err.value.hint or "")
    nested = tmp_path / "nested"
    (nested / "raw" / "orders").mkdir(parents=True)
    with pytest.raises(OperatorError, match="holds schemas of tables"):
        SparkEngine.open(Settings(), tables=nested)
    with pytest.raises(ConfigError, match="not a local master"):
        SparkEngine.open(Settings(), tables=tmp_path / "empty", master="spark://elsewhere:7077")


def test_missing_pyspark_says_what_to_do(spark_demo: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lore.execute.spark", None)  # as if pyspark were not installed
    with pytest.raises(ConfigError, match="needs pyspark") as err:
        Lore.open(spark_demo["project"]).engine  # noqa: B018 - opening the engine is the test
    assert "lore-analytics[spark]" in (err.value.hint or "")


def test_missing_java_says_what_to_do(spark_demo: dict) -> None:
    """In a process of its own (this one's driver is running): no java on PATH and no JAVA_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME")}
    env["PATH"] = str(Path(sys.executable).parent)
    code = ("import sys; from pathlib import Path; from lore.errors import OperatorError; "
            "from lore.execute.spark import SparkEngine; from lore.settings import Settings\n"
            "try:\n    SparkEngine.open(Settings(), tables=Path(sys.argv[1]))\n"
            "except OperatorError as err:\n    print(err); sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", code, str(spark_demo["folder"])], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    assert "needs a Java runtime" in done.stdout and "openjdk-17-jre-headless" in done.stdout


def test_importing_lore_does_not_import_pyspark() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys, lore, lore.core, lore.execute.open, lore.cli; "
                                                 "print('pyspark' in sys.modules)"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_lore_yaml_engine_section(tmp_path: Path) -> None:
    from lore.project import Project, write_config

    (tmp_path / "lore.yaml").write_text("engine:\n  type: spark\n  tables: parquet\n")
    project = Project.open(tmp_path)
    assert project.config.engine.type == "spark" and project.config.engine.url_env == "LORE_SPARK_REMOTE"
    assert project.dialect == "spark" and project.spark_tables == (tmp_path / "parquet").resolve()
    write_config(tmp_path, project.config)
    assert Project.open(tmp_path).config == project.config


def test_lore_yaml_driver_memory(tmp_path: Path, spark_engine: SparkEngine) -> None:
    from lore.project import Project

    (tmp_path / "lore.yaml").write_text("engine:\n  type: spark\n  tables: parquet\n  driver_memory: 4G\n")
    assert Project.open(tmp_path).config.engine.driver_memory == "4g"
    (tmp_path / "lore.yaml").write_text("engine:\n  type: spark\n  driver_memory: lots\n")
    with pytest.raises(ConfigError, match="driver_memory") as err:
        Project.open(tmp_path)
    assert "e.g. 4g" in str(err.value) + (err.value.hint or "")
    # the session's driver was started with the default, read back from the running JVM, and LORE's log set-up
    conf = spark_engine._session.sparkContext.getConf()
    assert conf.get("spark.driver.memory") == "1g"
    assert "spark-log4j2.properties" in conf.get("spark.driver.extraJavaOptions")


def test_cli_copy_to_spark_and_switch(tmp_path: Path, demo_dir: Path, spark_engine: SparkEngine) -> None:
    from typer.testing import CliRunner

    from lore.cli import app

    project = tmp_path / "p"
    shutil.copytree(demo_dir, project, ignore=shutil.ignore_patterns(".lore"))
    result = CliRunner().invoke(app, ["warehouse", "copy", "--to", "spark", "--switch", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert "lore.yaml now names engine: spark" in result.output
    config = yaml.safe_load((project / "lore.yaml").read_text())
    assert config["engine"]["type"] == "spark" and config["engine"]["tables"] == "parquet"
    assert (project / "parquet" / "accounts.parquet").is_file()
    again = CliRunner().invoke(app, ["warehouse", "copy", "--to", "spark", "--project", str(project)])
    assert again.exit_code == 2 and "already exist" in again.output  # misuse: the files are there
    with Lore.open(project) as lore:
        assert lore.dialect == "spark"
        assert lore.engine.run("SELECT COUNT(*) FROM accounts").rows == spark_engine.run(
            "SELECT COUNT(*) FROM accounts").rows


# --- lore init on Spark --------------------------------------------------------------------------------------


def test_lore_init_drafts_from_parquet_as_from_duckdb(spark_demo: dict, spark_engine: SparkEngine,
                                                      tmp_path: Path) -> None:
    """`lore init --engine spark --warehouse FOLDER` profiles the Parquet tables with the same questions in Spark's
    dialect: the draft equals the one drafted from a DuckDB file holding the same tables (Parquet declares no keys
    and no comments, so both find them from the values), lore.yaml names the folder, and the draft answers on Spark."""
    from typer.testing import CliRunner

    from lore.cli import app
    from lore.onboard.init import init_project
    from lore.project import Project

    on_duck = init_project(tmp_path / "duck", parquet_as_duckdb(spark_demo["folder"], tmp_path / "same.duckdb"))
    result = CliRunner().invoke(app, ["init", str(tmp_path / "sp"), "--engine", "spark",
                                      "--warehouse", str(spark_demo["folder"]), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["warehouse"].startswith(f"{spark_demo['folder']} (spark local") and not report["issues"]
    assert_same_draft(tmp_path / "sp", on_duck)
    assert (report["metrics"], report["keys"], report["links"]) == (on_duck.draft.metrics, on_duck.draft.keys,
                                                                      on_duck.draft.links)
    config = yaml.safe_load((tmp_path / "sp" / "lore.yaml").read_text())
    assert config["engine"] == {"type": "spark", "url_env": "LORE_SPARK_REMOTE", "tables": str(spark_demo["folder"])}
    assert "warehouse" not in config and "dialect" not in config  # no DuckDB file, and Spark's own dialect
    assert Project.open(tmp_path / "sp").spark_tables == spark_demo["folder"].resolve()
    with Lore.open(tmp_path / "sp") as lore:
        metric = sorted(lore.layer.metrics)[0]
        assert lore.engine.dialect == "spark" and lore.semantic.data([metric]).rows


def test_lore_init_on_spark_says_what_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lore.errors import ProjectNotFound
    from lore.onboard.init import init_project

    monkeypatch.delenv("LORE_SPARK_REMOTE", raising=False)
    with pytest.raises(OperatorError, match="Name the Spark tables") as err:
        init_project(tmp_path / "a", None, engine=EngineConfig(type="spark"))
    assert "--warehouse FOLDER" in (err.value.hint or "") and "LORE_SPARK_REMOTE" in (err.value.hint or "")
    (tmp_path / "file.parquet").write_bytes(b"")
    with pytest.raises(ProjectNotFound, match="No folder of Parquet tables") as err:
        init_project(tmp_path / "b", tmp_path / "file.parquet", engine=EngineConfig(type="spark"))
    assert "lore warehouse copy --to spark" in (err.value.hint or "")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
