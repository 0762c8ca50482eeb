"""The SQL guard: adversarial inputs as data, valid queries as data, and both run against real DuckDB.

Each adversarial case is ``(sql, rule)``: the guard must refuse it with that rule, or,
when ``rule`` is None, turn it into a harmless SELECT (the hidden statement becomes
a comment that is stripped or a string literal) that runs without side effects.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from lore.errors import EngineError, GuardError
from lore.execute.engine import Engine
from lore.guard import GuardedSQL, guard_sql
from lore.guard.allowlists import ALLOWED_FUNCTIONS, ALLOWED_NODES
from lore.guard.passes import PASSES
from lore.settings import Settings

#: the tables the semantic layer allows (a slice of the demo warehouse)
SCHEMA: dict[str, dict[str, str]] = {
    "countries": {"country_iso_code": "VARCHAR", "country_name": "VARCHAR", "region": "VARCHAR"},
    "accounts": {
        "account_id": "BIGINT",
        "country_iso_code": "VARCHAR",
        "plan": "VARCHAR",
        "signup_date": "DATE",
    },
    "streaming_sessions": {
        "session_id": "BIGINT",
        "session_date": "DATE",
        "account_id": "BIGINT",
        "device_type": "VARCHAR",
        "streaming_hours": "DOUBLE",
    },
}

#: builds the fixture warehouse: the allowed tables plus one table the guard must never reach
FIXTURE_SQL = """
CREATE TABLE countries (country_iso_code VARCHAR, country_name VARCHAR, region VARCHAR);
INSERT INTO countries VALUES ('US', 'United States', 'UCAN'), ('CA', 'Canada', 'UCAN'),
    ('FR', 'France', 'EMEA'), ('JP', 'Japan', 'APAC'), ('IE', 'O''Brien Land', 'EMEA');
CREATE TABLE accounts (account_id BIGINT, country_iso_code VARCHAR, plan VARCHAR, signup_date DATE);
INSERT INTO accounts VALUES (1, 'US', 'premium', DATE '2025-01-03'), (2, 'US', 'basic_with_ads', DATE '2025-01-20'),
    (3, 'FR', 'standard', DATE '2025-02-11'), (4, 'JP', 'premium', DATE '2025-03-01'),
    (5, 'CA', 'standard', DATE '2025-03-15'), (6, NULL, 'premium', DATE '2025-03-20');
CREATE TABLE streaming_sessions (session_id BIGINT, session_date DATE, account_id BIGINT,
    device_type VARCHAR, streaming_hours DOUBLE);
INSERT INTO streaming_sessions VALUES
    (1, DATE '2025-01-05', 1, 'tv', 2.5), (2, DATE '2025-01-06', 1, 'mobile', 1.0),
    (3, DATE '2025-01-21', 2, 'web', 0.5), (4, DATE '2025-02-12', 3, 'tv', 3.0),
    (5, DATE '2025-02-14', 3, 'tablet', 1.5), (6, DATE '2025-03-02', 4, 'tv', 4.0),
    (7, DATE '2025-03-16', 5, 'mobile', 0.25), (8, DATE '2025-03-21', 6, 'tv', 2.0);
