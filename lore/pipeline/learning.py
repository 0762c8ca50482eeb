"""Feedback around the stages, through the :class:`~lore.plugins.FeedbackBackend` seam.

- :func:`sync`: examples verified or revoked in another process (the Slack bot, the CLI) join the index before
  a question is retrieved;
- :func:`from_example`: a verified example that means the same as the question answers before any planner
  (see :mod:`lore.plan.example`);
- :func:`penalised`: a plan voted down before for a similar question loses confidence (signal ``feedback``);
- :func:`recorded`: every answer is stored, so a vote can point at it.

Without a backend (not installed, or ``LORE_FEEDBACK=0``) each does nothing. A backend that fails is logged and
never loses an answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lore.errors import LoreError
from lore.pipeline.stages import Planned
from lore.types import Answer, PlanOutcome, Question, RetrievalResult

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.plugins import FeedbackBackend

log = logging.getLogger("lore.feedback")


def backend(lore: Lore) -> FeedbackBackend | None:
    """The feedback backend, or None (not installed, switched off, or broken: then logged)."""
    try:
        return lore.feedback_backend
    except LoreError as err:
        log.warning("feedback is unavailable: %s", err)
        return None


def sync(lore: Lore) -> None:
    if backend(lore) is None:
        return
    try:
        lore.examples.sync()
    except LoreError as err:  # the index keeps the examples it has; the next question tries again
        log.warning("verified examples not refreshed: %s", err)


def from_example(lore: Lore, q: Question, retrieval: RetrievalResult | None) -> PlanOutcome | None:
    """The plan of a verified example that means the same as the question (None: no such example)."""
    if backend(lore) is None or not q.text.strip():
        return None
    return lore.examples.planner.plan(q.text, retrieval=retrieval)


def penalised(lore: Lore, q: Question, planned: Planned) -> Planned:
    """``planned`` with lower confidence when a similar question with the same plan was voted down."""
    outcome = planned.outcome
    store = backend(lore)
    if store is None or outcome.status != "plan" or outcome.plan is None:
        return planned
    try:
        factor = store.penalty(q.text, outcome.plan.key())
    except LoreError as err:
        log.warning("feedback penalty not checked: %s", err)
        return planned
    if factor is None:
        return planned
    note = "A similar question with this plan was voted down before, so confidence is lower: check the definitions used."
    plan = outcome.plan.model_copy(update={"notes": (*outcome.plan.notes, note)})
    outcome = outcome.model_copy(update={"plan": plan, "signals": outcome.signals.with_(feedback=factor)})
    return Planned(retrieval=planned.retrieval, outcome=outcome, memo_hit=planned.memo_hit)


def recorded(lore: Lore, answer: Answer) -> Answer:
    """Record the answer so feedback can point at it; a failure is logged and never loses the answer."""
    if backend(lore) is None:
        return answer
    try:
        lore.record_answer(answer)
    except Exception:  # noqa: BLE001 - plugin code at the seam: log it with its traceback, keep the answer
        log.exception("answer %s was not recorded in the feedback store", answer.id)
    return answer
