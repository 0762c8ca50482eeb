"""The answer cache (issue 10, lore/cache/): correct hits, invalidation, bounds and threads. No timing assertions."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from lore import Lore
from lore.cache import AnswerCache, CachedResult, answer_key, data_version
from lore.chart import ChartRequest
from lore.guard import GuardedSQL
from lore.types import Answer, ColumnMeta, CompiledQuery, ResultSet
from lore.pipeline.memo import answer_cache_key

QUESTION = "streaming hours by region in 2026"
#: the same plan in other words (checked below through the plans' keys)
PARAPHRASE = "total streaming hours per region for 2026"


def stages(answer: Answer) -> list[str]:
    assert answer.trace is not None
    return [t.stage for t in answer.trace.timings]


def comparable(answer: Answer) -> dict:
    """What an answer says, without what differs per answer (id, time, conversation, the query's run time).

    A cache hit's reasoning says so in one more, last step; that step is dropped here and checked by the tests.
    """
    data = answer.to_json()
    for field in ("id", "created_at", "conversation_id"):
        data.pop(field)
    steps = [re.sub(r"ran in \d+ ms", "ran in N ms", step) for step in data["reasoning"]]
    data["reasoning"] = [s for s in steps if not s.startswith("This result was reused from the answer cache")]
    return rounded(data)


def rounded(value: Any) -> Any:
    """Floats to 9 significant digits: DuckDB's parallel sums may differ in the last bits from run to run.

    >>> rounded({"a": [0.1 + 0.2, "x"]})
    {'a': [0.3, 'x']}
    """
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


@pytest.fixture(scope="module")
def base_project(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's demo project with its index built once (Lore.warm_up) for this module."""
    folder = tmp_path_factory.mktemp("perf") / "project"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns("answers.sqlite*"))  # no other test's cache file
    with Lore.open(folder) as lore:
        took = lore.warm_up()
    assert {"engine", "layer", "retriever", "planner", "query"} <= set(took)
    return folder


@pytest.fixture()
def project(base_project: Path, tmp_path: Path) -> Path:
    """A private copy per test (these tests touch the warehouse and the layer)."""
    folder = tmp_path / "project"
    shutil.copytree(base_project, folder)
    return folder


@pytest.fixture()
def lore(project: Path) -> Iterator[Lore]:
    with Lore.open(project) as opened:
        yield opened


def test_a_repeated_question_is_answered_from_the_cache(lore: Lore) -> None:
    first = lore.ask(QUESTION, user="ana")
    second = lore.ask(QUESTION, user="ana")
    assert first.status == second.status == "answered"
    assert first.trace is not None and second.trace is not None
    assert not first.trace.cache_hit and second.trace.cache_hit
    assert "execute" in stages(first) and "compile" in stages(first)
    assert "cache" in stages(second)
    assert not {"compile", "guard", "execute", "chart"} & set(stages(second))
    assert second.trace.plan_cache_hit and not first.trace.plan_cache_hit  # retrieve and plan were skipped too
    assert second.trace.retrieved == first.trace.retrieved
    assert first.id != second.id  # every answer keeps its own id (feedback points at it)
    assert second.reasoning[-1].startswith("This result was reused from the answer cache")
    assert comparable(first) == comparable(second)
    stats = lore.answer_cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)


def test_an_equivalent_paraphrase_hits(lore: Lore) -> None:
    first = lore.ask(QUESTION)
    other = lore.ask(PARAPHRASE)
    assert first.plan is not None and other.plan is not None
    assert first.plan.key() == other.plan.key()
    assert other.trace is not None and other.trace.cache_hit
    assert not other.trace.plan_cache_hit  # other words: retrieved and planned anew, then the same result
    assert other.rows == first.rows and other.sql == first.sql and other.columns == first.columns  # the same entry


def test_cached_answers_equal_uncached_ones(lore: Lore, project: Path) -> None:
    questions = ["streaming hours by region in 2026", "top 5 titles by hours last quarter",
                 "game installs by platform", "cloud cost by service by month"]
    with Lore.open(project, answer_cache=False) as plain:
        assert plain.answer_cache is None
        for q in questions:
            lore.ask(q)
            cached = lore.ask(q)
            uncached = plain.ask(q)
            assert cached.trace is not None and cached.trace.cache_hit, q
            assert uncached.trace is not None and not uncached.trace.cache_hit
            assert comparable(cached) == comparable(uncached), q


