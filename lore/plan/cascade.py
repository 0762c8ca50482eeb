"""The cascade: the offline planner answers what it grounds fully; the LLM planner takes the rest.

For each question:

1. The offline planner plans first (no model, milliseconds).
2. What it settles stays settled, and the model is not called:

   - a plan it grounds fully (``metric_match >= 0.9`` and ``coverage >= 0.85``);
   - any refusal (unsafe text never reaches the model; out-of-scope questions
     neither: a small model answers "what's the weather" with some metric);
   - a precise clarification: a value that is not in the data, a dimension
     the metric cannot reach, an aggregate the definition forbids. The model
     could only drop that part of the question and answer something else.

3. Otherwise the LLM planner plans:

   - the offline planner found **no metric** (it asks back): the model's plan
     is used when retrieval supports the metric it chose
     (``metric_evidence >= MIN_EVIDENCE``); otherwise the offline clarifying
     question stands, with the model's metric offered first among the suggestions;
   - the offline plan was **weak** (a metric found by similarity, or words left
     unexplained): both plans are compared on what they compute
     (:func:`same_plan`, groundings ignored).

     - **agreement**: the offline plan is kept (its groundings point at the
       exact words of the question) with signal ``agreement: 1.0``;
     - **disagreement**: ``agreement: 0.5`` (lower confidence) either way, and a
       note says how the other planner read the question. The LLM plan wins
       only when the offline metric was a guess (``metric_match < METRIC_GUESS``);
       otherwise the offline reading, tied word by word to the question, stays.
       (:func:`policy_for`: with the bundled 0.5B model the offline reading always
       stays, and the model's metric needs retrieval evidence of 0.5.)
       Measured on the golden set with the 0.5B local model, preferring the
       model more often cost accuracy: it reads leftover words into filters and
       groupings that were not asked for.
     - the model declined: the offline plan is kept with ``agreement: 0.5``.
"""

from __future__ import annotations

from typing import Any, Protocol

from lore.types import PlanOutcome, QueryPlan, RetrievalResult

#: the offline plan is trusted alone from these signals up
METRIC_THRESHOLD = 0.9
COVERAGE_THRESHOLD = 0.85
AGREE = 1.0
DISAGREE = 0.5
#: below this offline metric match, the offline metric was a guess: the model's reading wins a disagreement
METRIC_GUESS = 0.5
#: the least retrieval support for the metric the model chose when the offline planner found none
MIN_EVIDENCE = 0.3
#: offline clarifications the model must not override (see the module docstring)
_PRECISE = ("value_match", "dimension_reach", "intent")


class Planner(Protocol):
    """What the pipeline's plan stage calls: a question (with the retrieve stage's result for it) -> an outcome."""

    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None,
             retrieval: RetrievalResult | None = None) -> PlanOutcome: ...


def policy_for(model: str) -> dict[str, float]:
    """How far the cascade trusts a model: the bundled 0.5B local model is a tie-breaker, not an authority.

    On the golden set, preferring its reading in a disagreement, or taking its metric on weak retrieval
    evidence, lost more answers than it won; a hosted model keeps the defaults.

    >>> policy_for("local"), policy_for("openai:gpt-4o-mini")
    ({'min_evidence': 0.5, 'model_wins_below': 0.0}, {'min_evidence': 0.3, 'model_wins_below': 0.5})
    """
    if model == "local":
        return {"min_evidence": 0.5, "model_wins_below": 0.0}
    return {"min_evidence": MIN_EVIDENCE, "model_wins_below": METRIC_GUESS}


def grounded_fully(outcome: PlanOutcome, *, metric: float = METRIC_THRESHOLD, coverage: float = COVERAGE_THRESHOLD) -> bool:
    """Whether the offline planner's outcome can stand without the model.

    >>> from lore.types import PlanOutcome, QueryPlan, RetrievalResult
    >>> ok = PlanOutcome(status="plan", plan=QueryPlan(metrics=("x",)), signals={"metric_match": 1.0, "coverage": 0.9})
    >>> weak = PlanOutcome(status="plan", plan=QueryPlan(metrics=("x",)), signals={"metric_match": 1.0, "coverage": 0.6})
    >>> unsure = PlanOutcome(status="plan", plan=QueryPlan(metrics=("x",)), signals={"metric_match": 1.0,
    ...                      "coverage": 0.9, "unexplained_words": 1.0})
    >>> grounded_fully(ok), grounded_fully(weak), grounded_fully(unsure)
    (True, False, False)
    """
    if outcome.status != "plan" or outcome.plan is None:
        return False
    s = outcome.signals
    # a word of the question the plan did not use means the offline reading is unsure: the model reads it too
    return s.get("metric_match", 0.0) >= metric and s.get("coverage", 1.0) >= coverage and not s.get("unexplained_words")


