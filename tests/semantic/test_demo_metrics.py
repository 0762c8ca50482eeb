"""Every contract metric on the demo warehouse, against SQL written by hand over the raw tables.

Each metric is checked by a one-hop dimension, a two-hop dimension where the
data has one, and a time grain, through the public API (`Lore.semantic.data`)
and through `lore sql --run --json`.
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from lore.cli import app

# (metric, dimension, hand-written SQL returning (dimension, value) rows)
CASES: list[tuple[str, str, str]] = [
    # streaming: one hop (accounts), two hops (accounts -> countries), time grain
    ("total_streaming_hours", "accounts.plan",
     "SELECT a.plan, SUM(s.streaming_hours) FROM streaming_sessions s JOIN accounts a ON a.account_id = s.account_id GROUP BY 1"),
    ("total_streaming_hours", "countries.region",
     "SELECT c.region, SUM(s.streaming_hours) FROM streaming_sessions s JOIN accounts a ON a.account_id = s.account_id "
     "JOIN countries c ON c.country_iso_code = a.country_iso_code GROUP BY 1"),
    ("total_streaming_hours", "metric_time:month",
     "SELECT CAST(date_trunc('month', session_date) AS DATE), SUM(streaming_hours) FROM streaming_sessions GROUP BY 1"),
    ("streaming_session_count", "titles.genre",
     "SELECT t.genre, COUNT(*) FROM streaming_sessions s JOIN titles t ON t.title_id = s.title_id GROUP BY 1"),
    ("streaming_session_count", "countries.country_name",
     "SELECT c.country_name, COUNT(*) FROM streaming_sessions s JOIN accounts a USING (account_id) "
     "JOIN countries c ON c.country_iso_code = a.country_iso_code GROUP BY 1"),
    ("streaming_session_count", "metric_time:week",
     "SELECT CAST(date_trunc('week', session_date) AS DATE), COUNT(*) FROM streaming_sessions GROUP BY 1"),
    ("active_streaming_accounts", "accounts.age_band",
     "SELECT a.age_band, COUNT(DISTINCT s.account_id) FROM streaming_sessions s JOIN accounts a USING (account_id) GROUP BY 1"),
    ("active_streaming_accounts", "countries.region",
     "SELECT c.region, COUNT(DISTINCT s.account_id) FROM streaming_sessions s JOIN accounts a USING (account_id) "
     "JOIN countries c ON c.country_iso_code = a.country_iso_code GROUP BY 1"),
    ("active_streaming_accounts", "metric_time:quarter",
     "SELECT CAST(date_trunc('quarter', session_date) AS DATE), COUNT(DISTINCT account_id) FROM streaming_sessions GROUP BY 1"),
    ("hours_per_streaming_account", "streaming_sessions.device_type",
     "SELECT device_type, SUM(streaming_hours) / COUNT(DISTINCT account_id) FROM streaming_sessions GROUP BY 1"),
    ("hours_per_streaming_account", "countries.region",
     "SELECT c.region, SUM(s.streaming_hours) / COUNT(DISTINCT s.account_id) FROM streaming_sessions s "
     "JOIN accounts a USING (account_id) JOIN countries c ON c.country_iso_code = a.country_iso_code GROUP BY 1"),
    ("hours_per_streaming_account", "metric_time:month",
     "SELECT CAST(date_trunc('month', session_date) AS DATE), SUM(streaming_hours) / COUNT(DISTINCT account_id) "
     "FROM streaming_sessions GROUP BY 1"),
    ("new_signups", "countries.region",
     "SELECT c.region, COUNT(*) FROM accounts a JOIN countries c ON c.country_iso_code = a.country_iso_code GROUP BY 1"),
    ("new_signups", "metric_time:month",
     "SELECT CAST(date_trunc('month', signup_date) AS DATE), COUNT(*) FROM accounts GROUP BY 1"),
    # games
    ("game_installs", "games.game_genre",
     "SELECT g.game_genre, COUNT(*) FROM game_installs i JOIN games g USING (game_id) GROUP BY 1"),
    ("game_installs", "countries.region",
     "SELECT c.region, COUNT(*) FROM game_installs i JOIN accounts a USING (account_id) "
     "JOIN countries c ON c.country_iso_code = a.country_iso_code GROUP BY 1"),
    ("game_installs", "metric_time:year",
     "SELECT CAST(date_trunc('year', install_date) AS DATE), COUNT(*) FROM game_installs GROUP BY 1"),
    ("game_monthly_active_accounts", "games.game_name",
     "SELECT g.game_name, COUNT(DISTINCT s.account_id) FROM game_sessions s JOIN games g USING (game_id) GROUP BY 1"),
    ("game_monthly_active_accounts", "countries.region",
     "SELECT c.region, COUNT(DISTINCT s.account_id) FROM game_sessions s JOIN accounts a USING (account_id) "
     "JOIN countries c ON c.country_iso_code = a.country_iso_code GROUP BY 1"),
    ("game_monthly_active_accounts", "metric_time:month",
     "SELECT CAST(date_trunc('month', session_date) AS DATE), COUNT(DISTINCT account_id) FROM game_sessions GROUP BY 1"),
    ("game_minutes_played", "games.game_genre",
     "SELECT g.game_genre, SUM(minutes_played) FROM game_sessions s JOIN games g USING (game_id) GROUP BY 1"),
    ("game_minutes_played", "countries.country_name",
     "SELECT c.country_name, SUM(s.minutes_played) FROM game_sessions s JOIN accounts a USING (account_id) "
     "JOIN countries c ON c.country_iso_code = a.country_iso_code GROUP BY 1"),
    ("game_minutes_played", "metric_time:week",
     "SELECT CAST(date_trunc('week', session_date) AS DATE), SUM(minutes_played) FROM game_sessions GROUP BY 1"),
    ("ua_spend", "countries.region",
     "SELECT c.region, SUM(spend_usd) FROM ua_campaigns u JOIN countries c USING (country_iso_code) GROUP BY 1"),
    ("ua_spend", "ua_campaigns.channel",
     "SELECT channel, SUM(spend_usd) FROM ua_campaigns GROUP BY 1"),
    ("ua_spend", "metric_time:quarter",
     "SELECT CAST(date_trunc('quarter', start_date) AS DATE), SUM(spend_usd) FROM ua_campaigns GROUP BY 1"),
    # cost_per_install: two facts; the region is one hop from campaigns and two hops from installs
    ("cost_per_install", "countries.region",
     "WITH s AS (SELECT c.region, SUM(spend_usd) AS spend FROM ua_campaigns u JOIN countries c USING (country_iso_code) GROUP BY 1), "
     "i AS (SELECT c.region, COUNT(*) AS n FROM game_installs g JOIN accounts a USING (account_id) "
     "JOIN countries c ON c.country_iso_code = a.country_iso_code GROUP BY 1) "
     "SELECT coalesce(s.region, i.region), s.spend / NULLIF(i.n, 0) FROM s FULL OUTER JOIN i ON s.region = i.region"),
    ("cost_per_install", "games.game_genre",
     "WITH s AS (SELECT g.game_genre, SUM(spend_usd) AS spend FROM ua_campaigns u JOIN games g USING (game_id) GROUP BY 1), "
     "i AS (SELECT g.game_genre, COUNT(*) AS n FROM game_installs x JOIN games g USING (game_id) GROUP BY 1) "
     "SELECT coalesce(s.game_genre, i.game_genre), s.spend / NULLIF(i.n, 0) FROM s FULL OUTER JOIN i USING (game_genre)"),
    ("cost_per_install", "metric_time:month",
     "WITH s AS (SELECT CAST(date_trunc('month', start_date) AS DATE) AS m, SUM(spend_usd) AS spend FROM ua_campaigns GROUP BY 1), "
     "i AS (SELECT CAST(date_trunc('month', install_date) AS DATE) AS m, COUNT(*) AS n FROM game_installs GROUP BY 1) "
     "SELECT coalesce(s.m, i.m), s.spend / NULLIF(i.n, 0) FROM s FULL OUTER JOIN i ON s.m = i.m"),
    # cloud
    ("cloud_cost", "teams.org",
     "SELECT t.org, SUM(cost_usd) FROM cloud_costs c JOIN teams t USING (team_name) GROUP BY 1"),
    ("cloud_cost", "cloud_costs.service",
     "SELECT service, SUM(cost_usd) FROM cloud_costs GROUP BY 1"),
    ("cloud_cost", "metric_time:month",
     "SELECT CAST(date_trunc('month', usage_date) AS DATE), SUM(cost_usd) FROM cloud_costs GROUP BY 1"),
    ("cpu_utilization", "teams.org",
     "SELECT t.org, SUM(cpu_utilization * cpu_hours) / SUM(cpu_hours) FROM cloud_costs c JOIN teams t USING (team_name) GROUP BY 1"),
    ("cpu_utilization", "metric_time:quarter",
     "SELECT CAST(date_trunc('quarter', usage_date) AS DATE), SUM(cpu_utilization * cpu_hours) / SUM(cpu_hours) FROM cloud_costs GROUP BY 1"),
    # content
    ("content_cash_spend", "productions.format",
     "SELECT p.format, SUM(amount_usd) FROM cash_spend s JOIN productions p USING (production_id) GROUP BY 1"),
    ("content_cash_spend", "titles.genre",
     "SELECT t.genre, SUM(s.amount_usd) FROM cash_spend s JOIN productions p USING (production_id) "
     "LEFT JOIN titles t ON t.title_id = p.title_id GROUP BY 1"),
    ("content_cash_spend", "metric_time:year",
     "SELECT CAST(date_trunc('year', spend_date) AS DATE), SUM(amount_usd) FROM cash_spend GROUP BY 1"),
    ("production_budget", "titles.genre",
     "SELECT t.genre, SUM(budget_usd) FROM productions p LEFT JOIN titles t ON t.title_id = p.title_id GROUP BY 1"),
    ("production_budget", "metric_time:quarter",
     "SELECT CAST(date_trunc('quarter', launch_date) AS DATE), SUM(budget_usd) FROM productions GROUP BY 1"),
    # speech recognition
    ("asr_word_error_rate", "titles.original_language",
     "SELECT t.original_language, SUM(word_errors) / SUM(word_count) FROM asr_evaluations e JOIN titles t USING (title_id) GROUP BY 1"),
    ("asr_word_error_rate", "asr_evaluations.language",
     "SELECT language, SUM(word_errors) / SUM(word_count) FROM asr_evaluations GROUP BY 1"),
    ("asr_word_error_rate", "metric_time:month",
     "SELECT CAST(date_trunc('month', evaluation_date) AS DATE), SUM(word_errors) / SUM(word_count) FROM asr_evaluations GROUP BY 1"),
]

CONTRACT_METRICS = {
    "total_streaming_hours", "streaming_session_count", "active_streaming_accounts", "hours_per_streaming_account",
    "new_signups", "game_installs", "game_monthly_active_accounts", "game_minutes_played", "ua_spend",
    "cost_per_install", "cloud_cost", "cpu_utilization", "content_cash_spend", "production_budget",
    "asr_word_error_rate",
}


def _normalise(rows) -> dict:
    out = {}
    for key, value in rows:
        key = key.isoformat() if hasattr(key, "isoformat") else key
        out[key] = None if value is None else float(value)
    return out


def _assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for k, v in want.items():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            assert got[k] is None
        else:
            assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-9), k


def test_every_contract_metric_is_covered(demo_lore) -> None:
    assert CONTRACT_METRICS <= set(demo_lore.layer.metrics)
    assert CONTRACT_METRICS <= {metric for metric, _, _ in CASES}


@pytest.mark.parametrize(("metric", "dimension", "hand_sql"), CASES, ids=[f"{m}-by-{d}" for m, d, _ in CASES])
def test_metric_matches_hand_written_sql(demo_lore, raw_db, metric: str, dimension: str, hand_sql: str) -> None:
    want = _normalise(raw_db.execute(hand_sql).fetchall())
    assert want, "the hand-written SQL must return rows on the demo warehouse"
    result = demo_lore.semantic.data(metrics=[metric], dimensions=[dimension])
    assert [c.kind for c in result.columns] == ["dimension", "metric"]
    _assert_same(_normalise(result.rows), want)


def test_scalar_and_filtered_totals(demo_lore, raw_db) -> None:
    (want,) = raw_db.execute(
        "SELECT SUM(s.streaming_hours) FROM streaming_sessions s JOIN accounts a USING (account_id) "
        "JOIN countries c ON c.country_iso_code = a.country_iso_code "
        "WHERE a.plan = 'premium' AND c.region = 'EMEA' AND s.session_date BETWEEN DATE '2026-01-01' AND DATE '2026-06-30'"
    ).fetchone()
    result = demo_lore.semantic.data(
        metrics=["total_streaming_hours"],
        filters=["accounts.plan = 'premium'", "countries.region = 'EMEA'", "metric_time BETWEEN '2026-01-01' AND '2026-06-30'"],
    )
    assert result.rows[0][0] == pytest.approx(want)


def test_experiment_cells_pinned_or_deduplicated(demo_lore, raw_db) -> None:
    """ab_allocations fans out unless test_id is fixed: without the test, each session counts once in every cell
    its account is in (deduplicated by session_id); fixing the test by name makes the plain join safe."""
    across_tests = demo_lore.semantic.data(metrics=["total_streaming_hours"], dimensions=["ab_allocations.cell"])
    want_across = _normalise(raw_db.execute(
        "SELECT cell, SUM(streaming_hours) FROM (SELECT DISTINCT s.session_id, al.cell, s.streaming_hours "
        "FROM streaming_sessions s LEFT JOIN accounts a ON a.account_id = s.account_id "
        "LEFT JOIN ab_allocations al ON al.account_id = a.account_id) GROUP BY 1").fetchall())
    _assert_same(_normalise(across_tests.rows), want_across)
    naive = _normalise(raw_db.execute(
        "SELECT al.cell, SUM(s.streaming_hours) FROM streaming_sessions s "
        "LEFT JOIN ab_allocations al ON al.account_id = s.account_id GROUP BY 1").fetchall())
    assert naive != want_across, "the demo data should make the plain join inflate some cell"
    (test_id, test_name) = raw_db.execute("SELECT test_id, test_name FROM experiments ORDER BY test_id LIMIT 1").fetchone()
    want = _normalise(raw_db.execute(
        "SELECT al.cell, SUM(s.streaming_hours) FROM streaming_sessions s JOIN ab_allocations al "
        "ON al.account_id = s.account_id AND al.test_id = ? GROUP BY 1", [test_id]).fetchall())
    result = demo_lore.semantic.data(metrics=["total_streaming_hours"], dimensions=["ab_allocations.cell"],
                                     filters=[f"experiments.test_name = '{test_name}'"])
    _assert_same(_normalise(result.rows), want)
    # a duplication-invariant metric may cross the fan-out without fixing the test;
    # accounts never allocated to any test form the NULL cell (kept by the LEFT join)
    active = demo_lore.semantic.data(metrics=["active_streaming_accounts"], dimensions=["ab_allocations.cell"])
    want_active = _normalise(raw_db.execute(
        "SELECT al.cell, COUNT(DISTINCT s.account_id) FROM streaming_sessions s LEFT JOIN ab_allocations al "
        "ON al.account_id = s.account_id GROUP BY 1").fetchall())
    _assert_same(_normalise(active.rows), want_active)


@pytest.mark.parametrize(("metric", "dimension", "hand_sql"), [CASES[1], CASES[27]], ids=["two-hop", "two-facts"])
def test_cli_sql_run_json_matches_hand_sql(demo_dir, raw_db, metric, dimension, hand_sql) -> None:
    want = _normalise(raw_db.execute(hand_sql).fetchall())
    out = CliRunner().invoke(app, ["sql", "--project", str(demo_dir), "--metric", metric, "--dimension", dimension,
                                   "--run", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    _assert_same(_normalise([tuple(r) for r in payload["rows"]]), want)
