"""``ask()``: a question becomes an answer through a short list of stages.

retrieve -> plan -> compile -> guard -> execute -> chart -> explain, each timed
and recorded in the :class:`~lore.types.Trace`. Errors a user can act on become
a clarifying question or a refusal; engine failures become an error answer with
the SQL attached. Nothing here writes SQL or code from text.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from lore.chart import ChartRequest, choose_chart
from lore.errors import AskerError, EngineError, GuardError, LoreError, OperatorError
from lore.explain.answer import compose_message, reasoning_steps, scope_phrases
from lore.explain.confidence import confidence, factors_from_signals
from lore.types import Answer, CompiledQuery, PlanOutcome, QueryPlan, ResultSet, StageTiming, Trace

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.plugins import FeedbackBackend

log = logging.getLogger("lore.feedback")


class _Stages:
    def __init__(self) -> None:
        self.timings: list[StageTiming] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings.append(StageTiming(stage=name, ms=round((time.perf_counter() - t0) * 1000, 3)))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def ask(lore: Lore, question: str, *, previous: QueryPlan | None = None, user: str | None = None,
        conversation_id: str | None = None) -> Answer:
    """Answer one question (``previous`` is the plan of the conversation's last answer); every answer is recorded."""
    answer = _answer(lore, question, previous=previous, user=user, conversation_id=conversation_id)
    return _record(lore, answer)  # feedback (issue 6)


def _answer(lore: Lore, question: str, *, previous: QueryPlan | None, user: str | None,
            conversation_id: str | None) -> Answer:
    stage = _Stages()
    answer_id = uuid.uuid4().hex
    base = dict(id=answer_id, question=question, user=user, conversation_id=conversation_id, created_at=_now())

    with stage("retrieve"):
        _sync_examples(lore)  # feedback (issue 6): examples verified in other processes join the index
        retrieved = lore.retriever.search(question, k=4) if question.strip() else None
    with stage("plan"):
        # feedback (issue 6): a verified example that means the same answers first; then the planner
        outcome = _from_example(lore, question) or lore.planner.plan(question, previous)
        outcome = _with_penalty(lore, question, outcome)  # feedback (issue 6): voted down before -> lower confidence
    trace = Trace(question=question, outcome=outcome,
                  retrieved=tuple(h.model_dump() for h in retrieved.hits) if retrieved else ())

    if outcome.status != "plan" or outcome.plan is None:
        return _not_planned(outcome, base, trace.model_copy(update={"timings": tuple(stage.timings)}))
    plan = outcome.plan

    try:
        with stage("compile"):
            # free SQL (a verified correction's, issue 6) skips the compiler; the guard checks it like any SQL
            compiled = (CompiledQuery(sql=plan.sql) if plan.sql and not plan.metrics
                        else lore.compiler.compile(plan.semantic_query(), dialect="duckdb"))
        with stage("guard"):
            guarded = lore.guard(compiled.sql)
        with stage("execute"):
            result = lore.engine.run(guarded.sql, timeout_s=lore.settings.query_timeout_s, max_rows=lore.settings.max_rows)
            if len(result.columns) == len(compiled.columns):
                result = result.model_copy(update={"columns": compiled.columns})
    except AskerError as err:
        trace = trace.model_copy(update={"timings": tuple(stage.timings), "error": str(err)})
        return Answer(**base, status="clarify", message=err.message + (f" {err.hint}" if err.hint else ""),
                      suggestions=tuple(getattr(err, "suggestions", ()) or ()), plan=plan,
                      reasoning=tuple(reasoning_steps(plan, lore.layer)), confidence=0.0,
                      confidence_factors={"execution": 0.0}, trace=trace)
    except (GuardError, EngineError) as err:
        sql = getattr(err, "sql", None)
        trace = trace.model_copy(update={"timings": tuple(stage.timings), "error": str(err)})
        return Answer(**base, status="error", message=f"The query could not run: {err.message}", sql=sql, plan=plan,
                      reasoning=tuple(reasoning_steps(plan, lore.layer)), confidence=0.0,
                      confidence_factors={"execution": 0.0}, trace=trace)

    with stage("chart"):
        chart = _chart(plan, result, lore)
    with stage("explain"):
        message = compose_message(plan, result, lore.layer)
        reasoning = reasoning_steps(plan, lore.layer, compiled, result, guarded.tables)
        factors = factors_from_signals(outcome.signals, ran=True, rows=len(result.rows), truncated=result.truncated,
                                       followup=any(g.kind == "context" for g in plan.groundings))
        score = confidence(factors)
    trace = trace.model_copy(update={"compiled": compiled, "guarded_sql": guarded.sql, "timings": tuple(stage.timings)})
    return Answer(
        **base, status="answered", message=message, sql=guarded.sql, columns=result.columns, rows=result.rows,
        chart=chart.spec if chart else None, chart_kind=chart.kind if chart else None,
        chart_title=chart.title if chart else None, reasoning=tuple(reasoning), confidence=score,
        confidence_factors=factors, plan=plan, truncated=result.truncated, trace=trace,
    )


def _chart(plan: QueryPlan, result: ResultSet, lore: Lore):  # -> ChartSpec | None
    layer = lore.layer
    metric = layer.metrics.get(plan.metrics[0]) if plan.metrics else None
    additive = bool(metric and not metric.is_derived and metric.agg in ("sum", "count"))
    request = ChartRequest(
        metric_labels=tuple(c.label for c in result.columns if c.kind == "metric"),
        filters=tuple(scope_phrases(plan.model_copy(update={"time": None}), layer)),
        time_range=plan.time.label if plan.time else None,
        sort_desc=not plan.order_by or plan.order_by[0].descending,
        additive=additive,
    )
    try:
        return choose_chart(result, request)
    except (OperatorError, ValueError):  # a chart rule bug must not lose the answer: the table still shows
        return None


def _not_planned(outcome: PlanOutcome, base: dict, trace: Trace) -> Answer:
    status = {"refuse": "refused", "clarify": "clarify"}.get(outcome.status, "error")
    return Answer(**base, status=status, message=outcome.message, suggestions=outcome.suggestions,  # type: ignore[arg-type]
                  plan=outcome.plan, confidence=0.0, confidence_factors={k: round(v, 4) for k, v in outcome.signals.items()},
                  trace=trace)


class Chat:
    """One conversation: remembers the last answered plan so follow-ups refine it."""

    def __init__(self, lore: Lore, *, user: str | None = None, conversation_id: str | None = None) -> None:
        self.lore = lore
        self.user = user
        self.id = conversation_id or uuid.uuid4().hex
        self.history: list[Answer] = []

    @property
    def last_plan(self) -> QueryPlan | None:
        for answer in reversed(self.history):
            if answer.status == "answered" and answer.plan is not None:
                return answer.plan
        return None

    def ask(self, question: str) -> Answer:
        answer = ask(self.lore, question, previous=self.last_plan, user=self.user, conversation_id=self.id)
        self.history.append(answer)
        return answer


# --- feedback (issue 6): through the FeedbackBackend seam (lore/plugins.py) -------------------------


def _backend(lore: Lore) -> FeedbackBackend | None:
    """The feedback backend, or None (not installed, switched off, or broken: then logged)."""
    try:
        return lore.feedback_backend
    except LoreError as err:
        log.warning("feedback is unavailable: %s", err)
        return None


def _sync_examples(lore: Lore) -> None:
    if _backend(lore) is None:
        return
    try:
        lore.sync_examples()
    except LoreError as err:  # the index keeps the examples it has; the next question tries again
        log.warning("verified examples not refreshed: %s", err)


def _from_example(lore: Lore, question: str) -> PlanOutcome | None:
    """The plan of a verified example that means the same as the question (see lore/plan/example.py)."""
    if _backend(lore) is None or not question.strip():
        return None
    return lore.example_planner.plan(question)


def _with_penalty(lore: Lore, question: str, outcome: PlanOutcome) -> PlanOutcome:
    """Lower confidence (signal ``feedback``) when a similar question with the same plan was voted down."""
    backend = _backend(lore)
    if backend is None or outcome.status != "plan" or outcome.plan is None:
        return outcome
    try:
        factor = backend.penalty(question, outcome.plan.key())
    except LoreError as err:
        log.warning("feedback penalty not checked: %s", err)
        return outcome
    if factor is None:
        return outcome
    note = "A similar question with this plan was voted down before, so confidence is lower: check the definitions used."
    plan = outcome.plan.model_copy(update={"notes": (*outcome.plan.notes, note)})
    return outcome.model_copy(update={"plan": plan, "signals": {**outcome.signals, "feedback": factor}})


def _record(lore: Lore, answer: Answer) -> Answer:
    """Record the answer so feedback can point at it; a failure is logged and never loses the answer."""
    if _backend(lore) is None:
        return answer
    try:
        lore.record_answer(answer)
    except Exception:  # noqa: BLE001 - plugin code at the seam: log it with its traceback, keep the answer
        log.exception("answer %s was not recorded in the feedback store", answer.id)
    return answer
