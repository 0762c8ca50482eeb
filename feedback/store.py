"""The feedback store: every answer, vote and review decision, in SQLite; nothing acknowledged is lost.

The store lives in ``PROJECT/.lore/feedback.sqlite``. DuckDB cannot be the
store (a process holding a DuckDB file read-write locks every other process
out); SQLite in WAL mode lets the Streamlit server, the Slack bot and the CLI
write at once:

- ``journal_mode=WAL``, ``synchronous=FULL`` (a commit is on disk before it
  returns), a busy timeout; one connection per thread and process (a forked
  child opens its own). Answer records alone are written with
  ``synchronous=NORMAL``: on disk at the next vote, decision or checkpoint
  (the log is written in order, so a vote's sync carries every answer before
  it); a power cut can lose the last few answer records, never an
  acknowledged vote, and never corrupts the file. Syncing every answer put
  each behind the disk's flush and was most of a cached answer's time under
  load (README, Performance);
- one short ``BEGIN IMMEDIATE`` transaction per event; a vote or a decision
  is acknowledged (the method returns) only after ``COMMIT``;
- ``events`` is append-only (triggers refuse UPDATE and DELETE) and every
  event carries a UNIQUE idempotency key: a retry with the same key returns
  the stored event instead of adding a second one (a different payload under
  the same key is refused);
- the schema is built by named migrations, applied once each, in order, and
  recorded in ``migrations``.

Besides ``events``: ``answers`` (each answer as asked: question, conversation
context, plan, SQL, result shape, confidence and factors, model, prompt and
semantic-layer versions, user), ``pairs`` (question -> plan pairs: nominated,
verified, rejected, revoked, or only voted down; a pair runs one thing: its
plan, or its SQL when it names no metric), ``pair_votes`` (the latest vote of
each person on each pair, whichever name or identity they used, and whether
that identity was verified: fifty votes from one person count once) and
``corrections`` (which rejected answer a corrected pair replaces). These
tables are written in the same transaction as the event that changes them.

How a pair becomes a verified example is :mod:`feedback.review`'s business;
the store runs it after a vote when the operator's policy allows
(:mod:`feedback.policy`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lore.access import normalize_identity
from lore.errors import AskerError, LoreError, OperatorError, UnknownReference
from lore.plan.example import question_key
from lore.plugins import Correction, ExampleChanges, Vote
from lore.retrieve.documents import Example
from lore.retrieve.lexical import terms
from lore.sqlite import LocalConnections
from lore.types import Answer, Frozen, QueryPlan

from feedback.policy import FeedbackPolicy, Voter, load_policy
from feedback.review import verify_by_policy

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

log = logging.getLogger("lore.feedback")

#: the store's file name inside the project's state folder (``.lore/``)
STORE_FILE = "feedback.sqlite"
#: how long a writer waits for another writer's transaction before giving up
BUSY_TIMEOUT_S = 30.0
#: the least word overlap (Jaccard) for a question to count as similar to one voted down
SIMILAR_QUESTION = 0.5

PairStatus = Literal["none", "pending", "verified", "rejected", "revoked"]
STATUSES: tuple[str, ...] = ("none", "pending", "verified", "rejected", "revoked")

# --- schema: named migrations --------------------------------------------------------------


def _votes_by_principal(conn: sqlite3.Connection) -> None:
    """Copy each pair's votes, keyed by the person (the normalised name) instead of the name as typed.

    Votes stored before identities were verified are unverified: they still show who voted, and count
    toward no automatic rule. A person's latest vote wins when they voted under several spellings.
    """
    rows = conn.execute("SELECT pair_id, user, rating, answer_id, event_seq FROM pair_votes ORDER BY event_seq").fetchall()
    for pair, user, rating, answer, seq in rows:
        conn.execute("INSERT OR REPLACE INTO pair_votes_by_principal (pair_id, principal, user, verified, rating, "
                     "answer_id, event_seq) VALUES (?, ?, ?, 0, ?, ?, ?)",
                     (pair, normalize_identity(user), user, rating, answer, seq))


def _one_thing_per_pair(conn: sqlite3.Connection) -> None:
    """Split pairs whose plan carried its own SQL: the plan is what runs, the SQL becomes a claim to check.

    Such a pair was verified by running its SQL while its plan answered; a verified one goes back to
    ``pending`` (an event says why), so a reviewer sees what will run and the SQL is checked against it.
    """
    rows = conn.execute("SELECT id, plan, sql, source, status FROM pairs").fetchall()
    at = now()
    for pair, text, sql, source, status in rows:
        try:
            plan = QueryPlan.model_validate_json(text)
        except ValueError:
            continue
        if not (plan.sql and plan.metrics):
            continue
        runs = plan.model_copy(update={"sql": None})
        claim = plan.sql if source == "correction" else sql
        conn.execute("UPDATE pairs SET plan = ?, plan_key = ?, sql = ? WHERE id = ?", (plan_json(runs), runs.key(), claim, pair))
        if status != "verified":
            continue
        reason = ("reopened: its plan ran while only its SQL was verified; review what runs "
                  "(`lore feedback review`) and approve it again")
        payload = {"pair_id": pair, "decision": "reopen", "actor": REOPEN_ACTOR, "reason": reason, "from": status}
        cur = conn.execute(
            "INSERT INTO events (id, idempotency_key, kind, actor, answer_id, pair_id, payload, digest, created_at) "
            "VALUES (?, ?, 'reopen', ?, NULL, ?, ?, ?, ?)",
            (uuid.uuid4().hex, f"migration:005:{pair}", REOPEN_ACTOR, pair, json.dumps(payload), digest(payload), at))
        conn.execute("UPDATE pairs SET status = 'pending', status_seq = ?, decided_by = ?, decided_at = ?, reason = ?, "
                     "verified_sql = NULL, updated_at = ? WHERE id = ?", (cur.lastrowid, REOPEN_ACTOR, at, reason, at, pair))
        conn.execute("UPDATE state SET value = ? WHERE key = 'examples_revision'", (cur.lastrowid,))


#: the actor of pairs reopened by a migration
REOPEN_ACTOR = "migration"

Statement = str | Callable[[sqlite3.Connection], None]

MIGRATIONS: tuple[tuple[str, tuple[Statement, ...]], ...] = (
    ("001_events", (
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            idempotency_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            actor TEXT,
            answer_id TEXT,
            pair_id TEXT,
            payload TEXT NOT NULL,
            digest TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX events_kind ON events (kind)",
        "CREATE INDEX events_answer ON events (answer_id)",
        "CREATE INDEX events_pair ON events (pair_id)",
        """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
           BEGIN SELECT RAISE(ABORT, 'feedback events are append-only'); END""",
        """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
           BEGIN SELECT RAISE(ABORT, 'feedback events are append-only'); END""",
        "CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO state (key, value) VALUES ('examples_revision', 0)",
    )),
    ("002_answers", (
        """CREATE TABLE answers (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            question TEXT NOT NULL,
            question_key TEXT NOT NULL,
            user TEXT,
            conversation_id TEXT,
            context TEXT NOT NULL,
            status TEXT NOT NULL,
            message TEXT NOT NULL,
            plan TEXT,
            plan_key TEXT,
            planner TEXT,
            sql TEXT,
            result TEXT NOT NULL,
            confidence REAL NOT NULL,
            factors TEXT NOT NULL,
            model TEXT,
            prompt_version TEXT,
            layer_version TEXT
        )""",
        "CREATE INDEX answers_conversation ON answers (conversation_id, created_at)",
        "CREATE INDEX answers_plan_key ON answers (plan_key)",
    )),
    ("003_pairs", (
        """CREATE TABLE pairs (
            id TEXT PRIMARY KEY,
            question TEXT NOT NULL,
            question_key TEXT NOT NULL,
            plan TEXT NOT NULL,
            plan_key TEXT NOT NULL,
            sql TEXT,
            answer_id TEXT NOT NULL,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            status_seq INTEGER NOT NULL,
            verified_sql TEXT,
            decided_by TEXT,
            decided_at TEXT,
            reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX pairs_status ON pairs (status, status_seq)",
        "CREATE INDEX pairs_seq ON pairs (status_seq)",
        "CREATE INDEX pairs_question ON pairs (question_key)",
        "CREATE INDEX pairs_plan_key ON pairs (plan_key)",
        """CREATE TABLE pair_votes (
            pair_id TEXT NOT NULL REFERENCES pairs (id),
            user TEXT NOT NULL,
            rating INTEGER NOT NULL,
            answer_id TEXT NOT NULL,
            event_seq INTEGER NOT NULL,
            PRIMARY KEY (pair_id, user)
        )""",
        """CREATE TABLE corrections (
            pair_id TEXT NOT NULL REFERENCES pairs (id),
            rejected_answer_id TEXT NOT NULL,
            user TEXT NOT NULL,
            event_seq INTEGER NOT NULL,
            PRIMARY KEY (pair_id, rejected_answer_id, user)
        )""",
    )),
    # votes count once per person (principal), and say whether the identity was verified
    ("004_vote_principals", (
        """CREATE TABLE pair_votes_by_principal (
            pair_id TEXT NOT NULL REFERENCES pairs (id),
            principal TEXT NOT NULL,
            user TEXT NOT NULL,
            verified INTEGER NOT NULL DEFAULT 0,
            rating INTEGER NOT NULL,
            answer_id TEXT NOT NULL,
            event_seq INTEGER NOT NULL,
            PRIMARY KEY (pair_id, principal)
        )""",
        _votes_by_principal,
        "DROP TABLE pair_votes",
        "ALTER TABLE pair_votes_by_principal RENAME TO pair_votes",
    )),
    # a pair is one thing that runs: a plan (with at most a SQL claim to check) or a SQL
    ("005_one_thing_per_pair", (_one_thing_per_pair,)),
)


