"""The ordering pass: "top 5", "the 3 biggest", "which ... the most", "ranked", and finishing the order."""

from __future__ import annotations

import re

from lore.plan.catalog import ARTICLES
from lore.plan.offline.lexicon import is_metric_time
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Parse
from lore.plan.offline.text import mask, tokens_in
from lore.plan.words import (BOUNDS_RE, CHANGE_RE, DECLINE_RE, GROWTH_RE, LEAST_RE, MOST_RE, NUMBER_ALT, ONE_CHANGE_RE, RANKED_CHANGE_RE,
                               RANKED_EITHER_RE, RANKED_IDIOMS, RANKED_RE, RELATIVE_CHANGE_RE, TOP_RE, WHICH_WORDS,
                              number_value)
from lore.semantic.spec import METRIC_TIME
from lore.types import Filter, Grounding, OrderBy, PlanOutcome

#: the first metric of the plan, named once the metrics are known
FIRST_METRIC = "__first_metric__"
_COUNTED = re.compile(r"\b(?:the\s+)?(\d{1,3}|" + NUMBER_ALT + r")\s+([a-z][a-z\-]+)", re.I)


def _which_names_a_breakdown(p: Parse, which) -> bool:  # noqa: ANN001
    """"which store ...": the words right after "which" (past articles and a number) are a breakdown's."""
    i = p.tokens.index(which) + 1
    while i < len(p.tokens) and (p.tokens[i].stem in ARTICLES or p.tokens[i].text.isdigit()):
        i += 1
    return i < len(p.tokens) and p.used.get(i) == "dimension" \
        and any(not is_metric_time(x) for x in p.draft.dimensions)


def read_order(p: Parse, env: Env) -> None:
    """Ranking and top-N (value mentions are masked: "Best Buy" is a name, not a ranking)."""
    d, tokens = p.draft, p.tokens
    if d.order_by:
        return  # a superlative before a noun already set it
    # (a value's word read as a breakdown stays: "3 items with the biggest drop", where "items" is also a value)
    text = mask(p.question, tokens, {i for i in p.reserved if p.used.get(i) != "dimension"}
                | {i for i, why in p.used.items() if why == "time"})
    # ranking words inside the names of what was read ("per order", "order date") rank nothing
    named = mask(text, tokens, {i for i, why in p.used.items() if why not in ("operator", "time")})
    m = TOP_RE.search(text)
    if m:
        word, count = m.group(1).lower(), number_value(m.group(2)) or 0
        if 0 < count <= 1000:
            d.limit = count
            d.signals["ranked"] = 1.0
            desc = word not in ("bottom", "worst", "lowest", "smallest")
            d.order_by = [OrderBy(ref=FIRST_METRIC, descending=desc)]
            p.use(tokens_in(tokens, m.span()), "order")
            d.groundings.append(Grounding(kind="order", ref=("top" if desc else "bottom") + f" {count}",
                                          phrase=m.group(0), source="rule"))
            return
    which = next((t for t in tokens if t.text.lower() in WHICH_WORDS), None)
    # ("orders that had at least one jaffle", "more than 5 orders": bounds, not rankings)
    for b in BOUNDS_RE.finditer(p.question):  # (positions kept: the masked texts align with the question)
        named = named[:b.start()] + " " * (b.end() - b.start()) + named[b.end():]
    most, least = MOST_RE.search(named), LEAST_RE.search(named)
    counted = _COUNTED.search(text)
    if counted and (most or least) and not re.match(r"\d{4}$", counted.group(1)):
        count = number_value(counted.group(1)) or 0
        word_tok = next((i for i, t in enumerate(tokens) if t.start == counted.start(2)), None)
        later = [i for i, why in p.used.items() if why == "dimension" and word_tok is not None and i >= word_tok]
        if word_tok is not None and any(t.text.lower() in RANKED_IDIOMS for t in tokens[word_tok:word_tok + 2]):
            later = [word_tok]  # "the 3 best sellers": the rows already broken down
        if 0 < count <= 100 and later:
            hit = most if most and (not least or most.start() < least.start()) else least
            assert hit is not None
            d.limit = count
            d.order_by = [OrderBy(ref=FIRST_METRIC, descending=hit is most)]
            p.use(tokens_in(tokens, hit.span()) | tokens_in(tokens, counted.span(1)), "order")
            d.groundings.append(Grounding(kind="order", ref=("top" if hit is most else "bottom") + f" {count}",
                                          phrase=f"{counted.group(0)} … {hit.group(0)}", source="rule"))
            return
    if which is not None and (most or least):
        hit = most if most and (not least or most.start() < least.start()) else least
        assert hit is not None
        d.order_by = [OrderBy(ref=FIRST_METRIC, descending=hit is most)]
        at = tokens.index(which) + 1
        count = number_value(tokens[at].text) if at < len(tokens) else None  # "which 3 supplies cost the most"
        d.limit = count if count and 0 < count <= 100 else 1
        p.use(tokens_in(tokens, hit.span()) | ({at} if count else set()), "order")
        d.groundings.append(Grounding(kind="order", ref="highest" if hit is most else "lowest",
                                      phrase=f"{which.text} … {hit.group(0)}", source="rule"))
        d.signals["superlative"] = 1.0
        return
    if which is not None and not (most or least) and _which_names_a_breakdown(p, which):
        # "which store rang up the biggest single ticket": the superlative in the metric's own name ranks too
        inner = [i for i, why in sorted(p.used.items()) if why == "metric"
                 and (MOST_RE.fullmatch(tokens[i].text) or LEAST_RE.fullmatch(tokens[i].text))]
        if inner:
            desc = bool(MOST_RE.fullmatch(tokens[inner[0]].text))
            d.order_by = [OrderBy(ref=FIRST_METRIC, descending=desc)]
            d.limit = 1
            d.groundings.append(Grounding(kind="order", ref="highest" if desc else "lowest",
                                          phrase=f"{which.text} … {tokens[inner[0]].text}", source="rule"))
            d.signals["superlative"] = 1.0
            return
    ranked = RANKED_RE.search(named)
    if most or least or ranked:
        found = [x for x in (most, least) if x is not None]
        hit = min(found, key=lambda x: x.start()) if found else ranked
        assert hit is not None
        desc = not (least and hit is least) and "ascending" not in text.lower() and "from lowest" not in text.lower()
        d.order_by = [OrderBy(ref=FIRST_METRIC, descending=desc)]
        p.use(tokens_in(tokens, hit.span()), "order")
        if hit is not ranked and _one_named(p, hit):
            d.limit = 1  # "the best selling product", "fastest growing store": the one at the top
            d.signals["superlative"] = 1.0


