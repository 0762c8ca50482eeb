"""Shared fixtures: a small demo project built once per test session, and no network."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

#: the scale the test suite builds the demo warehouse at (about 20,000 streaming sessions)
TEST_SCALE = 0.02


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to a non-loopback address fails the test: no test may reach the network."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if isinstance(host, str):
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                ip = None if host == "localhost" else ipaddress.ip_address("203.0.113.1")
            if ip is not None and not ip.is_loopback:
                raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _answers_stay_in_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """No shared answer file (.lore/answers.sqlite) unless a test turns it on: many tests open the session's demo
    project, and one test's cached answer must not stand in for the work another test checks."""
    monkeypatch.setenv("LORE_ANSWER_CACHE_DISK_MB", "0")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo project at TEST_SCALE, built once for the whole session."""
    from lore.demo.project import init_demo

    folder = tmp_path_factory.mktemp("demo") / "project"
    init_demo(folder, scale=TEST_SCALE, seed=7)
    return folder


@pytest.fixture(scope="session")
def demo_lore(demo_dir: Path):
    from lore import Lore

    lore = Lore.open(demo_dir)
    yield lore
    lore.close()


@pytest.fixture(scope="session")
def raw_db(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A plain read-only DuckDB connection for hand-written reference SQL in tests.

    It reads a copy of the warehouse: DuckDB refuses a second connection to the same
    file with another configuration in one process (the engine's is hardened).
    """
    import shutil

    import duckdb

    copy = tmp_path_factory.mktemp("raw") / "warehouse.duckdb"
    shutil.copyfile(demo_dir / "warehouse.duckdb", copy)
    con = duckdb.connect(str(copy), read_only=True)
    yield con
    con.close()


@pytest.fixture(autouse=True)
def _no_real_models(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any real chat-model call fails the test (LangChain's OpenAI models and the openai client itself).

    Unit tests use :class:`lore.llm.scripted.ScriptedChatModel`; only tests marked
    ``local_model`` may talk to a real model (the local one, on loopback).
    """
    if request.node.get_closest_marker("local_model") is not None:
        return
    import openai._base_client as base_client
    from langchain_openai.chat_models import base as lc_openai

    def refuse(*args: object, **kwargs: object) -> object:
        raise RuntimeError("test tried to call a real chat model: use lore.llm.scripted.ScriptedChatModel")

    for name in ("_generate", "_agenerate", "_stream", "_astream"):
        monkeypatch.setattr(lc_openai.BaseChatOpenAI, name, refuse)
    monkeypatch.setattr(base_client.SyncAPIClient, "request", refuse)
    monkeypatch.setattr(base_client.AsyncAPIClient, "request", refuse)
