"""Copying a DuckDB warehouse into PostgreSQL, or out to a folder of Parquet tables for Spark, so the same
semantic layer can answer on every engine.

:func:`copy_duckdb_to_postgres` reads every table and view of a DuckDB file (opened read-only, with extension
auto-install and auto-load off and external access switched off, like the build connection) and writes each
as a PostgreSQL table: the ``main`` schema's into the target schema, any other schema's into a PostgreSQL
schema of the same name. A view arrives as a table of its rows.

Values must arrive unchanged, so a column is copied only when its DuckDB type has a PostgreSQL type that
holds every value (:data:`TYPES`, :func:`postgres_type`); any other column stops the copy before anything is
written, with every such column named at once. Dates, times, timestamps and intervals travel as DuckDB's
text, which PostgreSQL parses exactly: Python's own types would turn ``infinity`` into 9999-12-31, lose BC
dates and fold an interval's months into days.

Everything happens in one PostgreSQL transaction: on any error nothing is left half-copied (and a replaced
table keeps its old rows). Rows stream from DuckDB in batches (``fetchmany``) into ``COPY ... FROM STDIN``;
no table is held in memory. psycopg is imported lazily: it is an optional extra (``lore-analytics[postgres]``).

``CREATE TABLE`` is built as a sqlglot tree by a pure function (:func:`create_table_sql`); the statements that
only ever run through psycopg (``COPY``, ``DROP``, ``ANALYZE``, ``CREATE SCHEMA``) compose their identifiers
with ``psycopg.sql``. No name is ever pasted into SQL as text.

:func:`export_duckdb_to_parquet` writes each table and view of the ``main`` schema as ``NAME.parquet`` with
DuckDB's own ``COPY ... TO``, for the Spark engine (:mod:`lore.execute.spark`). Only types Spark reads back
with every value intact are written (:func:`parquet_ok`); the DuckDB connection may write files into the
export's temporary folder and nowhere else (``allowed_directories`` with external access off), so a view
cannot read files or URLs either.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import duckdb
from sqlglot import exp

from lore.errors import OperatorError
from lore.execute.build import build_config
from lore.execute.engine import open_hint
from lore.tables import MAIN_SCHEMA, table_name

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

#: rows fetched from DuckDB per batch (and reported to ``progress`` after each)
BATCH_ROWS = 5_000
#: DuckDB's own schemas, never copied
SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")
#: DuckDB's text for a date before year 1 ends in ``(BC)``; PostgreSQL reads the same date with ``BC``
_DUCKDB_BC, _POSTGRES_BC = " (BC)", " BC"
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


@dataclass(frozen=True)
class PgType:
    """How a DuckDB type lands in PostgreSQL."""

    #: the column's type in ``CREATE TABLE``
    ddl: str
    #: the type psycopg dumps a value as, in COPY (``text`` for a value that travels as DuckDB's text)
    wire: str
    #: read from DuckDB as text (``CAST(... AS VARCHAR)``) rather than as a Python value
    as_text: bool = False


#: DuckDB type (as ``duckdb_columns().data_type`` spells it) -> PostgreSQL type; DECIMAL(p,s) is
#: :func:`postgres_type`'s. HUGEINT needs 39 digits (2**127 - 1 has 39), one more than ``numeric(38,0)``.
TYPES: Mapping[str, PgType] = MappingProxyType(
    {
        "BOOLEAN": PgType("boolean", "bool"),
        "TINYINT": PgType("smallint", "int2"),
        "SMALLINT": PgType("smallint", "int2"),
        "INTEGER": PgType("integer", "int4"),
        "BIGINT": PgType("bigint", "int8"),
        "HUGEINT": PgType("numeric(39,0)", "numeric"),
        "UTINYINT": PgType("smallint", "int2"),
        "USMALLINT": PgType("integer", "int4"),
        "UINTEGER": PgType("bigint", "int8"),
        "UBIGINT": PgType("numeric(20,0)", "numeric"),
        "UHUGEINT": PgType("numeric(39,0)", "numeric"),
        "FLOAT": PgType("real", "float4"),
        "DOUBLE": PgType("double precision", "float8"),
        "VARCHAR": PgType("text", "text"),
        "UUID": PgType("uuid", "uuid"),
        "BLOB": PgType("bytea", "bytea"),
        "DATE": PgType("date", "text", as_text=True),
        "TIME": PgType("time", "text", as_text=True),
        "TIMESTAMP": PgType("timestamp", "text", as_text=True),
        "TIMESTAMP_S": PgType("timestamp", "text", as_text=True),
        "TIMESTAMP_MS": PgType("timestamp", "text", as_text=True),
        "TIMESTAMP WITH TIME ZONE": PgType("timestamptz", "text", as_text=True),
        "INTERVAL": PgType("interval", "text", as_text=True),
    }
)


def postgres_type(duckdb_type: str) -> PgType | None:
    """The PostgreSQL type that holds every value of a DuckDB type; None when there is none in :data:`TYPES`.

    >>> postgres_type("DECIMAL(12,2)").ddl, postgres_type("HUGEINT").ddl, postgres_type("VARCHAR").ddl
    ('numeric(12,2)', 'numeric(39,0)', 'text')
    >>> postgres_type("TIMESTAMP WITH TIME ZONE")
    PgType(ddl='timestamptz', wire='text', as_text=True)
    >>> postgres_type("INTEGER[]") is None, postgres_type("TIMESTAMP_NS") is None
    (True, True)
    """
    decimal = _DECIMAL.fullmatch(duckdb_type)
    if decimal:
        return PgType(f"numeric({decimal.group(1)},{decimal.group(2)})", "numeric")
    return TYPES.get(duckdb_type)


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    not_null: bool


@dataclass(frozen=True)
class SourceTable:
    """A table or view of the DuckDB file, as its catalog declares it."""

    schema_name: str
    name: str
    is_view: bool
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]

    @property
    def ref(self) -> str:
        """The name LORE gives it: bare in ``main``, ``schema.table`` elsewhere."""
        return table_name(self.schema_name, self.name)


@dataclass(frozen=True)
class TableCopy:
    """One table to write: where it lands, and the PostgreSQL type of each of its columns."""

    source: SourceTable
    target_schema: str
    types: tuple[PgType, ...]


def target_schema(duckdb_schema: str, schema: str) -> str:
    """The PostgreSQL schema a DuckDB schema's tables land in: ``main`` into ``schema``, any other its own name.

    >>> target_schema("main", "public"), target_schema("raw", "public"), target_schema("main", "analytics")
    ('public', 'raw', 'analytics')
    """
    return schema if duckdb_schema.lower() == MAIN_SCHEMA else duckdb_schema


def plan_copy(tables: Iterable[SourceTable], schema: str) -> list[TableCopy]:
    """Where each table lands and as which types; every column without a PostgreSQL type, or two tables landing
    on one name, in one :class:`OperatorError`.

    >>> plan = plan_copy([SourceTable("main", "t", False, (Column("a", "DECIMAL(5,1)", True),), ("a",))], "public")
    >>> plan[0].target_schema, plan[0].types[0].ddl
    ('public', 'numeric(5,1)')
    >>> plan_copy([SourceTable("raw", "t", False, (Column("tags", "VARCHAR[]", False),), ())], "public")
    Traceback (most recent call last):
    ...
    lore.errors.OperatorError: Cannot copy to PostgreSQL: no PostgreSQL type holds every value of these columns:
      - table raw.t, column "tags": VARCHAR[]
    Change those columns' types in the DuckDB file (for example to VARCHAR), or drop them, and copy again; nothing was written.
    """
    plans: list[TableCopy] = []
    unsupported: list[str] = []
    landing: dict[tuple[str, str], str] = {}
    clashes: list[str] = []
    for table in tables:
        types: list[PgType] = []
        for column in table.columns:
            kind = postgres_type(column.duckdb_type)
            if kind is None:
                unsupported.append(f"table {table.ref}, column {_quoted(column.name)}: {column.duckdb_type}")
            else:
                types.append(kind)
        where = target_schema(table.schema_name, schema)
        other = landing.setdefault((where, table.name), table.ref)
        if other != table.ref:
            clashes.append(f"{other} and {table.ref} would both be {where}.{table.name}")
        plans.append(TableCopy(table, where, tuple(types)))
    if unsupported:
        raise OperatorError(
            "Cannot copy to PostgreSQL: no PostgreSQL type holds every value of these columns:\n"
            + "\n".join(f"  - {line}" for line in unsupported),
            hint="Change those columns' types in the DuckDB file (for example to VARCHAR), or drop them, "
                 "and copy again; nothing was written.",
        )
    if clashes:
        raise OperatorError(
            "Cannot copy to PostgreSQL: two tables would land on one name:\n"
            + "\n".join(f"  - {line}" for line in clashes),
            hint="Copy the main schema into another PostgreSQL schema (schema=...); nothing was written.",
        )
    return plans


def create_table_sql(schema: str, table: str, columns: Sequence[tuple[str, str, bool]],
                     primary_key: Sequence[str] = ()) -> str:
    """``CREATE TABLE`` in PostgreSQL for ``(name, type, not_null)`` columns, every identifier quoted.

    >>> print(create_table_sql("public", 'odd "name', [("id", "integer", True), ("Claim Amount", "numeric(12,2)", False)],
    ...                        ["id"]))
    CREATE TABLE "public"."odd ""name" ("id" INT NOT NULL, "Claim Amount" DECIMAL(12, 2), PRIMARY KEY ("id"))
    """
    definitions: list[exp.Expression] = [
        exp.ColumnDef(
            this=exp.to_identifier(name, quoted=True),
            kind=exp.DataType.build(kind, dialect="postgres"),
            constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())] if not_null else [],
        )
        for name, kind, not_null in columns
    ]
    if primary_key:
        definitions.append(exp.PrimaryKey(expressions=[exp.to_identifier(name, quoted=True) for name in primary_key]))
    target = exp.Table(this=exp.to_identifier(table, quoted=True), db=exp.to_identifier(schema, quoted=True))
    return exp.Create(this=exp.Schema(this=target, expressions=definitions), kind="TABLE").sql(dialect="postgres")


def select_sql(table: SourceTable, types: Sequence[PgType]) -> str:
    """The DuckDB query that reads a table's rows for COPY: text for the types that travel as text.

    >>> t = SourceTable("main", "t", False, (Column("n", "INTEGER", False), Column("d", "DATE", False)), ())
    >>> print(select_sql(t, [postgres_type("INTEGER"), postgres_type("DATE")]))
    SELECT "n", REPLACE(CAST("d" AS TEXT), ' (BC)', ' BC') FROM "main"."t"
    """
    columns: list[exp.Expression] = []
    for column, kind in zip(table.columns, types, strict=True):
        ref = exp.column(column.name, quoted=True)
        if kind.as_text:
            ref = exp.func("replace", exp.cast(ref, "VARCHAR"), exp.Literal.string(_DUCKDB_BC),
                           exp.Literal.string(_POSTGRES_BC))
        columns.append(ref)
    source = exp.Table(this=exp.to_identifier(table.name, quoted=True),
                       db=exp.to_identifier(table.schema_name, quoted=True))
    return exp.select(*columns).from_(source).sql(dialect="duckdb")


def postgres_hint(sqlstate: str | None) -> str:
    """What to do about a PostgreSQL error during the copy, from its SQLSTATE.

    >>> postgres_hint("42501")
    'Nothing was written. The PostgreSQL user needs CREATE on the database (for new schemas) and on the target schemas.'
    """
    hints = {
        "42501": "The PostgreSQL user needs CREATE on the database (for new schemas) and on the target schemas.",
        "25006": "This user's sessions are read-only (default_transaction_read_only): copy as a user that may "
                 "create tables, never as LORE's read-only role.",
        "2BP01": "Other objects (views, foreign keys) depend on a table being replaced: drop them first.",
        "22021": "PostgreSQL text cannot hold the NUL character (or the text is not valid UTF-8): "
                 "clean that column in the DuckDB file.",
        "22008": "A date or timestamp is outside PostgreSQL's range.",
        "57014": "A statement was cancelled, most likely by the user's statement_timeout: raise it for this user.",
    }
    return "Nothing was written. " + hints.get(sqlstate or "", "PostgreSQL's message above says what failed.")


def read_tables(connection: duckdb.DuckDBPyConnection) -> list[SourceTable]:
    """Every table and view of the file's own database, but DuckDB's own schemas; ``main`` first, then by name."""
    relations = connection.execute(
        "SELECT schema_name AS s, table_name AS t, false FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT internal AND NOT temporary "
        "UNION ALL SELECT schema_name, view_name, true FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal AND NOT temporary "
        "ORDER BY s <> 'main', s, t"
    ).fetchall()
    columns: dict[tuple[str, str], list[Column]] = {}
    for schema_name, table, column, kind, nullable in connection.execute(
        "SELECT schema_name, table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
        "WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index"
    ).fetchall():
        columns.setdefault((schema_name, table), []).append(Column(str(column), str(kind), not nullable))
    keys = {
        (schema_name, table): tuple(str(name) for name in names)
        for schema_name, table, names in connection.execute(
            "SELECT schema_name, table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE database_name = current_database() AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()
    }
    return [
        SourceTable(str(schema_name), str(name), bool(is_view), tuple(columns.get((schema_name, name), ())),
                    keys.get((schema_name, name), ()))
        for schema_name, name, is_view in relations
        if str(schema_name) not in SYSTEM_SCHEMAS
    ]


def copy_duckdb_to_postgres(
    duckdb_path: Path,
    url: str,
    *,
    schema: str = "public",
    replace: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Copy every table and view of a DuckDB file into the PostgreSQL database at ``url``; rows copied per table.

    Tables are keyed as LORE names them (``orders``, ``raw.orders``). A table that already exists in PostgreSQL
    stops the copy unless ``replace``, which drops and recreates it (in the same transaction). ``progress`` is
    called with a table's name and the rows copied so far, after each batch. Every table copied is analyzed.

    In one process, DuckDB refuses a second connection to a file with other settings: copy from a file no
    :class:`~lore.execute.engine.Engine` of this process has open.
    """
    try:
        import psycopg
    except ImportError as err:
        raise OperatorError(
            "Copying to PostgreSQL needs psycopg, which is not installed",
            hint="Install LORE's PostgreSQL extra: pip install 'lore-analytics[postgres]'.",
        ) from err
    source = _open_duckdb(duckdb_path)
    try:
        plans = plan_copy(read_tables(source), schema)
        try:
            target = psycopg.connect(url)
        except psycopg.Error as err:
            raise OperatorError(
                f"Could not connect to PostgreSQL: {_first_line(err)}",
                hint="Check the URL (postgresql://user:password@host:port/database) and that the server accepts "
                     "connections from here; nothing was written.",
            ) from err
        try:
            with target:  # one transaction: committed at the end, rolled back on any error
                return _copy(source, target, plans, replace=replace, progress=progress)
        except psycopg.Error as err:  # the commit itself, or reading the catalog
            raise _copy_failed(err) from err
    finally:
        source.close()


