"""The Slack bot: a slack-bolt ``App`` wired to a LORE project.

HTTP mode (the default) serves one URL, ``/slack/events``, for events, the slash command
and button clicks, as an ASGI route (:mod:`ui.slack.asgi`) that ``lore slack`` serves on
uvicorn and ``lore serve`` adds to the HTTP API's app. Each request's signature and 5-minute
timestamp window are checked on the raw bytes before anything parses the body (forged or
stale: 401; signed but not a Slack payload: 400), and Bolt checks them again before any
listener runs. Socket Mode (when an app-level token is set) needs no public URL.

Each listener acknowledges at once and does the work in a Bolt *lazy listener*, so Slack
gets its answer within 3 seconds; a reaction on the question shows LORE is working. A
Slack thread is a conversation, kept in a bounded LRU and always computed in one scope.
Redelivered events (same ``event_id``), clicks (same message and action timestamps) and
replayed slash commands (same ``trigger_id``) are acknowledged and not processed again, and
votes carry an idempotency key.

Who reads an answer decides what it may contain (when the project has an ``access:`` section):
a direct message is answered in the asker's scope; in a channel, the answer is computed in the
narrowest scope of the channel's members (``conversations.members``, cached for a few minutes)
or, with ``LORE_SLACK_CHANNEL_SCOPE=ephemeral``, in the asker's scope and shown to the asker
alone. When the members cannot be listed, the answer is shown to the asker alone, never posted
in the asker's scope.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qsl

from slack_bolt import App, BoltResponse
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from lore.errors import LoreError, OperatorError
from lore.settings import Settings
from ui.slack import blocks as kit

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.types import Answer, QueryPlan

LoreFactory = Callable[[], "Lore"]
#: where channel answers are computed: the members' narrowest scope, or the asker's scope shown to the asker alone
ChannelScope = Literal["members", "ephemeral"]

#: the one request URL of the app (events, slash command, interactivity)
EVENTS_PATH: Final = "/slack/events"
SLASH_COMMAND: Final = "/lore"
#: the reaction added to a question while LORE works on it
WORKING_REACTION: Final = "hourglass_flowing_sand"
#: answers a thread's conversation keeps (follow-ups need only the latest answered plan)
MAX_THREAD_HISTORY: Final = 8
#: requests larger than this are refused before Bolt reads them
MAX_BODY_BYTES: Final = 1 << 20
#: how far a request's timestamp may be from now (Slack's replay window)
SIGNATURE_WINDOW_SECONDS: Final = 5 * 60
#: how long a channel's member list is trusted, and how many channels' lists are remembered
MEMBERS_TTL_SECONDS: Final = 300.0
MAX_CACHED_CHANNELS: Final = 1024
#: members asked for per page of conversations.members, and the most pages read (a larger channel fails closed)
MEMBERS_PAGE_SIZE: Final = 1000
MAX_MEMBER_PAGES: Final = 50
BOT_TOKEN_ENV: Final = "LORE_SLACK_BOT_TOKEN"
SIGNING_SECRET_ENV: Final = "LORE_SLACK_SIGNING_SECRET"
APP_TOKEN_ENV: Final = "LORE_SLACK_APP_TOKEN"
CHANNEL_SCOPE_ENV: Final = "LORE_SLACK_CHANNEL_SCOPE"
#: said above an answer shown to the asker alone because the channel's members could not be listed
MEMBERS_UNKNOWN_NOTE: Final = ("Only you can see this answer: LORE could not check who else is in this conversation, "
                               "so it did not answer for everyone here.")

_VOTE_ACTION = re.compile(r"^lore_vote_(up|down)$")


# --- configuration ------------------------------------------------------------------------


def slack_mode(settings: Settings) -> Literal["http", "socket"]:
    """Socket Mode when an app-level token is set, HTTP otherwise."""
    return "socket" if _secret(settings.slack_app_token) else "http"


def _secret(value: Any) -> str:
    return value.get_secret_value().strip() if value is not None else ""


@dataclass(frozen=True)
class Credentials:
    bot_token: str
    signing_secret: str
    app_token: str


def require_credentials(settings: Settings) -> Credentials:
    """The bot token and, for HTTP mode, the signing secret; a missing one raises an error naming the variable."""
    creds = Credentials(_secret(settings.slack_bot_token), _secret(settings.slack_signing_secret),
                        _secret(settings.slack_app_token))
    missing = [BOT_TOKEN_ENV] if not creds.bot_token else []
    if slack_mode(settings) == "http" and not creds.signing_secret:
        missing.append(SIGNING_SECRET_ENV)
    if missing:
        raise OperatorError(
            f"The Slack bot needs {' and '.join(missing)}.",
            hint=f"Set {BOT_TOKEN_ENV} to the bot token (xoxb-..., OAuth & Permissions) and {SIGNING_SECRET_ENV} "
                 f"to the signing secret (Basic Information > App Credentials); or set {APP_TOKEN_ENV} (xapp-...) "
                 "to run in Socket Mode. See docs/slack.md.",
        )
    if creds.app_token and not creds.app_token.startswith("xapp-"):
        raise OperatorError(f"{APP_TOKEN_ENV} must be an app-level token starting with xapp-.",
                            hint="Create one under Basic Information > App-Level Tokens with the connections:write scope.")
    return creds


# --- checking a request before anything reads it -----------------------------------------------


def verify_signature(secret: str, body: bytes, timestamp: str | None, signature: str | None, *, now: float) -> bool:
    """Slack's check on the raw bytes: ``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}``, timestamp within 5 minutes.

    Anything unexpected (no secret, a missing or non-numeric timestamp, a signature that is not ASCII) is
    simply not valid: this never raises.

    >>> sig = "v0=" + hmac.new(b"s3cret", b"v0:1000:{}", hashlib.sha256).hexdigest()
    >>> verify_signature("s3cret", b"{}", "1000", sig, now=1100.0), verify_signature("s3cret", b"{}", "1000", sig, now=1400.0)
    (True, False)
    >>> verify_signature("s3cret", b"{} ", "1000", sig, now=1100.0), verify_signature("other", b"{}", "1000", sig, now=1100.0)
    (False, False)
    >>> [verify_signature("s3cret", b"{}", ts, sig, now=1100.0) for ts in ("soon", "", None, "1e3", "-1000", "１０００")]
    [False, False, False, False, False, False]
    >>> verify_signature("s3cret", b"{}", "1000", "v0=é", now=1100.0), verify_signature("", b"{}", "1000", sig, now=1100.0)
    (False, False)
    """
    if not secret or not timestamp or not signature:
        return False
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        return False
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


#: fields of a Slack payload that Bolt and LORE read as objects, or as lists of objects, when present
_OBJECT_FIELDS: Final = ("event", "team", "user", "container", "channel", "message", "view")
_LIST_FIELDS: Final = ("actions", "authorizations")


def _json_object_problem(text: str, what: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        return f"{what} is not valid JSON"
    if not isinstance(value, dict):
        return f"{what} is not a JSON object"
    for name in _OBJECT_FIELDS:
        if value.get(name) is not None and not isinstance(value[name], dict):
            return f"{what}'s {name!r} is not an object"
    for name in _LIST_FIELDS:
        items = value.get(name)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, dict) for i in items)):
            return f"{what}'s {name!r} is not a list of objects"
    return None


def payload_problem(body: bytes, content_type: str | None) -> str | None:
    """Why a (signed) body is not a Slack payload, read the way Bolt reads it; None when it is one.

    >>> payload_problem(b'{"type": "event_callback", "event": {}}', "application/json") is None
    True
    >>> payload_problem(b'{"type": "event_callback", "event": ', "application/json")
    'the JSON body is not valid JSON'
    >>> payload_problem(b"[1,2,3]", "application/json; charset=utf-8")
    'the JSON body is not a JSON object'
    >>> payload_problem(b"payload=%7Bnot-json", "application/x-www-form-urlencoded")
    'the payload field is not valid JSON'
    >>> payload_problem(b"command=%2Flore&text=hi", "application/x-www-form-urlencoded") is None
    True
    >>> payload_problem(b'{"type": "block_actions", "actions": "x"}', "application/json")
    "the JSON body's 'actions' is not a list of objects"
    >>> payload_problem(b"\\xff\\xfe", "application/json")
    'the body is not UTF-8'
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    if not text:
        return None
    if (content_type or "").split(";")[0] == "application/json" or text.startswith("{"):
        return _json_object_problem(text, "the JSON body")
    if "payload" in text:
        payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
        if payload is not None:
            return _json_object_problem(payload, "the payload field")
    return None


