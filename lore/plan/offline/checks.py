"""Passes that check a plan against the layer: rules the metric owner declared, reach, time axes, and a final
account of every word of the question."""

from __future__ import annotations

import re
from datetime import date, timedelta

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lore.plan.catalog import ARTICLES, FILLER, phrase
from lore.plan.checks import check_outcome
from lore.plan.offline.env import Env
from lore.plan.offline.metrics import (HOW_MANY_NOUN_RE, REVENUE_STEMS, is_plain_currency_sum, link_key,
                                      names_its_rows_after_by, reaching_sales, revenue_like)
from lore.plan.offline.parse import Parse
from lore.plan.offline.rates import entity_counted_by
from lore.plan.offline.text import tokens_in
from lore.plan.words import BUSINESS_STEMS, FUNCTION_WORDS, INTENT_WORDS, KNOWN_WORDS, RANK_ADJECTIVES, WHICH_WORDS
from lore.retrieve.lexical import STOP_WORDS
from lore.semantic.spec import DUPLICATION_INVARIANT, METRIC_TIME, Metric
from lore.plan.timeparse import period_label
from lore.types import Compare, Filter, Grounding, PlanOutcome, TimeWindow

#: the confidence of an answer that left a content word of the question unused stays below this
UNEXPLAINED_CAP = 0.45


def layer_rules(p: Parse, env: Env) -> None:
    """Rules the metric owner set on attributes: naming one value of ``X`` compares by ``X.compare_by``
    ("the pricing test" is compared by its cells)."""
    d, lex = p.draft, env.lex
    for f in list(d.filters):
        col = lex.column(f.ref)
        target = getattr(col, "compare_by", None) if col is not None else None
        if target and f.op == "=" and target not in d.dimensions:
            d.dimensions.append(target)
            d.groundings.append(Grounding(kind="dimension", ref=target, phrase=str(f.values[0]),
                                          source=f"rule of the layer: one {lex.label(f.ref)} is compared by "
                                                 f"{lex.label(target)}"))


def _sales_that_reach(p: Parse, env: Env) -> bool:
    """"top 3 products by sales" where the metric "sales" names sums whole orders, which never reach a product: the
    one revenue-like sum that reaches every breakdown and filter without fan-out (the products' own sales), at a
    medium confidence, said in the answer. Whether it swapped."""
    d, lex = p.draft, env.lex
    if len(d.metrics) != 1 or d.adhoc:
        return False
    name = d.metrics[0]
    grounding = next((g for g in d.groundings if g.kind == "metric" and g.ref == name), None)
    if grounding is None or not set(phrase(grounding.phrase)) & REVENUE_STEMS:
        return False
    refs = [x for x in [*d.dimensions, *(f.ref for f in d.filters)] if not is_metric_time_ref(x)]
    fit = reaching_sales(env, name, refs)
    if fit is None:
        return False
    d.metrics = [fit]
    d.groundings = [g.model_copy(update={"ref": fit, "source": f"{g.source} (the sales that reach the breakdown)"})
                    if g is grounding else g for g in d.groundings]
    d.notes.append(f"{lex.metric_label(name)} can't be broken down by {', '.join(lex.label(r) for r in refs)}: used "
                   f"{lex.metric_label(fit)}, the sales that can.")
    d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.75)
    return True


def check_reach(p: Parse, env: Env) -> None:
    """Every breakdown must be reachable from every metric; a breakdown that fans out needs its pin."""
    d, lex = p.draft, env.lex
    if d.rows_of is not None:
        # a listing's columns come from its rows or what they link to ("the date each one started" may name
        # another node's date): asked back in words, never the compiler's error
        far = [x for x in d.dimensions if not is_metric_time_ref(x) and not lex.reachable([d.rows_of], x.split(":")[0])]
        if far:
            reach = lex.reachable_dims([d.rows_of])
            rows = lex.label(d.rows_of)
            p.settle(PlanOutcome(
                status="clarify",
                message=f"A list of {rows} can't show " + ", ".join(
                    f"{lex.label(x.split(':')[0])} (of {lex.label(x.split('.')[0])})" for x in far)
                        + f": no link leads there from {rows}. It can show: {', '.join(reach[:10])}.",
                suggestions=tuple(reach[:5]), signals={"dimension_reach": 0.0}))
        return
    facts = lex.facts_of(d.base_metrics())
    bad = [x for x in d.dimensions if not lex.reachable(facts, x)]
    if bad and _sales_that_reach(p, env):
        facts = lex.facts_of(d.base_metrics())
        bad = [x for x in d.dimensions if not lex.reachable(facts, x)]
    if bad:
        labels = ", ".join(lex.metric_label(m) for m in d.metrics if m in lex.layer.metrics) or "This metric"
        reach = lex.reachable_dims(facts)
        p.settle(PlanOutcome(
            status="clarify",
            message=f"{labels[:1].upper() + labels[1:]} can't be broken down by "
                    + ", ".join(lex.label(b) for b in bad)
                    + (f". It can be broken down by: {', '.join(reach[:10])}." if reach else
                       ": it has no attributes to break it down by, and no time column."),
            suggestions=tuple(reach[:5]), signals={"dimension_reach": 0.0}))
        return
    invariant = all(lex.layer.metrics[b].agg in DUPLICATION_INVARIANT for b in lex.bases(d.base_metrics()))
    if invariant:
        return
    for ref in d.dimensions:
        node = ref.split(".")[0].split(":")[0]
        if node == METRIC_TIME or not all(node in lex.catalog.fan_reach.get(f, set()) for f in facts):
            continue
        pins = [(c_node.name, col) for c_node in lex.layer.nodes.values() for col in c_node.columns
                if getattr(col, "compare_by", None) == ref]
        for pin_node, col in pins:
            pin_ref = f"{pin_node}.{col.name}"
            if any(f.ref == pin_ref and f.op == "=" for f in d.filters):
                return
        kept = next((f for f in (p.previous.filters if p.previous is not None else ()) for pin_node, col in pins
                     if f.ref == f"{pin_node}.{col.name}" and f.op == "=" and len(f.values) == 1), None)
        if kept is not None:  # the conversation's own one (the test the previous answer was about)
            d.filters.append(kept)
            d.groundings.append(Grounding(kind="filter", ref=kept.describe(), phrase="previous question",
                                          source="previous turn: the one a breakdown by "
                                                 f"{lex.label(ref)} needs", score=0.9))
            d.notes.append(f"Kept {lex.label(kept.ref)} {kept.values[0]} from the previous answer: a breakdown by "
                           f"{lex.label(ref)} needs one.")
            return
        if pins:
            pin_node, col = pins[0]
            pin_ref = f"{pin_node}.{col.name}"
            p.settle(PlanOutcome(
                status="clarify",
                message=f"A breakdown by {lex.label(ref)} needs one {lex.label(pin_ref)} (rows belong to several). "
                        f"Which {lex.label(pin_ref)}?",
                suggestions=tuple(lex.values_of(pin_ref)[:8]), signals={"dimension_reach": 0.0}))
            return