CREATE TABLE secret_salaries (employee VARCHAR, salary DOUBLE, country_iso_code VARCHAR);
INSERT INTO secret_salaries VALUES ('alice', 250000, 'US');
"""

#: one scalar call that allocates gigabytes: DuckDB's interrupt is cooperative and cannot stop it
#: promptly (measured: 16 s against a 2 s watchdog, then out of memory), so layer 1 refuses lpad/rpad
MEMORY_BOMB = "SELECT lpad(region, 2000000000, 'x') AS p FROM countries"

ADVERSARIAL: list[tuple[str, str | None]] = [
    # stacked statements
    ("SELECT 1; DROP TABLE countries", "single_statement"),
    ("SELECT * FROM countries; DELETE FROM countries", "single_statement"),
    ("SELECT 1; SELECT * FROM secret_salaries", "single_statement"),
    ("SELECT 'a\\'; DROP TABLE countries; --'", "single_statement"),  # backslash is no escape in DuckDB
    ("SELECT 'O''Brien'; DROP TABLE countries", "single_statement"),
    # DML and DDL
    ("DELETE FROM countries", "root_is_query"),
    ("INSERT INTO countries VALUES ('XX', 'Nowhere', 'EMEA')", "root_is_query"),
    ("UPDATE countries SET region = 'EMEA'", "root_is_query"),
    ("MERGE INTO countries USING accounts ON TRUE WHEN MATCHED THEN DELETE", "root_is_query"),
    ("DROP TABLE countries", "root_is_query"),
    ("TRUNCATE countries", "root_is_query"),
    ("ALTER TABLE countries ADD COLUMN x INTEGER", "root_is_query"),
    ("CREATE TABLE stolen AS SELECT * FROM secret_salaries", "root_is_query"),
    ("CREATE TEMP TABLE t AS SELECT 1 AS a", "root_is_query"),
    ("CREATE VIEW v AS SELECT * FROM secret_salaries", "root_is_query"),
    ("CREATE MACRO evil(a) AS a", "root_is_query"),
    # DML inside a CTE (DuckDB really runs it) and in a subquery
    ("WITH d AS (DELETE FROM countries RETURNING *) SELECT * FROM d", "allowed_nodes"),
    ("WITH i AS (INSERT INTO countries VALUES ('XX', 'X', 'EMEA') RETURNING *) SELECT * FROM i", "allowed_nodes"),
    ("WITH u AS (UPDATE countries SET region = 'x' RETURNING *) SELECT * FROM u", "allowed_nodes"),
    ("SELECT * FROM countries WHERE region IN (WITH d AS (DELETE FROM accounts RETURNING plan) SELECT plan FROM d)",
     "allowed_nodes"),
    # SELECT ... INTO
    ("SELECT * INTO stolen FROM countries", "allowed_nodes"),
    # PRAGMA, ATTACH, COPY, EXPORT, INSTALL/LOAD, SET/RESET, CALL, CHECKPOINT and friends
    ("PRAGMA database_list", "root_is_query"),
    ("PRAGMA enable_external_access", "root_is_query"),
    ("ATTACH '/tmp/other.duckdb' AS other", "root_is_query"),
    ("DETACH other", "root_is_query"),
    ("COPY countries TO '/tmp/out.csv'", "root_is_query"),
    ("COPY (SELECT * FROM secret_salaries) TO '/tmp/out.parquet' (FORMAT parquet)", "root_is_query"),
    ("EXPORT DATABASE '/tmp/dump'", "parse"),
    ("INSTALL httpfs", "root_is_query"),
    ("LOAD httpfs", "root_is_query"),
    ("SET enable_external_access = true", "root_is_query"),
    ("SET GLOBAL lock_configuration = false", "root_is_query"),
    ("RESET lock_configuration", "root_is_query"),
    ("CALL pragma_version()", "root_is_query"),
    ("CHECKPOINT", "root_is_query"),
    ("VACUUM", "root_is_query"),
    ("BEGIN TRANSACTION", "root_is_query"),
    ("COMMIT", "root_is_query"),
    ("USE other", "root_is_query"),
    ("DESCRIBE countries", "root_is_query"),
    ("SHOW TABLES", "root_is_query"),
    ("SUMMARIZE secret_salaries", "root_is_query"),
    ("PREPARE p AS SELECT * FROM secret_salaries", "root_is_query"),
    ("EXECUTE p", "root_is_query"),
    # file and URL reads: table functions and quoted paths, also nested
    ("SELECT * FROM read_csv('/etc/passwd')", "tables"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "tables"),
    ("SELECT * FROM read_parquet('s3://bucket/data.parquet')", "tables"),
    ("SELECT * FROM read_json_auto('https://evil.example/x.json')", "tables"),
    ("SELECT * FROM read_text('/etc/hostname')", "tables"),
    ("SELECT * FROM read_blob('/etc/hostname')", "tables"),
    ("SELECT * FROM glob('/home/*')", "tables"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "tables"),
    ("SELECT * FROM query('SELECT * FROM secret_salaries')", "tables"),
    ("SELECT * FROM query_table('secret_salaries')", "tables"),
    ("SELECT * FROM range(1000000000)", "tables"),
    ("SELECT * FROM 'data.csv'", "tables"),
    ("SELECT * FROM '/etc/passwd'", "tables"),
    ("SELECT * FROM 'https://evil.example/data.parquet'", "tables"),
    ('SELECT * FROM "secrets.parquet"', "tables"),
    ("SELECT * FROM countries WHERE country_iso_code IN (SELECT * FROM read_csv('/etc/passwd'))", "tables"),
    ("SELECT (SELECT count(*) FROM read_parquet('x.parquet')) AS n", "tables"),
    ("WITH f AS (SELECT * FROM 'secrets.csv') SELECT * FROM f", "tables"),
    ("WITH f AS (SELECT * FROM (SELECT * FROM read_csv('/etc/passwd'))) SELECT * FROM f", "tables"),
    ("SELECT country_name FROM countries UNION ALL SELECT * FROM read_csv('/etc/passwd')", "tables"),
    ("SELECT region FROM countries EXCEPT SELECT * FROM 'https://evil.example/x.csv'", "tables"),
    ("SELECT * FROM countries JOIN 'leak.csv' USING (region)", "tables"),
    ("SELECT read_csv('/etc/passwd') AS x", "functions"),
    # settings, secrets and the catalog
    ("SELECT getenv('HOME')", "functions"),
    ("SELECT '" + "x" * 90_000 + "' AS s FROM countries LIMIT 10000", "literals"),  # a long literal on every row
    ("SELECT region FROM countries WHERE region = '" + "E" * 5_000 + "'", "literals"),
    ("SELECT current_setting('access_mode')", "functions"),
    ("SELECT region FROM countries WHERE current_setting('threads') = '2'", "functions"),
    ("SELECT * FROM duckdb_settings()", "tables"),
    ("SELECT * FROM duckdb_secrets()", "tables"),
    ("SELECT * FROM duckdb_tables()", "tables"),
    ("SELECT which_secret('s3://bucket/x', 's3')", "functions"),
    ("SELECT * FROM pragma_table_info('secret_salaries')", "tables"),
    ("SELECT * FROM information_schema.tables", "tables"),
    ("SELECT * FROM information_schema.columns", "tables"),
    ("SELECT * FROM sqlite_master", "tables"),
    ("SELECT * FROM pg_catalog.pg_tables", "tables"),
    ("SELECT * FROM main.countries", None),  # the table countries itself: main is the default schema
    ("SELECT * FROM other.countries", "tables"),
    ("SELECT * FROM warehouse.main.countries", "tables"),
    ("SELECT version()", "functions"),
    ("SELECT setseed(0.5)", "functions"),
    ("SELECT nextval('seq')", "functions"),
    # a table outside the semantic layer
    ("SELECT * FROM secret_salaries", "tables"),
    ("SELECT c.region, s.salary FROM countries c JOIN secret_salaries s USING (country_iso_code)", "tables"),
    ("SELECT * FROM countries WHERE EXISTS (SELECT 1 FROM secret_salaries)", "tables"),
    # CTE shadowing and CTE scoping
    ("WITH countries AS (SELECT * FROM secret_salaries) SELECT * FROM countries", "tables"),
    ("WITH countries AS (SELECT * FROM countries) SELECT * FROM countries", "tables"),
    ("WITH secret_salaries AS (SELECT * FROM secret_salaries) SELECT * FROM secret_salaries", "tables"),
    ("WITH a AS (SELECT * FROM b), b AS (SELECT * FROM countries) SELECT * FROM a", "tables"),
    ("WITH a AS (SELECT 1 AS x), a AS (SELECT 2 AS x) SELECT * FROM a", "tables"),
    ("SELECT * FROM (WITH s AS (SELECT 1 AS x) SELECT * FROM s) t, s", "tables"),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r", "tables"),
    # comments, dollar quoting, escaped quotes
    ("SELECT 1 AS one /* ; DROP TABLE countries */", None),
    ("SELECT 1 AS one -- ; DROP TABLE countries", None),
    ("SELECT 1 AS one /* nested /* c */ ; DROP TABLE countries */", None),
    ("/* SELECT 1 */ DROP TABLE countries", "root_is_query"),
    ("SELECT 1 AS one --\n; DROP TABLE countries", "single_statement"),
    ("SELECT 1 /* unterminated; DROP TABLE countries", "parse"),
    ("SELECT $$; DROP TABLE countries; $$ AS s", None),
    ("SELECT $tag$ '; DROP TABLE countries; -- $tag$ AS s", None),
    ("SELECT $$unterminated; DROP TABLE countries", "parse"),
    ("SELECT country_name FROM countries WHERE country_name = 'x'' OR ''1''=''1'", None),
    ("SELECT E'\\'; DROP TABLE countries; --' AS s", "allowed_nodes"),
    ("SELECT 'a\\' AS s", None),  # a backslash is a plain character in DuckDB strings
    ("SELECT country_name FROM countries WHERE country_name = 'O''Brien Land'", None),
    # full-width, zero-width, control and bidi characters
    ("ＳＥＬＥＣＴ * FROM countries", "parse"),
    ("SELECT 1；DROP TABLE countries", "parse"),
    ("SELECT * FROM ｃountries", "tables"),
    ("SELECT * FROM countries WHERE region = ＇EMEA＇", "columns"),
    ("SELECT 1;\u200b DROP TABLE countries", "parse"),
    ("SEL\u200bECT 1", "parse"),
    ("SELECT * FROM countries\u200b", "parse"),
    ("SELECT '\u202e' AS s", "parse"),
    ("\ufeffSELECT 1", "parse"),
    ("SELECT 1\x00; DROP TABLE countries", "parse"),
    ("SELECT 1\x1b[2K", "parse"),
    # columns: unknown, whole-row reads, columns outside the schema
    ("SELECT salary FROM countries", "columns"),
    ("SELECT countries FROM countries", "columns"),
    ("SELECT c FROM countries AS c", "columns"),
    ("SELECT x.region FROM countries AS c", "columns"),
    ("SELECT c.region FROM countries AS c(code, label, r)", "columns"),
    ("SELECT (countries.*) FROM countries", "columns"),
    ("SELECT region.upper() AS u FROM countries", "allowed_nodes"),
    ("SELECT * FROM countries AT (VERSION => 1)", "allowed_nodes"),
    (MEMORY_BOMB, "functions"),
    ("SELECT COLUMNS(*) FROM countries", "functions"),
    # functions sqlglot does not know, lambdas, parameters, odd clauses
    ("SELECT date_part('year', signup_date) AS y FROM accounts", "functions"),
    ("SELECT hash(plan) AS h FROM accounts", "functions"),
    ("SELECT list_transform([1, 2], x -> x + 1) AS l", "allowed_nodes"),
    ("SELECT * FROM countries WHERE region = $1", "allowed_nodes"),
    ("SELECT * FROM countries WHERE region = ?", "allowed_nodes"),
    ("SELECT * FROM countries USING SAMPLE 10", "allowed_nodes"),
    ("SELECT * FROM countries LIMIT 10%", "allowed_nodes"),
    ("SELECT * FROM countries LIMIT (SELECT 1)", "limit"),
    ("SELECT * FROM countries LIMIT ALL", "limit"),
    # empty and oversized input
    ("", "single_statement"),
    (";;", "single_statement"),
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "parse"),
    ("SELECT '" + "x" * 100_001 + "'", "parse"),
]

VALID: list[str] = [
    "SELECT * FROM countries",
    "SELECT * EXCLUDE (country_name) FROM countries",
    "FROM countries SELECT region",
    "SELECT region, COUNT(*) AS n FROM countries GROUP BY region ORDER BY n DESC, region",
    "SELECT region, COUNT(*) FROM countries GROUP BY 1 ORDER BY 2 DESC, 1",
    "SELECT region, COUNT(*) AS n FROM countries GROUP BY ALL HAVING COUNT(*) > 1 ORDER BY region",
    "SELECT c.region, SUM(s.streaming_hours) AS hours FROM streaming_sessions AS s "
    "JOIN accounts AS a ON s.account_id = a.account_id "
    "LEFT JOIN countries AS c ON a.country_iso_code = c.country_iso_code GROUP BY c.region ORDER BY c.region",
    "SELECT a.plan, COUNT(DISTINCT s.account_id) AS accounts FROM streaming_sessions s "
    "JOIN accounts a USING (account_id) GROUP BY a.plan ORDER BY a.plan",
    "WITH monthly AS (SELECT DATE_TRUNC('month', session_date) AS month, SUM(streaming_hours) AS hours "
    "FROM streaming_sessions GROUP BY 1) "
    "SELECT month, hours, LAG(hours) OVER (ORDER BY month) AS previous FROM monthly ORDER BY month",
    "WITH a AS (SELECT account_id, plan FROM accounts), b AS (SELECT plan, COUNT(*) AS n FROM a GROUP BY plan) "
    "SELECT * FROM b ORDER BY plan",
    "SELECT account_id, session_date, ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY session_date) AS rn "
    "FROM streaming_sessions ORDER BY account_id, rn",
    "SELECT device_type, SUM(streaming_hours) AS hours, RANK() OVER (ORDER BY SUM(streaming_hours) DESC) AS r "
    "FROM streaming_sessions GROUP BY device_type ORDER BY r, device_type",
    "SELECT device_type, COUNT(*) AS n FROM streaming_sessions GROUP BY device_type "
    "QUALIFY ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC, device_type) <= 2 ORDER BY n DESC",
    "SELECT session_id, CASE WHEN streaming_hours >= 2 THEN 'long' WHEN streaming_hours >= 1 THEN 'medium' "
    "ELSE 'short' END AS bucket FROM streaming_sessions ORDER BY session_id",
    "SELECT DATE_TRUNC('week', session_date) AS week, SUM(streaming_hours) AS hours FROM streaming_sessions "
    "GROUP BY 1 ORDER BY 1",
    "SELECT EXTRACT(YEAR FROM signup_date) AS y, EXTRACT(MONTH FROM signup_date) AS m, COUNT(*) AS n "
    "FROM accounts GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT region FROM countries UNION SELECT plan FROM accounts ORDER BY 1",
    "SELECT country_iso_code FROM countries INTERSECT SELECT country_iso_code FROM accounts ORDER BY 1",
    "SELECT country_iso_code FROM countries EXCEPT SELECT country_iso_code FROM accounts ORDER BY 1",
    "SELECT country_name FROM countries WHERE country_iso_code IN "
    "(SELECT country_iso_code FROM accounts WHERE plan = 'premium') ORDER BY 1",
    "SELECT c.country_name FROM countries c WHERE EXISTS "
    "(SELECT 1 FROM accounts a WHERE a.country_iso_code = c.country_iso_code) ORDER BY 1",
    "SELECT plan, (SELECT MAX(streaming_hours) FROM streaming_sessions) AS top FROM accounts ORDER BY account_id",
    "SELECT t.plan, t.n FROM (SELECT plan, COUNT(*) AS n FROM accounts GROUP BY plan) AS t "
    "WHERE t.n > 1 ORDER BY t.plan",
    "SELECT SUM(streaming_hours) / NULLIF(COUNT(DISTINCT account_id), 0) AS per_account FROM streaming_sessions",
    "SELECT COALESCE(country_iso_code, 'unknown') AS country, CAST(signup_date AS VARCHAR) AS d "
    "FROM accounts ORDER BY account_id",
    "SELECT COUNT(*) AS n FROM streaming_sessions WHERE session_date BETWEEN DATE '2025-01-01' AND DATE '2025-01-31'",
    "SELECT COUNT(*) AS n FROM streaming_sessions WHERE session_date >= DATE '2025-03-31' - INTERVAL 30 DAY",
    "SELECT UPPER(country_name) AS u, LENGTH(country_name) AS l, SUBSTRING(country_name, 1, 3) AS s "
    "FROM countries WHERE country_name LIKE '%an%' ORDER BY 1",
    "SELECT plan, ROUND(AVG(account_id), 2) AS a, MIN(signup_date) AS first, MAX(signup_date) AS last "
    "FROM accounts GROUP BY plan ORDER BY plan",
    "SELECT plan, COUNT(*) FILTER (WHERE country_iso_code = 'US') AS us FROM accounts GROUP BY plan ORDER BY plan",
    "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(id, label) ORDER BY id",
    "SELECT region, country_name FROM countries ORDER BY country_name LIMIT 2 OFFSET 1",
    "SELECT country_name FROM countries WHERE country_name = 'O''Brien Land'",
    "SELECT Region FROM COUNTRIES ORDER BY REGION",
    "SELECT country_name FROM countries WHERE (region = 'EMEA' AND country_iso_code <> 'FR') "
    "OR NOT region IN ('UCAN', 'EMEA') ORDER BY 1",
    "SELECT account_id FROM accounts WHERE country_iso_code IS NULL OR (plan NOT LIKE 'basic%' "
    "AND country_iso_code NOT IN ('JP') AND country_iso_code IS DISTINCT FROM 'CA') ORDER BY 1",
    "SELECT session_id, streaming_hours * 60 - 1 AS m, streaming_hours / 2 + 1 AS h, session_id % 3 AS r, "
    "session_id // 2 AS q, -streaming_hours AS neg, streaming_hours ** 2 AS sq FROM streaming_sessions "
    "WHERE device_type ILIKE 'T%' AND streaming_hours BETWEEN 1 AND 10 ORDER BY session_id",
    "SELECT country_name || ' (' || region || ')' AS label FROM countries "
    "WHERE country_iso_code = ANY (SELECT country_iso_code FROM accounts) ORDER BY 1",
    "SELECT DISTINCT ON (region) region, country_name FROM countries ORDER BY region, country_name",
    "SELECT c.code, c.label FROM countries AS c(code, label) ORDER BY c.code",
    "SELECT region, country_name FROM countries ORDER BY ALL",
    "SELECT * REPLACE (UPPER(region) AS region) FROM countries ORDER BY country_iso_code",
    "SELECT region AS r FROM countries WHERE r = 'EMEA' ORDER BY country_name",
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("guard") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(FIXTURE_SQL)
    con.close()
    return path


@pytest.fixture(scope="module")
def engine(warehouse: Path):
    eng = Engine.open(warehouse, Settings(query_timeout_s=10, duckdb_threads=1, duckdb_memory_limit="256MB"))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def reference() -> duckdb.DuckDBPyConnection:
    """The same data in memory, for running the raw (unguarded) valid SQL as the expected answer."""
    con = duckdb.connect(":memory:")
    con.execute(FIXTURE_SQL)
    yield con
    con.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("sql", "rule"), ADVERSARIAL, ids=[f"adv{i}" for i in range(len(ADVERSARIAL))])
def test_adversarial_input_is_refused_or_made_harmless(
    sql: str, rule: str | None, engine: Engine, warehouse: Path
) -> None:
    if rule is not None:
        with pytest.raises(GuardError) as caught:
            guard_sql(sql, SCHEMA)
        assert caught.value.rule == rule, str(caught.value)
        assert caught.value.sql == sql
        assert str(caught.value).startswith(f"Refused by the SQL guard ({rule}): ")
        return
    before = _digest(warehouse)
    guarded = guard_sql(sql, SCHEMA)
    statements = [s for s in sqlglot.parse(guarded.sql, read="duckdb") if s is not None]
    assert len(statements) == 1 and statements[0].key == "select"
    assert not any(node.comments for node in statements[0].walk())
    engine.run(guarded.sql)
    assert engine.run("SELECT COUNT(*) AS n FROM countries").rows == ((5,),)
    assert _digest(warehouse) == before


def test_without_the_guard_the_engine_still_has_no_side_effects(engine: Engine, warehouse: Path) -> None:
    """Defence in depth: the raw adversarial text, run on the hardened engine, changes nothing."""
    outputs = [Path(p) for p in ("/tmp/out.csv", "/tmp/out.parquet", "/tmp/other.duckdb", "/tmp/dump")]
    existed = [p.exists() for p in outputs]
    before = _digest(warehouse)
    for sql, _ in ADVERSARIAL:
        if sql == MEMORY_BOMB:
            continue
        try:
            engine.run(sql, timeout_s=2)
        except EngineError:
            pass
    assert _digest(warehouse) == before
    assert [p.exists() for p in outputs] == existed
    assert engine.run("SELECT COUNT(*) AS n FROM countries").rows == ((5,),)
    assert engine.run("SELECT CAST(current_setting('enable_external_access') AS VARCHAR) AS v").rows == (("false",),)


def test_adversarial_list_covers_every_pass() -> None:
    rules = {rule for _, rule in ADVERSARIAL}
    assert {"parse", "single_statement", *(p.__name__ for p in PASSES)} <= rules
    assert None in rules


@pytest.mark.parametrize("sql", VALID, ids=[f"valid{i}" for i in range(len(VALID))])
def test_valid_query_is_accepted_and_answers_like_the_original(
    sql: str, engine: Engine, reference: duckdb.DuckDBPyConnection
) -> None:
    guarded = guard_sql(sql, SCHEMA)
    assert isinstance(guarded, GuardedSQL)
    assert set(guarded.tables) <= set(SCHEMA)
    result = engine.run(guarded.sql)
    expected = reference.execute(sql).fetchall()
    got = [tuple(row) for row in result.rows]
    want = [tuple(str(v) if hasattr(v, "isoformat") else v for v in row) for row in expected]
    if " ORDER BY " in sql.upper():
        assert got == want
    else:
        assert sorted(got, key=repr) == sorted(want, key=repr)
    assert guard_sql(guarded.sql, SCHEMA).sql == guarded.sql  # the output is a fixed point of the guard


def test_output_is_regenerated_and_qualified() -> None:
    guarded = guard_sql("select region /* who */ from countries -- done", SCHEMA)
    assert guarded.sql == 'SELECT "countries"."region" AS "region" FROM "countries" AS "countries" LIMIT 1000'
    assert guarded.tables == ("countries",)


def test_star_expands_to_allowed_columns_only() -> None:
    narrow = {"accounts": {"account_id": "BIGINT", "plan": "VARCHAR"}}
    guarded = guard_sql("SELECT * FROM accounts", narrow)
    assert '"signup_date"' not in guarded.sql and '"plan"' in guarded.sql
    with pytest.raises(GuardError) as caught:
        guard_sql("SELECT signup_date FROM accounts", narrow)
    assert caught.value.rule == "columns"


def test_unnamed_outputs_keep_readable_names(engine: Engine) -> None:
    guarded = guard_sql("SELECT plan, COUNT(*) FROM accounts GROUP BY plan", SCHEMA)
    assert engine.run(guarded.sql).column_names == ["plan", "count(*)"]


@pytest.mark.parametrize(
    ("sql", "limit", "added", "clamped"),
    [
        ("SELECT * FROM countries", 1000, True, False),
        ("SELECT * FROM countries LIMIT 3", 3, False, False),
        ("SELECT * FROM countries LIMIT 10000", 10000, False, False),
        ("SELECT * FROM countries LIMIT 10001", 10000, False, True),
        ("SELECT * FROM countries LIMIT 99999999999999999999999", 10000, False, True),
        ("SELECT region FROM countries UNION ALL SELECT plan FROM accounts LIMIT 500000", 10000, False, True),
        ("SELECT region FROM countries UNION ALL SELECT plan FROM accounts", 1000, True, False),
        ("SELECT * FROM (SELECT * FROM countries LIMIT 99999999) AS t", 1000, True, False),
    ],
)
def test_limit_is_added_or_clamped(sql: str, limit: int, added: bool, clamped: bool) -> None:
    guarded = guard_sql(sql, SCHEMA)
    assert (guarded.limit, guarded.limit_added, guarded.limit_clamped) == (limit, added, clamped)
    tree = sqlglot.parse_one(guarded.sql, read="duckdb")
    assert tree.args["limit"].expression.name == str(limit)  # the outermost query carries the limit


def test_limit_settings_are_respected() -> None:
    guarded = guard_sql("SELECT * FROM countries", SCHEMA, default_limit=50, max_rows=20)
    assert guarded.limit == 20
    assert guard_sql("SELECT * FROM countries LIMIT 30", SCHEMA, max_rows=20).limit_clamped


def test_huge_limit_on_a_cross_join_is_capped_on_duckdb(engine: Engine) -> None:
    sql = "SELECT a.session_id FROM streaming_sessions a, streaming_sessions b, streaming_sessions c LIMIT 1000000000"
    guarded = guard_sql(sql, SCHEMA, max_rows=100)
    assert guarded.limit_clamped
    result = engine.run(guarded.sql, max_rows=100)
    assert len(result.rows) == 100 and not result.truncated


def test_unknown_column_message_lists_nearby_columns() -> None:
    with pytest.raises(GuardError) as caught:
        guard_sql("SELECT SUM(streaming_hour) FROM streaming_sessions", SCHEMA)
    assert "streaming_sessions.streaming_hours" in caught.value.reason
    with pytest.raises(GuardError) as caught:
        guard_sql("SELECT wibble FROM countries", SCHEMA)
    assert "countries.region" in caught.value.reason  # nothing close: the table's columns are listed


def test_ambiguous_column_names_the_candidates() -> None:
    with pytest.raises(GuardError) as caught:
        guard_sql("SELECT account_id FROM accounts, streaming_sessions", SCHEMA)
    assert "accounts.account_id" in caught.value.reason and "streaming_sessions.account_id" in caught.value.reason


def test_refusal_messages_say_why() -> None:
    cases = {
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r": "recursive",
        "SELECT * FROM secret_salaries": "allowed tables: accounts, countries, streaming_sessions",
        "WITH countries AS (SELECT 1 AS a) SELECT * FROM countries": "name of a real table",
        "SELECT * INTO x FROM countries": "SELECT ... INTO",
        "LOAD httpfs": "LOAD",
        "SELECT getenv('HOME')": "getenv() is refused",
        "SELECT date_part('year', signup_date) AS y FROM accounts": "EXTRACT",
        "SELECT 1; SELECT 2": "stacked",
        "SELECT 1;\u200b SELECT 2": "U+200B",
    }
    for sql, words in cases.items():
        with pytest.raises(GuardError) as caught:
            guard_sql(sql, SCHEMA)
        assert words in str(caught.value), (sql, str(caught.value))


def test_schema_matching_is_case_insensitive_like_duckdb(engine: Engine) -> None:
    mixed = {"Countries": {"Region": "VARCHAR", "country_iso_code": "VARCHAR"}}
    guarded = guard_sql("SELECT region FROM countries ORDER BY 1", mixed)
    assert guarded.tables == ("Countries",)
    assert engine.run(guarded.sql).rows[0] == ("APAC",)


def test_engine_schema_feeds_the_guard(engine: Engine) -> None:
    """The catalog schema guards too (the pipeline narrows it to the semantic layer's tables)."""
    catalog = engine.schema()
    assert guard_sql("SELECT salary FROM secret_salaries", catalog).tables == ("secret_salaries",)
    allowed = {name: cols for name, cols in catalog.items() if name in SCHEMA}
    assert allowed == {name: {c: t.upper() for c, t in cols.items()} for name, cols in SCHEMA.items()}


def test_allow_lists_hold_no_dangerous_types() -> None:
    from sqlglot import exp

    for risky in (exp.Anonymous, exp.ReadCSV, exp.GenerateSeries, exp.Explode, exp.Unnest):
        assert risky not in ALLOWED_FUNCTIONS
    for risky in (exp.Into, exp.Command, exp.Pragma, exp.Copy, exp.Attach, exp.Set, exp.Delete, exp.Insert,
                  exp.Update, exp.Create, exp.Drop, exp.Placeholder, exp.Lateral, exp.Lambda):
        assert risky not in ALLOWED_NODES


#: fragments for random statements: keywords, allowed and forbidden names, quotes and comment markers
FRAGMENTS = [
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "UNION ALL", "EXCEPT", "WITH", "AS",
    "RECURSIVE", "JOIN", "ON", "USING", "AND", "OR", "NOT", "IN", "EXISTS", "(", ")", ",", ";", "*", "=", "+",
    "countries", "accounts", "region", "plan", "account_id", "c", "c.region", "secret_salaries", "salary",
    "read_csv('/etc/passwd')", "'x.csv'", "getenv('HOME')", "COUNT(*)", "SUM(account_id)", "1", "100000000",
    "DELETE", "INSERT", "INTO", "DROP TABLE", "COPY", "TO", "PRAGMA", "ATTACH", "SET", "INSTALL",
    "--", "/*", "*/", "$$", "'", '"', "\n", "\u200b", "ＳＥＬＥＣＴ",
]


@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=14).map(" ".join))
@settings(max_examples=400, deadline=None, database=None, derandomize=True)
def test_random_statements_are_refused_or_safe(sql: str) -> None:
    for text in (sql, "SELECT " + sql):
        try:
            guarded = guard_sql(text, SCHEMA)
        except GuardError as err:
            assert err.rule in {"parse", "single_statement", "render", *(p.__name__ for p in PASSES)}
            continue
        tree = sqlglot.parse_one(guarded.sql, read="duckdb")
        assert tree.key in {"select", "union", "except", "intersect"}
        assert {t.name for t in tree.find_all(sqlglot.exp.Table)} <= set(SCHEMA) | {
            cte.alias_or_name for cte in tree.find_all(sqlglot.exp.CTE)
        }
        assert guarded.limit <= 10_000
        assert guard_sql(guarded.sql, SCHEMA).sql == guarded.sql