# --- state ------------------------------------------------------------------------------


class Seen:
    """A bounded, thread-safe set of keys already handled (the oldest are forgotten first)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        """True the first time ``key`` is seen, False for every repeat."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            if len(self._keys) > self._maxsize:
                self._keys.popitem(last=False)
            return True


@dataclass
class Thread:
    """One Slack thread's conversation, always computed in one scope; the lock keeps its turns in order."""

    id: str
    #: the scope every turn so far was computed in (a new scope starts the conversation afresh)
    scope: Lore | None = None
    history: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def last_answered(self) -> Answer | None:
        """The answer a follow-up refines: the latest answered one (its plan and its confidence)."""
        from lore.pipeline import last_answered

        return last_answered(self.history)

    @property
    def last_plan(self) -> QueryPlan | None:
        """The plan a follow-up refines: the latest answered one."""
        last = self.last_answered
        return last.plan if last is not None else None


class Conversations:
    """One conversation per Slack thread (per asker too, for answers only the asker sees), least recently used forgotten first."""

    def __init__(self, maxsize: int = 512) -> None:
        self._threads: OrderedDict[tuple[str, ...], Thread] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], make: Callable[[], Thread]) -> Thread:
        with self._lock:
            thread = self._threads.get(key)
            if thread is None:
                thread = self._threads[key] = make()
                if len(self._threads) > self._maxsize:
                    self._threads.popitem(last=False)
            else:
                self._threads.move_to_end(key)
            return thread

    def __len__(self) -> int:
        return len(self._threads)


