"""Cache keys: digests of everything an entry depends on (the plan or the question, data, layer, code, day)."""

from __future__ import annotations

import functools
import hashlib
from datetime import date
from pathlib import Path

from lore.types import QueryPlan


def data_version(warehouse: Path) -> str:
    """A stamp of the warehouse file: its size and modification time (and its write-ahead log's, if any).

    Writing to the warehouse (or touching it) changes the stamp. A missing file has the stamp ``"missing"``.
    """
    parts = []
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        try:
            st = path.stat()
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "missing" if parts[0] == "-" else "|".join(parts)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A stamp of LORE's own code (every module's path, size and modification time): cached plans and results
    from another version of the planner or compiler are never served (the shared file outlives upgrades)."""
    root = Path(__file__).resolve().parent.parent  # the lore package
    stamp = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        try:
            info = path.stat()
        except OSError:
            continue
        stamp.update(f"{path.relative_to(root)}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return stamp.hexdigest()[:16]


def answer_key(plan_key: str, *, data: str, layer: str, today: date, limits: tuple[int, ...] = (),
               scope: str | None = None) -> str:
    """The cache key of a plan's result: a digest of the plan's key and every version it depends on.

    >>> k = answer_key('{"metrics": ["m"]}', data="10:1", layer="v1", today=date(2026, 1, 5))
    >>> k == answer_key('{"metrics": ["m"]}', data="10:1", layer="v1", today=date(2026, 1, 5))
    True
    >>> k == answer_key('{"metrics": ["m"]}', data="10:2", layer="v1", today=date(2026, 1, 5))
    False
    >>> k == answer_key('{"metrics": ["m"]}', data="10:1", layer="v2", today=date(2026, 1, 5))
    False
    >>> k == answer_key('{"metrics": ["m"]}', data="10:1", layer="v1", today=date(2026, 1, 5), scope="emea")
    False
    """
    text = "\x1f".join((plan_key, data, layer, today.isoformat(), ",".join(map(str, limits)), scope or "",
                        code_version()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan_key(question: str, previous: QueryPlan | None, *, data: str, layer: str, today: date, planner: str,
             examples: int) -> str:
    """The plan memo's key: the question's exact words (spaces collapsed), the exact previous plan, every version.

    ``examples`` is the revision of the verified examples the index holds (they can change a plan).

    >>> k = plan_key("hours  by region", None, data="1", layer="v", today=date(2026, 1, 1), planner="offline", examples=0)
    >>> k == plan_key("hours by region", None, data="1", layer="v", today=date(2026, 1, 1), planner="offline", examples=0)
    True
    >>> k == plan_key("hours by region", None, data="1", layer="v", today=date(2026, 1, 1), planner="offline", examples=1)
    False
    """
    text = "\x1f".join((" ".join(question.split()), previous.model_dump_json() if previous is not None else "", data, layer,
                        today.isoformat(), planner, str(examples), code_version()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
