"""The Slack bot inside the HTTP API's app (`lore serve`): signed requests into the real Bolt app, served by uvicorn on
loopback next to the API, Web API calls out to the stand-in."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from slack_sdk import WebClient
from slack_standin import (SECRET, Harness, SlackStandIn, block, blocks_of, bot_settings, event_body, mention, post,
                           served)

from lore.errors import OperatorError
from ui.api.app import create_app
from ui.api.service import Service

QUESTION = "streaming hours by region in 2026"


@pytest.fixture(scope="module")
def service(slack_project: Path) -> Iterator[Service]:
    """The API's open project, shared by the module's apps (each test builds its own app and bot over it)."""
    service = Service(slack_project, bot_settings(slack_project, answer_cache_disk_mb=0))
    _ = service.lore
    yield service
    service.close()


@pytest.fixture(scope="module")
def token(service: Service) -> str:
    return service.keys.create("ops@example.com", name="slack-in-api tests")[1]


@pytest.fixture
def api(service: Service, slack_project: Path) -> Iterator[tuple[Harness, Any]]:
    """The API's app with the Slack settings, on uvicorn on loopback: a harness for Slack's side, and the app."""
    slack = SlackStandIn().start()
    client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=10)
    app = create_app(slack_project, service.settings, service=service, slack_client=client)
    try:
        with served(app) as base:
            h = Harness(slack=slack, bot=app.state.slack, url=f"{base}/slack/events")
            try:
                yield h, app
            finally:
                h.settle(quiet=0.3, timeout=10)
    finally:
        slack.stop()


def answers(slack: SlackStandIn, count: int = 1, timeout: float = 60.0) -> list[Any]:
    """The bot's answer messages (with the answer block), once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = [c for c in slack.of("chat.postMessage") if any(b.get("block_id") == "lore_answer" for b in blocks_of(c))]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"expected {count} answers"
        slack.wait_for("chat.postMessage", len(slack.of("chat.postMessage")) + 1, timeout=deadline - time.monotonic())


