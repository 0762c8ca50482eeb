"""Rates per entity and running totals. Rates per entity: "minutes played per active player", "how many sessions does a viewer rack up on average",
"hours the average paying subscriber watched per month".

A metric per entity is the metric computed for each entity, then averaged over the entities that have rows
(:class:`~lore.types.PerEntity`). It is read when the question names a metric, then an entity after "per", after
"the average" or "the typical", or after "a" or "an" with an average asked ("on average", "average", "typical");
"in each store" stays a breakdown, and so does "cost per team" with no average asked. The entity
is named by a node's words ("per customer"), or by a metric counting it ("per active player", where the layer
counts active players as distinct accounts): that count is then the entity, not a second metric. A ratio the
layer defines for the two ("sales per paying customer") is read before this pass and wins. "per month" after
the entity takes each entity's value per month before the average; "by month" or "each month" stays a breakdown.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lore.plan.catalog import ARTICLES, FILLER
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Parse
from lore.plan.offline.text import tokens_in
from lore.plan.timeparse import TimeRange, default_grain
from lore.retrieve.lexical import stem
from lore.semantic.compile import not_additive
from lore.semantic.spec import METRIC_TIME, Metric
from lore.plan.words import COUNT_CUE_RE, NUMBER_WORDS
from lore.types import Grounding, PerEntity, PlanOutcome, Threshold

#: an average asked in words
AVERAGE_RE = re.compile(r"\b(?:on\s+average|average|avg|mean|typical)\b", re.I)
#: words that may stand between "per" and the entity ("per active player", "per unique customer")
_QUALIFIERS = frozenset({"active", "unique", "distinct", "individual", "single", "typical", "average", "avg",
                         "mean", "paying", "engaged"})


def per_entity_rate(p: Parse, env: Env) -> None:
    d, lex, tokens = p.draft, env.lex, p.tokens
    if p.outcome is not None or not d.metrics or d.adhoc or d.rows_of is not None or d.share is not None \
            or d.compare is not None:
        return
    if any("ratio of two metrics" in g.source for g in d.groundings if g.kind == "metric") or any(
            (m := lex.layer.metrics.get(x)) is not None and (m.agg == "avg" or (m.is_derived and "/" in (m.expr or "")))
            for x in d.metrics):
        _ratio_is_per_entity(p, env)  # a ratio or an average already: "orders per customer at each store"
        return
    averaged = AVERAGE_RE.search(p.question)
    doers = _how_often(p, env)
    found = _counted_entity(p, env, bool(averaged))
    if found is None:
        if doers is not None:  # "how many times did customers order": the times, not the customers
            d.metrics = [m for m in d.metrics if m != doers]
            d.groundings = [g.model_copy(update={"ref": d.metrics[0], "source": f"{g.source} (how many times)"})
                            if g.kind == "metric" and g.ref == doers else g for g in d.groundings]
        return
    entity, counter, at = found
    # (not at a grain of the rate's own, "a month": each entity's value in each month, averaged, is no ratio by month)
    defined = next((x.name for x in lex.layer.metrics.values() if counter is not None and len(d.metrics) == 2
                    and _rate_grain(p) is None and ratio_parts(x) == (d.metrics[0], counter)), None)
    if defined is not None:  # "items on a ticket, on average": the ratio the layer defines for the two wins
        d.groundings = [g for g in d.groundings if not (g.kind == "metric" and g.ref in d.metrics)]
        d.groundings.append(Grounding(kind="metric", ref=defined, phrase=p.words(min(at), max(at) + 1),
                                      source=f"the defined ratio of {lex.metric_label(d.metrics[0])} to "
                                             f"{lex.metric_label(counter)}", score=0.9))
        d.metrics = [defined]
        p.use(at, "metric")
        if averaged:
            p.use([i for i, t in enumerate(tokens) if AVERAGE_RE.fullmatch(t.text) or t.text.lower() == "on"
                   and i + 1 < len(tokens) and tokens[i + 1].text.lower() == "average"], "metric")
        return
    if counter is not None:
        d.metrics = [m for m in d.metrics if m != counter]
        d.groundings = [g for g in d.groundings if not (g.kind == "metric" and g.ref == counter)]
    for ref, toks in list(p.dimension_tokens.items()):
        if ref in d.dimensions and toks and set(toks) <= set(at):
            d.dimensions.remove(ref)  # "per customer" read as a breakdown by customer: the entity, not a breakdown
            d.groundings = [g for g in d.groundings if not (g.kind == "dimension" and g.ref == ref)]
    grain = _rate_grain(p)
    if grain is not None:
        d.dimensions = [x for x in d.dimensions if x != f"{METRIC_TIME}:{grain}"]
        d.groundings = [g for g in d.groundings if not (g.kind == "grain" and g.ref == f"{METRIC_TIME}:{grain}")]
    if not d.metrics:
        return
    d.per = PerEntity(entity=entity, grain=grain)
    node = lex.layer.nodes.get(entity.split(".")[0])
    if node is not None and node.kind == "source" and node.time_column and \
            entity.split(".")[0] not in lex.facts_of(d.metrics) and any(
            _rows_counted_by(env, x.name) == entity for x in lex.layer.metrics.values()):
        # the entity is an event counted in its own right ("items per order"): those with none are left out of the
        # average here, and "per order" may mean over every order; an answer to check, not to trust blindly
        d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.75)
    p.use(at, "metric")
    if averaged:
        p.use([i for i, t in enumerate(tokens) if AVERAGE_RE.fullmatch(t.text) or t.text.lower() == "on"
               and i + 1 < len(tokens) and tokens[i + 1].text.lower() == "average"], "metric")
    what = lex.label(entity)
    d.groundings.append(Grounding(kind="dimension", ref=entity, phrase=p.words(min(at), max(at) + 1),
                                  source="the entity a rate is per", score=0.95))
    d.notes.append(f"Per {_singular(what)}: {', '.join(lex.metric_label(m) for m in d.metrics)} of each "
                   f"{_singular(what)} with any" + (f" in a {grain}" if grain else "") + ", then the average over them ("
                   + ("every " + _singular(what) + "-" + grain + " counts once" if grain else
                      f"{_article(_singular(what))} {_singular(what)} with none is not counted") + ").")


_HOW_OFTEN_RE = re.compile(r"\bhow\s+(?:many\s+times|often)\b", re.I)


def _how_often(p: Parse, env: Env) -> str | None:
    """"how many times did the average customer order": the rows a distinct count counts the doers of, counted
    (the count of the same rows first, the distinct count left to name the entity the rate is per); the distinct
    count so moved, if one was."""
    d, lex = p.draft, env.lex
    if len(d.metrics) != 1 or not _HOW_OFTEN_RE.search(p.question):
        return None
    m = lex.layer.metrics.get(d.metrics[0])
    if m is None or entity_counted_by(env, m.name) is None:
        return None
    counts = [x.name for x in lex.layer.metrics.values() if x.agg == "count" and x.source == m.source
              and (x.filter or None) == (m.filter or None)]
    if len(counts) != 1:
        return None
    d.metrics = [counts[0], m.name]
    return m.name


#: words naming one entity as a sentence's subject ("a customer", "each account", "the typical player")
_ONE_OF = frozenset({"a", "an", "one", "each", "every", "typical", "average"})


def _ratio_is_per_entity(p: Parse, env: Env) -> None:
    """A defined ratio over a count of entities ("sales per paying customer") is per that entity already: a
    breakdown by the same entity read from "per paying ..." is the ratio's denominator, not rows. Averaged at a
    grain of its own ("on average, how much does a customer spend per month"), it is the numerator per entity and
    grain: every entity's value in each bucket, averaged."""
    d, lex = p.draft, env.lex
    grain = _rate_grain(p)
    metric = lex.layer.metrics.get(d.metrics[0]) if len(d.metrics) == 1 else None
    match = next((m for m in p.metric_matches if metric is not None and m.ref == metric.name), None)
    # "how much does a customer spend per month": one entity as the subject, at a grain of its own (not "spend
    # per customer per month", the ratio by month)
    subject = match is not None and match.start > 0 and p.tokens[match.start - 1].text.lower() in _ONE_OF
    parts = ratio_parts(metric) if metric is not None else None
    if grain is not None and subject and AVERAGE_RE.search(p.question) and parts is not None:
        numerator, denominator = parts
        entity = entity_counted_by(env, denominator)
        if entity is not None and numerator in lex.layer.metrics:
            d.metrics = [numerator]
            d.dimensions = [x for x in d.dimensions if x != f"{METRIC_TIME}:{grain}"]
            d.groundings = [g for g in d.groundings if not (g.kind == "grain" and g.ref == f"{METRIC_TIME}:{grain}")]
            d.per = PerEntity(entity=entity, grain=grain)
            d.notes.append(f"{lex.metric_label(metric.name)[:1].upper()}{lex.metric_label(metric.name)[1:]} per "
                           f"{grain}: the {lex.metric_label(numerator)} of each {_singular(lex.label(entity))} in "
                           f"each {grain} it has any, then the average over them.")
            return
    counted = set()
    for name in d.metrics:
        m = lex.layer.metrics.get(name)
        if m is not None and m.is_derived and m.expr and "/" in m.expr:
            denominator = m.expr.rsplit("/", 1)[1].strip(" ()")
            if (e := entity_counted_by(env, denominator)) is not None:
                counted.add(e)
    for ref in list(d.dimensions):
        toks = p.dimension_tokens.get(ref, ())
        if ref in counted and toks and min(toks) > 0 and p.tokens[min(toks) - 1].text.lower() == "per":
            d.dimensions.remove(ref)
            d.groundings = [g for g in d.groundings if not (g.kind == "dimension" and g.ref == ref)]
            d.notes.append(f"{lex.metric_label(d.metrics[0])[:1].upper()}{lex.metric_label(d.metrics[0])[1:]} is "
                           f"already per {_singular(lex.label(ref))}: no row per {_singular(lex.label(ref))}.")


