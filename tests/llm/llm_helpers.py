"""Helpers for the LLM tests (imported by the test modules)."""

from __future__ import annotations

import json
from typing import Any

from lore.llm.log import ExchangeLog


def reply(**fields: Any) -> str:
    """A complete plan reply as the model writes it (every schema field present)."""
    base: dict[str, Any] = {"status": "plan", "metrics": [], "dimensions": [], "filters": [], "start_date": None,
                            "end_date": None, "order_by": None, "descending": True, "limit": None, "compare_with": None,
                            "share": None, "top_n_within": [], "per_entity": None, "running_total": False,
                            "threshold": None, "sql": None, "message": ""}
    base.update(fields)
    return json.dumps(base)


def flt(dimension: str, *values: str, operator: str = "=") -> dict[str, Any]:
    return {"dimension": dimension, "operator": operator, "values": list(values)}


def outcomes(log: ExchangeLog) -> list[str]:
    """The logged outcomes, oldest first."""
    return [e.outcome for e in reversed(log.recent(100))]