# --- tables in other schemas: the layer names them schema.table ----------------------------------------------------

#: orders in main, raw and other (different rows, so reading the wrong one shows), customers in analytics
SCHEMAS_SQL = """
CREATE TABLE orders (order_id BIGINT, customer_id BIGINT, amount DOUBLE);
INSERT INTO orders VALUES (1, 1, 1000.0);
CREATE SCHEMA raw;
CREATE TABLE raw.orders (order_id BIGINT, customer_id BIGINT, amount DOUBLE);
INSERT INTO raw.orders VALUES (1, 1, 10.0), (2, 2, 20.0), (3, 1, 5.0);
CREATE SCHEMA other;
CREATE TABLE other.orders (order_id BIGINT, customer_id BIGINT, amount DOUBLE);
INSERT INTO other.orders VALUES (1, 1, 99999.0);
CREATE SCHEMA analytics;
CREATE TABLE analytics.customers (customer_id BIGINT, segment VARCHAR);
INSERT INTO analytics.customers VALUES (1, 'retail'), (2, 'business');
"""
ORDERS = {"order_id": "BIGINT", "customer_id": "BIGINT", "amount": "DOUBLE"}
#: a layer over raw.orders and analytics.customers only
RAW = {"raw.orders": ORDERS, "analytics.customers": {"customer_id": "BIGINT", "segment": "VARCHAR"}}
#: a layer over main's orders only
MAIN = {"orders": ORDERS}

