"""Table names as the semantic layer, the engine's catalog and the guard write them.

A table of the warehouse's ``main`` schema goes by its bare name (``orders``); a table of any
other schema of the warehouse's own database by ``schema.table`` (``raw.orders``). The last dot
separates the schema from the table, so a table whose own name holds a dot cannot be named. Names
compare case-insensitively, as DuckDB compares them. These helpers are pure: strings in, strings
or sqlglot trees out.
"""

from __future__ import annotations

from sqlglot import exp

#: DuckDB's default schema: its tables go by their bare names
MAIN_SCHEMA = "main"


def table_name(schema: str | None, table: str) -> str:
    """The name a table goes by: bare in the ``main`` schema, ``schema.table`` in any other.

    >>> table_name("main", "orders"), table_name("MAIN", "orders"), table_name(None, "orders")
    ('orders', 'orders', 'orders')
    >>> table_name("raw", "orders")
    'raw.orders'
    """
    if not schema or schema.lower() == MAIN_SCHEMA:
        return table
    return f"{schema}.{table}"


def split_table(name: str) -> tuple[str, str]:
    """``(schema, table)`` of a table's name; a bare name is in ``main``.

    >>> split_table("orders"), split_table("raw.orders"), split_table("main.orders")
    (('main', 'orders'), ('raw', 'orders'), ('main', 'orders'))
    """
    schema, _, table = name.rpartition(".")
    return (schema or MAIN_SCHEMA, table)


def canonical_table(name: str) -> str:
    """The name as the engine's catalog keys it: ``main.orders`` is ``orders``.

    >>> canonical_table("main.orders"), canonical_table("raw.orders"), canonical_table("orders")
    ('orders', 'raw.orders', 'orders')
    """
    return table_name(*split_table(name))


def table_key(name: str) -> str:
    """The lower-cased canonical name, for matching names case-insensitively.

    >>> table_key("Main.Orders"), table_key("Raw.Orders")
    ('orders', 'raw.orders')
    """
    return canonical_table(name).lower()


def table_expr(name: str, *, quoted: bool | None = None) -> exp.Table:
    """A sqlglot table for a name, schema and table as separate identifiers.

    ``quoted=None`` quotes a part only when it needs it (so plain names render as before in every
    dialect); ``quoted=True`` quotes both, for LORE's own DuckDB queries.

    >>> table_expr("raw.orders").sql("duckdb"), table_expr("orders", quoted=True).sql("duckdb")
    ('raw.orders', '"orders"')
    >>> table_expr("raw data.Order Lines").sql("snowflake")
    '"raw data"."Order Lines"'
    """
    schema, table = split_table(name)
    db = None if schema.lower() == MAIN_SCHEMA else exp.to_identifier(schema, quoted=quoted)
    return exp.Table(this=exp.to_identifier(table, quoted=quoted), db=db)


def reference_parts(table: exp.Table) -> tuple[str, str] | None:
    """Lower-cased ``(schema, table)`` a plain table reference reads; None for anything else.

    A bare name reads ``main``. A catalog qualifier, a table function or an odd qualifier is not a plain
    reference: the guard refuses it.

    >>> import sqlglot
    >>> refs = lambda sql: [reference_parts(t) for t in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Table)]
    >>> refs("SELECT 1 FROM Orders, main.orders, RAW.orders, db.raw.orders")
    [('main', 'orders'), ('main', 'orders'), ('raw', 'orders'), None]
    """
    if table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
        return None
    db = table.args.get("db")
    if db is not None and not isinstance(db, exp.Identifier):
        return None
    return ((db.name if db is not None else MAIN_SCHEMA).lower(), table.name.lower())
