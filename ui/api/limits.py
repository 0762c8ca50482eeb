"""Limits every request meets before any work: its body's size, and its key's rate.

Both are per worker process: with ``--workers N`` a key may make up to N times the rate (docs/api.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_minute`` a minute (thread-safe,
    bounded: the least recently seen keys are forgotten first, which only ever gives them a full bucket).

    >>> clock = [0.0]
    >>> limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: clock[0])
    >>> limiter.take("k"), limiter.take("k"), limiter.take("k")
    (0.0, 0.0, 1.0)
    >>> clock[0] = 0.5; limiter.take("k")
    0.5
    >>> clock[0] = 1.0; limiter.take("k"), limiter.take("other")
    (0.0, 0.0)
    """

    def __init__(self, *, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when the request may go ahead, else the seconds until it may."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                wait, tokens = 0.0, tokens - 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return wait


class BodyTooLarge(HTTPException):
    """A request body past the limit, raised while the app reads it and answered with 413 (an HTTPException, so the
    framework hands it on as it is instead of calling it a malformed body)."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Content too large")


class BodyLimit:
    """ASGI middleware: a body larger than ``max_bytes`` is refused with ``too_large(scope)``, a 413 response, before
    the app reads past the limit (by its Content-Length when it says, else as the bytes arrive). Paths in ``exempt``
    enforce their own limit (the Slack route: Slack's payloads, up to 1 MB)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, too_large: Callable[[Scope], ASGIApp],
                 exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self.too_large(scope)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self.too_large(scope)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The request's Content-Length (None: absent or not a number).

    >>> _content_length({"headers": [(b"content-length", b"12")]}), _content_length({"headers": []})
    (12, None)
    """
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
