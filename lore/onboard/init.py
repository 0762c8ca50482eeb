"""`lore init DIR --warehouse PATH`: a project over a warehouse of one's own, its semantic layer drafted.

:func:`init_project` surveys the warehouse on the hardened read-only engine, drafts the layer
(:mod:`lore.onboard.draft`), checks the draft with the same validator as `lore semantic validate`, and only
then writes ``lore.yaml`` and ``semantic/*.yaml``. An existing project is never overwritten unless asked
(``force``); then its ``lore.yaml`` and ``semantic/`` are first moved to ``.lore/backup/<time>/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path

from lore.errors import OperatorError, ProjectNotFound
from lore.onboard.draft import Draft, Progress, draft_layer, render, survey
from lore.project import CONFIG_FILE, STATE_DIR, EngineConfig, Project, ProjectConfig, write_config
from lore.semantic.issues import Issue
from lore.semantic.load import parse_documents
from lore.semantic.validate import validate
from lore.settings import Settings
from lore.types import Frozen

SEMANTIC_DIR = "semantic"


class InitResult(Frozen):
    """What `lore init` wrote and found."""

    root: Path
    #: the DuckDB file, or where the server engine's data is (a URL without its password)
    warehouse: Path | str
    files: tuple[str, ...]
    draft: Draft
    issues: tuple[Issue, ...] = ()
    backup: Path | None = None

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")


def _existing(folder: Path) -> list[Path]:
    """The files of a project already in ``folder``: its lore.yaml and its layer folder."""
    found = [folder / CONFIG_FILE] if (folder / CONFIG_FILE).exists() else []
    if (folder / SEMANTIC_DIR).exists():
        found.append(folder / SEMANTIC_DIR)
    return found


def _warehouse_ref(root: Path, warehouse: Path) -> Path:
    """The warehouse as lore.yaml names it: relative to the project when it is inside it, else absolute."""
    try:
        return warehouse.relative_to(root)
    except ValueError:
        return warehouse


def init_project(folder: Path, warehouse: Path | None, *, settings: Settings | None = None, force: bool = False,
                 progress: Progress | None = None, today: date | None = None,
                 engine: EngineConfig | None = None) -> InitResult:
    """Draft a project over ``warehouse`` (a DuckDB file) into ``folder``, or over the engine ``engine`` names
    (PostgreSQL: its URL read from the environment variable the config names; Spark: ``warehouse`` is a folder of
    Parquet tables, or without it the catalog of the Spark Connect server in that variable); see the module
    docstring."""
    from lore.execute.open import open_engine  # the engine loads only for the command that needs it

    root = folder.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise OperatorError(f"{root} exists and is not a folder", hint="Choose a folder for the project.")
    engine = engine or EngineConfig()
    source: Path | None = None
    tables: Path | None = None
    if engine.type == "duckdb":
        if warehouse is None:
            raise OperatorError("Name the warehouse to draft a layer for",
                                hint="Pass --warehouse PATH (a DuckDB file), or --engine postgres or spark.")
        source = warehouse.expanduser().resolve()
        if not source.is_file():
            raise ProjectNotFound(f"No DuckDB warehouse at {source}",
                                  hint="Pass --warehouse PATH to an existing DuckDB file (it is opened read-only).")
    elif engine.type == "spark" and warehouse is not None:
        tables = warehouse.expanduser().resolve()
        if not tables.is_dir():
            raise ProjectNotFound(f"No folder of Parquet tables at {tables}",
                                  hint="Pass --warehouse FOLDER: a NAME.parquet file or a NAME/ folder of part files "
                                       "per table (`lore warehouse copy --to spark` writes one from a DuckDB file).")
        engine = engine.model_copy(update={"tables": tables})
    elif engine.type == "spark" and not os.environ.get(engine.url_env, "").strip():
        raise OperatorError("Name the Spark tables to draft a layer for",
                            hint=f"Pass --warehouse FOLDER (a folder of Parquet tables, read in local mode), or set "
                                 f"{engine.url_env} to a Spark Connect URL (sc://HOST:15002) to draft from its catalog.")
    elif warehouse is not None:
        raise OperatorError(f"--warehouse names a DuckDB file or a Spark folder; {engine.type} is reached through "
                            f"the URL in {engine.url_env}",
                            hint=f"Leave out --warehouse and set {engine.url_env} (read-only role's URL).")
    existing = _existing(root)
    if existing and not force:
        raise OperatorError(
            f"{root} already holds a LORE project ({', '.join(p.name for p in existing)})",
            hint="Choose another folder, or pass --force: the existing lore.yaml and semantic/ are moved to "
                 f"{STATE_DIR}/backup/ first, never deleted.")
    where = Project(root=root, config=ProjectConfig(engine=engine, warehouse=source or Path("warehouse.duckdb")))
    with open_engine(where, settings or Settings()) as opened:
        name = source.name if source is not None else opened.description
        profile = survey(opened, progress=progress)
        if not profile.tables:
            raise OperatorError(f"The warehouse {name} has no tables or views LORE's role may read",
                                hint="Load your data into it first (LORE reads every schema), or grant the role "
                                     "SELECT (docs/postgres-readonly-role.sql).")
        draft = draft_layer(profile)
        files = render(draft, warehouse=name, today=today or date.today())
        layer, issues = parse_documents(sorted(files.items()))
        issues += validate(layer, opened.schema())
    backup = _move_aside(root, existing) if existing else None
    _write(root, files)
    if source is not None:
        config = ProjectConfig(name=root.name or "project", description=f"Drafted by lore init from {name}.",
                               warehouse=_warehouse_ref(root, source), semantic_layer=Path(SEMANTIC_DIR))
    else:
        if tables is not None:  # the folder as lore.yaml names it: relative to the project when inside it
            engine = engine.model_copy(update={"tables": _warehouse_ref(root, tables)})
        config = ProjectConfig(name=root.name or "project", description=f"Drafted by lore init from {name}.",
                               semantic_layer=Path(SEMANTIC_DIR), engine=engine)
    write_config(root, config)
    return InitResult(root=root, warehouse=source or name, files=tuple(sorted(files)),
                      draft=draft, issues=tuple(issues), backup=backup)


def _move_aside(root: Path, paths: list[Path]) -> Path:
    """Move an existing project's files into ``.lore/backup/<UTC time>/``; returns that folder."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    backup = root / STATE_DIR / "backup" / stamp
    backup.mkdir(parents=True)
    for path in paths:
        shutil.move(str(path), str(backup / path.name))
    return backup


def _write(root: Path, files: dict[str, str]) -> None:
    """Write the layer's files into a temporary folder next to ``semantic/``, then move it into place."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".semantic-", dir=root))
    staging.chmod(0o755)  # mkdtemp makes it private; a layer is read by the whole team
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        os.replace(staging, root / SEMANTIC_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
