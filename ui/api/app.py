"""The HTTP API: one FastAPI app over one project, versioned under ``/v1`` (docs/api.md has every endpoint).

``create_app(project, settings)`` builds it; ``lore serve`` runs it with uvicorn, through :func:`app_from_env`
(an app factory that reads the project and the settings from ``LORE_*`` variables, so each of several worker
processes builds its own). Every ``/v1`` endpoint needs a caller: an API key (``Authorization: Bearer ...``)
or, when the operator turned it on, the trusted proxy's header from this machine. Each endpoint answers in the
caller's access scope, the same one the chat page and the Slack bot give that person. Errors are problem JSON
(:mod:`ui.api.problems`). Blocking work (the pipeline, DuckDB, SQLite) runs in the server's thread pool;
streaming runs the pipeline in a thread and sends each stage as it ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import pydantic_core
from fastapi import Depends, FastAPI, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lore import __version__
from lore.errors import LoreError
from lore.settings import Settings
from lore.types import Answer, StageTiming

from ui.api.limits import BodyLimit, BodyTooLarge, RateLimiter
from ui.api.models import (ConversationOut, DataOut, DimensionsOut, FeedbackIn, Health, MessagesOut, MetricDetail,
                           MetricsOut, QuestionIn, SemanticQueryIn, SqlIn, SqlOut)
from ui.api.problems import MEDIA_TYPE, Problem, from_error, internal, rate_limited
from ui.api.service import Caller, Service, is_loopback, unauthorized

if TYPE_CHECKING:  # pragma: no cover
    from slack_sdk import WebClient

log = logging.getLogger("lore.api")
#: the Slack bot's one URL, when the app serves it (ui.slack.app.EVENTS_PATH)
SLACK_EVENTS_PATH: Final = "/slack/events"

#: the event each pipeline stage sends when it ends (docs/api.md, "Streaming"); the last event is ``answer``
STAGE_EVENTS: Final = {"retrieve": "retrieved", "plan": "planned", "cache": "cache_checked", "compile": "compiled",
                       "guard": "guarded", "execute": "ran", "chart": "charted", "replan": "replanned",
                       "explain": "answered"}

ExplainOpt = Annotated[bool, Query(description="Include the answer's trace: retrieved context, plan outcome and "
                                               "signals, compiled and guarded SQL, stage timings.")]
JSON_ANSWER: Final = {200: {"content": {"application/json": {}}}}


def answer_json(answer: Answer, explain: bool) -> str:
    """The answer as the Python API's model gives it (``Answer.model_dump``), its trace only when asked for."""
    return answer.model_dump_json(exclude=None if explain else {"trace"})


