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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from lore.chart import ChartRequest, choose_chart
from lore.errors import (AskerError, EngineError, GuardError, LoreError, OperatorError, QueryTimeout, QuestionTimeout,
                         ResultTooLarge)
from lore.explain.answer import compose_message, reasoning_steps, restate, scope_phrases
from lore.explain.confidence import confidence, factors_from_signals
from lore.inputs import Budget, clean_question, has_words, require_text
from lore.plan.checks import check_outcome
from lore.types import Answer, ChartSpec, CompiledQuery, PlanOutcome, QueryPlan, ResultSet, StageTiming, Trace

if TYPE_CHECKING:  # pragma: no cover
    from lore.cache import CachedPlan, CachedResult
    from lore.core import Lore
    from lore.guard import GuardedSQL
    from lore.plugins import FeedbackBackend

log = logging.getLogger("lore.feedback")


class _Stages:
    """Times each stage; with a budget, stops the question (QuestionTimeout) when its time is up, checked as each
    stage starts and as it ends."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.timings: list[StageTiming] = []
        self.budget = budget

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.budget is not None:
            self.budget.check(self.timings[-1].stage if self.timings else name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings.append(StageTiming(stage=name, ms=round((time.perf_counter() - t0) * 1000, 3)))
        if self.budget is not None:
            self.budget.check(name)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def ask(lore: Lore, question: str, *, previous: QueryPlan | None = None, user: str | None = None,
        conversation_id: str | None = None, previous_confidence: float | None = None) -> Answer:
    """Answer one question (``previous`` is the plan of the conversation's last answer, ``previous_confidence`` its
    confidence, which caps a follow-up's); every answer is recorded.

    The question must be a str (else :class:`~lore.errors.BadInput`); one longer than ``max_question_chars`` is
    refused before any work; the rest is cleaned once (:func:`lore.inputs.clean_question`), so every stage sees
    valid text, and answered within ``question_budget()`` seconds.
    """
    question = require_text(question, what="Ask the question", example='lore.ask("streaming hours by region in 2026")')
    limit = lore.settings.max_question_chars
    if len(question) > limit:
        answer = _too_long(question, limit, user, conversation_id)
    else:
        question = clean_question(question)
        answer = (_answer(lore, question, previous=previous, user=user, conversation_id=conversation_id,
                          previous_confidence=previous_confidence)
                  if has_words(question) else _no_words(lore, question, user, conversation_id))
    return _record(lore, answer)  # feedback


def _too_long(question: str, limit: int, user: str | None, conversation_id: str | None) -> Answer:
    shown = clean_question(question[:200]) + "…"
    return Answer(id=uuid.uuid4().hex, question=shown, user=user, conversation_id=conversation_id, created_at=_now(),
                  status="refused", message=f"This question is {len(question):,} characters long; LORE answers questions "
                  f"of up to {limit:,} characters. Ask it in fewer words (the metric, its filters and the period are "
                  "enough), or ask the operator to raise LORE_MAX_QUESTION_CHARS.",
                  confidence=0.0, trace=Trace(question=shown, error="question too long"))


def _no_words(lore: Lore, question: str, user: str | None, conversation_id: str | None) -> Answer:
    """An empty question, or only spaces and punctuation: a clarifying question, no planner asked."""
    return Answer(id=uuid.uuid4().hex, question=question, user=user, conversation_id=conversation_id, created_at=_now(),
                  status="clarify", message="Ask a question about your metrics, for example “streaming hours by region "
                  "in 2026”.", suggestions=tuple(list(lore.layer.metrics)[:5]), confidence=0.0, trace=Trace(question=question))


def _answer(lore: Lore, question: str, *, previous: QueryPlan | None, user: str | None,
            conversation_id: str | None, previous_confidence: float | None = None) -> Answer:
    stage = _Stages(Budget(lore.settings.question_budget()))
    base = dict(id=uuid.uuid4().hex, question=question, user=user, conversation_id=conversation_id, created_at=_now())
    try:
        return _run_stages(lore, question, previous, stage, base, previous_confidence)
    except QuestionTimeout as err:
        return Answer(**base, status="error", message=f"{err.message} {err.hint}", confidence=0.0,
                      confidence_factors={"execution": 0.0},
                      trace=Trace(question=question, timings=tuple(stage.timings), error=str(err)))


def _run_stages(lore: Lore, question: str, previous: QueryPlan | None, stage: _Stages, base: dict,
                previous_confidence: float | None = None) -> Answer:
    answer_id = base["id"]
    with stage("retrieve"):
        _sync_examples(lore)  # feedback: examples verified in other processes join the index
        # answer cache: a question asked before (same words, context and versions) skips retrieve and plan
        plan_key, memo = _plan_lookup(lore, question, previous)
        if memo is not None:
            hits = memo.retrieved
        else:
            retrieved = lore.retriever.search(question, k=4) if question.strip() else None
            hits = tuple(h.model_dump() for h in retrieved.hits) if retrieved else ()
    with stage("plan"):
        if memo is not None:
            outcome = memo.outcome
        else:
            # feedback: a verified example that means the same answers first; then the planner
            # the answer's id goes with the question, so `lore logs` links each LLM exchange to its answer
            outcome = _from_example(lore, question) or lore.planner.plan(question, previous, answer_id=answer_id)
            outcome = check_outcome(outcome, lore.layer)  # filters no row can satisfy together become a question
            _plan_store(lore, plan_key, outcome, hits)
        outcome = _with_penalty(lore, question, outcome)  # feedback: voted down before -> lower confidence
    trace = Trace(question=question, outcome=outcome, retrieved=hits, plan_cache_hit=memo is not None)

    if outcome.status != "plan" or outcome.plan is None:
        return _not_planned(outcome, base, trace.model_copy(update={"timings": tuple(stage.timings)}))
    plan = outcome.plan

    # answer cache: the same plan on the same data and layer skips compile, guard, execute and chart
    cache_key, cached = None, None
    if lore.answer_cache is not None:
        with stage("cache"):
            cache_key, cached = _cache_lookup(lore, plan)
            if cached is not None:
                compiled, guarded, result = cached.compiled, cached.guarded, cached.result
                chart = _cached_chart(cached, plan, result, lore)
    replanned = False
    if cached is None:
        failures: list[LoreError] = []
        computed = _compute(lore, plan, trace, stage, base, failures)
        if isinstance(computed, Answer) and failures and _fixable(failures[0]):
            # a model's plan that passed every check but failed when it ran goes back to the model once
            with stage("replan"):
                retried = _replan(lore, question, previous, plan, computed, answer_id)
            if retried is not None and retried.plan is not None:
                outcome, plan, replanned = retried, retried.plan, True
                _plan_store(lore, plan_key, outcome, hits)
                trace = trace.model_copy(update={"outcome": outcome})
                cache_key = lore.cache_key(plan) if cache_key is not None else None
                computed = _compute(lore, plan, trace, stage, base)
        if isinstance(computed, Answer):
            return computed
        compiled, guarded, result, chart = computed
        _cache_store(lore, cache_key, plan, compiled, guarded, result, chart)
    with stage("explain"):
        message = compose_message(plan, result, lore.layer)
        reasoning = reasoning_steps(plan, lore.layer, compiled, result, guarded.tables)
        if (note := lore.access_note(guarded.row_filtered)) is not None:  # access control
            reasoning.append(note)
        if cached is not None:  # answer cache
            reasoning.append("This result was reused from the answer cache: the same query ran earlier on the same "
                             "data and semantic-layer version.")
        factors = factors_from_signals(outcome.signals, ran=True, rows=len(result.rows), truncated=result.truncated,
                                       followup=any(g.kind == "context" for g in plan.groundings),
                                       inherited=previous_confidence, retried=replanned)
        score = confidence(factors)
    trace = trace.model_copy(update={"compiled": compiled, "guarded_sql": guarded.sql, "timings": tuple(stage.timings),
                                     "cache_hit": cached is not None})  # answer cache
    return Answer(
        **base, status="answered", message=message, restatement=restate(plan, lore.layer), sql=guarded.sql,
        columns=result.columns, rows=result.rows,
        chart=chart.spec if chart else None, chart_kind=chart.kind if chart else None,
        chart_title=chart.title if chart else None, reasoning=tuple(reasoning), confidence=score,
        confidence_factors=factors, plan=plan, truncated=result.truncated, trace=trace,
    )


def _fixable(err: LoreError) -> bool:
    """An engine error a model may fix by writing another query (not a time or size limit: those would only
    be hit again, at twice the cost)."""
    return isinstance(err, EngineError) and not isinstance(err, (QueryTimeout, ResultTooLarge))


def _compute(lore: Lore, plan: QueryPlan, trace: Trace, stage: _Stages, base: dict,
             failures: list[LoreError] | None = None) -> Answer | tuple[CompiledQuery, GuardedSQL, ResultSet, ChartSpec | None]:
    """Compile, guard, execute and chart a plan; an asker, guard or engine error becomes the answer (and is
    appended to ``failures``)."""
    try:
        with stage("compile"):
            # free SQL (a model's, or a verified SQL correction's) skips the compiler; the guard checks it like any SQL
            compiled = lore.compile_plan(plan)
        with stage("guard"):
            guarded = lore.guard(compiled.sql)
        with stage("execute"):
            result = _run(lore, guarded.sql, stage.budget)
            if len(result.columns) == len(compiled.columns):
                result = result.model_copy(update={"columns": compiled.columns})
            result = listing_total(result)
    except AskerError as err:
        if failures is not None:
            failures.append(err)
        trace = trace.model_copy(update={"timings": tuple(stage.timings), "error": str(err)})
        return Answer(**base, status="clarify", message=err.message + (f" {err.hint}" if err.hint else ""),
                      suggestions=tuple(getattr(err, "suggestions", ()) or ()), plan=plan,
                      reasoning=tuple(reasoning_steps(plan, lore.layer)), confidence=0.0,
                      confidence_factors={"execution": 0.0}, trace=trace)
    except (GuardError, EngineError) as err:
        if failures is not None:
            failures.append(err)
        sql = getattr(err, "sql", None)
        trace = trace.model_copy(update={"timings": tuple(stage.timings), "error": str(err)})
        return Answer(**base, status="error", message=f"The query could not run: {err.message}", sql=sql, plan=plan,
                      reasoning=tuple(reasoning_steps(plan, lore.layer)), confidence=0.0,
                      confidence_factors={"execution": 0.0}, trace=trace)
    with stage("chart"):
        chart = _chart(plan, result, lore)
    return compiled, guarded, result, chart


def listing_total(result: ResultSet) -> ResultSet:
    """A listing's "rows in all" column becomes ``total_rows`` (the answer says "showing N of M")."""
    from lore.semantic.compile import TOTAL_ROWS

    names = [c.name for c in result.columns]
    if TOTAL_ROWS not in names:
        return result
    i = names.index(TOTAL_ROWS)
    total = int(result.rows[0][i]) if result.rows and isinstance(result.rows[0][i], (int, float)) else 0
    return result.model_copy(update={"columns": result.columns[:i] + result.columns[i + 1:],
                                     "rows": tuple(r[:i] + r[i + 1:] for r in result.rows), "total_rows": total})


def _run(lore: Lore, sql: str, budget: Budget | None) -> ResultSet:
    """Run guarded SQL within the query time limit, or within what is left of the question's time when that is less."""
    limit = lore.settings.query_timeout_s
    timeout = budget.cap(limit) if budget is not None else limit
    try:
        return lore.engine.run(sql, timeout_s=timeout, max_rows=lore.settings.max_rows)
    except QueryTimeout:
        if budget is not None and timeout < limit:  # the question's time ran out, not the query's own limit
            raise QuestionTimeout(stage="execute", budget_s=budget.seconds) from None
        raise


def _replan(lore: Lore, question: str, previous: QueryPlan | None, plan: QueryPlan, failed: Answer,
            answer_id: str) -> PlanOutcome | None:
    """The model's corrected plan after its plan failed to run (None: not a model's plan, or no better plan)."""
    replan = getattr(lore.planner, "replan", None)
    if replan is None or not plan.planner.startswith("llm"):
        return None
    error = (failed.trace.error if failed.trace is not None else None) or failed.message
    try:
        outcome = replan(question, previous, plan, error, answer_id=answer_id)
    except LoreError as err:  # the model is unreachable now: keep the first error answer
        log.warning("the model could not be asked again after a failed query: %s", err)
        return None
    if outcome is None or outcome.status != "plan" or outcome.plan is None:
        return None
    note = f"The model's first query failed when it ran ({error[:200]}); it was corrected once."
    return outcome.model_copy(update={"plan": outcome.plan.model_copy(update={"notes": (*outcome.plan.notes, note)})})


def _chart(plan: QueryPlan, result: ResultSet, lore: Lore) -> ChartSpec | None:
    return _choose_chart(result, _chart_request(plan, result, lore))


def _chart_request(plan: QueryPlan, result: ResultSet, lore: Lore) -> ChartRequest:
    layer = lore.layer
    metric = layer.metrics.get(plan.metrics[0]) if plan.metrics else None
    additive = bool(metric and not metric.is_derived and metric.agg in ("sum", "count"))
    return ChartRequest(
        metric_labels=tuple(c.label for c in result.columns if c.kind == "metric"),
        filters=tuple(scope_phrases(plan.model_copy(update={"time": None}), layer)),
        time_range=plan.time.label if plan.time else None,
        sort_desc=not plan.order_by or plan.order_by[0].descending,
        additive=additive,
    )


def _choose_chart(result: ResultSet, request: ChartRequest) -> ChartSpec | None:
    try:
        return choose_chart(result, request)
    except (OperatorError, ValueError):  # a chart rule bug must not lose the answer: the table still shows
        return None


def _not_planned(outcome: PlanOutcome, base: dict, trace: Trace) -> Answer:
    status = {"refuse": "refused", "clarify": "clarify"}.get(outcome.status, "error")
    return Answer(**base, status=status, message=outcome.message, suggestions=outcome.suggestions,  # type: ignore[arg-type]
                  plan=outcome.plan, confidence=0.0, confidence_factors={k: round(v, 4) for k, v in outcome.signals.items()},
                  trace=trace)


def last_answered(history: Sequence[Answer]) -> Answer | None:
    """The answer a follow-up refines: the latest answered one with a plan (its plan and its confidence)."""
    return next((a for a in reversed(history) if a.status == "answered" and a.plan is not None), None)


class Chat:
    """One conversation: remembers the last answered plan so follow-ups refine it."""

    def __init__(self, lore: Lore, *, user: str | None = None, conversation_id: str | None = None) -> None:
        self.lore = lore
        self.user = user
        self.id = conversation_id or uuid.uuid4().hex
        self.history: list[Answer] = []

    @property
    def last_answered(self) -> Answer | None:
        return last_answered(self.history)

    @property
    def last_plan(self) -> QueryPlan | None:
        last = self.last_answered
        return last.plan if last is not None else None

    def ask(self, question: str) -> Answer:
        # access control: each turn runs as whoever asked it (self.user may change between turns)
        scoped = self.lore.for_user(self.user)
        last = self.last_answered
        previous = last.plan if last is not None else None
        if previous is not None and not scoped.plan_in_view(previous):
            previous = None  # an earlier turn by someone who sees more (a shared thread): not this person's context
        answer = ask(scoped, question, previous=previous, user=self.user, conversation_id=self.id,
                     previous_confidence=last.confidence if previous is not None and last is not None else None)
        self.history.append(answer)
        return answer


# --- feedback: through the FeedbackBackend seam (lore/plugins.py) -------------------------


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


# --- answer cache: see lore/cache.py ------------------------------------------------------


def _cache_lookup(lore: Lore, plan: QueryPlan) -> tuple[str | None, CachedResult | None]:
    """The plan's cache key and its cached result (key None: the cache is off)."""
    cache = lore.answer_cache
    if cache is None:
        return None, None
    key = lore.cache_key(plan)
    return key, cache.get(key)


def _cached_chart(cached: CachedResult, plan: QueryPlan, result: ResultSet, lore: Lore) -> ChartSpec | None:
    """The cached chart when this plan asks for the same chart (labels, title, sort); else one drawn anew."""
    request = _chart_request(plan, result, lore)
    return cached.chart() if request == cached.request else _choose_chart(result, request)


def _cache_store(lore: Lore, key: str | None, plan: QueryPlan, compiled: CompiledQuery, guarded: GuardedSQL,
                 result: ResultSet, chart: ChartSpec | None) -> None:
    cache = lore.answer_cache
    if key is None or cache is None:
        return
    from lore.cache import CachedResult

    cache.put(key, CachedResult(compiled=compiled, guarded=guarded, result=result,
                                request=_chart_request(plan, result, lore),
                                chart_json=chart.model_dump_json() if chart is not None else None))


def _plan_lookup(lore: Lore, question: str, previous: QueryPlan | None) -> tuple[str | None, CachedPlan | None]:
    """The question's plan-memo key and its remembered outcome (key None: the cache is off)."""
    cache = lore.plan_cache
    if cache is None or not question.strip():
        return None, None
    key = lore.plan_cache_key(question, previous)
    return key, cache.get(key)


def _plan_store(lore: Lore, key: str | None, outcome: PlanOutcome, hits: tuple[dict, ...]) -> None:
    """Remember a plan (only a plan: a clarification or refusal is asked again, a model may do better next time)."""
    cache = lore.plan_cache
    if key is None or cache is None or outcome.status != "plan":
        return
    from lore.cache import CachedPlan

    cache.put(key, CachedPlan(outcome=outcome, retrieved=hits))
