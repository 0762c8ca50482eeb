"""A read-write DuckDB connection for *building* a warehouse (the demo generator).

Only :mod:`lore.execute` imports duckdb (here, :mod:`lore.execute.engine` and :mod:`lore.execute.copy`).
The engine opens warehouses read-only and hardened for answering questions; this
module opens a fresh file read-write so a generator can fill it with SQL. It is
still locked down: no extension is installed or loaded on the fly, Python
objects are never scanned as tables, and once the connection is open the SQL it
runs cannot read or write any file other than the database itself
(``enable_external_access=false``).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

#: The connection type handed to builders, so they need not import duckdb.
BuildConnection = duckdb.DuckDBPyConnection

#: DuckDB's error for files it cannot create, read or write (a builder reports it to the operator).
BuildIOError = duckdb.IOException


def build_config(threads: int) -> dict[str, object]:
    """The DuckDB configuration for a build connection.

    >>> cfg = build_config(2)
    >>> cfg["threads"], cfg["autoload_known_extensions"], cfg["autoinstall_known_extensions"]
    (2, False, False)
    >>> build_config(0)
    Traceback (most recent call last):
    ...
    ValueError: threads must be at least 1, got 0
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return {
        "threads": threads,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,
    }


def open_build_connection(path: Path, *, threads: int = 2) -> duckdb.DuckDBPyConnection:
    """Open (creating it if needed) a read-write DuckDB database at ``path`` for building.

    External access (files, URLs, extensions) is switched off right after opening,
    so the statements a builder runs can only touch this database. The caller
    closes the connection.
    """
    con = duckdb.connect(str(path), read_only=False, config=build_config(threads))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET enable_external_access = false")
    except duckdb.Error:
        con.close()
        raise
    return con
