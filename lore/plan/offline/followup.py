"""The follow-up pass: a turn that refines the previous answer keeps what it does not change."""

from __future__ import annotations

import re

from lore.plan.catalog import FILLER, find_phrases, tokenize
from lore.plan.offline.dates import compare_previous, period_kind
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Parse
from lore.plan.offline.metrics import reaching_sales
from lore.plan.offline.text import tokens_in
from lore.plan.words import BUSINESS_STEMS, COMPARE_RE, FUNCTION_WORDS, RANKED_CHANGE_RE, RANKED_EITHER_RE
from lore.retrieve.lexical import STOP_WORDS
from lore.semantic.spec import METRIC_TIME
from lore.types import Grounding, PlanOutcome

_FOLLOWUP_START = re.compile(
    r"^(now|and|also|what about|how about|same|only|just|but|instead|then|ok(ay)?|break|split|drill|"
    r"filter|exclud\w*|remove|add|show|make it|compare|for|in|by|per|plus|leave|drop|keep|"
    r"limit|top|bottom|sort|order|and what about|what if)\b", re.I)
_STRONG_FOLLOWUP = re.compile(r"^(now|and|also|what about|how about|same|instead|then|plus|what if|ok(ay)?,? (now|and))\b",
                              re.I)
_REFERS_BACK = re.compile(r"\b(that|this|it|those|these|same|them|instead|too|as well)\b", re.I)
#: a reference back that cannot stand alone ("its customers", "in that quarter", "those stores")
_POINTS_BACK = re.compile(r"\b(?:its|their|those|these|that\s+(?:day|week|month|quarter|year|period|time|span|store|"
                          r"same\s+\w+)|the\s+same\s+(?:period|time|days?|weeks?|months?|quarters?|years?))\b", re.I)
_ADD_METRIC = re.compile(r"\b(also|too|as well|plus|along with|alongside|add)\b", re.I)
_INSTEAD = re.compile(r"\binstead\b", re.I)


_RELATIVE_TERMS = re.compile(r"\b(?:in\s+)?(?:%|percent(?:age)?|pct|relative|absolute|proportional)(?:\s+(?:terms|change))?\b|"
                             r"%(?:\s+terms)?", re.I)


def detect_followup(p: Parse, env: Env) -> None:
    """A turn refines the previous answer when it says so, or when it names no metric and nothing unknown."""
    if p.previous is None or p.previous.rows_of is not None and not p.draft.metrics and p.draft.rows_of is None:
        return
    tokens, d = p.tokens, p.draft
    if not d.metrics and (p.previous.compare is not None or p.previous.time is not None):
        ranked = False
        for pattern in (RANKED_CHANGE_RE, RANKED_EITHER_RE):  # "which one grew the most?": the previous answer's
            for m in pattern.finditer(p.question):  # change, between its two periods or from the period before
                p.use([i for i in tokens_in(tokens, m.span()) if i not in p.used], "compare")
                ranked = True
        # "... in % terms?", and after a ranking by the change "and in % terms?": by the percent change
        ranked = ranked or any(o.ref.endswith(("_change", "_change_pct")) for o in p.previous.order_by)
        for m in _RELATIVE_TERMS.finditer(p.question) if ranked else ():
            p.use([i for i in tokens_in(tokens, m.span()) if i not in p.used], "compare")
    cue = bool(_FOLLOWUP_START.search(p.question)) and len(tokens) <= 12
    back = bool(_REFERS_BACK.search(p.question))
    if d.metrics or d.rows_of is not None:
        p.followup = bool(_STRONG_FOLLOWUP.search(p.question)) and len(tokens) <= 12 or (back and len(tokens) <= 10) \
            or (bool(_STRONG_FOLLOWUP.search(p.question)) and bool(_POINTS_BACK.search(p.question))
                and len(tokens) <= 20)  # "and how many of its customers ... in that quarter?"
        return
    value_tokens = set().union(*(tokens_in(tokens, v.span) for v in p.accepted)) if p.accepted else set()
    unexplained = [i for i, t in enumerate(tokens) if i not in p.used and i not in value_tokens
                   and t.stem not in FILLER and t.stem not in FUNCTION_WORDS]
    p.followup = cue or back or not unexplained