SCHEMA_CASES: list[tuple[dict[str, dict[str, str]], str, str | None]] = [
    # (allowed schema, SQL, refusing rule or None when it runs and answers like the SQL itself)
    (RAW, "SELECT SUM(amount) AS total FROM raw.orders", None),
    (RAW, 'SELECT SUM("amount") AS total FROM "raw"."orders"', None),
    (RAW, "SELECT SUM(o.amount) AS total FROM RAW.Orders AS o", None),
    (RAW, "SELECT c.segment, SUM(o.amount) AS total FROM raw.orders AS o JOIN analytics.customers AS c "
          "ON o.customer_id = c.customer_id GROUP BY c.segment ORDER BY c.segment", None),
    (RAW, "SELECT segment FROM analytics.customers WHERE customer_id IN (SELECT customer_id FROM raw.orders) "
          "ORDER BY 1", None),
    (RAW, "WITH o AS (SELECT * FROM raw.orders) SELECT COUNT(*) AS n FROM o", None),
    (RAW, "SELECT orders.amount FROM raw.orders ORDER BY 1", None),  # qualified columns by the bare name
    (RAW, "SELECT * FROM orders", "tables"),  # bare: main's orders, not in the layer
    (RAW, "SELECT * FROM main.orders", "tables"),
    (RAW, "SELECT * FROM other.orders", "tables"),  # the same table name in another schema
    (RAW, "SELECT * FROM raw.customers", "tables"),
    (RAW, "SELECT * FROM analytics.orders", "tables"),
    (RAW, "SELECT * FROM customers", "tables"),
    (RAW, "SELECT * FROM warehouse.raw.orders", "tables"),  # the warehouse's own catalog
    (RAW, "SELECT * FROM memory.raw.orders", "tables"),  # another database
    (RAW, "SELECT * FROM system.main.duckdb_settings", "tables"),
    (RAW, "SELECT * FROM temp.main.orders", "tables"),
    (RAW, "SELECT * FROM temp.orders", "tables"),
    (RAW, 'SELECT * FROM "raw.orders"', "tables"),  # one identifier: a table of main named "raw.orders"
    (RAW, "SELECT * FROM raw.orders AS o JOIN other.orders AS x USING (order_id)", "tables"),
    (RAW, "SELECT * FROM analytics.customers WHERE EXISTS (SELECT 1 FROM main.orders)", "tables"),
    (RAW, "WITH orders AS (SELECT * FROM other.orders) SELECT * FROM orders", "tables"),
    (RAW, "WITH orders AS (SELECT 1 AS a) SELECT * FROM raw.orders", "tables"),  # a CTE named like a real table
    (RAW, "SELECT raw.orders.amount FROM raw.orders", None),  # rewritten to the alias: orders.amount
    (MAIN, "SELECT SUM(amount) AS total FROM orders", None),
    (MAIN, "SELECT SUM(amount) AS total FROM main.orders", None),  # main.orders is the table orders
    (MAIN, 'SELECT SUM(o.amount) AS total FROM "main"."orders" AS o', None),
    (MAIN, "SELECT * FROM raw.orders", "tables"),
    (MAIN, "SELECT * FROM other.orders", "tables"),
    (MAIN, "SELECT * FROM warehouse.main.orders", "tables"),
    (MAIN, "SELECT * FROM information_schema.tables", "tables"),
]


