"""The demo warehouse generator, checked against the contract in demo-warehouse.md.

Every test reads a real DuckDB file built by the real generator at a tiny scale;
the warehouses are built once per module.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lore.demo.warehouse import TABLES, generate_warehouse, table_counts_for_scale, weighted_buckets
from lore.errors import OperatorError
from lore.execute.build import open_build_connection

SCALE = 0.02
SEED = 42
FIRST_DAY = date(2025, 1, 1)
LAST_DAY = date(2026, 10, 31)

# The contract, copied from demo-warehouse.md on purpose (not imported from the generator).
CONTRACT: dict[str, list[tuple[str, str]]] = {
    "countries": [("country_iso_code", "VARCHAR"), ("country_name", "VARCHAR"), ("region", "VARCHAR")],
    "accounts": [
        ("account_id", "BIGINT"),
        ("country_iso_code", "VARCHAR"),
        ("plan", "VARCHAR"),
        ("signup_date", "DATE"),
        ("age_band", "VARCHAR"),
    ],
    "titles": [
        ("title_id", "BIGINT"),
        ("title_name", "VARCHAR"),
        ("title_type", "VARCHAR"),
        ("genre", "VARCHAR"),
        ("original_language", "VARCHAR"),
        ("release_date", "DATE"),
    ],
    "experiments": [("test_id", "BIGINT"), ("test_name", "VARCHAR"), ("start_date", "DATE"), ("end_date", "DATE")],
    "games": [("game_id", "BIGINT"), ("game_name", "VARCHAR"), ("game_genre", "VARCHAR"), ("launch_date", "DATE")],
    "teams": [("team_name", "VARCHAR"), ("org", "VARCHAR")],
    "productions": [
        ("production_id", "BIGINT"),
        ("production_name", "VARCHAR"),
        ("title_id", "BIGINT"),
        ("format", "VARCHAR"),
        ("is_tbd_slot", "BOOLEAN"),
        ("budget_usd", "DOUBLE"),
        ("launch_date", "DATE"),
    ],
    "streaming_sessions": [
        ("session_id", "BIGINT"),
        ("session_date", "DATE"),
        ("account_id", "BIGINT"),
        ("title_id", "BIGINT"),
        ("device_type", "VARCHAR"),
        ("streaming_hours", "DOUBLE"),
    ],
    "ab_allocations": [
        ("test_id", "BIGINT"),
        ("account_id", "BIGINT"),
        ("cell", "VARCHAR"),
        ("allocated_date", "DATE"),
    ],
    "game_installs": [
        ("install_id", "BIGINT"),
        ("install_date", "DATE"),
        ("account_id", "BIGINT"),
        ("game_id", "BIGINT"),
        ("platform", "VARCHAR"),
    ],
    "game_sessions": [
        ("game_session_id", "BIGINT"),
        ("session_date", "DATE"),
        ("account_id", "BIGINT"),
        ("game_id", "BIGINT"),
        ("minutes_played", "DOUBLE"),
    ],
    "ua_campaigns": [
        ("campaign_id", "BIGINT"),
        ("game_id", "BIGINT"),
        ("country_iso_code", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("start_date", "DATE"),
        ("end_date", "DATE"),
        ("spend_usd", "DOUBLE"),
    ],
    "cloud_costs": [
        ("usage_date", "DATE"),
        ("team_name", "VARCHAR"),
        ("service", "VARCHAR"),
        ("cloud_region", "VARCHAR"),
        ("cost_usd", "DOUBLE"),
        ("cpu_hours", "DOUBLE"),
        ("cpu_utilization", "DOUBLE"),
    ],
    "cash_spend": [("spend_date", "DATE"), ("production_id", "BIGINT"), ("phase", "VARCHAR"), ("amount_usd", "DOUBLE")],
    "asr_evaluations": [
        ("evaluation_id", "BIGINT"),
        ("evaluation_date", "DATE"),
        ("title_id", "BIGINT"),
        ("language", "VARCHAR"),
        ("word_count", "INTEGER"),
        ("word_errors", "INTEGER"),
        ("timing_offset_ms", "DOUBLE"),
    ],
}

LANGUAGES = {"en", "es", "ko", "ja", "fr", "de", "hi", "pt"}
DOMAINS: list[tuple[str, str, set[str]]] = [
    ("countries", "country_iso_code", {
        "US", "CA", "MX", "BR", "AR", "CO", "GB", "FR", "DE", "ES",
        "IT", "NL", "PL", "TR", "ZA", "IN", "JP", "KR", "AU", "ID",
    }),  # fmt: skip
    ("countries", "region", {"UCAN", "EMEA", "LATAM", "APAC"}),
    ("accounts", "plan", {"basic_with_ads", "standard", "premium"}),
    ("accounts", "age_band", {"18-24", "25-34", "35-44", "45-54", "55+"}),
    ("titles", "title_type", {"movie", "series", "documentary", "standup"}),
    ("titles", "genre", {
        "drama", "comedy", "action", "thriller", "animation", "reality", "sci-fi", "romance", "horror", "kids",
    }),  # fmt: skip
    ("titles", "original_language", LANGUAGES),
    ("games", "game_genre", {"puzzle", "action", "narrative", "sports", "casual"}),
    ("teams", "org", {"streaming", "studio", "games", "data", "security"}),
    ("productions", "format", {"movie", "series", "documentary", "standup"}),
    ("streaming_sessions", "device_type", {"tv", "mobile", "web", "tablet"}),
    ("ab_allocations", "cell", {"A", "B", "C"}),
    ("game_installs", "platform", {"ios", "android"}),
    ("ua_campaigns", "channel", {"google", "meta", "tiktok"}),
    ("cloud_costs", "service", {"compute", "storage", "data_transfer", "database", "streaming_pipeline"}),
    ("cloud_costs", "cloud_region", {"us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"}),
    ("cash_spend", "phase", {"development", "pre_production", "production", "post_production", "launch"}),
    ("asr_evaluations", "language", LANGUAGES),
]

# (child table, child column, parent table, parent column)
FOREIGN_KEYS = [
    ("accounts", "country_iso_code", "countries", "country_iso_code"),
    ("productions", "title_id", "titles", "title_id"),
    ("streaming_sessions", "account_id", "accounts", "account_id"),
    ("streaming_sessions", "title_id", "titles", "title_id"),
    ("ab_allocations", "test_id", "experiments", "test_id"),
    ("ab_allocations", "account_id", "accounts", "account_id"),
    ("game_installs", "account_id", "accounts", "account_id"),
    ("game_installs", "game_id", "games", "game_id"),
    ("game_sessions", "account_id", "accounts", "account_id"),
    ("game_sessions", "game_id", "games", "game_id"),
    ("ua_campaigns", "game_id", "games", "game_id"),
    ("ua_campaigns", "country_iso_code", "countries", "country_iso_code"),
    ("cloud_costs", "team_name", "teams", "team_name"),
    ("cash_spend", "production_id", "productions", "production_id"),
    ("asr_evaluations", "title_id", "titles", "title_id"),
]

# Each table's key: the primary key, or the natural key of the tables without one.
KEYS: dict[str, tuple[str, ...]] = {
    "countries": ("country_iso_code",),
    "accounts": ("account_id",),
    "titles": ("title_id",),
    "experiments": ("test_id",),
    "games": ("game_id",),
    "teams": ("team_name",),
    "productions": ("production_id",),
    "streaming_sessions": ("session_id",),
    "ab_allocations": ("test_id", "account_id"),
    "game_installs": ("install_id",),
    "game_sessions": ("game_session_id",),
    "ua_campaigns": ("campaign_id",),
    "cloud_costs": ("usage_date", "team_name", "service", "cloud_region"),
    "cash_spend": ("production_id", "spend_date"),
    "asr_evaluations": ("evaluation_id",),
}

FACT_DATES = [
    ("streaming_sessions", "session_date"),
    ("ab_allocations", "allocated_date"),
    ("game_installs", "install_date"),
    ("game_sessions", "session_date"),
    ("ua_campaigns", "start_date"),
    ("ua_campaigns", "end_date"),
    ("cloud_costs", "usage_date"),
    ("cash_spend", "spend_date"),
    ("asr_evaluations", "evaluation_date"),
    ("accounts", "signup_date"),
    ("experiments", "start_date"),
    ("experiments", "end_date"),
]


# --- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The reference warehouse (scale 0.02, seed 42), with its counts and progress calls."""
    path = tmp_path_factory.mktemp("warehouse") / "demo.duckdb"
    calls: list[tuple[str, int, int]] = []
    counts = generate_warehouse(path, scale=SCALE, seed=SEED, progress=lambda *a: calls.append(a))
    return {"path": path, "counts": counts, "calls": calls}


