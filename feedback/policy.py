"""The operator's feedback policy: who reviews, whose votes verify, how much a thumbs down weighs.

Read from ``feedback.yaml`` in the project folder, or from a ``feedback:``
section of ``lore.yaml`` (not both)::

    reviewers: [ana, ben]        # who may approve, reject and revoke (empty: anyone running `lore feedback review`)
    trusted_users: [ana]         # their thumbs up or correction is verified at once (after the SQL guard)
    auto_verify_min_users: 3     # this many distinct users' thumbs up verify a pair (after the guard),
                                 # unless someone voted it down; at least 2, absent by default
    penalty: 0.6                 # the confidence factor for questions like one voted down

By default nothing is verified without a reviewer: a thumbs up only nominates.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lore.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lore.project import Project

POLICY_FILE = "feedback.yaml"


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

    def may_review(self, reviewer: str) -> bool:
        """Whether ``reviewer`` may approve, reject or revoke.

        >>> FeedbackPolicy().may_review("anyone"), FeedbackPolicy(reviewers=("ana",)).may_review("bob")
        (True, False)
        """
        return not self.reviewers or reviewer in self.reviewers

    def is_trusted(self, user: str) -> bool:
        """
        >>> FeedbackPolicy(trusted_users=("ana",)).is_trusted("ana")
        True
        """
        return user in self.trusted_users

    def auto_rule(self, up_users: tuple[str, ...], down_users: tuple[str, ...]) -> str | None:
        """The rule that verifies a pair without a reviewer, or None (the pair waits for review).

        >>> p = FeedbackPolicy(trusted_users=("ana",), auto_verify_min_users=3)
        >>> p.auto_rule(("ana",), ()), p.auto_rule(("x", "y"), ()), p.auto_rule(("x", "y", "z"), ())
        ('trusted user ana', None, '3 distinct users')
        >>> p.auto_rule(("x", "y", "z"), ("w",)) is None
        True
        """
        if down_users:
            return None
        trusted = [u for u in up_users if self.is_trusted(u)]
        if trusted:
            return f"trusted user {trusted[0]}"
        if self.auto_verify_min_users is not None and len(set(up_users)) >= self.auto_verify_min_users:
            return f"{len(set(up_users))} distinct users"
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
