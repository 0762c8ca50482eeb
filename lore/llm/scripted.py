"""A scripted chat model for tests: replays a list of replies and records every prompt.

It is a real LangChain ``BaseChatModel``, so it goes through the same
``with_structured_output`` / ``bind(response_format=...)`` calls as
``ChatOpenAI``; only the transport is scripted. A reply may be

- a string (the assistant's text),
- an ``AIMessage``,
- an exception instance, which is raised (to script timeouts and server errors),
- a callable ``(messages) -> str`` for replies that depend on the prompt.

>>> from langchain_core.messages import HumanMessage
>>> m = ScriptedChatModel(replies=['{"status": "clarify"}'])
>>> m.invoke([HumanMessage(content="hi")]).content
'{"status": "clarify"}'
>>> m.calls[0].messages
(('user', 'hi'),)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, PrivateAttr

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class ScriptedCall(BaseModel):
    """One call the code under test made: the messages as (role, content) and the bound keyword arguments."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    messages: tuple[tuple[str, str], ...]
    kwargs: dict[str, Any]

    @property
    def prompt(self) -> str:
        """All message text, joined (for assertions on what the model was shown)."""
        return "\n".join(c for _, c in self.messages)

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON schema sent as response_format, if any."""
        fmt = self.kwargs.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            return fmt["json_schema"]["schema"]
        if isinstance(fmt, dict) and isinstance(fmt.get("schema"), dict):  # llama.cpp's json_object + schema
            return fmt["schema"]
        return None


class ScriptedModelExhausted(AssertionError):
    """The code under test called the model more often than the test scripted."""


class ScriptedChatModel(BaseChatModel):
    """Replays ``replies`` in order; raises :class:`ScriptedModelExhausted` when they run out."""

    replies: list[Any]
    model_name: str = "scripted"
    _calls: list[ScriptedCall] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[ScriptedCall]:
        return self._calls

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        as_pairs = tuple((_ROLES.get(m.type, m.type), m.content if isinstance(m.content, str) else str(m.content))
                         for m in messages)
        self._calls.append(ScriptedCall(messages=as_pairs, kwargs=dict(kwargs)))
        index = len(self._calls) - 1
        if index >= len(self.replies):
            raise ScriptedModelExhausted(f"the scripted model has {len(self.replies)} replies; call {index + 1} was made")
        reply = self.replies[index]
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply) and not isinstance(reply, (str, AIMessage)):
            reply = reply(as_pairs)
        if isinstance(reply, str):
            prompt_words = sum(len(c.split()) for _, c in as_pairs)
            reply = AIMessage(content=reply, usage_metadata={"input_tokens": prompt_words, "output_tokens": len(reply.split()),
                                                              "total_tokens": prompt_words + len(reply.split())})
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def with_structured_output(self, schema: dict | type, *, include_raw: bool = False, method: str = "json_schema",
                               **kwargs: Any) -> Runnable:
        """Like ``ChatOpenAI.with_structured_output(..., method="json_schema")``: binds the response_format."""
        if not isinstance(schema, dict):
            raise TypeError("the scripted model takes a response_format dict, as LORE sends")
        if schema.get("type") == "json_schema":
            fmt = schema
        else:  # a JSON schema with a title, as ChatOpenAI converts it
            body = {k: v for k, v in schema.items() if k != "title"}
            fmt = {"type": "json_schema",
                   "json_schema": {"name": schema.get("title", "output"), "schema": body, "strict": kwargs.get("strict")}}
        bound = self.bind(response_format=fmt)
        parser = JsonOutputParser()

        def parse(message: AIMessage) -> dict[str, Any]:
            try:
                return {"raw": message, "parsed": parser.invoke(message), "parsing_error": None}
            except ValueError as err:  # OutputParserException is a ValueError
                return {"raw": message, "parsed": None, "parsing_error": err}

        chain = bound | RunnableLambda(parse)
        return chain if include_raw else chain | RunnableLambda(lambda out: out["parsed"])


def scripted(replies: Sequence[Any] | Callable[[tuple[tuple[str, str], ...]], str]) -> ScriptedChatModel:
    """A scripted model from a list of replies (or one callable used for every call, up to 50)."""
    if callable(replies):
        return ScriptedChatModel(replies=[replies] * 50)
    return ScriptedChatModel(replies=list(replies))