def _dated_count_of(env: Env, metric: str, others: list[str]) -> list[str]:
    """For a count of an undated node's rows (customers), the distinct counts of that node among a dated fact's rows
    (``count_distinct`` of the fact's link column to it: "customers with orders"); those over the facts of
    ``others`` when there are such, else all of them. Empty when the metric is not a plain count of its rows."""
    lex = env.lex
    m = lex.layer.metrics.get(metric)
    if m is None or m.agg != "count" or m.filter or m.is_derived or not m.source:
        return []
    found = []
    for name, other in lex.layer.metrics.items():
        source = lex.layer.nodes.get(other.source or "")
        if other.agg != "count_distinct" or other.filter or source is None or not source.time_column:
            continue
        if any(link.to == m.source and link.cardinality == "many_to_one" for link in source.links) \
                and link_key(lex, source.name, m.source) == other.expr.strip():
            found.append(name)
    facts = set(lex.facts_of(others)) if others else set()
    near = [x for x in found if lex.layer.metrics[x].source in facts]
    return near or found


def time_axes(p: Parse, env: Env) -> None:
    """A fact's own date asked with a grain is its time axis; metrics meaningful only at some grains get one."""
    d, lex = p.draft, env.lex
    facts = lex.facts_of(d.base_metrics())
    for i, ref in enumerate(d.dimensions):
        base, _, grain = ref.partition(":")
        node, _, col = base.partition(".")
        if grain and facts and all(f == node and lex.layer.nodes[f].time_column == col for f in facts):
            d.dimensions[i] = f"{METRIC_TIME}:{grain}"
            for j, g in enumerate(d.groundings):
                if g.ref == ref:
                    d.groundings[j] = g.model_copy(update={"ref": d.dimensions[i]})
    by_time = [x for x in d.dimensions if x.startswith(METRIC_TIME)]
    if d.time is not None or by_time:
        for m in d.base_metrics():
            metric = lex.layer.metrics.get(m)
            node = lex.layer.nodes.get(metric.source or "") if metric is not None else None
            if node is None or node.time_column:
                continue
            asked = f"limited to {d.time.label}" if d.time is not None else f"shown by {by_time[0].partition(':')[2]}"
            among = _dated_count_of(env, m, [x for x in d.base_metrics() if x != m])
            if len(among) == 1:
                # "customers in 2019", customers undated: the customers among a dated fact's rows that period
                d.metrics[d.metrics.index(m)] = among[0]
                d.groundings = [g.model_copy(update={"ref": among[0], "source": f"{g.source} (the dated count)"})
                                if g.kind == "metric" and g.ref == m else g for g in d.groundings]
                d.notes.append(f"{lex.label(node.name)} have no date of their own: counted "
                               f"{lex.metric_label(among[0])} ({asked}).")
                d.signals["metric_match"] = min(d.signals.get("metric_match", 1.0), 0.85)
                continue
            p.settle(PlanOutcome(
                status="clarify",
                message=f"{lex.metric_label(m)[:1].upper() + lex.metric_label(m)[1:]} has no date: its rows "
                        f"({lex.label(node.name)}) are not dated, so it can't be {asked}. Ask for it without a "
                        "period, or for a dated metric.", suggestions=tuple(among) or (m,), signals={"metric_match": 0.0}))
            return
    if by_time:
        return
    for m in d.metrics:
        metric = lex.layer.metrics.get(m)
        if metric is None or not metric.grains:
            continue
        days = (d.time.end - d.time.start).days + 1 if d.time and d.time.start and d.time.end else None
        if days is None or days > 31:
            d.dimensions.insert(0, f"{METRIC_TIME}:{metric.grains[0]}")
            d.notes.append(f"{lex.metric_label(m)} is meaningful per {metric.grains[0]}, so it is shown by "
                           f"{metric.grains[0]}.")
            return