def _counted_entity(p: Parse, env: Env, averaged: bool) -> tuple[str, str | None, list[int]] | None:
    """The entity a rate is per, the metric that named it by counting it (None when a node's words did), and the
    tokens naming it."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    facts = lex.facts_of([d.metrics[0]])
    # a second metric counting distinct entities, right after "per" ("minutes per active player")
    for m in p.metric_matches:
        if m.ref not in d.metrics[1:] or not _introduced(p, m.start, averaged):
            continue
        entity = entity_counted_by(env, m.ref) or _rows_counted_by(env, m.ref)
        if entity is not None and lex.reachable(facts, entity):
            return entity, m.ref, list(range(m.start, m.end))
    # a node's words after "per", an average asked ("average revenue per customer"; "cost per team" alone is a
    # breakdown by team)
    rate_grain = _rate_grain(p) is not None
    for i, t in enumerate(tokens):
        # ("hours per account per month": a rate at a grain over an entity known only by its key is per entity, not
        # a breakdown by every key; "cost per team per month" stays a breakdown by team)
        by_key = any(i in toks and ref in d.dimensions and (c := lex.catalog.column(ref)) is not None
                     and c.kind == "identifier" for ref, toks in p.dimension_tokens.items())
        # ("orders per customer", where a customer is known only by a key: the rate, not a list of every key; "per
        # customer id" names the key itself, a breakdown)
        bare = by_key and not (i + 1 < len(tokens) and tokens[i + 1].text.lower() in _KEY_WORDS)
        keyed = by_key and (rate_grain or bare)
        if not (averaged or keyed) or p.used.get(i) not in (None, "dimension") or not _introduced(p, i, True):
            continue
        nodes = {n for n in lex.node_words.get(t.stem, frozenset()) if (key := _key_of(env, n)) is not None
                 and lex.reachable(facts, key)}
        if len(nodes) > 1:  # "per claim", read as a breakdown by the claims (not by their payments): that node
            read = {ref.split(".")[0] for ref, toks in p.dimension_tokens.items() if i in toks and ref in d.dimensions}
            nodes = nodes & read if len(nodes & read) == 1 else nodes
        if len(nodes) == 1:
            return _key_of(env, nodes.pop()), None, [i]  # type: ignore[return-value]
        # a word of a metric that counts the entity ("the average subscriber", where "active members" counts
        # distinct accounts)
        counted = {e for name, words in lex.own_words.items() if t.stem in words
                   and (e := entity_counted_by(env, name)) is not None and lex.reachable(facts, e)}
        if len(counted) == 1 and p.used.get(i) is None:
            return counted.pop(), None, [i]
    return None


#: words naming a key itself ("per customer id", "per order number")
_KEY_WORDS = frozenset({"id", "ids", "number", "numbers", "code", "codes", "key", "keys", "no", "num", "ref"})


def is_row_count(m: Metric) -> bool:
    """Whether a metric is the plain count of its table's rows: ``COUNT(*)``, no filter of its own."""
    return m.agg == "count" and (m.expr or "*") == "*" and not m.filter and not m.is_derived and bool(m.source)