def _copy(source: duckdb.DuckDBPyConnection, target: psycopg.Connection, plans: Sequence[TableCopy], *,
          replace: bool, progress: Callable[[str, int], None] | None) -> dict[str, int]:
    """The copy itself, on an open transaction: check names, create schemas, then each table, then ANALYZE."""
    import psycopg
    from psycopg import sql

    with target.cursor() as cursor:
        existing = _existing(cursor, plans)
        _refuse_existing(existing, replace=replace)
        schemas = {plan.target_schema for plan in plans}
        have = {row[0] for row in cursor.execute(
            "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY(%s)", [sorted(schemas)]).fetchall()}
        for name in sorted(schemas - have):  # only the missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database
            cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        copied: dict[str, int] = {}
        for plan in plans:
            try:
                copied[plan.source.ref] = _copy_table(source, cursor, plan, (plan.target_schema, plan.source.name)
                                                      in existing, progress)
            except psycopg.Error as err:
                raise _copy_failed(err, plan.source.ref) from err
            except duckdb.Error as err:
                raise OperatorError(
                    f"Reading {plan.source.ref} from the DuckDB file failed: {_first_line(err)}",
                    hint="Nothing was written to PostgreSQL. Check that table (a view is read with external "
                         "access off, so it cannot read files or URLs).",
                ) from err
        for plan in plans:
            cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(plan.target_schema, plan.source.name)))
    return copied