@pytest.fixture(scope="module")
def con(built: dict[str, object]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(built["path"]), read_only=True)
    yield connection
    connection.close()


def _checksums(path: Path) -> dict[str, str]:
    """md5 of every table's rows in key order."""
    with duckdb.connect(str(path), read_only=True) as c:
        return {
            table: c.execute(
                f"SELECT count(*) || ':' || md5(string_agg(t::VARCHAR, '|' ORDER BY {', '.join(KEYS[table])})) "
                f"FROM {table} t"
            ).fetchone()[0]
            for table in TABLES
        }


@pytest.fixture(scope="module")
def reference_checksums(built: dict[str, object]) -> dict[str, str]:
    return _checksums(built["path"])


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    return con.execute(sql).fetchone()[0]


# --- schema and sizes ---------------------------------------------------------------


def test_tables_and_columns_match_the_contract_exactly(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    actual: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        actual.setdefault(table, []).append((column, data_type))
    assert actual == CONTRACT
    assert set(TABLES) == set(CONTRACT)


def test_row_counts_match_the_expected_sizes(built: dict[str, object], con: duckdb.DuckDBPyConnection) -> None:
    counts = built["counts"]
    expected = table_counts_for_scale(SCALE)
    assert list(counts) == list(TABLES)
    for table in TABLES:
        assert counts[table] == scalar(con, f"SELECT count(*) FROM {table}")
    approximate = {"ab_allocations": 0.15, "cloud_costs": 0.15, "cash_spend": 0.1}
    for table, count in counts.items():
        if table in approximate:
            assert abs(count - expected[table]) <= approximate[table] * expected[table], table
        else:
            assert count == expected[table], table
    assert counts["streaming_sessions"] == 20_000 and counts["accounts"] == 1_000 and counts["titles"] == 2_000


def test_expected_sizes_scale_with_the_scale_and_dimensions_do_not() -> None:
    small, big = table_counts_for_scale(0.01), table_counts_for_scale(1)
    scaled = ("accounts", "streaming_sessions", "game_installs", "game_sessions", "ua_campaigns", "asr_evaluations")
    for table in scaled:
        assert big[table] == 100 * small[table]
    for table in ("countries", "titles", "experiments", "games", "teams", "productions"):
        assert big[table] == small[table]
    assert big["streaming_sessions"] == 1_000_000
    assert table_counts_for_scale(1e-9)["streaming_sessions"] == 1


@pytest.mark.parametrize("bad", [0, -1, 100.5, math.nan, math.inf, "1"])
def test_bad_scales_are_refused_before_anything_is_written(tmp_path: Path, bad: object) -> None:
    target = tmp_path / "demo.duckdb"
    with pytest.raises(OperatorError, match="scale"):
        generate_warehouse(target, scale=bad)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_bad_seed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="seed"):
        generate_warehouse(tmp_path / "demo.duckdb", scale=0.01, seed=-5)
    assert list(tmp_path.iterdir()) == []


