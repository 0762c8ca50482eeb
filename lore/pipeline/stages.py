"""The seven stages of an answer, each a function with a typed input and output.

=========  ==========================================  ===================================
stage      takes                                       gives
=========  ==========================================  ===================================
retrieve   :class:`~lore.types.Question`               :class:`~lore.types.RetrievalResult`
plan       Question, RetrievalResult                   :class:`~lore.types.PlanOutcome`
compile    :class:`~lore.types.QueryPlan`              :class:`~lore.types.CompiledQuery`
guard      CompiledQuery                               :class:`~lore.types.GuardedSQL`
execute    GuardedSQL, CompiledQuery                   :class:`~lore.types.ResultSet`
chart      QueryPlan, ResultSet                        :class:`~lore.types.ChartSpec` or None
explain    Question, PlanOutcome, :class:`Computed`    :class:`Explanation`
=========  ==========================================  ===================================

Each stage reads the project's services from a :class:`~lore.core.Lore` (already scoped to the asker), holds
no state of its own, and raises :class:`~lore.errors.LoreError` subclasses for what a user can act on. How the
stages are put together (with the caches, feedback and re-planning around them) is :mod:`lore.pipeline`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lore.chart import ChartRequest, choose_chart
from lore.errors import OperatorError, QueryTimeout, QuestionTimeout
from lore.explain.answer import compose_message, reasoning_steps, restate, scope_phrases
from lore.explain.confidence import confidence, factors_from_signals
from lore.inputs import Budget
from lore.plan.checks import check_outcome
from lore.plan.offline.text import normalise
from lore.semantic.compile import TOTAL_ROWS
from lore.types import (ChartSpec, CompiledQuery, GuardedSQL, PlanOutcome, QueryPlan, Question, ResultSet,
                        RetrievalResult, StageTiming, Trace)

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

log = logging.getLogger("lore.pipeline")


# --- what the stages hand on -------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """The retrieve and plan stages' output for one question."""

    retrieval: RetrievalResult | None
    outcome: PlanOutcome
    #: both stages were skipped: the plan memo held this question's outcome
    memo_hit: bool = False


@dataclass(frozen=True)
class Computed:
    """The compile, guard, execute and chart stages' output for one plan."""

    plan: QueryPlan
    compiled: CompiledQuery
    guarded: GuardedSQL
    result: ResultSet
    chart: ChartSpec | None
    #: the four stages were skipped: the answer cache held this plan's result
    cache_hit: bool = False


@dataclass(frozen=True)
class Explanation:
    """The explain stage's output: what the answer says, and how sure it is."""

    message: str
    restatement: str
    reasoning: tuple[str, ...]
    factors: dict[str, float]
    confidence: float


# --- timing ------------------------------------------------------------------------------------


#: told of each stage of an answer once it is over (its name and milliseconds), in order; runs in the asking thread
StageHook = Callable[[StageTiming], None]