def _copy_table(source: duckdb.DuckDBPyConnection, cursor: psycopg.Cursor, plan: TableCopy, exists: bool,
                progress: Callable[[str, int], None] | None) -> int:
    """(Drop and) create one table, then stream its rows from DuckDB into COPY a batch at a time; the row count."""
    from psycopg import sql

    table = plan.source
    target = sql.Identifier(plan.target_schema, table.name)
    if exists:
        cursor.execute(sql.SQL("DROP TABLE {}").format(target))
    cursor.execute(create_table_sql(
        plan.target_schema, table.name,
        [(column.name, kind.ddl, column.not_null) for column, kind in zip(table.columns, plan.types, strict=True)],
        table.primary_key,
    ))
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        target, sql.SQL(", ").join(sql.Identifier(column.name) for column in table.columns))
    rows = 0
    reader = source.execute(select_sql(table, plan.types))
    with cursor.copy(statement) as copy:
        copy.set_types([kind.wire for kind in plan.types])
        if progress is not None:
            progress(table.ref, 0)
        while batch := reader.fetchmany(BATCH_ROWS):
            for row in batch:
                copy.write_row(row)
            rows += len(batch)
            if progress is not None:
                progress(table.ref, rows)
    return rows


def _existing(cursor: psycopg.Cursor, plans: Sequence[TableCopy]) -> dict[tuple[str, str], str]:
    """(schema, name) -> relkind of every relation already in PostgreSQL under a name the copy will write."""
    wanted = {(plan.target_schema, plan.source.name) for plan in plans}
    rows = cursor.execute(
        "SELECT n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(%s) AND c.relname = ANY(%s)",
        [sorted({s for s, _ in wanted}), sorted({t for _, t in wanted})],
    ).fetchall()
    return {(s, t): str(kind) for s, t, kind in rows if (s, t) in wanted}


