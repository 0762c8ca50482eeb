"""Verification before learning: nominations, reviews, and the operator's auto-verify rules.

A thumbs up *nominates* the question -> plan pair of an answer; a thumbs down
with a correction nominates the corrected pair. Nothing teaches LORE until
the pair is **verified**, and a pair is verified only when

1. what it runs passes the guard and runs again on the warehouse
   (:func:`verify_plan`): its compiled plan, or its SQL when it names no
   metric. A corrected plan sent with a SQL is verified only when both return
   the same result; the plan is what runs later;
2. the project's policy accepts it (:mod:`feedback.policy`): a reviewer
   approves it (the default), or a rule the operator set verifies it at once
   (a trusted person's verified vote; N distinct verified people's votes,
   N >= 2, with nobody voting it down). Votes count once per person, so one
   person never pushes a pair through alone under several names.

A pair a rule verifies is checked **in the voters' scope** (``Lore.for_users``):
a voter can never get a pair verified that reads what they may not see, and a
failure is reported to them in general terms (an engine message may quote
data). A reviewer's approval is checked with the operator's access.

A verified pair becomes a retrieval example at once (the open project's
index is updated) and replaces any earlier verified pair for the same
question; every verified pair can be revoked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lore.errors import AskerError, EngineError, GuardError, LoreError, OperatorError, QueryTimeout, ResultTooLarge
from lore.types import Frozen, QueryPlan, ResultSet

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

    from feedback.policy import AutoRule
    from feedback.store import FeedbackStore, Nomination

#: the actor name of decisions made by a policy rule
POLICY_ACTOR = "policy"


class CorrectionMismatch(AskerError):
    """A correction's plan and its SQL do not return the same result: it is two things, not one."""

    code = "correction_mismatch"


def verify_plan(lore: Lore, plan: QueryPlan, *, claimed_sql: str | None = None,
                voters: Sequence[str] | None = None) -> str:
    """Check what ``plan`` runs: compile it (or take its SQL), pass it through the guard, run it.

    ``claimed_sql`` (a correction's SQL sent with its plan) must return exactly the plan's result.
    ``voters``: check in the scope every one of them shares (``Lore.for_users``); None: the operator's.
    Returns the SQL that runs, as the project's guard writes it (the verified SQL). Raises the compiler's,
    the guard's or the engine's error, or :class:`CorrectionMismatch`.
    """
    checked = lore.for_users(list(voters)) if voters else lore
    result = _run(checked, checked.compile_plan(plan).sql)
    if claimed_sql is not None:
        claimed = _run(checked, claimed_sql)
        if not same_result(result, claimed):
            raise CorrectionMismatch(
                "The correction's plan and its SQL return different results on the warehouse, so it is not one "
                "correction: LORE would run the plan, not the SQL that was checked.",
                hint="Send one thing: the plan alone (no \"sql\" in it) or the SQL alone (--correct-sql); or fix "
                     "the SQL so it returns exactly what the plan returns.")
    return lore.guard(lore.compile_plan(plan).sql).sql


def _run(lore: Lore, sql: str) -> ResultSet:
    guarded = lore.guard(sql)
    return lore.engine.run(guarded.sql, timeout_s=lore.settings.query_timeout_s, max_rows=lore.settings.max_rows)


def same_result(a: ResultSet, b: ResultSet) -> bool:
    """The same rows (in any order), cell by cell; floats equal to 9 significant digits; never a capped result.

    >>> from lore.types import ColumnMeta
    >>> r = lambda *rows: ResultSet(columns=(ColumnMeta(name="x", label="x"),), rows=rows)
    >>> same_result(r((1,), (2.0000000001,)), r((2,), (1,))), same_result(r((1,)), r((2,)))
    (True, False)
    """
    if a.truncated or b.truncated or len(a.rows) != len(b.rows) or len(a.columns) != len(b.columns):
        return False
    return sorted(map(_canon_row, a.rows), key=repr) == sorted(map(_canon_row, b.rows), key=repr)


def _canon_row(row: Sequence[Any]) -> tuple[Any, ...]:
    def cell(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, (int, float)) and not (isinstance(v, float) and not math.isfinite(v)):
            return float(f"{float(v):.9g}")
        return v
    return tuple(cell(v) for v in row)


