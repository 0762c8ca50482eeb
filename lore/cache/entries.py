"""What the caches hold: a plan's result (:class:`CachedResult`) and a question's plan (:class:`CachedPlan`)."""

from __future__ import annotations

import math

from lore.chart import ChartRequest
from lore.types import ChartSpec, CompiledQuery, Frozen, GuardedSQL, PlanOutcome, ResultSet, RetrievalResult


class CachedResult(Frozen):
    """What a plan computed: its SQL (compiled and guarded), its result and the chart drawn for ``request``."""

    compiled: CompiledQuery
    guarded: GuardedSQL
    result: ResultSet
    #: the chart asked for (None: a semantic query's result, which has no chart)
    request: ChartRequest | None = None
    #: the chart as JSON text (a fresh copy of its Vega-Lite dict per hit), or None when there was none
    chart_json: str | None = None

    def chart(self) -> ChartSpec | None:
        return ChartSpec.model_validate_json(self.chart_json) if self.chart_json is not None else None

    def approx_bytes(self) -> int:
        """The entry's approximate size: its JSON text (rows and chart dominate)."""
        return len(self.result.model_dump_json()) + len(self.chart_json or "") + len(self.compiled.sql) * 2 + 512

    def persistable(self) -> bool:
        """Whether its JSON reads back equal: not with NaN or infinity in the rows (JSON has neither)."""
        return not any(isinstance(v, float) and not math.isfinite(v) for row in self.result.rows for v in row)


class CachedPlan(Frozen):
    """What retrieval and planning made of one question (the plan memo: a repeated question skips both)."""

    outcome: PlanOutcome
    #: the retrieve stage's result the outcome was planned from (shown again by ``--explain``)
    retrieval: RetrievalResult | None = None

    def approx_bytes(self) -> int:
        return len(self.model_dump_json()) + 256
