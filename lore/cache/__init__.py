"""The answer cache: a repeated or equivalent question skips compile, guard, execute and chart.

An entry is keyed by everything its result depends on:

- the normalised plan (:meth:`~lore.types.QueryPlan.key`: what is computed, not the words or groundings),
- the data version (the warehouse file's size and ``mtime_ns``, and its WAL's if any),
- the semantic-layer version (a content hash of its files),
- the date relative time ranges resolve against and the guard's row limits,
- the asker's access scope (a scoped ``Lore`` keys its entries with its scope's id).

The package's parts: :mod:`~lore.cache.keys` (the digests), :mod:`~lore.cache.entries` (what is held),
:mod:`~lore.cache.memory` (the LRU), :mod:`~lore.cache.disk` (the shared file) and :mod:`~lore.cache.warm`.

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


from lore.cache.disk import DISK_FILE, DISK_MIGRATIONS, DiskCache, TieredCache
from lore.cache.entries import CachedPlan, CachedResult
from lore.cache.keys import answer_key, code_version, data_version, plan_key
from lore.cache.memory import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, AnswerCache, CacheStats, DiskStats
from lore.cache.warm import WarmReport, catalog_questions, questions_from, read_questions, warm

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ENTRIES", "DISK_FILE", "DISK_MIGRATIONS", "AnswerCache", "CacheStats",
           "CachedPlan", "CachedResult", "DiskCache", "DiskStats", "TieredCache", "WarmReport", "answer_key",
           "catalog_questions", "code_version", "data_version", "plan_key", "questions_from", "read_questions", "warm"]
