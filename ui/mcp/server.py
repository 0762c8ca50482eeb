"""LORE's tools for agents, as an MCP server (the ``mcp`` SDK's :class:`~mcp.server.mcpserver.MCPServer`).

:func:`build_server` makes the server over one project; :func:`http_app` puts it behind the same API keys as
``lore serve``. Every tool is a thin call into :class:`ui.api.service.Service`, so a tool answers exactly what the
HTTP API's endpoint answers: ``list_metrics`` is ``GET /v1/metrics``, ``query_metrics`` ``POST /v1/data``,
``compile_sql`` ``POST /v1/sql``, ``ask`` a message in a conversation, ``submit_feedback`` a vote.

Who asks: over stdio the one principal the operator named (``lore mcp --principal``); over HTTP the principal of
the request's API key, checked on every request and again in every tool call. Each tool answers in that person's
access scope (``Lore.for_user``). LORE's errors become tool errors (``isError``) carrying the message and hint the
HTTP API would send (:func:`ui.api.problems.from_error`: an operator's or metric owner's details stay in the log).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Union

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from lore import __version__
from lore.errors import LoreError
from lore.settings import Settings
from lore.types import Answer, ColumnMeta, Filter, Scalar

from ui.api.app import too_large
from ui.api.models import DataOut, DimensionsOut, FeedbackIn, MetricDetail, SemanticQueryIn, SqlIn, SqlOut
from ui.api.limits import BodyLimit, RateLimiter
from ui.api.problems import MEDIA_TYPE, Problem, from_error, rate_limited
from ui.api.service import Caller, Service, unauthorized

log = logging.getLogger("lore.mcp")

#: the path of the streamable HTTP endpoint
MCP_PATH: Final = "/mcp"

INSTRUCTIONS: Final = (
    "LORE answers questions about a warehouse through a governed semantic layer. Prefer `ask` for a question in "
    "plain words (pass the returned conversation_id for a follow-up). For exact numbers: `list_metrics`, then "
    "`list_dimensions` for the metrics you chose, then `query_metrics` (or `compile_sql` for the SQL). Use only "
    "the metric and dimension names these tools return."
)

# --- the tools' inputs, typed and described for the agent that reads them ----------------------------------------
Metrics = Annotated[list[str], Field(min_length=1, description="Metric names, as list_metrics gives them.",
                                     examples=[["total_streaming_hours"]])]
Dimensions = Annotated[list[str], Field(description="Dimension refs from list_dimensions (node.attribute, or "
                                                    "metric_time:month for a time grain).",
                                        examples=[["countries.region"]])]
Filters = Annotated[list[Union[str, Filter]], Field(
    description="Predicates over dimension refs (\"countries.region = 'EMEA'\") or structured filters "
                "({\"ref\": \"accounts.plan\", \"op\": \"in\", \"values\": [\"premium\"]}).",
    examples=[["countries.region = 'EMEA'"]])]
OrderBy = Annotated[list[str], Field(description="A metric or dimension to sort by; prefix - for descending.",
                                     examples=[["-total_streaming_hours"]])]
Limit = Annotated[Union[int, None], Field(ge=1, description="At most this many rows (default: no limit beyond "
                                                            "LORE_MAX_ROWS).")]


class MetricSummary(BaseModel):
    """One metric of the catalog, as an agent picks it."""

    name: str = Field(description="What to pass as a metric to the other tools.")
    label: str
    description: str
    unit: str | None = None
    format: str | None = None


class MetricsList(BaseModel):
    metrics: list[MetricSummary]


class AskOut(BaseModel):
    """LORE's answer to a question (the same answer the chat page, Slack and the HTTP API give)."""

    answer_id: str = Field(description="Pass to submit_feedback.")
    conversation_id: str = Field(description="Pass to ask for a follow-up question that refines this answer.")
    status: Literal["answered", "clarify", "refused", "error"] = Field(
        description="answered; clarify (a question back, see suggestions); refused; error (the query failed).")
    message: str = Field(description="The answer in words.")
    restatement: str | None = Field(default=None, description="What was computed, in one line.")
    columns: list[ColumnMeta] = []
    rows: list[list[Scalar]] = []
    truncated: bool = False
    reasoning: list[str] = Field(default=[], description="The definitions, filters and time range used, and why.")
    confidence: float = Field(description="0..1, from deterministic factors (confidence_factors).")
    confidence_factors: dict[str, float] = {}
    suggestions: list[str] = Field(default=[], description="Questions LORE can answer, when it asks back.")
    sql: str | None = Field(default=None, description="The SQL that ran (or was tried).")

    @classmethod
    def of(cls, answer: Answer, conversation_id: str) -> AskOut:
        return cls(answer_id=answer.id, conversation_id=answer.conversation_id or conversation_id,
                   status=answer.status, message=answer.message, restatement=answer.restatement,
                   columns=list(answer.columns), rows=[list(r) for r in answer.rows], truncated=answer.truncated,
                   reasoning=list(answer.reasoning), confidence=answer.confidence,
                   confidence_factors=dict(answer.confidence_factors), suggestions=list(answer.suggestions),
                   sql=answer.sql)


