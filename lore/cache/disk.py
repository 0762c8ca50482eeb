"""The disk tier: shared by every process of a project (SQLite in WAL mode, bounded by size)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from lore.cache.entries import CachedPlan, CachedResult
from lore.cache.memory import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, AnswerCache, CacheStats, DiskStats
from lore.llm.log import migrate

DISK_FILE = "answers.sqlite"

log = logging.getLogger("lore.cache")


# --- the disk tier: shared by every process of a project -------------------------------------------
# Each migration is a named function, applied once (see lore/llm/log.py). Never edit one that has shipped.


def m001_create_entries(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE entries (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_used REAL NOT NULL,
            bytes INTEGER NOT NULL,
            PRIMARY KEY (kind, key)
        )"""
    )
    db.execute("CREATE INDEX entries_last_used ON entries (last_used)")


def m002_index_bytes(db: sqlite3.Connection) -> None:
    # every write sums the rows' bytes (the bound): from this index, not by reading every row's value
    db.execute("CREATE INDEX entries_bytes ON entries (bytes)")


#: the rows' bytes, summed on every write (read from the entries_bytes index)
TOTAL_BYTES_SQL = "SELECT COALESCE(SUM(bytes), 0) FROM entries"

DISK_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (m001_create_entries, m002_index_bytes)


class DiskCache:
    """The answer cache's second tier: ``kind, key -> JSON`` rows in one SQLite file, bounded by bytes (LRU).

    Several processes may share the file (WAL mode, a busy timeout). Each instance keeps one connection,
    used under a lock (a connection per call would make every close the last one, and SQLite then
    checkpoints and syncs the log: tens of milliseconds a call). Every failure is contained: a busy
    database skips the read or write; a corrupt, unreadable or unwritable file turns the tier off for
    this instance, logged once, and the caller serves from memory.

    >>> import tempfile
    >>> disk = DiskCache(Path(tempfile.mkdtemp()) / "answers.sqlite", max_bytes=10_000)
    >>> disk.put("result", "k1", '{"a": 1}'), disk.get("result", "k1"), disk.get("plan", "k1")
    (True, '{"a": 1}', None)
    >>> disk.stats().results, disk.clear(), disk.stats().entries
    (1, 1, 0)
    >>> disk.close()
    """

    def __init__(self, path: Path, *, max_bytes: int, timeout_s: float = 2.0) -> None:
        if max_bytes < 1:
            raise ValueError("the disk tier needs room for at least one byte")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._error: str | None = None
        self._hits = 0

    # --- the connection and failures ------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _conn(self) -> sqlite3.Connection | None:
        """The migrated connection (opened on first use), or None when the tier is off. Call under the lock."""
        if self._error is not None:
            return None
        if self._db is not None and self._pid != os.getpid():
            self._db = None  # a forked child never uses its parent's connection
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = self._connect()
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    migrate(db, DISK_MIGRATIONS)
                except BaseException:
                    db.close()
                    raise
            except (sqlite3.Error, OSError) as err:
                self._fail(err)
                return None
            self._db, self._pid = db, os.getpid()
        return self._db

    def _fail(self, err: BaseException) -> None:
        """Busy: skip this call. Anything else (corrupt, read-only, missing folder): the tier is off, logged once."""
        if isinstance(err, sqlite3.OperationalError) and "locked" in str(err).lower():
            log.warning("answer cache file %s is busy; this call skipped it: %s", self.path, err)
            return
        if self._error is None:
            self._error = f"{type(err).__name__}: {err}"
            log.warning("answer cache file %s is unusable (%s); answers are cached in memory only. "
                        "`lore cache clear` removes a corrupt file; LORE_ANSWER_CACHE_DISK_MB=0 turns the file off.",
                        self.path, self._error)
        self.close()

    @property
    def error(self) -> str | None:
        """Why the tier is off in this instance, or None."""
        return self._error

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                try:
                    db.close()
                except sqlite3.Error:
                    pass

    # --- reading and writing ------------------------------------------------------------------
    def get(self, kind: str, key: str) -> str | None:
        """The stored JSON text, or None (a miss, or the tier is off); a hit becomes the most recently used."""
        with self._lock:
            db = self._conn()
            if db is None:
                return None
            try:
                row = db.execute("SELECT value FROM entries WHERE kind = ? AND key = ?", (kind, key)).fetchone()
                if row is None:
                    return None
                db.execute("UPDATE entries SET last_used = ? WHERE kind = ? AND key = ?", (time.time(), kind, key))
            except sqlite3.Error as err:
                self._fail(err)
                return None
            self._hits += 1
            return str(row[0])

    def put(self, kind: str, key: str, value: str) -> bool:
        """Store ``value``, then drop the least recently used rows past the byte bound; False if not stored."""
        size = len(value.encode("utf-8"))
        if size > self.max_bytes:
            return False
        with self._lock:
            db = self._conn()
            if db is None:
                return False
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute("INSERT OR REPLACE INTO entries (kind, key, value, created_at, last_used, bytes) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (kind, key, value, _now(), time.time(), size))
                    _evict(db, self.max_bytes)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                self._fail(err)
                return False
            return True

    def discard(self, kind: str, key: str) -> None:
        """Forget one row (one that no longer reads back)."""
        with self._lock:
            db = self._conn()
            if db is None:
                return
            try:
                db.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key))
            except sqlite3.Error as err:
                self._fail(err)

    def clear(self) -> int:
        """Delete every row (a corrupt file is removed instead); returns the rows deleted. Raises what it cannot fix."""
        with self._lock:
            self.close()
            self._error = None
            if not self.path.exists():
                return 0
            try:
                with closing(self._connect()) as db:
                    n = int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
                    db.execute("DELETE FROM entries")
                    db.execute("VACUUM")
                    return n
            except sqlite3.OperationalError as err:
                if "no such table" in str(err):
                    return 0
                raise
            except sqlite3.DatabaseError:  # not a database: remove the file and its journals
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                return 0

    def stats(self) -> DiskStats:
        counts: dict[str, int] = {}
        total = 0
        with self._lock:
            db = self._conn()
            if db is not None:
                try:
                    for kind, n, size in db.execute(
                            "SELECT kind, COUNT(*), COALESCE(SUM(bytes), 0) FROM entries GROUP BY kind"):
                        counts[str(kind)] = int(n)
                        total += int(size)
                except sqlite3.Error as err:
                    self._fail(err)
            return DiskStats(path=str(self.path), entries=sum(counts.values()), results=counts.get("result", 0),
                             plans=counts.get("plan", 0), bytes=total, max_bytes=self.max_bytes, hits=self._hits,
                             error=self._error)


