"""The two transports: a `lore mcp` subprocess over stdio, and streamable HTTP behind the HTTP API's keys
(uvicorn on a free loopback port, in a thread)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from access_project import ANA, BO, OPS
from mcp_helpers import error_text, ok

from ui.api.limits import RateLimiter
from ui.api.service import Service
from ui.mcp.server import MCP_PATH, http_app

ROOT = Path(__file__).resolve().parents[2]


def test_lore_mcp_over_stdio(mcp_project: Path) -> None:
    """`python -m lore.cli mcp` as a subprocess, as Claude Desktop starts it: the tools act as --principal."""
    params = StdioServerParameters(command=sys.executable, cwd=str(ROOT),
                                   args=["-m", "lore.cli", "mcp", "--project", str(mcp_project), "--principal", BO])

    async def run() -> tuple[Any, Any, Any]:
        with anyio.fail_after(60):
            async with Client(params, read_timeout_seconds=60) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                listed = await client.call_tool("list_metrics", {})
                hidden = await client.call_tool("query_metrics", {"metrics": ["cloud_cost"]})
                return tools, listed, hidden

    tools, listed, hidden = anyio.run(run)
    assert {"list_metrics", "query_metrics", "ask", "submit_feedback"} <= tools
    names = {m["name"] for m in ok(listed)["metrics"]}
    assert "total_streaming_hours" in names and "cloud_cost" not in names
    assert "[unknown_reference]" in error_text(hidden)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(app: Any) -> Iterator[str]:
    """An ASGI app on a loopback port (uvicorn in a thread, with its lifespan), stopped on leaving."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the MCP HTTP server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}{MCP_PATH}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def mcp_url(mcp_service: Service) -> Iterator[str]:
    """The streamable HTTP app on a loopback port, stopped after the module."""
    with served(http_app(mcp_service)) as url:
        yield url


@pytest.fixture(scope="module")
def keys(mcp_service: Service) -> dict[str, str]:
    return {who: mcp_service.keys.create(who, name=f"mcp tests ({who})")[1] for who in (ANA, BO, OPS)}


def over_http(url: str, token: str, *steps: tuple[str, dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                return [await client.call_tool(tool, arguments) for tool, arguments in steps]

    return anyio.run(run)


def test_http_without_a_valid_key_is_401(mcp_url: str, mcp_service: Service) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer lore_0123456789ab_" + "x" * 43}, {"Authorization": "Basic b3BzOng="}):
        refused = httpx.post(mcp_url, json=message, headers={**headers, **auth}, timeout=10)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["code"] == "unauthorized"
    key, token = mcp_service.keys.create(OPS, name="revoked")
    mcp_service.keys.revoke(key.id)
    revoked = httpx.post(mcp_url, json=message, headers={**headers, "Authorization": f"Bearer {token}"}, timeout=10)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


def test_http_tools_act_as_the_keys_principal(mcp_url: str, keys: dict[str, str], raw_db: Any) -> None:
    query = {"metrics": ["total_streaming_hours"], "dimensions": ["countries.region"], "order_by": ["countries.region"]}
    ops_metrics, ops_rows = over_http(mcp_url, keys[OPS], ("list_metrics", {}), ("query_metrics", query))
    bo_metrics, bo_hidden = over_http(mcp_url, keys[BO], ("list_metrics", {}),
                                      ("query_metrics", {"metrics": ["cloud_cost"]}))
    (ana_rows,) = over_http(mcp_url, keys[ANA], ("query_metrics", query))
    assert "cloud_cost" in {m["name"] for m in ok(ops_metrics)["metrics"]}
    assert "cloud_cost" not in {m["name"] for m in ok(bo_metrics)["metrics"]}
    assert "[unknown_reference]" in error_text(bo_hidden)
    assert {r[0] for r in ok(ops_rows)["rows"]} == {"APAC", "EMEA", "LATAM", "UCAN"}
    assert [r[0] for r in ok(ana_rows)["rows"]] == ["EMEA"]
    (asked,) = over_http(mcp_url, keys[ANA], ("ask", {"question": "streaming hours by region in 2026"}))
    (vote,) = over_http(mcp_url, keys[ANA], ("submit_feedback", {"answer_id": ok(asked)["answer_id"], "rating": 1}))
    assert ok(vote)["user"] == ANA and ok(vote)["verified"] is True  # an API key is an authenticated identity


def test_http_each_key_has_its_own_rate_and_bodies_are_bounded(mcp_service: Service) -> None:
    """Past its burst a key gets 429 with Retry-After, before the MCP endpoint; another key still gets through; a
    body past the API's limit is 413, unread."""
    message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}
    _, first = mcp_service.keys.create(OPS, name="rate one")
    _, second = mcp_service.keys.create(OPS, name="rate two")

    def post(url: str, token: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(url, json=body, timeout=10, headers={"Authorization": f"Bearer {token}",
                                                                "Accept": "application/json, text/event-stream"})

    with served(http_app(mcp_service, limiter=RateLimiter(per_minute=1, burst=2))) as url:
        one, two, over, other = (post(url, token, message) for token in (first, first, first, second))
        big = post(url, second, {**message, "padding": "x" * (mcp_service.settings.api_max_body_bytes + 1)})
    assert one.status_code == two.status_code == other.status_code == 200, (one.text, other.text)
    assert over.status_code == 429, over.text
    assert over.headers["content-type"].startswith("application/problem+json")
    assert over.json()["code"] == "rate_limited" and int(over.headers["retry-after"]) >= 1
    assert big.status_code == 413 and big.json()["code"] == "too_large"
