"""The cascade: the offline planner answers what it grounds fully; the LLM planner takes the rest.

For each question:

1. The offline planner plans first (no model, milliseconds).
2. A safety refusal is final: unsafe text never reaches the model. (An
   out-of-scope refusal is not: the model may find a metric or write free SQL.)
3. A plan it grounds fully (``metric_match >= 0.9`` and ``coverage >= 0.85``)
   is the answer: the model is not called.
4. Otherwise the LLM planner plans. If the offline planner had no plan
   (clarify), the LLM's outcome is the answer.
5. When both produced a plan, they are compared on what they compute
   (:meth:`QueryPlan.key`, groundings ignored):

   - **agreement**: the offline plan is kept (its groundings point at the
     exact words of the question) with signal ``agreement: 1.0``;
   - **disagreement**: the LLM plan is preferred, with ``agreement: 0.5``
     (lower confidence) and a note that says how the offline planner read the
     question. Reason: the offline plan is, by construction, one that left
     part of the question unexplained (low coverage or a weak metric match),
     while the LLM read every word and its plan passed the same compile and
     guard checks. Both are shown in the trace's reasoning.
   - the LLM declined (clarify) while the offline planner had a weak plan:
     the offline plan is kept with ``agreement: 0.5``.
"""

from __future__ import annotations

from typing import Any, Protocol

from lore.types import PlanOutcome, QueryPlan

#: the offline plan is trusted alone from these signals up
METRIC_THRESHOLD = 0.9
COVERAGE_THRESHOLD = 0.85
AGREE = 1.0
DISAGREE = 0.5


class Planner(Protocol):
    def plan(self, question: str, previous: QueryPlan | None = None) -> PlanOutcome: ...


def grounded_fully(outcome: PlanOutcome, *, metric: float = METRIC_THRESHOLD, coverage: float = COVERAGE_THRESHOLD) -> bool:
    """Whether the offline planner's outcome can stand without the model.

    >>> from lore.types import PlanOutcome, QueryPlan
    >>> ok = PlanOutcome(status="plan", plan=QueryPlan(metrics=("x",)), signals={"metric_match": 1.0, "coverage": 0.9})
    >>> weak = PlanOutcome(status="plan", plan=QueryPlan(metrics=("x",)), signals={"metric_match": 1.0, "coverage": 0.6})
    >>> grounded_fully(ok), grounded_fully(weak)
    (True, False)
    """
    if outcome.status != "plan" or outcome.plan is None:
        return False
    s = outcome.signals
    return s.get("metric_match", 0.0) >= metric and s.get("coverage", 1.0) >= coverage


def is_safety_refusal(outcome: PlanOutcome) -> bool:
    """A refusal for safety (write intent, SQL text, injection): final, the model never sees the question.

    An out-of-scope refusal is not final: the model may still find a metric (or free SQL) for it.

    >>> from lore.types import PlanOutcome
    >>> is_safety_refusal(PlanOutcome(status="refuse", signals={"safety": 0.0}))
    True
    >>> is_safety_refusal(PlanOutcome(status="refuse", signals={"in_scope": 0.0}))
    False
    """
    return outcome.status == "refuse" and ("safety" in outcome.signals or not outcome.signals)


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

    def __init__(self, offline: Planner, llm: Any) -> None:
        """``llm`` is the LLM planner, or a zero-argument callable that makes it on first need
        (so a question the offline planner grounds fully never starts a model)."""
        self.offline = offline
        self._llm = llm

    @property
    def llm(self) -> Any:
        if not hasattr(self._llm, "plan") and callable(self._llm):
            self._llm = self._llm()
        return self._llm

    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None) -> PlanOutcome:
        off = self.offline.plan(question, previous)
        if is_safety_refusal(off) or grounded_fully(off):
            return off
        llm = self.llm.plan(question, previous, answer_id=answer_id)
        if off.status != "plan" or off.plan is None:
            if off.status == "refuse" and llm.status != "plan":
                return off  # out of scope for both: the offline refusal says why
            return llm
        if llm.status != "plan" or llm.plan is None:
            if llm.status == "refuse":
                return llm
            return _with(off, DISAGREE, note="The model could not confirm this reading of the question.")
        if same_plan(off.plan, llm.plan):
            return _with(off, AGREE, note="The model read the question the same way.")
        return _with(llm, DISAGREE, note="The offline planner read it differently: "
                     + _summary(off.plan) + "; the model's reading was used.")


def _with(outcome: PlanOutcome, agreement: float, *, note: str) -> PlanOutcome:
    plan = outcome.plan
    if plan is not None:
        plan = plan.model_copy(update={"notes": (*plan.notes, note)})
    return outcome.model_copy(update={"plan": plan, "signals": {**outcome.signals, "agreement": agreement}})


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
