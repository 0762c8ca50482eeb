"""Derived metrics that add or subtract: a part with no rows counts as 0, so the whole is never NULL.

Paid 100 and 50, recovered 30: net paid is 120; with no recoveries at all it is 150 (SUM over no rows is NULL,
and 150 - NULL would be NULL). Worked out by hand from the rows below.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from lore.semantic.compile import Compiler
from lore.semantic.load import load_layer
from lore.types import SemanticQuery

LAYER = {
    "sources": [
        {"name": "payments", "table": "payments", "primary_key": ["id"],
         "columns": [{"name": "region", "kind": "categorical"}]},
        {"name": "recoveries", "table": "recoveries", "primary_key": ["id"],
         "columns": [{"name": "region", "kind": "categorical"}]},
    ],
    "metrics": [
        {"name": "paid", "source": "payments", "agg": "sum", "expr": "amount"},
        {"name": "recovered", "source": "recoveries", "agg": "sum", "expr": "amount"},
        {"name": "net_paid", "expr": "paid - recovered"},
    ],
}


def test_a_part_with_no_rows_in_a_group_counts_as_zero(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE payments (id INTEGER, region VARCHAR, amount INTEGER)")
    con.execute("INSERT INTO payments VALUES (1, 'north', 100), (2, 'south', 50)")
    con.execute("CREATE TABLE recoveries (id INTEGER, region VARCHAR, amount INTEGER)")
    con.execute("INSERT INTO recoveries VALUES (1, 'north', 30)")
    (tmp_path / "layer.yaml").write_text(yaml.safe_dump(LAYER))
    schema = {t: {c: str(ty) for c, ty in con.execute(
        f"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{t}'").fetchall()}
        for t in ("payments", "recoveries")}
    compiler = Compiler(load_layer(tmp_path / "layer.yaml"), schema=schema)
    total = compiler.compile(SemanticQuery(metrics=("net_paid",)), dialect="duckdb")
    assert con.execute(total.sql).fetchall() == [(120,)], total.sql
    # no recoveries at all in a period: net paid is what was paid
    con.execute("DELETE FROM recoveries")
    assert con.execute(total.sql).fetchall() == [(150,)], total.sql