def test_progress_is_reported_per_table(built: dict[str, object]) -> None:
    assert built["calls"] == [(table, i, len(TABLES)) for i, table in enumerate(TABLES, start=1)]


# --- values --------------------------------------------------------------------------


@pytest.mark.parametrize(("table", "column", "allowed"), DOMAINS, ids=[f"{t}.{c}" for t, c, _ in DOMAINS])
def test_categorical_values_stay_in_their_domain_and_all_appear(
    con: duckdb.DuckDBPyConnection, table: str, column: str, allowed: set[str]
) -> None:
    values = {row[0] for row in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()}
    assert values == allowed


def test_no_nulls_except_tbd_title_ids(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in CONTRACT.items():
        for column, _ in columns:
            nulls = scalar(con, f"SELECT count(*) FROM {table} WHERE {column} IS NULL")
            if (table, column) == ("productions", "title_id"):
                assert nulls == scalar(con, "SELECT count(*) FROM productions WHERE is_tbd_slot")
            else:
                assert nulls == 0, f"{table}.{column}"


@pytest.mark.parametrize(("table", "columns"), list(KEYS.items()), ids=list(KEYS))
def test_keys_are_unique(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...]) -> None:
    cols = ", ".join(columns)
    assert scalar(con, f"SELECT count(*) FROM {table}") == scalar(con, f"SELECT count(DISTINCT ({cols})) FROM {table}")


