"""Model strings -> LangChain chat models; the local model's assembly; prompts as versioned files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lore.cli import app
from lore.errors import ConfigError, OperatorError
from lore.llm.local import assemble, model_path, part_files, server_command, sha256_of
from lore.llm.models import chat_model, check_spec, connect, parse_spec
from lore.plan.prompt import load_prompt
from lore.settings import Settings

NO_ENV: dict[str, str] = {}


def test_openai_needs_a_key_or_a_base_url() -> None:
    with pytest.raises(OperatorError) as info:
        chat_model("openai:gpt-4o-mini", Settings(), env=NO_ENV)
    assert "OPENAI_API_KEY" in str(info.value) and "OPENAI_BASE_URL" in str(info.value)


def test_openai_honours_the_base_url_and_key() -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}
    model = chat_model("openai:qwen2.5:0.5b", Settings(llm_timeout_s=7), env=env)
    assert type(model).__name__ == "ChatOpenAI"
    assert model.openai_api_base == "http://127.0.0.1:11434/v1" and model.model_name == "qwen2.5:0.5b"
    assert model.request_timeout == 7 and model.max_retries == 0 and model.temperature == 0
    keyed = chat_model("gpt-4o-mini", Settings(), env={"OPENAI_API_KEY": "sk-test"})
    assert keyed.openai_api_key.get_secret_value() == "sk-test" and keyed.model_name == "gpt-4o-mini"


def test_connect_wraps_the_model_in_the_logged_seam(tmp_path: Path) -> None:
    handle = connect("openai:gpt-4o-mini", Settings(), tmp_path, env={"OPENAI_API_KEY": "sk-test"})
    assert handle.chat.name == "openai:gpt-4o-mini" and handle.chat.structured == "json_schema"
    forced = connect("openai:gpt-4o-mini", Settings(llm_structured="json_object"), tmp_path, env={"OPENAI_API_KEY": "k"})
    assert forced.chat.structured == "json_object"


def test_other_providers_go_through_init_chat_model() -> None:
    with pytest.raises(OperatorError) as info:  # langchain-anthropic is not a dependency
        chat_model("anthropic:claude-3-5-haiku-latest", Settings(), env=NO_ENV)
    assert "pip install langchain-anthropic" in str(info.value)
    with pytest.raises(OperatorError, match="provider"):
        chat_model("nosuchprovider:model", Settings(), env=NO_ENV)


def test_model_strings_parse() -> None:
    assert parse_spec("openai:gpt-4o").provider == "openai"
    assert parse_spec("local").provider == "local"
    with pytest.raises(OperatorError):
        parse_spec("offline")
    with pytest.raises(OperatorError, match="model name"):
        check_spec("openai:", env={"OPENAI_API_KEY": "k"})


def test_lore_ask_with_a_model_but_no_key_says_what_to_set(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    res = CliRunner().invoke(app, ["ask", "--project", str(demo_dir), "--model", "openai:gpt-4o-mini", "cloud cost"])
    assert res.exit_code == 2
    assert "OPENAI_API_KEY" in res.output and "not available yet" not in res.output


def test_the_local_model_is_assembled_from_parts_and_checked(tmp_path: Path) -> None:
    parts = []
    for i, chunk in enumerate((b"GGUF", b"-part-two", b"-three")):
        p = tmp_path / f"part{i}.bin"
        p.write_bytes(chunk)
        parts.append(p)
    whole = tmp_path / "whole.bin"
    whole.write_bytes(b"GGUF-part-two-three")
    digest = sha256_of(whole)
    dest = tmp_path / "models" / "m.gguf"
    assert assemble(parts, dest, sha256=digest).read_bytes() == b"GGUF-part-two-three"
    assert assemble(parts, dest, sha256=digest) == dest  # reused, not rewritten
    bad = tmp_path / "models" / "bad.gguf"
    with pytest.raises(OperatorError, match="expected"):
        assemble(parts, bad, sha256="0" * 64)
    assert not bad.exists() and not list(bad.parent.glob("bad.gguf.*"))


def test_missing_part_packages_say_how_to_install() -> None:
    with pytest.raises(OperatorError) as info:
        part_files(("lore-no-such-part-package",))
    assert "lore-analytics[local]" in str(info.value) and "LORE_LOCAL_MODEL_PATH" in str(info.value)


def test_a_configured_model_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="not a file"):
        model_path(Settings(local_model_path=tmp_path / "nope.gguf"), tmp_path)
    real = tmp_path / "mine.gguf"
    real.write_bytes(b"GGUF")
    assert model_path(Settings(local_model_path=real), tmp_path) == real


def test_the_server_listens_on_loopback_without_mmap(tmp_path: Path) -> None:
    cmd = server_command(tmp_path / "m.gguf", 8123, Settings(local_threads=2))
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--use_mmap") + 1] == "False"
    assert cmd[cmd.index("--port") + 1] == "8123" and cmd[cmd.index("--n_threads") + 1] == "2"


def test_prompts_are_versioned_files() -> None:
    plan = load_prompt("plan_v1")
    assert (plan.name, plan.version) == ("plan", 1) and "question" in plan.variables and plan.system and plan.user
    repair = load_prompt("repair_v1")
    assert repair.render({"error": "unknown metric x.", "alternatives": ""})[0][1].startswith("Your plan could not be used")
    with pytest.raises(ConfigError):
        load_prompt("plan_v999")
    with pytest.raises(ConfigError, match="needs"):
        plan.render({"question": "q"})


def test_langchain_and_openai_are_imported_in_lore_llm_only() -> None:
    import ast

    root = Path(__file__).resolve().parents[2] / "lore"
    offenders = []
    for path in root.rglob("*.py"):
        if path.parent.name == "llm" and path.parent.parent == root:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] in ("langchain", "langchain_core",
                                                                                                "langchain_openai", "openai")]
    assert offenders == []


def test_a_plugin_adds_a_model_provider_through_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``provider:model`` goes to the provider registered under that name (``lore.model_providers``), which opens
    the model; a plugin may not take a built-in name, and a broken one leaves the others working."""
    from importlib.metadata import EntryPoint

    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from lore.llm import models
    from lore.llm.chat import StructuredChat

    class Acme:
        structured = "json_schema"
        checked: list[str] = []

        def check(self, spec, env):  # noqa: ANN001, ANN201
            self.checked.append(spec.model)

        def chat_model(self, spec, settings, *, base_url, env):  # noqa: ANN001, ANN201
            return FakeListChatModel(responses=["{}"])

        def connect(self, spec, settings, state_dir, *, structured, log, env):  # noqa: ANN001, ANN201
            chat = StructuredChat(self.chat_model(spec, settings, base_url=None, env=env), name=spec.label,
                                  structured=structured, log=log)
            return models.ModelHandle(chat=chat, spec=spec.label)

    monkeypatch.setattr(sys.modules[__name__], "ACME", Acme(), raising=False)
    eps = [EntryPoint(name="acme", value=f"{__name__}:ACME", group="lore.model_providers"),
           EntryPoint(name="openai", value=f"{__name__}:ACME", group="lore.model_providers"),
           EntryPoint(name="broken", value="no.such.module:X", group="lore.model_providers")]
    monkeypatch.setattr(models, "entry_points", lambda group: eps if group == "lore.model_providers" else [])
    models.providers.cache_clear()
    try:
        assert isinstance(models.provider_for(parse_spec("openai:gpt-4o-mini")), models.OpenAIProvider)
        assert isinstance(models.provider_for(parse_spec("anthropic:claude")), models.LangChainProvider)
        assert check_spec("acme:rocket-1", env=NO_ENV).provider == "acme" and Acme.checked == ["rocket-1"]
        handle = connect("acme:rocket-1", Settings(), tmp_path, env=NO_ENV)
        assert handle.spec == "acme:rocket-1" and handle.chat.name == "acme:rocket-1"
    finally:
        models.providers.cache_clear()
