"""What every request of one server process shares: the project and the API's store.

Nothing about a request is kept here: who asks (:class:`Caller`) is passed to each method, each conversation
lives in the API's store (:mod:`ui.api.store`), and the project's :class:`~lore.core.Lore` is the same object
the chat page and the Slack bot use, one per process, opened and warmed up once.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lore.errors import LoreError, UnknownReference
from lore.project import Project
from lore.semantic.compile import suggest
from lore.semantic.spec import GRAINS, METRIC_TIME, Metric
from lore.settings import Settings
from lore.types import Answer, ChartSpec

from ui.api.keys import KeyStore
from ui.api.models import DataOut, Dimension, FeedbackIn, MetricDetail, SemanticQueryIn, SqlIn, SqlOut
from ui.api.problems import Problem
from ui.api.store import API_FILE, Conversation, Conversations, Database, NotFound

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.pipeline import StageHook
    from lore.plugins import Vote

log = logging.getLogger("lore.api")

#: the longest identity a trusted proxy header may carry
MAX_IDENTITY_CHARS = 320


@dataclass(frozen=True)
class Caller:
    """Who sent a request, from a verified source: an API key, or the trusted proxy's header."""

    #: the identity LORE answers for (access rules, the user of answers and votes)
    user: str
    #: the person that identity names (``Lore.principal(user).id``): the owner of their conversations and answers
    principal: str
    #: the key used (None: named by the trusted proxy header, or the operator's one principal of ``lore mcp``)
    key_id: str | None = None
    #: the identity came from an authenticated channel (a key, the trusted proxy); votes record it as verified
    verified: bool = True

    @property
    def bucket(self) -> str:
        """The rate limit's key: each API key has its own; proxy-named users one per person."""
        return f"key:{self.key_id}" if self.key_id else f"principal:{self.principal}"


def unauthorized(detail: str, hint: str | None = None) -> Problem:
    return Problem(401, "Unauthorized", detail, "unauthorized",
                   hint=hint or "Send `Authorization: Bearer <token>`; the operator creates a token with "
                                "`lore keys create --project DIR --principal NAME`.",
                   headers={"WWW-Authenticate": 'Bearer realm="lore"'})


