"""The files every eval domain's project folder holds besides its warehouse: the layer's copy and ``lore.yaml``."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path


def write_project(project_dir: Path, semantic_dir: Path, *, name: str, description: str, today: date) -> Path:
    """Copy the semantic layer from ``semantic_dir`` into ``project_dir/semantic`` (replacing the YAML there) and
    write ``lore.yaml`` naming ``warehouse.duckdb``, with ``today`` fixed so relative dates are reproducible."""
    from lore.project import ProjectConfig, write_config

    semantic = project_dir / "semantic"
    semantic.mkdir(parents=True, exist_ok=True)
    for old in semantic.glob("*.yaml"):
        old.unlink()
    for src in sorted(semantic_dir.glob("*.yaml")):
        shutil.copyfile(src, semantic / src.name)
    config = ProjectConfig(name=name, description=description, warehouse=Path("warehouse.duckdb"),
                           semantic_layer=Path("semantic"), dialect="duckdb", today=today)
    return write_config(project_dir, config)


def print_report(heading: str, report: dict[str, object], *, what: str, width: int) -> None:
    """What a builder's command prints: the heading, the data's span and today, then each table's row count."""
    print(heading)
    print(f"  {what} from {report['first']} to {report['last']}; lore.yaml today: {report['today']}")
    for table, n in report["counts"].items():  # type: ignore[attr-defined]
        print(f"  {table:<{width}} {n:>9,}")