def test_changing_the_data_invalidates(lore: Lore, project: Path) -> None:
    lore.ask(QUESTION)
    warehouse = lore.project.warehouse_path
    before = data_version(warehouse)
    st = warehouse.stat()
    os.utime(warehouse, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a new mtime, as a load job leaves
    assert data_version(warehouse) != before
    again = lore.ask(QUESTION)
    assert again.trace is not None and not again.trace.cache_hit
    assert "execute" in stages(again)
    assert lore.ask(QUESTION).trace.cache_hit  # cached again under the new version


def test_changing_the_layer_invalidates(lore: Lore, project: Path) -> None:
    """A server that reopens the project after the layer changed keeps its cache: old entries must not match."""
    first = lore.ask(QUESTION)
    files = sorted(p for p in lore.project.semantic_path.rglob("*.y*ml"))
    assert files
    files[0].write_text(files[0].read_text(encoding="utf-8") + "\n# edited by a metric owner\n", encoding="utf-8")
    cache = lore.answer_cache
    lore.close()
    with Lore.open(project) as reopened:
        reopened.parts.answer_cache = cache  # one cache across the reload
        assert reopened.layer.version != lore.layer.version
        assert first.plan is not None and answer_cache_key(reopened, first.plan) != answer_cache_key(lore, first.plan)
        again = reopened.ask(QUESTION)
        assert again.trace is not None and not again.trace.cache_hit
        assert rounded(again.rows) == rounded(first.rows)
        assert reopened.ask(QUESTION).trace.cache_hit


def test_the_key_ignores_groundings_and_names_every_version(lore: Lore) -> None:
    answer = lore.ask(QUESTION)
    assert answer.plan is not None
    plan = answer.plan
    bare = plan.model_copy(update={"groundings": (), "notes": ("another note",), "planner": "example"})
    assert answer_cache_key(lore, plan) == answer_cache_key(lore, bare)
    assert answer_cache_key(lore, plan) != answer_cache_key(lore, plan.model_copy(update={"limit": 3}))
    day = date(2026, 11, 1)
    # an access scope gets its own entries
    assert answer_key("p", data="1:2", layer="v", today=day) != answer_key("p", data="1:2", layer="v", today=day, scope="emea")
    assert answer_key("p", data="1:2", layer="v", today=day) != answer_key("p", data="1:2", layer="v", today=date(2026, 11, 2))
    assert answer_key("p", data="1:2", layer="v", today=day) != answer_key("p", data="1:2", layer="v", today=day,
                                                                           limits=(5, 10))


def test_errors_and_clarifications_are_not_cached(lore: Lore) -> None:
    a = lore.ask("what is the meaning of life")
    assert a.status != "answered"
    assert lore.answer_cache.stats().entries == 0


# --- the LRU itself ---------------------------------------------------------------------------


def entry(n: int, rows: int = 1) -> CachedResult:
    cols = (ColumnMeta(name="x", label="X", kind="metric"),)
    return CachedResult(
        compiled=CompiledQuery(sql=f"SELECT {n}"),
        guarded=GuardedSQL(sql=f"SELECT {n} LIMIT 1000", tables=(), limit=1000),
        result=ResultSet(columns=cols, rows=tuple((n,) for _ in range(rows))),
        request=ChartRequest(metric_labels=("X",)),
    )


def test_lru_drops_the_least_recently_used_entry() -> None:
    cache = AnswerCache(max_entries=3)
    for n in range(3):
        cache.put(f"k{n}", entry(n))
    assert cache.get("k0") is not None  # k0 is now the most recently used
    cache.put("k3", entry(3))
    assert len(cache) == 3
    assert "k1" not in cache and "k0" in cache and "k3" in cache


def test_lru_keeps_under_its_byte_bound() -> None:
    big = entry(1, rows=2_000)
    size = big.approx_bytes()
    cache = AnswerCache(max_entries=100, max_bytes=int(size * 2.5))
    for n in range(5):
        assert cache.put(f"k{n}", entry(n, rows=2_000))
        assert cache.stats().bytes <= cache.max_bytes
    assert len(cache) == 2 and "k4" in cache and "k3" in cache
    assert not AnswerCache(max_entries=10, max_bytes=size // 2).put("huge", big)  # never stored past its bound


def test_cache_is_safe_across_threads() -> None:
    cache = AnswerCache(max_entries=16)
    values = [entry(n) for n in range(64)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(400):
                n = (i * 7 + offset) % 64
                cache.put(f"k{n}", values[n])
                got = cache.get(f"k{(n + 1) % 64}")
                assert got is None or got is values[(n + 1) % 64]
                assert len(cache) <= 16
        except BaseException as err:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stats = cache.stats()
    assert stats.hits + stats.misses == 4 * 400
    assert stats.entries <= 16
    assert stats.bytes == sum(cache.get(f"k{n}").approx_bytes() for n in range(64) if f"k{n}" in cache)


def test_one_lore_answers_from_several_threads(lore: Lore) -> None:
    questions = ["streaming hours by region in 2026", "game installs by platform", "cloud cost by service by month"]
    expected = {q: comparable(lore.ask(q)) for q in questions}
    lore.answer_cache.clear()
    results: list[tuple[str, dict]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        try:
            for i in range(6):
                q = questions[(i + k) % len(questions)]
                got = comparable(lore.ask(q, user=f"user{k}"))
                with lock:
                    results.append((q, got))
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 18
    for q, got in results:
        got.pop("user")
        want = dict(expected[q])
        want.pop("user")
        assert got == want, q
    assert lore.answer_cache.stats().hits >= 18 - 3 * len(questions)


def test_the_plan_memo_keeps_follow_ups_apart(lore: Lore) -> None:
    """The same words after a different previous answer are planned anew (a follow-up depends on its context)."""
    chat = lore.chat()
    chat.ask(QUESTION)
    follow = chat.ask("by month")
    other = lore.chat()
    other.ask("game installs by platform")
    again = other.ask("by month")
    assert follow.trace is not None and again.trace is not None
    assert not again.trace.plan_cache_hit
    assert again.plan != follow.plan or again.status != "answered"
    repeat = lore.chat()
    repeat.ask(QUESTION)
    same = repeat.ask("by month")
    assert same.trace is not None and same.trace.plan_cache_hit
    assert comparable(same)["plan"] == comparable(follow)["plan"]
