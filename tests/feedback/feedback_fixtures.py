"""Helpers shared by the feedback tests (imported by name: the test folder is on sys.path)."""

from __future__ import annotations

from lore.types import Answer, ColumnMeta, Filter, QueryPlan


def make_answer(answer_id: str = "a1", question: str = "total streaming hours in Brazil", *,
                plan: QueryPlan | None = None, status: str = "answered", user: str | None = "ana",
                conversation_id: str | None = None) -> Answer:
    """An answer as the pipeline makes them (for store tests that need no warehouse)."""
    if plan is None and status == "answered":
        plan = QueryPlan(metrics=("total_streaming_hours",),
                         filters=(Filter(ref="countries.country_name", values=("Brazil",)),))
    return Answer(id=answer_id, question=question, status=status, message="Streaming hours: 1,234.", user=user,  # type: ignore[arg-type]
                  conversation_id=conversation_id, sql="SELECT 1 AS x LIMIT 1000" if plan is not None else None,
                  plan=plan, columns=(ColumnMeta(name="total_streaming_hours", label="Streaming hours", kind="metric"),),
                  rows=((1234.0,),), confidence=0.9, confidence_factors={"metric": 1.0, "execution": 1.0},
                  created_at="2026-11-01T10:00:00+00:00")
