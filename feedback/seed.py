"""Seeding: a file of questions and their plans becomes verified examples, through the same votes and review.

``lore feedback seed FILE`` (a seed file: :mod:`lore.onboard.examples`; ``lore import dbt`` writes one from a dbt
project's saved queries). For each example, as the operator:

1. an example whose plan does not compile, pass the guard or run on the warehouse is reported **failed** and
   nothing is written for it (no question asked, no vote: a broken example never lowers another answer's
   confidence);
2. an example already verified (the same words, the same computation) is left alone: seeding a file twice changes
   nothing the second time;
3. otherwise LORE is asked the question. When its answer computes what the example's plan computes, the operator
   votes it up (**already right**); otherwise votes it down with the example's plan as the correction
   (**corrected**). Then the operator approves the nominated pair, as ``lore feedback review --approve`` does: what
   it runs is run again through the guard, and it becomes a verified example at once.

Two plans compute the same when their :meth:`QueryPlan.key` is the same, the time window's label aside (the label
names the window; the dates are what count). Every event carries an idempotency key derived from the example
(its question's words and its plan), so a run interrupted and started again stores each vote and decision once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from lore.errors import LoreError, OperatorError
from lore.onboard.examples import SeedEntry, SeedExample
from lore.plan.example import question_key
from lore.plugins import Correction
from lore.types import Frozen, QueryPlan

from feedback import review

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

    from feedback.store import FeedbackStore, Nomination

#: the reason kept with each approval made by seeding
SEED_REASON = "seeded example (lore feedback seed)"

Outcome = Literal["already_right", "corrected", "already_verified", "failed"]


class SeedResult(Frozen):
    """What seeding did with one example of the file."""

    number: int
    question: str
    outcome: Outcome
    #: the verified pair (or, when approving failed, the pending one)
    nomination_id: str | None = None
    #: why it failed, or what was found
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


def computes(plan: QueryPlan) -> str:
    """What a plan computes, as text: :meth:`QueryPlan.key` with the time window's label left out.

    >>> from datetime import date
    >>> from lore.types import TimeWindow
    >>> a = QueryPlan(metrics=("m",), time=TimeWindow(start=date(2026, 1, 1), end=date(2026, 12, 31), label="2026"))
    >>> computes(a) == computes(a.model_copy(update={"time": a.time.model_copy(update={"label": "this year"})}))
    True
    """
    time = plan.time.model_copy(update={"label": ""}) if plan.time is not None else None
    return plan.model_copy(update={"time": time}).key()


def seed_key(example: SeedExample) -> str:
    """The idempotency-key stem of an example: the same words and computation give the same key.

    >>> seed_key(SeedExample(question="Orders?", plan=QueryPlan(metrics=("orders",)))) == seed_key(
    ...     SeedExample(question="orders", plan=QueryPlan(metrics=("orders",)), note="n"))
    True
    """
    text = f"{question_key(example.question)}\n{computes(example.plan)}"
    return "seed:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def check_operator(store: FeedbackStore, operator: str) -> str:
    """The operator's name, when they may approve pairs of this project (raises :class:`OperatorError` otherwise)."""
    name = (operator or "").strip()
    if not name:
        raise OperatorError("Say who seeds the examples with --as NAME (or LORE_USER): they vote and approve.")
    if name.startswith(f"{review.POLICY_ACTOR}:"):
        raise OperatorError(f"{name!r} is reserved for decisions made by the policy.")
    if not store.policy.may_review(name, store.principal_id):
        raise OperatorError(f"{name} is not a reviewer of this project, so the examples cannot be approved.",
                            hint="Seed as a reviewer listed under `reviewers:` in feedback.yaml (or lore.yaml's "
                                 "feedback: section).")
    return name


def seed(lore: Lore, store: FeedbackStore, entries: Sequence[SeedEntry], *, operator: str) -> list[SeedResult]:
    """Verify each example of a seed file as ``operator`` (see the module docstring); one result per entry."""
    who = check_operator(store, operator)
    return [seed_one(lore, store, entry, operator=who) for entry in entries]


def seed_one(lore: Lore, store: FeedbackStore, entry: SeedEntry, *, operator: str) -> SeedResult:
    """Verify one example (``operator`` already checked by :func:`check_operator`)."""

    def result(outcome: Outcome, nomination: str | None = None, reason: str | None = None) -> SeedResult:
        return SeedResult(number=entry.number, question=entry.question, outcome=outcome, nomination_id=nomination,
                          reason=reason)

    example = entry.example
    if example is None:
        return result("failed", reason=entry.problem)
    wanted = computes(example.plan)
    same = [n for n in store.pairs_for(example.question) if computes(n.plan) == wanted]
    if (done := _with_status(same, "verified")) is not None:
        return result("already_verified", done.id, "it is a verified example already")
    for status, verb in (("rejected", "rejected"), ("revoked", "revoked")):
        if (decided := _with_status(same, status)) is not None:
            return result("failed", decided.id,
                          f"a reviewer {verb} this pair ({decided.reason or 'no reason given'}); approve it by hand "
                          f"if it is right: lore feedback review --approve {decided.id}")
    try:
        review.verify_plan(lore, example.plan)
    except LoreError as err:
        return result("failed", reason=f"the plan does not run: {err.message}")
    key = seed_key(example)
    pending = _with_status(same, "pending")
    if pending is not None:  # nominated already (an earlier run stopped before approving, or someone's vote)
        outcome: Outcome = "already_right" if pending.source == "answer" else "corrected"
        return _approve(store, pending.id, outcome, key, operator, result)
    try:
        answer = lore.ask(example.question, user=operator)
        if answer.status == "answered" and answer.plan is not None and computes(answer.plan) == wanted:
            outcome = "already_right"
            vote = store.vote(answer.id, +1, user=operator, idempotency_key=f"{key}:up")
        else:
            outcome = "corrected"
            vote = store.vote(answer.id, -1, user=operator, comment=example.note or "seeded example",
                              correction=Correction(plan=example.plan), idempotency_key=f"{key}:correct")
    except LoreError as err:
        return result("failed", reason=err.message)
    if vote.nomination_id is None:
        return result("failed", reason=vote.note or "the vote nominated nothing")
    return _approve(store, vote.nomination_id, outcome, key, operator, result)


def _approve(store: FeedbackStore, pair: str, outcome: Outcome, key: str, operator: str, result) -> SeedResult:  # noqa: ANN001
    try:
        review.approve(store, pair, reviewer=operator, reason=SEED_REASON, idempotency_key=f"{key}:approve")
    except LoreError as err:
        return result("failed", pair, f"not verified: {err.message}")
    return result(outcome, pair)


def _with_status(pairs: Sequence[Nomination], status: str) -> Nomination | None:
    return next((n for n in pairs if n.status == status), None)