class FeedbackOut(BaseModel):
    """The stored vote."""

    vote_id: str
    answer_id: str
    rating: int
    user: str
    principal: str | None = None
    verified: bool
    duplicate: bool
    nomination_status: str | None = Field(default=None, description="pending, verified, rejected, revoked or none.")
    note: str | None = None


# --- errors: LORE's message and hint, never a traceback ---------------------------------------------------------
def problem_text(problem: Problem) -> str:
    """What a tool error says: the problem's detail, its hint and the closest names.

    >>> problem_text(Problem(422, "x", "unknown metric 'hour'", "unknown_reference", hint="Did you mean: hours?",
    ...                      extra={"suggestions": ["hours"]}))
    "unknown metric 'hour' Did you mean: hours? [unknown_reference]"
    >>> problem_text(Problem(404, "x", "No metric named 'hour'.", "not_found", extra={"suggestions": ["hours"]}))
    "No metric named 'hour'. Closest: hours. [not_found]"
    """
    parts = [problem.detail]
    if problem.hint:
        parts.append(problem.hint)
    suggestions = [str(s) for s in problem.extra.get("suggestions", ())]
    if suggestions and not (problem.hint and all(s in problem.hint for s in suggestions[:3])):
        parts.append(f"Closest: {', '.join(suggestions)}.")
    return " ".join(parts) + f" [{problem.code}]"


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn LORE's errors (and the API's problems) into tool errors the agent can act on."""
    try:
        yield
    except Problem as problem:
        raise ToolError(problem_text(problem)) from None
    except LoreError as err:
        raise ToolError(problem_text(from_error(err))) from None


def bearer(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header (None without one).

    >>> bearer({"authorization": "Bearer lore_x"}), bearer({"authorization": "Basic abc"}), bearer(None)
    ('lore_x', None, None)
    """
    value = (headers or {}).get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


# --- the server -----------------------------------------------------------------------------------------------
def build_server(project: str | Path, principal: str | None = None, *, settings: Settings | None = None,
                 service: Service | None = None) -> MCPServer:
    """The MCP server over ``project``.

    ``principal`` is who every call acts as (stdio: the operator names one person); None means each request
    names its caller with an API key (HTTP, see :func:`http_app`). ``service`` shares an open project.
    """
    service = service or Service(project, settings)
    fixed = principal.strip() if principal else None
    server = MCPServer("lore", title="LORE", version=__version__, instructions=INSTRUCTIONS,
                       description="Governed metrics and plain-words questions over one LORE project.",
                       log_level="WARNING")  # the SDK configures logging (to stderr): an asker's mistake is no news

    def caller(ctx: Context) -> Caller:
        """Who calls: the server's one principal, else the request's API key (a 401 problem without one)."""
        if fixed:
            return Caller(user=fixed, principal=service.principal_of(fixed), verified=False)
        token = bearer(ctx.headers)
        if token is None:
            raise unauthorized("This server needs an API key.")
        return service.caller_from_token(token)

    @server.tool(title="List metrics")
    def list_metrics(ctx: Context) -> MetricsList:
        """The metrics you may query: name, label, description, unit and format."""
        with tool_errors():
            return MetricsList(metrics=[
                MetricSummary(name=m.name, label=m.label or m.name, description=m.description, unit=m.unit,
                              format=m.format)
                for m in service.metrics(caller(ctx))])

    @server.tool(title="Describe a metric")
    def describe_metric(
        name: Annotated[str, Field(description="A metric name from list_metrics.")], ctx: Context,
    ) -> MetricDetail:
        """A metric's definition as the semantic layer states it (source, agg, expr, filter, ...) and the
        dimensions it can be broken down by."""
        with tool_errors():
            return service.metric(caller(ctx), name)

    @server.tool(title="List dimensions")
    def list_dimensions(
        metrics: Annotated[list[str], Field(description="Metric names; the dimensions every one of them reaches "
                                                        "are returned (all dimensions when empty).")],
        ctx: Context,
    ) -> DimensionsOut:
        """The dimensions (and time grains) you can break all of the given metrics down by."""
        with tool_errors():
            return DimensionsOut(metrics=metrics, dimensions=service.dimensions(caller(ctx), metrics))

    @server.tool(title="Query metrics")
    def query_metrics(metrics: Metrics, ctx: Context, dimensions: Dimensions = [],  # noqa: B006 - pydantic copies
                      filters: Filters = [], order_by: OrderBy = [], limit: Limit = None) -> DataOut:
        """Run a semantic query (metrics by dimensions, with filters, order and limit) on the warehouse, through
        LORE's SQL guard and read-only engine. Returns the rows, their columns and the SQL that ran."""
        with tool_errors():
            body = SemanticQueryIn(metrics=metrics, dimensions=dimensions, filters=filters, order_by=order_by,
                                   limit=limit)
            return service.data(caller(ctx), body)

    @server.tool(title="Compile SQL")
    def compile_sql(metrics: Metrics, ctx: Context, dimensions: Dimensions = [],  # noqa: B006 - pydantic copies
                    filters: Filters = [], order_by: OrderBy = [], limit: Limit = None,
                    dialect: Annotated[Union[str, None], Field(description="duckdb (default: the project's), "
                                       "postgres, snowflake, bigquery, trino, spark, ...")] = None) -> SqlOut:
        """The SQL of a semantic query in a SQL dialect, without running it (on DuckDB also the guarded SQL
        query_metrics would run for you, with your row limits)."""
        with tool_errors():
            body = SqlIn(metrics=metrics, dimensions=dimensions, filters=filters, order_by=order_by, limit=limit,
                         dialect=dialect)
            return service.compile(caller(ctx), body)

    @server.tool(title="Ask LORE")
    def ask(question: Annotated[str, Field(description="The question in plain words.",
                                           examples=["streaming hours by region in 2026"])],
            ctx: Context,
            conversation_id: Annotated[Union[str, None], Field(
                description="A conversation_id from an earlier ask: the question is a follow-up that refines its "
                            "last answer. Omit it to start a new conversation.")] = None) -> AskOut:
        """Ask a question in plain words. LORE grounds it in the semantic layer, runs it and answers with a table,
        its reasoning and a confidence score (status clarify: a question back, with suggestions)."""
        with tool_errors():
            who = caller(ctx)
            conversation = (service.conversation(who, conversation_id) if conversation_id
                            else service.start(who))
            return AskOut.of(service.ask(who, conversation, question), conversation.id)

    @server.tool(title="Submit feedback")
    def submit_feedback(
        answer_id: Annotated[str, Field(description="The answer_id an ask returned.")],
        rating: Annotated[Literal[1, -1], Field(description="1: right; -1: wrong.")],
        ctx: Context,
        comment: Annotated[Union[str, None], Field(max_length=4_000, description="What was right or wrong.")] = None,
        correction: Annotated[Union[str, dict[str, Any], None], Field(
            description="With rating -1: the corrected SQL (text), a corrected plan (an object with metrics, "
                        "dimensions, filters, ...) or both as {\"plan\": {...}, \"sql\": \"...\"}.")] = None,
    ) -> FeedbackOut:
        """A thumbs up or down on one of your answers; with a thumbs down, optionally a correction. One vote per
        person and answer: a later vote replaces the earlier one."""
        with tool_errors():
            body = FeedbackIn(rating=rating, comment=comment, correction=correction)
            vote = service.feedback(caller(ctx), answer_id, body)
            return FeedbackOut(vote_id=vote.id, answer_id=vote.answer_id, rating=int(vote.rating), user=vote.user,
                               principal=vote.principal, verified=vote.verified, duplicate=vote.duplicate,
                               nomination_status=vote.nomination_status, note=vote.note)

    return server