def _one_named(p: Parse, hit: re.Match[str]) -> bool:
    """A superlative that opens the question (or follows "the") and names a breakdown in the singular within a few
    words ("the best selling product", "fastest growing menu item"): one row is asked for."""
    tokens = p.tokens
    words = sorted(tokens_in(tokens, hit.span()))
    if not words:
        return False
    first, last = words[0], words[-1]
    if first > 0 and tokens[first - 1].text.lower() not in ("the", "our", "my", "your"):
        return False
    for toks in p.dimension_tokens.values():
        if toks and 0 < min(toks) - last <= 3:
            noun = tokens[max(toks)].text.lower()
            return not (noun.endswith("s") and not noun.endswith("ss") and noun != tokens[max(toks)].stem)
    return False


#: "the biggest single ticket", "largest single claim payment": the size of one thing, not how many or how much
_SINGLE_RE = re.compile(r"\b(?:biggest|largest|highest|greatest|smallest|lowest|most\s+expensive|cheapest)\s+"
                        r"(?:one|single|individual)\s+", re.I)


def finish_order(p: Parse, env: Env) -> None:
    """Name the metric the order is on; a single number needs no ranking."""
    d = p.draft
    if p.outcome is None and d.metrics and (single := _SINGLE_RE.search(p.question)):
        metric = env.lex.layer.metrics.get(d.metrics[0])
        m = next((x for x in p.metric_matches if x.ref == d.metrics[0]), None)
        if metric is not None and metric.agg in ("count", "sum") and m is not None \
                and p.tokens[m.start].start == single.end():
            # the metric is named right after "biggest single": one row's size, which a count or a total is not
            said = p.question[single.start():p.tokens[m.end - 1].end]
            p.settle(PlanOutcome(
                status="clarify",
                message=f"“{said}” asks for the size of one, and {env.lex.metric_label(metric.name)} is "
                        f"{'a count' if metric.agg == 'count' else 'a total'}, not the largest one; no governed "
                        f"metric gives it. I can rank by {env.lex.metric_label(metric.name)} instead.",
                suggestions=(metric.name,), signals={"metric_match": 0.0}))
            return
    if d.order_by and d.order_by[0].ref == FIRST_METRIC:
        if not d.metrics:
            d.order_by, d.limit = [], d.limit if d.rows_of else None
            return
        descending = d.order_by[0].descending
        metric = env.lex.layer.metrics.get(d.metrics[0])  # None for a metric the question defined
        if metric is not None and metric.better == "lower" and re.search(r"\b(best|worst|better|worse)\b", p.question, re.I) \
                and not re.search(r"\b(highest|lowest|most|least|largest|smallest|top|bottom)\b", p.question, re.I):
            descending = not descending  # the worst error rate is the highest one
        d.order_by = [OrderBy(ref=d.metrics[0], descending=descending)]
        if not any(not x.startswith(METRIC_TIME) for x in d.dimensions) and d.limit == 1 and not d.dimensions:
            d.order_by, d.limit = [], None  # "what was the most ..." without a breakdown: a single number
    if d.order_by and not d.dimensions and d.rows_of is None:
        # a ranking word with nothing to rank ("the biggest single order") is not explained by this plan; "which X
        # ... the most" or "top 3 X" with no X read is a ranking asked for and lost: one number is no answer to it
        if TOP_RE.search(p.question) or any(t.text.lower() in ("which", "whose") for t in p.tokens):
            d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.45)
            d.notes.append("I found nothing to rank, so this is one number, not a ranking: name what to rank "
                           "(for example “by store”).")
        d.order_by = []
        for i, why in list(p.used.items()):
            if why == "order":
                del p.used[i]
    if d.limit is not None and not d.dimensions and d.rows_of is None:
        d.limit = None
    ranked = [x for x in d.dimensions if not x.startswith(METRIC_TIME)]
    asked_which = len(ranked) == 1 and any(g.kind == "dimension" and g.ref == ranked[0] and re.match(
        r"(?:which|what|each|every)\b", g.phrase, re.I) for g in d.groundings)
    if (d.order_by and d.limit is not None or asked_which) and d.rows_of is None and len(ranked) == 1:
        # "which catastrophe cost us the most", "which catastrophes triggered claims", "what has each cat event
        # cost": the rows with no catastrophe are no catastrophe, so not ranked nor shown
        ref = ranked[0].split(":")[0]
        if not any(f.ref == ref for f in d.filters):
            d.filters.append(Filter(ref=ref, op="is_not_null"))
            d.notes.append(f"{'Ranked' if d.order_by else 'Shown'} only rows with a {env.lex.label(ref)}.")