def _rows_counted_by(env: Env, name: str) -> str | None:
    """The key of the node an unfiltered ``COUNT(*)`` counts the rows of: each row one entity ("an agent", where
    the layer counts agents as rows)."""
    m = env.lex.layer.metrics.get(name)
    return _key_of(env, m.source) if m is not None and is_row_count(m) else None


def _introduced(p: Parse, i: int, averaged: bool) -> bool:
    """Whether token ``i`` follows "per" (or "a", "an", "each", "every", "the" when an average is asked), with at
    most two qualifying words or values between ("per paying subscriber", "the average active user")."""
    j = i - 1
    skipped: list[str] = []
    while j >= 0 and len(skipped) < 2 and (p.tokens[j].text.lower() in _QUALIFIERS or p.used.get(j) in ("filter", "value")):
        skipped.append(p.tokens[j].text.lower())
        j -= 1
    if j < 0:
        return False
    word = p.tokens[j].text.lower()
    if word == "the":  # "the average subscriber" (not "the store": "in each store" is a breakdown)
        return any(w in ("average", "avg", "mean", "typical") for w in skipped)
    return word == "per" or (averaged and word in ("a", "an", "one", "any"))


def ratio_parts(metric: Metric) -> tuple[str, str] | None:
    """A derived metric that is one name over another ("revenue / ordering_customers"): the two names, else None."""
    if not metric.is_derived or metric.expr.count("/") != 1:
        return None
    numerator, denominator = (x.strip(" ()") for x in metric.expr.split("/"))
    return numerator, denominator


