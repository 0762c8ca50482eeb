"""``ask()``: a question becomes an answer through seven typed stages.

::

    Question ─retrieve─▶ RetrievalResult ─plan─▶ PlanOutcome ─┬─ clarify / refuse ─────────────▶ Answer
                                                              └─ QueryPlan ─compile─▶ CompiledQuery
        ─guard─▶ GuardedSQL ─execute─▶ ResultSet ─chart─▶ ChartSpec ─explain─▶ Explanation ─▶ Answer

The stages are the functions of :mod:`lore.pipeline.stages`. Around them, never inside them:

- :mod:`lore.pipeline.memo`: the plan memo (a question asked before skips retrieve and plan) and the answer
  cache (a plan computed before skips compile to chart);
- :mod:`lore.pipeline.learning`: feedback (verified examples answer first, a plan voted down loses
  confidence, every answer is recorded);
- :func:`_computed`: a model's plan that failed when it ran goes back to the model once;
- access: the ``Lore`` a stage reads is already the asker's scope (:meth:`lore.core.Lore.for_user`).

Every stage is timed and its artifact kept in the :class:`~lore.types.Trace`. Errors a user can act on become a
clarifying question or a refusal; engine failures become an error answer with the SQL attached. Nothing here
writes SQL or code from text.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from lore.errors import AskerError, EngineError, GuardError, LoreError, QueryTimeout, QuestionTimeout, ResultTooLarge
from lore.explain.answer import reasoning_steps
from lore.inputs import Budget, clean_question, has_words, require_text
from lore.pipeline import learning, memo, stages
from lore.pipeline.stages import Computed, Explanation, Planned, StageHook, Timer, listing_total
from lore.types import Answer, Context, PlanOutcome, QueryPlan, Question, Trace

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

__all__ = ["Chat", "StageHook", "ask", "last_answered", "listing_total"]

log = logging.getLogger("lore.pipeline")


def ask(lore: Lore, question: str, *, previous: QueryPlan | None = None, user: str | None = None,
        conversation_id: str | None = None, previous_confidence: float | None = None,
        on_stage: StageHook | None = None) -> Answer:
    """Answer one question (``previous`` is the plan of the conversation's last answer, ``previous_confidence`` its
    confidence, which caps a follow-up's); every answer is recorded.

    ``on_stage`` is told of each stage that ran, in order, as it ends (:class:`~lore.pipeline.stages.Timer`), in
    this thread: a server streams them. It must not raise.

    The question must be a str (else :class:`~lore.errors.BadInput`); one longer than ``max_question_chars`` is
    refused before any work; the rest is cleaned once (:func:`lore.inputs.clean_question`), so every stage sees
    valid text, and answered within ``question_budget()`` seconds.
    """
    text = require_text(question, what="Ask the question", example='lore.ask("streaming hours by region in 2026")')
    q = Question(id=uuid.uuid4().hex, text=text, user=user, conversation_id=conversation_id, asked_at=_now(),
                 context=Context(previous=previous, confidence=previous_confidence))
    limit = lore.settings.max_question_chars
    if len(text) > limit:
        answer = _too_long(q, limit)
    else:
        q = q.model_copy(update={"text": clean_question(text)})
        answer = _answer(lore, q, on_stage) if has_words(q.text) else _no_words(lore, q)
    return learning.recorded(lore, answer)


def _answer(lore: Lore, q: Question, on_stage: StageHook | None = None) -> Answer:
    """retrieve -> plan -> compile -> guard -> execute -> chart -> explain, within the question's time."""
    timer = Timer(Budget(lore.settings.question_budget()), on_stage=on_stage)
    try:
        return _timed(lore, q, timer)
    finally:
        timer.report()  # the last stage is over too


def _timed(lore: Lore, q: Question, timer: Timer) -> Answer:
    """The stages of :func:`_answer`, each timed (and told) by ``timer``."""
    trace = Trace(question=q.text)
    try:
        learning.sync(lore)                                                    # examples verified elsewhere
        planned = learning.penalised(lore, q, memo.planned(lore, q, timer, _planned))  # retrieve, plan
        trace = timer.trace(trace, retrieval=planned.retrieval, outcome=planned.outcome,
                            plan_cache_hit=planned.memo_hit)
        if planned.outcome.status != "plan" or planned.outcome.plan is None:
            return _not_planned(q, planned.outcome, trace)
        computed = _computed(lore, q, planned, timer)                          # compile, guard, execute, chart
        outcome, done = computed.outcome, computed.done
        if isinstance(done, _Stopped):
            return _failed(lore, q, outcome, done, timer.trace(trace, outcome=outcome, **done.artifacts))
        with timer("explain"):
            explained = stages.explain(lore, q, outcome, done, replanned=computed.replanned)
        trace = timer.trace(trace, outcome=outcome, compiled=done.compiled, guarded=done.guarded, result=done.result,
                            chart=done.chart, cache_hit=done.cache_hit)
        return _answered(q, done, explained, trace)
    except QuestionTimeout as err:
        return Answer(**_head(q), status="error", message=f"{err.message} {err.hint}", confidence=0.0,
                      confidence_factors={"execution": 0.0}, trace=timer.trace(trace, error=str(err)))


def _planned(lore: Lore, q: Question, timer: Timer) -> Planned:
    """The retrieve and plan stages, with feedback around the plan: a verified example that means the same
    answers first, and a plan voted down before loses confidence."""
    with timer("retrieve"):
        retrieval = stages.retrieve(lore, q)
    with timer("plan"):
        outcome = learning.from_example(lore, q, retrieval) or stages.plan(lore, q, retrieval)
    return Planned(retrieval=retrieval, outcome=outcome)


# --- compute, re-planned once when a model's plan fails to run ------------------------------------


@dataclass(frozen=True)
class _Stopped:
    """Compile, guard or execute stopped with an error a user can act on (or an engine's)."""

    error: LoreError
    #: the artifacts made before the failing stage (for the trace)
    artifacts: dict


@dataclass(frozen=True)
class _Ran:
    """The outcome that was computed (a re-planned one after a failure) and what computing it gave."""

    outcome: PlanOutcome
    done: Computed | _Stopped
    replanned: bool = False


def _computed(lore: Lore, q: Question, planned: Planned, timer: Timer) -> _Ran:
    """The plan computed (through the answer cache); a model's plan that passed every check but failed when it
    ran goes back to the model once (not after a time or size limit: those would only be hit again)."""
    outcome = planned.outcome
    first = memo.computed(lore, outcome.plan, timer, _compute)  # type: ignore[arg-type]
    if isinstance(first, Computed) or not _fixable(first.error):
        return _Ran(outcome, first)
    with timer("replan"):
        retried = _replan(lore, q, planned, first.error)
    if retried is None or retried.plan is None:
        return _Ran(outcome, first)
    memo.remember(lore, q, Planned(planned.retrieval, retried))
    return _Ran(retried, memo.computed(lore, retried.plan, timer, _compute), replanned=True)


def _compute(lore: Lore, plan: QueryPlan, timer: Timer) -> Computed | _Stopped:
    """compile -> guard -> execute -> chart; an asker, guard or engine error stops them."""
    artifacts: dict = {}
    try:
        with timer("compile"):
            compiled = artifacts["compiled"] = stages.compile(lore, plan)
        with timer("guard"):
            guarded = artifacts["guarded"] = stages.guard(lore, compiled)
        with timer("execute"):
            result = artifacts["result"] = stages.execute(lore, guarded, compiled, timer.budget)
    except (AskerError, GuardError, EngineError) as err:
        return _Stopped(err, artifacts)
    with timer("chart"):
        chart = stages.chart(lore, plan, result)
    return Computed(plan=plan, compiled=compiled, guarded=guarded, result=result, chart=chart)


def _fixable(err: LoreError) -> bool:
    return isinstance(err, EngineError) and not isinstance(err, (QueryTimeout, ResultTooLarge))


def _replan(lore: Lore, q: Question, planned: Planned, error: LoreError) -> PlanOutcome | None:
    """The model's corrected plan after its plan failed to run (None: not a model's plan, or no better plan)."""
    plan = planned.outcome.plan
    replan = getattr(lore.planner, "replan", None)  # only planners that ask a model can re-plan
    if replan is None or plan is None or not plan.planner.startswith("llm"):
        return None
    text = str(error)
    try:
        outcome = replan(q.text, q.previous, plan, text, answer_id=q.id, retrieval=planned.retrieval)
    except LoreError as err:  # the model is unreachable now: keep the first error answer
        log.warning("the model could not be asked again after a failed query: %s", err)
        return None
    if outcome is None or outcome.status != "plan" or outcome.plan is None:
        return None
    note = f"The model's first query failed when it ran ({text[:200]}); it was corrected once."
    return outcome.model_copy(update={"plan": outcome.plan.model_copy(update={"notes": (*outcome.plan.notes, note)})})


# --- answers -------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _head(q: Question) -> dict:
    return dict(id=q.id, question=q.text, user=q.user, conversation_id=q.conversation_id, created_at=q.asked_at)


def _answered(q: Question, done: Computed, explained: Explanation, trace: Trace) -> Answer:
    result, chart = done.result, done.chart
    return Answer(
        **_head(q), status="answered", message=explained.message, restatement=explained.restatement,
        sql=done.guarded.sql, columns=result.columns, rows=result.rows,
        chart=chart.spec if chart else None, chart_kind=chart.kind if chart else None,
        chart_title=chart.title if chart else None, reasoning=explained.reasoning, confidence=explained.confidence,
        confidence_factors=explained.factors, plan=done.plan, truncated=result.truncated, trace=trace,
    )


def _failed(lore: Lore, q: Question, outcome: PlanOutcome, stopped: _Stopped, trace: Trace) -> Answer:
    """A plan that could not be computed: a clarifying question (the asker can fix it) or an error with its SQL."""
    err, plan = stopped.error, outcome.plan
    trace = trace.model_copy(update={"error": str(err)})
    reasoning = tuple(reasoning_steps(plan, lore.layer)) if plan is not None else ()
    if isinstance(err, AskerError):
        return Answer(**_head(q), status="clarify", message=err.message + (f" {err.hint}" if err.hint else ""),
                      suggestions=tuple(getattr(err, "suggestions", ()) or ()), plan=plan, reasoning=reasoning,
                      confidence=0.0, confidence_factors={"execution": 0.0}, trace=trace)
    return Answer(**_head(q), status="error", message=f"The query could not run: {err.message}",
                  sql=getattr(err, "sql", None), plan=plan, reasoning=reasoning, confidence=0.0,
                  confidence_factors={"execution": 0.0}, trace=trace)


def _not_planned(q: Question, outcome: PlanOutcome, trace: Trace) -> Answer:
    status = {"refuse": "refused", "clarify": "clarify"}.get(outcome.status, "error")
    return Answer(**_head(q), status=status, message=outcome.message, suggestions=outcome.suggestions,  # type: ignore[arg-type]
                  plan=outcome.plan, confidence=0.0,
                  confidence_factors={k: round(v, 4) for k, v in outcome.signals.items()}, trace=trace)


def _too_long(q: Question, limit: int) -> Answer:
    shown = clean_question(q.text[:200]) + "…"
    return Answer(**{**_head(q), "question": shown}, status="refused",
                  message=f"This question is {len(q.text):,} characters long; LORE answers questions of up to "
                  f"{limit:,} characters. Ask it in fewer words (the metric, its filters and the period are enough), "
                  "or ask the operator to raise LORE_MAX_QUESTION_CHARS.",
                  confidence=0.0, trace=Trace(question=shown, error="question too long"))


def _no_words(lore: Lore, q: Question) -> Answer:
    """An empty question, or only spaces and punctuation: a clarifying question, no planner asked."""
    return Answer(**_head(q), status="clarify", message="Ask a question about your metrics, for example “streaming "
                  "hours by region in 2026”.", suggestions=tuple(list(lore.layer.metrics)[:5]), confidence=0.0,
                  trace=Trace(question=q.text))


# --- conversations -------------------------------------------------------------------------------


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

    def ask(self, question: str, *, on_stage: StageHook | None = None) -> Answer:
        """Answer ``question`` in this conversation (``on_stage``: see :func:`ask`)."""
        # each turn runs as whoever asked it (self.user may change between turns)
        scoped = self.lore.for_user(self.user)
        last = self.last_answered
        previous = last.plan if last is not None else None
        if previous is not None and scoped.scope is not None:
            from lore.access import refs_visible  # lazy: loaded on the first access check

            if not refs_visible(scoped.layer, previous):
                previous = None  # an earlier turn by someone who sees more (a shared thread): not this person's context
        answer = ask(scoped, question, previous=previous, user=self.user, conversation_id=self.id,
                     previous_confidence=last.confidence if previous is not None and last is not None else None,
                     on_stage=on_stage)
        self.history.append(answer)
        return answer
