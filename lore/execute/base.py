"""The engine seam: what LORE asks of a warehouse engine, and what every engine shares.

An engine is opened once per project (see :func:`lore.execute.open.open_engine`) and shared by every thread of
the chat page, the Slack bot and the server: it keeps no per-question state. Three implementations sit behind
:class:`WarehouseEngine`:

* :class:`lore.execute.engine.Engine` — DuckDB, embedded, the default (``duckdb`` is imported there only);
* :class:`lore.execute.postgres.PostgresEngine` — PostgreSQL through psycopg 3 (imported there only, when used);
* :class:`lore.execute.spark.SparkEngine` — Apache Spark through PySpark, local mode over a folder of Parquet
  tables or a Spark Connect server (pyspark imported there only, when used).

Every engine runs only SQL that came out of :func:`lore.guard.guard_sql` in the engine's own :attr:`dialect`,
read-only, under a time limit and a row cap; how each is hardened is written down in SECURITY.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol, runtime_checkable

from sqlglot import exp

from lore.errors import EngineError
from lore.settings import Settings
from lore.tables import table_expr, table_key
from lore.types import ResultSet


@runtime_checkable
class WarehouseEngine(Protocol):
    """What the pipeline, the index and ``lore init`` ask of a warehouse engine."""

    #: the sqlglot dialect its SQL is rendered, guarded and run in
    dialect: str

    @property
    def description(self) -> str:
        """Where the data is, for messages and reports (a path, or a URL without its password)."""

    def schema(self) -> dict[str, dict[str, str]]:
        """Table -> column -> type of every table and view LORE may read (bare names in the default schema)."""

    def run(self, sql: str, *, timeout_s: float | None = None, max_rows: int | None = None) -> ResultSet:
        """Run one guarded statement within the time limit; fetch at most ``max_rows`` rows."""

    def cancel(self) -> None:
        """Stop every query running now (each raises :class:`~lore.errors.EngineError` in its caller)."""

    def distinct_values(self, table: str, column: str, *, max_values: int = 200) -> list[str] | None:
        """The distinct non-NULL values of a column as sorted text; None above ``max_values``."""

    def time_bounds(self, table: str, column: str) -> tuple[str, str] | None:
        """The first and last day of a date or timestamp column (ISO dates); None when it holds no date."""

    def data_version(self) -> str:
        """A stamp that changes when the data changes (cached answers are keyed by it)."""

    def close(self) -> None:
        """Release the connection(s); the engine cannot run queries afterwards."""


class EngineBase:
    """What engines share: name resolution against the catalog, the index's two queries, the context manager."""

    dialect = "duckdb"
    _schema: Mapping[str, Mapping[str, str]]
    _settings: Settings
    _closed: bool

    def _limits(self, sql: str, timeout_s: float | None, max_rows: int | None) -> tuple[float, int]:
        """One run's time limit and row cap: ``timeout_s`` can only shorten the engine's limit
        (``Settings.query_timeout_s``). Raises :class:`EngineError` once the engine is closed."""
        if self._closed:
            raise EngineError("The engine is closed.", sql=sql, hint="Open a new engine.")
        ceiling = self._settings.query_timeout_s
        limit_s = ceiling if timeout_s is None else min(max(timeout_s, 0.001), ceiling)
        return limit_s, self._settings.max_rows if max_rows is None else max_rows

    def run(self, sql: str, *, timeout_s: float | None = None,
            max_rows: int | None = None) -> ResultSet:  # pragma: no cover - every engine has its own
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - every engine has its own
        raise NotImplementedError

    def schema(self) -> dict[str, dict[str, str]]:
        """Table -> column -> type, read from the catalog when the engine opened."""
        return {table: dict(cols) for table, cols in self._schema.items()}

    def distinct_values(self, table: str, column: str, *, max_values: int = 200) -> list[str] | None:
        """The distinct non-NULL values of ``table.column`` as sorted text; None above ``max_values`` (high cardinality).

        The SQL is built with sqlglot, identifiers quoted; unknown names raise :class:`EngineError`.
        """
        real_table, real_column = self._resolve(table, column)
        sql = distinct_values_sql(real_table, real_column, max_values, self.dialect)
        result = self.run(sql, max_rows=max_values)
        if result.truncated:
            return None
        return [str(row[0]) for row in result.rows]

    def time_bounds(self, table: str, column: str) -> tuple[str, str] | None:
        """The first and last day of a date or timestamp column (ISO dates); None when it holds no date."""
        real_table, real_column = self._resolve(table, column)
        col = exp.cast(exp.column(real_column, quoted=True), exp.DataType.build("DATE"))
        sql = exp.select(exp.Min(this=col), exp.Max(this=col.copy())).from_(table_expr(real_table, quoted=True)).sql(
            dialect=self.dialect)
        try:
            row = self.run(sql, max_rows=1).rows[0]
        except (IndexError, EngineError):
            return None
        return (str(row[0]), str(row[1])) if row[0] is not None and row[1] is not None else None

    def _resolve(self, table: str, column: str) -> tuple[str, str]:
        tables = {table_key(name): name for name in self._schema}
        real_table = tables.get(table_key(table))
        if real_table is None:
            raise EngineError(f'The warehouse has no table "{table}".', hint=f"Tables: {', '.join(sorted(tables))}")
        columns = {name.lower(): name for name in self._schema[real_table]}
        real_column = columns.get(column.lower())
        if real_column is None:
            raise EngineError(
                f'Table "{real_table}" has no column "{column}".',
                hint=f"Columns: {', '.join(self._schema[real_table])}",
            )
        return real_table, real_column

    def __enter__(self) -> EngineBase:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def distinct_values_sql(table: str, column: str, max_values: int, dialect: str = "duckdb") -> str:
    """SQL for the distinct values of one column, identifiers quoted through sqlglot (``schema.table`` as two).

    >>> distinct_values_sql("accounts", 'pl"an', 200)
    'SELECT DISTINCT CAST("pl""an" AS TEXT) AS "value" FROM "accounts" WHERE NOT "pl""an" IS NULL ORDER BY "value" LIMIT 201'
    >>> distinct_values_sql("raw.accounts", "plan", 200)  # doctest: +ELLIPSIS
    '... FROM "raw"."accounts" WHERE ...'
    >>> distinct_values_sql("accounts", "plan", 5, "postgres")  # doctest: +ELLIPSIS
    'SELECT DISTINCT CAST("plan" AS VARCHAR) AS "value" FROM "accounts" ... LIMIT 6'
    """
    col = exp.column(column, quoted=True)
    query = (
        exp.select(exp.alias_(exp.cast(col, exp.DataType.build("VARCHAR")), "value", quoted=True))
        .distinct()
        .from_(table_expr(table, quoted=True))
        .where(exp.not_(col.copy().is_(exp.null())))
        .order_by(exp.column("value", quoted=True))
        .limit(max_values + 1)
    )
    return query.sql(dialect=dialect)