def json_response(text: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(text, status_code=status, media_type="application/json", headers=headers)


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    return JSONResponse(problem.body(request.url.path if request is not None else None), status_code=problem.status,
                        headers=dict(problem.headers), media_type=MEDIA_TYPE)


def too_large(max_bytes: int) -> Callable[[dict], JSONResponse]:
    """The 413 response of :class:`~ui.api.limits.BodyLimit`."""

    def respond(scope: dict) -> JSONResponse:
        problem = Problem(413, "Content too large", f"The request body is larger than {max_bytes:,} bytes, the most "
                          "this server reads.", "too_large", hint="Send a shorter request (a question of a few lines "
                          "is enough).", extra={"instance": str(scope.get("path", ""))})
        return problem_response(problem)

    return respond


_bearer = HTTPBearer(auto_error=False, description="An API key from `lore keys create`.")


def caller(request: Request,
           credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> Caller:
    """Who sends the request (from the trusted proxy's header or an API key), within their rate."""
    service: Service = request.app.state.service
    settings: Settings = request.app.state.settings
    header = settings.api_trust_header
    named = request.headers.get(header) if header else None
    if named is not None:
        peer = request.client.host if request.client is not None else None
        if not is_loopback(peer):
            raise unauthorized(f"The {header} header is trusted only from a proxy on this machine.",
                               hint="Send requests through the authenticating proxy, or use an API key.")
        who = service.caller_from_header(named, header)
    elif credentials is None:
        raise unauthorized("This endpoint needs an API key.")
    else:
        who = service.caller_from_token(credentials.credentials)
    wait = request.app.state.limiter.take(who.bucket)
    if wait > 0:
        raise rate_limited(wait, burst=settings.api_rate_burst, per_minute=settings.api_rate_per_minute)
    return who


Who = Annotated[Caller, Depends(caller)]


def create_app(project: str | Path, settings: Settings | None = None, *, service: Service | None = None,
               slack_client: WebClient | None = None) -> FastAPI:
    """The API for one project.

    ``settings`` default to the ``LORE_*`` environment; the app reads its ``api_*`` ones (rate, burst, body size,
    trusted header, the Slack bot). ``service`` shares an open project between apps (the app then leaves it open;
    it closes the one it made itself). With the Slack bot's settings (or ``api_slack`` on), the bot answers at
    ``/slack/events`` from the same project (:mod:`ui.slack.asgi`; building it checks the bot token with Slack,
    through ``slack_client`` when given)."""
    owned = service is None
    service = service or Service(project, settings)
    settings = settings or service.settings
    slack = slack_wanted(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(lambda: service.lore)  # open and warm up before the first request
        try:
            yield
        finally:
            if owned:
                await run_in_threadpool(service.close)

    app = FastAPI(title="LORE", version=__version__, lifespan=lifespan, redoc_url=None,
                  description="Ask a project's warehouse questions in plain words, answered from governed metric "
                              "definitions; browse and query the semantic layer. Authenticate with "
                              "`Authorization: Bearer <token>` (`lore keys create`). See docs/api.md.")
    # shared by every request (never about one): the project, the API settings, the rate limiter
    app.state.service = service
    app.state.settings = settings
    app.state.limiter = RateLimiter(per_minute=settings.api_rate_per_minute, burst=settings.api_rate_burst)
    respond_too_large = too_large(settings.api_max_body_bytes)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes, too_large=respond_too_large,
                       exempt=frozenset({SLACK_EVENTS_PATH}) if slack else frozenset())
    _handle_errors(app)

    @app.exception_handler(BodyTooLarge)
    async def on_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return respond_too_large(request.scope)

    # --- process and readiness -------------------------------------------------------------
    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """The process is up (nothing else is checked)."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["health"], responses={503: {"description": "Not ready"}})
    def readyz() -> Response:
        """The project is open, its semantic layer loads, its warehouse answers a query, its index and the API's
        store can be read."""
        checks = service.readiness()
        if all(v == "ok" for v in checks.values()):
            return json_response(Health(status="ready", checks=checks).model_dump_json())
        return problem_response(Problem(503, "Not ready", "LORE cannot answer yet: " + ", ".join(
            f"{k} {v}" for k, v in checks.items() if v != "ok") + ".", "not_ready", extra={"checks": checks}))

    # --- conversations ------------------------------------------------------------------------
    @app.post("/v1/conversations", response_model=ConversationOut, status_code=201, tags=["conversations"])
    def create_conversation(who: Who) -> ConversationOut:
        """Start a conversation: questions asked in it are follow-ups of the answers before them."""
        made = service.start(who)
        return ConversationOut(id=made.id, user=made.user, created_at=made.created_at)

    @app.post("/v1/conversations/{conversation_id}/messages", response_model=Answer, tags=["conversations"],
              responses=JSON_ANSWER)
    def ask(conversation_id: str, body: QuestionIn, who: Who, explain: ExplainOpt = False) -> Response:
        """Ask a question in the conversation; the answer (``lore.types.Answer``) comes when it is ready."""
        conversation = service.conversation(who, conversation_id)
        return json_response(answer_json(service.ask(who, conversation, body.question), explain))

    @app.post("/v1/conversations/{conversation_id}/messages/stream", tags=["conversations"],
              responses={200: {"content": {"text/event-stream": {}},
                               "description": "One event per stage as it ends, then `answer` (or `error`)."}})
    async def ask_streaming(conversation_id: str, body: QuestionIn, who: Who,
                            explain: ExplainOpt = False) -> EventSourceResponse:
        """Ask a question in the conversation and follow it as Server-Sent Events: ``retrieved``, ``planned``,
        ``compiled``, ``guarded``, ``ran``, ``charted``, ``answered`` (each stage that ran, with its milliseconds),
        then ``answer`` with the answer's JSON, or ``error`` with a problem JSON."""
        conversation = await run_in_threadpool(service.conversation, who, conversation_id)
        return EventSourceResponse(_stream(service, who, conversation, body.question, explain), ping=15)

    @app.get("/v1/conversations/{conversation_id}/messages", response_model=MessagesOut, tags=["conversations"],
             responses=JSON_ANSWER)
    def list_messages(conversation_id: str, who: Who, explain: ExplainOpt = False,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Response:
        """The conversation's answers, oldest first (the last ``limit``)."""
        conversation = service.conversation(who, conversation_id)
        out = MessagesOut(conversation_id=conversation.id, answers=service.conversations.answers(conversation, limit=limit))
        return json_response(out.model_dump_json(exclude=None if explain else {"answers": {"__all__": {"trace"}}}))

    # --- answers ----------------------------------------------------------------------------
    @app.get("/v1/answers/{answer_id}", response_model=Answer, tags=["answers"], responses=JSON_ANSWER)
    def get_answer(answer_id: str, who: Who, explain: ExplainOpt = False) -> Response:
        """One of the caller's answers."""
        return json_response(answer_json(service.answer(who, answer_id), explain))

    @app.get("/v1/answers/{answer_id}/chart", tags=["answers"],
             responses={200: {"content": {"application/json": {}}, "description": "A Vega-Lite spec, data inline."}})
    def get_chart(answer_id: str, who: Who) -> Response:
        """The answer's chart as a Vega-Lite spec (404 when its result reads as a table)."""
        chart = service.chart(service.answer(who, answer_id))
        return json_response(pydantic_core.to_json(chart.spec, inf_nan_mode="null"),
                             headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/v1/answers/{answer_id}/chart.png", tags=["answers"], response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "The chart, drawn offline."}})
    def get_chart_png(answer_id: str, who: Who) -> Response:
        """The answer's chart as a PNG (drawn offline by vl-convert)."""
        from lore.chart import chart_png  # lazy: the renderer loads on the first PNG

        png = chart_png(service.chart(service.answer(who, answer_id)))
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/v1/answers/{answer_id}/feedback", status_code=201, tags=["answers"], responses=JSON_ANSWER)
    def feedback(answer_id: str, body: FeedbackIn, who: Who) -> Response:
        """A thumbs up or down on one of the caller's answers, as ``Lore.feedback`` records it (returns the
        stored vote: ``lore.plugins.Vote``)."""
        vote = service.feedback(who, answer_id, body)
        return json_response(vote.model_dump_json(), status=201)

    # --- the semantic layer -------------------------------------------------------------------
    @app.get("/v1/metrics", response_model=MetricsOut, tags=["semantic layer"])
    def list_metrics(who: Who) -> MetricsOut:
        """The metrics the caller may see."""
        return MetricsOut(metrics=service.metrics(who))

    @app.get("/v1/metrics/{name}", response_model=MetricDetail, tags=["semantic layer"])
    def get_metric(name: str, who: Who) -> MetricDetail:
        """One metric's definition and the dimensions it can be broken down by."""
        return service.metric(who, name)

    @app.get("/v1/dimensions", response_model=DimensionsOut, tags=["semantic layer"])
    def list_dimensions(who: Who, metrics: Annotated[str, Query(description="Comma-separated metric names: only "
                                                                "the dimensions every one of them reaches.")] = "") -> DimensionsOut:
        """The dimensions the caller may break the named metrics down by (all of theirs when none is named)."""
        names = [m.strip() for m in metrics.split(",") if m.strip()]
        return DimensionsOut(metrics=names, dimensions=service.dimensions(who, names))

    @app.post("/v1/sql", response_model=SqlOut, tags=["semantic layer"])
    def compile_sql(body: SqlIn, who: Who) -> SqlOut:
        """Compile metrics by dimensions with filters to SQL in a dialect (``lore sql``)."""
        return service.compile(who, body)

    @app.post("/v1/data", response_model=DataOut, tags=["semantic layer"], responses=JSON_ANSWER)
    def query_data(body: SemanticQueryIn, who: Who) -> Response:
        """Run a semantic query through the guard (with the caller's row limits) on the warehouse (``lore sql
        --run``)."""
        return json_response(service.data(who, body).model_dump_json())

    # --- the Slack bot ------------------------------------------------------------------------
    app.state.slack = None
    if slack:
        from ui.slack.asgi import mount_slack  # lazy: slack-bolt loads only when the bot is served

        app.state.slack = mount_slack(app, lambda: service.lore, settings, client=slack_client)

    return app


async def _stream(service: Service, who: Caller, conversation: Any, question: str,
                  explain: bool) -> AsyncIterator[dict[str, str]]:
    """The events of one question: the pipeline runs in a thread and tells each stage as it ends."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(kind: str, item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, item))
        except RuntimeError:  # the server stopped listening: the answer is still stored in the conversation
            pass

    def work() -> None:
        try:
            answer = service.ask(who, conversation, question, on_stage=lambda timing: put("stage", timing))
        except LoreError as err:
            put("problem", from_error(err))
        except Exception:  # noqa: BLE001 - the stream ends with a problem event; the traceback goes to the log
            log.exception("LORE failed to answer a streamed question")
            put("problem", internal())
        else:
            put("answer", answer)

    worker = asyncio.ensure_future(run_in_threadpool(work))  # the server's thread pool, as for every blocking call
    seq = 0
    while True:
        kind, item = await queue.get()
        seq += 1
        if kind == "stage":
            timing: StageTiming = item
            yield {"event": STAGE_EVENTS.get(timing.stage, timing.stage), "id": str(seq),
                   "data": json.dumps({"stage": timing.stage, "ms": timing.ms})}
            continue
        await worker
        if kind == "answer":
            yield {"event": "answer", "id": str(seq), "data": answer_json(item, explain)}
        else:
            yield {"event": "error", "id": str(seq), "data": json.dumps(item.body())}
        return


def _handle_errors(app: FastAPI) -> None:
    """Every error as problem JSON: LORE's by who must act, the API's own, FastAPI's, and the unexpected."""

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(LoreError)
    async def on_lore_error(request: Request, exc: LoreError) -> JSONResponse:
        return problem_response(from_error(exc), request)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "the request"
        return problem_response(Problem(422, "Invalid request", f"{where}: {first['msg']}", "invalid_request",
                                        hint="See the request's schema in /openapi.json or /docs.",
                                        extra={"errors": errors}), request)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return problem_response(Problem(exc.status_code, title, str(exc.detail), f"http_{exc.status_code}",
                                        headers=dict(exc.headers or {})), request)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(internal(), request)


def slack_wanted(settings: Settings) -> bool:
    """Whether the app serves the Slack bot: as ``LORE_API_SLACK`` (``lore serve --slack``/``--no-slack``) says,
    else when the bot token and the signing secret are set (slack-bolt is imported only then).

    >>> slack_wanted(Settings(slack_bot_token="xoxb-1", slack_signing_secret="s", api_slack=None))
    True
    >>> slack_wanted(Settings(slack_bot_token="xoxb-1", slack_signing_secret=" ", api_slack=None))
    False
    >>> slack_wanted(Settings(slack_bot_token="xoxb-1", slack_signing_secret="s", api_slack=False))
    False
    """
    if settings.api_slack is not None:
        return settings.api_slack
    token, secret = settings.slack_bot_token, settings.slack_signing_secret
    return bool(token and token.get_secret_value().strip() and secret and secret.get_secret_value().strip())


def app_from_env() -> FastAPI:
    """The app factory ``lore serve`` gives uvicorn (``ui.api.app:app_from_env``, ``factory=True``): each worker
    process builds its own app from ``LORE_PROJECT`` and the other ``LORE_*`` settings."""
    settings = Settings()
    return create_app(settings.project, settings)