def entity_counted_by(env: Env, name: str) -> str | None:
    """The identifier a metric counts distinct values of (``COUNT(DISTINCT account_id)`` -> the node keyed by
    ``account_id``), if it is one."""
    m = env.lex.layer.metrics.get(name)
    if m is None or m.agg not in ("count_distinct",) or not m.expr:
        return None
    try:
        col = sqlglot.parse_one(m.expr, read="duckdb")
    except SqlglotError:
        return None
    if not isinstance(col, exp.Column):
        return None
    keyed = [n.name for n in env.lex.layer.nodes.values() if tuple(n.primary_key) == (col.name,)]
    if len(keyed) == 1:
        return f"{keyed[0]}.{col.name}"
    # the source's many-to-one link on that column names the entity ("orders.customer = customers.id")
    source = env.lex.layer.nodes.get(m.source or "")
    for link in source.links if source is not None and not keyed else ():
        target = env.lex.layer.nodes.get(link.to)
        if link.cardinality != "many_to_one" or link.role or target is None or len(target.primary_key) != 1:
            continue
        sides = {x.strip().lower() for x in link.on.split("=")}
        if sides == {f"{source.name}.{col.name}".lower(), f"{target.name}.{target.primary_key[0]}".lower()}:
            return f"{target.name}.{target.primary_key[0]}"
    return None


def _key_of(env: Env, node: str) -> str | None:
    n = env.lex.layer.nodes.get(node)
    if n is None or len(n.primary_key) != 1:
        return None
    return f"{node}.{n.primary_key[0]}"


def _rate_grain(p: Parse) -> str | None:
    """"per month", "a month", "monthly" as the rate's own grain (not "by month" or "each month")."""
    for g in p.draft.groundings:
        if g.kind == "grain" and re.match(r"(?:per|a|an)\s", g.phrase.lower()):
            return g.ref.split(":", 1)[1]
    return None