def _refuse_existing(existing: Mapping[tuple[str, str], str], *, replace: bool) -> None:
    """Stop before writing: on any existing name unless ``replace``; on a name that is not a table, always."""
    not_tables = sorted(f"{s}.{t}" for (s, t), kind in existing.items() if kind not in ("r", "p"))
    if not_tables:
        raise OperatorError(
            "Cannot copy to PostgreSQL: these names are taken by something other than a table (a view, "
            "an index, a sequence...): " + ", ".join(not_tables),
            hint="Drop or rename them in PostgreSQL (replace only ever drops tables), or copy into another schema; "
                 "nothing was written.",
        )
    if existing and not replace:
        raise OperatorError(
            "Cannot copy to PostgreSQL: these tables already exist: " + ", ".join(sorted(f"{s}.{t}" for s, t in existing)),
            hint="Pass replace=True to drop and recreate them (their rows are lost), or copy into another schema; "
                 "nothing was written.",
        )


def _open_duckdb(path: Path, *, writes_to: Path | None = None) -> duckdb.DuckDBPyConnection:
    """The DuckDB file, read-only and locked down; times print in UTC so timestamps with a zone travel exactly.
    ``writes_to``: the one folder its SQL may write files into (the Parquet export's staging folder)."""
    if not path.is_file():
        raise OperatorError(f"No DuckDB file at {path}",
                            hint="Pass the warehouse file (for a demo project: its warehouse.duckdb).")
    try:
        connection = duckdb.connect(str(path), read_only=True, config=build_config(2))
    except duckdb.Error as err:
        raise OperatorError(f"Could not open {path}: {_first_line(err)}", hint=open_hint(str(err))) from err
    try:
        connection.execute("SET enable_progress_bar = false")
        if writes_to is not None:
            connection.execute("SET allowed_directories = ?", [[str(writes_to) + "/"]])
        connection.execute("SET enable_external_access = false")
        connection.execute("SET TimeZone = 'UTC'")
    except duckdb.Error as err:
        connection.close()
        raise OperatorError(f"Could not lock down the DuckDB connection to {path}: {_first_line(err)}",
                            hint=open_hint(str(err))) from err
    return connection