def delivery_key(body: Mapping[str, Any]) -> str | None:
    """What makes a delivery unique: the event id, the clicked message and action timestamps, or the command's trigger.

    >>> delivery_key({"type": "event_callback", "event_id": "Ev1"})
    'event:Ev1'
    >>> delivery_key({"type": "block_actions", "user": {"id": "U1"}, "container": {"message_ts": "1.1"},
    ...               "actions": [{"action_ts": "2.2"}]})
    'action:1.1:2.2:U1'
    >>> delivery_key({"command": "/lore", "team_id": "T1", "trigger_id": "13345.7890.abc"})
    'command:T1:13345.7890.abc'
    >>> delivery_key({"command": "/lore", "text": "hours"}) == delivery_key({"text": "hours", "command": "/lore"})
    True
    >>> delivery_key({"type": "url_verification"}) is None
    True
    """
    if body.get("type") == "event_callback" and body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("type") == "block_actions":
        actions = body.get("actions") or [{}]
        container = body.get("container") or {}
        user = (body.get("user") or {}).get("id", "")
        return f"action:{container.get('message_ts', '')}:{actions[0].get('action_ts', '')}:{user}"
    if body.get("command"):
        # Slack gives every invocation its own trigger id; without one, the same signed content is the same command
        trigger = body.get("trigger_id") or hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        return f"command:{body.get('team_id') or '-'}:{trigger}"
    return None


def fetch_members(client: WebClient, channel: str) -> frozenset[str]:
    """Every member of a conversation (user ids), through every page of ``conversations.members``.

    Raises :class:`OperatorError` when Slack does not say (missing scope, not in the channel, rate limited,
    unreachable, or too many members to read): the caller must then not answer for the whole channel.
    """
    members: set[str] = set()
    cursor: str | None = None
    for _ in range(MAX_MEMBER_PAGES):
        try:
            page = client.conversations_members(channel=channel, limit=MEMBERS_PAGE_SIZE, cursor=cursor)
        except SlackApiError as err:
            raise OperatorError(f"Slack did not list the members of {channel}: {err.response.get('error')}.",
                                hint="Grant the bot the channels:read, groups:read, im:read and mpim:read scopes "
                                     f"and reinstall the app, or set {CHANNEL_SCOPE_ENV}=ephemeral.") from None
        except (SlackClientError, OSError) as err:
            raise OperatorError(f"Could not reach Slack to list the members of {channel}: {err}",
                                hint="Check the network (and any proxy) between this machine and slack.com.") from None
        members.update(str(m) for m in page.get("members") or ())
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if cursor is None:
            return frozenset(members)
    raise OperatorError(f"{channel} has more than {MAX_MEMBER_PAGES * MEMBERS_PAGE_SIZE:,} members; LORE does not "
                        "answer for all of them at once.", hint=f"Set {CHANNEL_SCOPE_ENV}=ephemeral for such channels.")


