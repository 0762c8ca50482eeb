"""The Slack bot: a slack-bolt ``App`` wired to a LORE project.

HTTP mode (the default) serves one URL, ``/slack/events``, for events, the slash command
and button clicks; Bolt checks every request's signature and its 5-minute timestamp window
before any listener runs. Socket Mode (when an app-level token is set) needs no public URL.

Each listener acknowledges at once and does the work in a Bolt *lazy listener*, so Slack
gets its answer within 3 seconds; a reaction on the question shows LORE is working. A
Slack thread is a conversation: one ``lore.chat`` per ``(channel, thread_ts)``, kept in a
bounded LRU. Redelivered events (same ``event_id``) and clicks (same message and action
timestamps) are acknowledged and not processed again, and votes carry an idempotency key.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any, Final, Literal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from lore.errors import LoreError, OperatorError
from lore.settings import Settings
from ui.slack import blocks as kit

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.pipeline import Chat
    from lore.types import Answer

LoreFactory = Callable[[], "Lore"]

#: the one request URL of the app (events, slash command, interactivity)
EVENTS_PATH: Final = "/slack/events"
SLASH_COMMAND: Final = "/lore"
#: the reaction added to a question while LORE works on it
WORKING_REACTION: Final = "hourglass_flowing_sand"
#: answers a thread's conversation keeps (follow-ups need only the latest answered plan)
MAX_THREAD_HISTORY: Final = 8
#: requests larger than this are refused before Bolt reads them
MAX_BODY_BYTES: Final = 1 << 20
BOT_TOKEN_ENV: Final = "LORE_SLACK_BOT_TOKEN"
SIGNING_SECRET_ENV: Final = "LORE_SLACK_SIGNING_SECRET"
APP_TOKEN_ENV: Final = "LORE_SLACK_APP_TOKEN"

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
    """One Slack thread's conversation; the lock keeps its turns in order."""

    chat: Chat
    lock: threading.Lock = field(default_factory=threading.Lock)


class Conversations:
    """One ``lore.chat`` per Slack thread, least recently used forgotten first."""

    def __init__(self, maxsize: int = 512) -> None:
        self._threads: OrderedDict[tuple[str, str], Thread] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], make: Callable[[], Chat]) -> Thread:
        with self._lock:
            thread = self._threads.get(key)
            if thread is None:
                thread = self._threads[key] = Thread(make())
                if len(self._threads) > self._maxsize:
                    self._threads.popitem(last=False)
            else:
                self._threads.move_to_end(key)
            return thread

    def __len__(self) -> int:
        return len(self._threads)


def delivery_key(body: Mapping[str, Any]) -> str | None:
    """What makes a delivery unique: the event id, or the clicked message and action timestamps.

    >>> delivery_key({"type": "event_callback", "event_id": "Ev1"})
    'event:Ev1'
    >>> delivery_key({"type": "block_actions", "user": {"id": "U1"}, "container": {"message_ts": "1.1"},
    ...               "actions": [{"action_ts": "2.2"}]})
    'action:1.1:2.2:U1'
    >>> delivery_key({"command": "/lore"}) is None
    True
    """
    if body.get("type") == "event_callback" and body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("type") == "block_actions":
        actions = body.get("actions") or [{}]
        container = body.get("container") or {}
        user = (body.get("user") or {}).get("id", "")
        return f"action:{container.get('message_ts', '')}:{actions[0].get('action_ts', '')}:{user}"
    return None