@pytest.mark.parametrize(("table", "column"), [("titles", "title_name"), ("games", "game_name")])
def test_names_are_unique(con: duckdb.DuckDBPyConnection, table: str, column: str) -> None:
    assert scalar(con, f"SELECT count(*) = count(DISTINCT {column}) FROM {table}") is True


@pytest.mark.parametrize(
    ("child", "column", "parent", "key"), FOREIGN_KEYS, ids=[f"{c}.{k}" for c, k, _, _ in FOREIGN_KEYS]
)
def test_foreign_keys_resolve(con: duckdb.DuckDBPyConnection, child: str, column: str, parent: str, key: str) -> None:
    orphans = scalar(
        con,
        f"SELECT count(*) FROM {child} c WHERE c.{column} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = c.{column})",
    )
    assert orphans == 0


@pytest.mark.parametrize(("table", "column"), FACT_DATES, ids=[f"{t}.{c}" for t, c in FACT_DATES])
def test_dates_stay_in_the_range(con: duckdb.DuckDBPyConnection, table: str, column: str) -> None:
    low, high = con.execute(f"SELECT min({column}), max({column}) FROM {table}").fetchone()
    assert FIRST_DAY <= low and high <= LAST_DAY


def test_facts_cover_the_whole_range(con: duckdb.DuckDBPyConnection) -> None:
    low, high, days = con.execute(
        "SELECT min(session_date), max(session_date), count(DISTINCT session_date) FROM streaming_sessions"
    ).fetchone()
    # the service launches on the first day, so the very first days can be empty at tiny scales
    assert low <= date(2025, 1, 7) and high == LAST_DAY
    assert days >= (LAST_DAY - FIRST_DAY).days + 1 - 6


def test_facts_only_use_accounts_that_already_signed_up(con: duckdb.DuckDBPyConnection) -> None:
    for table, column in [("streaming_sessions", "session_date"), ("game_installs", "install_date"),
                          ("game_sessions", "session_date"), ("ab_allocations", "allocated_date")]:  # fmt: skip
        early = scalar(
            con, f"SELECT count(*) FROM {table} f JOIN accounts a USING (account_id) WHERE f.{column} < a.signup_date"
        )
        assert early == 0, table


def test_games_are_played_after_install_and_launch(con: duckdb.DuckDBPyConnection) -> None:
    before_launch = (
        "SELECT count(*) FROM game_installs i JOIN games g USING (game_id) WHERE i.install_date < g.launch_date"
    )
    assert scalar(con, before_launch) == 0
    never_installed = scalar(
        con,
        "SELECT count(*) FROM game_sessions s WHERE NOT EXISTS (SELECT 1 FROM game_installs i "
        "WHERE i.account_id = s.account_id AND i.game_id = s.game_id AND i.install_date <= s.session_date)",
    )
    assert never_installed == 0


