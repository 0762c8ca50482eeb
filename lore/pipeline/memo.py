"""The two caches around the stages (see :mod:`lore.cache` for the caches themselves).

- :func:`planned`: the plan memo around retrieve and plan. The same words, in the same context, on the same
  data, layer, day, planner and verified examples skip both stages.
- :func:`computed`: the answer cache around compile, guard, execute and chart. The same plan on the same data
  and layer, in the same access scope, skips all four.

With the cache off (``LORE_ANSWER_CACHE=0``) both call the stages they wrap and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from lore.cache import CachedPlan, CachedResult, answer_key, plan_key
from lore.pipeline.stages import Computed, Planned, Timer, chart_request, draw
from lore.types import QueryPlan, Question

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

F = TypeVar("F")


def planned(lore: Lore, q: Question, timer: Timer, stages: Callable[[Lore, Question, Timer], Planned]) -> Planned:
    """``stages(lore, q, timer)`` (retrieve and plan), or what they made of this question before."""
    key = _plan_key(lore, q)
    if key is not None:
        with timer("retrieve"):  # the lookup stands in for retrieval (and planning) when it hits
            hit = lore.plan_cache.get(key)  # type: ignore[union-attr]
        if hit is not None:
            return Planned(retrieval=hit.retrieval, outcome=hit.outcome, memo_hit=True)
    made = stages(lore, q, timer)
    _store_plan(lore, key, made)
    return made


def remember(lore: Lore, q: Question, made: Planned) -> None:
    """Remember a plan made again for ``q`` (after its first plan failed to run)."""
    _store_plan(lore, _plan_key(lore, q), made)


def computed(lore: Lore, plan: QueryPlan, timer: Timer,
             stages: Callable[[Lore, QueryPlan, Timer], Computed | F]) -> Computed | F:
    """``stages(lore, plan, timer)`` (compile, guard, execute, chart), or this plan's result computed before.

    A cached result is drawn again when this plan asks for another chart (other labels, title or order).
    """
    cache = lore.answer_cache
    if cache is None:
        return stages(lore, plan, timer)
    with timer("cache"):
        key = answer_cache_key(lore, plan)
        hit = cache.get(key)
        if hit is not None:
            request = chart_request(lore, plan, hit.result)
            chart = hit.chart() if request == hit.request else draw(hit.result, request)
            return Computed(plan=plan, compiled=hit.compiled, guarded=hit.guarded, result=hit.result, chart=chart,
                            cache_hit=True)
    done = stages(lore, plan, timer)
    if isinstance(done, Computed):
        cache.put(key, CachedResult(compiled=done.compiled, guarded=done.guarded, result=done.result,
                                    request=chart_request(lore, plan, done.result),
                                    chart_json=done.chart.model_dump_json() if done.chart is not None else None))
    return done


def _plan_key(lore: Lore, q: Question) -> str | None:
    """The question's plan-memo key (None: the cache is off)."""
    if lore.plan_cache is None or not q.text.strip():
        return None
    return plan_cache_key(lore, q.text, q.previous)


def plan_cache_key(lore: Lore, question: str, previous: QueryPlan | None) -> str:
    """The plan memo's key of ``question`` now (its words, the previous plan, data, layer, today, planner, examples
    and the view's scope)."""
    settings = lore.settings
    key = plan_key(question, previous, data=lore.engine.data_version(), layer=lore.layer.version,
                   today=lore.today, planner=f"{settings.model}|{settings.planner}", examples=lore.examples.revision())
    return key if lore.scope is None else f"{key}|{lore.scope.id}"


def answer_cache_key(lore: Lore, plan: QueryPlan) -> str:
    """The answer cache's key of ``plan`` now: its normalised plan, the data and layer versions, today, the limits
    and the view's scope."""
    settings = lore.settings
    return answer_key(plan.key(), data=lore.engine.data_version(), layer=lore.layer.version,
                      today=lore.today, limits=(settings.default_limit, settings.max_rows),
                      scope=lore.scope.id if lore.scope is not None else None)


def semantic_cache_key(lore: Lore, sql: str) -> str:
    """The answer cache's key of a semantic query's result (``/v1/data``, ``lore sql --run``): its compiled SQL, the
    data and layer versions, today, the limits and the view's scope (never equal to a plan's key)."""
    settings = lore.settings
    return answer_key(f"sql\x1f{sql}", data=lore.engine.data_version(), layer=lore.layer.version,
                      today=lore.today, limits=(settings.default_limit, settings.max_rows),
                      scope=lore.scope.id if lore.scope is not None else None)


def _store_plan(lore: Lore, key: str | None, made: Planned) -> None:
    """Remember a plan (only a plan: a clarification or refusal is asked again, a model may do better next time)."""
    cache = lore.plan_cache
    if key is None or cache is None or made.outcome.status != "plan":
        return
    cache.put(key, CachedPlan(outcome=made.outcome, retrieval=made.retrieval))