class SlackBot:
    """What the listeners share: the project, the conversations and the deliveries already handled."""

    def __init__(self, lore_factory: LoreFactory, *, max_conversations: int = 512, max_rows: int = kit.MAX_TABLE_ROWS,
                 logger: logging.Logger | None = None) -> None:
        self._factory = lore_factory
        self._lore: Lore | None = None
        self._lock = threading.Lock()
        self.conversations = Conversations(max_conversations)
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

    # --- asking ---------------------------------------------------------------------
    def ask(self, channel: str, thread_ts: str, question: str, user: str) -> Answer:
        """Ask in the thread's conversation; a follow-up in the same thread keeps the context."""
        lore = self.lore
        thread = self.conversations.get(
            (channel, thread_ts), lambda: lore.chat(user=user, conversation_id=f"slack:{channel}:{thread_ts}"))
        with thread.lock:
            thread.chat.user = user  # each turn is attributed to whoever asked it
            answer = thread.chat.ask(question)
            del thread.chat.history[:-MAX_THREAD_HISTORY]  # answers carry rows: keep a long thread's memory bounded
            return answer

    def reply(self, client: WebClient, *, channel: str, thread_ts: str, question: str, user: str,
              working_ts: str | None = None) -> Answer | None:
        """Answer ``question`` in the thread: a reaction while working, then the answer and its chart."""
        if not question:
            self.post(client, channel, thread_ts, kit.notice_blocks(kit.HELP_TEXT), kit.fit(kit.HELP_TEXT, 500))
            return None
        if working_ts:
            self._reaction(client, "reactions_add", channel, working_ts)
        try:
            try:
                answer = self.ask(channel, thread_ts, question, user)
            except LoreError as err:  # the message says what to do next (configuration details stay in the log)
                text = str(err)
                if err.audience == "operator":
                    self.logger.error("LORE is misconfigured: %s", err)
                    text = "LORE is not set up correctly to answer this; the operator can find the details in the bot's log."
                self.post(client, channel, thread_ts, kit.notice_blocks(text), kit.fit(text, kit.CONTEXT_LIMIT))
                return None
            except Exception:  # an adapter must not leave a question unanswered; the details go to the log
                self.logger.exception("LORE failed to answer a Slack question")
                text = "Sorry, LORE hit an internal error answering this. The operator can find the details in the bot's log."
                self.post(client, channel, thread_ts, kit.notice_blocks(text), text)
                return None
            definitions = kit.definitions_used(answer.plan, self.lore.layer) if answer.plan is not None else ()
            blocks = kit.answer_blocks(answer, definitions=definitions, max_rows=self.max_rows)
            self.post(client, channel, thread_ts, blocks, kit.fallback_text(answer))
            self.upload_chart(client, channel, thread_ts, answer)
            return answer
        finally:
            if working_ts:
                self._reaction(client, "reactions_remove", channel, working_ts)

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
            vote = self.lore.feedback(answer_id, rating, user=kit.slack_identity(team_id, user_id), idempotency_key=key)
        except LoreError as err:  # unknown answer, feedback switched off, store unavailable: tell the voter
            self._ephemeral(client, channel, user_id, str(err))
            return False
        if vote.note and not vote.duplicate:
            self._ephemeral(client, channel, user_id, vote.note)
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
    the app calls ``auth.test`` once to learn the bot's own user id.
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
    bot = bot or SlackBot(lore_factory, logger=app.logger)
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
        channel, user_id = command["channel_id"], command["user_id"]
        try:
            started = bot.post(client, channel, None, kit.question_blocks(user_id, question), kit.fit(question, 500))
        except SlackApiError as err:
            bot.logger.info("/lore could not post in %s: %s", channel, err)
            respond(text="I can't post in this conversation. Invite me with `/invite @LORE`, or mention me "
                         "in a channel I'm in, or send me a direct message.", response_type="ephemeral")
            return
        bot.reply(client, channel=channel, thread_ts=started["ts"], question=question,
                  user=kit.slack_identity(context.team_id or command.get("team_id"), user_id))

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
    thread_ts = event.get("thread_ts") or ts
    question = kit.question_text(event.get("text") or "", context.bot_user_id)
    team_id = context.team_id or event.get("team")
    bot.reply(client, channel=channel, thread_ts=thread_ts, question=question,
              user=kit.slack_identity(team_id, user_id), working_ts=ts)


# --- serving ------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        logging.getLogger("lore.slack.http").debug("%s " + format, self.address_string(), *args)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def wsgi_app(app: App, path: str = EVENTS_PATH) -> Callable[..., Iterable[bytes]]:
    """The Bolt app as a WSGI application, refusing oversized bodies before they are read."""
    handler = SlackRequestHandler(app, path=path)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            start_response("413 Payload Too Large", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Payload Too Large"]
        return handler(environ, start_response)

    return application


def serve_http(app: App, host: str = "127.0.0.1", port: int = 3000, *, path: str = EVENTS_PATH) -> WSGIServer:
    """A threaded HTTP server for the app (call ``serve_forever()``; ``port=0`` picks a free port)."""
    return make_server(host, port, wsgi_app(app, path), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)


def run(lore_factory: LoreFactory, settings: Settings, *, host: str | None = None, port: int | None = None,
        on_ready: Callable[[str], None] | None = None) -> None:
    """Run the bot until interrupted: Socket Mode with an app token, else HTTP on ``host:port``."""
    creds = require_credentials(settings)
    bot = SlackBot(lore_factory)
    app = build_app(lore_factory, settings, bot=bot)
    try:
        if slack_mode(settings) == "socket":
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            if on_ready:
                on_ready("Connecting to Slack in Socket Mode.")
            SocketModeHandler(app, creds.app_token).start()
            return
        server = serve_http(app, host or settings.slack_host, port or settings.slack_port)
        if on_ready:
            on_ready(f"Listening on http://{server.server_address[0]}:{server.server_address[1]}{EVENTS_PATH}")
        try:
            server.serve_forever()
        finally:
            server.server_close()
    finally:
        bot.close()