def _article(word: str) -> str:
    """"a" or "an" before ``word``: "an agent", "a store"."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _singular(label: str) -> str:
    text = re.sub(r"\s*\b(?:id|ids|key|code|number|no)$", "", label.lower()).strip()
    return text[:-1] if text.endswith("s") and not text.endswith("ss") else text


#: a running total asked in words ("cumulative revenue", "running total of installs", "running rev total",
#: "revenue to date by month")
RUNNING_RE = re.compile(r"\b(?:cumulative(?:ly)?|running\s+(?:[a-z$]+\s+){0,2}?(?:total|sum|count|tally)|accumulated|rolling\s+sum|"
                        r"(?:to\s+date|so\s+far)\s+(?:by|each|every|per)\s+(?:day|week|month|quarter|year))\b", re.I)


def running_total(p: Parse, env: Env) -> None:
    """"cumulative UA spend by month in 2026", "running total of signups by quarter": each bucket's value and the
    total so far, over the time breakdown (by the grain that suits the period when none is named). A metric that
    does not add up has no running total: asked back with the reason."""
    d, lex = p.draft, env.lex
    m = RUNNING_RE.search(p.question)
    if m is None or p.outcome is not None or not d.metrics or d.rows_of is not None or d.compare is not None \
            or d.share is not None or d.per is not None:
        return
    for name in d.metrics:
        metric = lex.layer.metrics.get(name)
        kind = not_additive(metric) if metric is not None else "defined in the question"
        if kind is not None:
            label = lex.metric_label(name)
            p.settle(PlanOutcome(
                status="clarify", suggestions=(name,), signals={"intent": 0.0},
                message=f"{label[:1].upper()}{label[1:]} has no running total: it is {kind}, so its values do not "
                        f"add up over time. I can show {label} by month instead."))
            return
    times = [x for x in d.dimensions if x.startswith(METRIC_TIME)]
    if not times:
        grain = default_grain(TimeRange(start=d.time.start, end=d.time.end, label="", span=(0, 0))
                              if d.time is not None else None, env.today)
        d.dimensions.append(f"{METRIC_TIME}:{grain}")
        d.notes.append(f"The running total is shown by {grain}, which suits the period asked about.")
    elif len(times) > 1:
        return
    d.running_total = True
    p.use(sorted(tokens_in(p.tokens, m.span())), "metric")
    d.notes.append("Each bucket's value, and the running total from the first bucket of the period"
                   + (" (restarting for each " + " and ".join(lex.label(x) for x in d.dimensions
                                                                if not x.startswith(METRIC_TIME)) + ")"
                      if any(not x.startswith(METRIC_TIME) for x in d.dimensions) else "") + ".")


#: a threshold in words: "more than 10", "over $1,000", "at least 5", "fewer than 3", "exactly twice"
THRESHOLD_RE = re.compile(
    r"\b(?P<op>more\s+than|over|above|greater\s+than|in\s+excess\s+of|at\s+least|no\s+fewer\s+than|no\s+less\s+than|"
    r"fewer\s+than|less\s+than|under|below|at\s+most|no\s+more\s+than|up\s+to|exactly|only)\s+\$?\s*"
    r"(?P<n>\d[\d,]*(?:\.\d+)?|once|twice|thrice|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")"
    r"(?:\s*(?P<k>k|thousand|m|million)\b)?(?P<pct>\s*%|\s+percent\b)?", re.I)
#: a threshold right where a phrase ends ("spent| over $1,000")
THRESHOLD_AT_START_RE = re.compile(r"\s*" + THRESHOLD_RE.pattern, re.I)
_OPS = {"more than": ">", "over": ">", "above": ">", "greater than": ">", "in excess of": ">", "at least": ">=",
        "no fewer than": ">=", "no less than": ">=", "fewer than": "<", "less than": "<", "under": "<", "below": "<",
        "at most": "<=", "no more than": "<=", "up to": "<=", "exactly": "=", "only": "="}


def read_threshold(text: str) -> tuple[str, float] | None:
    """The comparison and the number of a threshold in words.

    >>> read_threshold("more than 10 hours"), read_threshold("over $1,000"), read_threshold("at least twice")
    (('>', 10.0), ('>', 1000.0), ('>=', 2.0))
    >>> read_threshold("ordered 5 times") is None
    True
    """
    m = THRESHOLD_RE.search(text)
    if m is None:
        return None
    raw = m["n"].lower().replace(",", "")
    value = {"once": 1.0, "twice": 2.0, "thrice": 3.0}.get(raw)
    if value is None:
        value = float(NUMBER_WORDS[raw]) if raw in NUMBER_WORDS else float(raw)
    value *= {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}.get((m["k"] or "").lower(), 1.0)
    return _OPS[" ".join(m["op"].lower().split())], value


def without_threshold_percents(text: str) -> str:
    """``text`` without the percentages that are a threshold's number ("above 10%"): they ask for no share.

    >>> without_threshold_percents("tickets with a rate above 10% by store")
    'tickets with a rate  by store'
    """
    return THRESHOLD_RE.sub(lambda m: "" if m["pct"] else m.group(0), text)


def node_threshold(p: Parse, env: Env) -> bool:
    """"how many drivers logged over 10 hours of driving", "how many stores sold more than 500 items": a count of
    an entity named by its node's word, then a threshold on the one metric, counts the entities past it. The
    entity's own count metric ("agents", counted by the layer) read as a second metric is the entity."""
    d = p.draft
    if len(d.metrics) == 2 and COUNT_CUE_RE.search(p.question):
        for counter in list(d.metrics):
            m = next((x for x in p.metric_matches if x.ref == counter), None)
            counted = (_rows_counted_by(env, counter) or entity_counted_by(env, counter)) if m is not None else None
            if m is None or m.end - m.start != 1 or counted is None:
                continue
            kept, groundings = list(d.metrics), list(d.groundings)
            d.metrics = [x for x in d.metrics if x != counter]
            used = p.used.pop(m.start, None)
            if _node_threshold(p, env, expect=counted):
                return True
            d.metrics, d.groundings = kept, groundings
            if used is not None:
                p.used[m.start] = used
        return False
    return _node_threshold(p, env)


