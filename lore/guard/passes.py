"""The guard's passes, in the style of sqlglot's optimizer: small functions run in order.

:func:`parse` turns text into statements and :func:`single_statement` keeps
the one statement; every pass in :data:`PASSES` then takes that sqlglot tree
and the :class:`GuardContext` and returns the (possibly rewritten) tree, or
raises :class:`lore.errors.GuardError` whose ``rule`` is the pass's name.
Everything is an allow-list, and every pass walks the whole tree, never just
the root: ``WITH d AS (DELETE ... RETURNING *) SELECT * FROM d`` is a SELECT
at the root.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import MappingProxyType

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, OptimizeError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope, walk_in_scope

from lore.errors import GuardError
from lore.guard.allowlists import (
    ALLOWED_FUNCTIONS,
    ALLOWED_NODES,
    DENIED_FUNCTION_NAMES,
    DENIED_FUNCTION_PREFIXES,
    REFUSED_NAMES,
)
from lore.tables import MAIN_SCHEMA, canonical_table, reference_parts, split_table, table_key

#: the longest SQL text the guard will read
MAX_SQL_CHARS = 100_000
#: whitespace control characters that may appear in SQL text
_ALLOWED_CONTROLS = frozenset("\t\n\r")
#: Unicode categories refused anywhere in the text: controls, invisible
#: format characters (zero-width space, bidi overrides), surrogates,
#: private use, unassigned, line and paragraph separators
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: query clauses whose bare names may refer to the query's own output aliases (DISTINCT ON too)
_ALIAS_CLAUSES = frozenset({"order", "group", "having", "qualify", "distinct"})
#: hints for functions that sqlglot does not know but that have allowed spellings
_FUNCTION_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "date_part": "use EXTRACT(part FROM column)",
        "datepart": "use EXTRACT(part FROM column)",
        "now": "use CURRENT_TIMESTAMP",
        "strlen": "use LENGTH(text)",
        "iff": "use CASE WHEN ... THEN ... ELSE ... END or IF(cond, a, b)",
        "to_date": "use CAST(text AS DATE)",
    }
)


@dataclass(frozen=True)
class GuardContext:
    """What the passes check against: the allowed schema, the dialect and the row limits.

    The schema names a table of the ``main`` schema by its bare name and any other as ``schema.table``
    (see :mod:`lore.tables`). Table and column names are matched case-insensitively, as DuckDB does.

    >>> ctx = GuardContext(schema={"Orders": {"ID": "INT"}, "raw.orders": {"id": "INT"}})
    >>> ctx.tables
    {'orders': 'Orders', 'raw.orders': 'raw.orders'}
    >>> ctx.columns("orders")
    {'id': 'ID'}
    >>> ctx.allowed(sqlglot.parse_one("SELECT 1 FROM MAIN.Orders").find(exp.Table))
    'Orders'
    """

    schema: Mapping[str, Mapping[str, str]]
    dialect: str = "duckdb"
    default_limit: int = 1000
    max_rows: int = 10_000
    #: lower-cased table -> SQL of the subquery that replaces it (per-user row filters, see lore/access/)
    row_filters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @cached_property
    def tables(self) -> dict[str, str]:
        """Lower-cased table name (``orders``, ``raw.orders``) -> the name as given in the schema."""
        return {table_key(name): name for name in self.schema}

    @cached_property
    def parts(self) -> dict[tuple[str, str], str]:
        """Lower-cased ``(schema, table)`` -> the name as given in the schema."""
        return {(schema.lower(), table.lower()): name for name in self.schema for schema, table in [split_table(name)]}

    @cached_property
    def bare_names(self) -> frozenset[str]:
        """The lower-cased table names of the allowed tables without their schemas (what a CTE may not be called)."""
        return frozenset(table for _, table in self.parts)

    def allowed(self, table: exp.Table) -> str | None:
        """The schema's name of the allowed table a plain reference reads (``main.orders`` reads ``orders``);
        None when it reads none (a CTE's name is not resolved here)."""
        parts = reference_parts(table)
        return None if parts is None else self.parts.get(parts)

    def columns(self, table: str) -> dict[str, str]:
        """Lower-cased column name -> the name as given, for one allowed table (empty if unknown)."""
        real = self.tables.get(table_key(table))
        return {} if real is None else {col.lower(): col for col in self.schema[real]}

    @cached_property
    def qualify_schema(self) -> dict[str, dict[str, dict[str, str]]]:
        """The schema in the shape sqlglot's ``qualify`` takes (schema -> table -> column -> type); unparseable
        types become UNKNOWN."""
        nested: dict[str, dict[str, dict[str, str]]] = {}
        for name, cols in self.schema.items():
            schema, table = split_table(canonical_table(name))
            types = {col: _type_or_unknown(kind, self.dialect) for col, kind in cols.items()}
            nested.setdefault(schema, {})[table] = types
        return nested


Pass = Callable[[exp.Expression, GuardContext], exp.Expression]


def _refuse(rule: str, reason: str) -> GuardError:
    return GuardError(reason, rule=rule)


@lru_cache(maxsize=4096)
def _type_or_unknown(kind: str, dialect: str) -> str:
    """A column type sqlglot can parse, or ``UNKNOWN``.

    >>> _type_or_unknown("DECIMAL(18,3)", "duckdb"), _type_or_unknown("NOT A ~ TYPE", "duckdb")
    ('DECIMAL(18,3)', 'UNKNOWN')
    """
    try:
        exp.DataType.build(kind, dialect=dialect)
    except (SqlglotError, ValueError):
        return "UNKNOWN"
    return kind


def _describe(node: exp.Expression) -> str:
    """A short name for a refused node type.

    >>> _describe(sqlglot.parse_one("DROP TABLE t"))
    'DROP'
    >>> _describe(sqlglot.parse_one("VACUUM", read="duckdb"))
    'a raw command (LOAD, CALL, VACUUM, RESET, ...): VACUUM'
    """
    name = type(node).__name__
    label = REFUSED_NAMES.get(name, f"the SQL construct {name}")
    if isinstance(node, exp.Command):
        label += f": {str(node.this).upper()}"
    return label


# --- text level ------------------------------------------------------------------
def parse(sql: str, ctx: GuardContext) -> list[exp.Expression]:
    """Parse in the target dialect; any parse error, and any control or invisible character, rejects.

    >>> ctx = GuardContext(schema={})
    >>> [type(t).__name__ for t in parse("SELECT 1; SELECT 2", ctx)]
    ['Select', 'Select']
    >>> parse("SELECT 1\\x00", ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (parse): ...U+0000...
    >>> parse("SELECT (1", ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (parse): the SQL does not parse...
    """
    if len(sql) > MAX_SQL_CHARS:
        raise _refuse("parse", f"the SQL is {len(sql):,} characters long; the limit is {MAX_SQL_CHARS:,}")
    for position, char in enumerate(sql):
        if unicodedata.category(char) in _REFUSED_CATEGORIES and char not in _ALLOWED_CONTROLS:
            name = unicodedata.name(char, "unnamed")
            raise _refuse(
                "parse",
                f"the SQL contains an invisible or control character U+{ord(char):04X} ({name}) "
                f"at position {position}",
            )
    try:
        statements = sqlglot.parse(sql, read=ctx.dialect)
    except SqlglotError as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise _refuse("parse", f"the SQL does not parse as {ctx.dialect}: {_plain(first_line)}") from None
    except RecursionError:
        raise _refuse("parse", "the SQL is nested too deeply to check") from None
    return [s for s in statements if s is not None]


def _plain(text: str) -> str:
    """Drop ANSI colour codes that sqlglot puts into error messages.

    >>> _plain("at \\x1b[4mTABLE\\x1b[0m")
    'at TABLE'
    """
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def single_statement(statements: list[exp.Expression], ctx: GuardContext) -> exp.Expression:
    """Exactly one statement after dropping empty ones.

    >>> ctx = GuardContext(schema={})
    >>> single_statement(parse("SELECT 1;;", ctx), ctx).sql()
    'SELECT 1'
    >>> single_statement(parse("SELECT 1; DROP TABLE t", ctx), ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (single_statement): the SQL holds 2 statements...
    """
    kept = [s for s in statements if not isinstance(s, exp.Semicolon)]
    if not kept:
        raise _refuse("single_statement", "the SQL holds no statement")
    if len(kept) > 1:
        raise _refuse(
            "single_statement",
            f"the SQL holds {len(kept)} statements; exactly one SELECT is allowed "
            "(stacked statements are refused)",
        )
    return kept[0]


# --- tree passes -------------------------------------------------------------------
def root_is_query(tree: exp.Expression, ctx: GuardContext) -> exp.Expression:
    """The statement is a SELECT, or a UNION / INTERSECT / EXCEPT of SELECTs (a WITH is part of it).

    >>> ctx = GuardContext(schema={})
    >>> root_is_query(sqlglot.parse_one("WITH a AS (SELECT 1) SELECT * FROM a"), ctx).key
    'select'
    >>> root_is_query(sqlglot.parse_one("PRAGMA database_list", read="duckdb"), ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (root_is_query): ...PRAGMA, not a SELECT
    """
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise _refuse("root_is_query", f"only a SELECT may run; the statement is {_describe(tree)}, not a SELECT")
    return tree


def allowed_nodes(tree: exp.Expression, ctx: GuardContext) -> exp.Expression:
    """Walk the whole tree; every node must be of an allow-listed type (functions are checked next).

    This refuses writes and DDL anywhere (``WITH d AS (DELETE ...)``), ``SELECT ... INTO``,
    sqlglot's ``Command`` fallback, PRAGMA, COPY, ATTACH, SET, transactions, bind
    parameters, LATERAL, PIVOT, sampling and whatever sqlglot may parse in future.

    >>> ctx = GuardContext(schema={})
    >>> allowed_nodes(sqlglot.parse_one("SELECT a + 1 AS b FROM t WHERE a IN (1, 2)"), ctx).key
    'select'
    >>> allowed_nodes(sqlglot.parse_one("SELECT * INTO t2 FROM t"), ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (allowed_nodes): SELECT ... INTO ... is not allowed in a query
    """
    for node in tree.walk():
        if isinstance(node, exp.Func) or type(node) in ALLOWED_NODES:
            continue
        raise _refuse("allowed_nodes", f"{_describe(node)} is not allowed in a query")
    return tree


def tables(tree: exp.Expression, ctx: GuardContext) -> exp.Expression:
    """Every table is an allowed table, or a CTE visible where it is used.

    A table of ``main`` is read by its bare name (or as ``main.table``), a table of another schema as
    ``schema.table``, exactly as the allowed schema names it: the same name in another schema is another
    table and is refused, and so is a bare name that only another schema has. Catalog qualifiers
    (``db.raw.orders``: another database), table functions (read_csv, glob, range, ...), quoted file paths
    and URLs, the catalog's own schemas (information_schema.tables) and tables outside the schema are
    refused. A CTE may not take the name of an allowed table (its name without the schema), two CTEs
    may not share a name, and WITH RECURSIVE is refused because its size cannot be bounded.

    >>> ctx = GuardContext(schema={"orders": {"id": "INT"}, "raw.refunds": {"id": "INT"}})
    >>> tables(sqlglot.parse_one("WITH o AS (SELECT * FROM orders) SELECT * FROM o, raw.refunds"), ctx).key
    'select'
    >>> tables(sqlglot.parse_one("SELECT * FROM refunds"), ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (tables): table "refunds" is not in the semantic layer...
    >>> tables(sqlglot.parse_one("SELECT * FROM 'x.csv'", read="duckdb"), ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (tables): table "x.csv" is not in the semantic layer...
    >>> tables(sqlglot.parse_one("WITH orders AS (SELECT 1) SELECT * FROM orders"), ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (tables): the CTE "orders" has the name of a real table...
    """
    for with_ in tree.find_all(exp.With):
        if with_.args.get("recursive"):
            raise _refuse(
                "tables",
                "WITH RECURSIVE is refused: the guard cannot bound how many rows a recursive CTE produces",
            )
    seen: set[str] = set()
    for cte in tree.find_all(exp.CTE):
        name = cte.alias_or_name.lower()
        if not name:
            raise _refuse("tables", "every CTE needs a name")
        if name in ctx.bare_names:
            raise _refuse("tables", f'the CTE "{cte.alias_or_name}" has the name of a real table; rename the CTE')
        if name in seen:
            raise _refuse("tables", f'two CTEs are named "{cte.alias_or_name}"; give each its own name')
        seen.add(name)
    for table in tree.find_all(exp.Table):
        _check_table(table, ctx)
    return tree


def _check_table(table: exp.Table, ctx: GuardContext) -> None:
    if not isinstance(table.this, exp.Identifier):
        name = table.this.sql(ctx.dialect) if isinstance(table.this, exp.Expression) else str(table.this)
        raise _refuse("tables", f"table functions are not allowed in FROM: {name}")
    if table.args.get("catalog"):
        raise _refuse(
            "tables",
            f'"{table.sql(ctx.dialect)}" has a catalog qualifier (another database); name the table as the '
            f'semantic layer does: {", ".join(sorted(ctx.schema))}',
        )
    db = table.args.get("db")
    if db is not None and not isinstance(db, exp.Identifier):
        raise _refuse("tables", f'"{table.sql(ctx.dialect)}" has a schema qualifier that is not a plain name')
    extra = sorted(key for key, value in table.args.items() if value and key not in ("this", "alias", "db"))
    if extra:
        raise _refuse("tables", f'table "{table.name}" carries modifiers that are not allowed: {", ".join(extra)}')
    if db is None and table.name.lower() in visible_ctes(table):
        return
    if ctx.allowed(table) is None:
        shown = table.name if db is None else f"{db.name}.{table.name}"
        raise _refuse(
            "tables",
            f'table "{shown}" is not in the semantic layer; allowed tables: {", ".join(sorted(ctx.schema))}',
        )


def visible_ctes(node: exp.Expression) -> set[str]:
    """The lower-cased CTE names a table reference at ``node`` can see.

    A CTE sees the CTEs defined before it in the same WITH, never itself: in
    ``WITH users AS (SELECT * FROM users)`` the inner ``users`` is the real table.

    >>> tree = sqlglot.parse_one("WITH a AS (SELECT * FROM x), b AS (SELECT * FROM a) SELECT * FROM b")
    >>> [(t.name, sorted(visible_ctes(t))) for t in tree.find_all(exp.Table)]
    [('b', ['a', 'b']), ('x', []), ('a', ['a'])]
    """
    ancestors = {id(parent) for parent in _ancestors(node)}
    names: set[str] = set()
    for query in _ancestors(node):
        if not isinstance(query, exp.Query):
            continue
        ctes = query.ctes
        for index, cte in enumerate(ctes):
            if id(cte) in ancestors:
                names.update(c.alias_or_name.lower() for c in ctes[:index])
                break
        else:
            names.update(c.alias_or_name.lower() for c in ctes)
    return names


def _ancestors(node: exp.Expression) -> Iterator[exp.Expression]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def functions(tree: exp.Expression, ctx: GuardContext) -> exp.Expression:
    """Every function call is an allow-listed sqlglot function class.

    Functions sqlglot does not know (``exp.Anonymous``) are refused, and so are those
    that read files, settings, secrets or the catalog (getenv, current_setting,
    read_*, duckdb_*, pragma_*, glob, query, ...).

    >>> ctx = GuardContext(schema={})
    >>> tree = sqlglot.parse_one("SELECT SUM(a), DATE_TRUNC('month', d) FROM t WHERE a AND b", read="duckdb")
    >>> functions(tree, ctx).key
    'select'
    >>> functions(sqlglot.parse_one("SELECT getenv('HOME')", read="duckdb"), ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (functions): getenv() is refused: it reads...
    """
    for node in tree.find_all(exp.Func):
        if type(node) in ALLOWED_NODES:  # operators sqlglot models as functions (AND, OR)
            continue
        name = function_name(node)
        if name in DENIED_FUNCTION_NAMES or name.startswith(DENIED_FUNCTION_PREFIXES):
            raise _refuse(
                "functions",
                f"{name}() is refused: it reads files, settings, secrets or the catalog, or changes state",
            )
        if type(node) in ALLOWED_FUNCTIONS:
            continue
        if isinstance(node, exp.Anonymous):
            hint = _FUNCTION_HINTS.get(name)
            raise _refuse(
                "functions",
                f"{name}() is not a function the guard knows, so it is refused" + (f"; {hint}" if hint else ""),
            )
        raise _refuse("functions", f"{name}() is not on the guard's allow-list of functions")
    growth = string_growth(tree)
    if growth > MAX_STRING_GROWTH:
        raise _refuse(
            "functions",
            f"the query can grow strings about {growth:,} times (concatenations of concatenations, or replace() "
            f"with longer text); the limit is {MAX_STRING_GROWTH:,}, because DuckDB's memory limit and time "
            "limit do not stop one huge string",
        )
    return tree


def string_growth(tree: exp.Expression) -> int:
    """An upper bound on how many times the query can multiply the length of a string, capped.

    Each SELECT contributes the largest growth of its own expressions (``a || b`` adds, a
    ``replace()`` with a longer replacement multiplies); the query's bound is the product
    over all its SELECTs, since a CTE or subquery can feed the next. DuckDB does not count
    one huge string against ``memory_limit`` and cannot interrupt building it, so
    ``WITH a1 AS (SELECT s || s || s || s FROM a0), a2 AS (...) ...`` must be stopped here.

    >>> growth = lambda sql: string_growth(sqlglot.parse_one(sql, read="duckdb"))
    >>> growth("SELECT country_name || ' (' || region || ')' AS label FROM countries")
    4
    >>> growth("SELECT replace(replace(name, 'a', 'aaaa'), 'b', 'bb') AS n FROM t")
    8
    >>> growth("WITH a AS (SELECT s || s AS s FROM t), b AS (SELECT s || s || s AS s FROM a) SELECT s FROM b")
    6
    >>> growth("SELECT replace(name, 'a', other) AS n FROM t") > MAX_STRING_GROWTH
    True
    """
    total = 1
    for select in tree.find_all(exp.Select):
        local = max((_growth(e) for e in _own_expressions(select)), default=1)
        total = min(total * max(local, 1), _GROWTH_CAP)
    return total


#: the most a query may multiply a string's length (see :func:`string_growth`)
MAX_STRING_GROWTH = 256
_GROWTH_CAP = 10**9


def _own_expressions(select: exp.Select) -> Iterator[exp.Expression]:
    """The expressions of one SELECT, without those of the queries nested in it."""
    for key, value in select.args.items():
        if key == "with":
            continue
        for node in value if isinstance(value, list) else [value]:
            if isinstance(node, exp.Expression) and not isinstance(node, (exp.Select, exp.SetOperation, exp.Subquery)):
                yield node


def _growth(node: exp.Expression) -> int:
    """How many times ``node`` can multiply the length of its longest input string (capped)."""
    if isinstance(node, (exp.Select, exp.SetOperation, exp.Subquery)):
        return 1  # counted as its own SELECTs
    if isinstance(node, (exp.Column, exp.Literal)):
        return 1
    if isinstance(node, exp.DPipe):
        return min(_growth(node.this) + _growth(node.expression), _GROWTH_CAP)
    if isinstance(node, exp.Concat):
        return min(sum(_growth(a) for a in node.expressions), _GROWTH_CAP)
    if isinstance(node, exp.ConcatWs) and node.expressions:  # the separator goes between every two parts
        separator, *parts = node.expressions
        return min(_growth(separator) * max(len(parts) - 1, 0) + sum(_growth(a) for a in parts), _GROWTH_CAP)
    if isinstance(node, (exp.Replace, exp.RegexpReplace)):
        return min(_growth(node.this) * _replace_factor(node), _GROWTH_CAP)
    return max((_growth(c) for c in node.iter_expressions()), default=1)


def _replace_factor(node: exp.Expression) -> int:
    """How much one replace() can lengthen its input: the replacement's length over the pattern's.

    A regular expression can match an empty string before every character, so
    regexp_replace counts one more than the replacement's length. A replacement that is
    not a string literal has no bound.
    """
    pattern, replacement = node.args.get("expression"), node.args.get("replacement")
    if not (isinstance(replacement, exp.Literal) and replacement.is_string):
        return _GROWTH_CAP
    if isinstance(node, exp.RegexpReplace):
        return len(replacement.this) + 1
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return _GROWTH_CAP
    return max(1, -(-len(replacement.this) // max(1, len(pattern.this))))


def function_name(node: exp.Func) -> str:
    """The lower-cased SQL name of a function call.

    >>> function_name(sqlglot.parse_one("SELECT read_csv('x')", read="duckdb").expressions[0])
    'read_csv'
    >>> function_name(sqlglot.parse_one("SELECT getenv('x')", read="duckdb").expressions[0])
    'getenv'
    """
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


#: the longest string literal a query may hold: a long literal repeated on every row of a big table makes
#: gigabytes of text that DuckDB builds vector by vector (2,048 rows at a time) before any row cap applies
MAX_LITERAL_CHARS = 4_096


def literals(tree: exp.Expression, ctx: GuardContext) -> exp.Expression:
    """No string literal longer than :data:`MAX_LITERAL_CHARS` characters.

    >>> ctx = GuardContext(schema={})
    >>> literals(sqlglot.parse_one("SELECT 'EMEA' AS r"), ctx).key
    'select'
    >>> literals(sqlglot.parse_one("SELECT '" + "x" * 5000 + "' AS s"), ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (literals): a string literal of 5,000 characters...
    """
    for literal in tree.find_all(exp.Literal):
        if literal.is_string and len(literal.this) > MAX_LITERAL_CHARS:
            raise _refuse("literals", f"a string literal of {len(literal.this):,} characters; the limit is "
                                      f"{MAX_LITERAL_CHARS:,} (a long literal on every row can exhaust memory)")
    return tree


def columns(tree: exp.Expression, ctx: GuardContext) -> exp.Expression:
    """Qualify every column against the allowed schema with sqlglot's ``qualify``; unknown columns reject.

    ``SELECT *`` expands to the allowed columns only, and a bare table name used as a
    column (DuckDB reads it as the whole row) is refused. The result is the qualified tree.

    >>> ctx = GuardContext(schema={"orders": {"id": "INT", "amount": "DOUBLE"}})
    >>> columns(sqlglot.parse_one("SELECT SUM(amount) FROM orders"), ctx).sql()
    'SELECT SUM("orders"."amount") AS "sum(amount)" FROM "orders" AS "orders"'
    >>> columns(sqlglot.parse_one("SELECT amout FROM orders"), ctx)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lore.errors.GuardError: Refused by the SQL guard (columns): unknown column "amout"; did you mean: orders.amount?
    """
    name_outputs(tree, ctx.dialect)
    try:
        qualified = qualify(_name_schemas(tree), schema=ctx.qualify_schema, dialect=ctx.dialect, identify=True)
    except OptimizeError as err:
        raise _refuse("columns", _unknown_column_reason(str(err), tree, ctx)) from None
    qualified = _bare_main(qualified)
    whole_row = next(qualified.find_all(exp.TableColumn), None)
    if whole_row is not None:
        raise _refuse(
            "columns",
            f'"{whole_row.name}" names a table, not a column: reading whole rows is not allowed; name the columns',
        )
    _check_resolved(qualified, ctx)
    for recheck in (allowed_nodes, tables, functions):  # qualify built new nodes: check them too
        recheck(qualified, ctx)
    return qualified


def _name_schemas(tree: exp.Expression) -> exp.Expression:
    """Write ``main.`` before every bare table that is not a CTE, so ``qualify`` finds each table in exactly one
    schema (a bare ``orders`` is ``main.orders`` even when ``raw.orders`` is allowed too).

    >>> _name_schemas(sqlglot.parse_one("WITH c AS (SELECT 1 AS a) SELECT * FROM orders, c, raw.orders")).sql()
    'WITH c AS (SELECT 1 AS a) SELECT * FROM main.orders, c, raw.orders'
    """
    for table in list(tree.find_all(exp.Table)):
        if not table.args.get("db") and table.name.lower() not in visible_ctes(table):
            table.set("db", exp.to_identifier(MAIN_SCHEMA))
    return tree


def _bare_main(tree: exp.Expression) -> exp.Expression:
    """Drop the ``main.`` qualifier again: the tables of ``main`` run under their bare names.

    >>> _bare_main(sqlglot.parse_one('SELECT 1 FROM "main"."orders" AS "orders", raw.orders')).sql()
    'SELECT 1 FROM "orders" AS "orders", raw.orders'
    """
    for table in tree.find_all(exp.Table):
        db = table.args.get("db")
        if isinstance(db, exp.Identifier) and db.name.lower() == MAIN_SCHEMA and not table.args.get("catalog"):
            table.set("db", None)
    return tree


def name_outputs(tree: exp.Expression, dialect: str) -> exp.Expression:
    """Alias unnamed output expressions by their own SQL, so results keep readable column names.

    (Otherwise ``qualify`` would name them ``_col_1``, ``_col_2``, ...)

    >>> name_outputs(sqlglot.parse_one("SELECT a, COUNT(*), b + 1 AS c FROM t"), "duckdb").sql()
    'SELECT a, COUNT(*) AS "COUNT(*)", b + 1 AS c FROM t'
    """
    select = tree
    while isinstance(select, (exp.SetOperation, exp.Subquery)):
        select = select.this
    if isinstance(select, exp.Select):
        for projection in list(select.expressions):
            if not isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
                label = projection.sql(dialect=dialect, comments=False)
                projection.replace(exp.alias_(projection.copy(), label, quoted=True))
    return tree


def _unknown_column_reason(message: str, tree: exp.Expression, ctx: GuardContext) -> str:
    """Turn sqlglot's message into one that names the column and nearby valid ones."""
    match = re.search(r"Column '([^']+)' could not be resolved|Unknown column: (\S+)", message)
    used = sorted({real for t in tree.find_all(exp.Table) if (real := ctx.allowed(t)) is not None})
    candidates = {f"{t}.{c}": c for t in used for c in ctx.schema[t]}
    if match is None:
        return f"a column could not be resolved ({_plain(message).splitlines()[0]})"
    name = (match.group(1) or match.group(2)).strip('"').lower()
    owners = [qualified for qualified, col in candidates.items() if col.lower() == name]
    if len(owners) > 1:
        return f'column "{name}" is ambiguous; qualify it as one of: {", ".join(owners)}'
    by_lower = {col.lower(): qualified for qualified, col in candidates.items()}
    close = difflib.get_close_matches(name, list(by_lower), n=5, cutoff=0.6)
    if close:
        return f'unknown column "{name}"; did you mean: {", ".join(by_lower[c] for c in close)}?'
    listed = list(candidates)[:30]
    more = "" if len(candidates) <= 30 else f" (and {len(candidates) - 30} more)"
    valid = ", ".join(listed) + more if listed else "none"
    return f'unknown column "{name}"; columns of the tables used: {valid}'


def _check_resolved(tree: exp.Expression, ctx: GuardContext) -> None:
    """After qualify: every column belongs to a source and exists there, or is an output alias in ORDER/GROUP BY."""
    covered: set[int] = set()
    for scope in traverse_scope(tree):
        for node in walk_in_scope(scope.expression):
            if isinstance(node, exp.Column):
                covered.add(id(node))
                _check_column(node, scope, ctx)
            elif isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
                raise _refuse("columns", "a * could not be expanded to allowed columns")
    if any(id(column) not in covered for column in tree.find_all(exp.Column)):
        raise _refuse("columns", "a column could not be placed in any query scope")


def _check_column(column: exp.Column, scope: Scope, ctx: GuardContext) -> None:
    if column.args.get("db") or column.args.get("catalog") or isinstance(column.this, exp.Star):
        raise _refuse("columns", f"the column reference {column.sql(ctx.dialect)} is not allowed")
    if column.table:
        source = _find_source(scope, column.table)
        if source is None:
            raise _refuse("columns", f'"{column.table}" in {column.sql(ctx.dialect)} is not a table of the query')
        if isinstance(source, exp.Table) and column.name.lower() not in _table_columns(source, ctx):
            raise _refuse("columns", f'unknown column "{column.name}" in table "{source.name}"')
        return
    clause = column
    while clause.parent is not None and clause.parent is not scope.expression:
        clause = clause.parent
    name = column.name.lower()
    is_alias = name in {n.lower() for n in scope.expression.named_selects}
    if clause.arg_key in _ALIAS_CLAUSES and is_alias and name not in scope.sources:
        return
    raise _refuse(
        "columns",
        f'"{column.name}" is not a column of the tables used (a bare table name would read whole rows)',
    )


def _table_columns(table: exp.Table, ctx: GuardContext) -> list[str]:
    """The lower-cased column names a table exposes, after any alias column list (``FROM t AS x(a, b)``).

    >>> ctx = GuardContext(schema={"t": {"id": "INT", "name": "TEXT", "kind": "TEXT"}})
    >>> _table_columns(sqlglot.parse_one("SELECT 1 FROM t AS x(a, b)").find(exp.Table), ctx)
    ['a', 'b', 'kind']
    """
    real_name = ctx.allowed(table)
    real = [] if real_name is None else list(ctx.columns(real_name))
    alias = table.args.get("alias")
    renamed = [c.name.lower() for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
    return renamed + real[len(renamed) :]


def _find_source(scope: Scope, name: str) -> exp.Table | Scope | None:
    current: Scope | None = scope
    while current is not None:
        if name in current.sources:
            found = current.sources[name]
            return found if isinstance(found, (exp.Table, Scope)) else None
        current = current.parent
    return None


def limit(tree: exp.Expression, ctx: GuardContext) -> exp.Expression:
    """Set LIMIT when missing (``default_limit``), clamp it when above ``max_rows``; on a set operation, outermost.

    >>> ctx = GuardContext(schema={}, default_limit=100, max_rows=500)
    >>> limit(sqlglot.parse_one("SELECT 1"), ctx).sql()
    'SELECT 1 LIMIT 100'
    >>> limit(sqlglot.parse_one("SELECT 1 UNION SELECT 2 LIMIT 999999"), ctx).sql()
    'SELECT 1 UNION SELECT 2 LIMIT 500'
    """
    node = tree.args.get("limit")
    if node is None:
        tree.set("limit", exp.Limit(expression=exp.Literal.number(min(ctx.default_limit, ctx.max_rows))))
        return tree
    requested = requested_limit(tree)
    if requested is None:
        raise _refuse("limit", "LIMIT must be a whole number")
    if requested > ctx.max_rows:
        node.set("expression", exp.Literal.number(ctx.max_rows))
    return tree


def requested_limit(tree: exp.Expression) -> int | None:
    """The outer LIMIT as a whole number, or None when absent or not a plain number.

    >>> requested_limit(sqlglot.parse_one("SELECT 1 LIMIT 5")), requested_limit(sqlglot.parse_one("SELECT 1"))
    (5, None)
    """
    node = tree.args.get("limit")
    if not isinstance(node, exp.Limit) or set(k for k, v in node.args.items() if v) != {"expression"}:
        return None
    value = node.expression
    if isinstance(value, exp.Literal) and not value.is_string and value.name.isdigit():
        return int(value.name)
    return None


def render(tree: exp.Expression, ctx: GuardContext) -> str:
    """The SQL to execute, regenerated from the checked tree with comments stripped; re-parsed as a check.

    >>> ctx = GuardContext(schema={})
    >>> render(sqlglot.parse_one("SELECT 1 /* ; DROP TABLE t */"), ctx)
    'SELECT 1'
    """
    try:
        sql = tree.sql(dialect=ctx.dialect, comments=False, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as err:
        raise _refuse("render", f"the query cannot be written faithfully in {ctx.dialect}: {err}") from None
    try:
        again = [s for s in sqlglot.parse(sql, read=ctx.dialect) if s is not None]
    except SqlglotError:
        raise _refuse("render", "the regenerated SQL does not parse") from None
    if len(again) != 1 or not isinstance(again[0], (exp.Select, exp.SetOperation)):
        raise _refuse("render", "the regenerated SQL is not a single query")
    return sql


def row_policy(tree: exp.Expression, ctx: GuardContext) -> exp.Expression:
    """Replace every real table the query reads by the subquery of the rows the user may see.

    Runs on the checked, qualified tree, so every table reference is an allowed table, matched with its
    schema (no catalog qualifiers, no table functions, no CTE of a real table's name). The replacement keeps the
    reference's alias, so the query's own predicates (``OR 1 = 1``), joins, subqueries, unions
    and CTEs all read the filtered rows only; nothing around a subquery can widen it.

    >>> ctx = GuardContext(schema={"t": {"id": "INT"}}, row_filters={"t": 'SELECT "id" FROM "t" WHERE "id" < 3'})
    >>> row_policy(sqlglot.parse_one('SELECT "x"."id" FROM "t" AS "x" WHERE 1 = 1 OR "x"."id" > 0'), ctx).sql()
    'SELECT "x"."id" FROM (SELECT "id" FROM "t" WHERE "id" < 3) AS "x" WHERE 1 = 1 OR "x"."id" > 0'
    """
    if not ctx.row_filters:
        return tree
    targets = [(t, key) for t in tree.find_all(exp.Table)
               if (real := ctx.allowed(t)) is not None and (key := table_key(real)) in ctx.row_filters]
    for table, key in targets:
        if not table.args.get("db") and table.name.lower() in visible_ctes(table):  # pragma: no cover - refused before
            raise _refuse("row_policy", f'the CTE "{table.name}" has the name of a real table')
        inner = sqlglot.parse_one(ctx.row_filters[key], read=ctx.dialect)
        alias = table.args.get("alias")
        alias = alias.copy() if isinstance(alias, exp.TableAlias) else exp.TableAlias(
            this=exp.to_identifier(table.name, quoted=True))
        table.replace(exp.Subquery(this=inner, alias=alias))
    for recheck in (allowed_nodes, functions):
        recheck(tree, ctx)
    return tree


#: the tree passes, in order
PASSES: tuple[Pass, ...] = (root_is_query, allowed_nodes, tables, functions, literals, columns, limit)
