"""``lore mcp``: LORE's tools for agents over MCP (stdio for one person, streamable HTTP behind API keys).

Registered through the ``lore.commands`` entry-point group, so the core never imports it.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from lore.cli import ProjectOpt, handle_errors
from lore.project import Project


def default_principal() -> str:
    """Who a stdio server acts as when the operator names nobody: ``LORE_USER``, else the OS user (as the chat page).

    >>> os.environ.get("LORE_USER", default_principal()) == default_principal()
    True
    """
    return os.environ.get("LORE_USER") or getpass.getuser()


def register(app: typer.Typer) -> None:
    """Add ``lore mcp`` to the ``lore`` command."""

    @app.command("mcp")
    @handle_errors
    def mcp_cmd(
        project: ProjectOpt = Path("."),
        transport: Annotated[str, typer.Option(
            "--transport", help="stdio (one principal; for Claude Desktop and other local clients) or http "
                                "(streamable HTTP at /mcp; each request needs an API key from `lore keys create`).",
            case_sensitive=False)] = "stdio",
        host: Annotated[str, typer.Option("--host", help="HTTP: address to listen on (loopback by default).")]
            = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help="HTTP: port to listen on.")] = 8765,
        principal: Annotated[Optional[str], typer.Option(
            "--principal", help="stdio: who the server acts as (access scope, recorded with answers and votes). "
                                "Default: LORE_USER, else the OS user. Over HTTP each key names its principal.")]
            = None,
    ) -> None:
        """Serve LORE's tools to agents over MCP: list_metrics, describe_metric, list_dimensions, query_metrics,
        compile_sql, ask, submit_feedback.

        docs/mcp.md has the tools and how to configure a client.
        """
        from lore.errors import BadInput  # lazy: loaded by the command that needs it
        from ui.api.service import Service  # lazy: the server loads with the command that runs it

        kind = transport.lower()
        if kind not in ("stdio", "http"):
            raise BadInput(f"--transport is stdio or http, not {transport!r}.")
        if kind == "http" and principal:
            raise BadInput("--principal is for --transport stdio: over HTTP each API key names its principal.",
                           hint="Create a key for that person: `lore keys create --principal NAME`.")
        root = Project.open(project).root  # a missing project fails here, with the fix in the message
        service = Service(root)
        try:
            if kind == "stdio":
                from ui.mcp.server import build_server

                server = build_server(root, principal or default_principal(), service=service)
                server.run("stdio")
            else:
                import uvicorn

                from ui.api.cli import KEEP_ALIVE_S
                from ui.mcp.server import MCP_PATH, http_app

                _ = service.lore  # open and warm up before the first request
                typer.echo(f"LORE MCP server for {root} on http://{host}:{port}{MCP_PATH} (API keys from "
                           "`lore keys create`; Ctrl+C to stop)", err=True)
                uvicorn.run(http_app(service, host=host), host=host, port=port, proxy_headers=False,
                            server_header=False, log_level="info", timeout_graceful_shutdown=30,
                            timeout_keep_alive=KEEP_ALIVE_S)
        finally:
            service.close()