def test_titles_are_streamed_and_evaluated_only_after_release(con: duckdb.DuckDBPyConnection) -> None:
    for table, column in [("streaming_sessions", "session_date"), ("asr_evaluations", "evaluation_date")]:
        early = f"SELECT count(*) FROM {table} f JOIN titles t USING (title_id) WHERE f.{column} < t.release_date"
        assert scalar(con, early) == 0, table


def test_numbers_are_in_sensible_bounds(con: duckdb.DuckDBPyConnection) -> None:
    checks = {
        "cloud_costs cpu_utilization in [0, 1]": "SELECT bool_and(cpu_utilization BETWEEN 0 AND 1) FROM cloud_costs",
        "cloud_costs non-negative": "SELECT bool_and(cost_usd >= 0 AND cpu_hours >= 0) FROM cloud_costs",
        "streaming hours positive, under a day":
            "SELECT bool_and(streaming_hours > 0 AND streaming_hours <= 24) FROM streaming_sessions",
        "minutes positive": "SELECT bool_and(minutes_played > 0 AND minutes_played <= 1440) FROM game_sessions",
        "word errors within words":
            "SELECT bool_and(word_errors BETWEEN 0 AND word_count AND word_count > 0) FROM asr_evaluations",
        "timing offsets non-negative": "SELECT bool_and(timing_offset_ms >= 0) FROM asr_evaluations",
        "budgets positive": "SELECT bool_and(budget_usd > 0) FROM productions",
        "cash amounts positive": "SELECT bool_and(amount_usd > 0) FROM cash_spend",
        "campaigns spend and run forward":
            "SELECT bool_and(spend_usd > 0 AND end_date >= start_date) FROM ua_campaigns",
        "experiments run forward": "SELECT bool_and(end_date > start_date) FROM experiments",
    }
    failed = [name for name, sql in checks.items() if scalar(con, sql) is not True]
    assert failed == []


def test_cash_spend_phases_follow_each_other_in_order(con: duckdb.DuckDBPyConnection) -> None:
    out_of_order = scalar(
        con,
        """
        WITH ranked AS (
            SELECT production_id, spend_date,
                list_position(['development', 'pre_production', 'production', 'post_production', 'launch'], phase) AS r
            FROM cash_spend
        )
        SELECT count(*) FROM ranked a JOIN ranked b USING (production_id)
        WHERE a.r < b.r AND a.spend_date >= b.spend_date
        """,
    )
    assert out_of_order == 0
    assert scalar(con, "SELECT count(DISTINCT production_id) FROM cash_spend") == 400


def test_productions_tbd_slots(con: duckdb.DuckDBPyConnection) -> None:
    tbd, total, mismatched = con.execute(
        "SELECT count(*) FILTER (WHERE is_tbd_slot), count(*), "
        "count(*) FILTER (WHERE is_tbd_slot <> (title_id IS NULL)) FROM productions"
    ).fetchone()
    assert mismatched == 0
    assert 0.28 <= tbd / total <= 0.38
    assert scalar(con, "SELECT count(*) = count(DISTINCT title_id) FROM productions WHERE title_id IS NOT NULL") is True


def test_ab_allocations(con: duckdb.DuckDBPyConnection) -> None:
    in_several = scalar(
        con, "SELECT count(*) FROM (SELECT account_id FROM ab_allocations GROUP BY account_id HAVING count(*) > 1)"
    )
    assert in_several > 0
    outside_window = scalar(
        con,
        "SELECT count(*) FROM ab_allocations a JOIN experiments e USING (test_id) "
        "WHERE a.allocated_date NOT BETWEEN e.start_date AND e.end_date",
    )
    assert outside_window == 0
    # every test has at least two cells, and cells are roughly balanced
    rows = con.execute("SELECT test_id, cell, count(*) FROM ab_allocations GROUP BY ALL").fetchall()
    cells: dict[int, list[int]] = {}
    for test_id, _, n in rows:
        cells.setdefault(test_id, []).append(n)
    assert len(cells) == 10
    assert all(len(sizes) >= 2 and min(sizes) >= 0.6 * max(sizes) for sizes in cells.values())
    names = [r[0] for r in con.execute("SELECT test_name FROM experiments").fetchall()]
    assert len(set(names)) == 10 and "homepage_row_order_2025q3" in names


