"""The answer's first sentence for a ranking of one: the metric's own superlative is not doubled."""

from __future__ import annotations

from pathlib import Path

from lore.explain.answer import compose_message
from lore.semantic.load import load_layer
from lore.types import ColumnMeta, OrderBy, QueryPlan, ResultSet

LAYER = load_layer(Path(__file__).resolve().parents[1] / "lore" / "demo" / "semantic")


def _top_one(label: str, descending: bool = True) -> str:
    metric = LAYER.metrics["total_streaming_hours"].model_copy(update={"label": label})
    layer = LAYER.model_copy(update={"metrics": {**LAYER.metrics, "total_streaming_hours": metric}})
    plan = QueryPlan(metrics=("total_streaming_hours",), dimensions=("countries.region",),
                     order_by=(OrderBy(ref="total_streaming_hours", descending=descending),), limit=1)
    result = ResultSet(columns=(ColumnMeta(name="region", label="Region", kind="dimension", ref="countries.region"),
                                ColumnMeta(name="total_streaming_hours", label=label, kind="metric",
                                           ref="total_streaming_hours")),
                       rows=(("EMEA", 12.0),))
    return compose_message(plan, result, layer)


def test_a_label_that_is_already_a_superlative_is_not_doubled() -> None:
    assert _top_one("Largest session").startswith("EMEA has the largest session")
    assert _top_one("Streaming hours").startswith("EMEA has the highest streaming hours")
    assert _top_one("Largest session", descending=False).startswith("EMEA has the lowest largest session")
