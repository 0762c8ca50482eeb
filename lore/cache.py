"""The answer cache: a repeated or equivalent question skips compile, guard, execute and chart.

An entry is keyed by everything its result depends on:

- the normalised plan (:meth:`~lore.types.QueryPlan.key`: what is computed, not the words or groundings),
- the data version (the warehouse file's size and ``mtime_ns``, and its WAL's if any),
- the semantic-layer version (a content hash of its files),
- the date relative time ranges resolve against and the guard's row limits,
- an access scope, when the caller passes one (``Lore.cache_key(plan, scope=...)``; the pipeline has no
  per-user scopes yet, so it passes none).

It holds the compiled and guarded SQL, the result and the chart, never an answer id: every answer
keeps its own id, confidence and reasoning and is still recorded for feedback. The chart is reused
only when the chart request (labels, title phrases, sort) is the same; otherwise it is rebuilt from
the cached result. The cache is a bounded LRU (entries and approximate bytes), safe to share
between threads, one per :class:`~lore.core.Lore`.

A second tier on disk, :class:`DiskCache` (``PROJECT/.lore/answers.sqlite``: SQLite in WAL mode, built by
named migrations), is shared by every process of the project (the chat page, the Slack bot, ``lore cache
warm``): a miss in memory reads it, a store writes through to it, and it is bounded by size (least recently
used rows go first; ``answer_cache_disk_mb``, 0 turns it off). Its keys are the same digests, so an entry
for another data or layer version, another day, other limits or another access scope is never served. A
corrupt or unwritable file never fails or loses an answer: it is logged once and the process serves
from memory alone (``lore cache clear`` removes a corrupt file).

A second LRU, the plan memo (:class:`CachedPlan`, :func:`plan_key`), remembers what retrieval and
planning made of a question's exact words in the same context (previous plan, data, layer, today,
planner, verified-examples revision), so a repeated question also skips retrieve and plan. The
feedback penalty is still checked on every answer.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from lore.chart import ChartRequest
from lore.types import ChartSpec, CompiledQuery, Frozen, GuardedSQL, PlanOutcome, QueryPlan, ResultSet, RetrievalResult

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.semantic.spec import SemanticLayer

#: default bounds of one Lore's answer cache
DEFAULT_MAX_ENTRIES = 512
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: the disk tier's file inside the project's state folder (.lore/)
DISK_FILE = "answers.sqlite"

log = logging.getLogger("lore.cache")


def data_version(warehouse: Path) -> str:
    """A stamp of the warehouse file: its size and modification time (and its write-ahead log's, if any).

    Writing to the warehouse (or touching it) changes the stamp. A missing file has the stamp ``"missing"``.
    """
    parts = []
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        try:
            st = path.stat()
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "missing" if parts[0] == "-" else "|".join(parts)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A stamp of LORE's own code (every module's path, size and modification time): cached plans and results
    from another version of the planner or compiler are never served (the shared file outlives upgrades)."""
    root = Path(__file__).resolve().parent
    stamp = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        try:
            info = path.stat()
        except OSError:
            continue
        stamp.update(f"{path.relative_to(root)}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return stamp.hexdigest()[:16]


def answer_key(plan_key: str, *, data: str, layer: str, today: date, limits: tuple[int, ...] = (),
               scope: str | None = None) -> str:
    """The cache key of a plan's result: a digest of the plan's key and every version it depends on.

    >>> k = answer_key('{"metrics": ["m"]}', data="10:1", layer="v1", today=date(2026, 1, 5))
    >>> k == answer_key('{"metrics": ["m"]}', data="10:1", layer="v1", today=date(2026, 1, 5))
    True
    >>> k == answer_key('{"metrics": ["m"]}', data="10:2", layer="v1", today=date(2026, 1, 5))
    False
    >>> k == answer_key('{"metrics": ["m"]}', data="10:1", layer="v2", today=date(2026, 1, 5))
    False
    >>> k == answer_key('{"metrics": ["m"]}', data="10:1", layer="v1", today=date(2026, 1, 5), scope="emea")
    False
    """
    text = "\x1f".join((plan_key, data, layer, today.isoformat(), ",".join(map(str, limits)), scope or "",
                        code_version()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedResult(Frozen):
    """What a plan computed: its SQL (compiled and guarded), its result and the chart drawn for ``request``."""

    compiled: CompiledQuery
    guarded: GuardedSQL
    result: ResultSet
    request: ChartRequest
    #: the chart as JSON text (a fresh copy of its Vega-Lite dict per hit), or None when there was none
    chart_json: str | None = None

    def chart(self) -> ChartSpec | None:
        return ChartSpec.model_validate_json(self.chart_json) if self.chart_json is not None else None

    def approx_bytes(self) -> int:
        """The entry's approximate size: its JSON text (rows and chart dominate)."""
        return len(self.result.model_dump_json()) + len(self.chart_json or "") + len(self.compiled.sql) * 2 + 512

    def persistable(self) -> bool:
        """Whether its JSON reads back equal: not with NaN or infinity in the rows (JSON has neither)."""
        return not any(isinstance(v, float) and not math.isfinite(v) for row in self.result.rows for v in row)


class CachedPlan(Frozen):
    """What retrieval and planning made of one question (the plan memo: a repeated question skips both)."""

    outcome: PlanOutcome
    #: the retrieve stage's result the outcome was planned from (shown again by ``--explain``)
    retrieval: RetrievalResult | None = None

    def approx_bytes(self) -> int:
        return len(self.model_dump_json()) + 256


def plan_key(question: str, previous: QueryPlan | None, *, data: str, layer: str, today: date, planner: str,
             examples: int) -> str:
    """The plan memo's key: the question's exact words (spaces collapsed), the exact previous plan, every version.

    ``examples`` is the revision of the verified examples the index holds (they can change a plan).

    >>> k = plan_key("hours  by region", None, data="1", layer="v", today=date(2026, 1, 1), planner="offline", examples=0)
    >>> k == plan_key("hours by region", None, data="1", layer="v", today=date(2026, 1, 1), planner="offline", examples=0)
    True
    >>> k == plan_key("hours by region", None, data="1", layer="v", today=date(2026, 1, 1), planner="offline", examples=1)
    False
    """
    text = "\x1f".join((" ".join(question.split()), previous.model_dump_json() if previous is not None else "", data, layer,
                        today.isoformat(), planner, str(examples), code_version()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DiskStats(Frozen):
    """The disk tier: its file, rows (results and plans), bytes and bound, and whether it works here."""

    path: str
    entries: int = 0
    results: int = 0
    plans: int = 0
    bytes: int = 0
    max_bytes: int
    #: hits served from disk by this process (then held in memory)
    hits: int = 0
    #: why the tier is off in this process (a corrupt or unwritable file), None when it works
    error: str | None = None


class CacheStats(Frozen):
    hits: int
    misses: int
    entries: int
    bytes: int
    max_entries: int
    max_bytes: int
    #: the shared tier on disk, None when it is off
    disk: DiskStats | None = None


class _Sized(Protocol):
    def approx_bytes(self) -> int: ...


V = TypeVar("V", bound=_Sized)


class AnswerCache(Generic[V]):
    """A thread-safe LRU (of :class:`CachedResult` or :class:`CachedPlan`), bounded by entries and approximate bytes.

    >>> cache = AnswerCache(max_entries=2)
    >>> cache.get("a") is None
    True
    >>> cache.stats().misses
    1
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("the answer cache needs room for at least one entry and one byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0

    def get(self, key: str) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return found[0]

    def put(self, key: str, value: V) -> bool:
        """Store ``value`` (most recently used); False when it alone is larger than the byte bound."""
        size = value.approx_bytes()
        if size > self.max_bytes:
            return False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(hits=self._hits, misses=self._misses, entries=len(self._entries), bytes=self._bytes,
                              max_entries=self.max_entries, max_bytes=self.max_bytes)


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


DISK_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (m001_create_entries,)


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
            from lore.llm.log import migrate

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
    total = int(db.execute("SELECT COALESCE(SUM(bytes), 0) FROM entries").fetchone()[0])
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


# --- warming: the nightly pre-cache idea ----------------------------------------------


class WarmReport(Frozen):
    """What ``lore cache warm`` did: questions asked, how they ended, and how long it took."""

    questions: int
    answered: int
    cached: int
    not_answered: tuple[str, ...] = ()
    warm_up_s: dict[str, float] = {}
    seconds: float
    stats: CacheStats | None = None


def read_questions(path: Path) -> list[str]:
    """Questions from a YAML file: a list, or a mapping with a ``questions`` list; items are strings or
    mappings with a ``question`` (the format of ``evals/bench/questions.yaml``)."""
    import yaml

    from lore.errors import OperatorError

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise OperatorError(f"Cannot read the questions file {path}: {err}",
                            hint="Pass a YAML list of questions with --questions.") from None
    return questions_from(data, source=str(path))


def questions_from(data: object, *, source: str = "questions") -> list[str]:
    """The question texts of parsed YAML.

    >>> questions_from({"questions": ["a", {"question": "b", "domain": "x"}]})
    ['a', 'b']
    >>> questions_from(["a", "a", " "])
    ['a']
    """
    from lore.errors import OperatorError

    items = data.get("questions") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise OperatorError(f"{source} holds no list of questions", hint="Use `questions: [...]` or a plain list.")
    out: list[str] = []
    for item in items:
        text = item.get("question") if isinstance(item, dict) else item
        if isinstance(text, str) and text.strip() and text.strip() not in out:
            out.append(text.strip())
    return out


def catalog_questions(layer: SemanticLayer) -> list[str]:
    """One question per metric (its label, else its name in words): the default warm set without a file."""
    return [(m.label or m.name.replace("_", " ")) for m in layer.metrics.values()]


def warm(lore: Lore, questions: Sequence[str], *, progress: Callable[[int, int, str], None] | None = None) -> WarmReport:
    """Open everything (:meth:`Lore.warm_up`) and answer ``questions`` so their results fill the answer cache.

    With the disk tier on (the default), the results and plans are also in ``.lore/answers.sqlite``, so
    every process of the project started later answers these questions from the cache.
    """
    started = time.perf_counter()
    took = lore.warm_up()
    answered = cached = 0
    missed: list[str] = []
    for i, question in enumerate(questions, 1):
        answer = lore.ask(question, user="lore-cache-warm")
        if answer.status == "answered":
            answered += 1
            cached += bool(answer.trace and answer.trace.cache_hit)
        else:
            missed.append(question)
        if progress is not None:
            progress(i, len(questions), question)
    cache = lore.answer_cache
    return WarmReport(questions=len(questions), answered=answered, cached=cached, not_answered=tuple(missed),
                      warm_up_s=took, seconds=round(time.perf_counter() - started, 3),
                      stats=cache.stats() if cache is not None else None)