class ChannelMembers:
    """Who is in each conversation, remembered for a few minutes (bounded: the least recently used channel goes first)."""

    def __init__(self, *, ttl: float = MEMBERS_TTL_SECONDS, maxsize: int = MAX_CACHED_CHANNELS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, frozenset[str]]] = OrderedDict()
        self._ttl = ttl
        self._maxsize = maxsize
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, client: WebClient, channel: str) -> frozenset[str]:
        """The members' user ids (raises :class:`OperatorError` like :func:`fetch_members`; failures are not remembered)."""
        with self._lock:
            entry = self._entries.get(channel)
            if entry is not None and self._clock() - entry[0] < self._ttl:
                self._entries.move_to_end(channel)
                return entry[1]
        members = fetch_members(client, channel)
        with self._lock:
            self._entries[channel] = (self._clock(), members)
            self._entries.move_to_end(channel)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
        return members


@dataclass(frozen=True)
class Where:
    """Where a question was asked and by whom, all from the signed payload."""

    channel: str
    thread_ts: str
    user_id: str
    team_id: str | None = None
    #: Slack's channel type when the payload gives it ("im": a direct message with LORE)
    channel_type: str | None = None
    #: LORE's own user id: a member of every channel it answers in, not a reader to narrow the answer for
    bot_user_id: str | None = None

    @property
    def asker(self) -> str:
        return kit.slack_identity(self.team_id, self.user_id)


@dataclass(frozen=True)
class Audience:
    """Who will read an answer: it decides the scope the answer is computed in and how it is posted."""

    scope: Lore
    #: the one Slack user the answer is shown to (chat.postEphemeral); None: everyone in the conversation
    only: str | None
    #: the conversation the question continues: the thread, or the asker's private side of it
    key: tuple[str, ...]
    #: said above the answer (why only the asker sees it)
    note: str | None = None