# --- HTTP: the same API keys as `lore serve` --------------------------------------------------------------------
class KeyAuth:
    """ASGI middleware: an HTTP request without a valid API key is answered 401 (problem JSON) before it reaches
    the MCP endpoint, and one past its key's rate 429 with ``Retry-After`` (the HTTP API's limiter and settings:
    every HTTP request counts, so one MCP session of a few tool calls takes a few); the tools check the key again
    and act as its principal."""

    def __init__(self, app: ASGIApp, service: Service, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.service = service
        settings = service.settings
        self.burst, self.per_minute = settings.api_rate_burst, settings.api_rate_per_minute
        self.limiter = limiter or RateLimiter(per_minute=self.per_minute, burst=self.burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        token = bearer(headers)
        try:
            if token is None:
                raise unauthorized("This server needs an API key.")
            who = await anyio.to_thread.run_sync(self.service.caller_from_token, token)
            wait = self.limiter.take(who.bucket)
            if wait > 0:
                raise rate_limited(wait, burst=self.burst, per_minute=self.per_minute)
        except Problem as problem:
            await _send_problem(send, problem, scope.get("path"))
            return
        except LoreError as err:
            await _send_problem(send, from_error(err), scope.get("path"))
            return
        await self.app(scope, receive, send)


async def _send_problem(send: Send, problem: Problem, path: str | None) -> None:
    body = json.dumps(problem.body(path)).encode("utf-8")
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def http_app(service: Service, *, host: str = "127.0.0.1", path: str = MCP_PATH,
             limiter: RateLimiter | None = None) -> ASGIApp:
    """The streamable HTTP app (endpoint ``path``) behind API keys, each request in its key's principal's scope,
    within its key's rate (``limiter``, by default one from the ``api_rate_*`` settings) and the API's body limit."""
    server = build_server(service.project.root, None, service=service)
    authed = KeyAuth(server.streamable_http_app(streamable_http_path=path, host=host), service, limiter)
    max_bytes = service.settings.api_max_body_bytes
    return BodyLimit(authed, max_bytes=max_bytes, too_large=too_large(max_bytes))
