"""Time columns that hold timestamps: a day in a filter is the whole day, in every form of filter.

A fact whose time column is a TIMESTAMP (orders placed at a time of day) must not lose the last day of a
range: ``BETWEEN '2026-07-01' AND '2026-07-31'`` must keep the orders of July 31 afternoon. The expected
counts are worked out by hand from the rows below.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from lore.semantic.compile import Compiler
from lore.semantic.load import load_layer
from lore.types import Filter, SemanticQuery

#: (id, placed at, amount): July 31 has two orders, one late in the day; August 1 one
ROWS = [(1, "2026-07-01 00:00:00", 10), (2, "2026-07-15 12:30:00", 20), (3, "2026-07-31 09:00:00", 30),
        (4, "2026-07-31 23:59:59", 40), (5, "2026-08-01 00:00:01", 50), (6, "2026-06-30 23:59:59", 60)]
LAYER = {
    "sources": [{"name": "orders", "table": "orders", "primary_key": ["id"], "time_column": "placed_at",
                 "columns": [{"name": "placed_at", "kind": "time"}]}],
    "metrics": [{"name": "order_count", "source": "orders", "agg": "count", "expr": "*"},
                {"name": "revenue", "source": "orders", "agg": "sum", "expr": "amount"}],
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Compiler, duckdb.DuckDBPyConnection]:
    root = tmp_path_factory.mktemp("ts")
    con = duckdb.connect(str(root / "w.duckdb"))
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, placed_at TIMESTAMP, amount INTEGER)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?)", ROWS)
    (root / "layer.yaml").write_text(yaml.safe_dump(LAYER))
    schema = {"orders": {name: str(type_) for name, type_ in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'").fetchall()}}
    return Compiler(load_layer(root / "layer.yaml"), schema=schema), con


@pytest.mark.parametrize(("filters", "count"), [
    (["metric_time BETWEEN '2026-07-01' AND '2026-07-31'"], 4),        # orders 1-4
    ([Filter(ref="metric_time", op="between", values=("2026-07-01", "2026-07-31"))], 4),
    (["orders.placed_at BETWEEN '2026-07-01' AND '2026-07-31'"], 4),
    (["metric_time = '2026-07-31'"], 2),                                # orders 3 and 4
    (["metric_time <= '2026-07-31'"], 5),                               # orders 1-4 and 6
    (["metric_time > '2026-07-31'"], 1),                                # order 5
    (["metric_time >= '2026-07-01'", "metric_time < '2026-08-01'"], 4),
])
def test_a_day_is_the_whole_day(shop: tuple[Compiler, duckdb.DuckDBPyConnection], filters: list, count: int) -> None:
    compiler, con = shop
    compiled = compiler.compile(SemanticQuery(metrics=("order_count",), filters=tuple(filters)), dialect="duckdb")
    assert con.execute(compiled.sql).fetchone()[0] == count, compiled.sql


def test_dates_stay_uncast(tmp_path: Path) -> None:
    """A DATE time column is compared as it is (no cast around the column: indexes and zone maps still work)."""
    layer_file = tmp_path / "layer.yaml"
    layer_file.write_text(yaml.safe_dump(LAYER))
    compiler = Compiler(load_layer(layer_file), schema={"orders": {"id": "INTEGER", "placed_at": "DATE",
                                                                   "amount": "INTEGER"}})
    sql = compiler.compile(SemanticQuery(metrics=("revenue",), filters=("metric_time BETWEEN '2026-07-01' AND "
                                                                        "'2026-07-31'",)), dialect="duckdb").sql
    assert 'CAST("orders"."placed_at" AS DATE)' not in sql and "BETWEEN" in sql
