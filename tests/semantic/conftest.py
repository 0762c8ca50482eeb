"""Fixtures for the semantic-layer tests: the tiny shop layer, its DuckDB warehouse and helpers.

The shop fixture (``fixture/shop.yaml`` + ``fixture/shop.sql``) is small enough that every
expected number in ``cases.yaml`` is worked out by hand from ``shop.sql``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from lore.semantic.compile import compile_query
from lore.semantic.load import load_layer
from lore.semantic.spec import SemanticLayer
from lore.types import Compare, CompiledQuery, Filter, OrderBy, PerEntity, SemanticQuery, Share, Threshold, to_scalar

FIXTURE_DIR = Path(__file__).parent / "fixture"
SHOP_YAML = FIXTURE_DIR / "shop.yaml"
SHOP_SQL = FIXTURE_DIR / "shop.sql"


def query_from_data(data: Mapping[str, Any]) -> SemanticQuery:
    """Build a :class:`SemanticQuery` from plain data (as written in ``cases.yaml``).

    Filters are strings or ``{ref, op, values}`` mappings; ``order_by`` items are
    ``{ref, descending}`` mappings or plain reference strings; ``share`` is ``{metric, within, keep}``;
    ``compare`` is ``{periods: [{start, end, label}, {start, end, label}]}``; ``per`` is ``{entity, grain}``.
    """
    filters: list[Filter | str] = []
    for f in data.get("filters") or ():
        filters.append(f if isinstance(f, str) else Filter(ref=f["ref"], op=f.get("op", "="), values=tuple(f.get("values") or ())))
    order = [OrderBy(ref=o) if isinstance(o, str) else OrderBy(**o) for o in data.get("order_by") or ()]
    share, compare = data.get("share"), data.get("compare")
    return SemanticQuery(
        metrics=tuple(data.get("metrics") or ()),
        dimensions=tuple(data.get("dimensions") or ()),
        filters=tuple(filters),
        order_by=tuple(order),
        limit=data.get("limit"),
        share=Share.model_validate(share) if share is not None else None,
        rank_within=tuple(data.get("rank_within") or ()),
        compare=Compare.model_validate(compare) if compare is not None else None,
        per=PerEntity.model_validate(data["per"]) if data.get("per") is not None else None,
        running_total=bool(data.get("running_total")),
        threshold=Threshold.model_validate(data["threshold"]) if data.get("threshold") is not None else None,
    )


def canonical_sql(sql: str, dialect: str = "duckdb") -> str:
    """SQL text normalised through sqlglot: whitespace, keyword case, identifier case and comments do not matter.

    >>> canonical_sql("select  A from T -- c") == canonical_sql("SELECT a\\nFROM t")
    True
    """
    tree = sqlglot.parse_one(sql, read=dialect)
    return tree.sql(dialect=dialect, normalize=True, pretty=True, comments=False)


def _sort_key(row: Sequence[Any]) -> tuple[tuple[int, str], ...]:
    out = []
    for v in row:
        if v is None:
            out.append((1, ""))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((0, f"{float(v):020.6f}"))
        else:
            out.append((0, str(v)))
    return tuple(out)


def assert_rows(actual: Sequence[Sequence[Any]], expected: Sequence[Sequence[Any]], *, ordered: bool) -> None:
    """Compare result rows with expected rows; floats approximately; order only when ``ordered``."""
    act = [list(r) for r in actual]
    want = [list(r) for r in expected]
    if not ordered:
        act, want = sorted(act, key=_sort_key), sorted(want, key=_sort_key)
    approx = [[pytest.approx(v, rel=1e-9, abs=1e-12) if isinstance(v, float) else v for v in r] for r in want]
    assert act == approx, f"rows differ:\n  actual:   {act}\n  expected: {want}"


@dataclass(frozen=True)
class Shop:
    """The loaded shop layer plus a DuckDB connection holding the fixture data."""

    layer: SemanticLayer
    con: duckdb.DuckDBPyConnection

    # helpers, reachable from tests through the fixture (test modules do not import conftest)
    query = staticmethod(query_from_data)
    canonical_sql = staticmethod(canonical_sql)
    assert_rows = staticmethod(assert_rows)

    def compile(self, query: SemanticQuery | Mapping[str, Any], dialect: str = "duckdb") -> CompiledQuery:
        q = query if isinstance(query, SemanticQuery) else query_from_data(query)
        return compile_query(self.layer, q, dialect=dialect)

    @staticmethod
    def tree(cq: CompiledQuery) -> exp.Expression:
        """The compiled SQL re-parsed in its own dialect."""
        return sqlglot.parse_one(cq.sql, read=cq.dialect)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run SQL on the fixture; values as JSON scalars (dates as ISO strings)."""
        return [tuple(to_scalar(v) for v in row) for row in self.con.execute(sql).fetchall()]

    def columns(self, sql: str) -> list[str]:
        return [d[0] for d in self.con.execute(sql).description]

    def schema(self) -> dict[str, dict[str, str]]:
        """Table -> column -> type, read from the fixture warehouse's information_schema."""
        out: dict[str, dict[str, str]] = {}
        for table, column, dtype in self.con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns ORDER BY table_name, ordinal_position"
        ).fetchall():
            out.setdefault(table, {})[column] = dtype
        return out


@pytest.fixture(scope="session")
def shop() -> Iterator[Shop]:
    con = duckdb.connect()
    con.execute(SHOP_SQL.read_text(encoding="utf-8"))
    yield Shop(layer=load_layer(SHOP_YAML), con=con)
    con.close()

