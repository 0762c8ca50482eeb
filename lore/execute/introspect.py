"""Reading a warehouse's catalog and the shape of its values, for `lore init`.

Every query here is LORE's own, built with sqlglot (identifiers quoted), and runs on the hardened
read-only :class:`~lore.execute.engine.Engine` under its time limit. What to ask and what the answers
mean is decided in :mod:`lore.onboard.draft`; this module only asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from lore.execute.base import WarehouseEngine as Engine
from lore.execute.base import common_type
from lore.tables import MAIN_SCHEMA, table_expr, table_name

#: catalog rows are few, but a warehouse may have thousands of columns
_CATALOG_ROWS = 1_000_000
#: tables above this many rows get DuckDB's distinct-count estimate instead of an exact count
EXACT_DISTINCT_ROWS = 5_000_000
#: joins a constraint's column names into one text value (names may hold commas, never this)
_SEP = "\x1f"


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class CatalogTable:
    """A table or view as the catalog declares it."""

    schema_name: str
    name: str
    is_view: bool
    comment: str
    columns: tuple[CatalogColumn, ...]
    primary_key: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...]
    #: (column, target table as the layer names it, target column) for single-column foreign keys
    foreign_keys: tuple[tuple[str, str, str], ...]

    @property
    def ref(self) -> str:
        return table_name(self.schema_name, self.name)


@dataclass(frozen=True)
class ColumnStats:
    nulls: int
    distinct: int
    avg_length: float | None
    low: str | None
    high: str | None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _table(ref: str) -> exp.Table:
    return table_expr(ref, quoted=True)


def read_catalog(engine: Engine) -> list[CatalogTable]:
    """The user tables and views of the warehouse's own database (every schema), with comments and constraints."""
    if engine.dialect == "postgres":
        return _assemble(*_postgres_catalog(engine), default_schema=engine.default_schema)
    if engine.dialect == "spark":
        return _spark_catalog(engine)
    own = "database_name = current_database() AND NOT internal AND NOT temporary"
    tables = engine.run(f"SELECT schema_name, table_name, comment, false FROM duckdb_tables() WHERE {own} "
                        f"UNION ALL SELECT schema_name, view_name, comment, true FROM duckdb_views() WHERE {own} "
                        "ORDER BY 1, 2", max_rows=_CATALOG_ROWS).rows
    columns = engine.run("SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
                         "WHERE database_name = current_database() AND NOT internal ORDER BY schema_name, table_name, "
                         "column_index", max_rows=_CATALOG_ROWS).rows
    constraints = engine.run("SELECT schema_name, table_name, constraint_type, "
                             f"array_to_string(constraint_column_names, '{_SEP}'), referenced_table, "
                             f"array_to_string(referenced_column_names, '{_SEP}') FROM duckdb_constraints() WHERE database_name = current_database() "
                             "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')",
                             max_rows=_CATALOG_ROWS).rows
    # DuckDB keeps foreign keys within one schema
    constraints = tuple((s, t, kind, names, (s, target) if target else None, target_names)
                        for s, t, kind, names, target, target_names in constraints)
    return _assemble(tables, columns, constraints)


#: the catalog's own schemas, never drafted
_PG_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"


def _postgres_catalog(engine: Engine) -> tuple[tuple, tuple, tuple]:
    """PostgreSQL's tables, views, columns (types as ``format_type`` spells them), comments and constraints that
    LORE's role may read, in the shapes the DuckDB queries return."""
    readable = f"c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_PG_SYSTEM} AND has_table_privilege(c.oid, 'SELECT')"
    tables = engine.run("SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class'), c.relkind IN ('v', 'm') "
                        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        f"WHERE {readable} ORDER BY 1, 2", max_rows=_CATALOG_ROWS).rows
    columns = engine.run("SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
                         "col_description(c.oid, a.attnum) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                         f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attnum > 0 AND NOT a.attisdropped "
                         f"AND {readable} ORDER BY 1, 2, a.attnum", max_rows=_CATALOG_ROWS).rows
    names = ("array_to_string(ARRAY(SELECT x.attname FROM unnest(con.{keys}) WITH ORDINALITY AS k(num, pos) "
             "JOIN pg_attribute x ON x.attrelid = con.{rel} AND x.attnum = k.num ORDER BY k.pos), '" + _SEP + "')")
    constraints = engine.run(
        "SELECT n.nspname, c.relname, CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' "
        "ELSE 'FOREIGN KEY' END, " + names.format(keys="conkey", rel="conrelid") + ", tn.nspname, tc.relname, "
        + names.format(keys="confkey", rel="confrelid") + " FROM pg_constraint con "
        "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_class tc ON tc.oid = con.confrelid LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace "
        f"WHERE con.contype IN ('p', 'u', 'f') AND {readable}", max_rows=_CATALOG_ROWS).rows
    constraints = tuple((s, t, kind, key, (ts, target) if target else None, target_key)
                        for s, t, kind, key, ts, target, target_key in constraints)
    columns = tuple((s, t, name, common_type(str(kind)), comment) for s, t, name, kind, comment in columns)
    return tables, columns, constraints