def order_by_change(p: Parse, env: Env) -> None:
    """"which branch grew most from 2025 to 2026", "the 3 stores with the biggest drop year over year": a ranking
    of two compared periods is on the change (the percent change when asked in relative terms: "fastest growing",
    "% growth"), falling words turning the order over. A ranking by growth with no two periods is asked back."""
    d, tokens = p.draft, p.tokens
    if not d.order_by or d.order_by[0].ref not in d.metrics or d.rows_of is not None:
        return
    named = {i for i, why in p.used.items() if why in ("metric", "dimension", "filter", "value")}
    # ("the biggest loss ratio" names a metric; "grew installs the fastest" only holds one)
    ranked = [m for pattern in (RANKED_CHANGE_RE, RANKED_EITHER_RE) for m in pattern.finditer(p.question)
              if not {min(tokens_in(tokens, m.span())), max(tokens_in(tokens, m.span()))} & named]
    if not ranked:
        return
    words = set().union(*(tokens_in(tokens, m.span()) for m in ranked))

    def said(pattern) -> list[int]:  # noqa: ANN001
        return sorted(i for m in pattern.finditer(p.question) for i in tokens_in(tokens, m.span()) if i in words)

    rise, fall, either = said(GROWTH_RE), said(DECLINE_RE), said(CHANGE_RE)
    metric, descending = d.order_by[0].ref, d.order_by[0].descending
    if d.compare is None:
        if any(x.startswith(METRIC_TIME) for x in d.dimensions):
            return  # "which month grew most": a change from each month to the next is not a plan operation yet
        label = env.lex.metric_label(metric)
        p.settle(PlanOutcome(
            status="clarify", suggestions=(metric,), signals={"intent": 0.0},
            message=f"A change in {label} is between two periods: which? For example “from 2025 to 2026”, "
                    f"“Q3 vs Q2” or “year over year”."))
        return
    relative = bool(RELATIVE_CHANGE_RE.search(p.question))
    falling = bool(fall) and (not rise or min(fall) < min(rise))
    d.order_by = [OrderBy(ref=f"{metric}_change_pct" if relative else f"{metric}_change",
                          descending=descending != falling)]
    p.use(sorted(words), "order")
    if d.limit is None and ONE_CHANGE_RE.search(p.question):
        d.limit = 1  # "the biggest drop in installs by game": the game with it
    what = "percent change" if relative else "change"
    end = "largest" if d.order_by[0].descending else "most negative"
    if either and not (rise or fall):
        d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.7)
        d.notes.append(f"Ranked by the {what}, {end} first: a change either way was asked, so say “grew” or "
                       "“fell” for one direction.")
    else:
        d.notes.append(f"Ranked by the {what} between the two periods, {end} first.")


