"""Fixtures for the engine tests: one throwaway PostgreSQL server per session (evals/servers/postgres.py), the
demo warehouse written as Parquet tables with a project that names the Spark engine, and one throwaway Spark Connect
server per session (evals/servers/spark_connect.py)."""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from evals.servers.postgres import SKIP_REASON, PgServer, PgUnavailable, find_bindir
from evals.servers.spark_connect import SparkConnectServer, SparkUnavailable

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


def _spark_unavailable(why: str) -> None:
    """Skip, unless LORE_TEST_SPARK=required (``./dev.sh test`` sets it once Java is there): then fail."""
    (pytest.fail if os.environ.get("LORE_TEST_SPARK") == "required" else pytest.skip)(why)


@pytest.fixture(scope="session")
def spark_connect_server() -> Iterator[SparkConnectServer]:
    """A Spark Connect server on 127.0.0.1 for the whole session (a JVM of its own, from PySpark's jars); stopped
    and its folder removed at the end."""
    if importlib.util.find_spec("grpc_status") is None:
        _spark_unavailable("Spark Connect's client is not installed: pip install -e '.[spark]'")
    try:
        server = SparkConnectServer.start()
    except SparkUnavailable as err:
        _spark_unavailable(str(err))
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)


@pytest.fixture(scope="session")
def spark_demo(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The session's demo warehouse written as Parquet tables (``parquet/`` in a project folder) and a project whose
    lore.yaml names the Spark engine on them. Skips when pyspark or Java is missing, unless LORE_TEST_SPARK=required
    (``./dev.sh test`` sets it once Java is there): then a missing piece fails the tests."""
    if importlib.util.find_spec("pyspark") is None:
        _spark_unavailable("pyspark is not installed: pip install -e '.[spark]'")
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        _spark_unavailable("no Java runtime for Spark's local mode: install Java 17 or 21 (./dev.sh test does, as root)")
    from lore.execute.copy import export_duckdb_to_parquet

    project = tmp_path_factory.mktemp("sparkdemo") / "project"
    project.mkdir()
    source = project.parent / "source.duckdb"
    shutil.copy(demo_dir / "warehouse.duckdb", source)  # a file no engine of this process has open
    written = export_duckdb_to_parquet(source, project / "parquet")
    shutil.copytree(demo_dir / "semantic", project / "semantic")
    config = yaml.safe_load((demo_dir / "lore.yaml").read_text())
    config.pop("warehouse", None)
    config["engine"] = {"type": "spark", "tables": "parquet"}
    (project / "lore.yaml").write_text(yaml.safe_dump(config))
    return {"project": project, "folder": project / "parquet", "written": written, "source": source}