# --- models -----------------------------------------------------------------------------------


class AnswerMeta(Frozen):
    """What the store records about how an answer was made, beyond the answer itself."""

    model: str | None = None
    prompt_version: str | None = None
    layer_version: str | None = None
    #: the day relative dates resolved against
    today: str | None = None


class Nomination(Frozen):
    """A question -> plan pair and where it stands (``pending`` ones wait for a reviewer)."""

    id: str
    question: str
    #: what runs when the pair answers: its compiled semantic query, or its SQL when it names no metric
    plan: QueryPlan
    plan_key: str
    #: the SQL of the answer that nominated it; for a correction, the corrected SQL (see :attr:`kind`)
    sql: str | None = None
    #: the first answer it came from
    answer_id: str
    #: answer: a thumbs up on an answer; correction: a thumbs down with a corrected plan or SQL
    source: str
    status: PairStatus
    #: distinct people whose latest vote on the pair is up / down (the names they last used)
    up_users: tuple[str, ...] = ()
    down_users: tuple[str, ...] = ()
    #: the same votes as people: principal, name, and whether the identity was verified
    up_voters: tuple[Voter, ...] = ()
    down_voters: tuple[Voter, ...] = ()
    #: answers this pair corrects
    corrects: tuple[str, ...] = ()
    verified_sql: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    created_at: str
    updated_at: str
    #: the store event that last changed the status
    status_seq: int

    @property
    def kind(self) -> Literal["plan", "sql", "both"]:
        """``sql`` when the pair runs SQL, ``plan`` when it runs its plan, ``both`` for a corrected plan sent
        with a SQL that must return the same result (checked when it is verified; the plan is what runs)."""
        if self.plan.runs_sql:
            return "sql"
        return "both" if self.claimed_sql is not None else "plan"

    @property
    def claimed_sql(self) -> str | None:
        """The SQL a correction sent with its plan, claimed to return the plan's result (None otherwise)."""
        if self.source == "correction" and self.sql and not self.plan.runs_sql:
            return self.sql
        return None

    def example(self) -> Example:
        """The retrieval example of a verified pair."""
        return Example(id=self.id, question=self.question, plan_json=self.plan.model_dump_json(),
                       sql=self.verified_sql or self.sql)


