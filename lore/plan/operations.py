"""The analysis operations in the LLM planner's reply: the same typed operations the offline planner fills.

A model never writes SQL for a share, a comparison of two periods, a top N within groups, a rate per entity, a
running total or a threshold count: it fills these fields of its JSON reply, each restricted by the schema to the
names offered for the question, and :func:`read_operations` checks them and turns them into the plan's typed
operations (:class:`~lore.types.Share`, :class:`~lore.types.Compare`, ``rank_within``,
:class:`~lore.types.PerEntity`, ``running_total``, :class:`~lore.types.Threshold`), which the compiler renders
from the semantic layer in every dialect.

Every field is in the schema and nullable (OpenAI's strict mode requires every property): a plain plan answers
``null``, ``[]`` or ``false``; a reply that leaves them out means the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lore.plan.timeparse import TimeParse, period_label, shifted
from lore.semantic.spec import GRAINS, METRIC_TIME
from lore.types import Compare, Filter, PerEntity, QueryPlan, Share, Threshold, TimeWindow

#: the comparison operators of a threshold
THRESHOLD_OPS: tuple[str, ...] = (">", ">=", "<", "<=", "=", "!=")
#: the columns a comparison adds per metric, which a ranking may order by ("which store grew most")
CHANGE_SUFFIXES: tuple[str, ...] = ("_change", "_change_pct")


class Rejection(Exception):
    """An operation failed a check; the planner sends ``message`` and ``alternatives`` back to the model."""

    def __init__(self, message: str, alternatives: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.alternatives = list(alternatives)


class PeriodReply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    start_date: str | None = None
    end_date: str | None = None


class ShareReply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    within: list[str] = Field(default_factory=list)
    whole_metric: str | None = None
    #: the segments the question asks about ("what % came from online orders"): shown after the whole is taken
    show_only: list[Any] = Field(default_factory=list)


class PerEntityReply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    entity: str
    grain: str | None = None
    stat: str = "avg"


class ThresholdReply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    entity: str
    metric: str
    operator: str = ">"
    value: float


class OperationsReply(BaseModel):
    """The operation fields of a plan reply (mixed into :class:`~lore.plan.llm.PlanReply`)."""

    model_config = ConfigDict(extra="ignore")

    compare_with: PeriodReply | None = None
    share: ShareReply | None = None
    top_n_within: list[str] = Field(default_factory=list)
    per_entity: PerEntityReply | None = None
    running_total: bool = False
    threshold: ThresholdReply | None = None


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema that also accepts null (strict mode's way to make a field optional)."""
    return {"anyOf": [schema, {"type": "null"}]}