def merge_followup(p: Parse, env: Env) -> None:
    """Refine the previous plan with what this turn grounded (or ask when it names a metric LORE lacks)."""
    if not p.followup or p.previous is None:
        return
    d, lex, prev = p.draft, env.lex, p.previous
    if not d.metrics:
        _the_ones(p, env)
    if not d.metrics:
        unknown = _unknown_request(p, env)
        if unknown is not None:
            p.settle(unknown)
            return
    new_metrics = list(d.metrics)
    if new_metrics:
        metrics = list(prev.metrics) + [m for m in new_metrics if m not in prev.metrics] \
            if _ADD_METRIC.search(p.question) else new_metrics
    else:
        metrics = list(prev.metrics)
        inherited = [g.score for g in prev.groundings if g.kind == "metric"]
        d.signals["metric_match"] = min(inherited, default=0.9)
    adhoc = {a.name for a in prev.adhoc}
    d.adhoc = [a for a in prev.adhoc if a.name in metrics] + [a for a in d.adhoc if a.name not in adhoc]
    if d.rows_of is None and prev.rows_of is not None and not new_metrics:
        d.rows_of = prev.rows_of
    facts = lex.facts_of([m for m in metrics if m in lex.layer.metrics]) or ([d.rows_of] if d.rows_of else [])
    dims: list[str] = []
    new_dims = [_previous_breakdown(x, prev.dimensions, facts, env) for x in d.dimensions]
    d.dimensions = new_dims
    if new_dims and _INSTEAD.search(p.question):
        dims = new_dims
    else:
        for x in list(prev.dimensions) + new_dims:
            if x.startswith(METRIC_TIME) and any(y.startswith(METRIC_TIME) and y != x for y in new_dims) and x not in new_dims:
                continue  # a new grain replaces the old one
            if x not in dims:
                dims.append(x)
    dropped = [x for x in dims if x not in new_dims and not lex.reachable(facts, x)]
    if dropped and len(new_metrics) == 1 and metrics == new_metrics:
        # "top 3 products by units → and by sales?": the sales that reach the products, not the orders' totals
        fit = reaching_sales(env, new_metrics[0], [x for x in dims if not x.startswith(METRIC_TIME)]
                             + [f.ref for f in prev.filters if not f.ref.startswith(METRIC_TIME)])
        if fit is not None:
            d.notes.append(f"{lex.metric_label(new_metrics[0])} can't be broken down as before: used "
                           f"{lex.metric_label(fit)}, the sales that can.")
            d.groundings = [g.model_copy(update={"ref": fit}) if g.kind == "metric" and g.ref == new_metrics[0] else g
                            for g in d.groundings]
            metrics = new_metrics = [fit]
            d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.75)
            facts = lex.facts_of(metrics)
            dropped = [x for x in dims if x not in new_dims and not lex.reachable(facts, x)]
    if not new_dims and any(x for x in dropped if not x.startswith(METRIC_TIME)):
        # the answer no longer has the rows the previous one had, and none named instead: said, never at high
        # confidence
        d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.7)
    dims = [x for x in dims if x not in dropped]
    filters = [f for f in prev.filters if lex.reachable(facts, f.ref)]
    dropped += [f.describe() for f in prev.filters if f not in filters]
    if dropped:
        d.notes.append("Dropped from the previous question (not available for "
                       + ", ".join(lex.metric_label(m) for m in metrics if m in lex.layer.metrics) + "): "
                       + ", ".join(dropped) + ".")
    d.metrics = metrics
    d.dimensions = dims
    d.inherited_filters = list(filters)
    d.filters = filters + d.filters
    if p.latest_offset is not None and compare_previous(p, p.latest_offset, None):
        pass  # "and vs last year?": the previous period against the same period a year earlier
    elif d.compare is None and len(p.ranges) == 1 and COMPARE_RE.search(p.question) \
            and compare_previous(p, None, p.ranges[0]):
        pass  # "compare that with Q2 2026": the previous period against the one named
    elif d.time is None:
        d.time = prev.time
        if prev.compare is None and d.compare is None and (RANKED_CHANGE_RE.search(p.question)
                                                           or RANKED_EITHER_RE.search(p.question)):
            compare_previous(p, period_kind(prev.time), None)  # "which store grew the most?" after one period
    if not d.order_by and prev.order_by and (not new_dims or not _INSTEAD.search(p.question)):
        d.order_by = list(prev.order_by)
        d.limit = d.limit or prev.limit
        terms = _RELATIVE_TERMS.search(p.question)
        if terms is not None and all(p.used.get(i) == "compare" for i in tokens_in(p.tokens, terms.span())):
            # "and in % terms?" / "and in absolute terms?": the same ranking on the other measure of the change
            relative = not re.search(r"absolute", terms.group(0), re.I)
            d.order_by = [o.model_copy(update={"ref": re.sub(r"_change(?:_pct)?$", "_change_pct" if relative
                                                             else "_change", o.ref)}) for o in d.order_by]
    # a ranking on a metric this turn replaced ranks by the new one ("top 3 by units" -> "and by sales?")
    d.order_by = [o.model_copy(update={"ref": d.metrics[0]}) if o.ref in lex.layer.metrics and o.ref not in d.metrics
                  and d.metrics else o for o in d.order_by]
    _keep_operation(p, new_metrics)
    d.groundings.insert(0, Grounding(kind="context", ref="previous question", phrase="previous question",
                                     source="previous turn"))
    live = d.metrics + d.dimensions + [f.describe() for f in d.filters] + ([d.time.label] if d.time else [])
    for g in prev.groundings:
        if g.kind in ("metric", "dimension", "filter", "time", "grain") and g.ref in live \
                and not any(x.ref == g.ref for x in d.groundings):
            d.groundings.append(g.model_copy(update={"source": f"{g.source}, from the previous question"}))
    d.signals["followup"] = 1.0
    for m in _POINTS_BACK.finditer(p.question):  # "in that quarter", "its customers": the previous answer's
        p.use([i for i in tokens_in(p.tokens, m.span()) if i not in p.used], "context")