def fit_metrics(p: Parse, env: Env) -> None:
    """Choose, among the metrics the same words name, the one that fits the question: reaching every breakdown
    and filter without fan-out ("chai latte sales by store": the sales of items, not of whole orders), and counting
    distinct people when the question asks how many people did something ("how many people tweeted")."""
    d, lex = p.draft, env.lex
    refs = list(d.dimensions) + [f.ref for f in d.filters]
    people_at = p.people_counted()
    for i, name in enumerate(list(d.metrics)):
        metric = lex.layer.metrics.get(name)
        grounding = next((g for g in d.groundings if g.kind == "metric" and g.ref == name), None)
        if metric is None or grounding is None or grounding.source.startswith(("defined", "ratio")) \
                or (d.threshold is not None and d.threshold.metric == name):
            continue  # (a threshold's metric is the one measured per entity: the count of entities is the threshold's)
        # "how many people tweeted": the metric read after the people counted ("orders and how many customers" is
        # the orders themselves)
        people = people_at is not None and any(m.ref == name and m.start >= people_at for m in p.metric_matches)
        facts = lex.facts_of([name])
        fanned = [r for r in refs if not is_metric_time_ref(r) and r.split(".")[0] in
                  set().union(*(lex.catalog.fan_reach.get(f, set()) for f in facts))]
        if grounding.source.startswith("rule: money") and fanned:
            # money named, broken down by what the amount fans out over ("which products brought in the most $"):
            # the revenue-like amount of those rows
            fit = revenue_like(env, [r for r in refs if not is_metric_time_ref(r)])
            if fit is not None and fit != name:
                d.metrics[i] = fit
                d.groundings = [g.model_copy(update={"ref": fit, "source": f"{g.source} (the amount that fits)"})
                                if g.kind == "metric" and g.ref == name else g for g in d.groundings]
            continue
        counts_rows = metric.agg == "count" or metric.agg == "sum" and metric.expr.strip() in ("1", "1.0")
        if people and counts_rows and not metric.is_derived and people_at is not None \
                and not any(m.ref == name and m.start <= people_at for m in p.metric_matches):
            said = set(phrase(grounding.phrase)) & lex.own_words.get(name, frozenset())
            distinct = [x for x, own in lex.own_words.items() if x != name and said and said <= own
                        and lex.layer.metrics[x].agg == "count_distinct" and x not in d.metrics
                        and not _counts_own_rows(env, x, metric.source)]
            who = p.tokens[people_at].stem
            distinct = [x for x in distinct if who in lex.own_words[x]] or distinct  # "customers": customers counted
            if len(distinct) > 1:
                p.settle(PlanOutcome(
                    status="clarify",
                    message=f"“{p.words(people_at, people_at + 1)}” asks how many people, and several metrics count "
                            "them: " + ", ".join(lex.metric_label(x) for x in distinct[:4]) + ". Which one?",
                    suggestions=tuple(distinct[:4]), signals={"metric_match": 0.0}))
                return
            if len(distinct) == 1 and grounding.source.startswith("name"):
                # named by its name, but the question counts people: the distinct count of the same words
                # (otherwise the general choice below decides)
                d.metrics[i] = distinct[0]
                d.groundings = [g.model_copy(update={"ref": distinct[0], "source": f"{g.source} (the metric that fits)"})
                                if g.kind == "metric" and g.ref == name else g for g in d.groundings]
                d.notes.append(f"Used {lex.metric_label(distinct[0])} rather than {lex.metric_label(name)}: it fits "
                               "a count of people.")
                continue
            if not distinct:
                # "how many people tweeted" with only a count of tweets: rows are not people; ask, never swap
                p.settle(PlanOutcome(
                    status="clarify",
                    message=f"“{p.words(people_at, people_at + 1)}” asks how many people, and "
                            f"{lex.metric_label(name)} counts {metric.unit or 'rows'}, not the people behind them; "
                            f"no governed metric counts them. I can show {lex.metric_label(name)}.",
                    suggestions=(name,), signals={"metric_match": 0.0}))
                return
        if grounding.source.startswith("name") and not (fanned and metric.agg == "sum"):
            continue  # a metric named by its name is that metric, unless its amounts fan out over what is asked
        words = {w for w in phrase(grounding.phrase)} & lex.own_words.get(name, frozenset())
        if not words:
            continue
        rivals = [x for x, own in lex.own_words.items() if x != name and words <= own]
        if fanned and not rivals and len(words) > 1:
            # "sales before tax" by product: of the metrics that reach it all, those sharing most of the words
            fit = {x: len(words & own) for x, own in lex.own_words.items() if x != name
                   and (lex.layer.metrics[x].unit or "").lower() == (metric.unit or "").lower() and all(
                r.split(".")[0].split(":")[0] in lex.catalog.reach.get(f, {}) for f in lex.facts_of([x])
                for r in refs if not is_metric_time_ref(r))}
            most = max(fit.values(), default=0)
            rivals = [x for x, n in fit.items() if most and n == most]
        better = None
        if fanned:
            better = [x for x in rivals if all(r.split(".")[0].split(":")[0] in lex.catalog.reach.get(f, {})
                                               for f in lex.facts_of([x]) for r in refs if not is_metric_time_ref(r))]
        elif people and metric.agg != "count_distinct":
            better = [x for x in rivals if lex.layer.metrics[x].agg == "count_distinct" and x not in d.metrics
                      and not _counts_own_rows(env, x, metric.source)]
        if better and len(better) > 1:
            # several fit: the one like the metric asked (same kind, no filter of its own) that the words name best
            def rank(x: str) -> tuple[int, int, int, int]:
                m2 = lex.layer.metrics[x]
                label = set(phrase(m2.label or "")) | set(phrase(m2.name))
                return (not m2.filter, not m2.is_derived, m2.agg == metric.agg, len(words & label))

            top = max(rank(x) for x in better)
            better = [x for x in better if rank(x) == top]
        if better and len(better) == 1:
            d.metrics[i] = better[0]
            d.groundings = [g.model_copy(update={"ref": better[0], "source": f"{g.source} (the metric that fits)"})
                            if g.kind == "metric" and g.ref == name else g for g in d.groundings]
            d.notes.append(f"Used {lex.metric_label(better[0])} rather than {lex.metric_label(name)}: it fits "
                           + ("what the question breaks down or filters by." if fanned else "a count of people."))
        elif fanned and not better and _revenue_named(lex, name):
            _revenue_that_reaches(p, env, i, name, refs)


