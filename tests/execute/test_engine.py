"""The hardened DuckDB engine, on a real DuckDB file built in a tmp dir.

These tests bypass the guard on purpose: layer 2 must hold on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from lore.errors import EngineError, OperatorError, ProjectNotFound, QueryTimeout
from lore.execute.engine import Engine
from lore.settings import Settings

REPO = Path(__file__).resolve().parents[2]
#: a cross join of `numbers` with itself three times that DuckDB cannot shortcut (about 2.7e10 rows)
SLOW_SQL = "SELECT COUNT(*) AS n FROM numbers a, numbers b, numbers c WHERE (a.n * b.n + c.n) % 7919 = 3"

FIXTURE_SQL = '''
CREATE TABLE items (
    id INTEGER, name VARCHAR, price DECIMAL(10, 2), weight DOUBLE, big HUGEINT, added DATE,
    seen TIMESTAMP, active BOOLEAN, tags VARCHAR[], "odd ""name""" VARCHAR
);
INSERT INTO items VALUES
    (1, 'apple', 1.50, 0.2, 12345678901234567890, DATE '2025-01-31', TIMESTAMP '2025-01-31 12:30:00', TRUE,
     ['red', 'fruit'], 'x'),
    (2, 'pear', 2.25, NULL, NULL, DATE '2025-02-01', NULL, FALSE, [], 'y'),
    (3, 'O''Brien', NULL, 1e300, -1, NULL, TIMESTAMP '2025-03-01 00:00:00', NULL, NULL, 'x');