@pytest.fixture(scope="module")
def schemas_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("guard_schemas") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(SCHEMAS_SQL)
    con.close()
    return path


@pytest.fixture(scope="module")
def schemas_engine(schemas_warehouse: Path):
    eng = Engine.open(schemas_warehouse, Settings(query_timeout_s=10, duckdb_threads=1, duckdb_memory_limit="256MB"))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def schemas_reference() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute(SCHEMAS_SQL)
    yield con
    con.close()


@pytest.mark.parametrize(("schema", "sql", "rule"), SCHEMA_CASES, ids=[f"schemas{i}" for i in range(len(SCHEMA_CASES))])
def test_a_layer_allows_exactly_its_tables_in_their_schemas(
    schema: dict[str, dict[str, str]], sql: str, rule: str | None, schemas_engine: Engine,
    schemas_reference: duckdb.DuckDBPyConnection,
) -> None:
    if rule is not None:
        with pytest.raises(GuardError) as caught:
            guard_sql(sql, schema)
        assert caught.value.rule == rule, str(caught.value)
        return
    guarded = guard_sql(sql, schema)
    assert set(guarded.tables) <= set(schema)
    want = schemas_reference.execute(sql).fetchall()
    got = [tuple(row) for row in schemas_engine.run(guarded.sql).rows]
    assert sorted(got, key=repr) == sorted(want, key=repr)
    assert guard_sql(guarded.sql, schema).sql == guarded.sql  # the output is a fixed point of the guard


