"""The API's state: one SQLite file in the project's ``.lore/`` (``api.sqlite``), shared by every worker.

It holds the API keys (:mod:`ui.api.keys`) and the conversations with their answers, so any worker process can
serve any request: a follow-up reads the conversation's last answered plan from here, never from a process's
memory. SQLite in WAL mode with a busy timeout lets several workers write at once; each thread of each process
keeps its own connection. The schema is built by named migrations (:func:`lore.llm.log.migrate`), each applied
once; never edit one that has shipped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from lore.errors import OperatorError, UnknownReference
from lore.llm.log import migrate
from lore.sqlite import LocalConnections
from lore.types import Answer

log = logging.getLogger("lore.api")

#: the file's name in the project's state folder
API_FILE: Final = "api.sqlite"
#: how long a writer waits for another's transaction
BUSY_TIMEOUT_S: Final = 10.0


class NotFound(UnknownReference):
    """A conversation or answer that does not exist for the caller (another principal's is not theirs to see)."""

    code = "not_found"


# --- schema: named migrations ------------------------------------------------------------------


def m001_api_keys(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            principal TEXT NOT NULL,
            name TEXT,
            secret_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )"""
    )


def m002_conversations(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            user TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE answers (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations (id),
            owner TEXT NOT NULL,
            turn INTEGER NOT NULL,
            status TEXT NOT NULL,
            follows_up INTEGER NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (conversation_id, turn)
        )"""
    )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (m001_api_keys, m002_conversations)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Database:
    """The API's SQLite file: a connection per thread and process, WAL, busy timeout, migrated on first use.

    >>> import tempfile
    >>> db = Database(Path(tempfile.mkdtemp()) / API_FILE)
    >>> with db.write() as conn:
    ...     _ = conn.execute("INSERT INTO conversations VALUES ('c1', 'p', 'u', '2026-01-01')")
    >>> with db.read() as conn:
    ...     conn.execute("SELECT owner FROM conversations").fetchone()[0]
    'p'
    >>> db.close()
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._connections = LocalConnections(self._connect, self._failure)
        self._migrated = False
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout_s, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            with self._lock:
                if not self._migrated:
                    migrate(conn, MIGRATIONS)
                    self._migrated = True
        except (OSError, sqlite3.Error) as err:
            raise self._failure(err) from err
        return conn

    def _failure(self, err: BaseException) -> OperatorError:
        return OperatorError(f"The API store {self.path} failed: {err}",
                             hint="Check that the project's .lore folder is writable and on a local disk; a corrupt "
                                  f"{self.path.name} can be moved aside (with its -wal and -shm files): API keys must "
                                  "then be created again.")

    def write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE ... COMMIT)."""
        return self._connections.write()

    def read(self) -> AbstractContextManager[sqlite3.Connection]:
        """One read transaction: every SELECT in the block sees the same snapshot."""
        return self._connections.read()

    def ping(self) -> None:
        """Read the file once (raises OperatorError when it cannot be)."""
        with self.read() as conn:
            conn.execute("SELECT COUNT(*) FROM migrations").fetchone()

    def close(self) -> None:
        """Close this thread's connection (other threads' close with them)."""
        self._connections.close()


# --- conversations and their answers -------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    id: str
    #: the principal it belongs to (``Lore.principal(user).id``): only they may read it or ask in it
    owner: str
    #: the identity that started it (an API key's principal name, or the proxy's user)
    user: str
    created_at: str


class Conversations:
    """Conversations and every answer given in them, as the :class:`~lore.types.Answer` JSON (trace included)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, owner: str, user: str) -> Conversation:
        conversation = Conversation(id=uuid.uuid4().hex, owner=owner, user=user, created_at=now())
        with self.db.write() as conn:
            conn.execute("INSERT INTO conversations (id, owner, user, created_at) VALUES (?, ?, ?, ?)",
                         (conversation.id, owner, user, conversation.created_at))
        return conversation

    def get(self, conversation_id: str, owner: str) -> Conversation:
        """The caller's conversation (raises :class:`NotFound` for one that is missing or someone else's)."""
        with self.db.read() as conn:
            row = conn.execute("SELECT id, owner, user, created_at FROM conversations WHERE id = ?",
                               (conversation_id,)).fetchone()
        if row is None or row[1] != owner:
            raise NotFound(f"No conversation with id {conversation_id!r}.",
                           hint="Start one with POST /v1/conversations and use the id it returns.")
        return Conversation(*row)

    def add(self, conversation: Conversation, answer: Answer) -> None:
        """Store an answer as the conversation's next turn."""
        follows_up = answer.status == "answered" and answer.plan is not None
        body = answer.model_dump_json()  # before the write lock: other workers wait for it while it is held
        with self.db.write() as conn:
            turn = conn.execute("SELECT COALESCE(MAX(turn), 0) + 1 FROM answers WHERE conversation_id = ?",
                                (conversation.id,)).fetchone()[0]
            conn.execute("INSERT INTO answers (id, conversation_id, owner, turn, status, follows_up, body, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (answer.id, conversation.id, conversation.owner, turn, answer.status, int(follows_up),
                          body, answer.created_at or now()))

    def last_answered(self, conversation_id: str) -> Answer | None:
        """The answer a follow-up refines (its plan and confidence): the latest answered one with a plan."""
        with self.db.read() as conn:
            row = conn.execute("SELECT body FROM answers WHERE conversation_id = ? AND follows_up = 1 "
                               "ORDER BY turn DESC LIMIT 1", (conversation_id,)).fetchone()
        if row is None:
            return None
        try:
            return Answer.model_validate_json(row[0])
        except ValidationError as err:  # stored by another version of LORE: the next question starts afresh
            log.warning("the last answer of conversation %s cannot be read (%s); not used as context",
                        conversation_id, str(err).splitlines()[0])
            return None

    def answer(self, answer_id: str, owner: str) -> Answer:
        """The caller's answer (raises :class:`NotFound` for one that is missing or someone else's)."""
        with self.db.read() as conn:
            row = conn.execute("SELECT owner, body FROM answers WHERE id = ?", (answer_id,)).fetchone()
        if row is None or row[0] != owner:
            raise NotFound(f"No answer with id {answer_id!r}.",
                           hint="Use the id of an answer the API gave you (the id field of a message's answer).")
        return _answer(row[1])

    def answers(self, conversation: Conversation, *, limit: int = 50) -> list[Answer]:
        """The conversation's last ``limit`` answers, in the order they were given."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT body FROM answers WHERE conversation_id = ? ORDER BY turn DESC LIMIT ?",
                                (conversation.id, limit)).fetchall()
        return [_answer(r[0]) for r in reversed(rows)]


def _answer(body: str) -> Answer:
    try:
        return Answer.model_validate_json(body)
    except ValidationError as err:
        raise OperatorError(f"A stored answer cannot be read by this version of LORE: {str(err).splitlines()[0]}",
                            hint="It was stored by another version; ask the question again.") from None