def _revenue_named(lex, name: str) -> bool:  # noqa: ANN001
    """Whether a metric is an unfiltered currency sum named with revenue words ("net sales", "takings")."""
    return is_plain_currency_sum(lex.layer.metrics[name]) \
        and bool(lex.own_words.get(name, frozenset()) & REVENUE_STEMS)


def _revenue_that_reaches(p: Parse, env: Env, i: int, name: str, refs: list[str]) -> None:
    """"which three products brought in the most money, not counting tax": a revenue of whole rows (orders) broken
    down by what they hold many of (the products in them) would credit each product with every order it is in;
    the revenue-like amount of the rows held, reaching the breakdown without fan-out, is meant. A guess (the
    words named the other), so never at high confidence."""
    d, lex = p.draft, env.lex
    fit = revenue_like(env, [r for r in refs if not is_metric_time_ref(r)])
    if fit is None or fit == name or fit in d.metrics:
        return
    d.metrics[i] = fit
    d.groundings = [g.model_copy(update={"ref": fit, "source": f"{g.source} (the amount that fits)"})
                    if g.kind == "metric" and g.ref == name else g for g in d.groundings]
    whole = lex.layer.nodes[lex.layer.metrics[name].source or ""].label or lex.layer.metrics[name].source
    d.notes.append(f"Used {lex.metric_label(fit)} rather than {lex.metric_label(name)}: {lex.metric_label(name)} is "
                   f"of whole {whole}s, which would count each {whole} once for everything in it.")
    d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.75)


def _counts_own_rows(env: Env, distinct: str, source: str | None) -> bool:
    """Whether a distinct count counts the very rows a plain count over ``source`` counts (the distinct orders
    among order lines, for a count of orders): the same things, never the people behind them."""
    entity = entity_counted_by(env, distinct)
    return entity is not None and source is not None and entity.split(".")[0] == source


def is_metric_time_ref(ref: str) -> bool:
    return ref.split(":", 1)[0] == METRIC_TIME


def metric_filters(p: Parse, env: Env) -> None:
    """A filter on the same values a metric's own filter fixes ("drinks sold" for jaffles): the sibling metric
    defined for those values when there is one, else a clarifying question; never an empty or double filter."""
    d, lex = p.draft, env.lex
    _compared_values(p, env)
    for i, name in enumerate(list(d.metrics)):
        m = lex.layer.metrics.get(name)
        if m is None or not m.filter:
            continue
        fixed = _literals(m.filter)
        for f in [f for f in d.filters if f.op in ("=", "in")]:
            wanted = {str(v) for v in f.values}
            domain = set(lex.values_of(f.ref))
            if not fixed or not fixed <= domain:
                continue  # the metric's own filter is about other values
            if wanted == fixed and len(fixed) > 1 and f.ref in d.dimensions and any(
                    g.kind == "dimension" and g.ref == f.ref and g.source.startswith("rule: several values")
                    for g in d.groundings) and len(d.metrics) == 1 and not _APART_RE.search(p.question):
                # "recoveries through salvage/subro": the values that make up the metric's own definition, named
                # together, are the metric itself (one number), not its parts side by side
                d.filters.remove(f)
                d.dimensions.remove(f.ref)
                d.groundings = [g for g in d.groundings if not (g.kind == "dimension" and g.ref == f.ref)]
                d.notes.append(f"{lex.metric_label(name)[:1].upper() + lex.metric_label(name)[1:]} is "
                               f"{' and '.join(sorted(fixed))} together.")
                continue
            if wanted <= fixed:
                if any(x.split(".")[0] == f.ref.split(".")[0] for x in d.dimensions):
                    continue  # the rows broken down must still be cut to those values ("the least popular drink")
                d.filters.remove(f)  # says again what the metric already counts
                d.notes.append(f"{lex.metric_label(name)} already counts only {', '.join(sorted(fixed))}.")
                continue
            siblings = [x.name for x in lex.layer.metrics.values() if x.source == m.source and x.agg == m.agg
                        and x.expr == m.expr and x.filter and _literals(x.filter) == wanted]
            if len(siblings) == 1:
                d.metrics[i] = siblings[0]
                d.filters.remove(f)
                d.groundings = [g.model_copy(update={"ref": siblings[0], "source": "the same measure for the values "
                                                     "asked"}) if g.kind == "metric" and g.ref == name else g
                                for g in d.groundings]
                d.notes.append(f"{lex.metric_label(siblings[0])} is {lex.metric_label(name)}'s measure for "
                               f"{', '.join(sorted(wanted))}.")
                continue
            p.settle(PlanOutcome(
                status="clarify",
                message=f"{lex.metric_label(name)[:1].upper() + lex.metric_label(name)[1:]} counts only "
                        f"{', '.join(sorted(fixed))}, so it can't be filtered to {', '.join(sorted(wanted))}. "
                        "Which metric do you mean?",
                suggestions=tuple(x.name for x in lex.layer.metrics.values() if x.source == m.source)[:5],
                signals={"value_reach": 0.0}))
            return


#: words that set values apart ("salvage vs subro", "split salvage and subrogation", "each separately")
_APART_RE = re.compile(r"\b(?:vs\.?|versus|v\.|against|compared|split|separate(?:ly)?|each|apart|side\s+by\s+side|"
                       r"broken\s+out|breakdown|break\s+(?:it\s+)?down)\b", re.I)


