"""Fixtures: the real API app over a copy of the session's demo project, with an access section and API keys.

One :class:`~ui.api.service.Service` (one open project, warmed up once) serves every app of the session; apps
with other API settings (a low rate limit, a trusted proxy header) are built over the same service.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from access_project import ANA, BO, OPS, copy_with_access
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lore.settings import Settings
from ui.api.app import create_app
from ui.api.service import Service


@pytest.fixture(scope="session")
def api_project(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo project (the API writes keys, conversations and votes into its .lore/ folder)."""
    return copy_with_access(demo_dir, tmp_path_factory.mktemp("api") / "project")


@pytest.fixture(scope="session")
def api_service(api_project: Path) -> Iterator[Service]:
    # the session's tests share each key's bucket: a rate no test reaches (one test checks the limit on its own app)
    service = Service(api_project, Settings(project=api_project, answer_cache_disk_mb=0, api_rate_burst=100_000))
    _ = service.lore  # open and warm up once for the session
    yield service
    service.close()


@pytest.fixture(scope="session")
def api_app(api_service: Service) -> FastAPI:
    return create_app(api_service.project.root, service=api_service)


@pytest.fixture(scope="session")
def tokens(api_service: Service) -> dict[str, str]:
    """One API key per principal: name -> token."""
    return {who: api_service.keys.create(who, name=f"tests ({who})")[1] for who in (ANA, BO, OPS)}


@pytest.fixture
def client(api_app: FastAPI) -> TestClient:
    return TestClient(api_app)