def test_the_api_serves_slack_events_next_to_its_own_endpoints(api: tuple[Harness, Any], token: str,
                                                               raw_db: Any) -> None:
    h, _ = api
    challenge = post(h.url, json.dumps({"type": "url_verification", "challenge": "c-api", "token": "unused"}),
                     content_type="application/json")
    assert challenge.status == 200 and "c-api" in challenge.body

    reply = h.event(mention(QUESTION, "1712000000.010100"), "EvAPI1")
    assert reply.status == 200 and reply.elapsed < 3
    answer = answers(h.slack)[0]
    assert answer.params["channel"] == "C0DATA" and answer.params["thread_ts"] == "1712000000.010100"
    table = block(answer, "lore_table")["text"]["text"]
    emea = raw_db.execute("""
        SELECT SUM(s.streaming_hours) FROM streaming_sessions s JOIN accounts a ON a.account_id = s.account_id
        JOIN countries c ON c.country_iso_code = a.country_iso_code
        WHERE c.region = 'EMEA' AND s.session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31'""").fetchone()[0]
    assert f"{emea:,.0f}" in table

    command = h.command(QUESTION)
    assert command.status == 200 and command.body == f"Working on it: {QUESTION}"
    question = h.slack.wait_for("chat.postMessage", 3)
    assert any(b.get("block_id") == "lore_question" for c in question for b in blocks_of(c))
    assert answers(h.slack, 2)[1].params["thread_ts"].startswith("1700000000.")

    base = h.url.removesuffix("/slack/events")
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get("/v1/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert http.get("/slack/events").status_code == 405  # Slack only POSTs
        assert "/slack/events" not in http.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("case", ["wrong secret", "stale timestamp", "unsigned"])
def test_a_bad_signature_is_refused_and_runs_nothing(api: tuple[Harness, Any], case: str) -> None:
    h, _ = api
    kwargs: dict[str, Any] = {"wrong secret": {"secret": "not-the-secret"},
                              "stale timestamp": {"timestamp": int(time.time()) - 6 * 60},
                              "unsigned": {"secret": None}}[case]
    reply = post(h.url, event_body(mention(QUESTION, "1712000000.010200"), "EvAPIFORGED"),
                 content_type="application/json", **kwargs)
    assert reply.status == 401
    time.sleep(0.2)
    assert [c.method for c in h.slack.calls] == ["auth.test"]
    assert h.bot.deliveries.first("event:EvAPIFORGED")  # nothing after verification saw it


def test_slack_bodies_have_their_own_limit_in_the_api(api: tuple[Harness, Any], service: Service) -> None:
    """The API's body limit (64 KiB) does not cut Slack's payloads; the Slack route's own (1 MB) applies."""
    from ui.api.app import SLACK_EVENTS_PATH
    from ui.slack.app import EVENTS_PATH

    h, _ = api
    assert SLACK_EVENTS_PATH == EVENTS_PATH  # the path the API exempts is the path the bot serves
    assert service.settings.api_max_body_bytes < 100_000
    padded = json.dumps({"type": "url_verification", "challenge": "c-big", "token": "unused", "pad": "x" * 100_000})
    assert post(h.url, padded, content_type="application/json").status == 200
    url = urlsplit(h.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:  # a body over 1 MB is refused by its Content-Length, before it is read
        conn.putrequest("POST", url.path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(2 * 1024 * 1024))
        conn.endheaders()
        conn.send(b"{}")
        assert conn.getresponse().status == 413
    finally:
        conn.close()


def test_an_api_request_is_answered_while_bolt_handles_a_slack_request(api: tuple[Harness, Any], token: str) -> None:
    """Bolt's dispatch (middleware, acknowledgement) is blocking code: it must run off the event loop."""
    h, app = api
    bolt = next(r for r in app.routes if getattr(r, "path", None) == "/slack/events").app.app
    inside, release, held_too_long = threading.Event(), threading.Event(), threading.Event()

    def hold(next: Any) -> None:  # a Bolt middleware holding the request until the test lets it go
        inside.set()
        if not release.wait(15):
            held_too_long.set()
        next()

    bolt.use(hold)
    base = h.url.removesuffix("/slack/events")
    with ThreadPoolExecutor(1) as pool:
        slack_reply = pool.submit(h.event, mention(QUESTION, "1712000000.010300"), "EvAPIBUSY", timeout=30)
        assert inside.wait(10)
        try:
            with httpx.Client(base_url=base, timeout=5) as http:
                assert http.get("/healthz").status_code == 200
                assert http.get("/v1/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        finally:
            release.set()
        assert slack_reply.result().status == 200
    assert not held_too_long.is_set()
    answers(h.slack)


def test_without_slack_settings_the_route_is_not_there(service: Service, slack_project: Path) -> None:
    from fastapi.testclient import TestClient

    settings = bot_settings(slack_project, slack_bot_token=None, slack_signing_secret=None)
    app = create_app(slack_project, settings, service=service)
    assert app.state.slack is None
    client = TestClient(app)
    missing = client.post("/slack/events", content=b"{}", headers={"Content-Type": "application/json"})
    assert missing.status_code == 404 and missing.json()["code"] == "http_404"
    assert client.get("/healthz").status_code == 200
    # switched off, the settings alone do not mount it
    off = create_app(slack_project, bot_settings(slack_project, api_slack=False), service=service)
    assert off.state.slack is None and TestClient(off).post("/slack/events", content=b"{}").status_code == 404


def test_slack_switched_on_without_its_settings_names_the_variables(service: Service, slack_project: Path) -> None:
    settings = bot_settings(slack_project, slack_signing_secret=None, api_slack=True)
    with pytest.raises(OperatorError, match="needs LORE_SLACK_SIGNING_SECRET"):
        create_app(slack_project, settings, service=service)
    settings = bot_settings(slack_project, slack_bot_token=None, slack_signing_secret=None, api_slack=True)
    with pytest.raises(OperatorError, match="LORE_SLACK_BOT_TOKEN and LORE_SLACK_SIGNING_SECRET"):
        create_app(slack_project, settings, service=service)


def test_lore_serve_checks_the_slack_settings_before_it_starts(slack_project: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from ui.api.cli import register

    for name in ("LORE_SLACK_BOT_TOKEN", "LORE_SLACK_SIGNING_SECRET", "LORE_SLACK_APP_TOKEN", "LORE_API_SLACK"):
        monkeypatch.delenv(name, raising=False)
    cli = typer.Typer()

    @cli.callback()
    def _root() -> None:
        """LORE."""

    register(cli)
    env = {"COLUMNS": "300", "TERM": "dumb"}
    missing = CliRunner().invoke(cli, ["serve", "--project", str(slack_project), "--slack"], env=env)
    assert missing.exit_code == 2
    assert "LORE_SLACK_BOT_TOKEN and LORE_SLACK_SIGNING_SECRET" in " ".join(missing.output.split())
    workers = CliRunner().invoke(cli, ["serve", "--project", str(slack_project), "--workers", "2"],
                                 env={**env, "LORE_SLACK_BOT_TOKEN": "xoxb-1", "LORE_SLACK_SIGNING_SECRET": SECRET})
    assert workers.exit_code == 2 and "--workers 1" in " ".join(workers.output.split())
    helped = CliRunner().invoke(cli, ["serve", "--help"], env=env)
    assert "--slack" in helped.output and "--no-slack" in helped.output
