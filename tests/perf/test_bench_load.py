"""The bounded load test of evals/bench/pipeline.py (issue 10), small: no errors and no lost votes."""

from __future__ import annotations

from pathlib import Path

from evals.bench.pipeline import bench_cache, cache_lines, load_test, scratch_project
from lore import Lore

QUESTIONS = ["streaming hours by region in 2026", "game installs by platform"]


def test_load_test_keeps_every_vote(demo_dir: Path, tmp_path: Path) -> None:
    copy = scratch_project(demo_dir, tmp_path)
    assert copy.is_dir() and copy != demo_dir
    with Lore.open(copy) as lore:
        run = load_test(lore, QUESTIONS, requests=12, threads=3, tag="t")
    assert (run.requests, run.threads, run.errors) == (12, 3, 0), run.error_messages
    assert run.latency.n == 12 and run.throughput_rps > 0
    assert run.votes == 12 and run.votes_found == 12
    assert run.cache_hits >= 12 - len(QUESTIONS) * 3  # at most one miss per question and thread


def test_bench_cache_reports_repeats_and_both_loads(demo_dir: Path, tmp_path: Path) -> None:
    run = bench_cache(demo_dir, QUESTIONS, repeat=2, requests=6, threads=2, scratch=tmp_path)
    assert run.error is None and run.repeat is not None
    assert run.repeat.n == 4 and run.hits == 4
    assert [load.answer_cache for load in run.loads] == [True, False]
    assert all(load.errors == 0 and load.votes_found == load.votes == 6 for load in run.loads)
    assert run.loads[1].cache_hits == 0
    assert not list(tmp_path.glob("lore-bench-load-*"))  # the throwaway copy is gone
    assert any("repeated question" in str(line) for line in cache_lines(run))
