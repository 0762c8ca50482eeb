"""What `lore init` learned about a warehouse: tables, columns, keys and links, each with its evidence.

A :class:`WarehouseProfile` is built by :func:`lore.onboard.draft.survey` from the catalog and from queries
(:mod:`lore.execute.introspect` runs them) and turned into a semantic layer by :func:`lore.onboard.draft.draft_layer`,
a pure function, so the drafting rules are tested on profiles written by hand as well as on real warehouses.
"""

from __future__ import annotations

from typing import Literal

from lore.tables import table_name
from lore.types import Frozen

#: what a column's SQL type is, for the drafting rules
Family = Literal["text", "integer", "decimal", "time", "boolean", "other"]

#: how a key or a link was found: declared in the warehouse, or inferred from names and values
Evidence = Literal["declared", "names_and_values", "values"]


def type_family(sql_type: str) -> Family:
    """The family of a DuckDB type name.

    >>> [type_family(t) for t in ("VARCHAR", "BIGINT", "DECIMAL(12,2)", "TIMESTAMP WITH TIME ZONE", "BOOLEAN", "BLOB")]
    ['text', 'integer', 'decimal', 'time', 'boolean', 'other']
    """
    t = sql_type.upper()
    if t.startswith(("VARCHAR", "TEXT", "STRING", "CHAR", "UUID", "ENUM")):
        return "text"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
             "UHUGEINT", "INT", "INT4", "INT8"):
        return "integer"
    if t.startswith(("DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL")):
        return "decimal"
    if t.startswith(("DATE", "TIMESTAMP")):
        return "time"
    if t.startswith("BOOL"):
        return "boolean"
    return "other"


class ColumnProfile(Frozen):
    """One column: its type and, from queries, how its values look."""

    name: str
    type: str
    comment: str = ""
    nulls: int = 0
    #: distinct non-NULL values (exact, or DuckDB's estimate on very large tables)
    distinct: int = 0
    #: the most frequent values, most frequent first (only for columns with few distinct values)
    samples: tuple[str, ...] = ()
    #: mean length of the text values (text columns)
    avg_length: float | None = None
    #: the smallest and largest value as text (time and number columns)
    low: str | None = None
    high: str | None = None

    @property
    def family(self) -> Family:
        return type_family(self.type)


class Key(Frozen):
    """A table's primary key and how it was found."""

    columns: tuple[str, ...]
    evidence: Evidence


class ForeignKey(Frozen):
    """A link from a table's column to another table's single-column key."""

    column: str
    target: str
    target_column: str
    evidence: Evidence
    #: distinct values of the column, and how many of them the target does not have
    distinct: int = 0
    missing: int = 0


class TableProfile(Frozen):
    """One table (or view) of the warehouse."""

    schema_name: str = "main"
    name: str
    rows: int = 0
    comment: str = ""
    is_view: bool = False
    columns: tuple[ColumnProfile, ...] = ()
    key: Key | None = None
    links: tuple[ForeignKey, ...] = ()

    @property
    def ref(self) -> str:
        """How the layer names the table: bare in ``main``, ``schema.table`` elsewhere."""
        return table_name(self.schema_name, self.name)

    def column(self, name: str) -> ColumnProfile | None:
        return next((c for c in self.columns if c.name == name), None)


class WarehouseProfile(Frozen):
    """Every table found, with keys and links."""

    tables: tuple[TableProfile, ...] = ()
    #: tables skipped, with the reason ("empty", "no columns")
    skipped: tuple[tuple[str, str], ...] = ()

    def table(self, ref: str) -> TableProfile | None:
        return next((t for t in self.tables if t.ref == ref), None)