def _object(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def operations_schema(metrics: Sequence[str], dimensions: Sequence[str], entities: Sequence[str],
                      filter_item: dict[str, Any], *, compared: bool = True, starts: Sequence[str] = (),
                      ends: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON-schema properties of the operation fields, names restricted to the choices (strict-mode compatible);
    ``compared`` False (the question names one period at most) leaves ``compare_with`` null only; ``starts`` and
    ``ends`` restrict the compared period's dates (the tight schema of small models).

    >>> s = operations_schema(["revenue"], ["stores.city"], ["customers.customer_id"], {"type": "object"})
    >>> sorted(s)
    ['compare_with', 'per_entity', 'running_total', 'share', 'threshold', 'top_n_within']
    >>> s["threshold"]["anyOf"][0]["properties"]["entity"]["enum"]
    ['customers.customer_id']
    """
    metric_enum = {"type": "string", "enum": list(metrics) or ["none"]}
    dims = {"type": "array", "items": {"type": "string", "enum": list(dimensions) or ["none"]}}
    entity_enum = {"type": "string", "enum": list(entities) or ["none"]}
    start = {"type": "string", "enum": list(starts)} if starts else {"type": "string"}
    end = {"type": "string", "enum": list(ends)} if ends else {"type": "string"}
    return {
        "compare_with": nullable(_object({"start_date": start, "end_date": end})) if compared else {"type": "null"},
        "share": nullable(_object({"within": dims, "whole_metric": nullable(metric_enum),
                                    "show_only": {"type": "array", "items": filter_item}})),
        "top_n_within": dims,
        "per_entity": nullable(_object({"entity": entity_enum,
                                         "grain": nullable({"type": "string", "enum": list(GRAINS)}),
                                         "stat": {"type": "string", "enum": ["avg", "max", "min"]}})),
        "running_total": {"type": "boolean"},
        "threshold": nullable(_object({"entity": entity_enum, "metric": metric_enum,
                                        "operator": {"type": "string", "enum": list(THRESHOLD_OPS)},
                                        "value": {"type": "number"}})),
    }


def offset_periods(tp: TimeParse) -> list[tuple[date, date]]:
    """The earlier periods a question's offset words name ("year over year" after "Q3 2026": Q3 2025), for the
    prompt's time hints and the dates a compared period may take.

    >>> from lore.plan.timeparse import parse_time
    >>> offset_periods(parse_time("revenue in Q3 2026 year over year", date(2026, 11, 1)))
    [(datetime.date(2025, 7, 1), datetime.date(2025, 9, 30))]
    """
    out: list[tuple[date, date]] = []
    for off in tp.offsets:
        if off.names is not None and off.names.start and off.names.end:
            out.append((off.names.start, off.names.end))
        for r in tp.ranges:
            if r.start and r.end and not (off.span[0] <= r.span[0] < off.span[1]):
                out.append(shifted(r.start, r.end, off.unit))
    return list(dict.fromkeys(out))


def read_operations(reply: OperationsReply, plan: QueryPlan, *, metrics: Sequence[str], entities: Sequence[str],
                    compared: bool, iso: Callable[[str | None, str], date | None],
                    ground: Callable[[list[dict[str, Any]]], list[Filter]]) -> QueryPlan:
    """``plan`` with the reply's operations checked and set; raises :class:`Rejection` with what is wrong.

    ``compared``: the question (or the conversation) names two periods or an offset ("vs", "YoY"); ``iso`` parses a
    reply date; ``ground`` checks the share's shown segments as filters (their values must be real and named).
    """
    update: dict[str, Any] = {}
    dims = list(plan.dimensions)
    if reply.compare_with is not None:
        update.update(_compare(reply.compare_with, plan, compared, iso))
    if reply.share is not None:
        update["share"] = _share(reply.share, plan, metrics, ground)
    if reply.top_n_within:
        within = list(dict.fromkeys(reply.top_n_within))
        bad = [d for d in within if d not in dims]
        if bad:
            raise Rejection(f"top_n_within {', '.join(bad)} must also be in dimensions.")
        if len(within) >= len(dims) or plan.limit is None or not plan.order_by:
            raise Rejection("top_n_within needs a limit, an order_by and a dimension to rank besides the groups "
                            "(\"top 3 products in each store\": dimensions product and store, top_n_within store).")
        update["rank_within"] = tuple(within)
    if reply.per_entity is not None:
        if reply.per_entity.entity not in entities:
            raise Rejection(f"per_entity {reply.per_entity.entity} is not an entity of these metrics.",
                            [f"entities {', '.join(entities)}" if entities else "per_entity: null"])
        if reply.per_entity.stat not in ("avg", "max", "min"):
            raise Rejection(f"per_entity stat {reply.per_entity.stat!r} is not one of avg, max, min.")
        update["per"] = PerEntity(entity=reply.per_entity.entity, grain=reply.per_entity.grain or None,
                                  stat=reply.per_entity.stat)  # type: ignore[arg-type]
    if reply.running_total:
        times = [d for d in dims if d.startswith(METRIC_TIME)]
        if len(times) != 1:
            raise Rejection("running_total needs exactly one metric_time dimension (\"cumulative revenue by month\").",
                            [f"dimensions: add {METRIC_TIME}:month (or day, week, quarter, year)"])
        update["running_total"] = True
    if reply.threshold is not None:
        update.update(_threshold(reply.threshold, plan, metrics, entities))
    chosen = [k for k in ("compare", "share", "rank_within", "per", "running_total", "threshold") if update.get(k)]
    if len(chosen) > 1 and set(chosen) != {"compare", "rank_within"}:
        raise Rejection(f"use one operation at a time (got {', '.join(chosen)}).")
    changed = [o.ref for o in plan.order_by if o.ref.endswith(CHANGE_SUFFIXES)]
    if changed and "compare" not in update:
        raise Rejection(f"order_by {changed[0]} needs compare_with (the change exists only between two periods).")
    return plan.model_copy(update=update) if update else plan


def _compare(reply: PeriodReply, plan: QueryPlan, compared: bool,
             iso: Callable[[str | None, str], date | None]) -> dict[str, Any]:
    if not compared:
        raise Rejection("the question does not compare two periods: use compare_with null.")
    start, end = iso(reply.start_date, "compare_with.start_date"), iso(reply.end_date, "compare_with.end_date")
    if plan.time is None or plan.time.start is None or plan.time.end is None or start is None or end is None:
        raise Rejection("compare_with needs two bounded periods: start_date and end_date for the first, "
                        "compare_with's for the second.")
    first = TimeWindow(start=plan.time.start, end=plan.time.end,
                       label=plan.time.label or period_label(plan.time.start, plan.time.end))
    second = TimeWindow(start=start, end=end, label=period_label(start, end))
    try:
        compare = Compare(periods=(first, second))
    except ValueError as err:
        raise Rejection(f"compare_with: {err}.") from None
    early, late = compare.ordered()
    span = TimeWindow(start=early.start, end=max(late.end, early.end),  # type: ignore[type-var]
                      label=f"{early.label} and {late.label}")
    return {"compare": compare, "time": span}


def _share(reply: ShareReply, plan: QueryPlan, metrics: Sequence[str],
           ground: Callable[[list[dict[str, Any]]], list[Filter]]) -> Share:
    within = list(dict.fromkeys(reply.within))
    bad = [d for d in within if d not in plan.dimensions]
    if bad:
        raise Rejection(f"share.within {', '.join(bad)} must also be in dimensions.")
    whole = reply.whole_metric or None
    if whole is not None:
        if whole not in metrics or whole not in plan.metrics or len(plan.metrics) < 2:
            raise Rejection("share.whole_metric must be the plan's second metric, the whole the first is a part of "
                            "(\"what share of sales was food\": metrics food_sales, sales).")
        return Share(metric=plan.metrics[0], whole=whole)
    keep = ground([s if isinstance(s, dict) else {} for s in reply.show_only]) if reply.show_only else []
    off = [f.ref for f in keep if f.ref not in plan.dimensions]
    if off:
        raise Rejection(f"share.show_only filters on {', '.join(off)}, which must also be in dimensions "
                        "(the whole is taken over every value, then only these are shown).")
    return Share(within=tuple(within), keep=tuple(keep))


def _threshold(reply: ThresholdReply, plan: QueryPlan, metrics: Sequence[str],
               entities: Sequence[str]) -> dict[str, Any]:
    if reply.entity not in entities:
        raise Rejection(f"threshold.entity {reply.entity} is not an entity of these metrics.",
                        [f"entities {', '.join(entities)}" if entities else "threshold: null"])
    if reply.metric not in metrics:
        raise Rejection(f"threshold.metric {reply.metric} is not a listed metric.")
    if reply.operator not in THRESHOLD_OPS:
        raise Rejection(f"threshold.operator must be one of {', '.join(THRESHOLD_OPS)}.")
    op: Literal[">", ">=", "<", "<=", "=", "!="] = reply.operator  # type: ignore[assignment]
    return {"threshold": Threshold(entity=reply.entity, metric=reply.metric, op=op, value=float(reply.value)),
            "metrics": (reply.metric,), "order_by": (), "limit": None}


def operations_to_reply(plan: QueryPlan) -> dict[str, Any]:
    """A plan's operations in the reply format (for examples and the previous turn).

    >>> operations_to_reply(QueryPlan(metrics=("revenue",), running_total=True))["running_total"]
    True
    """
    later = plan.compare.periods[1] if plan.compare is not None else None
    share = None
    if plan.share is not None:
        share = {"within": list(plan.share.within), "whole_metric": plan.share.whole,
                 "show_only": [{"dimension": f.ref, "operator": f.op, "values": [str(v) for v in f.values]}
                               for f in plan.share.keep]}
    return {
        "compare_with": {"start_date": later.start.isoformat(), "end_date": later.end.isoformat()}  # type: ignore[union-attr]
        if later is not None else None,
        "share": share,
        "top_n_within": list(plan.rank_within),
        "per_entity": {"entity": plan.per.entity, "grain": plan.per.grain, "stat": plan.per.stat}
        if plan.per is not None else None,
        "running_total": plan.running_total,
        "threshold": {"entity": plan.threshold.entity, "metric": plan.threshold.metric, "operator": plan.threshold.op,
                      "value": plan.threshold.value} if plan.threshold is not None else None,
    }


__all__ = ["CHANGE_SUFFIXES", "OperationsReply", "Rejection", "nullable", "operations_schema", "operations_to_reply",
           "offset_periods", "read_operations"]