def test_qualified_tables_render_quoted_and_main_renders_bare() -> None:
    guarded = guard_sql("SELECT amount FROM raw.orders", RAW)
    assert guarded.sql == 'SELECT "orders"."amount" AS "amount" FROM "raw"."orders" AS "orders" LIMIT 1000'
    assert guarded.tables == ("raw.orders",)
    assert guard_sql("SELECT amount FROM main.orders", MAIN).sql == (
        'SELECT "orders"."amount" AS "amount" FROM "orders" AS "orders" LIMIT 1000')


def test_the_same_table_name_in_two_allowed_schemas(schemas_engine: Engine) -> None:
    both = {"orders": ORDERS, "raw.orders": ORDERS}
    main_total = guard_sql("SELECT SUM(amount) AS t FROM orders", both)
    raw_total = guard_sql("SELECT SUM(amount) AS t FROM raw.orders", both)
    assert (main_total.tables, raw_total.tables) == (("orders",), ("raw.orders",))
    assert schemas_engine.run(main_total.sql).rows == ((1000.0,),)
    assert schemas_engine.run(raw_total.sql).rows == ((35.0,),)
    joined = guard_sql("SELECT m.amount AS m, r.amount AS r FROM orders AS m JOIN raw.orders AS r USING (order_id)",
                       both)
    assert joined.tables == ("orders", "raw.orders")
    assert schemas_engine.run(joined.sql).rows == ((1000.0, 10.0),)
    with pytest.raises(GuardError) as caught:  # which orders' amount? the guard says so instead of choosing
        guard_sql("SELECT amount FROM orders AS m, raw.orders AS r", both)
    assert caught.value.rule == "columns" and "ambiguous" in caught.value.reason


