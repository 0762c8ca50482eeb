"""The in-memory tier: a bounded LRU, safe to share between threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar

from lore.types import Frozen


#: default bounds of one Lore's answer cache

DEFAULT_MAX_ENTRIES = 512
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


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