def _compared_values(p: Parse, env: Env) -> None:
    """"food vs drink sales", "jaffle and drink sales by store", "drinks vs jaffles sold": a metric whose own filter
    fixes one value, named next to another value of the same attribute, compares the values: the same measure with
    no filter of its own (the governed one defined on the same source and expression), broken down by that
    attribute and cut to the values named. Without such a measure nothing changes (the sibling rules below apply)."""
    d, lex = p.draft, env.lex
    if p.followup:
        return  # "what about jaffles?" after drinks sold: the value asked replaces the one before
    for i, name in enumerate(list(d.metrics)):
        m = lex.layer.metrics.get(name)
        if m is None or not m.filter or m.is_derived:
            continue
        fixed = _literals(m.filter)
        if not fixed:
            continue
        others = [v for v in p.mentions if v.score >= 1.0 and v.value not in fixed
                  and fixed <= set(lex.values_of(v.ref))]
        if not others:
            continue
        ref = others[0].ref
        named = sorted(fixed | {v.value for v in others if v.ref == ref})
        if len(d.metrics) > 1 and _siblings_side_by_side(p, env, name, m, [v.value for v in others if v.ref == ref]):
            continue
        base = [x.name for x in lex.layer.metrics.values() if x.source == m.source and x.agg == m.agg
                and x.expr == m.expr and not x.filter and not x.is_derived]
        if len(base) != 1 or not lex.reachable(lex.facts_of([base[0]]), ref):
            continue
        d.metrics[i] = base[0]
        d.groundings = [g.model_copy(update={"ref": base[0], "source": "the same measure for every value compared"})
                        if g.kind == "metric" and g.ref == name else g for g in d.groundings]
        d.filters = [f for f in d.filters if f.ref != ref]
        d.dimensions = [x for x in d.dimensions if x != ref]
        d.dimensions.append(ref)
        if set(named) != set(lex.values_of(ref)):
            f = Filter(ref=ref, op="in", values=tuple(named))
            d.filters.append(f)
            d.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=", ".join(named),
                                          source=f"values of {lex.label(ref)} compared"))
        d.notes.append(f"Compared {' and '.join(named)} side by side with {lex.metric_label(base[0])} "
                       f"({lex.metric_label(name)} counts only {', '.join(sorted(fixed))}).")


def _siblings_side_by_side(p: Parse, env: Env, name: str, m: Metric, values: list[str]) -> bool:
    """"average fare, number refunded and number cancelled, by route": with another measure asked beside them,
    values compared are each their own governed count (the same measure cut to that value), as columns; a filter
    on the values would cut the other measure too. Whether each value had one."""
    d, lex = p.draft, env.lex
    found = []
    for value in dict.fromkeys(values):
        siblings = [x.name for x in lex.layer.metrics.values() if x.source == m.source and x.agg == m.agg
                    and x.expr == m.expr and x.filter and _literals(x.filter) == {value}]
        if len(siblings) != 1:
            return False
        found.append(siblings[0])
    added = [x for x in found if x not in d.metrics]
    if not added:
        return False
    d.metrics.extend(added)
    for x in added:
        d.groundings.append(Grounding(kind="metric", ref=x, phrase=", ".join(values),
                                      source=f"the same measure as {lex.metric_label(name)}, for the value named"))
    cut = set(values) | _literals(m.filter or "")
    d.filters = [f for f in d.filters if not {str(v) for v in f.values} <= cut]
    d.notes.append(f"{', '.join(lex.metric_label(x) for x in [name, *added])} side by side: each value named is "
                   "its own measure, so the other measures are not cut to it.")
    return True


def _literals(text: str) -> set[str]:
    """The string literals of a metric filter."""
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except SqlglotError:
        return set()
    return {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}


def identifying_filters(p: Parse, env: Env) -> None:
    """Two values naming one row two ways ("PHL and Brooklyn": a code and a name) cannot both hold: asked back."""
    if p.draft.rows_of is not None or not p.draft.filters:
        return
    out = check_outcome(PlanOutcome(status="plan", plan=p.draft.plan(), signals=p.draft.signals), env.lex.layer)
    if out.status != "plan":
        p.settle(out)


def data_bounds(p: Parse, env: Env) -> None:
    """A period outside the data says where the data starts and ends (the answer is then empty, and says why)."""
    d = p.draft
    if d.time is None or (d.time.start is None and d.time.end is None):
        return
    facts = env.lex.facts_of(d.base_metrics()) if d.metrics else ([d.rows_of] if d.rows_of else [])
    spans = [env.bounds[f] for f in facts if f in env.bounds]
    if not spans:
        return
    first = min(date.fromisoformat(a) for a, _ in spans)
    last = max(_period_end(env, f, date.fromisoformat(env.bounds[f][1])) for f in facts if f in env.bounds)
    if d.compare is not None:
        _compared_bounds(p, first, last)
        return
    start, end = d.time.start, d.time.end
    runs = f"the data runs from {first:%-d %B %Y} to {last:%-d %B %Y}"
    if start is not None and start > last:  # past the data: no number answers it, the latest data might
        label = env.lex.metric_label(d.metrics[0]) if d.metrics and d.metrics[0] in env.lex.layer.metrics else None
        latest = f" The closest I can answer is the latest period with data: for example “{label} in {last:%B %Y}”." \
            if label else ""
        p.settle(PlanOutcome(status="clarify", message=f"There is no data for {d.time.label} yet: {runs}.{latest}",
                             suggestions=tuple(d.metrics[:1]), signals={"no_data": 1.0, "intent": 0.0}))
        return
    if end is not None and end < first:  # before the data: an empty answer that says so (nothing was lost)
        d.notes.append(f"There is no data for {d.time.label}: {runs}.")
        d.signals["no_data"] = 1.0
    elif start is not None and start < first:
        d.notes.append(f"The data starts on {first:%-d %B %Y}: earlier days of {d.time.label} have none.")
    elif end is not None and (end - last).days > 1:
        d.notes.append(f"The data ends on {last:%-d %B %Y}: later days of {d.time.label} have none yet.")