def test_a_row_filter_applies_to_its_own_schema_only(schemas_engine: Engine) -> None:
    both = {"orders": ORDERS, "raw.orders": ORDERS}
    filters = {"RAW.Orders": 'SELECT "order_id", "customer_id", "amount" FROM "raw"."orders" WHERE "customer_id" = 1'}
    raw = guard_sql("SELECT SUM(amount) AS t FROM Raw.orders AS o WHERE 1 = 1 OR o.amount > 0", both,
                    row_filters=filters)
    assert raw.row_filtered == ("raw.orders",)
    assert schemas_engine.run(raw.sql).rows == ((15.0,),)
    main = guard_sql("SELECT SUM(amount) AS t FROM orders", both, row_filters=filters)
    assert main.row_filtered == ()
    assert schemas_engine.run(main.sql).rows == ((1000.0,),)


def test_refusals_name_the_schema_and_the_allowed_tables() -> None:
    with pytest.raises(GuardError) as caught:
        guard_sql("SELECT * FROM other.orders", RAW)
    assert 'table "other.orders" is not in the semantic layer' in caught.value.reason
    assert "analytics.customers, raw.orders" in caught.value.reason
    with pytest.raises(GuardError) as caught:
        guard_sql("SELECT * FROM warehouse.raw.orders", RAW)
    assert "catalog" in caught.value.reason


def test_engine_schema_of_every_schema_feeds_the_guard(schemas_engine: Engine) -> None:
    catalog = schemas_engine.schema()
    assert set(catalog) == {"orders", "raw.orders", "other.orders", "analytics.customers"}
    guarded = guard_sql("SELECT c.segment, COUNT(*) AS n FROM raw.orders JOIN analytics.customers AS c "
                        "USING (customer_id) GROUP BY 1 ORDER BY 1", catalog)
    assert schemas_engine.run(guarded.sql).rows == (("business", 1), ("retail", 2))
