"""One planner serves many threads: plans made concurrently are exactly the sequential ones.

The planner keeps nothing about a question on itself (each question has its own Parse); this test plans many
questions from 8 threads at once, with Python's thread switching forced to be frequent, and compares every plan
with the one the same question gets alone.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

QUESTIONS = [
    "streaming hours by region in 2026",
    "streaming hours for each EMEA country in 2026",
    "top 5 titles by hours last quarter",
    "cloud cost by team and month, excluding the security org",
    "which country streamed the most hours last month?",
    "game installs by platform and month in 2025",
    "hours per account by plan",
    "list the teams in the security org",
    "cost per install by channel, 2026",
    "production budget by format for TBD slots",
    "word error rate by language in Q3 2026",
    "streaming sessions split by device, plan and month",
]


def _key(outcome: Any) -> str:
    return outcome.model_dump_json()


def test_concurrent_plans_equal_sequential_plans(demo_lore: Any) -> None:
    planner = demo_lore.planner
    expected = {q: _key(planner.plan(q)) for q in QUESTIONS}
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as Python allows
    try:
        start = threading.Barrier(8)

        def work(offset: int) -> list[tuple[str, str]]:
            start.wait()
            order = QUESTIONS[offset:] + QUESTIONS[:offset]
            return [(q, _key(planner.plan(q))) for _ in range(5) for q in order]

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = [r for batch in pool.map(work, range(8)) for r in batch]
    finally:
        sys.setswitchinterval(old)
    differing = [q for q, key in results if key != expected[q]]
    assert not differing, f"{len(differing)} of {len(results)} concurrent plans differ, e.g. {differing[:3]}"
    assert len(results) == 8 * 5 * len(QUESTIONS)