def is_precise_clarification(outcome: PlanOutcome) -> bool:
    """A clarifying question about a named value, dimension or aggregate (not a missing metric).

    >>> from lore.types import PlanOutcome
    >>> is_precise_clarification(PlanOutcome(status="clarify", signals={"value_match": 0.0}))
    True
    >>> is_precise_clarification(PlanOutcome(status="clarify", signals={"metric_match": 0.0}))
    False
    """
    return outcome.status == "clarify" and any(outcome.signals.get(k, 1.0) == 0.0 for k in _PRECISE)


def same_plan(a: QueryPlan, b: QueryPlan) -> bool:
    """Whether two plans compute the same thing (groundings, planner and notes ignored; time labels too).

    >>> from datetime import date
    >>> from lore.types import QueryPlan, TimeWindow
    >>> p = QueryPlan(metrics=("m",), time=TimeWindow(start=date(2026, 1, 1), end=date(2026, 12, 31), label="in 2026"))
    >>> q = p.model_copy(update={"planner": "llm:x", "time": TimeWindow(start=date(2026, 1, 1), end=date(2026, 12, 31))})
    >>> same_plan(p, q), same_plan(p, QueryPlan(metrics=("m",)))
    (True, False)
    """
    def norm(p: QueryPlan) -> str:
        time = p.time.model_copy(update={"label": ""}) if p.time is not None else None
        return p.model_copy(update={"time": time, "filters": tuple(sorted(p.filters, key=lambda f: f.ref))}).key()

    return norm(a) == norm(b)


class CascadePlanner:
    """Offline first, the LLM for the rest; see the module docstring."""

    name = "cascade"

    def __init__(self, offline: Planner, llm: Any, *, min_evidence: float = MIN_EVIDENCE,
                 model_wins_below: float = METRIC_GUESS) -> None:
        """``llm`` is the LLM planner, or a zero-argument callable that makes it on first need
        (so a question the offline planner grounds fully never starts a model)."""
        self.offline = offline
        self._llm = llm
        self.min_evidence = min_evidence
        self.model_wins_below = model_wins_below

    @property
    def llm(self) -> Any:
        if not hasattr(self._llm, "plan") and callable(self._llm):
            self._llm = self._llm()
        return self._llm

    @property
    def prompt_version(self) -> str | None:
        """The LLM planner's prompt template id, once it is made (asking never starts a model)."""
        return self._llm.prompt_version if hasattr(self._llm, "plan") else None

    def replan(self, question: str, previous: QueryPlan | None, failed: QueryPlan, error: str, *,
               answer_id: str | None = None, retrieval: RetrievalResult | None = None) -> PlanOutcome | None:
        """The model's second try at a plan of its own that failed when it ran (None: the plan was not the model's)."""
        if not failed.planner.startswith("llm"):
            return None
        return self.llm.replan(question, previous, failed, error, answer_id=answer_id, retrieval=retrieval)

    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None,
             retrieval: RetrievalResult | None = None) -> PlanOutcome:
        off = self.offline.plan(question, previous, retrieval=retrieval)
        if off.status == "refuse" or grounded_fully(off) or is_precise_clarification(off):
            return off
        llm = self.llm.plan(question, previous, answer_id=answer_id, retrieval=retrieval)
        if off.status != "plan" or off.plan is None:
            if llm.status == "plan" and llm.plan is not None:
                if llm.signals.get("metric_evidence", 1.0) >= self.min_evidence:
                    return llm
                offered = tuple(dict.fromkeys((*llm.plan.metrics, *off.suggestions)))
                return off.model_copy(update={"suggestions": offered})
            return off if llm.status == "refuse" else llm
        if llm.status != "plan" or llm.plan is None:
            return _with(off, DISAGREE, note="The model could not confirm this reading of the question.")
        if same_plan(off.plan, llm.plan):
            return _with(off, AGREE, note="The model read the question the same way.")
        if off.signals.get("metric_match", 0.0) >= self.model_wins_below:
            return _with(off, DISAGREE, note="The model read it differently: " + _summary(llm.plan)
                         + "; the reading tied to the question's words was used.")
        return _with(llm, DISAGREE, note="The offline planner read it differently: "
                     + _summary(off.plan) + "; the model's reading was used.")


def _with(outcome: PlanOutcome, agreement: float, *, note: str) -> PlanOutcome:
    plan = outcome.plan
    if plan is not None:
        plan = plan.model_copy(update={"notes": (*plan.notes, note)})
    return outcome.model_copy(update={"plan": plan, "signals": outcome.signals.with_(agreement=agreement)})


def _summary(plan: QueryPlan) -> str:
    """A short text of what a plan computes.

    >>> from lore.types import Filter, QueryPlan
    >>> _summary(QueryPlan(metrics=("a",), dimensions=("t.x",), filters=(Filter(ref="t.y", values=("v",)),)))
    'a by t.x where t.y = v'
    """
    text = ", ".join(plan.metrics)
    if plan.dimensions:
        text += " by " + ", ".join(plan.dimensions)
    if plan.filters:
        text += " where " + " and ".join(f.describe() for f in plan.filters)
    if plan.time is not None:
        text += f" ({plan.time.label or plan.time.start})"
    return text