def _node_threshold(p: Parse, env: Env, expect: str | None = None) -> bool:
    d, lex, tokens = p.draft, env.lex, p.tokens
    cue = COUNT_CUE_RE.search(p.question)
    if len(d.metrics) != 1 or cue is None:
        return False
    m = next((x for x in p.metric_matches if x.ref == d.metrics[0]), None)
    after = [i for i in sorted(tokens_in(tokens, (cue.end(), len(p.question)))) if tokens[i].stem not in ARTICLES]
    if m is None or not after or after[0] >= m.start:
        return False
    noun = after[0]
    nodes = {n for n in lex.node_words.get(tokens[noun].stem, frozenset())
             if (key := _key_of(env, n)) is not None and lex.reachable(lex.facts_of(d.metrics), key)}
    if len(nodes) > 1:  # "stores": the stores, not the facts named after them (store visits, store orders)
        nodes = {n for n in nodes if lex.layer.nodes[n].kind == "dimension"}
    # or a word of a metric counting the entity ("how many subscribers", where "active subscribers" counts accounts)
    counted = {e for name, words in lex.own_words.items() if tokens[noun].stem in words
               and (e := entity_counted_by(env, name)) is not None and lex.reachable(lex.facts_of(d.metrics), e)}
    keys = {_key_of(env, n) for n in nodes} if nodes else counted
    if len(keys) != 1 or p.used.get(noun) not in (None, "context"):
        return False
    entity = keys.pop()
    if expect is not None and entity != expect:
        return False  # the entity the count metric counts, or nothing
    before = p.question[tokens[noun].end:tokens[m.start].start]
    hit = next((h for h in THRESHOLD_RE.finditer(before) if THEN_MEASURE_RE.fullmatch(before[h.end():])), None)
    offset = tokens[noun].end
    if hit is None:  # the threshold after the metric's words ("spent over $1,000")
        offset = tokens[m.end - 1].end
        hit = THRESHOLD_AT_START_RE.match(p.question[offset:])
    if hit is None or entity is None:
        return False
    said = tokens_in(tokens, (offset + hit.start(), offset + hit.end()))
    if not set_threshold(p, env, entity, d.metrics[0], hit.group(0), said):
        return False
    p.use([noun], "dimension")
    return True


