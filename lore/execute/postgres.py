"""A hardened, read-only PostgreSQL engine through psycopg 3 (``engine: postgres`` in ``lore.yaml``).

This module is the only place that imports psycopg, and it is imported only when a project names the engine.
The hardening, in the spirit of DuckDB's (SECURITY.md has the whole list):

* **the role**: :meth:`PostgresEngine.open` refuses a superuser, a role that bypasses row-level security, and a
  role that may write any table or create in any schema it can see; ``docs/postgres-readonly-role.sql`` creates
  the role LORE should log in as;
* **every session** is read-only (``default_transaction_read_only``, and psycopg opens each transaction
  ``READ ONLY``), with ``statement_timeout`` at LORE's time limit, ``idle_in_transaction_session_timeout``, a
  ``search_path`` of the default schema alone (``pg_catalog`` first, as always), and these are read back
  before the connection is used;
* **every query** runs in its own read-only transaction with a ``SET LOCAL`` statement timeout (a watchdog
  cancels it from the client too, should the server not), through a server-side cursor fetched in batches, so
  the row cap and the byte cap hold without the result ever crossing the network whole;
* the connection URL comes from an environment variable (never from ``lore.yaml``); messages show it without
  its password.

Like every engine, :meth:`PostgresEngine.run` does not guard its SQL: callers pass SQL that came out of
:func:`lore.guard.guard_sql` in the ``postgres`` dialect.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType, TracebackType
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from lore.errors import EngineError, OperatorError, QueryTimeout
from lore.execute.base import EngineBase, common_type
from lore.execute.engine import fetch_capped
from lore.settings import Settings
from lore.tables import MAIN_SCHEMA, table_name
from lore.types import ColumnMeta, ResultSet, to_scalar

#: seconds a session may sit idle inside a transaction before the server ends it
IDLE_IN_TRANSACTION_S = 60
#: seconds to wait for the server when connecting
CONNECT_TIMEOUT_S = 10
#: the catalog's own schemas, never read
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
#: how long a data stamp is reused (the server's statistics are themselves up to about a second behind)
_STAMP_TTL_S = 2.0
_cursor_names = itertools.count(1)


def _millis(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def shown_url(url: str) -> str:
    """The connection URL as messages show it: no password, no other secret.

    >>> shown_url("postgresql://lore_reader:s3cret@db.example.com:5432/warehouse?sslmode=require")
    'postgresql://lore_reader@db.example.com:5432/warehouse'
    >>> shown_url("host=localhost dbname=w user=u password=x")
    'postgresql://u@localhost/w'
    """
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unreadable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


def error_hint(state: str | None, message: str) -> str:
    """What to do about a PostgreSQL error, from its SQLSTATE.

    >>> error_hint("42P01", 'relation "x" does not exist')
    'The query names a table, column or function the warehouse does not have.'
    >>> error_hint("25006", "cannot execute INSERT in a read-only transaction")
    'The warehouse is opened read-only; LORE never writes to it.'
    """
    state = state or ""
    if state == "25006" or "read-only" in message:
        return "The warehouse is opened read-only; LORE never writes to it."
    if state in ("42P01", "42703", "42883", "3F000"):
        return "The query names a table, column or function the warehouse does not have."
    if state == "42501":
        return ("LORE's role may not read this; grant it SELECT (docs/postgres-readonly-role.sql) or leave the "
                "table out of the semantic layer.")
    if state.startswith("22"):
        return "A value could not be converted or computed (a division by zero, a bad date): check the data."
    if state.startswith("08") or state.startswith("57P"):
        return "The connection to PostgreSQL was lost; check that the server is up, then ask again."
    if state == "53200" or state == "53100":
        return "The server ran out of memory or disk for this query; narrow it."
    return "Check the SQL; the engine's message says what failed."


class PostgresEngine(EngineBase):
    """A pool of hardened read-only PostgreSQL sessions; threads share one engine, each query takes a session."""

    dialect = "postgres"

    def __init__(self, pool: ConnectionPool, url: str, settings: Settings, schema: Mapping[str, Mapping[str, str]],
                 default_schema: str) -> None:
        self._pool = pool
        self._url = url
        self._settings = settings
        self._schema = MappingProxyType({t: MappingProxyType(dict(c)) for t, c in schema.items()})
        self._default_schema = default_schema
        self._closed = False
        self._running: set[psycopg.Connection[Any]] = set()
        self._lock = threading.Lock()
        self._stamp: tuple[float, str] | None = None

    @classmethod
    def open(cls, url: str, settings: Settings, *, schema: str = "public") -> PostgresEngine:
        """Connect, check the role, read the catalog, then open the pool of hardened sessions.

        Raises :class:`OperatorError` with what to do when the server cannot be reached, the login fails, or the
        role may do more than read.
        """
        shown = shown_url(url)
        try:
            kwargs = _connect_kwargs(url)
        except psycopg.ProgrammingError as err:
            raise OperatorError(f"The PostgreSQL connection URL is not valid: {_first_line(err)}",
                                hint="Write it as postgresql://USER@HOST:PORT/DATABASE (the password in PGPASSWORD, "
                                     "~/.pgpass or the URL in the environment variable, never in lore.yaml).") from None

        def harden(connection: psycopg.Connection[Any]) -> None:
            _harden(connection, schema, settings.query_timeout_s)

        try:
            with psycopg.connect(**kwargs) as first:
                harden(first)
                _check_role(first, shown)
                catalog = _read_schema(first, schema)
                first.rollback()
        except psycopg.OperationalError as err:
            raise OperatorError(f"Could not connect to PostgreSQL at {shown}: {_first_line(err)}",
                                hint="Check that the server is up, and the host, port, user, database and password "
                                     "(from the environment) are right.") from None
        except psycopg.Error as err:
            raise OperatorError(f"Could not open PostgreSQL at {shown}: {_first_line(err)}",
                                hint="LORE's role must be able to read the catalog and the tables of the semantic "
                                     "layer: see docs/postgres-readonly-role.sql.") from None
        conninfo = kwargs.pop("conninfo")
        pool = ConnectionPool(conninfo, kwargs=kwargs, min_size=1, max_size=settings.postgres_pool_size, configure=harden,
                              open=False, name="lore", timeout=settings.query_timeout_s, max_idle=300.0,
                              reconnect_timeout=60.0)
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except PoolTimeout:
            raise OperatorError(f"Could not open a session at {shown} within {CONNECT_TIMEOUT_S}s (the first one "
                                "opened): the server refuses more connections or is overloaded.",
                                hint="Check the server's max_connections and the role's CONNECTION LIMIT.") from None
        return cls(pool, url, settings, catalog, schema)

    @property
    def description(self) -> str:
        return shown_url(self._url)

    @property
    def default_schema(self) -> str:
        """The schema whose tables go by bare names (``schema:`` in lore.yaml's engine section)."""
        return self._default_schema

    def data_version(self) -> str:
        """A stamp of the data: rows inserted, updated and deleted per table and the last ANALYZE, from the
        server's statistics (which trail a write by up to about a second), and the server's start time."""
        with self._lock:
            if self._stamp and time.monotonic() - self._stamp[0] < _STAMP_TTL_S:
                return self._stamp[1]
        result = self.run(
            "SELECT CAST(pg_postmaster_start_time() AS TEXT), CAST(COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) "
            "AS TEXT), CAST(MAX(GREATEST(last_analyze, last_autoanalyze)) AS TEXT), CAST(COUNT(*) AS TEXT) "
            "FROM pg_stat_user_tables", max_rows=1)
        stamp = "pg|" + "|".join(str(v) for v in result.rows[0])
        with self._lock:
            self._stamp = (time.monotonic(), stamp)
        return stamp

    def cancel(self) -> None:
        """Cancel every query running now; each raises :class:`EngineError` ("interrupted") in its caller."""
        with self._lock:
            running = list(self._running)
        for connection in running:
            try:
                connection.cancel_safe(timeout=5.0)
            except psycopg.Error:
                pass

    def run(self, sql: str, *, timeout_s: float | None = None, max_rows: int | None = None) -> ResultSet:
        """Run one statement in a read-only transaction; fetch at most ``max_rows`` rows (``truncated`` says more).

        ``sql`` must come from :func:`lore.guard.guard_sql` in the postgres dialect: this method does not check it.
        ``timeout_s`` can only shorten the engine's limit (``Settings.query_timeout_s``).
        """
        limit_s, cap = self._limits(sql, timeout_s, max_rows)
        started = time.perf_counter()
        try:
            connection = self._pool.getconn(timeout=limit_s)
        except PoolTimeout:
            raise QueryTimeout(
                f"Every PostgreSQL session was busy (or the server unreachable) for {limit_s:g}s, the most this "
                "query may take.", sql=sql,
                hint="Try again in a moment; an operator can raise LORE_POSTGRES_POOL_SIZE.") from None
        try:
            left = max(limit_s - (time.perf_counter() - started), 0.001)
            with self._tracked(connection):
                raw, columns = self._execute(connection, sql, left, limit_s, cap)
        finally:
            self._pool.putconn(connection)
        rows = tuple(tuple(to_scalar(value) for value in row) for row in raw[:cap])
        return ResultSet(columns=columns, rows=rows, truncated=len(raw) > cap,
                         elapsed_ms=round((time.perf_counter() - started) * 1000, 3), sql=sql)

    def _execute(self, connection: psycopg.Connection[Any], sql: str, left_s: float, stated_s: float,
                 cap: int) -> tuple[list[tuple[Any, ...]], tuple[ColumnMeta, ...]]:
        watchdog = _Watchdog(connection, left_s + 0.25)  # the server's own timeout should fire first
        try:
            with watchdog:
                connection.execute("SELECT set_config('statement_timeout', %s, true)", [f"{_millis(left_s)}ms"])
                with connection.cursor(name=f"lore_{next(_cursor_names)}") as cursor:
                    cursor.execute(sql)
                    description = list(cursor.description or [])
                    raw = fetch_capped(cursor, cap + 1, int(self._settings.max_result_mb * 1024 * 1024), sql) \
                        if description else []
            return raw, tuple(ColumnMeta(name=str(d.name), label=str(d.name), kind="value",
                                         type=_column_type(connection, d.type_code)) for d in description)
        except psycopg.errors.QueryCanceled as err:
            if watchdog.fired or "statement timeout" in str(err):
                raise QueryTimeout(f"The query ran longer than {stated_s:g}s and was stopped.", sql=sql,
                                   hint="Ask for less (a shorter time range, fewer groups) or raise "
                                        "LORE_QUERY_TIMEOUT_S.") from None
            raise EngineError(f"The query was interrupted: {_first_line(err)}", sql=sql) from None
        except psycopg.Error as err:
            raise EngineError(f"PostgreSQL could not run the query: {_first_line(err)}", sql=sql,
                              hint=error_hint(getattr(err, "sqlstate", None), str(err))) from None
        finally:
            _end_transaction(connection)

    @contextmanager
    def _tracked(self, connection: psycopg.Connection[Any]) -> Iterator[None]:
        with self._lock:
            self._running.add(connection)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(connection)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()


class _Watchdog:
    """Cancels the connection's query once ``seconds`` pass, unless stopped first (a context manager)."""

    def __init__(self, connection: psycopg.Connection[Any], seconds: float) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._timer = threading.Timer(seconds, self._cancel)
        self._timer.daemon = True

    def _cancel(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
        try:
            self._connection.cancel_safe(timeout=5.0)
        except psycopg.Error:
            pass

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


def _expected(timeout_s: float) -> dict[str, str]:
    """The session settings every connection must read back (``pg_settings``' base units: milliseconds)."""
    return {"default_transaction_read_only": "on", "transaction_read_only": "on",
            "statement_timeout": str(_millis(timeout_s)),
            "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_S * 1000)}


def _connect_kwargs(url: str) -> dict[str, Any]:
    """psycopg's connection arguments: the user's URL, LORE's application name and connect timeout."""
    params = conninfo_to_dict(url)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    params.setdefault("application_name", "lore")
    return {"conninfo": make_conninfo(**{k: v for k, v in params.items() if v is not None}), "autocommit": False}


def _harden(connection: psycopg.Connection[Any], schema: str, timeout_s: float) -> None:
    """Make a new session read-only with LORE's limits and search path, then read every setting back."""
    connection.read_only = True
    path = pgsql.Identifier(schema).as_string(connection)
    for name, value in (("default_transaction_read_only", "on"), ("statement_timeout", f"{_millis(timeout_s)}ms"),
                        ("idle_in_transaction_session_timeout", f"{IDLE_IN_TRANSACTION_S}s"),
                        ("search_path", path)):
        connection.execute("SELECT set_config(%s, %s, false)", [name, value])
    connection.commit()
    wanted = {**_expected(timeout_s), "search_path": path}
    actual = dict(connection.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                                     [list(wanted)]).fetchall())
    wrong = {name: str(actual.get(name, "")) for name, value in wanted.items()
             if str(actual.get(name, "")).replace(" ", "") != value.replace(" ", "")}
    connection.rollback()
    if wrong:
        raise OperatorError("The PostgreSQL session is not hardened: "
                            + ", ".join(f"{k}={v}" for k, v in sorted(wrong.items())),
                            hint="A server or role setting overrides LORE's; see SECURITY.md (PostgreSQL).")


def _check_role(connection: psycopg.Connection[Any], shown: str) -> None:
    """Refuse a role that can do more than read: superuser, BYPASSRLS, write or create privileges."""
    row = connection.execute(
        "SELECT r.rolname, r.rolsuper, r.rolbypassrls, "
        "EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname <> ALL(%s) "
        "        AND n.nspname NOT LIKE 'pg\\_%%' "
        "        AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')), "
        "EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%' "
        "        AND has_schema_privilege(n.oid, 'CREATE')) "
        "FROM pg_roles r WHERE r.rolname = current_user", [list(_SYSTEM_SCHEMAS), list(_SYSTEM_SCHEMAS)]).fetchone()
    connection.rollback()
    if row is None:  # pragma: no cover - current_user is always a role
        return
    role, superuser, bypass, writes, creates = row
    why = ("is a superuser" if superuser else "bypasses row-level security" if bypass
           else "may write tables" if writes else "may create objects in a schema" if creates else "")
    if why:
        raise OperatorError(
            f"LORE will not run as the PostgreSQL role {role!r} at {shown}: it {why}.",
            hint="Log in as a read-only role: docs/postgres-readonly-role.sql creates one (SELECT on the layer's "
                 "tables, nothing more); put its URL in the environment variable lore.yaml names.")


def _read_schema(connection: psycopg.Connection[Any], default_schema: str) -> dict[str, dict[str, str]]:
    """Table -> column -> type of every table and view the role may read; the default schema's by bare name."""
    rows = connection.execute(
        "SELECT table_schema, table_name, column_name, data_type, udt_name, numeric_precision, numeric_scale "
        "FROM information_schema.columns WHERE table_schema <> ALL(%s) AND table_schema NOT LIKE 'pg\\_%%' "
        "ORDER BY table_schema <> %s, table_schema, table_name, ordinal_position",
        [list(_SYSTEM_SCHEMAS), default_schema]).fetchall()
    connection.rollback()
    schema: dict[str, dict[str, str]] = {}
    for schema_name, table, column, kind, udt, precision, scale in rows:
        if "." in str(table):
            continue
        where = MAIN_SCHEMA if schema_name == default_schema else str(schema_name)
        if kind == "numeric" and precision is not None:
            type_name = f"DECIMAL({precision},{scale or 0})"
        elif kind in ("USER-DEFINED", "ARRAY"):
            type_name = common_type(str(udt))
        else:
            type_name = common_type(str(kind))
        schema.setdefault(table_name(where, str(table)), {})[str(column)] = type_name
    return schema


def _column_type(connection: psycopg.Connection[Any], oid: int) -> str:
    info = connection.adapters.types.get(oid)
    return common_type(info.name) if info is not None else "VARCHAR"


def _end_transaction(connection: psycopg.Connection[Any]) -> None:
    """Roll back the query's read-only transaction (nothing to keep); a broken session is left to the pool."""
    if connection.closed or connection.broken:
        return
    try:
        connection.rollback()
    except psycopg.Error:
        pass


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
