"""Verification before learning: nominations, reviews, and the operator's auto-verify rules.

A thumbs up *nominates* the question -> plan pair of an answer; a thumbs down
with a correction nominates the corrected pair. Nothing teaches LORE until
the pair is **verified**, and a pair is verified only when

1. its plan compiles and its SQL passes the guard and runs again on the
   warehouse (:func:`verify_plan`), and
2. the project's policy accepts it (:mod:`feedback.policy`): a reviewer
   approves it (the default), or a rule the operator set verifies it at once
   (a trusted user's vote; N distinct users' votes, N >= 2, with nobody
   voting it down). Votes count once per user, so one untrusted user never
   pushes a pair through alone.

A verified pair becomes a retrieval example at once (the open project's
index is updated) and replaces any earlier verified pair for the same
question; every verified pair can be revoked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lore.errors import AskerError, EngineError, GuardError, OperatorError
from lore.types import QueryPlan

from feedback.store import FeedbackStore, Nomination

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

#: the actor name of decisions made by a policy rule
POLICY_ACTOR = "policy"


def verify_plan(lore: Lore, plan: QueryPlan) -> str:
    """Compile the plan (or take its SQL), pass it through the guard, run it; returns the guarded SQL.

    Raises the compiler's, the guard's or the engine's error when the pair cannot be verified.
    """
    if plan.sql:
        guarded = lore.guard(plan.sql)
    else:
        compiled = lore.compiler.compile(plan.semantic_query(), dialect="duckdb")
        guarded = lore.guard(compiled.sql)
    lore.engine.run(guarded.sql, timeout_s=lore.settings.query_timeout_s, max_rows=lore.settings.max_rows)
    return guarded.sql


def _reviewer(store: FeedbackStore, reviewer: str) -> str:
    name = (reviewer or "").strip()
    if not name:
        raise OperatorError("A review decision needs the reviewer's name (--reviewer).")
    if name.startswith(f"{POLICY_ACTOR}:"):
        raise OperatorError(f"{name!r} is reserved for decisions made by the policy.")
    if not store.policy.may_review(name):
        raise OperatorError(f"{name} is not a reviewer of this project.",
                            hint="Reviewers are listed under `reviewers:` in feedback.yaml (or lore.yaml's feedback: section).")
    return name


def _verify(store: FeedbackStore, nomination: Nomination, actor: str) -> str:
    if store.lore is None:
        raise OperatorError("Verifying a pair needs the project (its guard and warehouse).",
                            hint="Open the store with feedback.store.open_store(lore).")
    try:
        return verify_plan(store.lore, nomination.plan)
    except (GuardError, AskerError, EngineError) as err:
        store.decide(nomination.id, "verify_failed", actor=actor, reason=str(err))
        raise


def approve(store: FeedbackStore, pair: str, *, reviewer: str, reason: str | None = None,
            idempotency_key: str | None = None) -> Nomination:
    """Verify a pair: re-run its SQL through the guard, then mark it verified (it teaches LORE at once)."""
    who = _reviewer(store, reviewer)
    nomination = store.nomination(pair)
    if nomination.status == "verified":
        return nomination
    sql = _verify(store, nomination, who)
    return store.decide(pair, "approve", actor=who, reason=reason, verified_sql=sql, idempotency_key=idempotency_key)


def reject(store: FeedbackStore, pair: str, *, reviewer: str, reason: str | None = None,
           idempotency_key: str | None = None) -> Nomination:
    """Reject a nomination: it never becomes an example (later thumbs up do not reopen it)."""
    who = _reviewer(store, reviewer)
    if store.nomination(pair).status == "rejected":
        return store.nomination(pair)
    return store.decide(pair, "reject", actor=who, reason=reason, idempotency_key=idempotency_key)


def revoke(store: FeedbackStore, pair: str, *, reviewer: str, reason: str | None = None,
           idempotency_key: str | None = None) -> Nomination:
    """Take a verified example back: it leaves the retrieval index and the fine-tuning exports."""
    who = _reviewer(store, reviewer)
    if store.nomination(pair).status == "revoked":
        return store.nomination(pair)
    return store.decide(pair, "revoke", actor=who, reason=reason, idempotency_key=idempotency_key)


def verify_by_policy(store: FeedbackStore, pair: str, rule: str) -> tuple[str, str]:
    """Verify a pending pair that a policy ``rule`` accepts; returns (status, note) for the vote."""
    nomination = store.nomination(pair)
    if nomination.status != "pending":
        return nomination.status, f"It is {nomination.status}."
    actor = f"{POLICY_ACTOR}:{rule}"
    try:
        sql = _verify(store, nomination, actor)
    except (GuardError, AskerError, EngineError) as err:
        return "pending", f"Nominated, but not verified: {err.message}"
    except OperatorError as err:
        return "pending", f"Nominated; not verified yet: {err.message}"
    done = store.decide(pair, "approve", actor=actor, reason=f"auto-verified: {rule}", verified_sql=sql)
    return done.status, f"Verified by the operator's policy ({rule}): it teaches LORE now."