#: what may stand between a threshold and the measure it is on ("over 500k in written business", "10 hours' worth of")
THEN_MEASURE_RE = re.compile(r"\s*(?:(?:in|of|worth\s+of|in\s+terms\s+of|['’]?s?\s*worth\s+of)\s+)?(?:the\s+)?", re.I)


def set_threshold(p: Parse, env: Env, entity: str, metric: str, condition: str, tokens: set[int]) -> bool:
    """Count the entities whose ``metric`` passes the threshold ``condition`` names; whether one was read."""
    d, lex = p.draft, env.lex
    read = read_threshold(condition)
    if read is None or metric not in lex.layer.metrics or not lex.reachable(lex.facts_of([metric]), entity):
        return False
    op, value = read
    if THRESHOLD_RE.search(condition)["pct"] and lex.layer.metrics[metric].format == "percent":  # type: ignore[index]
        value /= 100  # "an error rate above 10%": the metric's fraction 0.1
    d.threshold = Threshold(entity=entity, metric=metric, op=op, value=value)  # type: ignore[arg-type]
    d.metrics = [metric]
    d.groundings = [g for g in d.groundings if g.kind != "metric" or g.ref == metric]
    p.use(sorted(tokens), "filter")
    who = _singular(lex.label(entity))
    shown = f"{int(value):,}" if value.is_integer() else f"{value:,}"
    d.notes.append(f"Counted the {who}s whose {lex.metric_label(metric)} is {op} {shown}: "
                   f"{lex.metric_label(metric)} of each {who}" + (" in each row" if d.dimensions else "")
                   + ", then the ones past the threshold.")
    return True


#: "the priciest single order", "our biggest ever order", "the largest individual claim": the highest (or lowest)
#: value one entity takes; the noun is checked against the layer's nodes
_SINGLE_RE = re.compile(
    r"\b(?P<sup>largest|biggest|highest|priciest|costliest|most\s+expensive|most\s+costly|max(?:imum)?|"
    r"smallest|lowest|cheapest|least\s+expensive|min(?:imum)?)\s+(?:(?:single|one|individual|ever)\s+)+"
    r"(?P<noun>[a-z]+)\b", re.I)
#: "the most anyone spent on one order", "the most a customer paid for a single order"
_MOST_ON_ONE_RE = re.compile(
    r"\b(?:the\s+)?(?P<sup>most|least)\s+(?:(?:that\s+)?(?:anyone|anybody|someone|somebody|a\s+customer|any\s+customer|"
    r"one\s+customer|a\s+person|a\s+client|we)\s+)?(?:(?:has|have|had|ever|has\s+ever|have\s+ever)\s+)?"
    r"(?:spent|paid|spend|pay|charged|billed|made|earned|got)\s+(?:on|for|in|from)\s+(?:(?:a|one|any)\s+)?"
    r"(?:(?:single|one|individual)\s+)?(?P<noun>[a-z]+)\b", re.I)
#: words between the highest single entity and the measure it is highest in ("by", "in terms of")
_BESIDE = frozenset({"by", "in", "of", "terms", "for", "on", "the", "measured", "ranked"})
_LOWEST = frozenset({"smallest", "lowest", "cheapest", "least", "min", "minimum"})
_MONEY_SUPERLATIVES = frozenset({"priciest", "costliest", "expensive", "costly", "cheapest", "most", "least"})