#: a result column's type as the engine names it -> the name LORE's charts and formats read (DuckDB's)
_TYPE_NAMES: Mapping[str, str] = {
    "int2": "SMALLINT", "smallint": "SMALLINT", "int4": "INTEGER", "integer": "INTEGER", "int": "INTEGER",
    "int8": "BIGINT", "bigint": "BIGINT", "float4": "FLOAT", "real": "FLOAT", "float8": "DOUBLE",
    "double precision": "DOUBLE", "double": "DOUBLE", "numeric": "DECIMAL", "decimal": "DECIMAL",
    "text": "VARCHAR", "varchar": "VARCHAR", "character varying": "VARCHAR", "bpchar": "VARCHAR",
    "character": "VARCHAR", "string": "VARCHAR", "name": "VARCHAR", "bool": "BOOLEAN", "boolean": "BOOLEAN",
    "date": "DATE", "timestamp": "TIMESTAMP", "timestamp without time zone": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP", "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE", "time": "TIME", "time without time zone": "TIME",
    "interval": "INTERVAL", "uuid": "UUID", "bytea": "BLOB", "binary": "BLOB", "tinyint": "TINYINT",
    "long": "BIGINT", "short": "SMALLINT", "byte": "TINYINT", "float": "FLOAT",
    "timestamp_ltz": "TIMESTAMP WITH TIME ZONE", "void": "NULL",
}


def common_type(name: str) -> str:
    """An engine's type name as DuckDB spells it (what the charts and number formats read); unknown names pass.

    >>> common_type("int8"), common_type("timestamp without time zone"), common_type("numeric(12, 2)")
    ('BIGINT', 'TIMESTAMP', 'DECIMAL(12,2)')
    >>> common_type("jsonb")
    'JSONB'

    Spark's names (its ``timestamp`` is an instant: :func:`lore.execute.spark.spark_type` reads it so):

    >>> [common_type(t) for t in ("string", "bigint", "int", "double", "decimal(12,2)", "timestamp_ntz", "binary")]
    ['VARCHAR', 'BIGINT', 'INTEGER', 'DOUBLE', 'DECIMAL(12,2)', 'TIMESTAMP', 'BLOB']
    """
    text = name.strip().lower()
    match = re.fullmatch(r"(numeric|decimal)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", text)
    if match:
        return f"DECIMAL({match.group(2)},{match.group(3)})"
    text = re.sub(r"\s*\(\s*\d+\s*\)$", "", text)  # varchar(20), timestamp(3)
    return _TYPE_NAMES.get(text, text.upper())
