"""Which planner a view of a project answers with, and what the LLM planner is given.

- ``--model offline``: the offline planner alone;
- ``LORE_PLANNER=llm``: the LLM planner alone;
- otherwise the cascade: the offline planner first, the model (for a local model: its server, started then)
  on the first question the offline planner cannot settle.

In an access scope the chosen planner is wrapped by :class:`~lore.access.ScopedPlanner`, which tells the asker
what a question names outside their access; a scope that sees no metric gets :class:`~lore.access.NoAccessPlanner`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from lore.errors import AskerError, EngineError, GuardError
from lore.types import QueryPlan

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.plan.cascade import Planner
    from lore.plan.llm import LLMPlanner


def build_planner(lore: Lore) -> Planner:
    """The planner ``lore`` answers with (see the module docstring)."""
    if lore.scope is not None and not lore.layer.metrics:
        from lore.access import NoAccessPlanner  # lazy: loaded on the first access check

        return NoAccessPlanner(lore.scope.rules)
    from lore.plan.offline import Context, OfflinePlanner  # lazy: the offline planner's vocabulary is large

    offline = OfflinePlanner(Context(catalog=lore.catalog, searcher=lore.retriever, today=lore.today,
                                     values=lore.values, bounds=lore.parts.time_bounds))
    planner: Planner
    if lore.settings.model == "offline":
        planner = offline
    elif lore.settings.planner == "llm":
        planner = lore.llm_planner
    else:
        from lore.plan.cascade import CascadePlanner, policy_for  # lazy: only with a model

        planner = CascadePlanner(offline, lambda: lore.llm_planner, **policy_for(lore.settings.model))
    if lore.scope is None:
        return planner
    from lore.access import ScopedPlanner  # lazy: loaded on the first access check

    return ScopedPlanner(planner, lore)


def build_llm_planner(lore: Lore) -> LLMPlanner:
    """The LLM planner of ``lore``: its model, catalog, retriever, schema and values, checking each plan with
    :func:`check_plan` before it is answered."""
    from lore.plan.llm import LLMPlanner  # lazy: only with a model

    settings = lore.settings
    return LLMPlanner(lore.catalog, lore.retriever, lore.model.chat, lore.llm_log, lambda plan: check_plan(lore, plan),
                      today=lore.today, max_retries=settings.llm_max_retries, schema=lore.schema,
                      allow_sql=settings.llm_free_sql, allow_rows=settings.llm_allow_rows,
                      sample_rows=lambda table: sample_rows(lore, table), values=lore.values)


def check_plan(lore: Lore, plan: QueryPlan) -> str | None:
    """Compile a plan, guard its SQL and let the engine bind it (no rows read): None if it would run, else the error."""
    try:
        guarded = lore.guard(lore.compile_plan(plan).sql)
        probe = exp.select("*").from_(sqlglot.parse_one(guarded.sql, read=lore.dialect).subquery("q")).limit(0)
        lore.engine.run(lore.guard(probe.sql(dialect=lore.dialect)).sql, timeout_s=lore.settings.query_timeout_s,
                        max_rows=1)
    except (AskerError, GuardError, EngineError) as err:
        return str(err)
    return None


def sample_rows(lore: Lore, table: str) -> list[tuple]:
    """A few rows of an allow-listed table (sent to the model only when llm_allow_rows is set)."""
    sql = exp.select("*").from_(exp.to_table(table)).limit(3).sql(dialect=lore.dialect)
    return [tuple(r) for r in lore.run_sql(sql).rows]
