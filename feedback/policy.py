"""The operator's feedback policy: who reviews, whose votes verify, how much a thumbs down weighs.

Read from ``feedback.yaml`` in the project folder, or from a ``feedback:`` section of ``lore.yaml`` (not both)::

    reviewers: [ana, ben]        # who may approve, reject and revoke (empty: anyone running `lore feedback review`)
    trusted_users: [ana]         # their verified thumbs up or correction is verified at once (in their scope)
    auto_verify_min_users: 3     # this many distinct verified people's thumbs up verify a pair (in the scope
                                 # they share), unless someone voted it down; at least 2, absent by default
    penalty: 0.6                 # the confidence factor for questions like one voted down

Names are matched as people (principals), not as strings: ``Ana``, `` ana `` and an identity listed under
ana's ``access.users`` entry (``slack:T1:UANA``) are all ana. Only *verified* votes count toward
``trusted_users`` and ``auto_verify_min_users``: the identity came from an authenticated channel (a signed
Slack request, the chat page's sign-in or a trusted proxy header). Names typed on a command line or sent
without sign-in nominate pairs, and a reviewer decides.

By default nothing is verified without a reviewer: a thumbs up only nominates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lore.access import normalize_identity
from lore.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lore.project import Project

POLICY_FILE = "feedback.yaml"

#: identity -> the id of the person it names (``Lore.principal(identity).id``; without a project, the normalised name)
Resolve = Callable[[str], str]


class Voter(BaseModel):
    """One person's latest vote on a pair: who (as a principal and as the name they used), and whether verified."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    principal: str
    name: str
    verified: bool = False


class AutoRule(BaseModel):
    """A policy rule that verifies a pair without a reviewer, and whose scope the pair is checked in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: what the rule says, for notes and the decision's actor (``trusted user ana``, ``3 distinct verified users``)
    text: str
    #: the names of the verified voters the rule rests on: the pair must run in the scope they all share
    voters: tuple[str, ...]


class FeedbackPolicy(BaseModel):
    """What turns a nomination into a verified example, and who may decide."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reviewers: tuple[str, ...] = ()
    trusted_users: tuple[str, ...] = ()
    auto_verify_min_users: int | None = Field(default=None, ge=2)
    penalty: float = Field(default=0.6, gt=0.0, lt=1.0)

    @field_validator("reviewers", "trusted_users", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return value

    def may_review(self, reviewer: str, principal: Resolve = normalize_identity) -> bool:
        """Whether ``reviewer`` may approve, reject or revoke (matched as a person, not as a spelling).

        >>> FeedbackPolicy().may_review("anyone"), FeedbackPolicy(reviewers=("ana",)).may_review("bob")
        (True, False)
        >>> FeedbackPolicy(reviewers=("Ben",)).may_review(" ben ")
        True
        """
        return not self.reviewers or principal(reviewer) in {principal(r) for r in self.reviewers}

    def is_trusted(self, person: str, principal: Resolve = normalize_identity) -> bool:
        """Whether the principal ``person`` is one of the trusted users.

        >>> FeedbackPolicy(trusted_users=("Ana",)).is_trusted("ana")
        True
        """
        return person in {principal(u) for u in self.trusted_users}

    def auto_rule(self, up: Sequence[Voter], down: Sequence[Voter],
                  principal: Resolve = normalize_identity) -> AutoRule | None:
        """The rule that verifies a pair without a reviewer, or None (the pair waits for review).

        Only verified votes count, once per person; any thumbs down sends the pair to a reviewer.

        >>> p = FeedbackPolicy(trusted_users=("ana",), auto_verify_min_users=3)
        >>> v = lambda n, ok=True: Voter(principal=normalize_identity(n), name=n, verified=ok)
        >>> p.auto_rule((v("Ana"),), ()).text, p.auto_rule((v("ana", False),), ()) is None
        ('trusted user Ana', True)
        >>> p.auto_rule((v("x"), v("y")), ()) is None, p.auto_rule((v("x"), v("y"), v("z")), ()).text
        (True, '3 distinct verified users')
        >>> p.auto_rule((v("x"), v("y"), v("z", False)), ()) is None
        True
        >>> p.auto_rule((v("x"), v("y"), v("z")), (v("w", False),)) is None
        True
        """
        if down:
            return None
        verified = [v for v in up if v.verified]
        trusted = [v for v in verified if self.is_trusted(v.principal, principal)]
        if trusted:
            return AutoRule(text=f"trusted user {trusted[0].name}", voters=(trusted[0].name,))
        people = {v.principal: v.name for v in verified}
        if self.auto_verify_min_users is not None and len(people) >= self.auto_verify_min_users:
            return AutoRule(text=f"{len(people)} distinct verified users", voters=tuple(people.values()))
        return None


def load_policy(project: Project) -> FeedbackPolicy:
    """The project's policy (defaults when neither ``feedback.yaml`` nor a ``feedback:`` section exists)."""
    path = project.root / POLICY_FILE
    section = project.config.feedback
    if path.is_file() and section is not None:
        raise ConfigError(f"The feedback policy is set twice: in {path} and in lore.yaml's feedback: section",
                          hint="Keep one of them.")
    if path.is_file():
        return _parse(_read_yaml(path), str(path))
    return _parse(section or {}, "lore.yaml feedback:")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: malformed YAML", hint="Fix the syntax of feedback.yaml.") from None
    except OSError as err:
        raise ConfigError(f"Cannot read {path}: {err}") from None


def _parse(raw: Any, where: str) -> FeedbackPolicy:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of settings")
    try:
        return FeedbackPolicy.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"{where}: {problems}",
                          hint="Valid keys: reviewers, trusted_users, auto_verify_min_users (2 or more), penalty (0..1).") from None