def _period_end(env: Env, fact: str, day: date) -> date:
    """The last day a fact's latest date stands for: a time column kept at a month's first day ("grains: [month,
    quarter, year]") holds the whole month, so the data runs to the month's end."""
    node = env.lex.layer.nodes.get(fact)
    col = next((c for c in node.columns if c.name == node.time_column), None) if node is not None else None
    grains = tuple(col.grains) if col is not None and col.grains else ()
    if not grains or "day" in grains:
        return day
    finest = next((g for g in ("week", "month", "quarter", "year") if g in grains), None)
    if finest == "week":
        return day + timedelta(days=6 - day.weekday())
    months = {"month": 1, "quarter": 3, "year": 12}.get(finest or "", 0)
    if not months:
        return day
    first_month = ((day.month - 1) // months) * months + 1
    last_month = first_month + months - 1
    return (date(day.year + last_month // 12, last_month % 12 + 1, 1) - timedelta(days=1))


def _compared_bounds(p: Parse, first: date, last: date) -> None:
    """Two compared periods against the data: like-for-like periods running past the data's last day both stop
    at the same point ("2026 so far vs the same days of 2025", to the last day loaded); a period with no data, one
    cut short, or two of different lengths are said, and the confidence falls: such a change is no like-for-like
    change."""
    d = p.draft
    assert d.compare is not None
    early, late = d.compare.ordered()
    assert early.start and early.end and late.start and late.end  # (Compare requires both ends)
    days = [(w.end - w.start).days + 1 for w in (early, late)]  # type: ignore[operator]
    runs = f"the data runs from {first:%-d %B %Y} to {last:%-d %B %Y}"
    # (the same days a year apart differ by a leap day at most)
    if p.like_for_like and abs(days[0] - days[1]) <= 1 and late.start <= last < late.end:
        cut = (late.end - last).days  # type: ignore[operator]
        windows = []
        for w in (early, late):
            end = w.end - timedelta(days=cut)  # type: ignore[operator]
            windows.append(TimeWindow(start=w.start, end=end, label=period_label(w.start, end)))  # type: ignore[arg-type]
        d.compare = Compare(periods=(windows[0], windows[1]))
        d.time = TimeWindow(start=windows[0].start, end=windows[1].end, label=d.time.label if d.time else None)
        d.notes.append(f"The data ends on {last:%-d %B %Y}, so both periods stop at the same point: "
                       f"{windows[0].label} and {windows[1].label}.")
        early, late = windows
    for w in (early, late):
        length = (w.end - w.start).days + 1  # type: ignore[operator]
        missing = max(0, (first - w.start).days) + max(0, (w.end - last).days)  # type: ignore[operator]
        if w.start > last and w.end > p.today:  # type: ignore[operator]
            # a future period, past the data: every change would be "fell 100%", which answers nothing
            p.settle(PlanOutcome(status="clarify", message=f"There is no data for {w.label}, so there is nothing to "
                                 f"compare it with: {runs}. Name two periods inside it.",
                                 suggestions=tuple(d.metrics[:1]), signals={"no_data": 1.0, "intent": 0.0}))
            return
        if w.end < first or w.start > last:  # type: ignore[operator]
            d.notes.append(f"There is no data for {w.label}: {runs}.")
            d.signals["no_data"] = 1.0
            d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.3)
        elif missing > max(1, 0.03 * length):  # (a day or two at an edge of the data is no missing period)
            d.notes.append(f"{w.label[:1].upper()}{w.label[1:]} is not complete in the data ({runs}), so the change "
                           "is not like for like.")
            d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.7)
    if min(days) < 0.9 * max(days):
        d.notes.append(f"The periods differ in length ({early.label}: {days[0]} day{'s' * (days[0] != 1)}; "
                       f"{late.label}: {days[1]} day{'s' * (days[1] != 1)}), "
                       "so the change mixes time with growth.")
        d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.6)


def drop_name_ranges(p: Parse, env: Env) -> None:
    """A period that turned out to be part of a value's name is no time range."""
    d = p.draft
    if p.name_ranges and d.time is not None and any(r.label == d.time.label for r in p.name_ranges):
        d.time = None
        d.groundings = [g for g in d.groundings if g.kind != "time"]