class RecordedAnswer(Frozen):
    """An answer as the store holds it (for review, export and stats)."""

    id: str
    question: str
    user: str | None = None
    conversation_id: str | None = None
    context: dict[str, Any]
    status: str
    message: str
    plan: QueryPlan | None = None
    plan_key: str | None = None
    planner: str | None = None
    sql: str | None = None
    result: dict[str, Any]
    confidence: float
    factors: dict[str, float]
    model: str | None = None
    prompt_version: str | None = None
    layer_version: str | None = None
    created_at: str


class Snapshot(Frozen):
    """A consistent view of the store for an export (read in one transaction)."""

    revision: int
    last_event: int
    verified: tuple[Nomination, ...]
    answers: dict[str, RecordedAnswer]
    #: (verified correcting pair id, rejected answer id)
    corrections: tuple[tuple[str, str], ...]


class Stats(Frozen):
    answers: int
    answered: int
    votes: int
    up: int
    down: int
    corrections: int
    voters: int
    pairs: dict[str, int]
    events: int
    duplicates_refused: int = 0


# --- pure helpers -----------------------------------------------------------------------------


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def digest(payload: Any) -> str:
    """A stable hash of a JSON payload.

    >>> digest({"b": 1, "a": 2}) == digest({"a": 2, "b": 1})
    True
    """
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def pair_id(question: str, plan_key: str) -> str:
    """The id of a question -> plan pair: the same words and the same computation give the same id.

    >>> pair_id("Hours by region?", "{}") == pair_id("hours by  region", "{}")
    True
    """
    return "p-" + hashlib.sha256(f"{question_key(question)}\n{plan_key}".encode()).hexdigest()[:12]


def similar_questions(a: str, b: str, threshold: float = SIMILAR_QUESTION) -> bool:
    """Same words, or content words overlapping by at least ``threshold`` (Jaccard).

    >>> similar_questions("streaming hours in Brazil", "how many streaming hours in Brazil?")
    True
    >>> similar_questions("streaming hours in Brazil", "game installs by platform")
    False
    """
    if question_key(a) == question_key(b):
        return True
    ta, tb = set(terms(a)), set(terms(b))
    if not ta or not tb:
        return False
    return len(ta & tb) / len(ta | tb) >= threshold


def check_rating(rating: Any) -> Literal[1, -1]:
    """+1 or -1 (also True/False are refused: a vote is explicit).

    >>> check_rating(1), check_rating(-1)
    (1, -1)
    """
    if isinstance(rating, bool) or rating not in (1, -1):
        raise AskerError(f"A rating is +1 (thumbs up) or -1 (thumbs down), got {rating!r}.")
    return 1 if rating == 1 else -1


def check_user(user: Any) -> str:
    if not isinstance(user, str) or not user.strip():
        raise AskerError("A vote needs the user who casts it (user=...): votes are deduplicated per user.")
    return user.strip()


def plan_json(plan: QueryPlan) -> str:
    return plan.model_dump_json()


def result_shape(answer: Answer) -> dict[str, Any]:
    """The shape of an answer's result: columns, row count, truncation, chart (never the rows)."""
    return {
        "columns": [c.model_dump(mode="json", exclude_none=True) for c in answer.columns],
        "rows": len(answer.rows),
        "truncated": answer.truncated,
        "chart_kind": answer.chart_kind,
    }


def is_followup(plan: QueryPlan | None) -> bool:
    return plan is not None and any(g.kind == "context" for g in plan.groundings)


def retrieved_context(answer: Answer, limit: int = 12) -> list[dict[str, Any]]:
    """The retrieved documents the answer was grounded on (from its trace)."""
    if answer.trace is None:
        return []
    keep = {"kind", "ref", "value", "text", "score"}
    return [hit.model_dump(include=keep, exclude_none=True) for hit in answer.trace.retrieved[:limit]]


# --- the store --------------------------------------------------------------------------------