def highest_single(p: Parse, env: Env) -> None:
    """"the priciest single order", "the most anyone spent on one order", "the largest individual claim": each
    entity's value of the measure, the highest (or lowest) taken (:class:`~lore.types.PerEntity` with ``stat``
    max or min). The measure is the metric named beside it, else a governed maximum (minimum) defined over that
    entity's rows, else, for money words ("priciest", "spent"), the revenue-like amount of its rows; with none of
    these nothing changes. "Single" is then no value ("single" customers)."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    if d.per is not None or d.rows_of is not None or d.share is not None or d.threshold is not None or d.adhoc:
        return
    hit = _SINGLE_RE.search(p.question) or _MOST_ON_ONE_RE.search(p.question)
    if hit is None:
        return
    noun = stem(hit.group("noun").lower())
    nodes = [n for n in lex.node_phrases.get((noun,), lex.node_words.get(noun, frozenset()))
             if lex.layer.nodes[n].primary_key]
    if len(nodes) != 1:
        return
    node = nodes[0]
    key = _key_of(env, node)
    if key is None:
        return
    span = tokens_in(tokens, hit.span())
    low = any(w in _LOWEST for w in hit.group("sup").lower().split())
    named = [m for m in d.metrics if (mt := lex.layer.metrics.get(m)) is not None
             and not (is_row_count(mt) and mt.source == node)  # ("order": the order itself, not a count of orders)
             and not set(_grounded_tokens(p, m)) <= span]
    # the measure named right after it ("the largest single order by number of items"); others named apart ("rev
    # and the priciest single order") are columns of their own
    end = max(span) + 1
    while end < len(tokens) and (tokens[end].text.lower() in _BESIDE or tokens[end].stem in FILLER):
        end += 1
    beside = [m for m in named if max(span) + 1 < min(_grounded_tokens(p, m), default=-1) <= end
              and tokens[max(span) + 1].text.lower() in _BESIDE]
    others = [m for m in named if m not in beside]
    stat = "min" if low else "max"
    governed = [m.name for m in lex.layer.metrics.values() if m.source == node and m.agg == stat and not m.filter]
    money = bool({w.lower() for w in hit.group("sup").split()} & _MONEY_SUPERLATIVES) or \
        hit.re is _MOST_ON_ONE_RE
    if beside:
        measure, per = beside[0], True
    elif len(governed) == 1:
        measure, per = governed[0], False  # the layer's own "largest order": no operation needed
    else:
        from lore.plan.offline.metrics import revenue_like  # (metrics imports this module)

        measure = revenue_like(env, [key]) if money or hit.re is _SINGLE_RE else None
        per = True
        if measure is None or lex.layer.metrics[measure].source != node:
            return  # (an amount of other rows, or none: not this entity's own value)
    if per and others:
        return  # (a value per entity and plain totals cannot share one query: left as read, its words unexplained)
    d.metrics = [*others, measure] if not per else [measure]
    kept = set(d.metrics)
    d.groundings = [g for g in d.groundings if g.kind != "metric" or g.ref in kept and g.ref != measure]
    d.groundings.append(Grounding(kind="metric", ref=measure, phrase=hit.group(0).strip(),
                                  source="rule: the highest single value" if stat == "max" else
                                  "rule: the lowest single value", score=0.85))
    d.signals["metric_match"] = max(d.signals.get("metric_match", 0.0), 0.85)
    if per:
        d.per = PerEntity(entity=key, stat=stat)  # type: ignore[arg-type]
        d.notes.append(f"Took {lex.metric_label(measure)} of each {_singular(lex.layer.nodes[node].label or node)}, "
                       f"then the {'lowest' if low else 'highest'}.")
    p.use(span, "metric")
    drop = set(span)
    p.accepted = [v for v in p.accepted if not tokens_in(tokens, v.span) & drop]
    p.mentions = [v for v in p.mentions if not tokens_in(tokens, v.span) & drop]
    d.filters = [f for f in d.filters if not any(g.kind == "filter" and g.ref == f.describe()
                                                 and set(phrase_tokens(p, g.phrase)) & drop for g in d.groundings)]
    d.order_by, d.limit = [], None


def _grounded_tokens(p: Parse, metric: str) -> list[int]:
    """The tokens of the metric phrases naming ``metric``."""
    return [k for m in p.metric_matches if m.ref == metric for k in range(m.start, m.end)]


def phrase_tokens(p: Parse, words: str) -> list[int]:
    """The tokens where ``words`` first appears in the question (none when it does not)."""
    at = p.question.lower().find(words.lower())
    return sorted(tokens_in(p.tokens, (at, at + len(words)))) if at >= 0 and words else []
