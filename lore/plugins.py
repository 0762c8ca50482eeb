"""Plugin seams: what the core needs from optional packages, found through entry points.

The core never imports the packages that implement a seam. A package plugs in
by declaring an entry point in the ``lore.plugins`` group whose name is the
seam and whose value is a factory taking the :class:`~lore.core.Lore`
instance::

    [project.entry-points."lore.plugins"]
    feedback = "feedback.store:open_backend"

The one seam today is :class:`FeedbackBackend`: where answers are recorded,
votes are stored, and verified question -> plan examples come from (the
``feedback`` package implements it with SQLite). ``Lore.feedback()``,
``Lore.record_answer()`` and the pipeline's example planner go through it.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import ValidationError, model_validator

from lore.errors import AskerError, OperatorError
from lore.retrieve.documents import Example
from lore.types import Answer, Frozen, QueryPlan

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

#: the entry-point group of core plugins
PLUGIN_GROUP = "lore.plugins"
#: the entry-point name of the feedback backend
FEEDBACK_PLUGIN = "feedback"

Rating = Literal[1, -1]


class Correction(Frozen):
    """What the answer should have been: one thing LORE will run.

    - a corrected **plan** (a semantic query: it is compiled, so it follows the layer and each asker's
      access), or
    - a corrected **SQL** statement (run through the guard), or
    - **both**, only as two forms of the same computation: the plan is what runs, and the review
      verifies that the SQL returns exactly the plan's result on the warehouse (or refuses the pair).

    A plan that carries its own ``sql`` is read the same way: with metrics, it is a plan plus a SQL claim;
    without, it is a SQL correction.

    >>> c = Correction(plan=QueryPlan(metrics=("m",), sql="SELECT 1"))
    >>> c.kind, c.plan.sql, c.sql
    ('both', None, 'SELECT 1')
    >>> Correction(plan=QueryPlan(sql="SELECT 2")).kind
    'sql'
    """

    sql: str | None = None
    plan: QueryPlan | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_plan_sql(cls, data: Any) -> Any:
        """Move SQL carried inside the plan to ``sql`` (a plan without metrics is then no plan at all)."""
        if not isinstance(data, dict) or data.get("plan") is None:
            return data
        plan = data["plan"]
        plan = plan if isinstance(plan, QueryPlan) else QueryPlan.model_validate(plan)
        if not plan.sql:
            return {**data, "plan": plan}
        given = data.get("sql")
        if given is not None and str(given).strip() != plan.sql.strip():
            raise ValueError("the correction carries two different SQL statements (one in its plan); send one")
        return {**data, "sql": plan.sql, "plan": plan.model_copy(update={"sql": None}) if plan.metrics else None}

    @model_validator(mode="after")
    def _one_thing(self) -> Correction:
        if self.sql is None and self.plan is None:
            raise ValueError("a correction is corrected SQL or a corrected plan; this one has neither")
        if self.sql is not None and not self.sql.strip():
            raise ValueError("the corrected SQL is empty")
        if self.plan is not None and not self.plan.metrics:
            raise ValueError("a corrected plan names at least one metric (or send the corrected SQL instead)")
        return self

    @property
    def kind(self) -> Literal["plan", "sql", "both"]:
        """``plan``, ``sql``, or ``both`` (a plan and a SQL that must return the same result)."""
        if self.plan is None:
            return "sql"
        return "both" if self.sql is not None else "plan"

    @classmethod
    def coerce(cls, value: Correction | QueryPlan | dict[str, Any] | str | None) -> Correction | None:
        """A correction from what callers pass: SQL text, plan JSON text, a plan dict or a :class:`QueryPlan`.

        >>> Correction.coerce("SELECT 1").sql
        'SELECT 1'
        >>> Correction.coerce('{"metrics": ["total_streaming_hours"]}').plan.metrics
        ('total_streaming_hours',)
        >>> Correction.coerce({"plan": {"metrics": ["total_streaming_hours"]}, "sql": "SELECT 1"}).kind
        'both'
        >>> Correction.coerce(None) is None
        True
        """
        if value is None or isinstance(value, Correction):
            return value
        if isinstance(value, QueryPlan):
            return cls(plan=value)
        try:
            if isinstance(value, dict):
                if "plan" in value:  # a correction's own shape: {"plan": {...}, "sql": "..."}
                    return cls.model_validate(value)
                return cls(plan=QueryPlan.model_validate(value))
            if isinstance(value, str):
                text = value.strip()
                if text.startswith("{"):
                    try:
                        data = json.loads(text)
                    except ValueError:
                        raise AskerError("The correction looks like a JSON plan but is not valid JSON.") from None
                    return cls(plan=QueryPlan.model_validate(data))
                return cls(sql=text)
        except ValueError as err:  # pydantic's ValidationError is a ValueError
            detail = err.errors()[0]["msg"] if isinstance(err, ValidationError) and err.errors() else str(err)
            detail = detail.removeprefix("Value error, ").splitlines()[0]
            raise AskerError(f"The correction is not a valid plan or SQL: {detail}",
                             hint="Pass corrected SQL text, or a plan with metrics, dimensions, filters, time.") from None
        raise AskerError(f"A correction must be SQL text or a plan, got {type(value).__name__}.")


class Vote(Frozen):
    """A stored vote, returned only after it is durable (the store committed it)."""

    #: the event's id in the store
    id: str
    answer_id: str
    rating: Rating
    user: str
    comment: str | None = None
    correction: Correction | None = None
    idempotency_key: str
    created_at: str
    #: the question -> plan pair this vote supports (thumbs up) or proposes (a correction); None when none applies
    nomination_id: str | None = None
    #: that pair's status after the vote: pending | verified | rejected | revoked | none
    nomination_status: str | None = None
    #: the person the vote counts for (votes are deduplicated per principal, not per spelling of a name)
    principal: str | None = None
    #: the identity came from an authenticated channel (a signed Slack request, the chat page's sign-in or a
    #: trusted proxy header); only verified votes count toward the operator's auto-verify rules
    verified: bool = False
    #: this call was a retry of an event already stored under the same idempotency key
    duplicate: bool = False
    #: why nothing was nominated, or what the policy did
    note: str | None = None


class ExampleChanges(Frozen):
    """Verified examples that changed since a revision of the store (for keeping an index in sync)."""

    #: the store's examples revision now
    revision: int
    #: examples verified (or changed) since then: add or replace them
    verified: tuple[Example, ...] = ()
    #: ids of examples no longer verified (revoked, replaced): remove them
    removed: tuple[str, ...] = ()


@runtime_checkable
class FeedbackBackend(Protocol):
    """Where answers, votes and verified examples live (implemented by the ``feedback`` package)."""

    def record_answer(self, answer: Answer) -> None:
        """Store an answer (question, context, plan, SQL, result shape, confidence, model, versions, user)."""
        ...

    def vote(self, answer_id: str, rating: int, *, user: str, comment: str | None = None,
             correction: Correction | None = None, idempotency_key: str | None = None,
             verified: bool = False) -> Vote:
        """Store a thumbs up (+1) or down (-1) on a recorded answer; returns after the write is durable.

        ``verified`` says ``user`` came from an authenticated channel; unverified votes never count toward
        the operator's auto-verify rules (they nominate, and a reviewer decides).
        """
        ...

    def verified_examples(self) -> list[Example]:
        """Every verified question -> plan example."""
        ...

    def examples_revision(self) -> int:
        """A number that changes whenever the set of verified examples changes (cheap to read)."""
        ...

    def example_changes(self, since: int) -> ExampleChanges:
        """The verified examples added, changed or removed after revision ``since``."""
        ...

    def penalty(self, question: str, plan_key: str | None = None) -> float | None:
        """A confidence factor below 1 when a similar question with this plan was voted down, else None."""
        ...


_REQUIRED = ("record_answer", "vote", "verified_examples", "examples_revision", "example_changes", "penalty")


def load_feedback_backend(lore: Lore) -> FeedbackBackend | None:
    """The installed feedback backend for ``lore``, or ``None`` when no plugin provides one.

    Raises :class:`OperatorError` when a plugin is installed but cannot be loaded.
    """
    found = list(entry_points(group=PLUGIN_GROUP, name=FEEDBACK_PLUGIN))
    if not found:
        return None
    if len(found) > 1:
        raise OperatorError(f"Several feedback plugins are installed: {', '.join(ep.value for ep in found)}",
                            hint="Uninstall all but one package declaring a 'feedback' entry point in 'lore.plugins'.")
    ep = found[0]
    try:
        factory = ep.load()
    except (ImportError, AttributeError) as err:
        raise OperatorError(f"The feedback plugin {ep.value} cannot be loaded: {err}",
                            hint="Reinstall LORE (`pip install -e .`) or uninstall the plugin.") from err
    backend = factory(lore)
    missing = [name for name in _REQUIRED if not callable(getattr(backend, name, None))]
    if missing:
        raise OperatorError(f"The feedback plugin {ep.value} lacks {', '.join(missing)}",
                            hint="Upgrade the plugin to the FeedbackBackend protocol in lore/plugins.py.")
    return backend
