"""Seed files: questions and the plans that answer them, to be verified as examples (``lore feedback seed``).

A seed file is YAML: a list of examples (or a mapping whose ``examples:`` key holds the list), each with

- ``question``: the words an asker would use;
- ``plan``: a LORE query plan as data (:class:`lore.types.QueryPlan`: ``metrics``, ``dimensions``, ``filters``,
  ``time``, ``order_by``, ``limit``, ...); it names metrics (a seed is never free SQL);
- ``note`` (optional): where it came from, for the people reading the file.

``lore import dbt`` writes one from a project's saved queries (:func:`render_seed_file`); ``lore feedback seed``
reads it (:func:`read_seed_file`) and verifies each example through the feedback store. Reading returns every
problem at once, each with its example's number, instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lore.errors import OperatorError
from lore.types import Frozen, QueryPlan

#: the seed file ``lore import dbt`` writes, relative to the project folder
DBT_SEED_FILE = Path("examples") / "dbt_saved_queries.yaml"


class SeedExample(Frozen):
    """One example of a seed file: a question and the plan that answers it."""

    question: str
    plan: QueryPlan
    note: str | None = None


class SeedEntry(Frozen):
    """An entry of a seed file as read: its example, or why it cannot be one."""

    #: 1-based position in the file
    number: int
    question: str = ""
    example: SeedExample | None = None
    problem: str | None = None


def plan_data(plan: QueryPlan) -> dict[str, Any]:
    """A plan as seed-file data: what it computes, without the planner's bookkeeping.

    >>> plan_data(QueryPlan(metrics=("orders",), dimensions=("metric_time:month",), planner="offline"))
    {'metrics': ['orders'], 'dimensions': ['metric_time:month']}
    """
    return plan.model_dump(mode="json", exclude_defaults=True, exclude={"planner", "notes", "groundings"})


def render_seed_file(examples: Sequence[SeedExample], header: str = "") -> str:
    """The YAML text of a seed file (``header``: comment lines put at its top)."""
    head = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()) if header else ""
    data = []
    for ex in examples:
        item: dict[str, Any] = {"question": ex.question}
        if ex.note:
            item["note"] = ex.note
        item["plan"] = plan_data(ex.plan)
        data.append(item)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=116, default_flow_style=None)
    return head + body


def parse_seed(text: str, source: str = "the seed file") -> list[SeedEntry]:
    """The entries of a seed file's text; raises :class:`OperatorError` only when the file as a whole is unusable.

    >>> [e.problem for e in parse_seed("- {question: orders, plan: {metrics: [orders]}}\\n- {question: x}")]
    [None, "example 2: 'plan' is missing"]
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise OperatorError(f"{source} is not valid YAML: {err}") from None
    if isinstance(data, dict) and set(data) == {"examples"}:
        data = data["examples"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise OperatorError(f"{source} does not hold a list of examples.",
                            hint="Write `- question: ...` items, each with a `plan:` (see docs/semantic-layer.md).")
    return [_entry(i, item) for i, item in enumerate(data, start=1)]


def _entry(number: int, item: Any) -> SeedEntry:
    where = f"example {number}"
    if not isinstance(item, dict):
        return SeedEntry(number=number, problem=f"{where}: not a mapping with question: and plan:")
    question = item.get("question")
    question = " ".join(question.split()) if isinstance(question, str) else ""
    unknown = sorted(set(item) - {"question", "plan", "note"})
    if unknown:
        return SeedEntry(number=number, question=question, problem=f"{where}: unknown key(s) {', '.join(unknown)}")
    if not question:
        return SeedEntry(number=number, problem=f"{where}: 'question' is missing or empty")
    if "plan" not in item:
        return SeedEntry(number=number, question=question, problem=f"{where}: 'plan' is missing")
    try:
        plan = QueryPlan.model_validate(item["plan"])
    except ValidationError as err:
        why = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'plan'}: {e['msg']}" for e in err.errors())
        return SeedEntry(number=number, question=question, problem=f"{where}: the plan is not a LORE plan ({why})")
    if plan.sql is not None or not plan.metrics and plan.rows_of is None:
        return SeedEntry(number=number, question=question,
                         problem=f"{where}: a seeded plan names metrics (or rows_of) and holds no sql")
    note = item.get("note")
    return SeedEntry(number=number, question=question,
                     example=SeedExample(question=question, plan=plan, note=str(note) if note is not None else None))


def read_seed_file(path: Path) -> list[SeedEntry]:
    """The entries of the seed file at ``path`` (see :func:`parse_seed`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise OperatorError(f"Cannot read the seed file {path}: {err}") from None
    return parse_seed(text, str(path))
