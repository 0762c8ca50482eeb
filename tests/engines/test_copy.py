"""Copying a DuckDB warehouse into PostgreSQL (lore/execute/copy.py), on the session's throwaway server.

Values are compared exactly: numbers, text and bytes as Python values read back from both engines;
dates, times and intervals as PostgreSQL's text (Python's types cannot hold ``infinity`` or BC dates).
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import duckdb
import pytest
from evals.servers.postgres import PgServer
from sqlglot import exp

from lore.errors import OperatorError
from lore.execute.copy import copy_duckdb_to_postgres

psycopg = pytest.importorskip("psycopg")

EVERY_TYPE_SQL = r'''
CREATE TABLE every_type (
    id INTEGER PRIMARY KEY, "Claim Amount" DECIMAL(12, 2) NOT NULL, "say ""hi""" VARCHAR, flag BOOLEAN,
    tiny TINYINT, small SMALLINT, big BIGINT, huge HUGEINT, ubig UBIGINT, ratio FLOAT, measure DOUBLE,
    day DATE, stamp TIMESTAMP, stamp_ms TIMESTAMP_MS, stamp_zone TIMESTAMPTZ, clock TIME, span INTERVAL, id_uuid UUID,
    raw BLOB
);
INSERT INTO every_type VALUES
    (1, 1234567890.12, 'plain', TRUE, -128, -32768, -9223372036854775808, 170141183460469231731687303715884105727,
     18446744073709551615, 0.1, 1e300, DATE '2024-02-29', TIMESTAMP '2024-01-02 03:04:05.123456',
     TIMESTAMP_MS '2024-01-02 03:04:05.123', TIMESTAMPTZ '2024-07-01 01:02:03.456789+05:30', TIME '23:59:59.999999',
     INTERVAL '1 year 2 months 3 days 04:05:06.789', '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab', '\x00\x5C\xFF'::BLOB),
    (2, -0.01, E'tab\there\nnew line \\ backslash, "quotes" and ünïcødé 🙂', FALSE, 127, 32767, 9223372036854775807,
     -170141183460469231731687303715884105727, 0, 'NaN', '-Infinity', DATE '0044-03-15 (BC)', 'infinity'::TIMESTAMP,
     NULL, '-infinity'::TIMESTAMPTZ, TIME '00:00:00', INTERVAL '-1 month -00:00:01', NULL, ''::BLOB),
    (3, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE VIEW big_claims AS SELECT id, "Claim Amount" FROM every_type WHERE "Claim Amount" > 0;
CREATE SCHEMA "raw data";
CREATE TABLE "raw data".events (event_id BIGINT, kind VARCHAR NOT NULL, PRIMARY KEY (event_id, kind));
INSERT INTO "raw data".events SELECT range, 'kind ' || (range % 3) FROM range(12000);
'''

#: the PostgreSQL type each column gets
EXPECTED_TYPES = {
    "id": "integer", "Claim Amount": "numeric(12,2)", 'say "hi"': "text", "flag": "boolean", "tiny": "smallint",
    "small": "smallint", "big": "bigint", "huge": "numeric(39,0)", "ubig": "numeric(20,0)", "ratio": "real",
    "measure": "double precision", "day": "date", "stamp": "timestamp without time zone",
    "stamp_ms": "timestamp without time zone", "stamp_zone": "timestamp with time zone", "clock": "time without time zone",
    "span": "interval", "id_uuid": "uuid", "raw": "bytea",
}
#: columns read back as PostgreSQL's text (session TimeZone UTC, DateStyle ISO)
TEXT_COLUMNS = ("day", "stamp", "stamp_ms", "stamp_zone", "clock", "span")
EXPECTED_TEXT = {
    1: ("2024-02-29", "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.123", "2024-06-30 19:32:03.456789+00",
        "23:59:59.999999", "1 year 2 mons 3 days 04:05:06.789"),
    2: ("0044-03-15 BC", "infinity", None, "-infinity", "00:00:00", "-1 mons -00:00:01"),
    3: (None,) * 6,
}
VALUE_COLUMNS = ("id", "Claim Amount", 'say "hi"', "flag", "tiny", "small", "big", "huge", "ubig", "measure",
                 "id_uuid", "raw")


def _admin(server: PgServer, database: str) -> str:
    return server.url_for("postgres", server.password, database)


def _build(path: Path, script: str) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute(script)
    return path


@pytest.fixture()
def every_type(tmp_path: Path) -> Path:
    return _build(tmp_path / "every_type.duckdb", EVERY_TYPE_SQL)


def _select(columns: list[exp.Expression], table: exp.Table, dialect: str, order: str = "id") -> str:
    return exp.select(*columns).from_(table).order_by(exp.column(order, quoted=True)).sql(dialect=dialect)


def test_every_mapped_type_arrives_exactly(pg_server: PgServer, pg_database: str, every_type: Path) -> None:
    seen: list[tuple[str, int]] = []
    copied = copy_duckdb_to_postgres(every_type, _admin(pg_server, pg_database),
                                     progress=lambda table, rows: seen.append((table, rows)))
    assert copied == {"every_type": 3, "big_claims": 1, "raw data.events": 12000}
    assert seen[:2] == [("big_claims", 0), ("big_claims", 1)]
    assert ("raw data.events", 5000) in seen and seen[-1] == ("raw data.events", 12000)

    table = exp.Table(this=exp.to_identifier("every_type", quoted=True))
    values = [exp.column(name, quoted=True) for name in VALUE_COLUMNS]
    with duckdb.connect(str(every_type), read_only=True) as con:
        expected = con.execute(_select(values, table, "duckdb")).fetchall()
        ratios = [row[0] for row in con.execute("SELECT ratio FROM every_type ORDER BY id").fetchall()]
    texts = [exp.cast(exp.column(name, quoted=True), "TEXT") for name in TEXT_COLUMNS]
    real_as_double = [exp.cast(exp.column("ratio", quoted=True), "DOUBLE")]
    with psycopg.connect(_admin(pg_server, pg_database)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        assert _nan_safe(conn.execute(_select(values, table, "postgres")).fetchall()) == _nan_safe(expected)
        assert _nan_safe(conn.execute(_select(real_as_double, table, "postgres")).fetchall()) == _nan_safe(
            [(r,) for r in ratios])
        assert {row[0]: row[1:] for row in conn.execute(
            _select([exp.column("id"), *texts], table, "postgres")).fetchall()} == EXPECTED_TEXT
        assert dict(conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'public.every_type'::regclass AND attnum > 0").fetchall()) == EXPECTED_TYPES
        not_null = conn.execute("SELECT attrelid::regclass::text, attname FROM pg_attribute WHERE attnotnull AND "
                                "attnum > 0 AND attrelid IN ('public.every_type'::regclass, "
                                "'\"raw data\".events'::regclass, 'public.big_claims'::regclass) ORDER BY 1, 2"
                                ).fetchall()
        assert not_null == [('"raw data".events', "event_id"), ('"raw data".events', "kind"),
                            ("every_type", "Claim Amount"), ("every_type", "id")]
        keys = conn.execute("SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE contype = 'p' AND connamespace <> 'pg_catalog'::regnamespace ORDER BY 1").fetchall()
        assert keys == [('"raw data".events', "PRIMARY KEY (event_id, kind)"), ("every_type", "PRIMARY KEY (id)")]
        assert conn.execute('SELECT id, "Claim Amount" FROM big_claims').fetchall() == [(1, Decimal("1234567890.12"))]
        assert conn.execute('SELECT count(DISTINCT kind), sum(event_id) FROM "raw data".events').fetchone() == (
            3, sum(range(12000)))
        analyzed = conn.execute("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL "
                                "ORDER BY relname").fetchall()
        assert analyzed == [("big_claims",), ("events",), ("every_type",)]


def _nan_safe(rows: list[tuple]) -> list[tuple]:
    """NaN is never equal to itself: compare it as a marker."""
    return [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row) for row in rows]


def test_values_read_back_are_python_values_too(pg_server: PgServer, pg_database: str, every_type: Path) -> None:
    """A spot check of the Python values psycopg loads, so a wrong type cannot hide behind equal text."""
    copy_duckdb_to_postgres(every_type, _admin(pg_server, pg_database))
    with psycopg.connect(_admin(pg_server, pg_database)) as conn:
        row = conn.execute('SELECT huge, ubig, "Claim Amount", id_uuid, raw, "say ""hi""" FROM every_type '
                           'WHERE id = 1').fetchone()
    assert row == (Decimal(2**127 - 1), Decimal(2**64 - 1), Decimal("1234567890.12"),
                   UUID("6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab"), b"\x00\\\xff", "plain")


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lore.demo.project import init_demo

    project, _ = init_demo(tmp_path_factory.mktemp("pg-demo") / "project", scale=0.01, seed=11)
    return project.warehouse_path


def test_the_demo_warehouse_copies_with_equal_counts_and_aggregates(pg_server: PgServer, pg_database: str,
                                                                     demo_warehouse: Path) -> None:
    copied = copy_duckdb_to_postgres(demo_warehouse, _admin(pg_server, pg_database), schema="demo")
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        columns = con.execute("SELECT table_name, column_name, data_type FROM duckdb_columns() "
                              "WHERE database_name = current_database() ORDER BY table_name, column_index"
                              ).fetchall()
        tables: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in columns:
            tables.setdefault(table, []).append((column, kind))
        assert set(copied) == set(tables) and len(tables) >= 10
        queries = {table: _aggregates(table, cols) for table, cols in tables.items()}
        expected = {table: con.execute(query.sql(dialect="duckdb")).fetchone() for table, query in queries.items()}
    assert {table: row[0] for table, row in expected.items()} == copied
    with psycopg.connect(_admin(pg_server, pg_database)) as conn:
        for table, query in queries.items():
            query = query.from_(exp.Table(this=exp.to_identifier(table, quoted=True),
                                          db=exp.to_identifier("demo", quoted=True)), copy=True)
            actual = conn.execute(query.sql(dialect="postgres")).fetchone()
            # sums of doubles may differ in the last bits (the engines add in different orders); all else is exact
            assert [pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for v in expected[table]] == list(
                actual), table


def _aggregates(table: str, columns: list[tuple[str, str]]) -> exp.Select:
    """COUNT(*), then SUM of every number and MIN/MAX of every date, as one query (to run on both engines)."""
    parts: list[exp.Expression] = [exp.Count(this=exp.Star())]
    for name, kind in columns:
        column = exp.column(name, quoted=True)
        if kind in ("INTEGER", "BIGINT", "DOUBLE") or kind.startswith("DECIMAL"):
            parts.append(exp.Sum(this=column))
        elif kind in ("DATE", "TIMESTAMP"):
            parts += [exp.Min(this=column), exp.Max(this=column)]
    return exp.select(*parts).from_(exp.Table(this=exp.to_identifier(table, quoted=True)))


def test_existing_tables_stop_the_copy_unless_replace(pg_server: PgServer, pg_database: str, every_type: Path
                                                      ) -> None:
    url = _admin(pg_server, pg_database)
    pg_server.run_sql('CREATE SCHEMA "raw data"; CREATE TABLE "raw data".events (note text); '
                      "INSERT INTO \"raw data\".events VALUES ('kept')", pg_database)
    with pytest.raises(OperatorError, match=r"already exist: raw data\.events") as caught:
        copy_duckdb_to_postgres(every_type, url)
    assert "replace=True" in str(caught.value)
    # nothing else was written and the table kept its rows
    assert pg_server.run_sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", pg_database) == [(0,)]
    assert pg_server.run_sql('SELECT note FROM "raw data".events', pg_database) == [("kept",)]

    copied = copy_duckdb_to_postgres(every_type, url, replace=True)
    assert copied["raw data.events"] == 12000
    assert pg_server.run_sql('SELECT count(*), min(event_id) FROM "raw data".events', pg_database) == [(12000, 0)]
    # and again: every table exists now
    with pytest.raises(OperatorError, match="big_claims, public.every_type, raw data.events"):
        copy_duckdb_to_postgres(every_type, url)
    assert copy_duckdb_to_postgres(every_type, url, replace=True) == copied


def test_a_view_of_the_same_name_is_never_dropped(pg_server: PgServer, pg_database: str, every_type: Path) -> None:
    pg_server.run_sql("CREATE VIEW every_type AS SELECT 1 AS one", pg_database)
    with pytest.raises(OperatorError, match="something other than a table"):
        copy_duckdb_to_postgres(every_type, _admin(pg_server, pg_database), replace=True)
    assert pg_server.run_sql("SELECT * FROM every_type", pg_database) == [(1,)]


def test_unsupported_types_are_all_named_and_nothing_is_written(pg_server: PgServer, pg_database: str,
                                                                 tmp_path: Path) -> None:
    path = _build(tmp_path / "odd.duckdb", """
        CREATE TABLE fine (id INTEGER);
        CREATE TABLE odd (id INTEGER, tags VARCHAR[], "Nested ""one"" x" STRUCT(a INTEGER), precise TIMESTAMP_NS);
    """)
    with pytest.raises(OperatorError) as caught:
        copy_duckdb_to_postgres(path, _admin(pg_server, pg_database))
    message = str(caught.value)
    assert 'table odd, column "tags": VARCHAR[]' in message
    assert 'table odd, column "Nested ""one"" x": STRUCT(a INTEGER)' in message
    assert 'table odd, column "precise": TIMESTAMP_NS' in message
    assert "nothing was written" in message
    assert pg_server.run_sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", pg_database) == [(0,)]


def test_a_failure_mid_copy_rolls_everything_back(pg_server: PgServer, pg_database: str, tmp_path: Path) -> None:
    """The second table holds a NUL character, which PostgreSQL text cannot: the first table, the new schema
    and the replaced table's drop are all undone."""
    path = _build(tmp_path / "nul.duckdb", """
        CREATE TABLE a_good AS SELECT range AS id FROM range(10);
        CREATE TABLE b_bad (id INTEGER, note VARCHAR);
        INSERT INTO b_bad VALUES (1, 'fine'), (2, 'nul ' || chr(0) || ' inside');
        CREATE SCHEMA fresh;
        CREATE TABLE fresh.c_later (id INTEGER);
    """)
    pg_server.run_sql("CREATE TABLE b_bad (old text); INSERT INTO b_bad VALUES ('old row')", pg_database)
    with pytest.raises(OperatorError, match=r"\(table b_bad\)") as caught:
        copy_duckdb_to_postgres(path, _admin(pg_server, pg_database), replace=True)
    assert "NUL" in str(caught.value) and "Nothing was written" in str(caught.value)
    assert pg_server.run_sql("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                             "('pg_catalog', 'information_schema')", pg_database) == [("public", "b_bad")]
    assert pg_server.run_sql("SELECT old FROM b_bad", pg_database) == [("old row",)]
    assert pg_server.run_sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'fresh'", pg_database) == [(0,)]


def test_operator_errors_for_a_bad_url_or_a_missing_file(pg_server: PgServer, pg_database: str, every_type: Path
                                                        ) -> None:
    with pytest.raises(OperatorError, match="Could not connect to PostgreSQL: .*password authentication failed"):
        copy_duckdb_to_postgres(every_type, pg_server.url_for("postgres", "wrong", pg_database))
    with pytest.raises(OperatorError, match="No DuckDB file at"):
        copy_duckdb_to_postgres(every_type.with_name("missing.duckdb"), _admin(pg_server, pg_database))


def test_the_reader_role_cannot_be_used_to_copy(pg_server: PgServer, pg_database: str, every_type: Path) -> None:
    """The documented read-only role has no CREATE anywhere: a copy through it fails cleanly, writing nothing."""
    reader = pg_server.create_reader(pg_database)
    with pytest.raises(OperatorError, match="Copying to PostgreSQL failed") as caught:
        copy_duckdb_to_postgres(every_type, reader)
    assert "Nothing was written" in str(caught.value)
    assert pg_server.run_sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", pg_database) == [(0,)]