def is_loopback(host: str | None) -> bool:
    """Whether a peer address is this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("10.0.0.2"), is_loopback("testclient"), is_loopback(None)
    (True, True, False, False, False)
    """
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Service:
    """One project served over HTTP: its :class:`~lore.core.Lore` (opened on first use), keys and conversations."""

    def __init__(self, project: str | Path, settings: Settings | None = None) -> None:
        self.project = Project.open(project)  # a missing project fails here, with the fix in the message
        self.settings = settings or Settings(project=self.project.root)
        self.db = Database(self.project.state_dir / API_FILE)
        self.keys = KeyStore(self.db)
        self.conversations = Conversations(self.db)
        self._lore: Lore | None = None
        self._lock = threading.Lock()

    @property
    def lore(self) -> Lore:
        """The project, opened and warmed up once (before threads share its parts)."""
        with self._lock:
            if self._lore is None:
                from lore.core import Lore  # lazy: the app imports fast; the project opens on first use

                lore = Lore.open(self.project.root, settings=self.settings)
                lore.warm_up()
                self._lore = lore
            return self._lore

    def close(self) -> None:
        with self._lock:
            if self._lore is not None:
                self._lore.close()
                self._lore = None
        self.db.close()

    # --- who is asking ---------------------------------------------------------------------
    def caller_from_token(self, token: str) -> Caller:
        """The caller an API key names (raises a 401 :class:`Problem` for a missing, unknown or revoked key)."""
        key = self.keys.verify(token)
        if key is None:
            raise unauthorized("The API key is not valid.")
        if not key.active:
            raise unauthorized(f"The API key {key.id} was revoked on {key.revoked_at}.",
                               hint="Ask the operator for a new key (`lore keys create`).")
        return Caller(user=key.principal, principal=self.principal_of(key.principal), key_id=key.id)

    def caller_from_header(self, value: str, header: str) -> Caller:
        """The caller the trusted proxy names in ``header``."""
        identity = value.strip()
        if not identity or len(identity) > MAX_IDENTITY_CHARS:
            raise unauthorized(f"The {header} header does not name a user.")
        return Caller(user=identity, principal=self.principal_of(identity))

    def principal_of(self, identity: str) -> str:
        return str(self.lore.principal(identity).id)

    def view(self, caller: Caller) -> Lore:
        """The project as the caller may see it (the same scope the chat page and Slack give them)."""
        return self.lore.for_user(caller.user)

    # --- conversations -----------------------------------------------------------------------
    def start(self, caller: Caller) -> Conversation:
        return self.conversations.create(caller.principal, caller.user)

    def conversation(self, caller: Caller, conversation_id: str) -> Conversation:
        return self.conversations.get(conversation_id, caller.principal)

    def ask(self, caller: Caller, conversation: Conversation, question: str, *,
            on_stage: StageHook | None = None) -> Answer:
        """Ask in a conversation: a :class:`~lore.pipeline.Chat` resumed from the store (its last answered plan),
        so a follow-up refines it whichever process served the turn before."""
        chat = self.lore.chat(user=caller.user, conversation_id=conversation.id)
        last = self.conversations.last_answered(conversation.id)
        if last is not None:
            chat.history.append(last)
        answer = chat.ask(question, on_stage=on_stage)
        self.conversations.add(conversation, answer)
        return answer

    def answer(self, caller: Caller, answer_id: str) -> Answer:
        return self.conversations.answer(answer_id, caller.principal)

    def feedback(self, caller: Caller, answer_id: str, body: FeedbackIn) -> Vote:
        """A vote through ``Lore.feedback`` (its rules: ratings, corrections, one vote per person), on the caller's
        own answer; an identity from a key or the trusted proxy counts as verified, one the operator named does not."""
        self.answer(caller, answer_id)
        return self.lore.feedback(answer_id, body.rating, user=caller.user, comment=body.comment,
                                  correction=body.correction, verified=caller.verified)

    @staticmethod
    def chart(answer: Answer) -> ChartSpec:
        """The answer's chart (raises a 404 :class:`Problem` when it has none: a table, a refusal, a question back)."""
        if answer.status != "answered" or not answer.chart or not answer.chart_kind or answer.chart_kind == "table":
            raise Problem(404, "Not found", f"The answer {answer.id} has no chart (its result reads as a table, or it "
                          "has no result).", "no_chart", hint="Read its columns and rows from GET /v1/answers/{id}.")
        return ChartSpec(kind=answer.chart_kind, title=answer.chart_title or "Chart", spec=answer.chart,  # type: ignore[arg-type]
                         reason="the answer's chart")

    # --- the semantic API ----------------------------------------------------------------------
    def metrics(self, caller: Caller) -> list[Metric]:
        return list(self.view(caller).layer.metrics.values())

    def metric(self, caller: Caller, name: str) -> MetricDetail:
        view = self.view(caller)
        metric = view.layer.metric(name)
        if metric is None:
            raise NotFound(f"No metric named {name!r}.", suggestions=suggest(name, sorted(view.layer.metrics)))
        return MetricDetail(**metric.model_dump(), dimensions=dimensions_for(view, [name]))

    def dimensions(self, caller: Caller, metrics: Sequence[str]) -> list[Dimension]:
        return dimensions_for(self.view(caller), metrics)

    def compile(self, caller: Caller, body: SqlIn) -> SqlOut:
        """The SQL of a semantic query, as ``lore sql`` prints it; on DuckDB also what /v1/data would run."""
        view = self.view(caller)
        compiled = view.semantic.compile(body.metrics, body.dimensions, body.filters, body.order_by, body.limit,
                                         dialect=body.dialect)
        guarded = view.guard(compiled.sql).sql if compiled.dialect == view.dialect else None
        return SqlOut(sql=compiled.sql, dialect=compiled.dialect, columns=list(compiled.columns),
                      joins=list(compiled.joins), guarded_sql=guarded,
                      row_filters=list(view.scope.row_labels) if view.scope is not None else [])

    def data(self, caller: Caller, body: SemanticQueryIn) -> DataOut:
        """Run a semantic query through the guard (with the caller's row limits) on the warehouse, or reuse its result
        from the answer cache."""
        view = self.view(caller)
        compiled = view.semantic.compile(body.metrics, body.dimensions, body.filters, body.order_by, body.limit,
                                         dialect=view.dialect)
        result, hit = view.run_semantic(compiled)
        return DataOut(sql=result.sql or compiled.sql, columns=list(result.columns), rows=[list(r) for r in result.rows],
                       truncated=result.truncated, elapsed_ms=round(result.elapsed_ms, 2), cache_hit=hit)

    # --- readiness -------------------------------------------------------------------------------
    def readiness(self) -> dict[str, str]:
        """Each part a question needs, "ok" or what is wrong with it (the details are logged)."""
        checks: dict[str, str] = {}

        def check(name: str, probe: Callable[[], object]) -> None:
            if any(v != "ok" for v in checks.values()):
                checks[name] = "not checked"
                return
            try:
                probe()
                checks[name] = "ok"
            except LoreError as err:
                log.error("not ready: %s: %s", name, err)
                checks[name] = err.code
            except Exception:  # noqa: BLE001 - a probe answers "not ready", whatever broke; the log has the traceback
                log.exception("not ready: %s", name)
                checks[name] = "failed"

        check("project", lambda: self.lore.layer)
        check("warehouse", lambda: self.lore.run_sql("SELECT 1"))
        check("index", lambda: self.lore.retriever.count("metric"))
        check("store", self.db.ping)
        return checks


def dimensions_for(view: Lore, metrics: Sequence[str]) -> list[Dimension]:
    """The dimensions every one of ``metrics`` reaches through the layer's links, in the caller's view (all of the
    view's dimensions when no metric is named); an unknown metric is an AskerError offering the closest."""
    layer = view.layer
    for name in metrics:
        if name not in layer.metrics:
            raise UnknownReference(f"unknown metric '{name}'", suggestions=suggest(name, sorted(layer.metrics)))
    catalog = view.catalog
    facts = catalog.facts_of(metrics)
    # the warehouse's types, for attributes the layer does not type itself
    types = {t.lower(): {c.lower(): kind for c, kind in cols.items()} for t, cols in view.schema.items()}
    found: list[Dimension] = []
    if all(layer.nodes[f].time_column for f in facts):
        found.append(Dimension(ref=METRIC_TIME, label="date", kind="time", grains=list(GRAINS),
                               description="Each metric's own time column (add :day, :week, :month, :quarter or :year)."))
    for node in layer.nodes.values():
        if not catalog.reachable(facts, f"{node.name}.*"):
            continue
        table = types.get((node.table or "").lower(), {})
        for col in node.attributes:
            found.append(Dimension(ref=f"{node.name}.{col.name}", label=col.display, kind=col.kind,
                                   type=col.type or table.get(col.name.lower()),
                                   description=col.description, grains=list(col.grains) if col.kind == "time" else []))
    return found
