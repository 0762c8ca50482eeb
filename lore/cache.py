"""The answer cache (issue 10): a repeated or equivalent question skips compile, guard, execute and chart.

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
between threads. It lives in memory, one per :class:`~lore.core.Lore`.

A second LRU, the plan memo (:class:`CachedPlan`, :func:`plan_key`), remembers what retrieval and
planning made of a question's exact words in the same context (previous plan, data, layer, today,
planner, verified-examples revision), so a repeated question also skips retrieve and plan. The
feedback penalty is still checked on every answer.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from lore.chart import ChartRequest
from lore.guard import GuardedSQL
from lore.types import ChartSpec, CompiledQuery, Frozen, PlanOutcome, QueryPlan, ResultSet

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.semantic.spec import SemanticLayer

#: default bounds of one Lore's answer cache
DEFAULT_MAX_ENTRIES = 512
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


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
    text = "\x1f".join((plan_key, data, layer, today.isoformat(), ",".join(map(str, limits)), scope or ""))
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


class CachedPlan(Frozen):
    """What retrieval and planning made of one question (the plan memo: a repeated question skips both)."""

    outcome: PlanOutcome
    retrieved: tuple[dict[str, Any], ...] = ()

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
                        today.isoformat(), planner, str(examples)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CacheStats(Frozen):
    hits: int
    misses: int
    entries: int
    bytes: int
    max_entries: int
    max_bytes: int


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


# --- warming (issue 10): the nightly pre-cache idea ----------------------------------------------


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
    """Open everything (:meth:`Lore.warm_up`) and answer ``questions`` so their results fill the answer cache."""
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