#: words before a breakdown that make it the groups a ranking is taken within ("in each store", "per month")
_GROUP_WORDS = frozenset({"each", "every", "per"})


def _ranked_entity(p: Parse, env: Env) -> None:
    """"the 2 biggest spenders per department (branches)": a top N whose one breakdown is its groups ranks the entity the
    question names besides (a node's word no pass has read), one row each, within every group."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    group = d.dimensions[0]
    toks = p.dimension_tokens.get(group)
    if not toks or min(toks) == 0 or tokens[min(toks) - 1].text.lower() not in _GROUP_WORDS:
        return
    facts = lex.facts_of(d.base_metrics())
    free = [i for i in range(len(tokens)) if p.used.get(i) in (None, "context") and i not in p.reserved]
    # ("the 3 most ordered dishes at each branch": the entity's word inside a reordered metric phrase)
    free += [i for m in p.metric_matches if not m.exact and m.ref in d.metrics for i in range(m.start, m.end)]
    named = {lex.entity.get(n) for i in free for n in lex.node_words.get(tokens[i].stem, frozenset())
             if lex.layer.nodes[n].kind == "dimension" or i not in p.used}
    named = {e for e in named if e is not None and e != group and lex.reachable(facts, e)}
    valued = _valued_entity(p, env, group, facts) if not named else None
    if valued is not None:
        named = {valued[0]}
    if len(named) != 1:
        return
    entity = named.pop()
    d.dimensions.insert(0, entity)
    where = valued[1] if valued is not None else \
        [i for i in free if entity.split(".")[0] in lex.node_words.get(tokens[i].stem, frozenset())]
    p.use([i for i in where if i not in p.used or p.used[i] == "context"], "dimension")
    p.dimension_tokens[entity] = tuple(where)
    d.groundings.append(Grounding(kind="dimension", ref=entity, phrase=p.words(where[0], where[-1] + 1),
                                  source="the entity ranked within each group", score=0.9))


def _valued_entity(p: Parse, env: Env, group: str, facts: list[str]) -> tuple[str, list[int]] | None:
    """"the top 2 jaffles at every store": a value of a kind ranked as things (right after the ranking words) is
    the entity that kind describes, the products whose type is jaffle (the value stays a filter)."""
    lex, tokens = env.lex, p.tokens
    order = [i for i, why in p.used.items() if why == "order"]
    found: dict[str, list[int]] = {}
    for m in p.accepted if order else ():
        toks = sorted(tokens_in(tokens, m.span))
        node = m.ref.split(".")[0]
        entity = lex.entity.get(node)
        if not toks or not 0 < toks[0] - max(order) <= 2 or entity is None or entity in (m.ref, group) \
                or not lex.reachable(facts, entity):
            continue
        found[entity] = toks
    return next(iter(found.items())) if len(found) == 1 else None


def _ranked_inside_metric(p: Parse, env: Env) -> bool:
    """"best 2 selling jaffles at every location": the things ranked are a value of a kind inside the metric's own
    words (jaffles sold): the entity that value describes is the second breakdown (the metric's filter holds the
    value already, else it is kept as a filter); whether one was found."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    facts = lex.facts_of(d.base_metrics())
    inside = {i for m in p.metric_matches if m.ref in d.metrics for i in range(m.start, m.end)}
    found = {}
    for v in p.all_mentions:
        toks = tokens_in(tokens, v.span)
        entity = lex.entity.get(v.ref.split(".")[0])
        if v.score >= 1.0 and toks and toks <= inside and entity is not None and entity != v.ref \
                and entity not in d.dimensions and lex.reachable(facts, entity):
            found[entity] = v
    if len(found) != 1:
        return False
    entity, v = next(iter(found.items()))
    if not lex.filter_holds(d.metrics, v.ref, v.value) and not any(f.ref == v.ref for f in d.filters):
        d.filters.append(Filter(ref=v.ref, values=(v.value,)))
    d.add_dimension(entity, Grounding(kind="dimension", ref=entity, phrase=p.question[v.span[0]:v.span[1]],
                                      source=f"each {v.value}: the {lex.label(entity)}s ranked", score=0.9))
    p.dimension_tokens[entity] = ()
    return True