def test_asr_languages_are_title_languages(con: duckdb.DuckDBPyConnection) -> None:
    asr = {r[0] for r in con.execute("SELECT DISTINCT language FROM asr_evaluations").fetchall()}
    titles = {r[0] for r in con.execute("SELECT DISTINCT original_language FROM titles").fetchall()}
    assert asr <= titles


def test_every_country_streams_and_every_team_has_costs(con: duckdb.DuckDBPyConnection) -> None:
    countries = scalar(
        con, "SELECT count(DISTINCT a.country_iso_code) FROM streaming_sessions s JOIN accounts a USING (account_id)"
    )
    assert countries == 20
    assert scalar(con, "SELECT count(DISTINCT team_name) FROM cloud_costs") == 25
    assert scalar(con, "SELECT count(DISTINCT game_id) FROM game_installs") == 30


# --- it looks like a business ------------------------------------------------------------


def test_streaming_has_growth_weekly_seasonality_and_skew(con: duckdb.DuckDBPyConnection) -> None:
    first_q, last_q = con.execute(
        "SELECT count(*) FILTER (WHERE session_date < DATE '2025-04-01'), "
        "count(*) FILTER (WHERE session_date >= DATE '2026-08-01') FROM streaming_sessions"
    ).fetchone()
    assert last_q > 1.5 * first_q
    weekend, weekday = con.execute(
        "SELECT count(*) FILTER (WHERE isodow(session_date) >= 6) / 2, "
        "count(*) FILTER (WHERE isodow(session_date) <= 5) / 5 FROM streaming_sessions"
    ).fetchone()
    assert weekend > 1.15 * weekday
    top_countries = [r[0] for r in con.execute(
        "SELECT a.country_iso_code FROM streaming_sessions s JOIN accounts a USING (account_id) "
        "GROUP BY 1 ORDER BY sum(streaming_hours) DESC LIMIT 2"
    ).fetchall()]  # fmt: skip
    assert top_countries[0] == "US"
    top_title_share = scalar(
        con, "SELECT max(n) / sum(n) FROM (SELECT count(*) AS n FROM streaming_sessions GROUP BY title_id)"
    )
    assert top_title_share > 20 / 2000  # far above uniform


def test_premium_streams_more_and_tv_sessions_are_longer(con: duckdb.DuckDBPyConnection) -> None:
    per_plan = dict(con.execute(
        "SELECT plan, sum(streaming_hours) / count(DISTINCT account_id) FROM streaming_sessions "
        "JOIN accounts USING (account_id) GROUP BY plan"
    ).fetchall())  # fmt: skip
    assert per_plan["premium"] > per_plan["standard"] > per_plan["basic_with_ads"]
    per_device = dict(
        con.execute("SELECT device_type, avg(streaming_hours) FROM streaming_sessions GROUP BY 1").fetchall()
    )
    assert per_device["tv"] > 1.5 * per_device["mobile"]


# --- determinism -------------------------------------------------------------------------


def test_same_seed_and_scale_give_identical_tables_whatever_the_threads(
    tmp_path: Path, reference_checksums: dict[str, str]
) -> None:
    again = tmp_path / "again.duckdb"
    generate_warehouse(again, scale=SCALE, seed=SEED, threads=1)
    assert _checksums(again) == reference_checksums


