"""Every LLM exchange, logged to SQLite through named migrations (in the style of simonw/llm).

The log lives in ``PROJECT/.lore/llm.sqlite`` (WAL mode, so ``lore logs`` can
read while a chat is writing). The schema is built by a tuple of *named
migrations*: each is a small function applied once, in order, and recorded in
the ``migrations`` table; opening the log again applies only the new ones.

One row per call to a model: the prompt (the messages, as JSON), the response
text, the model, the latency, tokens in and out, and the outcome:

- ``ok``: the reply parsed into a plan (or a clarify / sql answer);
- ``invalid``: the reply was malformed or failed a check, and went back to the model;
- ``refused``: the model declined the question;
- ``timeout``: the call timed out;
- ``error``: the call failed (unreachable server, rejected request).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

Outcome = Literal["ok", "invalid", "error", "timeout", "refused"]
OUTCOMES: tuple[str, ...] = ("ok", "invalid", "error", "timeout", "refused")

#: the log's file name inside the project's state folder
LOG_FILE = "llm.sqlite"


class Exchange(BaseModel):
    """One call to a model and what came of it."""

    model_config = ConfigDict(frozen=True)

    model: str
    #: the messages sent, as [{"role": ..., "content": ...}]
    prompt: tuple[dict[str, str], ...]
    response: str = ""
    outcome: Outcome = "ok"
    latency_ms: float = 0.0
    tokens_in: int | None = None
    tokens_out: int | None = None
    question: str = ""
    answer_id: str | None = None
    #: why the outcome is not ok (the check that failed, the error's message)
    error: str | None = None
    #: 1 for the first call of a question, 2.. for self-corrections
    attempt: int = 1
    #: the prompt template and version, e.g. "plan_v1"
    prompt_version: str | None = None
    #: how the JSON was requested (json_schema, response_format, json_object, prompt)
    structured: str | None = None
    created_at: str = ""
    id: int | None = None


# --- migrations ----------------------------------------------------------------------------------
# Each migration is a named function, applied once. Never edit one that has shipped: add a new one.


def m001_create_exchanges(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE exchanges (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt TEXT NOT NULL,
            response TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL,
            latency_ms REAL,
            tokens_in INTEGER,
            tokens_out INTEGER,
            question TEXT NOT NULL DEFAULT '',
            answer_id TEXT,
            error TEXT
        )"""
    )


def m002_attempt_and_prompt_version(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE exchanges ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE exchanges ADD COLUMN prompt_version TEXT")
    db.execute("ALTER TABLE exchanges ADD COLUMN structured TEXT")


def m003_indexes(db: sqlite3.Connection) -> None:
    db.execute("CREATE INDEX exchanges_created ON exchanges (created_at)")
    db.execute("CREATE INDEX exchanges_answer ON exchanges (answer_id)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    m001_create_exchanges,
    m002_attempt_and_prompt_version,
    m003_indexes,
)


def migrate(db: sqlite3.Connection, migrations: Sequence[Callable[[sqlite3.Connection], None]] = MIGRATIONS) -> list[str]:
    """Apply the migrations not applied yet, each in its own transaction; return their names.

    >>> db = sqlite3.connect(":memory:", isolation_level=None)
    >>> migrate(db)
    ['m001_create_exchanges', 'm002_attempt_and_prompt_version', 'm003_indexes']
    >>> migrate(db)
    []
    """
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM migrations")}
    applied = []
    for fn in migrations:
        if fn.__name__ in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            # another process may have applied it while we waited for the lock
            if db.execute("SELECT 1 FROM migrations WHERE name = ?", (fn.__name__,)).fetchone() is None:
                fn(db)
                db.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (fn.__name__, _now()))
                applied.append(fn.__name__)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return applied


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


_COLUMNS = ("created_at", "model", "prompt", "response", "outcome", "latency_ms", "tokens_in", "tokens_out",
            "question", "answer_id", "error", "attempt", "prompt_version", "structured")


class ExchangeLog:
    """The SQLite log of LLM exchanges. Opens a short connection per call (safe across threads and processes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def open(cls, path: Path) -> ExchangeLog:
        """Create the file (and its folder) if needed and apply pending migrations."""
        log = cls(path)
        log.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(log._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            migrate(db)
        return log

    @classmethod
    def for_project(cls, state_dir: Path) -> ExchangeLog:
        return cls.open(Path(state_dir) / LOG_FILE)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def record(self, exchange: Exchange) -> int:
        """Append one exchange; returns its id."""
        row = exchange.model_dump()
        row["prompt"] = json.dumps(list(exchange.prompt), ensure_ascii=False)
        row["created_at"] = exchange.created_at or _now()
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            cur = db.execute(
                f"INSERT INTO exchanges ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
                tuple(row[c] for c in _COLUMNS),
            )
            db.execute("COMMIT")
            return int(cur.lastrowid or 0)

    def recent(self, n: int = 20, *, answer_id: str | None = None) -> list[Exchange]:
        """The last ``n`` exchanges, newest first."""
        where, args = ("WHERE answer_id = ?", (answer_id,)) if answer_id else ("", ())
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT id, {', '.join(_COLUMNS)} FROM exchanges {where} ORDER BY id DESC LIMIT ?", (*args, max(0, n))
            ).fetchall()
        out = []
        for r in rows:
            data = dict(zip(("id", *_COLUMNS), r))
            data["prompt"] = tuple(json.loads(data["prompt"] or "[]"))
            out.append(Exchange(**data))
        return out

    def count(self) -> int:
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0])

    def applied_migrations(self) -> list[str]:
        with closing(self._connect()) as db:
            return [r[0] for r in db.execute("SELECT name FROM migrations ORDER BY rowid")]