class SlackBot:
    """What the listeners share: the project, the conversations, channel members and the deliveries already handled."""

    def __init__(self, lore_factory: LoreFactory, *, channel_scope: ChannelScope = "members",
                 max_conversations: int = 512, max_rows: int = kit.MAX_TABLE_ROWS,
                 members: ChannelMembers | None = None, logger: logging.Logger | None = None) -> None:
        self._factory = lore_factory
        self._lore: Lore | None = None
        self._lock = threading.Lock()
        self.channel_scope: ChannelScope = channel_scope
        self.conversations = Conversations(max_conversations)
        self.members = members or ChannelMembers()
        self.deliveries = Seen()
        self.messages = Seen()
        self.max_rows = max_rows
        self.logger = logger or logging.getLogger("lore.slack")

    @property
    def lore(self) -> Lore:
        """The project, opened on first use; its shared parts are built once, before threads share them."""
        with self._lock:
            if self._lore is None:
                lore = self._factory()
                _ = lore.planner, lore.compiler
                self._lore = lore
            return self._lore

    def close(self) -> None:
        with self._lock:
            if self._lore is not None:
                self._lore.close()
                self._lore = None

    # --- who reads the answer -------------------------------------------------------------
    def audience(self, client: WebClient, where: Where) -> Audience:
        """The scope and the delivery of an answer: the asker's own in a DM; in a channel, every member's
        narrowest scope (or the asker's, shown to the asker alone, as the operator chose). A member list
        Slack does not give never widens the answer for the channel: it goes to the asker alone."""
        lore = self.lore
        thread = (where.channel, where.thread_ts)
        private = (*thread, where.user_id)
        if where.channel_type == "im":
            return Audience(lore.for_user(where.asker), None, thread)
        if self.channel_scope == "ephemeral":
            return Audience(lore.for_user(where.asker), where.user_id, private)
        if lore.access is None:  # no per-user limits: everyone sees the whole project, no need to ask who is there
            return Audience(lore, None, thread)
        try:
            members = self.members.get(client, where.channel)
        except OperatorError as err:
            self.logger.warning("answering %s privately: %s %s", where.channel, err, err.hint or "")
            return Audience(lore.for_user(where.asker), where.user_id, private, note=MEMBERS_UNKNOWN_NOTE)
        readers = {kit.slack_identity(where.team_id, m) for m in members if m != where.bot_user_id}
        readers.add(where.asker)
        return Audience(lore.for_users(sorted(readers)), None, thread)

    # --- asking ---------------------------------------------------------------------
    def ask(self, audience: Audience, question: str, user: str) -> Answer:
        """Ask in the conversation of ``audience`` and in its scope; a follow-up keeps the context of that scope.

        Each turn is attributed to whoever asked it (``user``). When the scope changed since the last turn (the
        channel's members came or went), the conversation starts afresh: a plan made for other readers is not reused.
        """
        from lore.pipeline import ask

        thread = self.conversations.get(audience.key, lambda: Thread(id="slack:" + ":".join(audience.key)))
        with thread.lock:
            if thread.scope is not audience.scope:
                thread.scope, thread.history = audience.scope, []
            last = thread.last_answered
            answer = ask(audience.scope, question, previous=last.plan if last else None, user=user,
                         conversation_id=thread.id, previous_confidence=last.confidence if last else None)
            thread.history.append(answer)
            del thread.history[:-MAX_THREAD_HISTORY]  # answers carry rows: keep a long thread's memory bounded
            return answer

    def reply(self, client: WebClient, where: Where, question: str, *, working_ts: str | None = None) -> Answer | None:
        """Answer ``question`` in the thread, for its audience: a reaction while working, then the answer and its chart."""
        if not question:
            self.post(client, where.channel, where.thread_ts, kit.notice_blocks(kit.HELP_TEXT), kit.fit(kit.HELP_TEXT, 500))
            return None
        if working_ts:
            self._reaction(client, "reactions_add", where.channel, working_ts)
        audience: Audience | None = None
        try:
            try:
                audience = self.audience(client, where)
                answer = self.ask(audience, question, where.asker)
            except LoreError as err:  # the message says what to do next (configuration details stay in the log)
                text = str(err)
                if err.audience == "operator":
                    self.logger.error("LORE is misconfigured: %s", err)
                    text = "LORE is not set up correctly to answer this; the operator can find the details in the bot's log."
                self.deliver(client, where, audience, kit.notice_blocks(text), kit.fit(text, kit.CONTEXT_LIMIT))
                return None
            except Exception:  # an adapter must not leave a question unanswered; the details go to the log
                self.logger.exception("LORE failed to answer a Slack question")
                text = "Sorry, LORE hit an internal error answering this. The operator can find the details in the bot's log."
                self.deliver(client, where, audience, kit.notice_blocks(text), text)
                return None
            definitions = kit.definitions_used(answer.plan, audience.scope.layer) if answer.plan is not None else ()
            blocks = kit.answer_blocks(answer, definitions=definitions, max_rows=self.max_rows)
            self.deliver(client, where, audience, blocks, kit.fallback_text(answer))
            if audience.only is None:  # a file in the thread is seen by everyone there
                self.upload_chart(client, where.channel, where.thread_ts, answer)
            return answer
        finally:
            if working_ts:
                self._reaction(client, "reactions_remove", where.channel, working_ts)

    def deliver(self, client: WebClient, where: Where, audience: Audience | None, blocks: list[kit.Block],
                text: str) -> Any:
        """Post in the thread for everyone, or show to the one user of an ephemeral audience."""
        if audience is None or audience.only is None:
            return self.post(client, where.channel, where.thread_ts, blocks, text)
        if audience.note:
            blocks = [kit.private_note_block(audience.note), *blocks]
        return client.chat_postEphemeral(**kit.ephemeral_args(where.channel, audience.only, where.thread_ts, blocks, text))

    def post(self, client: WebClient, channel: str, thread_ts: str | None, blocks: list[kit.Block], text: str) -> Any:
        return client.chat_postMessage(**kit.message_args(channel, thread_ts, blocks, text))

    def upload_chart(self, client: WebClient, channel: str, thread_ts: str, answer: Answer) -> bool:
        """Render the answer's Vega-Lite chart to PNG (vl-convert, offline) and upload it into the thread."""
        from lore.chart import chart_png

        chart = kit.answer_chart(answer)
        if chart is None:
            return False
        try:
            png = chart_png(chart)
        except (LoreError, ValueError) as err:
            self.logger.warning("chart for answer %s not rendered: %s", answer.id, err)
            return False
        title = kit.plain_title(answer.chart_title or "Chart")
        try:
            client.files_upload_v2(channel=channel, thread_ts=thread_ts, file=png, filename="lore-chart.png",
                                   title=title, alt_txt=title)
        except (SlackApiError, SlackClientError) as err:
            self.logger.warning("chart upload failed (is the files:write scope granted?): %s", err)
            return False
        return True

    def _reaction(self, client: WebClient, method: str, channel: str, ts: str) -> None:
        try:
            getattr(client, method)(channel=channel, timestamp=ts, name=WORKING_REACTION)
        except SlackClientError as err:  # a missing reaction never stops an answer
            self.logger.info("%s failed: %s", method, err)

    # --- voting ----------------------------------------------------------------------
    def vote(self, client: WebClient, body: Mapping[str, Any], action: Mapping[str, Any]) -> bool:
        """Record a thumbs up or down through the feedback API, then show on the message that it was recorded."""
        answer_id = str(action.get("value") or "")
        match = _VOTE_ACTION.match(str(action.get("action_id") or ""))
        if match is None or not kit.is_answer_id(answer_id):
            self.logger.warning("ignored a click with an unexpected action or value")
            return False
        rating = 1 if match.group(1) == "up" else -1
        team_id = (body.get("team") or {}).get("id")
        user_id = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        message_ts = container.get("message_ts", "")
        key = kit.vote_key(team_id, channel, message_ts, str(action.get("action_ts", "")), user_id)
        try:
            # the voter comes from the signed click (or the authenticated socket): a verified identity
            vote = self.lore.feedback(answer_id, rating, user=kit.slack_identity(team_id, user_id), idempotency_key=key,
                                      verified=True)
        except LoreError as err:  # unknown answer, feedback switched off, store unavailable: tell the voter
            self._ephemeral(client, channel, user_id, str(err))
            return False
        if vote.note and not vote.duplicate:
            self._ephemeral(client, channel, user_id, vote.note)
        if container.get("is_ephemeral"):  # Slack cannot update a message only one person sees: tell them instead
            self._ephemeral(client, channel, user_id, kit.vote_status_text(rating))
            return True
        message = body.get("message") or {}
        client.chat_update(channel=channel, ts=message_ts, blocks=kit.voted_blocks(message.get("blocks") or [], rating),
                           text=message.get("text") or "LORE answer")
        return True

    def _ephemeral(self, client: WebClient, channel: str, user_id: str, text: str) -> None:
        try:
            client.chat_postEphemeral(channel=channel, user=user_id, text=kit.fit(text, kit.CONTEXT_LIMIT))
        except SlackApiError as err:
            self.logger.info("chat.postEphemeral failed: %s", err)


