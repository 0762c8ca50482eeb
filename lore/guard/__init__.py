"""Layer 1 of LORE's SQL safety: an allow-list guard built from small sqlglot passes.

:func:`guard_sql` parses the SQL in the target dialect, keeps exactly one
statement, checks it with each pass of :data:`~lore.guard.passes.PASSES` and
returns :class:`GuardedSQL`: SQL regenerated from the checked tree (comments
stripped), never the text it was given. Anything not allowed raises
:class:`lore.errors.GuardError`, whose ``rule`` names the pass that refused.

>>> schema = {"orders": {"id": "BIGINT", "amount": "DOUBLE"}}
>>> guarded = guard_sql("SELECT SUM(amount) AS total FROM orders -- hi", schema)
>>> guarded.sql
'SELECT SUM("orders"."amount") AS "total" FROM "orders" AS "orders" LIMIT 1000'
>>> guarded.tables, guarded.limit, guarded.limit_added
(('orders',), 1000, True)
>>> guard_sql("SELECT 1; DROP TABLE orders", schema)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
lore.errors.GuardError: Refused by the SQL guard (single_statement): the SQL holds 2 statements...
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sqlglot import exp
from sqlglot.errors import SqlglotError

from lore.errors import GuardError
from lore.guard.passes import (
    PASSES,
    GuardContext,
    Pass,
    parse,
    render,
    requested_limit,
    row_policy,
    single_statement,
)
from lore.tables import table_key
from lore.types import GuardedSQL

__all__ = ["PASSES", "GuardContext", "GuardedSQL", "Schema", "guard_sql"]

#: allowed table (``orders`` in the main schema, ``raw.orders`` in another) -> {column: type}
Schema = Mapping[str, Mapping[str, str]]


def guard_sql(
    sql: str,
    schema: Schema,
    *,
    dialect: str = "duckdb",
    default_limit: int = 1000,
    max_rows: int = 10_000,
    row_filters: Mapping[str, str] | None = None,
) -> GuardedSQL:
    """Check ``sql`` against the allow-lists and the allowed ``schema``; return SQL that is safe to run.

    Raises :class:`lore.errors.GuardError` (with ``sql`` and the refusing ``rule``) on anything not allowed.
    """
    ctx = GuardContext(schema=schema, dialect=dialect, default_limit=default_limit, max_rows=max_rows,
                       row_filters=MappingProxyType({table_key(t): q for t, q in (row_filters or {}).items()}))
    try:
        tree = single_statement(parse(sql, ctx), ctx)
        requested = requested_limit(tree)
        for check in PASSES:
            tree = _apply(check, tree, ctx)
        read = _physical_tables(tree, ctx)
        tree = _apply(row_policy, tree, ctx)  # per-user row filters, last: it wraps checked table references
        rendered = render(tree, ctx)
    except GuardError as err:
        err.sql = sql
        raise
    final = requested_limit(tree)
    if final is None:  # pragma: no cover - the limit pass always leaves a whole-number LIMIT
        raise GuardError("the query has no whole-number LIMIT after the limit pass", sql=sql, rule="limit")
    return GuardedSQL(
        sql=rendered,
        tables=read,
        limit=final,
        limit_added=requested is None,
        limit_clamped=requested is not None and requested > max_rows,
        row_filtered=tuple(t for t in read if table_key(t) in ctx.row_filters),
    )


def _apply(check: Pass, tree: exp.Expression, ctx: GuardContext) -> exp.Expression:
    """Run one pass; any sqlglot failure inside it refuses (fail closed) under the pass's name."""
    try:
        return check(tree, ctx)
    except SqlglotError as err:
        raise GuardError(f"the query could not be checked: {str(err).splitlines()[0]}", rule=check.__name__) from err
    except RecursionError:
        raise GuardError("the query is nested too deeply to check", rule=check.__name__) from None


def _physical_tables(tree: exp.Expression, ctx: GuardContext) -> tuple[str, ...]:
    """The allowed tables a checked tree reads (CTE names never equal them: the tables pass refuses that)."""
    found = {real for t in tree.find_all(exp.Table) if (real := ctx.allowed(t)) is not None}
    return tuple(sorted(found))
