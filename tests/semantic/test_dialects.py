"""The compiler renders one semantic query for every dialect LORE supports.

Each output must re-parse with sqlglot in its own dialect; DuckDB's output runs on the
fixture; and each dialect's output, transpiled back to DuckDB by sqlglot, returns the same
rows (a cheap guard against text-transpile bugs, since we cannot run the other engines here).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from lore.errors import LoreError
from lore.semantic.compile import DIALECTS

#: representative queries: name -> (semantic query, expected DuckDB rows worked out in cases.yaml)
QUERIES: dict[str, tuple[dict[str, Any], list[list[Any]]]] = {
    "two_fact_union_ratio_by_month": (
        {"metrics": ["refund_rate", "revenue", "refund_amount"], "dimensions": ["metric_time:month"]},
        [["2026-01-01", 20 / 150, 150.0, 20.0], ["2026-02-01", 0.2, 50.0, 10.0],
         ["2026-03-01", None, 10.0, None], ["2026-04-01", None, None, 5.0]],
    ),
    "two_facts_no_dimensions": ({"metrics": ["revenue", "refund_amount"]}, [[210.0, 35.0]]),
    "week": (
        {"metrics": ["revenue"], "dimensions": ["metric_time:week"]},
        [["2026-01-05", 100.0], ["2026-01-19", 50.0], ["2026-02-02", 30.0], ["2026-02-09", 20.0], ["2026-02-23", 10.0]],
    ),
    "month": (
        {"metrics": ["revenue"], "dimensions": ["metric_time:month"]},
        [["2026-01-01", 150.0], ["2026-02-01", 50.0], ["2026-03-01", 10.0]],
    ),
    "quarter_year_day": (
        {"metrics": ["passengers"], "dimensions": ["metric_time:year", "metric_time:quarter", "metric_time:day"]},
        [["2026-01-01", "2026-01-01", "2026-01-01", 100], ["2026-01-01", "2026-01-01", "2026-01-02", 50],
         ["2026-01-01", "2026-01-01", "2026-01-03", 70]],
    ),
    "role_playing": (
        {"metrics": ["passengers"], "dimensions": ["airports.city[origin]", "airports.city[destination]"]},
        [["New York", "Paris", 100], ["Paris", "Frankfurt", 50], ["Paris", "New York", 70]],
    ),
    "metric_filter": (
        {"metrics": ["revenue"], "dimensions": ["customers.segment"], "filters": ["revenue > 50"]},
        [["retail", 160.0]],
    ),
    "order_limit": (
        {"metrics": ["revenue"], "dimensions": ["customers.customer_name"],
         "order_by": [{"ref": "revenue", "descending": True}], "limit": 2},
        [["Ann", 130.0], ["Bob", 50.0]],
    ),
    "order_desc_nulls_last": (
        {"metrics": ["revenue", "refund_amount"], "dimensions": ["metric_time:month"],
         "order_by": [{"ref": "revenue", "descending": True}]},
        [["2026-01-01", 150.0, 20.0], ["2026-02-01", 50.0, 10.0], ["2026-03-01", 10.0, None], ["2026-04-01", None, 5.0]],
    ),
    "order_asc_nulls_last": (
        {"metrics": ["revenue", "refund_amount"], "dimensions": ["metric_time:month"], "order_by": [{"ref": "revenue"}]},
        [["2026-03-01", 10.0, None], ["2026-02-01", 50.0, 10.0], ["2026-01-01", 150.0, 20.0], ["2026-04-01", None, 5.0]],
    ),
    "quote_and_date_range": (
        {"metrics": ["paid_revenue"], "dimensions": ["customers.customer_name"],
         "filters": [{"ref": "customers.customer_name", "op": "in", "values": ["O'Brien", "Bob"]},
                     {"ref": "metric_time", "op": "between", "values": ["2026-01-01", "2026-02-28"]}]},
        [["Bob", 50.0], ["O'Brien", 20.0]],
    ),
    "null_group_left_join": (
        {"metrics": ["revenue"], "dimensions": ["countries.region"]},
        [["EU", 70.0], ["NA", 130.0], [None, 10.0]],
    ),
    "pinned_bridge": (
        {"metrics": ["revenue"], "dimensions": ["promos.promo_name"], "filters": ["promos.promo_name = 'spring'"]},
        [["spring", 180.0]],
    ),
    # deduplicated fan-out (SELECT DISTINCT by the fact's key under the aggregate): see bridge_* in cases.yaml
    "deduplicated_bridge_by_month_with_ratio": (
        {"metrics": ["revenue", "order_count", "revenue_per_customer"],
         "dimensions": ["metric_time:month", "categories.category_name"]},
        [["2026-01-01", "gifts", 150.0, 2, 75.0], ["2026-01-01", "tools", 150.0, 2, 75.0],
         ["2026-01-01", "toys", 100.0, 1, 100.0], ["2026-02-01", "gifts", 20.0, 1, 20.0],
         ["2026-02-01", "tools", 50.0, 2, 25.0], ["2026-03-01", None, 10.0, 1, 10.0]],
    ),
    "deduplicated_two_facts": (
        {"metrics": ["revenue", "units"], "dimensions": ["categories.department"]},
        [["hardware", 200.0, 9], ["fun", 170.0, 9], [None, 10.0, None]],
    ),
    "deduplicated_filter": (
        {"metrics": ["revenue", "order_count"], "filters": ["categories.department = 'fun'"]},
        [[170.0, 3]],
    ),
    # a rate per entity: each customer-month's revenue, averaged in each segment (see per_entity_* in cases.yaml)
    "per_entity_per_month": (
        {"metrics": ["revenue"], "dimensions": ["customers.segment"],
         "per": {"entity": "customers.customer_id", "grain": "month"}},
        [["business", 50.0], ["retail", 40.0]],
    ),
    # the highest customer's revenue in each segment (see per_entity_max_* in cases.yaml)
    "per_entity_max": (
        {"metrics": ["revenue"], "dimensions": ["customers.segment"],
         "per": {"entity": "customers.customer_id", "stat": "max"}},
        [["business", 50.0], ["retail", 130.0]],
    ),
    # a running total restarting in each segment (see running_total_* in cases.yaml)
    "running_total_by_segment": (
        {"metrics": ["revenue"], "dimensions": ["customers.segment", "metric_time:month"], "running_total": True},
        [["business", "2026-01-01", 50.0, 50.0], ["retail", "2026-01-01", 100.0, 100.0],
         ["retail", "2026-02-01", 50.0, 150.0], ["retail", "2026-03-01", 10.0, 160.0]],
    ),
    # customers past a revenue threshold in each segment (see threshold_* in cases.yaml)
    "threshold_by_segment": (
        {"dimensions": ["customers.segment"],
         "threshold": {"entity": "customers.customer_id", "metric": "revenue", "op": ">=", "value": 20}},
        [["business", 1], ["retail", 2]],
    ),
    # time metrics declared in the layer (see *_metric_* in cases.yaml): an offset, a trailing window, to date
    "offset_metric_by_month": (
        {"metrics": ["revenue", "revenue_month_before"], "dimensions": ["metric_time:month"],
         "filters": [{"ref": "metric_time", "op": "between", "values": ["2026-02-01", "2026-03-31"]}]},
        [["2026-02-01", 50.0, 150.0], ["2026-03-01", 10.0, 50.0]],
    ),
    "window_metric_by_month": (
        {"metrics": ["revenue_2m"], "dimensions": ["metric_time:month"],
         "filters": [{"ref": "metric_time", "op": "between", "values": ["2026-02-01", "2026-03-31"]}]},
        [["2026-02-01", 200.0], ["2026-03-01", 60.0]],
    ),
    "to_date_metric_by_segment": (
        {"metrics": ["revenue_qtd"], "dimensions": ["customers.segment", "metric_time:month"]},
        [["business", "2026-01-01", 50.0], ["retail", "2026-01-01", 100.0], ["retail", "2026-02-01", 150.0],
         ["retail", "2026-03-01", 160.0]],
    ),
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_output_reparses_and_runs_back_on_duckdb(shop, name: str, dialect: str) -> None:
    query, expected = QUERIES[name]
    cq = shop.compile(query, dialect=dialect)
    assert cq.dialect == dialect
    statements = [s for s in sqlglot.parse(cq.sql, read=dialect) if s is not None]
    assert len(statements) == 1
    tree = statements[0]
    assert isinstance(tree, exp.Select), type(tree)
    assert not list(tree.find_all(exp.Anonymous)), f"functions unknown to sqlglot in {dialect}:\n{cq.sql}"
    ordered = bool(query.get("order_by"))
    if dialect == "duckdb":
        shop.assert_rows(shop.rows(cq.sql), expected, ordered=ordered)
    back = sqlglot.transpile(cq.sql, read=dialect, write="duckdb")[0]
    shop.assert_rows(shop.rows(back), expected, ordered=ordered)


def test_same_columns_in_every_dialect(shop) -> None:
    for query, _ in QUERIES.values():
        names = {tuple(c.name for c in shop.compile(query, dialect=d).columns) for d in DIALECTS}
        assert len(names) == 1, (query, names)


def _week_truncs(shop, dialect: str) -> list[exp.Expression]:
    cq = shop.compile({"metrics": ["revenue"], "dimensions": ["metric_time:week"]}, dialect=dialect)
    tree = sqlglot.parse_one(cq.sql, read=dialect)
    return list(tree.find_all(exp.DateTrunc, exp.TimestampTrunc))


def test_bigquery_weeks_are_isoweeks(shop) -> None:
    cq = shop.compile({"metrics": ["revenue"], "dimensions": ["metric_time:week"]}, dialect="bigquery")
    assert "ISOWEEK" in cq.sql
    assert "DATE_TRUNC(orders.order_date, ISOWEEK)" in cq.sql  # BigQuery's argument order: date, part
    truncs = _week_truncs(shop, "bigquery")
    assert truncs and {t.text("unit").upper() for t in truncs} == {"ISOWEEK"}


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "bigquery"])
def test_other_dialects_truncate_to_week(shop, dialect: str) -> None:
    truncs = _week_truncs(shop, dialect)
    assert truncs and {t.text("unit").upper() for t in truncs} == {"WEEK"}, dialect


def test_bigquery_month_argument_order(shop) -> None:
    cq = shop.compile({"metrics": ["revenue"], "dimensions": ["metric_time:month"]}, dialect="bigquery")
    assert "DATE_TRUNC(orders.order_date, MONTH)" in cq.sql


def test_unknown_dialect_is_a_lore_error(shop) -> None:
    with pytest.raises(LoreError) as info:
        shop.compile({"metrics": ["revenue"]}, dialect="no_such_dialect")
    assert "no_such_dialect" in str(info.value)


def test_date_literal_on_the_left_is_cast(shop) -> None:
    cq = shop.compile({"metrics": ["revenue"], "filters": ["'2026-02-01' <= metric_time"]}, dialect="trino")
    tree = sqlglot.parse_one(cq.sql, read="trino")
    where = tree.find(exp.CTE).this.args["where"].this
    assert isinstance(where.this, exp.Cast), where.sql("trino")