def rank_within_groups(p: Parse, env: Env) -> None:
    """"top 3 X in each Y", "the top 2 X per Y", "for each Y, the 3 biggest X": the ranking is taken within each
    Y (the top N of every group, ties kept), not over every X and Y pair."""
    d = p.draft
    if d.rows_of is not None or d.share is not None or not d.metrics:
        return
    if len(d.dimensions) == 1 and d.limit is not None:
        _ranked_entity(p, env)
    if len(d.dimensions) == 1 and d.dimensions[0].startswith(METRIC_TIME) and d.order_by \
            and any(i > 0 and p.tokens[i - 1].text.lower() in _GROUP_WORDS for i in p.grain_tokens):
        # "the most popular drink each month" with no drink read: the best month is no answer to it
        d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.45)
        d.notes.append("I found nothing to rank within each period, so this ranks the periods themselves: name "
                       "what to rank (for example “top 3 products each month”).")
        return
    if len(d.dimensions) == 1 and not d.dimensions[0].startswith(METRIC_TIME) and d.limit and d.limit > 1:
        toks = p.dimension_tokens.get(d.dimensions[0])
        if toks and min(toks) > 0 and p.tokens[min(toks) - 1].text.lower() in _GROUP_WORDS \
                and not _ranked_inside_metric(p, env):
            # "top 2 sellers at each shop" with no seller read: the top 2 shops are no answer to it
            group = env.lex.label(d.dimensions[0])
            p.settle(PlanOutcome(
                status="clarify",
                message=f"Top {d.limit} of what in each {group}? I could not tell what to rank within each {group}: "
                        f"name it (for example “top {d.limit} <things> in each {group} by {env.lex.metric_label(d.metrics[0])}”).",
                signals={"coverage": 0.0}))
            return
    if len(d.dimensions) < 2:
        return
    most, least = MOST_RE.search(p.question), LEAST_RE.search(p.question)
    if d.limit is None and not (most or least):
        return  # no ranking asked for
    words = [t.text.lower() for t in p.tokens]
    groups = []
    grain_after_group_word = any(i > 0 and words[i - 1] in _GROUP_WORDS for i in p.grain_tokens)
    for ref in d.dimensions:
        toks = p.dimension_tokens.get(ref)
        if toks and min(toks) > 0 and words[min(toks) - 1] in _GROUP_WORDS:
            groups.append(ref)
        elif not toks and ref.startswith(METRIC_TIME) and grain_after_group_word:
            groups.append(ref)  # "each month": a grain word read as the time breakdown
    if not groups or len(groups) >= len(d.dimensions):
        return
    if d.limit is None:  # "the best selling product per store": the one at the top of each group
        if bool(most) == bool(least):
            return  # both or neither: which end is asked for is unclear
        d.limit = 1
        d.order_by = [OrderBy(ref=d.metrics[0], descending=bool(most))]
    elif not d.order_by:
        return
    d.rank_within = groups
    labels = " and ".join(env.lex.label(g) for g in groups)
    d.notes.append(f"Ranked within each {labels}: the top {d.limit} of every {labels}, ties kept.")

