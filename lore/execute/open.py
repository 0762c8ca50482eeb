"""Opening the engine a project names in ``lore.yaml`` (``engine:``; DuckDB on ``warehouse`` unless told).

Each engine's library is imported here only when the project uses it: a DuckDB project never loads psycopg.
"""

from __future__ import annotations

import os

from lore.errors import ConfigError
from lore.execute.base import WarehouseEngine
from lore.project import Project
from lore.settings import Settings


def open_engine(project: Project, settings: Settings) -> WarehouseEngine:
    """The project's hardened read-only engine (raises :class:`~lore.errors.OperatorError` with what to do)."""
    config = project.config.engine
    if config.type == "duckdb":
        from lore.execute.engine import Engine  # lazy: duckdb loads when the engine opens

        return Engine.open(project.warehouse_path, settings)
    if config.type == "spark":
        try:
            from lore.execute.spark import SparkEngine  # lazy: pyspark (and its JVM) loads only for this engine
        except ImportError as err:
            raise ConfigError(f"The Spark engine needs pyspark, which is not installed ({err}).",
                              hint="pip install 'lore-analytics[spark]' (and a Java 17 or 21 runtime for local mode)")
        remote = os.environ.get(config.url_env, "").strip() or None
        return SparkEngine.open(settings, tables=project.spark_tables, master=config.master, remote=remote,
                                driver_memory=config.driver_memory, databases=config.databases)
    url = os.environ.get(config.url_env, "").strip()
    if not url:
        raise ConfigError(
            f"{project.root / 'lore.yaml'} names the PostgreSQL engine, whose connection URL is read from the "
            f"environment variable {config.url_env}, and it is not set.",
            hint=f"export {config.url_env}=postgresql://lore_reader@HOST:5432/DATABASE (the password in the URL, "
                 "PGPASSWORD or ~/.pgpass; never in lore.yaml). docs/postgres-readonly-role.sql creates the role.")
    try:
        from lore.execute.postgres import PostgresEngine  # lazy: psycopg loads only for this engine
    except ImportError as err:
        raise ConfigError(f"The PostgreSQL engine needs psycopg, which is not installed ({err}).",
                          hint="pip install 'lore-analytics[postgres]'") from None
    return PostgresEngine.open(url, settings, schema=config.schema_name)
