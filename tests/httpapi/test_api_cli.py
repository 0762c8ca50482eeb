"""`lore keys` and `lore serve`: registration, keys made and revoked, and a real server with two workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from access_project import OPS
from typer.testing import CliRunner

from ui.api.cli import register

ENV = {"COLUMNS": "200", "TERM": "dumb"}


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """LORE."""

    register(app)
    return app


def test_registered_as_lore_commands() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="lore.commands")}
    assert found.get("api") == "ui.api.cli:register"


def test_keys_are_created_listed_and_revoked(cli: typer.Typer, api_project: Path) -> None:
    made = CliRunner().invoke(cli, ["keys", "create", "--project", str(api_project), "--principal", OPS,
                                    "--name", "reporting job"], env=ENV)
    assert made.exit_code == 0, made.output
    token = next(line for line in made.output.splitlines() if line.startswith("lore_"))
    key_id = token.split("_")[1]
    listed = CliRunner().invoke(cli, ["keys", "list", "--project", str(api_project), "--json"], env=ENV)
    mine = [k for k in json.loads(listed.output) if k["id"] == key_id]
    assert mine == [{"id": key_id, "principal": OPS, "name": "reporting job", "created_at": mine[0]["created_at"],
                     "revoked_at": None}]
    assert token not in listed.output
    revoked = CliRunner().invoke(cli, ["keys", "revoke", key_id, "--project", str(api_project)], env=ENV)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    again = json.loads(CliRunner().invoke(cli, ["keys", "list", "--project", str(api_project), "--json"], env=ENV).output)
    assert next(k for k in again if k["id"] == key_id)["revoked_at"]
    unknown = CliRunner().invoke(cli, ["keys", "revoke", "0123456789ab", "--project", str(api_project)], env=ENV)
    assert unknown.exit_code == 2 and "lore keys list" in unknown.output


def test_a_key_for_someone_the_access_section_does_not_name_says_which_default_applies(cli: typer.Typer,
                                                                                       api_project: Path) -> None:
    made = CliRunner().invoke(cli, ["keys", "create", "--project", str(api_project), "--principal", "zed@example.com"],
                              env=ENV)
    assert made.exit_code == 0 and "default: all" in made.output


def test_serve_refuses_a_trusted_header_off_loopback(cli: typer.Typer, api_project: Path) -> None:
    done = CliRunner().invoke(cli, ["serve", "--project", str(api_project), "--host", "0.0.0.0", "--trust-header",
                                    "X-Forwarded-User"], env=ENV)
    assert done.exit_code == 2 and "loopback" in done.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sse_names(text: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in text.replace("\r\n", "\n").splitlines() if line.startswith("event: ")]


@pytest.mark.slow
def test_lore_serve_with_two_workers_answers_a_conversation(api_project: Path, api_service: Any, raw_db: Any,
                                                            tmp_path: Path) -> None:
    """The real command: uvicorn, the app factory in two worker processes, the state in the project's store."""
    _, token = api_service.keys.create(OPS, name="serve test")
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "lore.cli", "serve", "--project", str(api_project), "--port",
                             str(port), "--workers", "2"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "LORE_ANSWER_CACHE_DISK_MB": "0"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            conversation = http.post("/v1/conversations").json()["id"]
            first = http.post(f"/v1/conversations/{conversation}/messages",
                              json={"question": "streaming hours by region in 2026"}).json()
            assert first["status"] == "answered"
            # several follow-ups: whichever worker takes each one, it reads the conversation from the store
            for question in ("now only for premium accounts", "now only for premium accounts"):
                follow = http.post(f"/v1/conversations/{conversation}/messages", json={"question": question}).json()
                assert any(g["kind"] == "context" for g in follow["plan"]["groundings"])
            expected = raw_db.execute("""
                SELECT SUM(s.streaming_hours) FROM streaming_sessions s
                JOIN accounts a ON a.account_id = s.account_id JOIN countries c ON c.country_iso_code = a.country_iso_code
                WHERE a.plan = 'premium' AND c.region = 'EMEA'
                  AND s.session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31'""").fetchone()[0]
            assert {row[0]: row[-1] for row in follow["rows"]}["EMEA"] == pytest.approx(expected)
            with http.stream("POST", f"/v1/conversations/{conversation}/messages/stream",
                             json={"question": "break that down by device"}) as streamed:
                names = _sse_names(streamed.read().decode())
            assert names[0] == "retrieved" and names[-1] == "answer"
            assert len(http.get(f"/v1/conversations/{conversation}/messages").json()["answers"]) == 4
            assert http.get("/docs").status_code == 200 and http.get("/openapi.json").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
