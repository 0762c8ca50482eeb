"""Layer 2 of LORE's SQL safety: a hardened, read-only DuckDB connection (the default engine).

Only ``lore/execute/`` imports duckdb: this module, ``build.py`` (which writes the demo
warehouse) and ``copy.py`` (which copies a warehouse into PostgreSQL). :meth:`Engine.open` opens the
warehouse ``read_only=True`` with limits on threads, memory and temp space,
with extension auto-install/auto-load, community extensions and Python
replacement scans off; then sets ``enable_external_access=false`` and, last,
``lock_configuration=true`` so that no later statement can undo any of it.
Each query runs on its own cursor under a watchdog that calls ``interrupt()``
at the time limit (DuckDB's ``max_execution_time`` is set too, as a backstop).

:meth:`Engine.run` does **not** guard its SQL: callers pass SQL that came out
of :func:`lore.guard.guard_sql`. Read-only mode still allows ``CREATE TEMP
TABLE``; only the guard stops that.

The engine seam (what every engine offers, and what they share) is :mod:`lore.execute.base`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

import duckdb

from lore.errors import EngineError, OperatorError, ProjectNotFound, QueryTimeout, ResultTooLarge
from lore.execute.base import EngineBase, distinct_values_sql
from lore.settings import Settings
from lore.tables import table_name
from lore.types import ColumnMeta, ResultSet, to_scalar

__all__ = ["Engine", "connect_config", "distinct_values_sql", "fetch_capped", "value_bytes"]

#: settings that must read back exactly like this once the connection is hardened
_HARDENED: Mapping[str, str] = MappingProxyType(
    {
        "access_mode": "read_only",
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
        "allow_unsigned_extensions": "false",
        "python_enable_replacements": "false",
    }
)


def connect_config(settings: Settings) -> dict[str, Any]:
    """The DuckDB ``config`` passed when connecting.

    DuckDB shares one database instance per file within a process and refuses a second
    connection with a different config, so only settings that rarely differ go here;
    the time limit is set with ``SET GLOBAL`` in :func:`_lock_down`.

    >>> cfg = connect_config(Settings(duckdb_threads=1))
    >>> cfg["threads"], cfg["autoload_known_extensions"], cfg["python_enable_replacements"]
    (1, False, False)
    """
    return {
        "threads": settings.duckdb_threads,
        "memory_limit": settings.duckdb_memory_limit,
        "max_temp_directory_size": settings.duckdb_max_temp_directory_size,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "python_enable_replacements": False,
    }


def _millis(seconds: float) -> int:
    """Seconds as whole milliseconds, at least 1.

    >>> _millis(0.0004), _millis(1.5)
    (1, 1500)
    """
    return max(1, math.ceil(seconds * 1000))


def open_hint(message: str) -> str:
    """What to do when the warehouse does not open, from DuckDB's message.

    >>> open_hint('IO Error: Could not set lock on file "w.duckdb": Conflicting lock is held')
    'Another process holds the warehouse read-write (is `lore demo init` still running?); wait for it to finish.'
    """
    if "lock" in message:
        return (
            "Another process holds the warehouse read-write (is `lore demo init` still running?); "
            "wait for it to finish."
        )
    if "different configuration" in message:
        return (
            "This Python process already opened the warehouse with other DuckDB settings; "
            "every Engine (and any other connection) on one file in one process must use the same settings."
        )
    return (
        "Check that the file is a DuckDB database (rebuild the demo with `lore demo init`) "
        "and that the LORE_DUCKDB_* settings are valid."
    )


def error_hint(kind: str, message: str) -> str:
    """What to do about a DuckDB error, from its exception class name and message.

    >>> error_hint("CatalogException", "Table with name x does not exist")
    'The query names a table, column or function the warehouse does not have.'
    >>> error_hint("InvalidInputException", "Cannot execute statement of type CREATE ... read-only mode!")
    'The warehouse is opened read-only; LORE never writes to it.'
    """
    if "read-only" in message or "read_only" in message:
        return "The warehouse is opened read-only; LORE never writes to it."
    if "locked" in message and "configuration" in message:
        return "The engine's configuration is locked; settings cannot change at query time."
    hints = {
        "ParserException": "DuckDB could not parse the SQL.",
        "CatalogException": "The query names a table, column or function the warehouse does not have.",
        "BinderException": "The query names a table, column or function the warehouse does not have.",
        "PermissionException": "External access (files, URLs, extensions) is disabled in the hardened engine.",
        "OutOfMemoryException": "The query needed more memory than LORE_DUCKDB_MEMORY_LIMIT; narrow it.",
        "ConversionException": "A value could not be converted to the type the query asked for.",
    }
    return hints.get(kind, "Check the SQL; the engine's message says what failed.")


class _Watchdog:
    """Calls ``cursor.interrupt()`` once ``seconds`` pass, unless stopped first (a context manager)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, seconds: float) -> None:
        self._cursor = cursor
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._timer = threading.Timer(seconds, self._interrupt)
        self._timer.daemon = True

    def _interrupt(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            try:
                self._cursor.interrupt()
            except duckdb.Error:  # the query ended between the check and the call: nothing to stop
                pass

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


class Engine(EngineBase):
    """One hardened read-only DuckDB connection; a fresh cursor per call, so threads may share an Engine."""

    dialect = "duckdb"

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path, settings: Settings) -> None:
        self._connection = connection
        self._path = path
        self._settings = settings
        self._closed = False
        self._schema = _read_schema(connection)
        #: the cursors running a query now, for cancel()
        self._running: set[duckdb.DuckDBPyConnection] = set()
        self._running_lock = threading.Lock()
        #: DuckDB's own max_execution_time backstop (set by the first Engine on this file in this process)
        backstop_ms = int(_setting(connection, "max_execution_time") or 0)
        self._backstop_s = backstop_ms / 1000 if backstop_ms > 0 else settings.query_timeout_s
        #: the queries running at once (the others wait their turn, within their time limit)
        self._turns = threading.BoundedSemaphore(settings.duckdb_max_concurrent_queries)

    @classmethod
    def open(cls, path: Path, settings: Settings) -> Engine:
        """Open the warehouse read-only and harden the connection; never creates the file."""
        path = Path(path)
        if not path.is_file():
            raise ProjectNotFound(
                f"No DuckDB warehouse at {path}.",
                hint="Create the demo warehouse with `lore demo init`, or point lore.yaml at an existing DuckDB file.",
            )
        try:
            connection = duckdb.connect(str(path), read_only=True, config=connect_config(settings))
        except duckdb.Error as err:
            raise OperatorError(
                f"Could not open the warehouse {path} read-only: {_first_line(err)}", hint=open_hint(str(err))
            ) from err
        try:
            _lock_down(connection, _millis(settings.query_timeout_s))
            return cls(connection, path, settings)
        except BaseException:
            connection.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    @property
    def description(self) -> str:
        return str(self._path)

    def data_version(self) -> str:
        """The warehouse file's size and modification time (and its write-ahead log's)."""
        from lore.cache.keys import data_version

        return data_version(self._path)

    def cancel(self) -> None:
        """Interrupt every query running now; each raises :class:`EngineError` ("interrupted") in its caller."""
        with self._running_lock:
            running = list(self._running)
        for cursor in running:
            try:
                cursor.interrupt()
            except duckdb.Error:  # it ended meanwhile
                pass

    def run(self, sql: str, *, timeout_s: float | None = None, max_rows: int | None = None) -> ResultSet:
        """Run one statement and fetch at most ``max_rows`` rows (``truncated`` says whether there were more).

        ``sql`` must come from :func:`lore.guard.guard_sql`: this method does not check it.
        ``timeout_s`` can only shorten the engine's limit (``Settings.query_timeout_s``).
        Raises :class:`QueryTimeout` when interrupted, :class:`EngineError` on any DuckDB error.
        """
        limit_s, cap = self._limits(sql, timeout_s, max_rows)
        stated_s = min(limit_s, self._backstop_s)
        started = time.perf_counter()
        if not self._turns.acquire(timeout=limit_s):
            raise QueryTimeout(
                f"The warehouse was busy with other queries for {limit_s:g}s, the most this query may take.",
                sql=sql, hint="Try again in a moment; an operator can raise LORE_DUCKDB_MAX_CONCURRENT_QUERIES "
                              "on a machine with more cores and memory.")
        try:
            return self._run(sql, started, limit_s - (time.perf_counter() - started), stated_s, cap)
        finally:
            self._turns.release()

    def _run(self, sql: str, started: float, limit_s: float, stated_s: float, cap: int) -> ResultSet:
        limit_s = max(limit_s, 0.001)
        cursor = self._connection.cursor()
        with self._running_lock:
            self._running.add(cursor)
        try:
            with _Watchdog(cursor, limit_s) as watchdog:
                try:
                    cursor.execute(sql)
                    description = cursor.description or []
                    raw = fetch_capped(cursor, cap + 1, int(self._settings.max_result_mb * 1024 * 1024), sql) \
                        if description else []
                except duckdb.InterruptException as err:
                    if watchdog.fired or "execution time" in str(err):
                        raise QueryTimeout(
                            f"The query ran longer than {stated_s:g}s and was stopped.",
                            sql=sql,
                            hint="Ask for less (a shorter time range, fewer groups) or raise LORE_QUERY_TIMEOUT_S.",
                        ) from None
                    raise EngineError(f"The query was interrupted: {_first_line(err)}", sql=sql) from None
                except duckdb.Error as err:
                    raise EngineError(
                        f"DuckDB could not run the query: {_first_line(err)}",
                        sql=sql,
                        hint=error_hint(type(err).__name__, str(err)),
                    ) from None
        finally:
            with self._running_lock:
                self._running.discard(cursor)
            cursor.close()
        columns = tuple(
            ColumnMeta(name=str(d[0]), label=str(d[0]), kind="value", type=str(d[1])) for d in description
        )
        rows = tuple(tuple(to_scalar(value) for value in row) for row in raw[:cap])
        return ResultSet(
            columns=columns,
            rows=rows,
            truncated=len(raw) > cap,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
            sql=sql,
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._connection.close()


#: rows fetched from DuckDB at a time, so a result's size is checked before the next batch is read
FETCH_BATCH = 512


def fetch_capped(cursor: Any, max_rows: int, max_bytes: int, sql: str) -> list[tuple[Any, ...]]:
    """Fetch at most ``max_rows`` rows, refusing a result whose values outgrow ``max_bytes`` (EngineError).

    A row cap alone lets 10,000 rows of huge strings take gigabytes of memory; this stops at the
    first batch that crosses the byte cap, so the process holds at most the cap plus one batch.
    """
    rows: list[tuple[Any, ...]] = []
    size = 0
    while len(rows) < max_rows:
        wanted = min(FETCH_BATCH, max_rows - len(rows))
        batch = cursor.fetchmany(wanted)
        if not batch:
            break
        size += sum(value_bytes(v) for row in batch for v in row)
        if size > max_bytes:
            raise ResultTooLarge(
                f"The result is larger than the {max_bytes / 1024 / 1024:g} MB a result may hold.",
                sql=sql, hint="Ask for fewer rows or columns (long text columns add up), or raise LORE_MAX_RESULT_MB.")
        rows.extend(batch)
        if len(batch) < wanted:  # the result is exhausted
            break
    return rows


def value_bytes(value: Any) -> int:
    """About how many bytes a fetched value holds (text and blobs by length, nested values summed).

    >>> value_bytes("abc"), value_bytes(b"ab"), value_bytes(3.5), value_bytes([1, "xy"]), value_bytes({"k": "vv"})
    (3, 2, 8, 10, 3)
    """
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(value_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(value_bytes(k) + value_bytes(v) for k, v in value.items())
    return 8


def _lock_down(connection: duckdb.DuckDBPyConnection, max_execution_ms: int) -> None:
    """Set the time-limit backstop, turn external access off and, last, lock the configuration; then verify.

    In one process DuckDB shares a database instance between connections to the same
    file, so a second Engine may find the instance already locked: then it only verifies.
    """
    try:
        if _setting(connection, "lock_configuration") != "true":
            connection.execute("SET GLOBAL max_execution_time = ?", [max_execution_ms])
            connection.execute("SET enable_external_access = false")
            connection.execute("SET lock_configuration = true")
        wrong = {
            name: actual
            for name, expected in _HARDENED.items()
            if (actual := _setting(connection, name)) != expected
        }
        if _setting(connection, "max_execution_time") in ("", "0"):
            wrong["max_execution_time"] = "0"
    except duckdb.Error as err:
        raise OperatorError(f"Could not harden the DuckDB connection: {_first_line(err)}") from err
    if wrong:
        raise OperatorError(
            "The DuckDB connection is not hardened: "
            + ", ".join(f"{name}={value}" for name, value in sorted(wrong.items())),
            hint="Another connection in this process opened the warehouse with other settings; use one Engine.",
        )


def _setting(connection: duckdb.DuckDBPyConnection, name: str) -> str:
    row = connection.execute("SELECT CAST(current_setting(?) AS VARCHAR)", [name]).fetchone()
    return "" if row is None else str(row[0]).lower()


def _read_schema(connection: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Table -> column -> type for the tables and views of every user schema of the warehouse's own database.

    Tables of ``main`` keep their bare names; the others are keyed ``schema.table``. The catalog's own schemas
    (other databases, ``information_schema``, ``pg_catalog``) are left out, and so is a table whose name holds
    a dot: no name could tell it from a table of another schema.
    """
    rows = connection.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema NOT IN ('information_schema', 'pg_catalog') "
        "ORDER BY table_schema <> 'main', table_schema, table_name, ordinal_position"
    ).fetchall()
    schema: dict[str, dict[str, str]] = {}
    for schema_name, table, column, kind in rows:
        if "." in str(table):
            continue
        schema.setdefault(table_name(str(schema_name), str(table)), {})[str(column)] = str(kind)
    return schema


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
