"""A layer over tables in several schemas of the warehouse (``table: raw.orders``), end to end.

The warehouse has its facts in ``raw``, a dimension in ``analytics``, another in ``main`` and, as a trap,
an ``orders`` table in ``main`` too, with other rows: SQL that names a bare ``orders`` reads the wrong
table and gets the wrong numbers. Expected numbers come from SQL written by hand here, run on a plain
DuckDB connection to a copy of the warehouse.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from lore import Lore
from lore.cli import app
from lore.semantic.compile import DIALECTS
from lore.semantic.load import parse_documents
from lore.semantic.validate import validate
from lore.types import to_scalar

WAREHOUSE_SQL = """
CREATE TABLE orders (order_id INTEGER, customer_id INTEGER, order_date DATE, amount DOUBLE, status VARCHAR);
INSERT INTO orders VALUES (1, 1, DATE '2026-01-02', 5000.0, 'main-only');
CREATE TABLE countries (country_code VARCHAR, region VARCHAR);
INSERT INTO countries VALUES ('US', 'NA'), ('FR', 'EU'), ('DE', 'EU');
CREATE SCHEMA raw;
CREATE TABLE raw.orders (order_id INTEGER, customer_id INTEGER, order_date DATE, amount DOUBLE, status VARCHAR,
                         channel_id INTEGER);
INSERT INTO raw.orders VALUES
    (1, 1, DATE '2026-01-05', 100.0, 'paid', 1), (2, 2, DATE '2026-01-20', 50.0, 'paid', 2),
    (3, 1, DATE '2026-02-03', 30.0, 'refunded', 2), (4, 3, DATE '2026-02-10', 20.0, 'paid', 1),
    (5, 4, DATE '2026-03-01', 10.0, 'paid', NULL);
CREATE SCHEMA analytics;
CREATE TABLE analytics.customers (customer_id INTEGER, segment VARCHAR, country_code VARCHAR);
INSERT INTO analytics.customers VALUES (1, 'retail', 'US'), (2, 'business', 'FR'), (3, 'retail', 'DE'),
    (4, 'retail', NULL);
CREATE SCHEMA "Sales Data";
CREATE TABLE "Sales Data".channels (channel_id INTEGER, channel_name VARCHAR);
INSERT INTO "Sales Data".channels VALUES (1, 'web'), (2, 'store');
"""

LAYER = """
sources:
  - name: orders
    table: raw.orders
    primary_key: [order_id]
    time_column: order_date
    columns:
      - {name: order_date, kind: time}
      - {name: status}
    links:
      - {to: customers, on: orders.customer_id = customers.customer_id}
      - {to: channels, on: orders.channel_id = channels.channel_id}
      - {to: first_orders, on: orders.customer_id = first_orders.customer_id}
dimensions:
  - name: customers
    table: analytics.customers
    primary_key: [customer_id]
    columns:
      - {name: segment}
    links:
      - {to: countries, on: customers.country_code = countries.country_code}
  - name: countries
    table: main.countries
    primary_key: [country_code]
    columns:
      - {name: region}
  - name: channels
    table: Sales Data.channels
    primary_key: [channel_id]
    columns:
      - {name: channel_name}
  - name: first_orders
    sql: SELECT customer_id, MIN(order_date) AS first_order_date FROM raw.orders GROUP BY customer_id
    primary_key: [customer_id]
    columns:
      - {name: first_order_date, kind: time, type: DATE}
metrics:
  - {name: revenue, source: orders, agg: sum, expr: amount, description: Order amounts.}
  - {name: order_count, source: orders, agg: count, description: Orders.}
"""

#: revenue by segment and region, joined across raw, analytics and main by hand
BY_SEGMENT_REGION = """
SELECT c.segment, k.region, SUM(o.amount) AS revenue, COUNT(*) AS order_count
FROM raw.orders AS o LEFT JOIN analytics.customers AS c ON o.customer_id = c.customer_id
LEFT JOIN main.countries AS k ON c.country_code = k.country_code
GROUP BY 1, 2
"""


def _layer(text: str = LAYER):
    layer, issues = parse_documents([("layer.yaml", dedent(text).lstrip("\n"))])
    assert issues == [], [i.render() for i in issues]
    return layer


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("schemas") / "shop"
    (root / "semantic").mkdir(parents=True)
    (root / "semantic" / "shop.yaml").write_text(LAYER.lstrip("\n"), encoding="utf-8")
    (root / "lore.yaml").write_text("name: shop\nwarehouse: warehouse.duckdb\nsemantic_layer: semantic\n",
                                    encoding="utf-8")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute(WAREHOUSE_SQL)
    con.close()
    return root


@pytest.fixture(scope="module")
def lore(project: Path) -> Iterator[Lore]:
    with Lore.open(project, feedback=False) as opened:
        yield opened


@pytest.fixture(scope="module")
def raw_db(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A plain connection to a copy of the warehouse, for the hand-written SQL."""
    copy = tmp_path_factory.mktemp("schemas_raw") / "warehouse.duckdb"
    shutil.copyfile(project / "warehouse.duckdb", copy)
    con = duckdb.connect(str(copy), read_only=True)
    yield con
    con.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(to_scalar(v) for v in row) for row in con.execute(sql).fetchall()), key=repr)