CREATE TABLE numbers AS SELECT range::INTEGER AS n, 'v' || (range % 7)::VARCHAR AS label FROM range(3000);
CREATE SCHEMA other;
CREATE TABLE other.hidden (secret VARCHAR);
'''


def _build(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute(FIXTURE_SQL)
    con.close()
    return path


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "query_timeout_s": 10.0,
        "duckdb_threads": 1,
        "duckdb_memory_limit": "256MB",
        "duckdb_max_temp_directory_size": "64MB",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _string(text: str) -> str:
    """A SQL string literal, quoted through sqlglot."""
    return exp.Literal.string(text).sql(dialect="duckdb")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("engine") / "warehouse.duckdb")


@pytest.fixture(scope="module")
def engine(warehouse: Path):
    eng = Engine.open(warehouse, _settings())
    yield eng
    eng.close()


# --- opening -----------------------------------------------------------------------
def test_missing_warehouse_names_demo_init_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.duckdb"
    with pytest.raises(ProjectNotFound) as caught:
        Engine.open(missing, _settings())
    assert isinstance(caught.value, OperatorError)
    assert "lore demo init" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_duckdb_is_an_operator_error(tmp_path: Path) -> None:
    bogus = tmp_path / "warehouse.duckdb"
    bogus.write_text("not a database")
    with pytest.raises(OperatorError):
        Engine.open(bogus, _settings())
    assert bogus.read_text() == "not a database"


def test_schema_comes_from_the_catalog(engine: Engine) -> None:
    schema = engine.schema()
    assert set(schema) == {"items", "numbers", "other.hidden"}  # main's tables by their bare names
    assert schema["numbers"] == {"n": "INTEGER", "label": "VARCHAR"}
    assert schema["items"]["price"] == "DECIMAL(10,2)"
    assert schema["items"]['odd "name"'] == "VARCHAR"
    schema["items"].clear()  # a copy: the engine's own view is unchanged
    assert engine.schema()["items"]


def test_connection_reads_back_hardened(engine: Engine) -> None:
    names = [
        "access_mode",
        "enable_external_access",
        "lock_configuration",
        "autoinstall_known_extensions",
        "autoload_known_extensions",
        "allow_community_extensions",
        "allow_unsigned_extensions",
        "python_enable_replacements",
        "threads",
        "max_execution_time",
    ]
    projections = ", ".join(f"CAST(current_setting({_string(n)}) AS VARCHAR)" for n in names)
    row = engine.run("SELECT " + projections).rows[0]
    assert dict(zip(names, row)) == {
        "access_mode": "read_only",
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
        "allow_unsigned_extensions": "false",
        "python_enable_replacements": "false",
        "threads": "1",
        "max_execution_time": "10000",
    }


# --- layer 2 holds without the guard ----------------------------------------------
WRITES = [
    "CREATE TABLE stolen (a INTEGER)",
    "CREATE TABLE stolen AS SELECT * FROM items",
    "INSERT INTO items (id) VALUES (99)",
    "UPDATE items SET name = 'x'",
    "DELETE FROM items",
    "DROP TABLE items",
    "ALTER TABLE items ADD COLUMN z INTEGER",
    "CREATE VIEW v AS SELECT 1",
    "CREATE MACRO evil(a) AS a",
    "CREATE SEQUENCE s",
    "WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d",
]


@pytest.mark.parametrize("sql", WRITES)
def test_writes_fail_even_without_the_guard(sql: str, engine: Engine, warehouse: Path) -> None:
    before = _digest(warehouse)
    with pytest.raises(EngineError) as caught:
        engine.run(sql)
    assert caught.value.sql == sql
    assert _digest(warehouse) == before
    assert engine.run("SELECT COUNT(*) AS n FROM items").rows == ((3,),)


def test_temp_tables_are_possible_read_only_so_the_guard_must_stop_them(engine: Engine, warehouse: Path) -> None:
    """Documents why layer 1 refuses CREATE: read-only DuckDB still allows TEMP tables (per cursor here)."""
    before = _digest(warehouse)
    engine.run("CREATE TEMP TABLE scratch AS SELECT 1 AS a")
    with pytest.raises(EngineError):
        engine.run("SELECT * FROM scratch")  # the cursor that made it is gone
    assert _digest(warehouse) == before


def test_external_access_is_off(engine: Engine, tmp_path: Path, warehouse: Path) -> None:
    csv = tmp_path / "leak.csv"
    csv.write_text("a,b\n1,2\n")
    with duckdb.connect(":memory:") as plain:  # the control: a plain connection can read the file
        assert plain.execute("SELECT * FROM read_csv(" + _string(str(csv)) + ")").fetchall() == [(1, 2)]
    attempts = [
        "SELECT * FROM read_csv(" + _string(str(csv)) + ")",
        "SELECT * FROM " + _string(str(csv)),
        "SELECT * FROM read_text(" + _string(str(csv)) + ")",
        "SELECT * FROM glob(" + _string(str(tmp_path / "*")) + ")",
        "COPY items TO " + _string(str(tmp_path / "out.csv")),
        "ATTACH " + _string(str(tmp_path / "other.duckdb")) + " AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SELECT * FROM read_parquet('https://example.invalid/x.parquet')",
    ]
    before = _digest(warehouse)
    for sql in attempts:
        with pytest.raises(EngineError) as caught:
            engine.run(sql)
        assert "Permission Error" in str(caught.value), sql
        assert caught.value.hint and "disabled" in caught.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leak.csv"]
    assert _digest(warehouse) == before


@pytest.mark.parametrize(
    "sql",
    [
        "SET threads = 4",
        "SET enable_external_access = true",
        "SET GLOBAL enable_external_access = true",
        "SET lock_configuration = false",
        "RESET lock_configuration",
        "SET memory_limit = '100GB'",
        "SET max_execution_time = 0",
        "SET autoload_known_extensions = true",
        "PRAGMA threads = 3",
    ],
)
def test_configuration_is_locked(sql: str, engine: Engine) -> None:
    with pytest.raises(EngineError) as caught:
        engine.run(sql)
    assert "locked" in str(caught.value)
    row = engine.run("SELECT CAST(current_setting('enable_external_access') AS VARCHAR) AS v").rows
    assert row == (("false",),)


# --- time and rows -----------------------------------------------------------------
def test_watchdog_interrupts_a_slow_cross_join_and_the_engine_recovers(engine: Engine) -> None:
    started = time.perf_counter()
    with pytest.raises(QueryTimeout) as caught:
        engine.run(SLOW_SQL, timeout_s=0.5)
    elapsed = time.perf_counter() - started
    assert 0.4 <= elapsed < 5, elapsed
    assert caught.value.sql == SLOW_SQL
    assert isinstance(caught.value, EngineError)
    assert engine.run("SELECT COUNT(*) AS n FROM numbers").rows == ((3000,),)


def test_settings_timeout_applies_without_a_per_call_limit(tmp_path: Path) -> None:
    with Engine.open(_build(tmp_path / "w.duckdb"), _settings(query_timeout_s=0.5)) as eng:
        started = time.perf_counter()
        with pytest.raises(QueryTimeout):
            eng.run(SLOW_SQL, timeout_s=60)  # a longer per-call limit cannot exceed the setting
        assert time.perf_counter() - started < 5
        assert eng.run("SELECT 1 AS one").rows == ((1,),)


def test_a_timeout_in_one_thread_leaves_other_threads_alone(engine: Engine) -> None:
    outcomes: dict[str, object] = {}

    def slow() -> None:
        try:
            engine.run(SLOW_SQL, timeout_s=1.0)
        except QueryTimeout as err:
            outcomes["slow"] = err

    def fast() -> None:
        outcomes["fast"] = [engine.run("SELECT SUM(n) AS s FROM numbers").rows for _ in range(5)]

    threads = [threading.Thread(target=slow), threading.Thread(target=fast)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert isinstance(outcomes["slow"], QueryTimeout)
    assert outcomes["fast"] == [((4498500,),)] * 5


def test_queries_past_the_concurrency_cap_wait_their_turn_within_their_time_limit(tmp_path: Path) -> None:
    """With one query at a time, a query arriving while a slow one runs waits; past its own limit it stops with a
    timeout that says the warehouse was busy, and once the slow one ends the next runs at once."""
    with Engine.open(_build(tmp_path / "w.duckdb"), _settings(duckdb_max_concurrent_queries=1)) as eng:
        outcome: dict[str, object] = {}
        started = threading.Event()

        def slow() -> None:
            started.set()
            try:
                eng.run(SLOW_SQL, timeout_s=3.0)
            except QueryTimeout as err:
                outcome["slow"] = err

        thread = threading.Thread(target=slow)
        thread.start()
        started.wait(10)
        time.sleep(0.3)  # let the slow query take its turn
        with pytest.raises(QueryTimeout, match="busy with other queries") as caught:
            eng.run("SELECT 1 AS one", timeout_s=0.3)
        assert "LORE_DUCKDB_MAX_CONCURRENT_QUERIES" in (caught.value.hint or "")
        thread.join(timeout=20)
        assert isinstance(outcome["slow"], QueryTimeout) and "busy" not in str(outcome["slow"])
        assert eng.run("SELECT 1 AS one", timeout_s=0.3).rows == ((1,),)


def test_rows_are_capped_and_truncation_is_reported(engine: Engine) -> None:
    capped = engine.run("SELECT n FROM numbers ORDER BY n", max_rows=10)
    assert capped.rows == tuple((i,) for i in range(10))
    assert capped.truncated
    exact = engine.run("SELECT n FROM numbers WHERE n < 10 ORDER BY n", max_rows=10)
    assert len(exact.rows) == 10 and not exact.truncated
    by_setting = engine.run("SELECT n FROM numbers")  # default cap: Settings.max_rows (10,000)
    assert len(by_setting.rows) == 3000 and not by_setting.truncated


def test_results_are_capped_by_size_as_well_as_by_rows(warehouse: Path) -> None:
    """2,000 rows of a 10,000-character literal are 20 MB: over a 1 MB cap, refused before they are all read."""
    small = Engine.open(warehouse, _settings(max_result_mb=1))
    try:
        with pytest.raises(EngineError) as err:
            small.run(f"SELECT {_string('x' * 10_000)} AS s FROM numbers LIMIT 2000")
        assert "LORE_MAX_RESULT_MB" in (err.value.hint or "") and err.value.sql
        fits = small.run(f"SELECT {_string('x' * 10_000)} AS s FROM numbers LIMIT 50")  # 0.5 MB
        assert len(fits.rows) == 50 and not fits.truncated
        assert len(small.run("SELECT n, label FROM numbers").rows) == 3000  # batches add up to the whole result
        capped = small.run("SELECT n FROM numbers ORDER BY n", max_rows=1000)
        assert len(capped.rows) == 1000 and capped.truncated and capped.rows[-1] == (999,)
    finally:
        small.close()


def test_values_and_types_are_json_serialisable(engine: Engine) -> None:
    result = engine.run("SELECT * EXCLUDE (\"odd \"\"name\"\"\") FROM items ORDER BY id")
    types = {c.name: c.type for c in result.columns}
    assert types == {
        "id": "INTEGER",
        "name": "VARCHAR",
        "price": "DECIMAL(10,2)",
        "weight": "DOUBLE",
        "big": "HUGEINT",
        "added": "DATE",
        "seen": "TIMESTAMP",
        "active": "BOOLEAN",
        "tags": "VARCHAR[]",
    }
    first, second, third = result.records()
    assert first["price"] == 1.5 and first["added"] == "2025-01-31" and first["seen"] == "2025-01-31 12:30:00"
    assert first["big"] == 12345678901234567890 and first["active"] is True
    assert second["weight"] is None and second["seen"] is None
    assert third["name"] == "O'Brien" and third["price"] is None
    text = json.dumps(result.model_dump(), allow_nan=False)
    assert json.loads(text)["rows"][0][0] == 1
    assert result.sql is not None and result.elapsed_ms >= 0


def test_engine_errors_carry_the_sql_and_a_hint(engine: Engine) -> None:
    with pytest.raises(EngineError) as caught:
        engine.run("SELECT nope FROM items")
    assert caught.value.sql == "SELECT nope FROM items"
    assert caught.value.hint
    assert not isinstance(caught.value, QueryTimeout)


def test_distinct_values(engine: Engine) -> None:
    assert engine.distinct_values("numbers", "label") == [f"v{i}" for i in range(7)]
    assert engine.distinct_values("numbers", "label", max_values=6) is None
    assert engine.distinct_values("items", 'odd "name"') == ["x", "y"]
    assert engine.distinct_values("ITEMS", "Name") == ["O'Brien", "apple", "pear"]
    assert engine.distinct_values("numbers", "n", max_values=200) is None
    with pytest.raises(EngineError):
        engine.distinct_values("hidden", "secret")  # a bare name is a table of main
    with pytest.raises(EngineError):
        engine.distinct_values("items", "name; DROP TABLE items")


#: tables in several schemas: ``orders`` in main and in raw (different rows), a view, awkward names
SCHEMAS_SQL = '''
CREATE TABLE orders (order_id INTEGER, status VARCHAR, placed DATE);
INSERT INTO orders VALUES (1, 'main-paid', DATE '2025-01-01');
CREATE SCHEMA raw;
CREATE TABLE raw.orders (order_id INTEGER, status VARCHAR, placed DATE);
INSERT INTO raw.orders VALUES (1, 'paid', DATE '2025-02-03'), (2, 'refunded', DATE '2025-03-04'), (3, 'paid', NULL);
CREATE SCHEMA analytics;
CREATE VIEW analytics.paid AS SELECT order_id FROM raw.orders WHERE status = 'paid';
CREATE SCHEMA "Sales Data";
CREATE TABLE "Sales Data"."Order Lines" ("Line Kind" VARCHAR);
INSERT INTO "Sales Data"."Order Lines" VALUES ('gift'), ('plain'), ('gift');
CREATE TABLE raw."a.b" (x INTEGER);
CREATE SCHEMA empty;
'''


@pytest.fixture(scope="module")
def schemas_engine(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("schemas") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(SCHEMAS_SQL)
    con.close()
    eng = Engine.open(path, _settings())
    yield eng
    eng.close()


def test_schema_holds_the_tables_and_views_of_every_user_schema(schemas_engine: Engine) -> None:
    schema = schemas_engine.schema()
    # main keeps bare names; the others are schema.table; the catalog's own schemas and other databases are
    # left out, and so is a table whose name holds a dot (no name could tell it from a schema's table)
    assert list(schema) == ["orders", "Sales Data.Order Lines", "analytics.paid", "raw.orders"]
    assert schema["raw.orders"] == {"order_id": "INTEGER", "status": "VARCHAR", "placed": "DATE"}
    assert schema["analytics.paid"] == {"order_id": "INTEGER"}


def test_values_and_time_bounds_of_a_table_in_another_schema(schemas_engine: Engine) -> None:
    assert schemas_engine.distinct_values("raw.orders", "status") == ["paid", "refunded"]
    assert schemas_engine.distinct_values("RAW.Orders", "STATUS") == ["paid", "refunded"]
    assert schemas_engine.distinct_values("orders", "status") == ["main-paid"]  # the bare name is main's table
    assert schemas_engine.distinct_values("main.orders", "status") == ["main-paid"]
    assert schemas_engine.distinct_values("Sales Data.Order Lines", "Line Kind") == ["gift", "plain"]
    assert schemas_engine.time_bounds("raw.orders", "placed") == ("2025-02-03", "2025-03-04")
    for table in ("other.orders", "analytics.orders", "raw", "warehouse.raw.orders"):
        with pytest.raises(EngineError):
            schemas_engine.distinct_values(table, "status")


def test_closed_engine_refuses_to_run(tmp_path: Path) -> None:
    eng = Engine.open(_build(tmp_path / "w.duckdb"), _settings())
    eng.close()
    eng.close()  # idempotent
    with pytest.raises(EngineError):
        eng.run("SELECT 1")


# --- several processes --------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from lore.execute.engine import Engine
    from lore.settings import Settings

    engine = Engine.open(Path(sys.argv[1]), Settings(duckdb_threads=1, duckdb_memory_limit="128MB"))
    rows = engine.run("SELECT COUNT(*) AS n FROM numbers").rows
    print(json.dumps(rows), flush=True)
    sys.stdin.readline()  # hold the warehouse open until the parent says so
    print(json.dumps(engine.run("SELECT MAX(n) AS m FROM numbers").rows), flush=True)
    engine.close()
    """
)

WRITER = textwrap.dedent(
    """
    import sys, duckdb
    try:
        duckdb.connect(sys.argv[1]).close()
    except duckdb.Error as err:
        print("refused:", type(err).__name__, str(err).splitlines()[0])
    else:
        print("opened read-write")
    """
)


def test_two_processes_read_the_warehouse_at_once_and_none_can_write(engine: Engine, warehouse: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert json.loads(child.stdout.readline()) == [[3000]]
        # both processes hold the file read-only now; this one still answers
        assert engine.run("SELECT MIN(n) AS m FROM numbers").rows == ((0,),)
        writer = subprocess.run(
            [sys.executable, "-c", WRITER, str(warehouse)], capture_output=True, text=True, env=env, timeout=60
        )
        assert writer.stdout.startswith("refused:") and "lock" in writer.stdout, writer.stdout + writer.stderr
        child.stdin.write("go\n")
        child.stdin.flush()
        assert json.loads(child.stdout.readline()) == [[2999]]
        assert child.wait(timeout=60) == 0, child.stderr.read() if child.stderr else ""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_engines_in_one_process_share_the_hardened_instance(warehouse: Path, engine: Engine) -> None:
    """DuckDB shares one instance per file in a process: a second Engine verifies the lock-down instead of redoing it."""
    with Engine.open(warehouse, _settings()) as second:
        assert second.run("SELECT COUNT(*) AS n FROM numbers").rows == ((3000,),)
        with pytest.raises(EngineError):
            second.run("SET enable_external_access = true")
    with Engine.open(warehouse, _settings(query_timeout_s=0.5)) as quick:  # its own watchdog, same instance
        with pytest.raises(QueryTimeout):
            quick.run(SLOW_SQL)
    with pytest.raises(OperatorError) as caught:
        Engine.open(warehouse, _settings(duckdb_threads=2))
    assert "same settings" in str(caught.value)
    assert engine.run("SELECT 1 AS one").rows == ((1,),)  # the first engine is unaffected