def account_for_words(p: Parse, env: Env) -> None:
    """Every content word is explained by the plan or is a function word; what is not is said, and lowers trust.

    Words after a breakdown trigger that name nothing ("by payment method") and unknown names after "in" or
    "for" (a value the index does not hold) make a clarifying question: answering without them would be wrong.
    """
    d, lex, tokens = p.draft, env.lex, p.tokens
    if p.unresolved:
        u = p.unresolved[0]
        facts = lex.facts_of(d.base_metrics()) if d.metrics else []
        reach = lex.reachable_dims(facts) if facts else []
        what = ", ".join(lex.metric_label(m) for m in d.metrics if m in lex.layer.metrics)
        p.settle(PlanOutcome(
            status="clarify",
            message=f"I can't break {what or 'this'} down by “{u.words}”: no attribute of the semantic layer has that "
                    "name." + (f" It can be broken down by: {', '.join(reach[:10])}." if reach else ""),
            suggestions=tuple(reach[:5]), signals={"coverage": 0.0}))
        return
    _explain_context_words(p, env)
    cyclic = _CYCLIC_RE.search(p.question)
    if cyclic is not None and not all(p.used.get(i) in ("dimension", "filter")
                                      for i in tokens_in(tokens, cyclic.span())):
        # "which day of the week is busiest": no grain cycles, and no attribute of the layer says it
        p.settle(PlanOutcome(
            status="clarify",
            message=f"I can't break down or filter by “{cyclic.group(0)}”: time grains run day, week, month, quarter and "
                    "year, and no attribute of the semantic layer holds it. Ask by day or by month, or add such an "
                    "attribute to the layer.", signals={"coverage": 0.0}))
        return
    one_sided = _one_sided_comparison(p)
    if one_sided is not None:
        p.settle(one_sided)
        return
    content = [i for i, t in enumerate(tokens) if t.stem not in FILLER and t.stem not in FUNCTION_WORDS
               and t.text.lower() not in STOP_WORDS and t.stem not in {"s"}]  # (a number nothing used is a lost condition)
    if not d.order_by and d.limit is None and d.compare is None and not d.rank_within and d.threshold is None:
        # "the biggest single order" answered without ranking anything: the superlative was not honoured
        content += [i for i, t in enumerate(tokens) if t.text.lower() in SUPERLATIVES and i not in content]
    explained = [i for i in content if i in p.used]
    unexplained = [i for i in content if i not in p.used]
    d.signals["coverage"] = (len(explained) / len(content)) if content else 1.0
    if not unexplained:
        return
    unknown_value = _unknown_value(p, env, unexplained) or _unknown_which(p, env, unexplained)
    if unknown_value is not None:
        p.settle(unknown_value)
        return
    lacking = [tokens[i] for i in unexplained if tokens[i].stem in BUSINESS_STEMS
               and tokens[i].stem not in lex.catalog.vocabulary]
    if lacking:  # "day-7 retention for people who installed": the metric asked for is one LORE lacks
        suggestions: list[str] = list(d.metrics)
        if env.searcher is not None:
            suggestions += [h.ref for h in env.searcher.search(lacking[0].text, k=3, kinds=["metric"]).of_kind("metric")]
        p.settle(PlanOutcome(
            status="clarify",
            message=f"I don't have a metric for “{lacking[0].text}”, so I can't answer that part. Did you mean one of "
                    "these?", suggestions=tuple(dict.fromkeys(suggestions))[:4], signals={"metric_match": 0.0}))
        return
    words = [tokens[i].text for i in unexplained]
    d.signals["unexplained_words"] = float(len(words))
    d.signals["coverage_cap"] = UNEXPLAINED_CAP
    d.notes.append("I did not use: " + ", ".join(f"“{w}”" for w in words) + ". Check that the answer is what you "
                   "asked, or ask again with other words.")


#: words that ask for the first or last of a ranking
SUPERLATIVES = frozenset({w for w in RANK_ADJECTIVES if w.endswith("est")} | {
    "most", "least", "top", "bottom", "best", "worst", "highest", "lowest", "maximum", "minimum"})

_CYCLIC_RE = re.compile(r"\b(?:day\s+of\s+(?:the\s+)?week|days\s+of\s+(?:the\s+)?week|weekdays?|weekends?|"
                        r"hour\s+of\s+(?:the\s+)?day|time\s+of\s+(?:the\s+)?day|hourly|month\s+of\s+(?:the\s+)?year|"
                        r"seasonality)\b", re.I)
_VERSUS_RE = re.compile(r"\b(?:vs\.?|versus|compared (?:to|with))\s", re.I)


def _one_sided_comparison(p: Parse) -> PlanOutcome | None:
    """"X vs Y" where the plan compares nothing (one metric, one value, one period, no breakdown): one side was
    not read, and one number would answer a question nobody asked."""
    hit = _VERSUS_RE.search(p.question)
    d = p.draft
    if hit is None or d.rows_of or len(d.metrics) + len(d.adhoc) > 1 or d.dimensions or len(p.ranges) > 1 \
            or any(len(f.values) > 1 for f in d.filters):
        return None
    left = p.question[:hit.start()].split()[-3:]
    right = p.question[hit.end():].split()[:3]
    shown = " ".join([*left, hit.group(0).strip(), *right]).strip(" ?.!,")
    return PlanOutcome(
        status="clarify",
        message=f"I could read only one side of “{shown}”, so I can't compare them. Name both sides as metrics, "
                "values or periods (for example “revenue for A vs B” or “revenue in 2024 vs 2025”).",
        signals={"coverage": 0.0})