def test_a_layer_over_several_schemas_validates(lore: Lore) -> None:
    assert validate(_layer(), lore.engine.schema()) == []
    assert lore.layer.nodes["countries"].table == "countries"  # main.countries is the table countries
    assert sorted(lore.schema) == ["Sales Data.channels", "analytics.customers", "countries", "raw.orders"]


@pytest.mark.parametrize(("table", "suggested"), [
    ("stage.orders", "raw.orders"),  # no such schema
    ("raw.ordres", "raw.orders"),  # no such table in the schema
    ("analytics.orders", "raw.orders"),  # the table is in another schema
    ("warehouse.raw.orders", "raw.orders"),  # a catalog qualifier names no table of the catalog
])
def test_an_unknown_schema_or_table_is_an_unknown_table(lore: Lore, table: str, suggested: str) -> None:
    issues = validate(_layer(LAYER.replace("table: raw.orders", f"table: {table}")), lore.engine.schema())
    issues = [i for i in issues if i.code != "sql_table"]  # first_orders' sql reads raw.orders, now no node's table
    assert [(i.code, i.line) for i in issues] == [("unknown_table", 2)], [i.render() for i in issues]
    assert f"table '{table}' is not in the warehouse" in issues[0].message
    assert suggested in (issues[0].hint or "")


def test_lore_semantic_validate_checks_schema_tables(project: Path, tmp_path: Path) -> None:
    good = CliRunner().invoke(app, ["semantic", "validate", "--project", str(project)])
    assert good.exit_code == 0, good.output
    broken = tmp_path / "broken"
    shutil.copytree(project, broken, ignore=shutil.ignore_patterns(".lore"))
    layer = broken / "semantic" / "shop.yaml"
    layer.write_text(layer.read_text(encoding="utf-8").replace("analytics.customers", "analytic.customers"),
                     encoding="utf-8")
    bad = CliRunner().invoke(app, ["semantic", "validate", "--project", str(broken)])
    assert bad.exit_code == 1, bad.output
    assert "unknown_table" in bad.output and "analytics.customers" in bad.output


def test_a_metric_by_dimensions_across_schemas_matches_hand_written_sql(lore: Lore, raw_db) -> None:
    result = lore.semantic.data(["revenue", "order_count"], ["customers.segment", "countries.region"])
    assert sorted(result.rows, key=repr) == _rows(raw_db, BY_SEGMENT_REGION)
    # 5,000 is main.orders' only amount: reading the bare name would show it
    assert sum(row[2] for row in result.rows) == 210.0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_compiled_sql_names_each_schema_in_every_dialect(lore: Lore, raw_db, dialect: str) -> None:
    compiled = lore.semantic.compile(["revenue", "order_count"], ["customers.segment", "countries.region",
                                                                  "channels.channel_name"], dialect=dialect)
    tree = sqlglot.parse_one(compiled.sql, read=dialect)
    tables = {(t.db, t.name) for t in tree.find_all(exp.Table) if t.name.lower() not in
              {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}}
    assert {(db.lower(), name.lower()) for db, name in tables} == {
        ("raw", "orders"), ("analytics", "customers"), ("", "countries"), ("sales data", "channels")}
    back = sqlglot.transpile(compiled.sql, read=dialect, write="duckdb")[0]
    hand = """
        SELECT c.segment, k.region, ch.channel_name, SUM(o.amount), COUNT(*)
        FROM raw.orders AS o LEFT JOIN analytics.customers AS c ON o.customer_id = c.customer_id
        LEFT JOIN main.countries AS k ON c.country_code = k.country_code
        LEFT JOIN "Sales Data".channels AS ch ON o.channel_id = ch.channel_id
        GROUP BY 1, 2, 3"""
    assert _rows(raw_db, back) == _rows(raw_db, hand)


def test_a_sql_node_reads_a_qualified_table(lore: Lore, raw_db) -> None:
    result = lore.semantic.data(["revenue"], ["first_orders.first_order_date:month"])
    hand = """
        SELECT CAST(DATE_TRUNC('month', f.first_order_date) AS DATE) AS m, SUM(o.amount)
        FROM raw.orders AS o
        LEFT JOIN (SELECT customer_id, MIN(order_date) AS first_order_date FROM raw.orders GROUP BY 1) AS f
          ON o.customer_id = f.customer_id
        GROUP BY 1"""
    assert sorted(result.rows, key=repr) == _rows(raw_db, hand)


def test_a_sql_node_may_read_only_tables_of_the_layer_in_their_schemas() -> None:
    ok = _layer(LAYER.replace("FROM raw.orders GROUP BY", "FROM RAW.Orders JOIN main.countries ON TRUE GROUP BY"))
    assert [i.code for i in validate(ok)] == []
    for other in ("orders", "main.orders", "other.orders", "warehouse.raw.orders"):
        bad = _layer(LAYER.replace("FROM raw.orders GROUP BY", f"FROM {other} GROUP BY"))
        assert [i.code for i in validate(bad)] == ["sql_table"], other
