"""Test helpers: a local stand-in for the Slack Web API, signed requests, Slack payloads, and the bot served on loopback.

The stand-in listens on 127.0.0.1, answers the Web API methods the bot uses the way Slack
documents them (including the three steps of ``files_upload_v2``: files.getUploadURLExternal,
a POST of the bytes to the returned URL, files.completeUploadExternal, and the cursor pages of
``conversations.members``), and records every call.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BOT_USER = "UBOT"
TEAM = "T0LORE"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    raw: bytes = b""
    #: what the stand-in answered
    reply: Any = None
    at: float = field(default_factory=time.monotonic)


class SlackStandIn:
    """Serves ``/api/<method>``, ``/upload/<file_id>`` and ``/respond/<id>``; records every call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ts = itertools.count(1)
        self._files = itertools.count(1)
        #: method -> event the handler waits on before answering (to hold a call back)
        self.gates: dict[str, threading.Event] = {}
        #: channels where chat.postMessage fails with not_in_channel
        self.closed_channels: set[str] = {"CNOTIN"}
        #: who is in each conversation (conversations.members); any other channel is channel_not_found
        self.members: dict[str, list[str]] = {"C0DATA": [BOT_USER, "U0ASKER", "U0VOTER", "U0BOSS"],
                                              "D0ASKER": [BOT_USER, "U0ASKER"]}
        #: channel -> the error conversations.members answers with (e.g. missing_scope)
        self.members_errors: dict[str, str] = {}
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if self.command == "POST" else b""
                status, payload = standin._handle(self.path, dict(self.headers.items()), raw)
                data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST  # noqa: N815 - methods such as conversations.members are GETs with query parameters

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def start(self) -> SlackStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        for gate in self.gates.values():
            gate.set()
        self.server.shutdown()
        self.server.server_close()

    # --- recording ------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 30.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self.calls if c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"expected {count} call(s) to {method} within {timeout}s; got {seen}")
                self._changed.wait(left)

    # --- answering ------------------------------------------------------------------
    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        url = urllib.parse.urlsplit(path)
        if url.path.startswith("/upload/"):
            self._record(Call("upload", {"file_id": url.path.rsplit("/", 1)[-1]}, headers, raw))
            return 200, b"OK"
        if url.path.startswith("/respond/"):
            self._record(Call("respond", json.loads(raw or b"{}"), headers, raw))
            return 200, b"ok"
        method = url.path.removeprefix("/api/")
        params: dict[str, Any] = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        ctype = headers.get("Content-Type", "")
        if "json" in ctype:
            params.update(json.loads(raw or b"{}"))
        elif raw:
            params.update({k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()})
        gate = self.gates.get(method)
        if gate is not None:
            gate.wait(30)
        if headers.get("Authorization") == "Bearer xoxb-revoked":
            reply: dict[str, Any] = {"ok": False, "error": "invalid_auth"}
        else:
            reply = self._reply(method, params)
        self._record(Call(method, params, headers, raw, reply))
        return 200, reply

    def _reply(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://lore-test.slack.com/", "team": "LORE test", "user": "lore",
                    "team_id": TEAM, "user_id": BOT_USER, "bot_id": "BBOT", "is_enterprise_install": False}
        if method == "chat.postMessage":
            if params.get("channel") in self.closed_channels:
                return {"ok": False, "error": "not_in_channel"}
            ts = f"1700000000.{next(self._ts):06d}"
            return {"ok": True, "channel": params.get("channel"), "ts": ts,
                    "message": {"type": "message", "text": params.get("text"), "ts": ts, "bot_id": "BBOT"}}
        if method == "chat.update":
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts"), "text": params.get("text")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if method in ("reactions.add", "reactions.remove"):
            return {"ok": True}
        if method == "conversations.members":
            return self._members(params)
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._files):08d}"
            return {"ok": True, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = json.loads(params.get("files") or "[]")
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title"), "name": "lore-chart.png"} for f in files]}
        return {"ok": False, "error": "unknown_method"}

    def _members(self, params: dict[str, Any]) -> dict[str, Any]:
        """One page of a conversation's members; the cursor is the offset of the next page."""
        channel = str(params.get("channel") or "")
        if channel in self.members_errors:
            return {"ok": False, "error": self.members_errors[channel]}
        if channel not in self.members:
            return {"ok": False, "error": "channel_not_found"}
        everyone = self.members[channel]
        start = int(params.get("cursor") or 0)
        limit = max(1, int(params.get("limit") or 100))
        page = everyone[start:start + limit]
        nxt = str(start + limit) if start + limit < len(everyone) else ""
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": nxt}}


def bot_settings(project: Path, **extra: Any) -> Any:
    """Settings for the bot under test (explicit values: nothing comes from the environment)."""
    from lore.settings import Settings

    values: dict[str, Any] = {"project": project, "slack_bot_token": "xoxb-test", "slack_signing_secret": SECRET,
                              "slack_app_token": None}
    values.update(extra)
    return Settings(**values)


# --- signed requests ---------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature: ``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


@dataclass
class Reply:
    status: int
    body: str
    elapsed: float


def post(url: str, body: str, *, content_type: str, secret: str | None = SECRET, timestamp: int | None = None,
         signed_body: str | None = None, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Reply:
    """POST ``body``; signed with ``secret`` over ``signed_body`` (default: the body itself) unless secret is None."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if secret is not None:
        all_headers["X-Slack-Request-Timestamp"] = ts
        all_headers["X-Slack-Signature"] = signature(secret, ts, body if signed_body is None else signed_body)
    request = urllib.request.Request(url, data=body.encode(), headers=all_headers, method="POST")
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return Reply(resp.status, resp.read().decode(), time.monotonic() - t0)
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read().decode(), time.monotonic() - t0)


# --- payloads ------------------------------------------------------------------------------


def event_body(event: dict[str, Any], event_id: str) -> str:
    return json.dumps({
        "token": "unused", "team_id": TEAM, "api_app_id": "A0LORE", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    })


def mention(text: str, ts: str, *, channel: str = "C0DATA", user: str = "U0ASKER", thread_ts: str | None = None) -> dict[str, Any]:
    event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER}> {text}", "ts": ts, "channel": channel,
             "team": TEAM, "event_ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def direct_message(text: str, ts: str, *, channel: str = "D0ASKER", user: str = "U0ASKER", **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts, "channel": channel,
            "team": TEAM, "event_ts": ts, **extra}


def slash_body(text: str, *, channel: str = "C0DATA", user: str = "U0ASKER", response_url: str = "",
               trigger_id: str | None = None) -> str:
    """A ``/lore`` command; every invocation has its own trigger id, as in Slack."""
    return urllib.parse.urlencode({
        "token": "unused", "team_id": TEAM, "team_domain": "lore-test", "channel_id": channel,
        "channel_name": "data", "user_id": user, "user_name": "asker", "command": "/lore", "text": text,
        "api_app_id": "A0LORE", "response_url": response_url, "trigger_id": trigger_id or f"1.2.{uuid.uuid4().hex}",
    })


def click_body(action_id: str, value: str, *, message: dict[str, Any], channel: str, action_ts: str,
               user: str = "U0VOTER", ephemeral: bool = False) -> str:
    """A button click; on an ephemeral message Slack sends no ``message`` (only its ts, in the container)."""
    payload = {
        "type": "block_actions", "team": {"id": TEAM, "domain": "lore-test"},
        "user": {"id": user, "username": "voter", "team_id": TEAM}, "api_app_id": "A0LORE", "token": "unused",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": ephemeral},
        "trigger_id": "1.2.xyz", "channel": {"id": channel, "name": "data"},
        "response_url": "", "actions": [{"type": "button", "action_id": action_id, "block_id": "lore_feedback",
                                          "value": value, "text": {"type": "plain_text", "text": "x"},
                                          "action_ts": action_ts}],
    }
    if not ephemeral:
        payload["message"] = message
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


# --- reading what the bot posted ---------------------------------------------------------------


def blocks_of(call: Call) -> list[dict[str, Any]]:
    blocks = call.params.get("blocks")
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks or [])


def block(call: Call, block_id: str) -> dict[str, Any]:
    found = [b for b in blocks_of(call) if b.get("block_id") == block_id]
    assert found, f"no block {block_id!r} in {[b.get('block_id') for b in blocks_of(call)]}"
    return found[0]


# --- the bot served on loopback ----------------------------------------------------------------


@dataclass
class Harness:
    slack: SlackStandIn
    bot: Any
    url: str

    def event(self, event: dict[str, Any], event_id: str, **kwargs: Any) -> Reply:
        return post(self.url, event_body(event, event_id), content_type="application/json", **kwargs)

    def command(self, text: str, **kwargs: Any) -> Reply:
        body = slash_body(text, response_url=f"http://127.0.0.1:{self.slack.port}/respond/1",
                          **{k: kwargs.pop(k) for k in ("channel", "user", "trigger_id") if k in kwargs})
        return post(self.url, body, content_type="application/x-www-form-urlencoded", **kwargs)

    def click(self, action_id: str, value: str, *, message: dict[str, Any], channel: str, action_ts: str,
              user: str = "U0VOTER", ephemeral: bool = False, **kwargs: Any) -> Reply:
        body = click_body(action_id, value, message=message, channel=channel, action_ts=action_ts, user=user,
                          ephemeral=ephemeral)
        return post(self.url, body, content_type="application/x-www-form-urlencoded", **kwargs)

    def settle(self, quiet: float = 0.4, timeout: float = 15.0) -> None:
        """Wait until the bot has made no Web API call for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            count = len(self.slack.calls)
            if count == seen:
                return
            seen = count
            time.sleep(quiet)


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` (an ASGI app) on uvicorn on a free loopback port, in a thread; yields its base URL."""
    from ui.slack.asgi import http_server

    server, sock = http_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(lore: Any, project: Path, **settings: Any) -> Iterator[Harness]:
    """The bot for ``lore`` over HTTP on loopback (uvicorn serving ``lore slack``'s ASGI app), with a Web API
    stand-in; stopped when the generator closes.

    ``settings`` are extra bot settings (e.g. ``slack_channel_scope="ephemeral"``).
    """
    from slack_sdk import WebClient

    from ui.slack.app import SlackBot, build_app
    from ui.slack.asgi import slack_app

    slack = SlackStandIn().start()
    client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=10)
    config = bot_settings(project, **settings)
    bot = SlackBot(lambda: lore, channel_scope=config.slack_channel_scope)
    app = build_app(lambda: lore, config, client=client, bot=bot)
    try:
        with served(slack_app(app, signing_secret=SECRET)) as base:
            h = Harness(slack=slack, bot=bot, url=f"{base}/slack/events")
            try:
                yield h
            finally:
                h.settle(quiet=0.3, timeout=10)
    finally:
        slack.stop()