def _evict(db: sqlite3.Connection, max_bytes: int) -> int:
    """Delete the least recently used rows until the rows' bytes fit ``max_bytes``; returns how many went."""
    total = int(db.execute(TOTAL_BYTES_SQL).fetchone()[0])
    dropped = 0
    if total <= max_bytes:
        return 0
    for kind, key, size in db.execute("SELECT kind, key, bytes FROM entries ORDER BY last_used").fetchall():
        if total <= max_bytes:
            break
        db.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key))
        total -= int(size)
        dropped += 1
    return dropped


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


S = TypeVar("S", CachedResult, CachedPlan)


class TieredCache(AnswerCache[S]):
    """The in-memory LRU in front of the shared :class:`DiskCache`: a miss in memory reads the disk (a hit
    there is kept in memory), a store writes through. ``kind`` names its rows ("result" or "plan")."""

    def __init__(self, disk: DiskCache, kind: str, model: type[S], max_entries: int = DEFAULT_MAX_ENTRIES,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(max_entries=max_entries, max_bytes=max_bytes)
        self.disk = disk
        self.kind = kind
        self.model = model

    def get(self, key: str) -> S | None:
        found = super().get(key)
        if found is not None:
            return found
        text = self.disk.get(self.kind, key)
        if text is None:
            return None
        try:
            value = self.model.model_validate_json(text)
        except ValueError as err:  # written by another version of LORE, or damaged: a miss, and forgotten
            log.warning("answer cache row %s… does not read back (%s); dropped", key[:12], str(err).splitlines()[0])
            self.disk.discard(self.kind, key)
            return None
        super().put(key, value)
        with self._lock:  # counted as a hit, not a miss
            self._misses -= 1
            self._hits += 1
        return value

    def put(self, key: str, value: S) -> bool:
        stored = super().put(key, value)
        if not isinstance(value, CachedResult) or value.persistable():
            self.disk.put(self.kind, key, value.model_dump_json())
        return stored

    def stats(self) -> CacheStats:
        return super().stats().model_copy(update={"disk": self.disk.stats()})
