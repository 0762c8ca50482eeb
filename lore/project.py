"""A LORE project folder: ``lore.yaml`` says where the warehouse and the semantic layer are.

.. code-block:: yaml

    name: demo
    warehouse: warehouse.duckdb     # relative to the project folder
    semantic_layer: semantic        # a YAML file or a folder of them
    dialect: duckdb

Runtime state (the retrieval index, logs, feedback) lives in ``.lore/`` inside the project.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from lore.errors import ConfigError, ProjectNotFound

CONFIG_FILE = "lore.yaml"
STATE_DIR = ".lore"


class ProjectConfig(BaseModel):
    """The contents of ``lore.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "project"
    description: str = ""
    warehouse: Path = Path("warehouse.duckdb")
    semantic_layer: Path = Path("semantic")
    dialect: str = "duckdb"
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
                              hint="Valid keys: name, description, warehouse, semantic_layer, dialect, today, feedback, access.") from None
        return cls(root=root, config=config)


def write_config(root: Path, config: ProjectConfig) -> Path:
    """Write ``lore.yaml`` for ``config`` into ``root``."""
    data = {k: (str(v) if isinstance(v, (Path, date)) else v) for k, v in config.model_dump().items() if v is not None}
    path = root / CONFIG_FILE
    path.write_text("# LORE project configuration\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