def _previous_breakdown(ref: str, previous: tuple[str, ...], facts: list[str], env: Env) -> str:
    """A breakdown this turn names that the metrics cannot reach, read as the previous answer's breakdown whose name
    holds its words ("which category dropped most?" after "units by product category": the product category)."""
    lex = env.lex
    if ref.startswith(METRIC_TIME) or lex.reachable(facts, ref):
        return ref
    words = set(lex.label(ref).lower().split())
    same = [y for y in previous if not y.startswith(METRIC_TIME) and lex.reachable(facts, y)
            and words <= set(lex.label(y).lower().split())]
    return same[0] if len(same) == 1 else ref


def _keep_operation(p: Parse, new_metrics: list[str]) -> None:
    """A follow-up that asks for no operation keeps the previous one where it still applies ("only paid orders"
    after a comparison compares paid orders; "which one grew the most?" ranks the comparison by its change)."""
    d, prev = p.draft, p.previous
    assert prev is not None
    if d.compare or d.share or d.rank_within or d.per or d.running_total or d.threshold or d.rows_of:
        return
    if prev.compare is not None and not p.ranges and not any(x.startswith(METRIC_TIME) for x in d.dimensions):
        d.compare, d.time = prev.compare, prev.time
    elif prev.share is not None and all(x in d.dimensions for x in prev.share.within) and (
            prev.share.whole is None or prev.share.whole in d.metrics):
        d.share = prev.share
    elif prev.rank_within and all(x in d.dimensions for x in prev.rank_within) and d.limit:
        d.rank_within = list(prev.rank_within)
    elif prev.per is not None and not new_metrics:
        d.per = prev.per
    elif prev.running_total and sum(x.startswith(METRIC_TIME) for x in d.dimensions) == 1:
        d.running_total = True
    elif prev.threshold is not None and not new_metrics:
        d.threshold = prev.threshold


def _the_ones(p: Parse, env: Env) -> None:
    """"just the negative ones": "ones" stands for what the previous answer counted ("negative tweets")."""
    prev = p.previous
    ones = [i for i, t in enumerate(p.tokens) if t.text.lower() in ("ones", "one") and i not in p.used]
    if prev is None or not prev.metrics or not ones or prev.metrics[0] not in env.lex.layer.metrics:
        return
    noun = env.lex.metric_label(prev.metrics[0]).split()[-1]
    i = ones[0]
    text = p.question[:p.tokens[i].start] + noun + p.question[p.tokens[i].end:]
    tokens = tokenize(text)
    for m in find_phrases(tokens, env.lex.catalog.metric_index or env.lex.catalog.metric_entries):
        if m.start <= i < m.end and m.ref != prev.metrics[0]:
            p.draft.metrics.append(m.ref)
            p.draft.groundings.append(Grounding(kind="metric", ref=m.ref, phrase=p.words(m.start, i + 1),
                                                source=f"{m.source} (“{p.tokens[i].text}” read as “{noun}”)",
                                                score=m.score * 0.95))
            p.use(range(m.start, i + 1), "metric")
            p.draft.signals["metric_match"] = m.score * 0.95
            return


def _unknown_request(p: Parse, env: Env) -> PlanOutcome | None:
    """"and what was the churn for those?": an unknown business word in a follow-up asks for a metric LORE lacks."""
    tokens = p.tokens
    value_tokens = set().union(*(tokens_in(tokens, v.span) for v in p.accepted)) if p.accepted else set()
    unknown = [t for i, t in enumerate(tokens) if i not in p.used and i not in value_tokens
               and t.stem not in FILLER and t.stem not in FUNCTION_WORDS and t.text.lower() not in STOP_WORDS
               and t.stem not in env.lex.catalog.vocabulary and t.stem in BUSINESS_STEMS]
    if not unknown:
        return None
    suggestions: list[str] = []
    if env.searcher is not None:
        suggestions = [h.ref for h in env.searcher.search(unknown[0].text, k=3, kinds=["metric"]).of_kind("metric")]
    return PlanOutcome(status="clarify", message=f"I don't have a metric for “{unknown[0].text}”. Did you mean one of these?",
                       suggestions=tuple(suggestions or env.lex.starter_metrics()), signals={"metric_match": 0.0})
