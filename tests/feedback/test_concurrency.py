"""Nothing acknowledged is ever lost: concurrent writers, and writers killed with SIGKILL mid-stream."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feedback.store import FeedbackStore

from feedback_fixtures import make_answer

WRITER = Path(__file__).with_name("vote_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def _spawn(db: Path, prefix: str, count: int, acks: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, str(WRITER), str(db), "a1", prefix, str(count), str(acks)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _acked(acks: Path) -> set[str]:
    if not acks.exists():
        return set()
    text = acks.read_text(encoding="utf-8")
    return {line for line in text.split("\n")[:-1] if line}  # only whole lines: written after the commit


def _raw_keys(db: Path) -> list[str]:
    """The idempotency keys in the file, read with plain sqlite3 (not through the store)."""
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT idempotency_key FROM events WHERE kind = 'vote'")]
    finally:
        con.close()


def test_four_processes_500_votes_each_none_lost(fast_dir: Path) -> None:
    db = fast_dir / "feedback.sqlite"
    store = FeedbackStore(db)
    store.record_answer(make_answer("a1"))
    procs = [(_spawn(db, f"w{n}", 500, fast_dir / f"acks{n}.txt"), n) for n in range(4)]
    for proc, n in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    acked = set().union(*(_acked(fast_dir / f"acks{n}.txt") for n in range(4)))
    keys = _raw_keys(db)
    assert len(acked) == 2000
    assert len(keys) == 2000 == len(set(keys))
    assert set(keys) == acked
    assert store.integrity_check() == "ok"
    # every user's latest vote counts once: 4 writers x 11 users
    nomination = store.nomination(store.nominations("pending")[0].id)
    assert len(nomination.up_users) + len(nomination.down_users) == 44


def test_writers_killed_with_sigkill_lose_no_acknowledged_vote(tmp_path: Path) -> None:
    db = tmp_path / "feedback.sqlite"
    store = FeedbackStore(db)
    store.record_answer(make_answer("a1"))
    rng = random.Random(20261101)
    acked: set[str] = set()
    killed = 0
    for round_ in range(2):
        procs = {n: _spawn(db, f"r{round_}w{n}", 1_000_000, tmp_path / f"acks{round_}-{n}.txt") for n in range(4)}
        # once they write, kill each at a random moment (some mid-transaction)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(_acked(tmp_path / f"acks{round_}-{n}.txt") for n in procs):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.2, 0.8))
        for n, proc in procs.items():
            time.sleep(rng.uniform(0.05, 0.3))
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL
            killed += 1
        for n in procs:
            acked |= _acked(tmp_path / f"acks{round_}-{n}.txt")
    stored = set(_raw_keys(db))
    assert killed == 8
    assert acked, "the writers acknowledged nothing before they were killed"
    assert acked <= stored, f"acknowledged votes missing: {sorted(acked - stored)[:5]}"
    assert len(stored) - len(acked) <= 8  # at most one committed-but-unreported vote per killed writer
    assert store.integrity_check() == "ok"
    # and the store still takes writes after the kills
    vote = store.vote("a1", 1, user="after", idempotency_key="after-kill")
    assert vote.duplicate is False and "after-kill" in store.event_keys()


@pytest.mark.parametrize("workers", [2])
def test_idempotent_retries_from_several_processes(fast_dir: Path, workers: int) -> None:
    """Two processes retry the same keys (a Slack retry racing the first delivery): each vote is stored once."""
    db = fast_dir / "feedback.sqlite"
    store = FeedbackStore(db)
    store.record_answer(make_answer("a1"))
    procs = [_spawn(db, "same", 100, fast_dir / f"acks{n}.txt") for n in range(workers)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    keys = _raw_keys(db)
    assert len(keys) == 100 == len(set(keys))
