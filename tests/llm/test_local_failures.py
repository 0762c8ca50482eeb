"""When the local model's process ends, LORE says how, quotes its log and names the fix: never a bare connection error.

The pure parts (how a process ended, the hint for it) run everywhere; the rest starts the real
``llama_cpp.server`` on loopback (the ``local`` extra) and breaks it for real: a truncated GGUF file that
cannot load, and a server killed with SIGSEGV in the middle of a session, as a build for another CPU dies.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from lore.errors import LocalModelFailed
from lore.llm.local import describe_exit, failure_hint, log_tail

REBUILD = "python -m lore.llm.build install"


def test_an_exit_is_described_by_its_code_or_its_signal() -> None:
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(-signal.SIGSEGV).startswith("was killed by signal 11 (SIGSEGV")
    assert "SIGILL" in describe_exit(-signal.SIGILL)
    assert describe_exit(-200) == "was killed by signal 200"


def test_each_way_of_ending_gets_its_own_fix() -> None:
    model = Path("/models/m.gguf")
    for sig in (signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGABRT):
        hint = failure_hint(-sig, [], model)
        assert REBUILD in hint and "-DGGML_NATIVE=OFF" in hint and "--model offline" in hint
    assert "memory" in failure_hint(-signal.SIGKILL, [], model)
    bad_file = failure_hint(1, ["llama_model_load: error loading model: tensor data is not within the file bounds",
                                "ValueError: Failed to load model from file: /models/m.gguf"], model)
    assert "not a valid GGUF" in bad_file and "LORE_LOCAL_MODEL_PATH" in bad_file
    assert "--model offline" in failure_hint(3, ["something else"], model)


def test_the_log_tail_keeps_the_last_meaningful_lines(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("\n".join([f"line {i}" for i in range(40)] + ["    ^^^^^^^^", "", "last"]) + "\n")
    tail = log_tail(path, lines=3)
    assert tail == ["line 38", "line 39", "last"]
    assert log_tail(tmp_path / "missing.log") == []
    assert log_tail(None) == []


# --- the real server --------------------------------------------------------------------------

def _needs_local_model() -> None:
    from importlib.util import find_spec

    if find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (the local extra)")


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _needs_local_model()
    from lore.errors import OperatorError
    from lore.llm.local import model_path
    from lore.settings import Settings

    try:
        return model_path(Settings(), tmp_path_factory.mktemp("state"))
    except OperatorError as err:
        pytest.skip(f"the local model is not installed: {err}")


@pytest.fixture(scope="module")
def truncated(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("broken") / "truncated.gguf"
    with gguf.open("rb") as src, path.open("wb") as out:
        out.write(src.read(40 * 2**20))  # the header and metadata are whole; the tensors are cut off
    return path


@pytest.mark.local_model
@pytest.mark.timeout(600)
def test_a_server_that_cannot_load_its_file_is_named_with_the_fix(truncated: Path, tmp_path: Path) -> None:
    from lore.llm.local import LocalServer
    from lore.settings import Settings

    with pytest.raises(LocalModelFailed) as caught:
        LocalServer.start(truncated, Settings(local_threads=1), log_dir=tmp_path)
    err = caught.value
    assert err.returncode is not None and err.returncode > 0
    assert "exited with code" in err.message and "while loading the model" in err.message
    assert "Failed to load model" in err.message  # the server log's last lines are quoted
    assert str(tmp_path / "llama_server.log") in err.message
    assert "not a valid GGUF" in (err.hint or "") and "--model offline" in (err.hint or "")


@pytest.mark.local_model
@pytest.mark.timeout(900)
def test_a_server_that_crashes_mid_session_is_named_with_the_fix(gguf: Path, tmp_path: Path) -> None:
    from lore.llm.models import connect
    from lore.settings import Settings

    handle = connect("local", Settings(local_threads=1, llm_timeout_s=300), tmp_path)
    try:
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        first = handle.chat.complete([("user", 'Reply with {"ok": true}')], schema)
        assert first.data is not None  # the server works; now it dies as a build for another CPU does
        assert handle.server is not None
        os.kill(handle.server.process.pid, signal.SIGSEGV)
        time.sleep(0.2)
        with pytest.raises(LocalModelFailed) as caught:
            handle.chat.complete([("user", 'Reply with {"ok": true}')], schema)
    finally:
        handle.close()
    err = caught.value
    assert err.returncode == -signal.SIGSEGV
    assert "SIGSEGV" in err.message and "while answering a request" in err.message
    assert "POST /v1/chat/completions" in err.message  # the log's last lines
    assert REBUILD in (err.hint or "") and "--model offline" in (err.hint or "")
    assert "Connection error" not in str(err)


@pytest.mark.local_model
@pytest.mark.timeout(600)
def test_doctor_reports_a_broken_model_with_its_fix(truncated: Path, demo_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from lore.cli import app

    monkeypatch.setenv("LORE_LOCAL_MODEL_PATH", str(truncated))
    result = CliRunner().invoke(app, ["doctor", "--project", str(demo_dir)])
    assert result.exit_code == 1, result.output
    assert "✗ FAIL local model run" in result.output
    assert "Failed to load model" in result.output and "not a valid GGUF" in result.output
    assert "Some checks failed" in result.output