# --- the app ------------------------------------------------------------------------------


def build_app(lore_factory: LoreFactory, settings: Settings, *, client: WebClient | None = None,
              bot: SlackBot | None = None) -> App:
    """A slack-bolt ``App`` answering app mentions, direct messages, ``/lore`` and the feedback buttons.

    ``lore_factory`` opens the project (called once, on first use). ``client`` is the Web API client
    to use (tests point one at a local stand-in); it gets the bot token when it has none. Building
    the app calls ``auth.test`` once to learn the bot's own user id. Without ``bot``, one is made with
    the settings' channel scope (``LORE_SLACK_CHANNEL_SCOPE``).
    """
    creds = require_credentials(settings)
    if client is None:
        client = WebClient(token=creds.bot_token)
    elif not client.token:
        client = WebClient(token=creds.bot_token, base_url=client.base_url, timeout=client.timeout)
    # Socket Mode skips signature checks (the socket is authenticated); a random secret makes sure
    # no HTTP request could ever verify if this app were served over HTTP by mistake.
    secret = creds.signing_secret or secrets.token_hex(32)
    try:
        app = App(name="lore", client=client, signing_secret=secret, process_before_response=False)
    except BoltError as err:  # auth.test said no
        raise OperatorError(f"Slack did not accept the bot token: {err}",
                            hint=f"Check {BOT_TOKEN_ENV} (OAuth & Permissions > Bot User OAuth Token).") from None
    except (SlackClientError, OSError) as err:
        raise OperatorError(f"Could not reach Slack to check the bot token: {err}",
                            hint="Check the network (and any proxy) between this machine and slack.com.") from None
    bot = bot or SlackBot(lore_factory, channel_scope=settings.slack_channel_scope, logger=app.logger)
    app.use(_dedupe(bot))
    register_listeners(app, bot)
    return app


def _dedupe(bot: SlackBot) -> Callable[..., Any]:
    def dedupe_deliveries(body: dict[str, Any], req: Any, next: Callable[[], None], logger: logging.Logger) -> Any:
        key = delivery_key(body)
        if key is not None and not bot.deliveries.first(key):
            retry = (req.headers.get("x-slack-retry-num") or [None])[0]
            logger.info("acknowledged a repeated delivery %s (retry %s) without processing it again", key, retry)
            return BoltResponse(status=200, body="")
        next()
        return None

    return dedupe_deliveries


