"""The chat-model seam: messages and a JSON schema in, a parsed JSON object out.

:class:`StructuredChat` wraps any LangChain chat model (the real ``ChatOpenAI``
or the :class:`~lore.llm.scripted.ScriptedChatModel` of the tests) and asks it
for JSON in one of four ways, best first:

- ``json_schema``: ``model.with_structured_output(schema, method="json_schema",
  include_raw=True, strict=True)``; for ``ChatOpenAI`` this sends ``response_format``
  of type ``json_schema`` (OpenAI's structured outputs; vLLM and Ollama take it too);
- ``json_object_schema``: ``response_format={"type": "json_object", "schema": ...}``
  bound with ``model.bind(...)``: the form ``llama_cpp.server`` understands
  (it rejects type ``json_schema`` with HTTP 500, and turns this schema into a
  grammar for constrained decoding);
- ``json_object``: ``response_format={"type": "json_object"}`` (JSON mode), the
  schema only in the prompt;
- ``prompt``: nothing bound; the schema is in the prompt and the JSON is cut out
  of the reply.

When a server rejects a way of asking (HTTP 400, 422, 500 or 501), the next one
is tried and remembered. The reply is parsed here (never by LangChain) so that
the raw text, tokens and latency are always known and logged. Transport
failures become :class:`~lore.errors.ModelError` with a message that names what
to set; each is logged with outcome ``error`` or ``timeout``. When the model runs
in a process of ours (the local model), ``diagnose`` is asked first whether that
process ended: then the error names its exit code or signal, its log and the fix,
never a bare connection error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from lore.errors import ModelError, ModelTimeout
from lore.llm.log import Exchange, ExchangeLog, Outcome

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.language_models import BaseChatModel

StructuredMode = Literal["json_schema", "json_object_schema", "json_object", "prompt"]
#: the ways of asking for JSON, from the most to the least constrained
MODES: tuple[StructuredMode, ...] = ("json_schema", "json_object_schema", "json_object", "prompt")
#: HTTP statuses that mean "this server does not support that way of asking"
_UNSUPPORTED_STATUS = frozenset({400, 422, 500, 501})


class Reply(BaseModel):
    """One answer of the model, parsed or not."""

    model_config = ConfigDict(frozen=True)

    text: str
    #: the JSON object of the reply, None when it was not valid JSON
    data: dict[str, Any] | None = None
    #: why ``data`` is None
    parse_error: str | None = None
    latency_ms: float = 0.0
    tokens_in: int | None = None
    tokens_out: int | None = None
    structured: str = "prompt"
    messages: tuple[dict[str, str], ...] = ()


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in a reply (code fences and chatter around it are ignored).

    >>> extract_json('{"status": "plan"}')
    {'status': 'plan'}
    >>> extract_json('Sure! ```json\\n{"a": [1, 2]}\\n``` hope it helps')
    {'a': [1, 2]}
    >>> extract_json('no json here')
    Traceback (most recent call last):
    ...
    ValueError: the reply has no JSON object
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise ValueError("the reply has no JSON object")


def _as_messages(messages: Sequence[tuple[str, str]]) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage  # lazy: LangChain loads only with a model

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[role](content=content) for role, content in messages]


def _text_of(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def _usage(message: Any) -> tuple[int | None, int | None]:
    usage = getattr(message, "usage_metadata", None) or {}
    return usage.get("input_tokens"), usage.get("output_tokens")


class StructuredChat:
    """A chat model behind one call: ``complete(messages, schema) -> Reply``; failures are logged and raised."""

    def __init__(self, model: BaseChatModel, *, name: str, structured: StructuredMode = "json_schema",
                 log: ExchangeLog | None = None, base_url: str | None = None, timeout_s: float | None = None,
                 diagnose: Callable[[], ModelError | None] | None = None) -> None:
        self.model = model
        #: after a transport failure: the error describing how the model's own process ended, or None
        self.diagnose = diagnose
        self.name = name
        self.structured: StructuredMode = structured
        self.log = log
        self.base_url = base_url
        self.timeout_s = timeout_s

    # --- calling -------------------------------------------------------------------
    def complete(self, messages: Sequence[tuple[str, str]], schema: Mapping[str, Any], *, schema_name: str = "reply",
                 question: str = "", answer_id: str | None = None, attempt: int = 1,
                 prompt_version: str | None = None) -> Reply:
        """Ask for a JSON object following ``schema``; falls back to looser modes when the server rejects one."""
        sent = tuple({"role": r, "content": c} for r, c in messages)
        while True:
            mode = self.structured
            t0 = time.perf_counter()
            try:
                raw = self._invoke(mode, messages, schema, schema_name)
            except _transport_errors() as err:
                ms = (time.perf_counter() - t0) * 1000
                ended = self.diagnose() if self.diagnose is not None else None
                nxt = None if ended is not None else self._fallback(err)
                kind: Outcome = "timeout" if _is_timeout(err) and ended is None else "error"
                self.record(Exchange(model=self.name, prompt=sent, outcome=kind, latency_ms=ms, question=question,
                                     answer_id=answer_id, error=ended.message if ended else _describe(err),
                                     attempt=attempt, prompt_version=prompt_version, structured=mode))
                if ended is not None:
                    raise ended from err
                if nxt is not None:
                    self.structured = nxt
                    continue
                raise self._lore_error(err) from err
            ms = (time.perf_counter() - t0) * 1000
            text = _text_of(raw)
            tokens_in, tokens_out = _usage(raw)
            try:
                data, problem = extract_json(text), None
            except ValueError as err:
                data, problem = None, str(err)
            return Reply(text=text, data=data, parse_error=problem, latency_ms=round(ms, 1), tokens_in=tokens_in,
                         tokens_out=tokens_out, structured=mode, messages=sent)

    def _invoke(self, mode: StructuredMode, messages: Sequence[tuple[str, str]], schema: Mapping[str, Any],
                schema_name: str) -> Any:
        lc_messages = _as_messages(messages)
        if mode == "json_schema":
            titled = {"title": schema_name, **schema}
            runnable = self.model.with_structured_output(titled, method="json_schema", include_raw=True, strict=True)
            out = runnable.invoke(lc_messages)
            return out["raw"] if isinstance(out, dict) and "raw" in out else out
        if mode == "json_object_schema":
            return self.model.bind(response_format={"type": "json_object", "schema": dict(schema)}).invoke(lc_messages)
        if mode == "json_object":
            return self.model.bind(response_format={"type": "json_object"}).invoke(lc_messages)
        return self.model.invoke(lc_messages)

    def record(self, exchange: Exchange) -> int | None:
        """Log one exchange (no-op without a log)."""
        return self.log.record(exchange) if self.log is not None else None

    def exchange(self, reply: Reply, outcome: Outcome, *, question: str, answer_id: str | None = None,
                 error: str | None = None, attempt: int = 1, prompt_version: str | None = None) -> int | None:
        """Log a reply with the outcome the caller decided (ok, invalid, refused)."""
        return self.record(Exchange(model=self.name, prompt=reply.messages, response=reply.text, outcome=outcome,
                                    latency_ms=reply.latency_ms, tokens_in=reply.tokens_in, tokens_out=reply.tokens_out,
                                    question=question, answer_id=answer_id, error=error, attempt=attempt,
                                    prompt_version=prompt_version, structured=reply.structured))

    # --- errors --------------------------------------------------------------------
    def _fallback(self, err: BaseException) -> StructuredMode | None:
        """The next, looser mode when the server rejected the way we asked for JSON."""
        status = getattr(err, "status_code", None)
        if status not in _UNSUPPORTED_STATUS or self.structured == "prompt":
            return None
        return MODES[MODES.index(self.structured) + 1]

    def _lore_error(self, err: BaseException) -> ModelError:
        where = f" at {self.base_url}" if self.base_url else ""
        if _is_timeout(err):
            return ModelTimeout(f"The model {self.name}{where} did not answer within {self.timeout_s or '?'} s.",
                                hint="Raise LORE_LLM_TIMEOUT_S, use a smaller model, or ask again; "
                                     "--model offline answers without a model.")
        status = getattr(err, "status_code", None)
        if status in (401, 403):
            return ModelError(f"The model server{where} refused the API key ({status}).",
                              hint="Set OPENAI_API_KEY to a valid key (or the key your compatible server expects).")
        if status == 404:
            return ModelError(f"The model {self.name!r} was not found{where}.",
                              hint="Check the model name in --model / LORE_MODEL, e.g. openai:gpt-4o-mini.")
        if status == 429:
            return ModelError(f"The model server{where} is rate-limiting requests (429).",
                              hint="Wait and ask again, or raise your quota.")
        if _is_connection(err):
            return ModelError(f"Could not reach the model server{where}: {_describe(err)}",
                              hint="Start the server, or set OPENAI_BASE_URL to a running OpenAI-compatible server "
                                   "(e.g. http://127.0.0.1:8080/v1); --model offline needs no server.")
        return ModelError(f"The model {self.name}{where} failed: {_describe(err)}",
                          hint="Check the server's log; --model offline answers without a model.")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What a model call raises when the server, not our code, failed."""
    import httpx  # lazy: only with a model
    import openai

    return (openai.APIError, httpx.HTTPError, TimeoutError, ConnectionError)


def _is_timeout(err: BaseException) -> bool:
    if isinstance(err, TimeoutError):
        return True
    return any("Timeout" in cls.__name__ for cls in type(err).__mro__)  # openai's, LangChain's and httpx's timeouts


def _is_connection(err: BaseException) -> bool:
    return isinstance(err, ConnectionError) or type(err).__name__ in ("APIConnectionError", "ConnectError")


def _describe(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__