def _spark_catalog(engine: Engine) -> list[CatalogTable]:
    """Spark's tables as the engine read them when it opened (a folder's Parquet tables, or the catalog's current
    database and the databases lore.yaml names): names and types only, since Parquet files declare no keys and carry no comments; the draft finds
    keys and links from the values."""
    schema = engine.schema()

    def parts(ref: str) -> tuple[str, str]:  # a table of another database is named database.table
        database, _, name = ref.rpartition(".")
        return database or MAIN_SCHEMA, name

    tables = [(*parts(ref), None, False) for ref in sorted(schema)]
    columns = [(*parts(ref), column, kind, None) for ref in sorted(schema) for column, kind in schema[ref].items()]
    return _assemble(tables, columns, ())


def _assemble(tables: Sequence[Sequence[Any]], columns: Sequence[Sequence[Any]], constraints: Sequence[Sequence[Any]],
              *, default_schema: str = MAIN_SCHEMA) -> list[CatalogTable]:
    """Catalog rows -> :class:`CatalogTable`; a foreign key's target is ``(schema, table)``. The engine's
    ``default_schema`` is the one whose tables the layer names bare."""

    def own(schema: object) -> str:
        return MAIN_SCHEMA if str(schema) == default_schema else str(schema)

    tables = [(own(s), t, comment, view) for s, t, comment, view in tables]
    columns = [(own(s), *rest) for s, *rest in columns]
    constraints = [(own(s), t, kind, names, None if target is None else (own(target[0]), target[1]), target_names)
                   for s, t, kind, names, target, target_names in constraints]
    cols: dict[tuple[str, str], list[CatalogColumn]] = {}
    for schema, table, name, kind, comment in columns:
        cols.setdefault((str(schema), str(table)), []).append(CatalogColumn(str(name), str(kind), _text(comment)))
    keys: dict[tuple[str, str], tuple[str, ...]] = {}
    uniques: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    fks: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for schema, table, kind, names, target, target_names in constraints:
        at = (str(schema), str(table))
        names = tuple(n for n in _text(names).split(_SEP) if n)
        target_names = tuple(n for n in _text(target_names).split(_SEP) if n)
        if kind == "PRIMARY KEY":
            keys[at] = names
        elif kind == "UNIQUE":
            uniques.setdefault(at, []).append(names)
        elif len(names) == 1 and target and target_names and len(target_names) == 1:
            fks.setdefault(at, []).append((names[0], table_name(str(target[0]), str(target[1])), str(target_names[0])))
    return [CatalogTable(schema_name=str(s), name=str(t), is_view=bool(view), comment=_text(comment),
                         columns=tuple(cols.get((str(s), str(t)), ())), primary_key=keys.get((str(s), str(t)), ()),
                         unique=tuple(uniques.get((str(s), str(t)), ())), foreign_keys=tuple(fks.get((str(s), str(t)), ())))
            for s, t, comment, view in tables]


def row_count(engine: Engine, ref: str) -> int:
    sql = exp.select(exp.Count(this=exp.Star())).from_(_table(ref)).sql(dialect=engine.dialect)
    return int(engine.run(sql, max_rows=1).rows[0][0] or 0)


