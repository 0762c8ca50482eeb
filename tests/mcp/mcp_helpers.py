"""Helpers of the MCP tests: a one-call client (the principals are in tests/access_project.py)."""

from __future__ import annotations

import json
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult



async def call_in(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
    return await client.call_tool(tool, arguments or {})


def calls(server: Any, *steps: tuple[str, dict[str, Any]]) -> list[CallToolResult]:
    """Call tools in order through one client session of ``server`` (an MCPServer, a URL or a transport)."""

    async def run() -> list[CallToolResult]:
        async with Client(server) as client:
            return [await client.call_tool(tool, arguments) for tool, arguments in steps]

    return anyio.run(run)


def call(server: Any, tool: str, **arguments: Any) -> CallToolResult:
    return calls(server, (tool, arguments))[0]


def ok(result: CallToolResult) -> dict[str, Any]:
    """A tool's structured result; its text content is the same JSON."""
    assert not result.is_error, result.content[0].text if result.content else result
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    """A tool error's text: LORE's message and hint, never a traceback."""
    assert result.is_error, result.structured_content
    text = " ".join(c.text for c in result.content)
    assert "Traceback" not in text and 'File "' not in text
    return text