class WhatRuns(Frozen):
    """What a pair runs when it answers, as a reviewer must see it before approving it."""

    #: sql | plan | both (a plan, with a SQL that must return the same result)
    kind: str
    #: the SQL that runs (a plan's compiled SQL; the verified SQL once verified)
    sql: str | None = None
    #: the SQL sent with a corrected plan, checked against it at review (it never runs in answers)
    claimed_sql: str | None = None
    #: why the SQL cannot be shown (the plan does not compile now)
    error: str | None = None


def what_runs(lore: Lore | None, nomination: Nomination) -> WhatRuns:
    """The SQL a pair runs (compiled with the operator's access: an asker's own limits are added when it runs)."""
    kind, claimed = nomination.kind, nomination.claimed_sql
    if nomination.status == "verified" and nomination.verified_sql:
        return WhatRuns(kind=kind, sql=nomination.verified_sql, claimed_sql=claimed)
    if nomination.plan.runs_sql:
        return WhatRuns(kind=kind, sql=nomination.plan.sql)
    if lore is None:
        return WhatRuns(kind=kind, claimed_sql=claimed, error="the project is not open")
    try:
        return WhatRuns(kind=kind, sql=lore.compile_plan(nomination.plan).sql, claimed_sql=claimed)
    except LoreError as err:
        return WhatRuns(kind=kind, claimed_sql=claimed, error=err.message)


def _reviewer(store: FeedbackStore, reviewer: str) -> str:
    name = (reviewer or "").strip()
    if not name:
        raise OperatorError("A review decision needs the reviewer's name (--reviewer).")
    if name.startswith(f"{POLICY_ACTOR}:"):
        raise OperatorError(f"{name!r} is reserved for decisions made by the policy.")
    if not store.policy.may_review(name, store.principal_id):
        raise OperatorError(f"{name} is not a reviewer of this project.",
                            hint="Reviewers are listed under `reviewers:` in feedback.yaml (or lore.yaml's feedback: section).")
    return name


def _verify(store: FeedbackStore, nomination: Nomination, actor: str, voters: Sequence[str] | None = None) -> str:
    if store.lore is None:
        raise OperatorError("Verifying a pair needs the project (its guard and warehouse).",
                            hint="Open the store with feedback.store.open_store(lore).")
    try:
        return verify_plan(store.lore, nomination.plan, claimed_sql=nomination.claimed_sql, voters=voters)
    except (GuardError, AskerError, EngineError) as err:
        store.decide(nomination.id, "verify_failed", actor=actor, reason=str(err))
        raise


def approve(store: FeedbackStore, pair: str, *, reviewer: str, reason: str | None = None,
            idempotency_key: str | None = None) -> Nomination:
    """Verify a pair: re-run what it runs through the guard, then mark it verified (it teaches LORE at once)."""
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


def voter_message(err: LoreError) -> str:
    """Why a pair was not verified, in words safe for the voter.

    The check ran in the voter's scope, and compiler and guard messages are about what the voter sent; an
    engine message may quote warehouse values, so only its kind is said (reviewers see the full message).

    >>> voter_message(EngineError("Conversion Error: Could not convert string 'Data|12.5' to INT32"))
    'the query failed when it ran on the warehouse (the reviewers can see the engine’s message)'
    """
    if isinstance(err, QueryTimeout):
        return "the query took longer than the time limit"
    if isinstance(err, ResultTooLarge):
        return "the query's result is too large"
    if isinstance(err, EngineError):
        return "the query failed when it ran on the warehouse (the reviewers can see the engine’s message)"
    return err.message


def verify_by_policy(store: FeedbackStore, pair: str, rule: AutoRule) -> tuple[str, str]:
    """Verify a pending pair that a policy ``rule`` accepts, in its voters' scope; returns (status, note) for
    the vote."""
    nomination = store.nomination(pair)
    if nomination.status != "pending":
        return nomination.status, f"It is {nomination.status}."
    actor = f"{POLICY_ACTOR}:{rule.text}"
    try:
        sql = _verify(store, nomination, actor, voters=rule.voters)
    except (GuardError, AskerError, EngineError) as err:
        return "pending", f"Nominated, but not verified: {voter_message(err)}"
    except OperatorError as err:
        return "pending", f"Nominated; not verified yet: {err.message}"
    done = store.decide(pair, "approve", actor=actor, reason=f"auto-verified: {rule.text}", verified_sql=sql)
    return done.status, f"Verified by the operator's policy ({rule.text}): it teaches LORE now."
