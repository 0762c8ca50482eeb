"""One SQLite connection per thread and process, and short transactions on it, for LORE's stores.

The feedback store, the answer cache and the HTTP API keep state in SQLite files that many threads and worker
processes share. Each thread gets its own connection (a forked worker never reuses its parent's); a write is one
``BEGIN IMMEDIATE ... COMMIT``, a read one snapshot; a connection that failed is dropped, so the next operation
opens a fresh one, and the store's own error (``failure``) says what to do.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from lore.errors import LoreError


class LocalConnections:
    """This thread's connection to one SQLite file, opened by ``connect``; SQLite errors become ``failure(err)``.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.sqlite"
    >>> db = LocalConnections(lambda: sqlite3.connect(str(path), isolation_level=None),
    ...                       lambda err: LoreError(f"failed: {err}"))
    >>> with db.write() as conn:
    ...     _ = conn.execute("CREATE TABLE t (x)"); _ = conn.execute("INSERT INTO t VALUES (1)")
    >>> with db.read() as conn:
    ...     conn.execute("SELECT x FROM t").fetchone()[0]
    1
    >>> db.close()
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 failure: Callable[[BaseException], LoreError]) -> None:
        self._open = connect
        self._failure = failure
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = self._open()
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def drop(self, conn: sqlite3.Connection) -> None:
        """Forget a connection that failed: the next operation opens a fresh one."""
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with suppress(sqlite3.Error):
            conn.close()

    def close(self) -> None:
        """Close this thread's connection (other threads' close with them)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            with suppress(sqlite3.Error):
                conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE ... COMMIT); it is durable when the block exits."""
        conn = self.get()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as err:
            with suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                self.drop(conn)
                raise self._failure(err) from err
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every SELECT in the block sees the same snapshot."""
        conn = self.get()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                with suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("COMMIT")
        except sqlite3.Error as err:
            self.drop(conn)
            raise self._failure(err) from err