def register_listeners(app: App, bot: SlackBot) -> None:
    """Mentions, DMs, the slash command and the vote buttons: each acks at once and works lazily."""

    def ack_now(ack: Callable[..., None]) -> None:
        ack()

    def answer_mention(event: dict[str, Any], client: WebClient, context: Any) -> None:
        _answer_message(bot, event, client, context)

    def answer_direct_message(event: dict[str, Any], client: WebClient, context: Any) -> None:
        if event.get("channel_type") == "im" and not event.get("subtype"):
            _answer_message(bot, event, client, context)

    def ack_command(ack: Callable[..., None], command: dict[str, Any], context: Any) -> None:
        question = kit.question_text(command.get("text") or "", context.bot_user_id)
        if question:
            ack(text="Working on it: " + kit.fit(question, 500))
        else:
            ack(text=kit.escape(kit.HELP_TEXT))

    def answer_command(command: dict[str, Any], client: WebClient, context: Any, respond: Any) -> None:
        question = kit.question_text(command.get("text") or "", context.bot_user_id)
        if not question:
            return
        channel, user_id = str(command.get("channel_id") or ""), str(command.get("user_id") or "")
        if not channel or not user_id:
            bot.logger.warning("ignored a /lore command without a channel or a user")
            return
        try:
            started = bot.post(client, channel, None, kit.question_blocks(user_id, question), kit.fit(question, 500))
        except SlackApiError as err:
            bot.logger.info("/lore could not post in %s: %s", channel, err)
            respond(text="I can't post in this conversation. Invite me with `/invite @LORE`, or mention me "
                         "in a channel I'm in, or send me a direct message.", response_type="ephemeral")
            return
        where = Where(channel=channel, thread_ts=started["ts"], user_id=user_id,
                      team_id=context.team_id or command.get("team_id"), bot_user_id=context.bot_user_id)
        bot.reply(client, where, question)

    def record_vote(body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        bot.vote(client, body, action)

    app.event("app_mention")(ack=ack_now, lazy=[answer_mention])
    app.event("message")(ack=ack_now, lazy=[answer_direct_message])
    app.command(SLASH_COMMAND)(ack=ack_command, lazy=[answer_command])
    app.action(_VOTE_ACTION)(ack=ack_now, lazy=[record_vote])


def _answer_message(bot: SlackBot, event: Mapping[str, Any], client: WebClient, context: Any) -> None:
    user_id, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not user_id or not channel or not ts or event.get("bot_id"):
        return  # not a person's message
    if not bot.messages.first((channel, ts)):
        return  # the same message came as a mention and as a DM
    question = kit.question_text(event.get("text") or "", context.bot_user_id)
    where = Where(channel=channel, thread_ts=event.get("thread_ts") or ts, user_id=user_id,
                  team_id=context.team_id or event.get("team"), channel_type=event.get("channel_type"),
                  bot_user_id=context.bot_user_id)
    bot.reply(client, where, question, working_ts=ts)


# --- serving ------------------------------------------------------------------------------


def run(lore_factory: LoreFactory, settings: Settings, *, host: str | None = None, port: int | None = None,
        on_ready: Callable[[str], None] | None = None) -> None:
    """Run the bot until interrupted: Socket Mode with an app token, else HTTP on ``host:port`` (uvicorn serving
    :func:`ui.slack.asgi.slack_app`: ``/slack/events`` and ``/healthz``)."""
    creds = require_credentials(settings)
    bot = SlackBot(lore_factory, channel_scope=settings.slack_channel_scope)
    app = build_app(lore_factory, settings, bot=bot)
    try:
        if slack_mode(settings) == "socket":
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            if on_ready:
                on_ready("Connecting to Slack in Socket Mode.")
            SocketModeHandler(app, creds.app_token).start()
            return
        from ui.slack.asgi import http_server, slack_app  # lazy: the server loads in HTTP mode only

        server, sock = http_server(slack_app(app, signing_secret=creds.signing_secret),
                                   host or settings.slack_host, port or settings.slack_port)
        if on_ready:
            bound = sock.getsockname()
            on_ready(f"Listening on http://{bound[0]}:{bound[1]}{EVENTS_PATH}")
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
    finally:
        bot.close()