def _explain_context_words(p: Parse, env: Env) -> None:
    """Words that name what the plan already uses: the table of a filtered attribute ("returning *customers*"), the
    attribute of a filter value ("the jaffle *type*"), the fact a metric counts ("San Francisco *orders*")."""
    d, lex = p.draft, env.lex
    facts = lex.facts_of(d.base_metrics())
    nodes = set(facts)
    # the nodes the metrics reach in one declared link ("sales for *stores*")
    nodes |= {n for f in facts for n, hops in lex.catalog.reach.get(f, {}).items() if hops <= 1}
    refs = [f.ref for f in d.filters] + list(d.dimensions)
    nodes |= {r.split(".")[0].split(":")[0] for r in refs}
    if d.rows_of:
        nodes.add(d.rows_of)
    attribute_words: set[str] = set()
    time_refs = [f"{f}.{lex.layer.nodes[f].time_column}" for f in facts if lex.layer.nodes[f].time_column]
    for ref in refs + time_refs:
        col = lex.column(ref.split(":")[0])
        if col is not None:
            for text in (col.name, col.label or "", *col.synonyms):
                attribute_words.update(phrase(text))
    described: set[str] = set()
    for name in d.metrics:  # the words of the definitions used ("dubbing" for a transcription metric)
        metric = lex.layer.metrics.get(name)
        if metric is not None:
            described.update(phrase(metric.description))
            source = lex.layer.nodes.get(metric.source or "")
            if source is not None:
                described.update(phrase(source.description))
    # (not the unit another metric is measured in: "minutes per player" asks for minutes, which a description of
    # players may mention)
    own_units = set().union(*(lex.metric_units.get(m, frozenset()) for m in d.metrics))
    attribute_words |= {w for w in described if w in own_units or not any(
        w in u for name, u in lex.metric_units.items() if name not in d.metrics)}
    if any((m.format or "") == "currency" for x in d.base_metrics() if (m := lex.layer.metrics.get(x)) is not None):
        attribute_words |= set(phrase("dollars dollar bucks usd money cash"))  # ("spent over a thousand bucks")
    named = _named_attributes(p, env, refs)
    # a second "how many <things>" after the measure asks for a second count ("and how many distinct customers
    # hold them"): never explained away as the context of a filter
    first_end = min((p.tokens[m.end - 1].end for m in p.metric_matches if m.ref in d.metrics), default=None)
    asked = {i for hit in HOW_MANY_NOUN_RE.finditer(p.question) if first_end is not None and hit.start() >= first_end
             for i in tokens_in(p.tokens, hit.span("noun"))}
    for i, t in enumerate(p.tokens):
        if i in p.used or i in p.reserved and i in p.used or i in asked:
            continue
        if i and p.tokens[i - 1].text.lower() in WHICH_WORDS and not d.dimensions and d.rows_of is None:
            continue  # "which store ...": the rows asked for, which no breakdown gives; a definition's word is not that
        if i in named:
            continue  # "with their inception date": an attribute named and not used is not explained by a description
        if i and p.tokens[i - 1].text.lower() in ("each", "every", "per") and not d.rows_of:
            continue  # "orders for each store" with no breakdown by store: a breakdown asked for and not made
        if any(names_its_rows_after_by(p, env, name, i, i + 1) for name in d.metrics):
            continue  # "units sold by item and by shop": a breakdown asked for and not made is never context
        if lex.node_words.get(t.stem, frozenset()) & nodes or t.stem in attribute_words:
            p.use([i], "context")


def _named_attributes(p: Parse, env: Env, refs: list[str]) -> set[int]:
    """The unexplained tokens that spell out, whole, a name of two or more words of an attribute the plan does not
    use ("inception date", "annual fee")."""
    stems = [t.stem for t in p.tokens]
    used_refs = {r.split(":")[0] for r in refs}
    out: set[int] = set()
    for i in range(len(stems)):
        if i in p.used:
            continue
        for e in env.lex.attributes_spelled_at(stems, i):
            span = range(i, i + len(e.phrase))
            if len(e.phrase) >= 2 and e.ref.split(":")[0] not in used_refs and not any(j in p.used for j in span):
                out.update(span)
    return out


def _unknown_which(p: Parse, env: Env, unexplained: list[int]) -> PlanOutcome | None:
    """"which adjuster has the most open claims": the rows asked for are named by a word the layer does not know,
    and nothing else is broken down: asked back, never answered as one number."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    if d.rows_of is not None or any(not x.startswith(METRIC_TIME) for x in d.dimensions):
        return None
    for i in unexplained:
        t = tokens[i]
        word = t.text.lower()
        if i == 0 or tokens[i - 1].text.lower() != "which" or not t.text.isalpha() or len(word) < 4 \
                or word in KNOWN_WORDS or word in INTENT_WORDS or word in STOP_WORDS or t.stem in FUNCTION_WORDS \
                or word in lex.value_refs or any(t.stem in ph for ph in lex.name_phrases):
            continue  # (a word of a description is no name: "adjusters" may be described, never broken down by)
        facts = lex.facts_of(d.base_metrics()) if d.metrics else []
        reach = [x for x in (lex.reachable_dims(facts) if facts else []) if not x.startswith(METRIC_TIME)]
        return PlanOutcome(
            status="clarify", signals={"coverage": 0.0}, suggestions=tuple(reach[:5]),
            message=f"I can't tell which “{t.text}”: no attribute of the semantic layer has that name, so I can't "
                    "break the answer down by it." + (f" It can be broken down by: {', '.join(reach[:10])}."
                                                       if reach else ""))
    return None


def _unknown_value(p: Parse, env: Env, unexplained: list[int]) -> PlanOutcome | None:
    """A capitalised or quoted word that matches nothing, after in/for/from ("revenue for Boston", "for the Boston
    store") or right before an entity's name ("the Boston store"): ask instead of ignoring a filter."""
    tokens, lex = p.tokens, env.lex
    for i in unexplained:
        t = tokens[i]
        j = i - 1
        while j >= 0 and tokens[j].stem in ARTICLES and tokens[j].stem != "of":
            j -= 1
        prev = tokens[j].text.lower() if j >= 0 else ""
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        owner = sorted(lex.node_words.get(nxt.stem, frozenset())) if nxt is not None else []
        quoted = p.question[max(0, t.start - 1):t.start] in ("'", '"', "“")
        if (t.text[:1].isupper() and i > 0 or quoted) and (prev in ("in", "for", "from", "of", "on", "to", "at")
                                                           or owner) \
                and phrase(t.text) and phrase(t.text)[0] not in lex.catalog.vocabulary \
                and t.text.lower() not in KNOWN_WORDS and t.text.lower() not in INTENT_WORDS:
            suggestions: list[str] = []
            entity = next((lex.entity[n] for n in owner if n in lex.entity), None)
            if entity is not None:
                suggestions = [str(v) for v in lex.values_of(entity)][:8]
            elif env.searcher is not None:
                hits = env.searcher.search(t.text, k=3, kinds=["value"]).of_kind("value")
                suggestions = [h.value for h in hits if h.value][:5]
            what = f"a {lex.label(entity)} called “{t.text}”" if entity is not None else f"“{t.text}” as a value of any dimension"
            return PlanOutcome(
                status="clarify",
                message=f"I don't know {what}, so I can't filter on it."
                        + (" Did you mean one of these?" if suggestions else ""),
                suggestions=tuple(suggestions), signals={"value_match": 0.0})
    return None