def test_a_different_seed_gives_different_data(tmp_path: Path, reference_checksums: dict[str, str]) -> None:
    other = tmp_path / "other.duckdb"
    generate_warehouse(other, scale=SCALE, seed=SEED + 1)
    other_sums = _checksums(other)
    fixed = {"countries", "teams", "experiments"}
    for table in TABLES:
        if table in fixed:
            assert other_sums[table] == reference_checksums[table], table
        else:
            assert other_sums[table] != reference_checksums[table], table


def test_rows_are_stored_in_key_order(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in KEYS.items():
        if table in ("countries", "teams", "experiments", "cash_spend", "cloud_costs"):
            continue  # stored in their natural (data or date) order
        key = columns[0] if len(columns) == 1 else "(" + ", ".join(columns) + ")"
        disorder = scalar(
            con,
            f"SELECT count(*) FROM (SELECT {key} AS k, lag({key}) OVER (ORDER BY rowid) AS prev FROM {table}) "
            "WHERE prev >= k",
        )
        assert disorder == 0, table


# --- files --------------------------------------------------------------------------------


def test_an_existing_file_is_replaced_and_no_temporary_files_remain(tmp_path: Path) -> None:
    target = tmp_path / "demo.duckdb"
    target.write_bytes(b"not a database")
    counts = generate_warehouse(target, scale=0.001, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.duckdb"]
    with duckdb.connect(str(target), read_only=True) as c:
        stored = c.execute("SELECT count(*) FROM streaming_sessions").fetchone()[0]
    assert stored == counts["streaming_sessions"] == 1000


def test_an_unwritable_location_is_an_operator_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OperatorError, match="Could not build the demo warehouse"):
        generate_warehouse(blocker / "demo.duckdb", scale=0.001)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_build_connection_cannot_reach_files_or_extensions(tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("a,b\n1,2\n")
    db = tmp_path / "build.duckdb"
    c = open_build_connection(db, threads=1)
    try:
        with pytest.raises(duckdb.Error):
            c.execute("SELECT * FROM read_csv(?)", [str(outside)]).fetchall()
        settings = dict(c.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'autoload_known_extensions', 'autoinstall_known_extensions')"
        ).fetchall())  # fmt: skip
        assert settings == {
            "enable_external_access": "false",
            "autoload_known_extensions": "false",
            "autoinstall_known_extensions": "false",
        }
    finally:
        c.close()


# --- pure helpers ------------------------------------------------------------------------


@given(st.lists(st.floats(min_value=0.001, max_value=1000), min_size=1, max_size=40), st.integers(40, 2000))
def test_weighted_buckets_are_proportional(weights: list[float], size: int) -> None:
    buckets = weighted_buckets(weights, size)
    assert len(buckets) == size
    total = sum(weights)
    for choice, weight in enumerate(weights, start=1):
        n = buckets.count(choice)
        assert n >= 1
        assert abs(n - weight * size / total) <= len(weights) + 1
    assert list(buckets) == sorted(buckets)


@pytest.mark.slow
def test_the_experiment_effect_shows_at_the_default_scale_and_seed(tmp_path: Path) -> None:
    """Cell B of homepage_row_order_2025q3 streams ~3% more per session: visible at scale 1, seed 42."""
    path = tmp_path / "full.duckdb"
    generate_warehouse(path, scale=1.0, seed=42)
    with duckdb.connect(str(path), read_only=True) as c:
        rows = c.execute(
            """
            SELECT a.cell, avg(s.streaming_hours), sum(s.streaming_hours) / count(DISTINCT a.account_id)
            FROM ab_allocations a JOIN experiments e USING (test_id)
            JOIN streaming_sessions s ON s.account_id = a.account_id
                AND s.session_date BETWEEN e.start_date AND e.end_date
            WHERE e.test_name = 'homepage_row_order_2025q3'
            GROUP BY a.cell
            """
        ).fetchall()
    by_cell = {cell: (per_session, per_account) for cell, per_session, per_account in rows}
    assert set(by_cell) == {"A", "B"}
    assert 1.005 < by_cell["B"][0] / by_cell["A"][0] < 1.06
    assert by_cell["B"][1] > by_cell["A"][1]
