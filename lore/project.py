"""A LORE project folder: ``lore.yaml`` says where the warehouse and the semantic layer are.

.. code-block:: yaml

    name: demo
    warehouse: warehouse.duckdb     # relative to the project folder
    semantic_layer: semantic        # a YAML file or a folder of them
    dialect: duckdb

On PostgreSQL instead of a DuckDB file (``warehouse`` is then unused)::

    engine:
      type: postgres
      url_env: LORE_POSTGRES_URL    # the environment variable holding the connection URL (never this file)
      schema: public                # the schema whose tables go by bare names

On Apache Spark (local mode over a folder of Parquet tables, or a cluster through Spark Connect when the
environment variable ``LORE_SPARK_REMOTE`` holds its ``sc://`` URL)::

    engine:
      type: spark
      tables: parquet               # a folder of Parquet tables, relative to the project folder

Runtime state (the retrieval index, logs, feedback) lives in ``.lore/`` inside the project.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lore.errors import ConfigError, ProjectNotFound

CONFIG_FILE = "lore.yaml"
STATE_DIR = ".lore"


#: the dialect each engine's SQL is rendered, guarded and run in
ENGINE_DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "spark": "spark"}
#: each engine's name as people write it (keyed by engine type, which is also its dialect's name)
ENGINE_NAMES = {"duckdb": "DuckDB", "postgres": "PostgreSQL", "spark": "Apache Spark"}
#: the environment variable an engine's URL is read from, unless ``url_env`` names another
DEFAULT_URL_ENV = {"duckdb": "LORE_POSTGRES_URL", "postgres": "LORE_POSTGRES_URL", "spark": "LORE_SPARK_REMOTE"}


class EngineConfig(BaseModel):
    """``engine:`` in ``lore.yaml``: which engine runs the queries, and how to reach it (see SECURITY.md).

    ``engine: postgres`` is short for ``engine: {type: postgres}``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    type: Literal["duckdb", "postgres", "spark"] = "duckdb"
    #: postgres: the environment variable that holds the connection URL (a password never goes in lore.yaml);
    #: spark: the one that holds a Spark Connect URL (sc://host:15002); unset, Spark runs here in local mode
    url_env: str = "LORE_POSTGRES_URL"
    #: postgres: the schema whose tables the layer names bare (others are named ``schema.table``)
    schema_name: str = Field(default="public", alias="schema")
    #: spark: the folder of Parquet tables (a file or folder per table, named as the table), relative to the
    #: project; without it, the tables of the Spark catalog's current database
    tables: Path | None = None
    #: spark: the master of a local session (the Spark Connect URL, when set, wins)
    master: str = "local[2]"
    #: spark, local mode: the driver JVM's memory (its heap holds the data of every running query), e.g. 4g
    driver_memory: str = "1g"
    #: spark, reading the catalog (no tables:): databases besides the current one, their tables named database.table
    databases: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        value = {"type": value} if isinstance(value, str) else value
        if isinstance(value, dict) and "url_env" not in value and value.get("type") in DEFAULT_URL_ENV:
            value = {**value, "url_env": DEFAULT_URL_ENV[value["type"]]}
        return value

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"{value!r} is not an environment variable's name; name the variable that holds the "
                             "URL (LORE_POSTGRES_URL), not the URL itself")
        return value

    @field_validator("driver_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not re.fullmatch(r"[1-9][0-9]*[kmgt]", value.strip().lower()):
            raise ValueError(f"{value!r} is not an amount of memory as Spark writes it; write a number and a unit "
                             "(k, m, g or t), e.g. 4g")
        return value.strip().lower()

    @property
    def dialect(self) -> str:
        return ENGINE_DIALECTS[self.type]


class ProjectConfig(BaseModel):
    """The contents of ``lore.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "project"
    description: str = ""
    warehouse: Path = Path("warehouse.duckdb")
    semantic_layer: Path = Path("semantic")
    #: the dialect `lore sql` renders in unless told (the engine's when another engine is named and this says duckdb)
    dialect: str = "duckdb"
    #: the engine that runs the queries (DuckDB on ``warehouse`` unless told)
    engine: EngineConfig = EngineConfig()
    #: pin "today" for relative dates (demo projects pin it so answers are reproducible)
    today: date | None = None
    #: the feedback loop's policy (reviewers, trusted_users, auto_verify_min_users, penalty): see feedback/policy.py
    feedback: dict[str, Any] | None = None
    #: per-user access: metrics, dimensions and row filters per group and user (see lore/access/)
    access: dict[str, Any] | None = None


class Project(BaseModel):
    """A resolved project: its folder and config, with absolute paths."""

    model_config = ConfigDict(frozen=True)

    root: Path
    config: ProjectConfig

    @property
    def warehouse_path(self) -> Path:
        return (self.root / self.config.warehouse).resolve()

    @property
    def spark_tables(self) -> Path | None:
        """engine: spark: the folder of Parquet tables, absolute."""
        tables = self.config.engine.tables
        return None if tables is None else (self.root / tables).resolve()

    @property
    def has_warehouse(self) -> bool:
        """Whether there is a warehouse to open: the DuckDB file exists, or a server engine is named."""
        return self.config.engine.type != "duckdb" or self.warehouse_path.exists()

    @property
    def dialect(self) -> str:
        """The dialect SQL is rendered in by default: ``dialect:`` as written, but the engine's where ``dialect:``
        still says DuckDB's (the default) and another engine runs the queries."""
        if self.config.engine.type != "duckdb" and self.config.dialect == "duckdb":
            return self.config.engine.dialect
        return self.config.dialect

    @property
    def semantic_path(self) -> Path:
        return (self.root / self.config.semantic_layer).resolve()

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @classmethod
    def open(cls, folder: str | Path) -> Project:
        """Read ``lore.yaml`` from ``folder``; errors say how to create a project."""
        root = Path(folder).expanduser().resolve()
        cfg_path = root / CONFIG_FILE if root.is_dir() or not root.exists() else root
        if root.is_file() and root.name == CONFIG_FILE:
            root = root.parent
        if not cfg_path.is_file():
            raise ProjectNotFound(
                f"No LORE project at {root} (missing {CONFIG_FILE})",
                hint=f"Create the demo with `lore demo init {Path(folder)}` or pass --project DIR pointing at a folder with {CONFIG_FILE}.",
            )
        try:
            raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{cfg_path}{where}: malformed YAML", hint="Fix the syntax of lore.yaml.") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{cfg_path}: expected a mapping of settings")
        try:
            config = ProjectConfig.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ConfigError(f"{cfg_path}: {problems}",
                              hint="Valid keys: name, description, warehouse, semantic_layer, dialect, engine, today, "
                                   "feedback, access.") from None
        return cls(root=root, config=config)


def write_config(root: Path, config: ProjectConfig) -> Path:
    """Write ``lore.yaml`` for ``config`` into ``root``."""
    data = {k: (str(v) if isinstance(v, (Path, date)) else v) for k, v in config.model_dump().items()
            if v is not None and k != "engine"}
    if config.engine.type != "duckdb":  # no DuckDB file, and the engine's own dialect: nothing to say
        for key in ("warehouse", "dialect"):
            if data.get(key) == str(ProjectConfig.model_fields[key].default):
                del data[key]
    if config.engine != EngineConfig():  # DuckDB on `warehouse` needs no engine: entry
        data["engine"] = config.engine.model_dump(mode="json", by_alias=True, exclude_defaults=True) | {
            "type": config.engine.type}
    path = root / CONFIG_FILE
    path.write_text("# LORE project configuration\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