class FeedbackStore:
    """The SQLite feedback store; implements :class:`lore.plugins.FeedbackBackend`.

    ``lore`` (optional) is the project the answers come from: it is needed to
    verify pairs (compile, guard and run their SQL) and to record model and
    layer versions. Without it the store still records and counts votes.
    """

    def __init__(self, path: str | Path, *, policy: FeedbackPolicy | None = None, lore: Lore | None = None,
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.policy = policy or FeedbackPolicy()
        self.lore = lore
        self.busy_timeout_s = busy_timeout_s
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._connections = LocalConnections(self._open, self._failure)

    def principal_id(self, identity: str) -> str:
        """The person an identity names: the project's access section decides (``Lore.principal``); without a
        project, the identity in its normalised form (case, spaces and Unicode forms aside)."""
        if self.lore is not None:
            return str(self.lore.principal(identity).id)
        return normalize_identity(identity)

    def close(self) -> None:
        """Close this thread's connection (others close when their thread's store is collected)."""
        self._connections.close()

    # -- connections -----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise self._failure(err) from err
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OperatorError(f"The feedback store {self.path} cannot use WAL mode (got {mode}).",
                                    hint="Put the project on a local file system that supports SQLite WAL.")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.row_factory = sqlite3.Row
        except sqlite3.Error as err:
            conn.close()
            raise self._failure(err) from err
        except LoreError:
            conn.close()
            raise
        return conn

    def _failure(self, err: BaseException) -> OperatorError:
        text = str(err).lower()
        if isinstance(err, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text
                                                       or "corrupt" in text):
            return OperatorError(f"The feedback store {self.path} is corrupt ({err}).",
                                 hint=f"Stop LORE, move {self.path.name} and its -wal and -shm files aside (keep them "
                                      "to recover votes), and start again: LORE creates a new, empty store. "
                                      "`lore doctor --project DIR` checks it.")
        return OperatorError(f"The feedback store {self.path} failed: {err}",
                             hint="Check that the project's .lore folder is writable and not on a network share; "
                                  "retrying with the same idempotency key is safe.")

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            conn = self._connect()
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
                done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
                for name, statements in MIGRATIONS:
                    if name in done:
                        continue
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone() is None:
                            for statement in statements:
                                if callable(statement):
                                    statement(conn)
                                else:
                                    conn.execute(statement)
                            conn.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, now()))
                        conn.execute("COMMIT")
                    except BaseException:
                        with suppress(sqlite3.Error):
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                        raise
            except sqlite3.Error as err:
                raise self._failure(err) from err
            finally:
                conn.close()
            self._schema_ready = True

    def _open(self) -> sqlite3.Connection:
        self._ensure_schema()
        return self._connect()

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a forked child never uses its parent's)."""
        return self._connections.get()

    def _drop(self, conn: sqlite3.Connection) -> None:
        """Forget a connection that failed: the next operation opens a fresh one."""
        self._connections.drop(conn)

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE ... COMMIT); it is durable when the block exits."""
        return self._connections.write()

    @contextmanager
    def _write_unsynced(self) -> Iterator[sqlite3.Connection]:
        """A write transaction committed without waiting for the disk (``synchronous=NORMAL``): on disk at the next
        synced commit or checkpoint. Only for answer records (see the module's notes)."""
        conn = self._connections.get()
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._connections.write() as written:
                yield written
        finally:
            with suppress(sqlite3.Error):  # a failed write drops the connection: the next one opens with FULL
                conn.execute("PRAGMA synchronous = FULL")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """One read transaction: every SELECT in the block sees the same snapshot."""
        return self._connections.read()

    # -- events ----------------------------------------------------------------------------
    @staticmethod
    def _existing(conn: sqlite3.Connection, key: str, payload_digest: str) -> sqlite3.Row | None:
        row = conn.execute("SELECT * FROM events WHERE idempotency_key = ?", (key,)).fetchone()
        if row is not None and row["digest"] != payload_digest:
            raise OperatorError(f"The idempotency key {key!r} was already used for a different event.",
                                hint="Use a new key for a new vote or decision; reuse a key only to retry the same one.")
        return row

    @staticmethod
    def _append(conn: sqlite3.Connection, *, kind: str, key: str, actor: str | None, answer_id: str | None,
                pair: str | None, payload: dict[str, Any], payload_digest: str, at: str) -> tuple[int, str]:
        event_id = uuid.uuid4().hex
        cur = conn.execute(
            "INSERT INTO events (id, idempotency_key, kind, actor, answer_id, pair_id, payload, digest, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, key, kind, actor, answer_id, pair, json.dumps(payload, ensure_ascii=False, default=str),
             payload_digest, at),
        )
        return int(cur.lastrowid or 0), event_id

    # -- answers ---------------------------------------------------------------------------
    def record_answer(self, answer: Answer, meta: AnswerMeta | None = None) -> None:
        """Store an answer (once per id: recording it again changes nothing)."""
        meta = meta or self._meta()
        plan = answer.plan
        context: dict[str, Any] = {
            "conversation_id": answer.conversation_id,
            "followup": is_followup(plan),
            "today": meta.today,
            "retrieved": retrieved_context(answer),
        }
        # everything but the conversation's last questions is made before the write lock, which other processes
        # wait for while it is held
        row = (answer.question, question_key(answer.question), answer.user, answer.conversation_id)
        rest = (answer.status, answer.message, plan_json(plan) if plan is not None else None,
                plan.key() if plan is not None else None, plan.planner if plan is not None else None, answer.sql,
                json.dumps(result_shape(answer)), float(answer.confidence), json.dumps(answer.confidence_factors),
                meta.model, meta.prompt_version, meta.layer_version)
        with self._write_unsynced() as conn:
            if answer.conversation_id:
                rows = conn.execute(
                    "SELECT question FROM answers WHERE conversation_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 3",
                    (answer.conversation_id,)).fetchall()
                context["previous_questions"] = [r["question"] for r in reversed(rows)]
            conn.execute(
                "INSERT OR IGNORE INTO answers (id, created_at, recorded_at, question, question_key, user, conversation_id, "
                "context, status, message, plan, plan_key, planner, sql, result, confidence, factors, model, "
                "prompt_version, layer_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (answer.id, answer.created_at or now(), now(), *row, json.dumps(context, default=str), *rest),
            )

    def _meta(self) -> AnswerMeta:
        lore = self.lore
        if lore is None:
            return AnswerMeta()
        layer_version, prompt = lore.built_versions()  # recording never loads the layer or starts a model
        return AnswerMeta(model=lore.settings.model, prompt_version=prompt, layer_version=layer_version,
                          today=lore.today.isoformat())

    def answer(self, answer_id: str) -> RecordedAnswer:
        with self._read() as conn:
            row = conn.execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
        if row is None:
            raise UnknownReference(f"No recorded answer with id {answer_id!r}.",
                                   hint="Use the id of an answer LORE gave (answer.id, or the id in `lore ask --json`).")
        return _recorded(row)

    # -- votes -----------------------------------------------------------------------------
    def vote(self, answer_id: str, rating: int, *, user: str, comment: str | None = None,
             correction: Correction | QueryPlan | dict[str, Any] | str | None = None,
             idempotency_key: str | None = None, verified: bool = False) -> Vote:
        """Store a vote on a recorded answer; returns after COMMIT (then applies the auto-verify policy).

        The vote counts for the person ``user`` names (:meth:`principal_id`): a later vote by the same person,
        under any spelling or identity, replaces it. ``verified`` says the identity came from an authenticated
        channel; only verified votes count toward the policy's automatic rules.
        """
        rating_ = check_rating(rating)
        user = check_user(user)
        if not isinstance(verified, bool):
            raise AskerError(f"verified is True or False, got {verified!r}.")
        fix = Correction.coerce(correction)
        if fix is not None and rating_ != -1:
            raise AskerError("A correction goes with a thumbs down (rating=-1).")
        person = self.principal_id(user)
        key = idempotency_key or f"vote:{uuid.uuid4().hex}"
        request = {"answer_id": answer_id, "rating": rating_, "user": user, "comment": comment,
                   "correction": fix.model_dump(mode="json") if fix is not None else None}
        if verified:  # an unverified vote's digest is what it always was: retries across versions still match
            request["verified"] = True
        request_digest = digest(request)
        at = now()
        with self._write() as conn:
            stored = self._existing(conn, key, request_digest)
            if stored is not None:
                return self._stored_vote(conn, stored)
            row = conn.execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
            if row is None:
                raise UnknownReference(f"No recorded answer with id {answer_id!r}.",
                                       hint="Vote on the id of an answer LORE gave (answer.id).")
            answer = _recorded(row)
            voted_pair, fixed_pair, note = _pairs_of(answer, fix)
            nominated = fixed_pair if fix is not None else (voted_pair if rating_ == 1 else None)
            payload = request | {"pair_id": voted_pair[0] if voted_pair else None,
                                 "correction_pair_id": fixed_pair[0] if fixed_pair else None,
                                 "principal": person, "verified": verified}
            seq, event_id = self._append(conn, kind="vote", key=key, actor=user, answer_id=answer_id,
                                         pair=nominated[0] if nominated else (voted_pair[0] if voted_pair else None),
                                         payload=payload, payload_digest=request_digest, at=at)
            if voted_pair is not None:
                _ensure_pair(conn, voted_pair, answer, "answer", nominate=rating_ == 1, seq=seq, at=at)
                _cast(conn, voted_pair[0], Voter(principal=person, name=user, verified=verified), rating_, answer_id, seq)
            if fixed_pair is not None:
                _ensure_pair(conn, fixed_pair, answer, "correction", nominate=True, seq=seq, at=at)
                _cast(conn, fixed_pair[0], Voter(principal=person, name=user, verified=verified), 1, answer_id, seq)
                conn.execute("INSERT OR REPLACE INTO corrections (pair_id, rejected_answer_id, user, event_seq) "
                             "VALUES (?, ?, ?, ?)", (fixed_pair[0], answer_id, user, seq))
            status = _status(conn, nominated[0]) if nominated else None
            voters = _voters(conn, nominated[0]) if status == "pending" else None
        vote = Vote(id=event_id, answer_id=answer_id, rating=rating_, user=user, comment=comment, correction=fix,
                    idempotency_key=key, created_at=at, nomination_id=nominated[0] if nominated else None,
                    nomination_status=status, note=note, principal=person, verified=verified)
        if nominated is not None and voters is not None:
            vote = self._apply_policy(vote, nominated[0], *voters)
        return vote

    def _stored_vote(self, conn: sqlite3.Connection, event: sqlite3.Row) -> Vote:
        payload = json.loads(event["payload"])
        fix = Correction.model_validate(payload["correction"]) if payload.get("correction") else None
        nominated = event["pair_id"] if (fix is not None or payload["rating"] == 1) else None
        return Vote(id=event["id"], answer_id=payload["answer_id"], rating=payload["rating"], user=payload["user"],
                    comment=payload.get("comment"), correction=fix, idempotency_key=event["idempotency_key"],
                    created_at=event["created_at"], nomination_id=nominated,
                    nomination_status=_status(conn, nominated) if nominated else None, duplicate=True,
                    principal=payload.get("principal"), verified=bool(payload.get("verified", False)))

    def _apply_policy(self, vote: Vote, pair: str, up: tuple[Voter, ...], down: tuple[Voter, ...]) -> Vote:
        """Verify a pending pair at once when the policy allows it (after the vote is durable)."""
        rule = self.policy.auto_rule(up, down, self.principal_id)
        if rule is None:
            note = "Nominated: it teaches LORE once a reviewer approves it."
            if not vote.verified and (self.policy.trusted_users or self.policy.auto_verify_min_users):
                note = ("Nominated: it teaches LORE once a reviewer approves it (votes from an identity that was "
                        "not verified by a sign-in count toward no automatic rule).")
            return vote.model_copy(update={"note": vote.note or note})
        status, note = verify_by_policy(self, pair, rule)
        return vote.model_copy(update={"nomination_status": status, "note": note})

    # -- pairs -----------------------------------------------------------------------------
    def nomination(self, pair: str) -> Nomination:
        with self._read() as conn:
            found = _nominations(conn, "p.id = ?", (pair,))
        if not found:
            raise UnknownReference(f"No nomination with id {pair!r}.", hint="List them with `lore feedback review`.")
        return found[0]

    def nominations(self, status: str | None = "pending", *, limit: int = 200) -> list[Nomination]:
        """Pairs with a status (``None``: every nominated pair, newest first)."""
        if status is not None and status not in STATUSES:
            raise AskerError(f"Unknown status {status!r}.", suggestions=STATUSES)
        with self._read() as conn:
            if status is None:
                return _nominations(conn, "p.status != 'none'", (), limit=limit)
            return _nominations(conn, "p.status = ?", (status,), limit=limit)

    def pairs_for(self, question: str) -> list[Nomination]:
        """Every pair of a question (the same words, case and punctuation aside), whatever its status."""
        with self._read() as conn:
            return _nominations(conn, "p.question_key = ?", (question_key(question),), limit=None)

    def decide(self, pair: str, decision: Literal["approve", "reject", "revoke", "verify_failed"], *, actor: str,
               reason: str | None = None, verified_sql: str | None = None,
               idempotency_key: str | None = None) -> Nomination:
        """Write one review decision as an event and apply it (see :mod:`feedback.review` for the rules)."""
        key = idempotency_key or f"{decision}:{uuid.uuid4().hex}"
        request = {"pair_id": pair, "decision": decision, "actor": actor, "reason": reason}
        request_digest = digest(request)
        at = now()
        with self._write() as conn:
            if self._existing(conn, key, request_digest) is not None:
                pass  # a retry: the decision is already applied
            else:
                current = _status(conn, pair)
                if current is None:
                    raise UnknownReference(f"No nomination with id {pair!r}.",
                                           hint="List them with `lore feedback review`.")
                _check_transition(pair, current, decision)
                payload = request | {"from": current, "verified_sql": verified_sql}
                replaced: list[str] = []
                if decision == "approve":
                    qkey = conn.execute("SELECT question_key FROM pairs WHERE id = ?", (pair,)).fetchone()[0]
                    replaced = [r[0] for r in conn.execute(
                        "SELECT id FROM pairs WHERE question_key = ? AND status = 'verified' AND id != ?", (qkey, pair))]
                    payload["replaces"] = replaced
                seq, _ = self._append(conn, kind=decision, key=key, actor=actor, answer_id=None, pair=pair,
                                      payload=payload, payload_digest=request_digest, at=at)
                if decision != "verify_failed":
                    new = {"approve": "verified", "reject": "rejected", "revoke": "revoked"}[decision]
                    conn.execute(
                        "UPDATE pairs SET status = ?, status_seq = ?, decided_by = ?, decided_at = ?, reason = ?, "
                        "verified_sql = COALESCE(?, verified_sql), updated_at = ? WHERE id = ?",
                        (new, seq, actor, at, reason, verified_sql, at, pair))
                for other in replaced:
                    why = f"replaced by {pair}"
                    sub = {"pair_id": other, "decision": "revoke", "actor": actor, "reason": why}
                    rseq, _ = self._append(conn, kind="revoke", key=f"{key}:replaces:{other}", actor=actor,
                                           answer_id=None, pair=other, payload=sub, payload_digest=digest(sub), at=at)
                    conn.execute("UPDATE pairs SET status = 'revoked', status_seq = ?, decided_by = ?, decided_at = ?, "
                                 "reason = ?, updated_at = ? WHERE id = ?", (rseq, actor, at, why, at, other))
                if decision in ("approve", "revoke") or replaced:
                    last = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
                    conn.execute("UPDATE state SET value = ? WHERE key = 'examples_revision'", (last,))
            found = _nominations(conn, "p.id = ?", (pair,))
        if decision in ("approve", "revoke"):
            self._examples_changed()
        return found[0]

    def _examples_changed(self) -> None:
        """Tell the open project its verified examples changed (its index updates at once)."""
        if self.lore is None:
            return
        try:
            self.lore.examples.sync()
        except LoreError as err:  # the decision is stored; the index catches up at the next question
            log.warning("the retrieval index did not take the new examples yet: %s", err)

    # -- the backend protocol: examples and penalties -------------------------------------------
    def verified_examples(self) -> list[Example]:
        with self._read() as conn:
            return [n.example() for n in _nominations(conn, "p.status = 'verified'", (), limit=None, order="p.status_seq")]

    def examples_revision(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT value FROM state WHERE key = 'examples_revision'").fetchone()[0])

    def example_changes(self, since: int) -> ExampleChanges:
        with self._read() as conn:
            revision = int(conn.execute("SELECT value FROM state WHERE key = 'examples_revision'").fetchone()[0])
            changed = _nominations(conn, "p.status_seq > ? AND p.status != 'none'", (since,), limit=None,
                                   order="p.status_seq")
        return ExampleChanges(revision=revision,
                              verified=tuple(n.example() for n in changed if n.status == "verified"),
                              removed=tuple(n.id for n in changed if n.status != "verified"))

    def penalty(self, question: str, plan_key: str | None = None) -> float | None:
        """The policy's penalty when a similar question with this plan was voted down (and not verified since)."""
        with self._read() as conn:
            where, args = ("p.plan_key = ?", (plan_key,)) if plan_key is not None else ("p.question_key = ?",
                                                                                         (question_key(question),))
            rows = conn.execute(
                f"SELECT p.question, p.status, p.status_seq, v.event_seq FROM pair_votes v JOIN pairs p ON p.id = v.pair_id "
                f"WHERE v.rating = -1 AND {where}", args).fetchall()
        for row in rows:
            if row["status"] == "verified" and row["event_seq"] < row["status_seq"]:
                continue  # a reviewer verified this pair after the vote
            if similar_questions(question, row["question"]):
                return self.policy.penalty
        return None

    # -- reading for exports and stats ------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Verified pairs, their answers and corrections, read in one transaction."""
        with self._read() as conn:
            revision = int(conn.execute("SELECT value FROM state WHERE key = 'examples_revision'").fetchone()[0])
            last = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
            verified = _nominations(conn, "p.status = 'verified'", (), limit=None, order="p.status_seq")
            ids = {p.id for p in verified}
            corrections = [(r[0], r[1]) for r in conn.execute(
                "SELECT DISTINCT pair_id, rejected_answer_id FROM corrections ORDER BY event_seq") if r[0] in ids]
            wanted = {p.answer_id for p in verified} | {a for _, a in corrections}
            answers: dict[str, RecordedAnswer] = {}
            for chunk in _chunks(sorted(wanted), 500):
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(f"SELECT * FROM answers WHERE id IN ({marks})", chunk):
                    answers[row["id"]] = _recorded(row)
        return Snapshot(revision=revision, last_event=last, verified=tuple(verified), answers=answers,
                        corrections=tuple(corrections))

    def stats(self) -> Stats:
        with self._read() as conn:

            def one(sql: str) -> int:
                return int(conn.execute(sql).fetchone()[0] or 0)

            pairs = {r[0]: int(r[1]) for r in conn.execute("SELECT status, COUNT(*) FROM pairs GROUP BY status")}
            return Stats(
                answers=one("SELECT COUNT(*) FROM answers"),
                answered=one("SELECT COUNT(*) FROM answers WHERE status = 'answered'"),
                votes=one("SELECT COUNT(*) FROM events WHERE kind = 'vote'"),
                up=one("SELECT COUNT(*) FROM events WHERE kind = 'vote' AND json_extract(payload, '$.rating') = 1"),
                down=one("SELECT COUNT(*) FROM events WHERE kind = 'vote' AND json_extract(payload, '$.rating') = -1"),
                corrections=one("SELECT COUNT(*) FROM events WHERE kind = 'vote' AND json_extract(payload, '$.correction') IS NOT NULL"),
                voters=one("SELECT COUNT(DISTINCT COALESCE(json_extract(payload, '$.principal'), actor)) FROM events "
                           "WHERE kind = 'vote'"),
                pairs={s: pairs.get(s, 0) for s in STATUSES},
                events=one("SELECT COUNT(*) FROM events"),
            )

    def event_keys(self) -> set[str]:
        """Every idempotency key stored (for audits and tests)."""
        with self._read() as conn:
            return {r[0] for r in conn.execute("SELECT idempotency_key FROM events")}

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ("ok" when the file is sound)."""
        with self._read() as conn:
            return ", ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))

    def check_writable(self) -> None:
        """Take the write lock and give it back (changes nothing); raises when the store cannot be written."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.Error as err:
            self._drop(conn)
            raise self._failure(err) from err


# --- row helpers ------------------------------------------------------------------------------

_Pair = tuple[str, str, QueryPlan, str | None]  # (id, question, plan, sql)


def _pairs_of(answer: RecordedAnswer, fix: Correction | None) -> tuple[_Pair | None, _Pair | None, str | None]:
    """The pair an answer's vote is about, the pair a correction proposes, and why one is missing."""
    note = None
    voted: _Pair | None = None
    if answer.context.get("followup"):
        note = ("Follow-up questions are not nominated: their words depend on the conversation. "
                "Ask the question in full and vote on that answer.")
    elif answer.status == "answered" and answer.plan is not None and answer.plan_key is not None:
        voted = (pair_id(answer.question, answer.plan_key), answer.question, answer.plan, answer.sql)
    elif fix is None:
        note = f"Only answered questions are nominated (this answer's status is {answer.status})."
    fixed: _Pair | None = None
    if fix is not None and not answer.context.get("followup"):
        if fix.plan is not None:  # the plan is what runs; SQL sent with it is a claim the review checks
            plan = fix.plan.model_copy(update={"planner": "correction", "notes": (), "sql": None})
            ident = plan if fix.sql is None else plan.model_copy(update={"sql": fix.sql})
            fixed = (pair_id(answer.question, ident.key()), answer.question, plan, fix.sql)
        else:
            plan = QueryPlan(sql=fix.sql, planner="correction")
            fixed = (pair_id(answer.question, plan.key()), answer.question, plan, fix.sql)
        if voted is not None and fixed[0] == voted[0]:
            fixed, note = None, "The correction computes the same as the answer: nothing new to nominate."
    return voted, fixed, note


def _ensure_pair(conn: sqlite3.Connection, pair: _Pair, answer: RecordedAnswer, source: str, *, nominate: bool,
                 seq: int, at: str) -> None:
    pid, question, plan, sql = pair
    conn.execute(
        "INSERT OR IGNORE INTO pairs (id, question, question_key, plan, plan_key, sql, answer_id, source, status, "
        "status_seq, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'none', ?, ?, ?)",
        (pid, question, question_key(question), plan_json(plan), plan.key(), sql, answer.id, source, seq, at, at))
    if nominate:
        conn.execute("UPDATE pairs SET status = 'pending', status_seq = ?, updated_at = ? WHERE id = ? AND status = 'none'",
                     (seq, at, pid))


def _cast(conn: sqlite3.Connection, pair: str, voter: Voter, rating: int, answer_id: str, seq: int) -> None:
    """A person's latest vote on a pair replaces their earlier one: votes count once per person."""
    conn.execute("INSERT OR REPLACE INTO pair_votes (pair_id, principal, user, verified, rating, answer_id, event_seq) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (pair, voter.principal, voter.name, int(voter.verified), rating, answer_id, seq))


def _voters(conn: sqlite3.Connection, pair: str) -> tuple[tuple[Voter, ...], tuple[Voter, ...]]:
    """The people whose latest vote on a pair is up, and down."""
    rows = conn.execute("SELECT principal, user, verified, rating FROM pair_votes WHERE pair_id = ? ORDER BY user",
                        (pair,)).fetchall()
    people = [(Voter(principal=r[0], name=r[1], verified=bool(r[2])), r[3]) for r in rows]
    return tuple(v for v, s in people if s > 0), tuple(v for v, s in people if s < 0)


def _status(conn: sqlite3.Connection, pair: str) -> str | None:
    row = conn.execute("SELECT status FROM pairs WHERE id = ?", (pair,)).fetchone()
    return row[0] if row is not None else None


_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "approve": ("none", "pending", "rejected", "revoked"),
    "reject": ("none", "pending"),
    "revoke": ("verified",),
    "verify_failed": STATUSES,
}


def _check_transition(pair: str, current: str, decision: str) -> None:
    if current in _TRANSITIONS[decision]:
        return
    hints = {
        ("reject", "verified"): "It is verified: revoke it instead (--revoke).",
        ("revoke", "pending"): "It is not verified yet: reject it instead (--reject).",
        ("approve", "verified"): "It is already verified.",
    }
    raise OperatorError(f"Cannot {decision} {pair}: it is {current}.",
                        hint=hints.get((decision, current), "List nominations with `lore feedback review --status all`."))


def _nominations(conn: sqlite3.Connection, where: str, args: Sequence[Any], *, limit: int | None = 200,
                 order: str = "p.updated_at DESC, p.status_seq DESC") -> list[Nomination]:
    sql = f"SELECT p.* FROM pairs p WHERE {where} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = conn.execute(sql, tuple(args)).fetchall()
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    votes: dict[str, list[tuple[Voter, int]]] = {}
    fixes: dict[str, list[str]] = {}
    for chunk in _chunks(ids, 500):
        marks = ",".join("?" * len(chunk))
        for v in conn.execute(f"SELECT pair_id, principal, user, verified, rating FROM pair_votes "
                              f"WHERE pair_id IN ({marks}) ORDER BY user", chunk):
            votes.setdefault(v[0], []).append((Voter(principal=v[1], name=v[2], verified=bool(v[3])), v[4]))
        for c in conn.execute(f"SELECT DISTINCT pair_id, rejected_answer_id FROM corrections WHERE pair_id IN ({marks})",
                              chunk):
            fixes.setdefault(c[0], []).append(c[1])
    out = []
    for r in rows:
        vs = votes.get(r["id"], [])
        out.append(Nomination(
            id=r["id"], question=r["question"], plan=QueryPlan.model_validate_json(r["plan"]), plan_key=r["plan_key"],
            sql=r["sql"], answer_id=r["answer_id"], source=r["source"], status=r["status"],
            up_users=tuple(u.name for u, s in vs if s > 0), down_users=tuple(u.name for u, s in vs if s < 0),
            up_voters=tuple(u for u, s in vs if s > 0), down_voters=tuple(u for u, s in vs if s < 0),
            corrects=tuple(sorted(set(fixes.get(r["id"], [])))), verified_sql=r["verified_sql"],
            decided_by=r["decided_by"], decided_at=r["decided_at"], reason=r["reason"], created_at=r["created_at"],
            updated_at=r["updated_at"], status_seq=r["status_seq"],
        ))
    return out


def _recorded(row: sqlite3.Row) -> RecordedAnswer:
    return RecordedAnswer(
        id=row["id"], question=row["question"], user=row["user"], conversation_id=row["conversation_id"],
        context=json.loads(row["context"]), status=row["status"], message=row["message"],
        plan=QueryPlan.model_validate_json(row["plan"]) if row["plan"] else None, plan_key=row["plan_key"],
        planner=row["planner"], sql=row["sql"], result=json.loads(row["result"]), confidence=row["confidence"],
        factors=json.loads(row["factors"]), model=row["model"], prompt_version=row["prompt_version"],
        layer_version=row["layer_version"], created_at=row["created_at"],
    )


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


# --- entry points ---------------------------------------------------------------------------


def store_path(lore: Lore) -> Path:
    return lore.project.state_dir / STORE_FILE


def open_store(lore: Lore) -> FeedbackStore:
    """The feedback store of an open project, with the project's policy."""
    return FeedbackStore(store_path(lore), policy=load_policy(lore.project), lore=lore)


def open_backend(lore: Lore) -> FeedbackStore:
    """The ``lore.plugins`` entry point: the project's store as its :class:`~lore.plugins.FeedbackBackend`.

    Opening touches no file: the database is created on first use.
    """
    return open_store(lore)
