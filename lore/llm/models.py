"""Chat models from a ``--model`` string, through LangChain's ``init_chat_model``.

- ``openai:<model>`` (or a bare OpenAI model name such as ``gpt-4o-mini``): ``ChatOpenAI``,
  honouring ``OPENAI_BASE_URL`` (Ollama, vLLM, a llama.cpp server, ...) and
  ``OPENAI_API_KEY`` (optional when a base URL is set: local servers take any key);
- any other provider string ``init_chat_model`` accepts (``anthropic:...``,
  ``ollama:...``), given its LangChain integration package is installed;
- ``local``: Qwen2.5-Coder-0.5B-Instruct behind a ``llama_cpp.server`` on
  loopback (:mod:`lore.llm.local`), reached through the same ``ChatOpenAI`` path.

:func:`connect` returns a :class:`ModelHandle`: the model wrapped in the
:class:`~lore.llm.chat.StructuredChat` seam, plus whatever must be closed. Each provider is a
:class:`Provider` in a registry; a plugin adds one through the ``lore.model_providers`` entry points.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lore.errors import OperatorError
from lore.llm.chat import StructuredChat, StructuredMode
from lore.llm.log import ExchangeLog

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.language_models import BaseChatModel

    from lore.llm.local import LocalServer
    from lore.settings import Settings

log = logging.getLogger("lore.llm")

#: placeholder key for OpenAI-compatible servers that check none
NO_KEY = "sk-no-key-needed"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` value."""

    provider: str
    model: str

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}" if self.model else self.provider


def parse_spec(spec: str) -> ModelSpec:
    """Split ``provider:model``; a bare OpenAI model name means ``openai``.

    >>> parse_spec("openai:gpt-4o-mini")
    ModelSpec(provider='openai', model='gpt-4o-mini')
    >>> parse_spec("gpt-4o-mini"), parse_spec("local")
    (ModelSpec(provider='openai', model='gpt-4o-mini'), ModelSpec(provider='local', model=''))
    >>> parse_spec("ollama:qwen2.5:0.5b")
    ModelSpec(provider='ollama', model='qwen2.5:0.5b')
    """
    text = spec.strip()
    if not text or text == "offline":
        raise OperatorError("no chat model is configured (--model offline plans without one)",
                            hint="Pass --model openai:<model>, --model local, or set LORE_MODEL.")
    if text == "local":
        return ModelSpec("local", "")
    provider, sep, model = text.partition(":")
    if not sep:
        return ModelSpec("openai" if text.lower().startswith(("gpt-", "o1", "o3", "o4", "chatgpt")) else "", text)
    return ModelSpec(provider.strip().lower().replace("-", "_"), model.strip())


def default_structured(spec: ModelSpec) -> StructuredMode:
    """How to ask a provider for JSON when ``llm_structured`` is ``auto`` (the provider's own default).

    OpenAI and compatible servers take a ``json_schema`` response_format through
    ``with_structured_output``; ``llama_cpp.server`` only knows ``json_object``
    (with a ``schema`` it decodes under a grammar), so the local model starts there.
    Either way a server that rejects a mode falls back to the next one.

    >>> default_structured(ModelSpec("openai", "gpt-4o-mini")), default_structured(ModelSpec("local", ""))
    ('json_schema', 'json_object_schema')
    """
    return provider_for(spec).structured


def check_spec(spec: str, *, env: Mapping[str, str] | None = None) -> ModelSpec:
    """Check a ``--model`` value without starting or calling anything; raises OperatorError naming the fix."""
    parsed = parse_spec(spec)
    provider_for(parsed).check(parsed, os.environ if env is None else env)
    return parsed


def chat_model(spec: str, settings: Settings, *, base_url: str | None = None,
               env: Mapping[str, str] | None = None) -> BaseChatModel:
    """A LangChain chat model for ``spec`` (``local`` needs the ``base_url`` of a running server; see :func:`connect`)."""
    parsed = parse_spec(spec)
    return provider_for(parsed).chat_model(parsed, settings, base_url=base_url, env=os.environ if env is None else env)


def _openai(model: str, settings: Settings, *, base_url: str | None, api_key: str) -> BaseChatModel:
    from langchain.chat_models import init_chat_model  # lazy: LangChain loads only with a model

    kwargs: dict[str, Any] = {"temperature": 0, "timeout": settings.llm_timeout_s, "max_retries": 0, "api_key": api_key,
                              "max_tokens": settings.llm_max_tokens}
    if base_url:
        kwargs["base_url"] = base_url
    return init_chat_model(model, model_provider="openai", **kwargs)


