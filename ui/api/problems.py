"""Errors as RFC 9457 problem details (``application/problem+json``), mapped from LORE's error tree.

Who must act decides the status: the asker (400 a value of the wrong kind, 404 a conversation or answer that is
not theirs or does not exist, 422 a name or filter the layer does not have), the guard (400 a query it cannot
accept, 403 one that reads what the caller may not), the engine (502, 504 for a timeout), the operator (503: the
server is not set up to answer; the details go to the server's log, never to the caller). Anything else is a
500 whose details stay in the log. The body carries ``type``, ``title``, ``status``, ``detail`` (the message the
CLI prints), ``hint`` (what to do next), ``code`` (LORE's stable error code) and, for the asker, ``suggestions``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from lore.errors import (AskerError, BadInput, EngineError, GuardError, LoreError, ModelTimeout, OperatorError,
                         QueryTimeout, QuestionTimeout, SemanticLayerError)

from ui.api.store import NotFound

log = logging.getLogger("lore.api")

MEDIA_TYPE: Final = "application/problem+json"
#: guard passes that refuse reading something outside what the caller may read (403); the rest refuse a query (400)
ACCESS_RULES: Final = frozenset({"tables", "columns", "row_policy"})
#: what an operator's error says to a caller (the message itself, with paths and settings, goes to the log)
OPERATOR_DETAIL: Final = "LORE is not set up correctly to answer this; the operator finds the details in the server's log."


@dataclass(eq=False)
class Problem(Exception):
    """A problem raised by the API itself (authentication, rate limit, a chart an answer does not have)."""

    status: int
    title: str
    detail: str
    code: str
    hint: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem JSON.

        >>> Problem(429, "Too many requests", "Slow down.", "rate_limited").body("/v1/metrics")["type"]
        'urn:lore:problem:rate_limited'
        """
        body: dict[str, Any] = {"type": f"urn:lore:problem:{self.code}", "title": self.title, "status": self.status,
                                "detail": self.detail, "code": self.code}
        if self.hint:
            body["hint"] = self.hint
        if instance:
            body["instance"] = instance
        return {**body, **self.extra}


def rate_limited(wait: float, *, burst: int, per_minute: float) -> Problem:
    """The 429 of a key past its rate (the HTTP API's and the MCP server's), naming when to retry.

    >>> p = rate_limited(0.2, burst=30, per_minute=120)
    >>> p.status, p.headers["Retry-After"]
    (429, '1')
    """
    return Problem(429, "Too many requests", f"This key made more than its {burst} requests at once or "
                   f"{per_minute:g} a minute.", "rate_limited",
                   hint="Retry after the number of seconds in the Retry-After header.",
                   headers={"Retry-After": str(max(1, math.ceil(wait)))})


def status_of(err: LoreError) -> int:
    """The HTTP status of a LORE error.

    >>> [status_of(e) for e in (BadInput("x"), NotFound("x"), AskerError("x"), GuardError("x", rule="row_policy"),
    ...                         GuardError("x", rule="functions"), QueryTimeout("x"), EngineError("x"), OperatorError("x"))]
    [400, 404, 422, 403, 400, 504, 502, 503]
    """
    if isinstance(err, BadInput):
        return 400
    if isinstance(err, NotFound):
        return 404
    if isinstance(err, AskerError):
        return 422
    if isinstance(err, GuardError):
        return 403 if err.rule in ACCESS_RULES else 400
    if isinstance(err, (QueryTimeout, QuestionTimeout, ModelTimeout)):
        return 504
    if isinstance(err, EngineError):
        return 502
    return 503  # the operator or the metric owner must act


_TITLES: Final[Mapping[int, str]] = {400: "Bad request", 403: "Forbidden", 404: "Not found",
                                     422: "Cannot answer this request", 502: "The query failed",
                                     503: "LORE is not ready to answer this", 504: "It took too long"}


def from_error(err: LoreError) -> Problem:
    """The problem a LORE error becomes (an operator's or metric owner's details are logged, not sent)."""
    status = status_of(err)
    if isinstance(err, (OperatorError, SemanticLayerError)):
        log.error("%s: %s", err.code, err)
        detail, hint = OPERATOR_DETAIL, None
        if isinstance(err, SemanticLayerError):
            detail = "The semantic layer has issues; the metric owner finds them with `lore semantic validate`."
    else:
        detail, hint = err.message, err.hint
    extra: dict[str, Any] = {}
    suggestions: Sequence[str] = getattr(err, "suggestions", ()) or ()
    if isinstance(err, AskerError) and suggestions:
        extra["suggestions"] = list(suggestions)
    if isinstance(err, GuardError):
        extra["rule"] = err.rule
    return Problem(status, _TITLES.get(status, "Error"), detail, err.code, hint=hint, extra=extra)


def internal() -> Problem:
    """What an unexpected failure says (its traceback goes to the log)."""
    return Problem(500, "Internal error", "LORE hit an internal error; the operator finds the details in the "
                   "server's log.", "internal")
