"""LORE as an MCP server: tools for agents over stdio or streamable HTTP (``lore mcp``; see docs/mcp.md).

- :mod:`ui.mcp.server`: :func:`~ui.mcp.server.build_server` (the tools, each a call into :class:`ui.api.service.Service`)
  and :func:`~ui.mcp.server.http_app` (the streamable HTTP app behind the HTTP API's keys);
- :mod:`ui.mcp.cli`: ``lore mcp``, registered through the ``lore.commands`` entry points.

An adapter like the HTTP API, the chat page and the Slack bot: the core never imports it.
"""