def _copy_failed(err: BaseException, table: str | None = None) -> OperatorError:
    where = f" (table {table})" if table else ""
    return OperatorError(f"Copying to PostgreSQL failed{where}: {_first_line(err)}",
                         hint=postgres_hint(getattr(err, "sqlstate", None)))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --- DuckDB -> a folder of Parquet tables (the Spark engine's) -----------------------------------------------

#: DuckDB types that Spark reads back from DuckDB's Parquet with every value intact (unsigned integers widen:
#: UINTEGER to bigint, UBIGINT to decimal(20,0)); DECIMAL(p,s) and ENUM are :func:`parquet_ok`'s
PARQUET_TYPES = frozenset({
    "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
    "FLOAT", "DOUBLE", "VARCHAR", "JSON", "BLOB", "DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS",
    "TIMESTAMP WITH TIME ZONE",
})
#: why a DuckDB type is not written, and what to cast it to in the DuckDB file
_NOT_PARQUET = {
    "HUGEINT": "DuckDB writes it to Parquet as DOUBLE, losing digits; cast to DECIMAL(38,0) or BIGINT",
    "UHUGEINT": "DuckDB writes it to Parquet as DOUBLE, losing digits; cast to DECIMAL(38,0)",
    "TIMESTAMP_NS": "Spark does not read nanosecond Parquet timestamps; cast to TIMESTAMP",
    "TIME": "Spark has no time-of-day type; cast to VARCHAR",
    "INTERVAL": "Spark does not read Parquet intervals; cast to VARCHAR",
    "UUID": "Spark does not read Parquet UUIDs; cast to VARCHAR",
}


def parquet_ok(duckdb_type: str) -> bool:
    """Whether Spark reads a DuckDB type back from Parquet with every value intact.

    >>> parquet_ok("DECIMAL(12,2)"), parquet_ok("DATE"), parquet_ok("ENUM('a', 'b')"), parquet_ok("BOOLEAN")
    (True, True, True, True)
    >>> parquet_ok("HUGEINT"), parquet_ok("TIMESTAMP_NS"), parquet_ok("INTEGER[]")
    (False, False, False)
    """
    return duckdb_type in PARQUET_TYPES or bool(_DECIMAL.fullmatch(duckdb_type)) or duckdb_type.startswith("ENUM(")


def plan_export(tables: Iterable[SourceTable]) -> list[SourceTable]:
    """The tables to write; every table outside ``main``, every name no file or view could hold and every column
    Spark would not read back intact, in one :class:`OperatorError`.

    >>> [t.name for t in plan_export([SourceTable("main", "t", False, (Column("a", "DATE", False),), ())])]
    ['t']
    >>> plan_export([SourceTable("main", "t", False, (Column("n", "HUGEINT", False),), ()),
    ...              SourceTable("raw", "u", False, (), ())])
    Traceback (most recent call last):
    ...
    lore.errors.OperatorError: Cannot export to Parquet for Spark:
      - table t, column "n": HUGEINT (DuckDB writes it to Parquet as DOUBLE, losing digits; cast to DECIMAL(38,0) or BIGINT)
      - table raw.u: the Spark engine reads the tables of the main schema only (by bare name)
    Change them in the DuckDB file (cast the columns, move or drop the tables) and export again; nothing was written.
    """
    problems: list[str] = []
    plans: list[SourceTable] = []
    for table in tables:
        if table.schema_name.lower() != MAIN_SCHEMA:
            problems.append(f"table {table.ref}: the Spark engine reads the tables of the main schema only "
                            "(by bare name)")
            continue
        if not table.name or "." in table.name or "/" in table.name or "\\" in table.name \
                or table.name.startswith((".", "_")):
            problems.append(f"table {_quoted(table.name)}: no Parquet file name would give it back (a dot, a "
                            "slash or a leading dot or underscore)")
            continue
        for column in table.columns:
            if not parquet_ok(column.duckdb_type):
                why = _NOT_PARQUET.get(column.duckdb_type, "Spark would not read it back as it is; cast it")
                problems.append(f"table {table.ref}, column {_quoted(column.name)}: {column.duckdb_type} ({why})")
        plans.append(table)
    if problems:
        raise OperatorError(
            "Cannot export to Parquet for Spark:\n" + "\n".join(f"  - {line}" for line in problems),
            hint="Change them in the DuckDB file (cast the columns, move or drop the tables) and export again; "
                 "nothing was written.",
        )
    return plans


def copy_to_parquet_sql(table: SourceTable, path: Path) -> str:
    """DuckDB's ``COPY (SELECT * FROM table) TO 'path' (FORMAT parquet)``, identifiers and path quoted by sqlglot.

    >>> print(copy_to_parquet_sql(SourceTable("main", "it's", False, (), ()), Path("/tmp/o'k/it's.parquet")))
    COPY (SELECT * FROM "main"."it's") TO '/tmp/o''k/it''s.parquet' WITH (FORMAT parquet)
    """
    source = exp.Table(this=exp.to_identifier(table.name, quoted=True),
                       db=exp.to_identifier(table.schema_name, quoted=True))
    return exp.Copy(
        this=exp.Subquery(this=exp.select(exp.Star()).from_(source)), kind=False,
        files=[exp.Literal.string(str(path))],
        params=[exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("parquet"))],
    ).sql(dialect="duckdb")


