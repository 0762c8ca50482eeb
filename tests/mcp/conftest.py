"""Fixtures: the real MCP server over a copy of the session's demo project with an access section.

Tools are called through the SDK's own client (:class:`mcp.Client`): in process for most tests, over a
subprocess's stdio and over streamable HTTP (uvicorn on a loopback port) for the transports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from access_project import copy_with_access

from lore.settings import Settings
from ui.api.service import Service

#: this file holds no doctests; with --doctest-modules, collecting it as a module too clashes with another folder's
#: conftest.py (both import as "conftest") when several test folders are named on one command line
collect_ignore = ["conftest.py"]


@pytest.fixture(scope="session")
def mcp_project(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo project (the server writes conversations and votes into its .lore/ folder)."""
    return copy_with_access(demo_dir, tmp_path_factory.mktemp("mcp") / "project")


@pytest.fixture(scope="session")
def mcp_service(mcp_project: Path) -> Iterator[Service]:
    """One open project for every server of the session (opened and warmed up once)."""
    service = Service(mcp_project, Settings(project=mcp_project, answer_cache_disk_mb=0))
    _ = service.lore
    yield service
    service.close()
