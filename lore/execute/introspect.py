"""Reading a warehouse's catalog and the shape of its values, for `lore init`.

Every query here is LORE's own, built with sqlglot (identifiers quoted), and runs on the hardened
read-only :class:`~lore.execute.engine.Engine` under its time limit. What to ask and what the answers
mean is decided in :mod:`lore.onboard.draft`; this module only asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from lore.execute.engine import Engine
from lore.tables import table_expr, table_name

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
            # DuckDB keeps foreign keys within one schema
            fks.setdefault(at, []).append((names[0], table_name(at[0], str(target)), str(target_names[0])))
    return [CatalogTable(schema_name=str(s), name=str(t), is_view=bool(view), comment=_text(comment),
                         columns=tuple(cols.get((str(s), str(t)), ())), primary_key=keys.get((str(s), str(t)), ()),
                         unique=tuple(uniques.get((str(s), str(t)), ())), foreign_keys=tuple(fks.get((str(s), str(t)), ())))
            for s, t, comment, view in tables]


def row_count(engine: Engine, ref: str) -> int:
    sql = exp.select(exp.Count(this=exp.Star())).from_(_table(ref)).sql(dialect="duckdb")
    return int(engine.run(sql, max_rows=1).rows[0][0] or 0)


def column_stats(engine: Engine, ref: str, columns: list[tuple[str, str]], rows: int) -> list[ColumnStats]:
    """For each ``(column, family)``: NULLs, distinct values, mean text length and range; one scan of the table."""
    as_text = exp.DataType.build("VARCHAR")
    parts: list[exp.Expression] = []
    for column, family in columns:
        col = exp.column(column, quoted=True)
        parts.append(exp.Sum(this=exp.Case().when(col.copy().is_(exp.null()), exp.Literal.number(1))
                             .else_(exp.Literal.number(0))))
        parts.append(exp.func("approx_count_distinct", col.copy()) if rows > EXACT_DISTINCT_ROWS
                     else exp.Count(this=exp.Distinct(expressions=[col.copy()])))
        parts.append(exp.Avg(this=exp.Length(this=col.copy())) if family == "text" else exp.null())
        ranged = family in ("integer", "decimal", "time")
        parts.append(exp.cast(exp.Min(this=col.copy()), as_text) if ranged else exp.null())
        parts.append(exp.cast(exp.Max(this=col.copy()), as_text) if ranged else exp.null())
    row = engine.run(exp.select(*parts).from_(_table(ref)).sql(dialect="duckdb"), max_rows=1).rows[0]
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
    return [str(r[0]) for r in engine.run(sql.sql(dialect="duckdb"), max_rows=limit).rows]


def is_unique(engine: Engine, ref: str, columns: tuple[str, ...]) -> bool:
    """Whether ``columns`` identify the table's rows: no NULLs and no repeated combination."""
    cols = [exp.column(c, quoted=True) for c in columns]
    key = exp.Tuple(expressions=[c.copy() for c in cols]) if len(cols) > 1 else cols[0].copy()
    not_null = exp.and_(*[exp.not_(c.copy().is_(exp.null())) for c in cols])
    sql = exp.select(exp.Count(this=exp.Star()), exp.Count(this=exp.Distinct(expressions=[key]))) \
        .from_(_table(ref)).where(not_null)
    total = exp.select(exp.Count(this=exp.Star())).from_(_table(ref))
    kept, distinct = engine.run(sql.sql(dialect="duckdb"), max_rows=1).rows[0]
    rows = engine.run(total.sql(dialect="duckdb"), max_rows=1).rows[0][0]
    return int(rows or 0) > 0 and kept == rows and distinct == rows


def missing_from(engine: Engine, ref: str, column: str, target: str, target_column: str) -> tuple[int, int]:
    """(distinct values of ``ref.column``, how many of them ``target.target_column`` does not have)."""
    src = exp.select(exp.alias_(exp.column(column, quoted=True), "v", quoted=True)).distinct().from_(_table(ref)) \
        .where(exp.not_(exp.column(column, quoted=True).is_(exp.null())))
    tgt = exp.select(exp.column(target_column, quoted=True)).from_(_table(target))
    found = exp.column("v", table="s", quoted=True)
    sql = (exp.select(exp.Count(this=exp.Star()),
                      exp.Sum(this=exp.Case().when(exp.not_(exp.In(this=found.copy(), query=tgt.subquery())), exp.Literal.number(1))
                              .else_(exp.Literal.number(0))))
           .from_(exp.alias_(exp.Subquery(this=src), "s", quoted=True)))
    row = engine.run(sql.sql(dialect="duckdb"), max_rows=1).rows[0]
    return int(row[0] or 0), int(row[1] or 0)