class Timer:
    """Times each stage of one answer; with a budget, stops the question (:class:`QuestionTimeout`) when its
    time is up, checked as each stage starts and as it ends. One per answer, never shared.

    ``on_stage`` is told of each stage once it is over: when a stage of another name starts, and for the last
    ones when :meth:`report` is called (a stage timed in two steps is told once, whole).

    >>> told = []
    >>> timer = Timer(on_stage=lambda t: told.append(t.stage))
    >>> with timer("retrieve"): pass
    >>> with timer("retrieve"): pass
    >>> with timer("plan"): pass
    >>> told
    ['retrieve']
    >>> timer.report(); told
    ['retrieve', 'plan']
    """

    def __init__(self, budget: Budget | None = None, *, on_stage: StageHook | None = None) -> None:
        self.timings: list[StageTiming] = []
        self.budget = budget
        self.on_stage = on_stage
        #: how many of ``timings`` were told to ``on_stage``
        self._told = 0

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.timings and self.timings[-1].stage != name:
            self.report()  # the stage before is over: it can no longer grow
        if self.budget is not None:
            self.budget.check(self.timings[-1].stage if self.timings else name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            ms = (time.perf_counter() - t0) * 1000
            if self.timings and self.timings[-1].stage == name:  # one stage timed in two steps is one entry
                ms += self.timings.pop().ms
            self.timings.append(StageTiming(stage=name, ms=round(ms, 3)))
        if self.budget is not None:
            self.budget.check(name)

    def report(self) -> None:
        """Tell ``on_stage`` of every stage timed and not told yet (the pipeline calls it once the answer is made)."""
        while self._told < len(self.timings):
            timing = self.timings[self._told]
            self._told += 1
            if self.on_stage is not None:
                self.on_stage(timing)

    def trace(self, trace: Trace, **artifacts: object) -> Trace:
        """``trace`` with ``artifacts`` and the timings so far."""
        return trace.model_copy(update={**artifacts, "timings": tuple(self.timings)})


# --- the stages ----------------------------------------------------------------------------------


def retrieve(lore: Lore, question: Question) -> RetrievalResult | None:
    """The layer's documents nearest to the question (every kind) and the values it names: read by the planners."""
    text = normalise(question.text)
    return lore.retriever.retrieve(text) if text.strip() else None


def plan(lore: Lore, question: Question, retrieval: RetrievalResult | None) -> PlanOutcome:
    """The planner's reading of the question (a plan, a clarifying question or a refusal), checked against the
    layer: filters no row can satisfy together become a question."""
    # the answer's id goes with the question, so `lore logs` links each LLM exchange to its answer
    outcome = lore.planner.plan(question.text, question.previous, answer_id=question.id, retrieval=retrieval)
    return check_outcome(outcome, lore.layer)


def compile(lore: Lore, plan: QueryPlan) -> CompiledQuery:  # noqa: A001 - the stage's name
    """The plan's SQL: its compiled semantic query, or its free SQL (a model's, or a verified correction's)."""
    return lore.compile_plan(plan)


def guard(lore: Lore, compiled: CompiledQuery) -> GuardedSQL:
    """The allow-list guard's check of the SQL, in this asker's scope (raises :class:`~lore.errors.GuardError`)."""
    return lore.guard(compiled.sql)


def execute(lore: Lore, guarded: GuardedSQL, compiled: CompiledQuery, budget: Budget | None = None) -> ResultSet:
    """Run guarded SQL within the query time limit (or what is left of the question's time, when less); the
    result's columns carry the compiler's meanings, and a listing's row count is read off."""
    limit = lore.settings.query_timeout_s
    timeout = budget.cap(limit) if budget is not None else limit
    try:
        result = lore.engine.run(guarded.sql, timeout_s=timeout, max_rows=lore.settings.max_rows)
    except QueryTimeout:
        if budget is not None and timeout < limit:  # the question's time ran out, not the query's own limit
            raise QuestionTimeout(stage="execute", budget_s=budget.seconds) from None
        raise
    return listing_total(result.described_by(compiled.columns))


def chart(lore: Lore, plan: QueryPlan, result: ResultSet) -> ChartSpec | None:
    """The chart the rules choose for this result (None: the table reads best)."""
    return draw(result, chart_request(lore, plan, result))


def explain(lore: Lore, question: Question, outcome: PlanOutcome, computed: Computed, *,
            replanned: bool = False) -> Explanation:
    """The answer in words, the reasoning behind it and its confidence."""
    plan_, result = computed.plan, computed.result
    reasoning = reasoning_steps(plan_, lore.layer, computed.compiled, result, computed.guarded.tables)
    if lore.scope is not None and (note := lore.scope.rows_note(computed.guarded.row_filtered)) is not None:
        reasoning.append(note)
    if computed.cache_hit:
        reasoning.append("This result was reused from the answer cache: the same query ran earlier on the same "
                         "data and semantic-layer version.")
    factors = factors_from_signals(outcome.signals, ran=True, rows=len(result.rows), truncated=result.truncated,
                                   followup=any(g.kind == "context" for g in plan_.groundings),
                                   inherited=question.context.confidence, retried=replanned)
    return Explanation(message=compose_message(plan_, result, lore.layer), restatement=restate(plan_, lore.layer),
                       reasoning=tuple(reasoning), factors=factors, confidence=confidence(factors))


# --- helpers of the stages -------------------------------------------------------------------------


def listing_total(result: ResultSet) -> ResultSet:
    """A listing's "rows in all" column becomes ``total_rows`` (the answer says "showing N of M")."""
    names = [c.name for c in result.columns]
    if TOTAL_ROWS not in names:
        return result
    i = names.index(TOTAL_ROWS)
    total = int(result.rows[0][i]) if result.rows and isinstance(result.rows[0][i], (int, float)) else 0
    return result.model_copy(update={"columns": result.columns[:i] + result.columns[i + 1:],
                                     "rows": tuple(r[:i] + r[i + 1:] for r in result.rows), "total_rows": total})


def chart_request(lore: Lore, plan: QueryPlan, result: ResultSet) -> ChartRequest:
    """What the question meant, as far as the chart cares (its labels, title words and order)."""
    layer = lore.layer
    metric = layer.metrics.get(plan.metrics[0]) if plan.metrics else None
    additive = bool(metric and not metric.is_derived and metric.agg in ("sum", "count"))
    plot = operation_columns(plan, result)
    labels = tuple(c.label for c in result.columns if c.kind == "metric" and (not plot or c.name in plot))
    if plan.compare is not None and metric is not None and len(plot) == 2:  # the periods are in the title already
        label = metric.label or metric.name.replace("_", " ")
        labels = (label[:1].upper() + label[1:],)
    return ChartRequest(
        metric_labels=labels,
        filters=tuple(scope_phrases(plan.model_copy(update={"time": None}), layer)),
        time_range=plan.time.label if plan.time and plan.compare is None else None,
        sort_desc=not plan.order_by or plan.order_by[0].descending,
        additive=additive,
        plot=plot,
    )


def operation_columns(plan: QueryPlan, result: ResultSet) -> tuple[str, ...]:
    """The columns an analysis operation's chart plots: a comparison's change when it is ranked by it, else its two
    periods; a share; a running total (the first metric's, by the compiler's column names)."""
    if not plan.metrics:
        return ()
    names = [c.name for c in result.columns if c.kind == "metric" and c.ref == plan.metrics[0]]
    if plan.compare is not None:
        ranked = [o.ref for o in plan.order_by if o.ref in names]
        if ranked and ranked[0].endswith(("_change", "_change_pct")):
            return (ranked[0],)
        return tuple(n for n in names if not n.endswith(("_change", "_change_pct")))[:2]
    suffix = "_share" if plan.share is not None else "_running_total" if plan.running_total else None
    return tuple(n for n in names if suffix and n.endswith(suffix))[:1]


def draw(result: ResultSet, request: ChartRequest) -> ChartSpec | None:
    """The chart for ``request``; a chart rule's failure is logged and the answer keeps its table."""
    try:
        return choose_chart(result, request)
    except (OperatorError, ValueError):
        log.warning("no chart drawn: a chart rule failed on a result of %d columns", len(result.columns), exc_info=True)
        return None
