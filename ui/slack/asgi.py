"""The Slack bot over HTTP: one ASGI route, ``/slack/events``, served by ``lore slack`` or inside ``lore serve``'s app.

:func:`slack_route` is the route both use. It checks each request before anything parses its body (the size,
then the signature and the 5-minute timestamp window on the raw bytes, then the shape of the payload) and only
then hands it to slack-bolt's ASGI adapter for a synchronous ``App``. Bolt's ``dispatch`` (middleware, the
acknowledging listener) is blocking code, so it runs in the server's thread pool, never on the event loop: the
API's other requests go on while Slack's are handled. The answer itself is computed afterwards, in Bolt's lazy
listeners (their own threads), so Slack still gets its acknowledgement within 3 seconds.

- :func:`slack_app`: a small ASGI app with the route and ``/healthz``, what ``lore slack`` serves in HTTP mode.
- :func:`mount_slack`: the same route added to the HTTP API's app (``lore serve``), over the API's open project.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.asgi import SlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.adapter.asgi.http_response import AsgiHttpResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lore.errors import OperatorError
from lore.settings import Settings
from ui.slack.app import (BOT_TOKEN_ENV, EVENTS_PATH, MAX_BODY_BYTES, SIGNING_SECRET_ENV, LoreFactory, SlackBot,
                          build_app, payload_problem, verify_signature)

if TYPE_CHECKING:  # pragma: no cover
    import uvicorn
    from slack_sdk import WebClient

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: the variable that turns the bot in ``lore serve`` on (true), off (false), or leaves it to the Slack settings
API_SLACK_ENV: Final = "LORE_API_SLACK"


class ThreadedSlackRequestHandler(SlackRequestHandler):
    """slack-bolt's ASGI adapter for a synchronous ``App``, with ``App.dispatch`` in the server's thread pool.

    The adapter itself calls ``dispatch`` on the event loop, which would hold every other request of the
    server while Bolt's middleware and acknowledging listener run.
    """

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        body, query, headers = await request.get_raw_body(), request.query_string, request.get_headers()
        return await run_in_threadpool(lambda: self.app.dispatch(BoltRequest(body=body, query=query, headers=headers)))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


async def _plain(send: Send, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class SlackEvents:
    """The ASGI app behind ``/slack/events``: each request is checked before anything parses its body.

    A body over ``max_bytes`` gets 413 (by its Content-Length without reading it, else as its bytes arrive); a
    missing, stale, future or wrong signature or timestamp gets 401 (nothing parsed, nothing run); a correctly
    signed body that is not a Slack payload gets 400. Only then does Bolt see the request (and check its signature
    again).
    """

    def __init__(self, app: App, *, signing_secret: str, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.handler = ThreadedSlackRequestHandler(app)
        self.signing_secret = signing_secret
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _plain(send, 413, b"Payload Too Large")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _plain(send, 413, b"Payload Too Large")
                return
            if not message.get("more_body", False):
                break
        raw = bytes(body)
        if not verify_signature(self.signing_secret, raw, _header(scope, b"x-slack-request-timestamp"),
                                _header(scope, b"x-slack-signature"), now=time.time()):
            await _plain(send, 401, b'{"error": "invalid request"}', "application/json")
            return
        problem = payload_problem(raw, _header(scope, b"content-type"))
        if problem is not None:
            self.app.logger.info("refused a signed request: %s", problem)
            await _plain(send, 400, f"Bad Request: {problem}".encode())
            return

        async def replay() -> Message:
            return {"type": "http.request", "body": raw, "more_body": False}

        try:
            bolt = await self.handler.dispatch(AsgiHttpRequest(scope, replay))
        except Exception as err:  # a signed payload of a shape Bolt cannot read: the sender's mistake, not ours
            self.app.logger.warning("refused a signed request Bolt could not read (%s: %s)", type(err).__name__, err)
            await _plain(send, 400, b"Bad Request: not a Slack payload")
            return
        response = AsgiHttpResponse(status=bolt.status, headers=bolt.headers, body=bolt.body)
        await send(response.get_response_start())
        await send(response.get_response_body())


def slack_route(app: App, *, signing_secret: str, path: str = EVENTS_PATH) -> Route:
    """``POST path`` (events, the slash command and button clicks) served by the Bolt ``app``; other methods: 405."""
    return Route(path, SlackEvents(app, signing_secret=signing_secret), methods=["POST"], name="slack_events",
                 include_in_schema=False)


async def _healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def slack_app(app: App, *, signing_secret: str, path: str = EVENTS_PATH) -> Starlette:
    """What ``lore slack`` serves in HTTP mode: the Slack route and ``GET /healthz`` (the API is ``lore serve``)."""
    return Starlette(routes=[Route("/healthz", _healthz, methods=["GET"]),
                             slack_route(app, signing_secret=signing_secret, path=path)])


def http_server(app: Callable[..., Any], host: str, port: int) -> tuple[uvicorn.Server, socket.socket]:
    """A uvicorn server for ``app`` and the socket it will listen on, already bound (``port=0``: a free port).

    Call ``server.run(sockets=[sock])``; set ``server.should_exit`` to stop it.
    """
    import uvicorn  # lazy: loaded by what serves

    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False,
                            server_header=False, lifespan="off", timeout_graceful_shutdown=30)
    return uvicorn.Server(config), config.bind_socket()


# --- inside the HTTP API (`lore serve`) ------------------------------------------------------


def _secret(value: Any) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def require_http_credentials(settings: Settings) -> tuple[str, str]:
    """The bot token and the signing secret the route needs (raises an error naming the missing variables)."""
    token, secret = _secret(settings.slack_bot_token), _secret(settings.slack_signing_secret)
    missing = [name for name, value in ((BOT_TOKEN_ENV, token), (SIGNING_SECRET_ENV, secret)) if not value]
    if missing:
        raise OperatorError(
            f"Serving the Slack bot at {EVENTS_PATH} needs {' and '.join(missing)}.",
            hint=f"Set {BOT_TOKEN_ENV} to the bot token (xoxb-..., OAuth & Permissions) and {SIGNING_SECRET_ENV} to "
                 f"the signing secret (Basic Information > App Credentials), or serve without --slack "
                 f"({API_SLACK_ENV}). See docs/slack.md.")
    return token, secret


def mount_slack(api: Starlette, lore_factory: LoreFactory, settings: Settings, *,
                client: WebClient | None = None) -> SlackBot:
    """Add the bot's route to ``api`` (the HTTP API's app), answering from ``lore_factory``'s project.

    Building the Bolt app checks the bot token with Slack (``auth.test``); ``client`` is the Web API client to use
    (tests point one at a local stand-in). Returns the bot (its conversations and deliveries are this process's).
    """
    _, secret = require_http_credentials(settings)
    bot = SlackBot(lore_factory, channel_scope=settings.slack_channel_scope)
    bolt = build_app(lore_factory, settings, client=client, bot=bot)
    api.router.routes.append(slack_route(bolt, signing_secret=secret))
    return bot
