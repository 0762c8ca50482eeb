"""The whole error tree of LORE, grouped by who must act.

Every error LORE raises on purpose is a :class:`LoreError`. Adapters (CLI,
Streamlit, Slack) catch the base class and show ``str(err)``; the message
always says what to do next.

- :class:`OperatorError`: bad configuration, missing file or key. The message names the fix.
  :class:`ModelError` (and :class:`ModelTimeout`) when the configured chat model cannot be used.
- :class:`SemanticLayerError`: the metric owner's definitions have issues, listed all at once.
- :class:`AskerError`: the question or query names something unknown; offers the closest valid names.
- :class:`GuardError`: a SQL statement was refused; says why.
- :class:`EngineError`: the query failed or timed out in the engine; carries the SQL.
- :class:`QuestionTimeout`: the whole question ran out of its time budget; names the stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from lore.semantic.issues import Issue


class LoreError(Exception):
    """Base of every error LORE raises on purpose."""

    #: short machine-readable code, stable across versions
    code: str = "lore_error"
    #: who must act: operator | metric_owner | asker | guard | engine
    audience: str = "operator"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n{hint}")


# --- operator ---------------------------------------------------------------
class OperatorError(LoreError):
    """Configuration or environment problem the person running LORE must fix."""

    code = "operator"
    audience = "operator"


class ProjectNotFound(OperatorError):
    code = "project_not_found"


class ConfigError(OperatorError):
    code = "config_error"


class DbtProjectError(OperatorError):
    """The dbt project cannot be read or translated: every problem at once, each with its file and line."""

    code = "dbt_project"

    def __init__(self, problems: Sequence[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        lines = [f"The dbt project has {len(self.problems)} problem(s); nothing was written:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines), hint=hint or "Fix them in the dbt YAML (`dbt parse` and `dbt sl validate` "
                                                        "report most of them too), then run `lore import dbt` again.")


class ModelError(OperatorError):
    """The chat model could not be used: missing key, unreachable server, refused request, a timeout."""

    code = "model_error"


class ModelTimeout(ModelError):
    code = "model_timeout"


class LocalModelFailed(ModelError):
    """The local model's process ended (crashed, was killed, or could not load its file): how, its log, the fix."""

    code = "local_model_failed"

    def __init__(self, message: str, *, hint: str | None = None, returncode: int | None = None) -> None:
        #: the process's return code (negative: the signal that killed it)
        self.returncode = returncode
        super().__init__(message, hint=hint)


# --- metric owner -----------------------------------------------------------
class SemanticLayerError(LoreError):
    """The semantic layer has issues; all of them are listed at once."""

    code = "semantic_layer"
    audience = "metric_owner"

    def __init__(self, issues: Sequence[Issue], *, hint: str | None = None) -> None:
        self.issues = list(issues)
        lines = [f"The semantic layer has {len(self.issues)} issue(s):"]
        lines += [f"  - {issue.render()}" for issue in self.issues]
        super().__init__("\n".join(lines), hint=hint or "Fix them and run `lore semantic validate`.")


# --- asker ------------------------------------------------------------------
class AskerError(LoreError):
    """The request names something the semantic layer does not have, or cannot answer."""

    code = "asker"
    audience = "asker"

    def __init__(self, message: str, *, suggestions: Sequence[str] = (), hint: str | None = None) -> None:
        self.suggestions = list(suggestions)
        if self.suggestions and hint is None:
            hint = "Did you mean: " + ", ".join(self.suggestions) + "?"
        super().__init__(message, hint=hint)


class UnknownReference(AskerError):
    code = "unknown_reference"


class CompileError(AskerError):
    """A semantic query is well-formed but cannot be compiled safely (fan-out, ambiguity, unreachable)."""

    code = "compile_error"


class FilterError(AskerError):
    code = "filter_error"


class BadInput(AskerError):
    """A call got a value of the wrong type (None, bytes, a number where text belongs); says what to pass."""

    code = "bad_input"


# --- guard ------------------------------------------------------------------
class GuardError(LoreError):
    """A SQL statement was refused by the allow-list guard."""

    code = "guard_refused"
    audience = "guard"

    def __init__(self, reason: str, *, sql: str | None = None, rule: str = "guard") -> None:
        self.reason = reason
        self.rule = rule
        self.sql = sql
        super().__init__(f"Refused by the SQL guard ({rule}): {reason}")


# --- engine -----------------------------------------------------------------
class EngineError(LoreError):
    """The engine failed to run a query that passed the guard."""

    code = "engine_error"
    audience = "engine"

    def __init__(self, message: str, *, sql: str | None = None, hint: str | None = None) -> None:
        self.sql = sql
        super().__init__(message, hint=hint)


class QueryTimeout(EngineError):
    code = "query_timeout"


class ResultTooLarge(EngineError):
    """A result outgrew the byte cap (LORE_MAX_RESULT_MB)."""

    code = "result_too_large"


# --- limits -----------------------------------------------------------------
class QuestionTimeout(LoreError):
    """A question used up its time (LORE_QUESTION_BUDGET_S) before it was answered; names the stage it was in.

    The asker can ask a narrower question; the operator can raise the budget.
    """

    code = "question_timeout"
    audience = "operator"

    def __init__(self, *, stage: str, budget_s: float) -> None:
        self.stage = stage
        self.budget_s = budget_s
        super().__init__(f"This question took longer than the {budget_s:g} s LORE gives one question: it was stopped "
                         f"in the {stage} stage.",
                         hint="Ask a narrower question (one metric, a few filters, a period), or ask the operator to "
                              "raise LORE_QUESTION_BUDGET_S.")
