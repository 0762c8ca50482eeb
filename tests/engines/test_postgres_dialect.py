"""The compiler's trap cases (tests/semantic/cases.yaml) rendered in PostgreSQL's dialect, guarded in it and run on
a real PostgreSQL server holding the shop fixture: the same rows as worked out by hand for DuckDB. This is where
typed division, NULL ordering, date truncation and arithmetic, string literals with quotes and identifier quoting
meet the engine, case by case."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
import yaml
from evals.servers.postgres import PgServer

from lore.execute.copy import copy_duckdb_to_postgres
from lore.execute.postgres import PostgresEngine
from lore.guard import guard_sql
from lore.semantic.compile import compile_query
from lore.semantic.load import load_layer
from lore.settings import Settings

SEMANTIC = Path(__file__).resolve().parents[1] / "semantic"
_spec = importlib.util.spec_from_file_location("semantic_shop_helpers", SEMANTIC / "conftest.py")
assert _spec is not None and _spec.loader is not None
shop_helpers = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(shop_helpers)  # the shop's query builder and row comparison, shared with tests/semantic

CASES = [c for c in yaml.safe_load((SEMANTIC / "cases.yaml").read_text(encoding="utf-8"))["cases"]
         if "rows" in c and not c.get("xfail")]


@pytest.fixture(scope="module")
def shop_pg(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresEngine]:
    """The shop fixture (fixture/shop.sql, written for DuckDB) copied into a database of the session's server."""
    folder = tmp_path_factory.mktemp("shop")
    con = duckdb.connect(str(folder / "shop.duckdb"))
    con.execute((SEMANTIC / "fixture" / "shop.sql").read_text(encoding="utf-8"))
    con.close()
    pg_server.create_database("shop")
    copy_duckdb_to_postgres(folder / "shop.duckdb", pg_server.url_for("postgres", pg_server.password, "shop"))
    engine = PostgresEngine.open(pg_server.create_reader("shop"), Settings(query_timeout_s=20))
    yield engine
    engine.close()


LAYER = load_layer(SEMANTIC / "fixture" / "shop.yaml")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_on_postgres(shop_pg: PostgresEngine, case: dict[str, Any]) -> None:
    query = shop_helpers.query_from_data(case["query"])
    compiled = compile_query(LAYER, query, dialect="postgres")
    sqlglot.parse_one(compiled.sql, read="postgres")  # parses back in its own dialect
    guarded = guard_sql(compiled.sql, shop_pg.schema(), dialect="postgres", default_limit=1000, max_rows=1000)
    result = shop_pg.run(guarded.sql)
    if "columns" in case:
        assert list(result.column_names) == case["columns"]
    shop_helpers.assert_rows(result.rows, case["rows"], ordered=bool(query.order_by))