def _init_other(spec: str, parsed: ModelSpec) -> BaseChatModel:
    from langchain.chat_models import init_chat_model  # lazy: LangChain loads only with a model

    try:
        return init_chat_model(spec, temperature=0)
    except ImportError as err:
        raise OperatorError(f"--model {spec}: the LangChain integration for {parsed.provider or 'it'} is not installed "
                            f"({err.name or err})",
                            hint=f"pip install langchain-{parsed.provider.replace('_', '-')}, or serve the model behind "
                                 "an OpenAI-compatible endpoint and use --model openai:<name> with OPENAI_BASE_URL.") from None
    except ValueError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unknown model"
        raise OperatorError(f"--model {spec}: {first}",
                            hint="Use offline, local, openai:<model> or provider:<model> as LangChain's "
                                 "init_chat_model accepts (anthropic:..., ollama:..., ...).") from None
    except Exception as err:  # noqa: BLE001 - a provider's client refusing its config (a missing key) at construction
        raise OperatorError(f"--model {spec} could not be set up: {' '.join(str(err).split())[:300]}",
                            hint=f"Set the {parsed.provider.upper()}_API_KEY (or what the provider needs).") from None


@dataclass
class ModelHandle:
    """An open chat model: the seam to call it through, and what to close (a local server)."""

    chat: StructuredChat
    spec: str
    closers: list[Callable[[], None]] = field(default_factory=list)
    #: the local model's server process (``--model local`` only)
    server: LocalServer | None = None

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


def connect(spec: str, settings: Settings, state_dir: Path, *, log: ExchangeLog | None = None,
            env: Mapping[str, str] | None = None) -> ModelHandle:
    """Open the model named by ``spec`` through its provider (for ``local``: assemble the GGUF, start its server)."""
    parsed = parse_spec(spec)
    provider = provider_for(parsed)
    structured: StructuredMode = provider.structured if settings.llm_structured == "auto" else settings.llm_structured
    return provider.connect(parsed, settings, Path(state_dir), structured=structured, log=log,
                            env=os.environ if env is None else env)


# --- providers: how a --model string becomes a chat model -------------------------------------------------------

class Provider(Protocol):
    """A model provider: the ``provider`` part of ``provider:model`` names it.

    The built-in ones are ``openai`` (and every OpenAI-compatible server) and ``local``; any other name goes to
    LangChain's ``init_chat_model``. A plugin adds one through the ``lore.model_providers`` entry-point group
    (``name = "package.module:PROVIDER"``, an object with these members).
    """

    #: how to ask it for JSON when ``llm_structured`` is ``auto``
    structured: StructuredMode

    def check(self, spec: ModelSpec, env: Mapping[str, str]) -> None:
        """Raise OperatorError naming the fix when ``spec`` cannot work here; start and call nothing."""

    def chat_model(self, spec: ModelSpec, settings: Settings, *, base_url: str | None,
                   env: Mapping[str, str]) -> BaseChatModel:
        """The LangChain chat model."""

    def connect(self, spec: ModelSpec, settings: Settings, state_dir: Path, *, structured: StructuredMode,
                log: ExchangeLog | None, env: Mapping[str, str]) -> ModelHandle:
        """Open the model: the chat seam and whatever must be closed."""


