"""A hardened, read-only Apache Spark engine through PySpark (``engine: spark`` in ``lore.yaml``).

This module is the only place that imports pyspark, and it is imported only when a project names the engine.
Two ways to reach Spark, one code path afterwards:

* **local mode** (the default): a Spark driver in a JVM this process starts (Java 17 or 21), over a folder of
  Parquet tables: each ``NAME.parquet`` file or ``NAME/`` folder of Parquet part files becomes a temporary view
  ``NAME``, so the semantic layer's bare table names resolve. Tables of other schemas (``raw.orders``) are not
  supported: a folder holding other folders is refused when the engine opens;
* **Spark Connect**, when the environment variable ``engine.url_env`` names (``LORE_SPARK_REMOTE``) holds an
  ``sc://`` URL: a session of its own on that server, over the Parquet folder (the server reads it at the same
  path) or, with no folder, the tables of the server catalog's current database.

The hardening, on top of the guard (:func:`lore.guard.guard_sql` in the ``spark`` dialect, the first line: one
``SELECT``, allow-listed nodes and functions, known tables only):

* **only queries run**: Spark runs DDL and DML eagerly (``spark.sql("DROP VIEW t")`` drops it), so before any SQL
  reaches :meth:`pyspark.sql.SparkSession.sql`, :meth:`SparkEngine.run` has Spark's own parser read it with
  ``parseQuery``, which accepts one query and nothing else (no DDL, DML, ``SET``, ``CACHE``, script or second
  statement). Over Spark Connect the client cannot reach the server's parser: sqlglot's Spark parser checks that
  the SQL is one query instead;
* **no file reads from SQL**: ``spark.sql.runSQLOnFiles=false`` (``SELECT * FROM parquet.`/etc/...``` names an
  unknown table), read back before the first query;
* **no Java from SQL**: ``reflect``, ``java_method`` and ``try_reflect`` (which call static Java methods) are
  dropped from the session's function registry in local mode; over Spark Connect (the server's registry is not
  the session's to change) the engine refuses SQL that calls them, read by sqlglot's Spark parser, after the
  guard. No user-defined function is ever registered;
* **a private catalog**: local mode runs with ``spark.sql.catalogImplementation=in-memory`` (no Hive metastore,
  nothing persisted), its warehouse directory in a temporary folder, the driver bound to 127.0.0.1 and no Spark UI;
  LORE creates only its own session's temporary views, when the engine opens, before any question. A process may
  hold one Spark driver: every engine of the process gets its own session on it, and the last engine to close
  stops it. The static settings are read back: a driver started elsewhere in the process with other settings
  (a Hive catalog, say) is refused;
* **limits**: each query runs under a job tag; a watchdog cancels the tag's jobs at the time limit (and keeps
  cancelling until the query returns: a query can start a job after another is cancelled), and
  :meth:`SparkEngine.cancel` does the same for every query running now. At most ``max_rows + 1`` rows are
  collected (``limit``), their values counted against the byte cap like every engine's, and the driver refuses
  a collected result above twice the byte cap (``spark.driver.maxResultSize``) before it reaches Python.

Like every engine, :meth:`SparkEngine.run` does not guard its SQL: callers pass SQL that came out of
:func:`lore.guard.guard_sql` in the ``spark`` dialect.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import sqlglot
from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql.types import StructType, TimestampType

from lore.errors import ConfigError, EngineError, OperatorError, QueryTimeout, ResultTooLarge
from lore.execute.base import EngineBase, common_type
from lore.execute.engine import fetch_capped
from lore.settings import Settings
from lore.types import ColumnMeta, ResultSet, to_scalar

with warnings.catch_warnings():  # PySpark warns about pandas 3 as it starts; LORE never hands Spark pandas data
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    importlib.import_module("pyspark.testing")  # imported by pyspark.sql.types when the driver starts

#: the driver's settings in local mode (static: fixed when the JVM starts), read back before the first query
LOCAL_CONF: Mapping[str, str] = MappingProxyType({
    "spark.app.name": "lore",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.memory": "1g",
})
#: the driver's settings that must read back as set (another driver of the process may have other ones)
_READ_BACK = ("spark.sql.catalogImplementation", "spark.ui.enabled", "spark.driver.bindAddress")
#: the local driver's log configuration: errors only (Spark's default prints its start-up chatter and warnings)
LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")
#: the settings of LORE's own session (runtime settings: set on the session, then read back)
SESSION_CONF: Mapping[str, str] = MappingProxyType({
    "spark.sql.runSQLOnFiles": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
})
#: functions that call Java: dropped from LORE's session in local mode
JAVA_FUNCTIONS = ("reflect", "java_method", "try_reflect")
#: a local master: local, local[2], local[*]
_LOCAL_MASTER = re.compile(r"local(\[(\d+|\*)\])?")
#: how often a fired watchdog cancels its query's jobs again, until the query returns
_RECANCEL_S = 0.25
#: how a Spark Connect session retries a call the server did not take (about 4 s in all, not the client's 10 min)
CONNECT_RETRIES: Mapping[str, Any] = MappingProxyType({
    "max_retries": 4, "initial_backoff": 250, "backoff_multiplier": 2.0, "max_backoff": 2000})
#: how long a catalog's stamp is reused (it costs a round trip to the catalog)
_STAMP_TTL_S = 2.0


def shown_remote(url: str) -> str:
    """A Spark Connect URL as messages show it: scheme, host and port, no token or other parameter.

    >>> shown_remote("sc://spark.example.com:15002/;token=s3cret;user_id=ana")
    'sc://spark.example.com:15002'
    >>> shown_remote("sc://user:pw@localhost")
    'sc://localhost'
    """
    rest = url.split("://", 1)[-1]
    where = re.split(r"[/;?]", rest, maxsplit=1)[0].rpartition("@")[2]
    return f"sc://{where}"


def spark_type(name: str) -> str:
    """A Spark type name as DuckDB spells it (what the charts and number formats read).

    Spark's ``timestamp`` is an instant (DuckDB's ``TIMESTAMP WITH TIME ZONE``); its ``timestamp_ntz`` is a
    local date and time (DuckDB's ``TIMESTAMP``).

    >>> spark_type("timestamp"), spark_type("timestamp_ntz"), spark_type("decimal(12,2)"), spark_type("string")
    ('TIMESTAMP WITH TIME ZONE', 'TIMESTAMP', 'DECIMAL(12,2)', 'VARCHAR')
    """
    return "TIMESTAMP WITH TIME ZONE" if name.strip().lower() == "timestamp" else common_type(name)


def error_hint(condition: str | None, sqlstate: str | None, message: str) -> str:
    """What to do about a Spark error, from its error condition, SQLSTATE and message.

    >>> error_hint("TABLE_OR_VIEW_NOT_FOUND", "42P01", "The table or view `x` cannot be found.")
    'The query names a table, column or function the warehouse does not have.'
    >>> error_hint("DIVIDE_BY_ZERO", "22012", "Division by zero.")
    'A value could not be converted or computed (a division by zero, a bad date): check the data.'
    """
    condition, state = condition or "", sqlstate or ""
    if condition.startswith(("TABLE_OR_VIEW_NOT_FOUND", "UNRESOLVED_")) or state in ("42P01", "42703", "42883"):
        return "The query names a table, column or function the warehouse does not have."
    if condition.startswith("PARSE_") or state == "42601":
        return "Spark could not parse the SQL."
    if state.startswith("22"):
        return "A value could not be converted or computed (a division by zero, a bad date): check the data."
    if "OutOfMemory" in message or "Java heap space" in message:
        return "The Spark driver ran out of memory for this query; narrow it (or give the driver more memory)."
    if "FileNotFound" in message or "does not exist" in message:
        return ("A Parquet file changed or went away after the engine opened: reopen the project (or restart LORE) "
                "after replacing the tables.")
    return "Check the SQL; the engine's message says what failed."


@dataclass(frozen=True)
class TableSource:
    """A table of the Parquet folder: the name the layer uses, and the file or folder Spark reads."""

    name: str
    path: Path


def table_sources(folder: Path) -> list[TableSource]:
    """The tables of a folder of Parquet tables, by name: ``NAME.parquet`` files and ``NAME/`` folders of part files.

    A table folder may hold Hive-style partition folders (``year=2024/``); any other folder inside it would be a
    schema of tables, which the engine does not support: :class:`OperatorError`. Hidden entries (``.x``, ``_x``)
    and names holding a dot (no layer name could tell them from a schema's table) are skipped.
    """
    if not folder.is_dir():
        raise OperatorError(f"No folder of Parquet tables at {folder}.",
                            hint="Write one from the project's DuckDB warehouse with `lore warehouse copy --to spark`, "
                                 "or point engine.tables in lore.yaml at the folder.")
    tables: list[TableSource] = []
    nested: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_file() and entry.suffix == ".parquet":
            name = entry.name[: -len(".parquet")]
        elif entry.is_dir():
            name = entry.name
            inner = [p.name for p in entry.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
                     and "=" not in p.name]
            if inner:
                nested.append(f"{entry.name}/ holds folders ({', '.join(sorted(inner)[:3])})")
                continue
        else:
            continue
        if name and "." not in name:
            tables.append(TableSource(name, entry))
    if nested:
        raise OperatorError(
            f"The Parquet folder {folder} holds schemas of tables: " + "; ".join(nested) + ".",
            hint="The Spark engine reads the tables of one folder, by bare name (NAME.parquet or NAME/ of part "
                 "files); move each table to the top of the folder.")
    if not tables:
        raise OperatorError(f"The folder {folder} holds no Parquet tables (NAME.parquet files or NAME/ folders).",
                            hint="Write them from the project's DuckDB warehouse with `lore warehouse copy --to spark`.")
    return tables


def folder_version(folder: Path) -> str:
    """A stamp of every file under the folder: its path, size and modification time (a rewrite changes it)."""
    stamp = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        try:
            info = path.stat()
        except OSError:
            continue
        if path.is_file():
            stamp.update(f"{path.relative_to(folder)}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return "parquet|" + stamp.hexdigest()[:16]


class _LocalDriver:
    """The one local Spark driver a process may hold (Spark's own rule), shared by every engine of the process.

    It is the module's only mutable state: the JVM is one per process whatever LORE does, so the engines count
    themselves on it and the last to close stops it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._base: SparkSession | None = None
        self._users = 0
        self._warehouse_dir: str | None = None

    def acquire(self, master: str, settings: Settings, driver_memory: str = "1g") -> SparkSession:
        with self._lock:
            if self._base is None:
                self._base, self._warehouse_dir = _start_local(master, settings, driver_memory)
            self._users += 1
            return self._base

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0 or self._base is None:
                return
            base, self._base = self._base, None
            folder, self._warehouse_dir = self._warehouse_dir, None
        base.stop()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


_DRIVER = _LocalDriver()


def _start_local(master: str, settings: Settings, driver_memory: str = "1g") -> tuple[SparkSession, str]:
    """Start (or find) the local driver with LORE's settings and ``driver_memory`` (the JVM's heap, set when the
    process's first engine starts it); check the static ones took."""
    if os.environ.get("SPARK_REMOTE") or "SPARK_CONNECT_MODE_ENABLED" in os.environ:
        raise ConfigError("SPARK_REMOTE or SPARK_CONNECT_MODE_ENABLED is set, which would turn LORE's local Spark "
                          "session into a Spark Connect one.",
                          hint="Unset them (PySpark sets SPARK_CONNECT_MODE_ENABLED when code of this process opens "
                               "a Spark Connect session itself); LORE reads a Spark Connect URL from LORE_SPARK_REMOTE.")
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and shutil.which("java") is None:
        raise OperatorError("Spark's local mode needs a Java runtime, and none was found (no java on PATH, no "
                            "JAVA_HOME).", hint="Install Java 17 or 21 (Debian: apt-get install openjdk-17-jre-headless) "
                                                "or set JAVA_HOME; or run Spark Connect and export LORE_SPARK_REMOTE.")
    warehouse_dir = tempfile.mkdtemp(prefix="lore-spark-")
    conf = {**LOCAL_CONF, "spark.sql.warehouse.dir": warehouse_dir, "spark.driver.memory": driver_memory,
            "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}",
            "spark.driver.maxResultSize": f"{max(1, math.ceil(settings.max_result_mb * 2))}m"}
    builder = SparkSession.builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        base = builder.getOrCreate()
    except (PySparkException, Py4JError, OSError) as err:
        shutil.rmtree(warehouse_dir, ignore_errors=True)
        raise OperatorError(f"Could not start Spark in local mode: {_first_line(err)}",
                            hint="Check the Java runtime (Java 17 or 21: `java -version`) and the free memory; "
                                 "Spark's own log above says more.") from None
    wrong = {key: base.conf.get(key, "") for key in _READ_BACK if base.conf.get(key, "") != LOCAL_CONF[key]}
    if wrong:
        shutil.rmtree(warehouse_dir, ignore_errors=True)
        raise OperatorError("The process already runs a Spark driver with other settings: "
                            + ", ".join(f"{k}={v}" for k, v in sorted(wrong.items())),
                            hint="LORE needs its own local driver (in-memory catalog, no UI, bound to 127.0.0.1): run "
                                 "LORE in a process of its own, or reach that Spark through Spark Connect.")
    base.sparkContext.setLogLevel("FATAL")  # LORE reports every failed query itself, with a hint
    return base, warehouse_dir


def _quiet_pyspark_loggers() -> None:
    """PySpark logs every SQL error it raises as JSON on stderr; LORE reports them itself (EngineError, hint)."""
    import logging

    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


@dataclass
class _Run:
    """One query in flight: its job tag, and why it was stopped (None while it was not)."""

    tag: str
    reason: str | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self, reason: str) -> None:
        with self.lock:
            if self.reason is None:
                self.reason = reason
        self.stopping.set()


class _Watchdog:
    """Stops a run at its time limit (or when :meth:`SparkEngine.cancel` asks), cancelling its jobs until it ends."""

    def __init__(self, run: _Run, seconds: float, interrupt: Callable[[str], None]) -> None:
        self._run = run
        self._seconds = seconds
        self._interrupt = interrupt
        self._thread = threading.Thread(target=self._watch, name=f"lore-spark-watchdog-{run.tag}", daemon=True)

    def _watch(self) -> None:
        run = self._run
        if not run.stopping.wait(self._seconds):
            run.stop("timeout")
        while not run.done.is_set():
            try:
                self._interrupt(run.tag)
            except (PySparkException, Py4JError):  # the driver is going away: the query fails on its own
                return
            run.done.wait(_RECANCEL_S)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._run.done.set()
        self._run.stopping.set()
        self._thread.join(5)


class _Rows:
    """Collected rows behind ``fetchmany``, so :func:`fetch_capped` counts their bytes like any engine's."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self._rows = iter(rows)

    def fetchmany(self, size: int) -> list[Any]:
        return [row for _, row in zip(range(size), self._rows)]


class SparkEngine(EngineBase):
    """One Spark session of LORE's own (local or Spark Connect); threads share it, each query under its job tag."""

    dialect = "spark"

    def __init__(self, session: SparkSession, settings: Settings, schema: Mapping[str, Mapping[str, str]], *,
                 folder: Path | None, remote: str | None, master: str, views: Sequence[str],
                 databases: Sequence[str] = ()) -> None:
        self._session = session
        self._settings = settings
        self._schema = MappingProxyType({t: MappingProxyType(dict(c)) for t, c in schema.items()})
        self._folder = folder
        self._remote = remote
        self._master = master
        self._views = tuple(views)
        self._databases = tuple(databases)
        self._closed = False
        self._lock = threading.Lock()
        self._running: dict[str, _Run] = {}
        self._stamp: tuple[float, str] | None = None
        self._parser = None if remote else session._jsparkSession.sessionState().sqlParser()

    @classmethod
    def open(cls, settings: Settings, *, tables: Path | None, master: str = "local[2]",
             remote: str | None = None, driver_memory: str = "1g", databases: Sequence[str] = ()) -> SparkEngine:
        """Open LORE's session (local mode, or Spark Connect at ``remote``), harden it, and make a temporary view
        of every table of the ``tables`` folder (without one: read the catalog's current database, and the tables
        of ``databases`` as ``database.table``). In local mode the process's first engine starts the driver, with
        ``driver_memory`` as its JVM's heap.

        Raises :class:`OperatorError` with what to do when Java, the server or the tables are missing.
        """
        if not remote and not _LOCAL_MASTER.fullmatch(master):
            raise ConfigError(f"engine.master {master!r} in lore.yaml is not a local master (local, local[N] or "
                              "local[*]).", hint="For a Spark cluster, run Spark Connect on it and export "
                                                 "LORE_SPARK_REMOTE=sc://HOST:15002.")
        if tables is not None and databases:
            raise ConfigError("engine.databases in lore.yaml names catalog databases, and engine.tables a folder of "
                              "Parquet tables: LORE reads one or the other.",
                              hint="Remove engine.tables to read the catalog, or engine.databases to read the folder.")
        _quiet_pyspark_loggers()
        sources = table_sources(tables) if tables is not None else None
        if remote:
            session = _connect(remote)
        else:
            session = _DRIVER.acquire(master, settings, driver_memory).newSession()
        try:
            _harden(session, remote=bool(remote))
            if sources is not None:
                schema, views = _make_views(session, sources), [source.name for source in sources]
            else:
                schema, views = _read_catalog(session, remote, databases), []
            return cls(session, settings, schema, folder=tables, remote=remote, master=master, views=views,
                       databases=databases)
        except BaseException:
            _release(session, remote=bool(remote))
            raise

    @property
    def description(self) -> str:
        if self._folder is not None:
            where = f"over Spark Connect {shown_remote(self._remote)}" if self._remote else f"spark {self._master}"
            return f"{self._folder} ({where})"
        return f"spark {shown_remote(self._remote)} (catalog)" if self._remote else f"spark {self._master} (catalog)"

    def data_version(self) -> str:
        """For a Parquet folder: a stamp of its files (paths, sizes, modification times). For a catalog: its
        tables' names and columns (a catalog offers nothing cheaper that changes with the rows)."""
        if self._folder is not None:
            return folder_version(self._folder)
        with self._lock:
            if self._stamp and time.monotonic() - self._stamp[0] < _STAMP_TTL_S:
                return self._stamp[1]
        try:
            catalog = _read_catalog(self._session, self._remote, self._databases)
        except OperatorError:
            catalog = {}
        stamp = "spark|" + hashlib.sha256(repr(sorted((t, sorted(c.items())) for t, c in catalog.items()))
                                          .encode()).hexdigest()[:16]
        with self._lock:
            self._stamp = (time.monotonic(), stamp)
        return stamp

    def cancel(self) -> None:
        """Stop every query running now; each raises :class:`EngineError` ("interrupted") in its caller."""
        with self._lock:
            running = list(self._running.values())
        for run in running:
            run.stop("cancel")

    def run(self, sql: str, *, timeout_s: float | None = None, max_rows: int | None = None) -> ResultSet:
        """Run one query under a job tag; collect at most ``max_rows`` rows (``truncated`` says there were more).

        ``sql`` must come from :func:`lore.guard.guard_sql` in the spark dialect; anything but one query is refused
        here too (Spark would run DDL and DML at once). ``timeout_s`` can only shorten the engine's limit.
        """
        limit_s, cap = self._limits(sql, timeout_s, max_rows)
        started = time.perf_counter()
        run = _Run(tag=f"lore-{uuid.uuid4().hex}")
        with self._lock:
            self._running[run.tag] = run
        try:
            with _Watchdog(run, limit_s, self._interrupt):
                raw, schema = self._collect(sql, run, cap, limit_s)
        finally:
            with self._lock:
                self._running.pop(run.tag, None)
        converters = [_from_instant if isinstance(f.dataType, TimestampType) else _same for f in schema.fields]
        rows = tuple(tuple(to_scalar(convert(value)) for convert, value in zip(converters, row, strict=True))
                     for row in raw[:cap])
        columns = tuple(ColumnMeta(name=f.name, label=f.name, kind="value", type=spark_type(f.dataType.simpleString()))
                        for f in schema.fields)
        return ResultSet(columns=columns, rows=rows, truncated=len(raw) > cap,
                         elapsed_ms=round((time.perf_counter() - started) * 1000, 3), sql=sql)

    def _collect(self, sql: str, run: _Run, cap: int, limit_s: float) -> tuple[list[Any], StructType]:
        """Check that ``sql`` is one query, then run it under the run's tag and collect ``cap + 1`` rows at most."""
        self._refuse_non_query(sql)
        self._tag(run.tag)
        try:
            frame = self._session.sql(sql)
            schema = frame.schema
            collected = frame.limit(cap + 1).collect()
            raw = fetch_capped(_Rows(collected), cap + 1, int(self._settings.max_result_mb * 1024 * 1024), sql)
            return raw, schema
        except (PySparkException, Py4JError) as err:
            raise self._failed(err, run, sql, limit_s) from None
        except (ValueError, OverflowError) as err:  # a value Python cannot hold (a date before year 1 or after 9999)
            raise EngineError(f"A value of the result cannot be read into Python: {_first_line(err)}", sql=sql,
                              hint="A date or timestamp is outside the years 1-9999; filter it out or cast it to "
                                   "text in the semantic layer.") from None
        finally:
            self._untag(run.tag)

    def _failed(self, err: BaseException, run: _Run, sql: str, limit_s: float) -> EngineError:
        if run.reason == "timeout":
            return QueryTimeout(f"The query ran longer than {limit_s:g}s and was stopped.", sql=sql,
                                hint="Ask for less (a shorter time range, fewer groups) or raise LORE_QUERY_TIMEOUT_S.")
        message = _message(err)
        if run.reason == "cancel":
            return EngineError(f"The query was interrupted: {message}", sql=sql)
        if "maxResultSize" in message:
            return ResultTooLarge(
                f"The result is larger than the {self._settings.max_result_mb:g} MB a result may hold.", sql=sql,
                hint="Ask for fewer rows or columns (long text columns add up), or raise LORE_MAX_RESULT_MB.")
        condition = err.getCondition() if isinstance(err, PySparkException) else None
        state = err.getSqlState() if isinstance(err, PySparkException) else None
        return EngineError(f"Spark could not run the query: {message}", sql=sql,
                           hint=error_hint(condition, state, message))

    def _refuse_non_query(self, sql: str) -> None:
        """Refuse anything but one query, with Spark's own parser (local mode) or sqlglot's (Spark Connect)."""
        refused = EngineError("The Spark engine runs queries only, and this SQL is not one query.", sql=sql,
                              hint="LORE never writes to the warehouse: it runs the one SELECT the guard let through.")
        if self._parser is None:
            try:
                statements = [s for s in sqlglot.parse(sql, read="spark") if s is not None]
            except sqlglot.errors.SqlglotError:
                raise refused from None
            if len(statements) != 1 or not isinstance(statements[0], sqlglot.exp.Query):
                raise refused
            called = {(f.name if isinstance(f, sqlglot.exp.Anonymous) else f.sql_name()).lower()
                      for f in statements[0].find_all(sqlglot.exp.Func)}
            if called & set(JAVA_FUNCTIONS):  # the server's registry is not LORE's to change: refused here
                raise EngineError("The Spark engine does not call Java from SQL (" + ", ".join(
                    sorted(called & set(JAVA_FUNCTIONS))) + ").", sql=sql,
                    hint="LORE never writes such SQL: it runs the one SELECT the guard let through.")
            return
        try:
            self._parser.parseQuery(sql)
        except (PySparkException, Py4JError):
            raise refused from None

    def _tag(self, tag: str) -> None:
        """Tag the jobs this thread starts (local mode: the driver's job tags, which follow the thread; Spark
        Connect: the session's operation tags, which follow the thread in the client)."""
        if self._remote:
            self._session.addTag(tag)
        else:
            context = self._session.sparkContext
            context.addJobTag(tag)
            context.setInterruptOnCancel(True)

    def _untag(self, tag: str) -> None:
        try:
            if self._remote:
                self._session.removeTag(tag)
            else:
                self._session.sparkContext.removeJobTag(tag)
        except (PySparkException, Py4JError):  # the session is gone: nothing left to untag
            pass

    def _interrupt(self, tag: str) -> None:
        if self._remote:
            self._session.interruptTag(tag)
        else:
            self._session.sparkContext.cancelJobsWithTag(tag)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.cancel()
        if not self._remote:
            for name in self._views:
                try:
                    self._session.catalog.dropTempView(_quoted(name))
                except (PySparkException, Py4JError):
                    pass
        _release(self._session, remote=bool(self._remote))


def _connect(remote: str) -> SparkSession:
    """A session of LORE's own on the Spark Connect server at ``remote``, its retries cut short and its server
    reached once (the client retries a server it cannot reach for ten minutes by default)."""
    shown = shown_remote(remote)
    try:
        with warnings.catch_warnings():  # the same pandas 3 warning, from the Connect client's modules
            warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                    category=FutureWarning)
            from pyspark.sql.connect.client.retries import DefaultPolicy
            from pyspark.sql.connect.session import SparkSession as ConnectSession

            # the Connect builder itself: PySpark's SparkSession.builder would mark the whole process as Spark
            # Connect (SPARK_CONNECT_MODE_ENABLED), and no local-mode engine could open in it afterwards
            session = ConnectSession.builder.remote(remote).create()
    except ImportError as err:
        raise ConfigError(f"Spark Connect needs PySpark's connect extra, which is not installed ({err}).",
                          hint="pip install 'lore-analytics[spark]' (it brings pyspark[connect]).") from None
    except (PySparkException, OSError, ValueError) as err:
        raise OperatorError(f"Could not open a Spark Connect session at {shown}: {_message(err)}",
                            hint=_CONNECT_HINT) from None
    try:
        session.client.set_retry_policies([DefaultPolicy(**CONNECT_RETRIES)])
        with warnings.catch_warnings():  # the client warns before it raises; the error says it all
            warnings.filterwarnings("ignore", message=r"\[RETRIES_EXCEEDED\]", category=UserWarning)
            session.version  # noqa: B018 - the first call to the server: it fails here, not in the first question
    except (PySparkException, OSError, ValueError) as err:
        _release(session, remote=True)
        raise OperatorError(f"Could not reach the Spark Connect server at {shown}: {_message(err)}",
                            hint=_CONNECT_HINT) from None
    return session


_CONNECT_HINT = ("Check that the server is up and the URL in LORE_SPARK_REMOTE is right (sc://HOST:15002, a token "
                 "as ;token=... in the URL).")


def _release(session: SparkSession, *, remote: bool) -> None:
    if remote:
        try:
            with warnings.catch_warnings():  # a server gone away: the client warns as it gives up
                warnings.filterwarnings("ignore", message=r"\[RETRIES_EXCEEDED\]", category=UserWarning)
                session.stop()
        except (PySparkException, OSError):
            pass
    else:
        _DRIVER.release()


def _harden(session: SparkSession, *, remote: bool) -> None:
    """Set LORE's session settings and read them back; in local mode, drop the functions that call Java."""
    try:
        for key, value in SESSION_CONF.items():
            session.conf.set(key, value)
        wrong = {key: str(session.conf.get(key, "")) for key, value in SESSION_CONF.items()
                 if str(session.conf.get(key, "")).lower() != value.lower()}
        if not remote:
            registry = session._jsparkSession.sessionState().functionRegistry()
            jvm = session._jvm
            some = jvm.scala.Option.apply
            for name in JAVA_FUNCTIONS:
                registry.dropFunction(jvm.org.apache.spark.sql.catalyst.FunctionIdentifier.apply(
                    name, some("builtin"), some("system")))
                if registry.functionExists(jvm.org.apache.spark.sql.catalyst.FunctionIdentifier.apply(
                        name, some("builtin"), some("system"))):
                    wrong[f"function {name}"] = "present"
    except (PySparkException, Py4JError) as err:
        raise OperatorError(f"Could not harden the Spark session: {_first_line(err)}",
                            hint="The server may forbid changing these settings; see SECURITY.md (Spark).") from None
    if wrong:
        raise OperatorError("The Spark session is not hardened: " + ", ".join(f"{k}={v}" for k, v in sorted(wrong.items())),
                            hint="A server setting overrides LORE's; see SECURITY.md (Spark).")


def _make_views(session: SparkSession, sources: Sequence[TableSource]) -> dict[str, dict[str, str]]:
    """A temporary view of LORE's session per table of the folder; table -> column -> type."""
    schema: dict[str, dict[str, str]] = {}
    for source in sources:
        try:
            frame = session.read.parquet(str(source.path))
            frame.createOrReplaceTempView(_quoted(source.name))
        except (PySparkException, Py4JError) as err:
            raise OperatorError(f"Spark cannot read the table {source.name} ({source.path}): {_message(err)}",
                                hint="Rewrite the folder with `lore warehouse copy --to spark --replace` (each "
                                     "table a Parquet file or a folder of part files).") from None
        schema[source.name] = {f.name: spark_type(f.dataType.simpleString()) for f in frame.schema.fields}
    return schema


def _read_catalog(session: SparkSession, remote: str | None, databases: Sequence[str] = ()) -> dict[str, dict[str, str]]:
    """Table -> column -> type of the tables and views of the catalog's current database (bare names), and of each
    of ``databases`` (named ``database.table``)."""
    try:
        current = session.catalog.currentDatabase()
        known = {d.name.lower() for d in session.catalog.listDatabases()}
    except (PySparkException, Py4JError) as err:
        raise OperatorError(f"Could not read the Spark catalog: {_message(err)}",
                            hint="Check that LORE's Spark user may list the catalog's databases.") from None
    missing = [d for d in databases if d.lower() not in known]
    if missing:
        raise OperatorError(f"The Spark catalog has no database {', '.join(map(repr, missing))}.",
                            hint=f"engine.databases in lore.yaml names the catalog's databases: {', '.join(sorted(known))}.")
    schema: dict[str, dict[str, str]] = {}
    for database in [None, *(d for d in databases if d.lower() != current.lower())]:
        try:
            names = sorted(t.name for t in session.catalog.listTables(database) if "." not in t.name
                           and (database is None or not t.isTemporary))
            for name in names:
                ref = _quoted(name) if database is None else f"{_quoted(database)}.{_quoted(name)}"
                schema[name if database is None else f"{database}.{name}"] = {
                    f.name: spark_type(f.dataType.simpleString()) for f in session.table(ref).schema.fields}
        except (PySparkException, Py4JError) as err:
            raise OperatorError(f"Could not read the Spark catalog: {_message(err)}",
                                hint=f"Check that LORE's Spark user may list and read the tables of "
                                     f"{database or 'the current database'}.") from None
    if not schema:
        where = shown_remote(remote) if remote else "the local session"
        raise OperatorError(f"The Spark catalog's current database holds no tables ({where}).",
                            hint="Name a folder of Parquet tables in lore.yaml (engine.tables), written with "
                                 "`lore warehouse copy --to spark`.")
    return schema


def _from_instant(value: Any) -> Any:
    """PySpark hands an instant (``timestamp``) back as the process's local time: make it an aware UTC time."""
    return value.astimezone(timezone.utc) if isinstance(value, datetime) and value.tzinfo is None else value


def _same(value: Any) -> Any:
    return value


def _quoted(name: str) -> str:
    """A name as one Spark identifier (backquoted), whatever it holds.

    >>> _quoted("order lines"), _quoted("a`b")
    ('`order lines`', '`a``b`')
    """
    return "`" + name.replace("`", "``") + "`"


def _message(err: BaseException) -> str:
    """The first line of what went wrong (a Py4J error's Java exception, not the Py4J call that carried it)."""
    if isinstance(err, Py4JJavaError):
        try:
            return _first_line_of(str(err.java_exception.getMessage() or err.java_exception.toString()))
        except Py4JError:
            pass
    text = (err.getMessage() or str(err)) if isinstance(err, PySparkException) else str(err)
    details = re.search(r'details = "([^"]+)"', text)  # a gRPC error (Spark Connect): what the channel said
    return details.group(1) if details else (_first_line_of(text) or type(err).__name__)


def _first_line(err: BaseException) -> str:
    return _first_line_of(str(err)) or type(err).__name__


def _first_line_of(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""
