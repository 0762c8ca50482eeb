"""Chat models from a ``--model`` string, through LangChain's ``init_chat_model``.

- ``openai:<model>`` (or a bare OpenAI model name such as ``gpt-4o-mini``): ``ChatOpenAI``,
  honouring ``OPENAI_BASE_URL`` (Ollama, vLLM, a llama.cpp server, ...) and
  ``OPENAI_API_KEY`` (optional when a base URL is set: local servers take any key);
- any other provider string ``init_chat_model`` accepts (``anthropic:...``,
  ``ollama:...``), given its LangChain integration package is installed;
- ``local``: Qwen2.5-Coder-0.5B-Instruct behind a ``llama_cpp.server`` on
  loopback (:mod:`lore.llm.local`), reached through the same ``ChatOpenAI`` path.

:func:`connect` returns a :class:`ModelHandle`: the model wrapped in the
:class:`~lore.llm.chat.StructuredChat` seam, plus whatever must be closed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lore.errors import OperatorError
from lore.llm.chat import StructuredChat, StructuredMode
from lore.llm.log import ExchangeLog

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.language_models import BaseChatModel

    from lore.llm.local import LocalServer
    from lore.settings import Settings

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
    """How to ask a provider for JSON when ``llm_structured`` is ``auto``.

    OpenAI and compatible servers take a ``json_schema`` response_format through
    ``with_structured_output``; ``llama_cpp.server`` only knows ``json_object``
    (with a ``schema`` it decodes under a grammar), so the local model starts there.
    Either way a server that rejects a mode falls back to the next one.

    >>> default_structured(ModelSpec("openai", "gpt-4o-mini")), default_structured(ModelSpec("local", ""))
    ('json_schema', 'json_object_schema')
    """
    return "json_object_schema" if spec.provider == "local" else "json_schema"


def check_spec(spec: str, *, env: Mapping[str, str] | None = None) -> ModelSpec:
    """Check a ``--model`` value without starting or calling anything; raises OperatorError naming the fix."""
    env = os.environ if env is None else env
    parsed = parse_spec(spec)
    if parsed.provider == "openai":
        if not parsed.model:
            raise OperatorError("--model openai needs a model name", hint="For example --model openai:gpt-4o-mini.")
        if not (env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE")):
            raise OperatorError(f"--model {spec} needs an OpenAI API key",
                                hint="Set OPENAI_API_KEY, or set OPENAI_BASE_URL to an OpenAI-compatible server "
                                     "(Ollama, vLLM, llama.cpp) that needs no key; or use --model local.")
    elif parsed.provider == "local":
        from lore.llm.local import INSTALL_HINT, have_llama_cpp

        if not have_llama_cpp():
            raise OperatorError("--model local needs llama-cpp-python, which is not installed", hint=INSTALL_HINT)
    return parsed


def chat_model(spec: str, settings: Settings, *, base_url: str | None = None,
               env: Mapping[str, str] | None = None) -> BaseChatModel:
    """A LangChain chat model for ``spec`` (``local`` needs the ``base_url`` of a running server; see :func:`connect`)."""
    env = os.environ if env is None else env
    parsed = parse_spec(spec)
    if parsed.provider == "local":
        if not base_url:
            raise OperatorError("the local model needs its server: open it with lore.llm.models.connect()")
        return _openai(parsed.model or "local", settings, base_url=base_url, api_key=NO_KEY)
    if parsed.provider == "openai":
        if not parsed.model:
            raise OperatorError("--model openai needs a model name", hint="For example --model openai:gpt-4o-mini.")
        if base_url is None:
            check_spec(spec, env=env)
        url = base_url or env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE") or None
        key = env.get("OPENAI_API_KEY") or None
        return _openai(parsed.model, settings, base_url=url, api_key=key or NO_KEY)
    return _init_other(spec, parsed)


def _openai(model: str, settings: Settings, *, base_url: str | None, api_key: str) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {"temperature": 0, "timeout": settings.llm_timeout_s, "max_retries": 0, "api_key": api_key,
                              "max_tokens": settings.llm_max_tokens}
    if base_url:
        kwargs["base_url"] = base_url
    return init_chat_model(model, model_provider="openai", **kwargs)


def _init_other(spec: str, parsed: ModelSpec) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

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
    """Open the model named by ``spec``: for ``local``, assemble the GGUF and start its server first."""
    env = os.environ if env is None else env
    parsed = parse_spec(spec)
    structured: StructuredMode = (default_structured(parsed) if settings.llm_structured == "auto"
                                  else settings.llm_structured)
    if parsed.provider == "local":
        from lore.llm.local import LocalServer, model_path

        path = model_path(settings, state_dir, env=env)
        server = LocalServer.start(path, settings, log_dir=Path(state_dir))
        try:
            model = chat_model(spec, settings, base_url=server.base_url, env=env)
        except BaseException:
            server.close()
            raise
        chat = StructuredChat(model, name=f"local:{path.name}", structured=structured, log=log,
                              base_url=server.base_url, timeout_s=settings.llm_timeout_s,
                              diagnose=lambda: server.failure("while answering a request"))
        return ModelHandle(chat=chat, spec=spec, closers=[server.close], server=server)
    model = chat_model(spec, settings, env=env)
    url = (env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE")) if parsed.provider == "openai" else None
    chat = StructuredChat(model, name=parsed.label, structured=structured, log=log, base_url=url,
                          timeout_s=settings.llm_timeout_s)
    return ModelHandle(chat=chat, spec=spec)