class OpenAIProvider:
    """``openai:<model>``: ``ChatOpenAI``, honouring ``OPENAI_BASE_URL`` (Ollama, vLLM, llama.cpp...) and
    ``OPENAI_API_KEY`` (optional with a base URL: local servers take any key)."""

    structured: StructuredMode = "json_schema"

    def check(self, spec: ModelSpec, env: Mapping[str, str]) -> None:
        if not spec.model:
            raise OperatorError("--model openai needs a model name", hint="For example --model openai:gpt-4o-mini.")
        if not (env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE")):
            raise OperatorError(f"--model {spec.label} needs an OpenAI API key",
                                hint="Set OPENAI_API_KEY, or set OPENAI_BASE_URL to an OpenAI-compatible server "
                                     "(Ollama, vLLM, llama.cpp) that needs no key; or use --model local.")

    def chat_model(self, spec: ModelSpec, settings: Settings, *, base_url: str | None,
                   env: Mapping[str, str]) -> BaseChatModel:
        if not spec.model:
            raise OperatorError("--model openai needs a model name", hint="For example --model openai:gpt-4o-mini.")
        if base_url is None:
            self.check(spec, env)
        url = base_url or env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE") or None
        key = env.get("OPENAI_API_KEY") or None
        return _openai(spec.model, settings, base_url=url, api_key=key or NO_KEY)

    def connect(self, spec: ModelSpec, settings: Settings, state_dir: Path, *, structured: StructuredMode,
                log: ExchangeLog | None, env: Mapping[str, str]) -> ModelHandle:
        model = self.chat_model(spec, settings, base_url=None, env=env)
        url = env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE")
        chat = StructuredChat(model, name=spec.label, structured=structured, log=log, base_url=url,
                              timeout_s=settings.llm_timeout_s)
        return ModelHandle(chat=chat, spec=spec.label)


class LocalProvider:
    """``local``: Qwen2.5-Coder-0.5B-Instruct behind a ``llama_cpp.server`` on loopback (:mod:`lore.llm.local`),
    reached through the OpenAI path."""

    structured: StructuredMode = "json_object_schema"

    def check(self, spec: ModelSpec, env: Mapping[str, str]) -> None:
        from lore.llm.local import INSTALL_HINT, have_llama_cpp  # lazy: only for --model local

        if not have_llama_cpp():
            raise OperatorError("--model local needs llama-cpp-python, which is not installed", hint=INSTALL_HINT)

    def chat_model(self, spec: ModelSpec, settings: Settings, *, base_url: str | None,
                   env: Mapping[str, str]) -> BaseChatModel:
        if not base_url:
            raise OperatorError("the local model needs its server: open it with lore.llm.models.connect()")
        return _openai(spec.model or "local", settings, base_url=base_url, api_key=NO_KEY)

    def connect(self, spec: ModelSpec, settings: Settings, state_dir: Path, *, structured: StructuredMode,
                log: ExchangeLog | None, env: Mapping[str, str]) -> ModelHandle:
        from lore.llm.local import LocalServer, model_path  # lazy: only for --model local

        path = model_path(settings, state_dir, env=env)
        server = LocalServer.start(path, settings, log_dir=state_dir)
        try:
            model = self.chat_model(spec, settings, base_url=server.base_url, env=env)
        except BaseException:
            server.close()
            raise
        chat = StructuredChat(model, name=f"local:{path.name}", structured=structured, log=log,
                              base_url=server.base_url, timeout_s=settings.llm_timeout_s,
                              diagnose=lambda: server.failure("while answering a request"))
        return ModelHandle(chat=chat, spec=spec.label, closers=[server.close], server=server)


class LangChainProvider:
    """Any other ``provider:model`` LangChain's ``init_chat_model`` accepts (``anthropic:...``, ``ollama:...``),
    given its integration package is installed."""

    structured: StructuredMode = "json_schema"

    def check(self, spec: ModelSpec, env: Mapping[str, str]) -> None:
        return None  # the integration package and its keys are checked when the model is built

    def chat_model(self, spec: ModelSpec, settings: Settings, *, base_url: str | None,
                   env: Mapping[str, str]) -> BaseChatModel:
        return _init_other(spec.label if spec.provider else spec.model, spec)

    def connect(self, spec: ModelSpec, settings: Settings, state_dir: Path, *, structured: StructuredMode,
                log: ExchangeLog | None, env: Mapping[str, str]) -> ModelHandle:
        model = self.chat_model(spec, settings, base_url=None, env=env)
        chat = StructuredChat(model, name=spec.label, structured=structured, log=log, timeout_s=settings.llm_timeout_s)
        return ModelHandle(chat=chat, spec=spec.label)


#: the providers LORE ships; plugins add theirs through the ``lore.model_providers`` entry points
BUILTIN_PROVIDERS: Mapping[str, Provider] = {"openai": OpenAIProvider(), "local": LocalProvider()}
_FALLBACK: Provider = LangChainProvider()


@functools.cache
def providers() -> Mapping[str, Provider]:
    """Every provider by name: the built-in ones, then those plugins register (a plugin may not replace one)."""
    found: dict[str, Provider] = dict(BUILTIN_PROVIDERS)
    for ep in entry_points(group="lore.model_providers"):
        if ep.name in found:
            log.warning("model provider %r from %s ignored: the name is taken", ep.name, ep.value)
            continue
        try:
            found[ep.name] = ep.load()
        except Exception as err:  # noqa: BLE001 - a broken plugin must not take the others down
            log.warning("model provider %r from %s could not be loaded: %s", ep.name, ep.value, err)
    return found


def provider_for(spec: ModelSpec) -> Provider:
    """The provider that serves ``spec`` (LangChain's ``init_chat_model`` for names no provider claims)."""
    return providers().get(spec.provider, _FALLBACK)