def export_duckdb_to_parquet(
    duckdb_path: Path,
    folder: Path,
    *,
    replace: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Write every table and view of the DuckDB file's ``main`` schema to ``folder`` as ``NAME.parquet`` (a
    view as the table of its rows); rows written per table.

    A table whose file (or folder) already exists in ``folder`` stops the export unless ``replace``. Everything
    is written into a temporary folder first and moved into place only once every table is written, so a failure
    leaves ``folder`` as it was. ``progress`` is called with each table's name and rows once it is written.
    Other files in ``folder`` are left alone (the Spark engine would read them as tables too).

    In one process, DuckDB refuses a second connection to a file with other settings: export from a file no
    :class:`~lore.execute.engine.Engine` of this process has open.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OperatorError(f"{folder} is a file, not a folder", hint="Pass a folder for the Parquet tables.")
    source = _open_duckdb(duckdb_path)
    try:
        plans = plan_export(read_tables(source))
    finally:
        source.close()
    if not plans:
        raise OperatorError(f"{duckdb_path} has no tables or views in its main schema",
                            hint="Nothing was written; build the warehouse first.")
    targets = {table.name: folder / f"{table.name}.parquet" for table in plans}
    taken = sorted(str(path) for path in targets.values() if path.exists() or path.is_symlink())
    if taken and not replace:
        raise OperatorError("Cannot export to Parquet: these files already exist: " + ", ".join(taken),
                            hint="Pass replace=True (--replace) to overwrite them, or export to another folder; "
                                 "nothing was written.")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".lore-export-", dir=folder))
    try:
        try:
            written = _write_parquet(duckdb_path, staging, plans, progress)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        for table in plans:
            target = targets[table.name]
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            (staging / target.name).replace(target)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_parquet(duckdb_path: Path, staging: Path, plans: Sequence[SourceTable],
                   progress: Callable[[str, int], None] | None) -> dict[str, int]:
    """Each table into ``staging`` through a connection that may write there and read nothing outside the file."""
    connection = _open_duckdb(duckdb_path, writes_to=staging)
    try:
        written: dict[str, int] = {}
        for table in plans:
            try:
                row = connection.execute(copy_to_parquet_sql(table, staging / f"{table.name}.parquet")).fetchone()
            except duckdb.Error as err:
                raise OperatorError(
                    f"Writing {table.ref} to Parquet failed: {_first_line(err)}",
                    hint="Nothing was written. Check that table (a view is read with external access off, so it "
                         "cannot read files or URLs) and the free disk space.") from err
            written[table.ref] = int(row[0]) if row else 0
            if progress is not None:
                progress(table.ref, written[table.ref])
        return written
    finally:
        connection.close()
