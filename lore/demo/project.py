"""``lore demo init``: a ready-to-ask project folder on the demo warehouse."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path

from lore.errors import OperatorError
from lore.project import CONFIG_FILE, STATE_DIR, Project, ProjectConfig, write_config

#: the demo data ends on 2026-10-31; "today" is pinned the day after so relative ranges are reproducible
DEMO_TODAY = date(2026, 11, 1)
STAMP = "demo.json"

#: a few semantic queries that show what the layer can do (``lore demo tour``)
TOUR: tuple[tuple[str, dict], ...] = (
    ("Streaming hours by region in 2026, premium accounts only",
     {"metrics": ["total_streaming_hours"], "dimensions": ["countries.region"],
      "filters": ["accounts.plan = 'premium'", "metric_time >= '2026-01-01'"], "order_by": ["-total_streaming_hours"]}),
    ("Hours per streaming account by month, last six months",
     {"metrics": ["hours_per_streaming_account"], "dimensions": ["metric_time:month"],
      "filters": ["metric_time >= '2026-05-01'"]}),
    ("UA spend, installs and cost per install by region (two facts, one ratio)",
     {"metrics": ["ua_spend", "game_installs", "cost_per_install"], "dimensions": ["countries.region"],
      "order_by": ["-cost_per_install"]}),
    ("Top 5 teams by cloud cost, with CPU utilisation",
     {"metrics": ["cloud_cost", "cpu_utilization"], "dimensions": ["teams.team_name"],
      "order_by": ["-cloud_cost"], "limit": 5}),
    ("Content cash spend by production phase",
     {"metrics": ["content_cash_spend"], "dimensions": ["cash_spend.phase"], "order_by": ["-content_cash_spend"]}),
    ("ASR word error rate by transcribed language",
     {"metrics": ["asr_word_error_rate"], "dimensions": ["asr_evaluations.language"], "order_by": ["asr_word_error_rate"]}),
)


def demo_layer_files() -> list[tuple[str, bytes]]:
    """The demo semantic layer's YAML files, shipped inside the package."""
    folder = resources.files("lore.demo") / "semantic"
    return sorted((f.name, f.read_bytes()) for f in folder.iterdir() if f.name.endswith(".yaml"))


def init_demo(
    folder: Path,
    *,
    scale: float = 1.0,
    seed: int = 42,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Project, bool]:
    """Create (or reuse) a demo project in ``folder``; returns the project and whether it was built.

    Idempotent: a folder already built with the same scale and seed is reused
    untouched unless ``force``. The semantic layer is written only when missing
    (a metric owner's edits are never overwritten) or when ``force``.
    """
    from lore.demo.warehouse import generate_warehouse  # lazy: the generator loads only to build a demo

    folder = folder.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise OperatorError(f"{folder} exists and is not a folder", hint="Choose another path for the demo project.")
    config_path = folder / CONFIG_FILE
    stamp_path = folder / STATE_DIR / STAMP
    if config_path.exists() and not stamp_path.exists() and not force:
        raise OperatorError(
            f"{folder} already holds a LORE project that is not a demo",
            hint="Choose an empty folder, or pass --force to turn it into the demo.",
        )
    wanted = {"scale": scale, "seed": seed}
    config = ProjectConfig(name="demo", description="LORE demo warehouse: streaming, games, cloud, content, ASR.",
                           today=DEMO_TODAY)
    warehouse = folder / config.warehouse
    if not force and stamp_path.exists() and warehouse.exists():
        try:
            built = json.loads(stamp_path.read_text())
        except (OSError, ValueError):
            built = {}
        if {k: built.get(k) for k in wanted} == wanted:
            return Project.open(folder), False

    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_DIR).mkdir(exist_ok=True)
    semantic_dir = folder / config.semantic_layer
    if force and semantic_dir.exists():
        shutil.rmtree(semantic_dir)
    semantic_dir.mkdir(exist_ok=True)
    for name, data in demo_layer_files():
        target = semantic_dir / name
        if not target.exists():
            target.write_bytes(data)
    counts = generate_warehouse(warehouse, scale=scale, seed=seed, progress=progress)
    write_config(folder, config)
    stamp_path.write_text(json.dumps({**wanted, "rows": counts}, indent=2))
    return Project.open(folder), True
