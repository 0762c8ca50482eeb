"""Fixtures for the PostgreSQL engine tests: one throwaway server per session (tests/engines/pgserver.py)."""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
from collections.abc import Iterator

import pytest
from pgserver import SKIP_REASON, PgServer, PgUnavailable, find_bindir

@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session; stopped and its folder removed at the end,
    whatever the tests did. Skips when PostgreSQL (or psycopg) is not installed, unless LORE_TEST_POSTGRES=required
    (``./dev.sh test`` sets it once the server binaries are there): then a missing piece fails the tests."""
    required = os.environ.get("LORE_TEST_POSTGRES") == "required"

    def unavailable(why: str) -> None:
        (pytest.fail if required else pytest.skip)(why)

    if importlib.util.find_spec("psycopg") is None:
        unavailable("psycopg is not installed: pip install -e '.[postgres]'")
    bindir = find_bindir()
    if bindir is None:
        unavailable(SKIP_REASON)
    try:
        server = PgServer.start(bindir)
    except PgUnavailable as err:
        unavailable(str(err))
    atexit.register(server.stop)  # in case the session ends without its teardown (stopping twice is harmless)
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)


@pytest.fixture()
def pg_database(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server, for one test; its name."""
    name = f"test_{secrets.token_hex(4)}"
    pg_server.create_database(name)
    return name