def column_stats(engine: Engine, ref: str, columns: list[tuple[str, str]], rows: int) -> list[ColumnStats]:
    """For each ``(column, family)``: NULLs, distinct values, mean text length and range; one scan of the table."""
    as_text = exp.DataType.build("VARCHAR")
    parts: list[exp.Expression] = []
    for column, family in columns:
        col = exp.column(column, quoted=True)
        parts.append(exp.Sum(this=exp.Case().when(col.copy().is_(exp.null()), exp.Literal.number(1))
                             .else_(exp.Literal.number(0))))
        parts.append(exp.func("approx_count_distinct", col.copy())
                     if rows > EXACT_DISTINCT_ROWS and engine.dialect == "duckdb"
                     else exp.Count(this=exp.Distinct(expressions=[col.copy()])))
        parts.append(exp.Avg(this=exp.Length(this=col.copy())) if family == "text" else exp.null())
        ranged = family in ("integer", "decimal", "time")
        parts.append(exp.cast(exp.Min(this=col.copy()), as_text) if ranged else exp.null())
        parts.append(exp.cast(exp.Max(this=col.copy()), as_text) if ranged else exp.null())
    row = engine.run(exp.select(*parts).from_(_table(ref)).sql(dialect=engine.dialect), max_rows=1).rows[0]
    out = []
    for i in range(len(columns)):
        nulls, distinct, length, low, high = row[5 * i: 5 * i + 5]
        out.append(ColumnStats(nulls=int(nulls or 0), distinct=int(distinct or 0),
                               avg_length=float(length) if length is not None else None,
                               low=None if low is None else str(low), high=None if high is None else str(high)))
    return out


def top_values(engine: Engine, ref: str, column: str, limit: int) -> list[str]:
    """The most frequent non-NULL values of a column as text, most frequent first (ties by value)."""
    col = exp.column(column, quoted=True)
    value = exp.cast(col.copy(), exp.DataType.build("VARCHAR"))
    sql = (exp.select(exp.alias_(value, "value", quoted=True), exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True))
           .from_(_table(ref)).where(exp.not_(col.copy().is_(exp.null()))).group_by(exp.Literal.number(1))
           .order_by(exp.column("n", quoted=True).desc(), exp.column("value", quoted=True)).limit(limit))
    return [str(r[0]) for r in engine.run(sql.sql(dialect=engine.dialect), max_rows=limit).rows]


def is_unique(engine: Engine, ref: str, columns: tuple[str, ...]) -> bool:
    """Whether ``columns`` identify the table's rows: no NULLs and no repeated combination."""
    cols = [exp.column(c, quoted=True) for c in columns]
    key = exp.Tuple(expressions=[c.copy() for c in cols]) if len(cols) > 1 else cols[0].copy()
    not_null = exp.and_(*[exp.not_(c.copy().is_(exp.null())) for c in cols])
    sql = exp.select(exp.Count(this=exp.Star()), exp.Count(this=exp.Distinct(expressions=[key]))) \
        .from_(_table(ref)).where(not_null)
    total = exp.select(exp.Count(this=exp.Star())).from_(_table(ref))
    kept, distinct = engine.run(sql.sql(dialect=engine.dialect), max_rows=1).rows[0]
    rows = engine.run(total.sql(dialect=engine.dialect), max_rows=1).rows[0][0]
    return int(rows or 0) > 0 and kept == rows and distinct == rows


def missing_from(engine: Engine, ref: str, column: str, target: str, target_column: str) -> tuple[int, int]:
    """(distinct values of ``ref.column``, how many of them ``target.target_column`` does not have).

    A left join of the two sets of distinct values, which every engine runs as a hash join (PostgreSQL runs
    ``NOT IN (subquery)`` row by row once the subquery outgrows its memory).
    """
    src = exp.select(exp.alias_(exp.column(column, quoted=True), "v", quoted=True)).distinct().from_(_table(ref)) \
        .where(exp.not_(exp.column(column, quoted=True).is_(exp.null())))
    tgt = exp.select(exp.alias_(exp.column(target_column, quoted=True), "k", quoted=True)).distinct() \
        .from_(_table(target))
    found, there = exp.column("v", table="s", quoted=True), exp.column("k", table="t", quoted=True)
    sql = (exp.select(exp.Count(this=exp.Star()),
                      exp.Sum(this=exp.Case().when(there.copy().is_(exp.null()), exp.Literal.number(1))
                              .else_(exp.Literal.number(0))))
           .from_(exp.alias_(exp.Subquery(this=src), "s", quoted=True))
           .join(exp.alias_(exp.Subquery(this=tgt), "t", quoted=True), on=exp.EQ(this=found, expression=there),
                 join_type="left"))
    row = engine.run(sql.sql(dialect=engine.dialect), max_rows=1).rows[0]
    return int(row[0] or 0), int(row[1] or 0)
