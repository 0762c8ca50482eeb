"""The breakdown pass: every way a question asks to split the answer, and every item of a list.

Forms read, all from a closed list of English words (:mod:`lore.plan.words`):

- triggers followed by a list: "by store, customer id and month", "split by", "grouped by", "broken down by",
  "across", "per", "for each", "each", "every", "of every";
- "which store ...", "what product ..." (an attribute or an entity after the question word);
- "top 5 stores", "the 3 biggest products" (the ordering pass takes the number);
- possessives: "each customer's orders", "the store's revenue".

An item is an attribute (identifiers included: "by order id"), an entity (a node: "by store" uses the attribute
that stands for its rows), or a grain ("by month"). Right after a trigger an attribute wins over a metric
named by the same words ("revenue by store" never means the number of stores). Words after a trigger that
name nothing the layer knows are kept as :class:`~lore.plan.offline.parse.Unresolved`, so the question is
asked back instead of answered without the breakdown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lore.plan.catalog import ARTICLES, Entry, LEADING, Token, phrase
from lore.plan.offline.env import Env
from lore.plan.offline.lexicon import is_metric_time
from lore.plan.offline.ordering import FIRST_METRIC
from lore.plan.offline.parse import Mention, Parse, Unresolved
from lore.plan.offline.text import gap, tokens_in
from lore.plan.timeparse import TimeRange, default_grain
from lore.plan.words import (
    BOUNDS_RE,
    NEGATED_AFTER_RE,
    FUNCTION_WORDS,
    GRAIN_WORDS,
    ITEM_STOPS,
    MOST_RE,
    LEAST_RE,
    MEASURE_WORDS,
    NUMBER_ALT,
    ORDERING_TRIGGERS,
    RANK_ADJECTIVES,
    RANKED_IDIOMS,
    RANKED_NOUN_RE,
    TOP_RE,
    WHICH_WORDS,
    ADD_BREAKDOWN_RE,
    ALL_OF_RE,
    COMPARE_RE,
    NOT_TRIGGERS_RE,
    PARTICIPLE_RE,
    RANK_LIST_RE,
    LISTING_ANY_RE,
    LISTING_RE,
    STRONG_LISTING_ANY_RE,
    STRONG_LISTING_RE,
    SUPERLATIVE_RE,
    WITH_ATTRIBUTES_RE,
    breakdown_triggers,
    number_value,
)
from lore.retrieve.lexical import STOP_WORDS
from lore.semantic.spec import GRAINS, METRIC_TIME
from lore.types import Filter, Grounding, OrderBy, PlanOutcome

#: triggers after which a value means each row of its entity ("how many of each drink")
_EACH = frozenset({"each", "every", "for each", "for every", "of each", "by each", "by every"})
#: triggers whose following words must name a breakdown: unknown words there are asked back
_STRONG = frozenset({"by", "per", "for each", "for every", "broken down by", "broken out by", "break out by",
                     "break it out by", "break that out by", "broke out by", "breakout by", "break down by", "break it down by",
                     "break that down by", "break this down by", "breakdown by", "breaking down by", "split by",
                     "split it by", "split that by", "split into", "split across", "grouped by", "group by",
                     "grouped per", "segmented by", "segment by", "bucketed by", "sliced by", "slice by", "across",
                     "across all", "in each", "within each", "of each", "of every", "per each", "by each", "by every"})
_THE_N = re.compile(r"\b(?:the\s+)?(\d{1,3}|" + NUMBER_ALT + r")\s+(?:most|least|biggest|largest|smallest|highest|"
                    r"lowest|best|worst|top|bottom|leading|busiest|quietest)?(?:[\s-]+(?:popular|selling|earning|"
                    r"grossing|performing|rated|paying|spending|watched|played|used|active)\b)?\s*", re.I)
_MAX_ITEM_WORDS = 4
#: "what % of the indemnity ...": the question word asks for a share of the measure named next, no breakdown
_SHARE_AFTER = re.compile(r"\s*(?:%|(?:percent|percentage|share|fraction|proportion|portion)\b)", re.I)
#: verbs after "what"/"which" that make it a question about a value ("what was the tax ...")
AUXILIARIES = frozenset("is are was were be been do does did has have had will would can could should may might "
                        "'s".split())


@dataclass(frozen=True)
class Item:
    """One resolved breakdown item."""

    ref: str
    tokens: tuple[int, ...]
    source: str
    score: float


def read_breakdowns(p: Parse, env: Env) -> None:
    """Find every breakdown (see the module docstring) and add each item as a dimension."""
    text, tokens = p.question, p.tokens
    if not tokens:
        return
    facts = env.lex.facts_of([m.ref for m in p.metric_matches])
    starts: list[tuple[int, str, tuple[int, ...]]] = []  # (first token of the list, trigger words, trigger tokens)
    idioms = [im.span() for im in NOT_TRIGGERS_RE.finditer(text)] + _all_of(p, env)
    for m in breakdown_triggers(text):
        trig = m.group(1).lower()
        if any(a <= m.start() < b for a, b in idioms):
            continue  # "side by side", "one by one"
        if trig == "by" and m.start() > 0 and _agent(p, env, text, m):
            continue  # "jaffles bought by returning customers": the agent, not a breakdown
        trig_tokens = tuple(sorted(tokens_in(tokens, m.span())))
        if not trig_tokens or any(p.used.get(i) in ("time",) for i in trig_tokens):
            continue
        if _inside_metric_name(p, trig_tokens) and not _item_outruns_metric(p, env, trig_tokens, facts):
            continue  # "revenue per customer" as one metric's name
        first = trig_tokens[-1] + 1
        if first >= len(tokens):
            continue
        starts.append((first, trig, trig_tokens))
    for m in RANK_LIST_RE.finditer(text):  # "rank the stores by revenue", "sort our products by sales"
        trig_tokens = tuple(sorted(tokens_in(tokens, m.span())))
        if trig_tokens and trig_tokens[-1] + 1 < len(tokens):
            starts.append((trig_tokens[-1] + 1, "rank", trig_tokens))
    add = ADD_BREAKDOWN_RE.match(text)  # a follow-up: "add age band", "and include the store"
    if add is not None:
        trig_tokens = tuple(sorted(tokens_in(tokens, add.span())))
        if trig_tokens and trig_tokens[-1] + 1 < len(tokens):
            starts.append((trig_tokens[-1] + 1, "add", trig_tokens))
    in_metrics = {k for m in p.metric_matches for k in range(m.start, m.end)}
    for i, t in enumerate(tokens):  # "which store", "what product" (not "what % of the indemnity": a share of it)
        if t.text.lower() in WHICH_WORDS and i + 1 < len(tokens) and not (
                _SHARE_AFTER.match(text, t.end) and next((k for k in range(i + 1, len(tokens)) if tokens[k].stem
                                                          not in ARTICLES and not _SHARE_AFTER.fullmatch(tokens[k].text)), None)
                in in_metrics):
            starts.append((i + 1, t.text.lower(), (i,)))
    for m in TOP_RE.finditer(text):  # "top 5 stores"
        trig_tokens = tuple(sorted(tokens_in(tokens, m.span())))
        k = trig_tokens[-1] + 1 if trig_tokens else len(tokens)
        if k < len(tokens) and tokens[k].text.lower() in RANKED_IDIOMS and tokens[k].stem not in env.lex.node_words:
            p.use([k], "order")  # "the top 3 performers"
            continue
        if trig_tokens and trig_tokens[-1] + 1 < len(tokens) \
                and not RANKED_NOUN_RE.match(text, tokens[trig_tokens[-1] + 1].start):
            starts.append((trig_tokens[-1] + 1, "top n", ()))  # ("top 3 best-selling jaffles": read after "selling")
    for m in RANKED_NOUN_RE.finditer(text):  # "top stores by revenue", "the busiest regions"
        trig_tokens = tuple(sorted(tokens_in(tokens, m.span())))
        k = trig_tokens[-1] + 1 if trig_tokens else len(tokens)
        if k < len(tokens) and tokens[k].text.lower() in RANKED_IDIOMS and tokens[k].stem not in env.lex.node_words:
            p.use([k], "order")  # "the 3 best sellers": the rows already broken down, ranked
            continue
        if trig_tokens and trig_tokens[-1] + 1 < len(tokens) and not any(s[0] == trig_tokens[-1] + 1 for s in starts) \
                and not any(s[1] in ("which", "whose") and s[0] <= trig_tokens[0] for s in starts) \
                and not tokens[trig_tokens[-1] + 1].text.isdigit() \
                and not any(trig_tokens[-1] + 1 in tokens_in(tokens, v.span) for v in p.all_mentions):
            starts.append((trig_tokens[-1] + 1, "ranked", ()))  # (a value after it: a superlative noun, below)
    bounds = BOUNDS_RE.sub(" ", text)
    if MOST_RE.search(bounds) or LEAST_RE.search(bounds):  # ("at least one" ranks nothing)
        for m in _THE_N.finditer(text):  # "the 3 biggest products"
            trig_tokens = tuple(sorted(tokens_in(tokens, m.span())))
            if trig_tokens and trig_tokens[-1] + 1 < len(tokens) and not re.fullmatch(r"\d{4}", m.group(1)) \
                    and not any(s[0] == trig_tokens[-1] + 1 for s in starts):  # ("bottom 2 drinks": read once)
                starts.append((trig_tokens[-1] + 1, "top", ()))
    _superlative_nouns(p, env, facts)
    starts.sort()
    for first, trig, trig_tokens in starts:
        if trig in ORDERING_TRIGGERS:
            continue
        _read_list(p, env, first, trig, trig_tokens, facts)
    _read_possessives(p, env, facts)
    _each_one(p, env, facts)
    _each_inside_metric(p, env, facts)


def _each_inside_metric(p: Parse, env: Env, facts: list[str]) -> None:
    """"what did each supply cost us", "what did each ingredient cost": a metric named by words whose first one,
    right after "each" / "every", names a node the metric reaches ("supply cost", "ingredient cost" for the supplies):
    that word is also the breakdown, the rows of that node (the metric keeps its words)."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    if d.rows_of is not None:
        return
    for m in p.metric_matches:
        j = m.start
        if m.end - m.start < 2 or j == 0 or tokens[j - 1].text.lower() not in ("each", "every") or j - 1 in p.used \
                and p.used[j - 1] != "operator":
            continue
        reach = lex.facts_of([m.ref]) or facts
        nodes = [n for n in lex.node_words.get(tokens[j].stem, frozenset())
                 if (entity := lex.entity.get(n)) is not None and n not in reach and lex.reachable(reach, entity)]
        entities = {lex.entity[n] for n in nodes}
        if len(entities) != 1 or any(x.split(".")[0] in nodes for x in d.dimensions):
            continue
        entity = next(iter(entities))
        if d.add_dimension(entity, Grounding(kind="dimension", ref=entity, phrase=p.words(j - 1, j + 1),
                                             source=f"each {lex.label(entity)}, named inside the metric's words",
                                             score=0.9)):
            p.dimension_tokens[entity] = (j - 1, j)
            p.use([j - 1], "dimension")


_EACH_ONE_RE = re.compile(r"\b(?:for\s+|of\s+)?(?:each|every)\s+(?:one|single\s+one|of\s+(?:them|those|these|the\s+above))\b",
                          re.I)


def _each_one(p: Parse, env: Env, facts: list[str]) -> None:
    """"how did the drinks do ...? sales for each one": "each one" stands for the things named before it, the rows of
    the entity a value of a kind describes (the drinks: each product whose type is beverage) or of a node named;
    with nothing to stand for, or more than one, it is asked back: a breakdown asked for is never dropped."""
    hit = _EACH_ONE_RE.search(p.question)
    d, lex, tokens = p.draft, env.lex, p.tokens
    if hit is None or d.rows_of is not None or any(not x.startswith(METRIC_TIME) for x in d.dimensions):
        return
    said = sorted(tokens_in(tokens, hit.span()))
    if said and all(p.used.get(i) == "grain" for i in said[:2]):
        return  # "in every one of the past 4 quarters": a grain, read with the time
    before = [i for i in range(said[0]) if p.used.get(i) != "time"] if said else []
    found: dict[str, tuple[Mention | None, int]] = {}
    for v in p.all_mentions:
        i = min(tokens_in(tokens, v.span), default=len(tokens))
        entity = lex.entity.get(v.ref.split(".")[0])
        if i in before and v.score >= 1.0 and entity is not None and entity != v.ref and (
                not facts or lex.reachable(facts, entity)):
            found[entity] = (v, i)
    for i in before:
        for n in lex.node_words.get(tokens[i].stem, frozenset()) if not found else ():
            entity = lex.entity.get(n)
            if entity is not None and lex.layer.nodes[n].kind == "dimension" and (not facts or lex.reachable(facts, entity)):
                found[entity] = (None, i)
    if len(found) != 1:
        reach = [x for x in (lex.reachable_dims(facts) if facts else []) if not x.startswith(METRIC_TIME)][:3]
        p.settle(PlanOutcome(
            status="clarify", signals={"coverage": 0.0}, suggestions=tuple(reach),
            message=f"I couldn't tell what “{hit.group(0).strip()}” stands for, so I can't break the answer down by it. "
                    "Name it" + (f" (for example “by {lex.label(reach[0])}”)." if reach else ".")))
        return
    entity, (mention, i) = next(iter(found.items()))
    if mention is not None and not any(f.ref == mention.ref and mention.value in f.values for f in d.filters) \
            and not _fixed_by_metric(env, d.metrics or [m.ref for m in p.metric_matches], mention):
        f = Filter(ref=mention.ref, values=(mention.value,))
        d.filters.append(f)
        d.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=p.words(i, i + 1),
                                      source=f"value of {lex.label(mention.ref)}", score=mention.score))
    if mention is not None:  # (read here: not a filter again)
        p.mentions = [v for v in p.mentions if (v.ref, v.value, v.span) != (mention.ref, mention.value, mention.span)]
    d.add_dimension(entity, Grounding(kind="dimension", ref=entity, phrase=hit.group(0).strip(),
                                      source=f"“{hit.group(0).strip()}”: each {lex.label(entity)} named before it",
                                      score=0.9))
    p.dimension_tokens[entity] = tuple(said)
    p.use(said, "dimension")


def _fixed_by_metric(env: Env, metrics: list[str], mention: Mention) -> bool:
    """Whether every metric's own filter already holds the value ("drinks sold" holds the drinks)."""
    return env.lex.filter_holds(metrics, mention.ref, mention.value)


def _all_of(p: Parse, env: Env) -> list[tuple[int, int]]:
    """"tax collected across all stores", "all shops together": every row of an entity as one whole, so no
    breakdown (the words are explained and the answer says so). Not when the question compares or splits."""
    if COMPARE_RE.search(p.question) or re.search(r"\b(?:each|every|per|split|broken|break|breakdown)\b", p.question, re.I):
        return []
    spans = []
    for m in ALL_OF_RE.finditer(p.question):
        if not (m.group(0).lower().startswith("across") or m.group("whole")):
            continue
        toks = tokens_in(p.tokens, m.span("noun"))
        if not toks or not all(p.tokens[i].stem in env.lex.node_words for i in toks):
            continue
        words = tokens_in(p.tokens, m.span())
        if any(p.used.get(i) not in (None, "context") for i in words):
            continue
        p.use(words, "context")
        label = m.group("noun").lower()
        p.draft.notes.append(f"Summed over all {label}; ask “by {label.rstrip('s')}” to see each.")
        spans.append(m.span())
    return spans


def _superlative_nouns(p: Parse, env: Env, facts: list[str]) -> None:
    """"the least popular drink", "our best-selling jaffle": a superlative before a value of an attribute ranks the
    rows of that attribute's entity (the value stays a filter): the breakdown is the entity, the top one shown."""
    tokens = p.tokens
    if any(t.text.lower() in WHICH_WORDS for t in tokens) or TOP_RE.search(p.question):
        return  # "which age group streams the most ...": the breakdown is named
    for m in SUPERLATIVE_RE.finditer(p.question):
        after = sorted(tokens_in(tokens, (m.end(), len(p.question))))[:2]
        if not after:
            continue
        j = after[0]
        mention = next((v for v in p.all_mentions if j in tokens_in(tokens, v.span) and v.score >= 1.0), None)
        first = min((i for i in tokens_in(tokens, m.span()) if tokens[i].stem not in ARTICLES), default=j)
        if mention is None or any(m2.start <= first and j < m2.end for m2 in p.metric_matches):
            continue  # ("the biggest single order": a metric's words, not a value)
        nxt = after[1] if len(after) > 1 else None
        if nxt is not None and nxt not in tokens_in(tokens, mention.span) and (
                tokens[nxt].stem in env.lex.node_words or any(m2.start == nxt for m2 in p.metric_matches)):
            continue  # "the biggest single order": the value is an adjective of the noun after it
        node = mention.ref.split(".")[0]
        entity = env.lex.entity.get(node)
        if entity is None or entity == mention.ref or (facts and not env.lex.reachable(facts, entity)):
            continue
        if p.draft.add_dimension(entity, Grounding(kind="dimension", ref=entity, phrase=m.group(0) + p.words(j, j + 1),
                                                   source=f"rule: a superlative ranks the {env.lex.label(entity)}s")):
            p.dimension_tokens[entity] = ()
        if not any(a.ref == mention.ref and a.value == mention.value for a in p.mentions):
            f = Filter(ref=mention.ref, values=(mention.value,))  # the value a metric phrase took is still a filter
            p.draft.filters.append(f)
            p.draft.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=p.words(j, j + 1),
                                                source=f"value of {env.lex.label(mention.ref)}", score=mention.score))
        least = bool(LEAST_RE.search(m.group(0)))
        p.draft.order_by = [OrderBy(ref=FIRST_METRIC, descending=not least)]
        counted = re.search(r"\b(\d{1,3}|" + NUMBER_ALT + r")\s+(?:of\s+)?(?:the\s+|our\s+|my\s+)?$",
                            p.question[:m.start()] + " ", re.I)
        count = number_value(counted.group(1)) if counted else None  # "our 3 best-selling jaffles"
        p.draft.limit = p.draft.limit or count or 1
        p.use(tokens_in(tokens, m.span()) | (tokens_in(tokens, counted.span(1)) if counted else set()), "order")
        return


def _item_outruns_metric(p: Parse, env: Env, trig_tokens: tuple[int, ...], facts: list[str]) -> bool:
    """"hours per account id": the words after a trigger inside a metric's name name an attribute reaching past
    that name, so they are a breakdown (the metric is read again from the words before the trigger)."""
    first = trig_tokens[-1] + 1
    if first >= len(p.tokens):
        return False
    item = _item_at(p, env, first, facts, allow_skip=False)
    ends = [m.end for m in p.metric_matches if m.start < trig_tokens[0] and trig_tokens[-1] < m.end - 1]
    return item is not None and bool(ends) and max(item.tokens) >= max(ends)


def _agent(p: Parse, env: Env, text: str, m: re.Match[str]) -> bool:
    """"bought by returning customers": after a participle, "by" names who did it when a value or an unknown word
    follows (a filter); "played by country" is still a breakdown."""
    before = text[:m.start()].split()
    if not before or not PARTICIPLE_RE.match(before[-1].strip(",.;:")) or \
            before[-1].lower() in ("grouped", "sorted", "ranked", "ordered", "split", "segmented", "bucketed"):
        return False
    after = [i for i in tokens_in(p.tokens, (m.end(), len(text))) if p.tokens[i].stem not in ARTICLES][:1]
    return bool(after) and (after[0] in p.reserved or p.tokens[after[0]].stem not in env.lex.catalog.vocabulary)


def _inside_metric_name(p: Parse, trig_tokens: tuple[int, ...]) -> bool:
    """The trigger is inside a metric's own name or label ("revenue per customer"); a synonym holding a trigger
    ("sales by product") does not hide the breakdown it names."""
    words = " ".join(p.tokens[i].text.lower() for i in trig_tokens)
    return any(m.start < trig_tokens[0] and trig_tokens[-1] < m.end - 1
               and (not m.source.startswith("synonym") or words in ("per", "each", "every", "for each", "per each"))
               for m in p.metric_matches)


def _read_list(p: Parse, env: Env, first: int, trig: str, trig_tokens: tuple[int, ...], facts: list[str]) -> None:
    """Read items after a trigger, joined by commas, "and", "&", "then", "by" ..."""
    tokens = p.tokens
    i = first
    count = 0
    while i < len(tokens):
        if count == 0 and trig in ("by", "rank") and _measure_key(p, i):
            return
        # ("split into regulars and one-off customers": two values of one attribute listed spell it out, though
        # one of them is also a word of a node)
        run = count > 0 and i in p.reserved or (count == 0 and trig not in _NO_VALUE_RUN and _values_listed(p, env, i) >= 2)
        item = None if run else _item_at(p, env, i, facts, allow_skip=(count == 0), trig=trig)
        if item is None and run:
            # "split by store, food vs drinks, and month": values spelling out a breakdown inside the list (read
            # with the filters, side by side); the list goes on after them
            j = _value_run_end(p, i)
            if NEGATED_AFTER_RE.match(p.question[tokens[j - 1].end:]):
                return  # "in each state, auto excluded": the value left out, a filter, never a breakdown
            count += 1
            refs = {v.ref for v in p.all_mentions if v.score >= 1.0 and tokens_in(tokens, v.span) & set(range(i, j))}
            if len(refs) != 1:
                return
            ref = refs.pop()
            if p.draft.add_dimension(ref, Grounding(kind="dimension", ref=ref, phrase=p.words(i, j),
                                                    source=f"values of {env.lex.label(ref)}, side by side")):
                p.dimension_tokens[ref] = ()  # (the values stay filters: the ones named, each its own row)
            node = ref.split(".")[0]
            near = {n for n, hops in env.lex.catalog.reach.get(node, {}).items() if hops <= 1} | {node}
            if j < len(tokens) and env.lex.node_words.get(tokens[j].stem, frozenset()) & near:
                p.use([j], "context")  # "one-off customers": the values' own rows named after them
                j += 1
            if j < len(tokens) - 1 and tokens[j].text.lower() in ("and", "then", "plus"):
                i = j + 1
                continue
            if j < len(tokens) and gap(p.question, tokens, j - 1, j).strip() == ",":
                i = j + 1 if tokens[j].text.lower() == "and" and j + 1 < len(tokens) else j
                continue
            return
        if item is None:
            if count == 0 and trig in _STRONG:
                _note_unresolved(p, env, trig, i)
            return
        after = item.tokens[-1] + 1
        if count > 0 and after < len(tokens) and tokens[after].text.lower() in ("only", "alone"):
            return  # "split by format, TBD slots only": a filter after the list, not another breakdown
        _add(p, env, item, trig, trig_tokens if count == 0 else ())
        count += 1
        nxt = item.tokens[-1] + 1
        if nxt >= len(tokens):
            return
        between = gap(p.question, tokens, nxt - 1, nxt)
        word = tokens[nxt].text.lower()
        if trig in WHICH_WORDS or trig in ("top", "top n", "rank", "ranked"):
            return  # "which store and month" is rare; "which store had ... and ..." is not a list
        if (word in ("and", "then", "plus", "by") or (word == "x" and not between)) and nxt + 1 < len(tokens):
            p.use([nxt], "operator")  # ("status x line": a cross of the two)
            i = nxt + 1
        elif between in (",", "&", "/", ", and", "and", "×", "*") or between.endswith(","):
            i = nxt
        else:
            return


#: triggers after which values listed are not a breakdown of their own ("across Boston and Denver": where it was summed)
_NO_VALUE_RUN = frozenset({"across", "top", "top n", "ranked", "rank", "which", "what", "whose"})


def _value_run_end(p: Parse, i: int) -> int:
    """The token after the values listed from ``i`` on, joined by "vs", "or", "/" or "and" ("food vs drinks")."""
    tokens = p.tokens
    j = i
    while j < len(tokens) and (j in p.reserved or tokens[j].text.lower() in ("vs", "versus", "or")
                               or tokens[j].text.lower() == "and" and j + 1 in p.reserved):
        j += 1
    return j


def _values_listed(p: Parse, env: Env, i: int) -> int:
    """How many sure values of one attribute are listed from token ``i`` on ("regulars and one-off": 2); none when
    the attribute's own name follows them ("split by jaffle/beverage type": read with the attribute)."""
    tokens = p.tokens
    j = _value_run_end(p, i)
    found = [v for v in p.all_mentions if v.score >= 1.0 and tokens_in(tokens, v.span) and
             min(tokens_in(tokens, v.span)) >= i and max(tokens_in(tokens, v.span)) < j]
    refs = {v.ref for v in found}
    if len(refs) != 1 or i not in p.reserved:
        return 0
    col = env.lex.column(next(iter(refs)))
    heads = {ph[-1] for t in ((col.name, col.label or "", *col.synonyms) if col is not None else ()) if (ph := phrase(t))}
    if j < len(tokens) and tokens[j].stem in heads:
        return 0
    return len({v.value for v in found})


#: "top 3 states by percentage growth in fees": a change between periods as the ranking key
_CHANGE_KEYS = frozenset({"percentage", "percent", "pct", "growth", "change", "increase", "decrease", "decline",
                          "drop", "gain", "rise", "fall"})


def _measure_key(p: Parse, i: int) -> bool:
    """"the 3 best-selling jaffles by number sold", "top stores by amount spent": in a ranked question, "by" and a
    measure word name the ranking key (the metric, read by the metric passes), not a breakdown."""
    tokens = p.tokens
    while i < len(tokens) and tokens[i].stem in ARTICLES:
        i += 1
    if i >= len(tokens):
        return False
    # ("top 5 reps by <a metric's name>": the ranking key, even where a numeric column bears that name too)
    named = any(m.start == i and m.exact and m.source.startswith(("name", "label")) for m in p.metric_matches)
    if tokens[i].text.lower() not in MEASURE_WORDS | _CHANGE_KEYS and not named:
        return False
    if not (MOST_RE.search(p.question) or LEAST_RE.search(p.question) or TOP_RE.search(p.question)
            or p.draft.order_by):
        return False
    return True


def _note_unresolved(p: Parse, env: Env, trig: str, i: int) -> None:
    """Words after a breakdown trigger that name nothing: remember them when they are content words."""
    tokens = p.tokens
    if i + 1 < len(tokens) and i in p.reserved and i + 1 not in p.used and i + 1 not in p.reserved \
            and tokens[i + 1].text.isalpha() and tokens[i + 1].text.lower() not in ITEM_STOPS \
            and tokens[i + 1].stem not in env.lex.attribute_heads and tokens[i + 1].stem not in env.lex.node_words \
            and not any(m.start == i + 1 for m in p.metric_matches):
        # "by vehicle make": a value's word, then a word naming nothing: an attribute the layer lacks
        p.unresolved.append(Unresolved(trigger=trig, words=p.words(i, i + 2), tokens=(i, i + 1)))
        return
    window = []
    for j in range(i, min(len(tokens), i + 3)):
        t = tokens[j]
        if j in p.used or j in p.reserved or t.text.lower() in ITEM_STOPS or t.text.isdigit():
            break
        window.append(j)
    content = [j for j in window if tokens[j].stem not in FUNCTION_WORDS and tokens[j].stem not in ARTICLES]
    if not content:
        return
    if any(m.start <= content[0] < m.end for m in p.metric_matches):
        return  # "rank stores by revenue": an ordering key, not a breakdown
    p.unresolved.append(Unresolved(trigger=trig, words=p.words(window[0], window[-1] + 1), tokens=tuple(window)))


def _item_at(p: Parse, env: Env, i: int, facts: list[str], *, allow_skip: bool, trig: str = "") -> Item | None:
    """The breakdown item starting at token ``i`` (after articles; past a value or a ranking word when first)."""
    tokens = p.tokens
    while i < len(tokens) and tokens[i].stem in ARTICLES:
        i += 1
    if trig in WHICH_WORDS and i < len(tokens) and tokens[i].text.lower() in AUXILIARIES:
        return None  # "what was the tax": a question about a value, not "which X"
    loose = trig not in WHICH_WORDS
    window = _window(p, i)
    if window and _possessive(p, window[0]) and len(window) > 1:
        # "by the store's city": the attribute after the owner
        item = _resolve(p, env, window[1:], facts)
        if item is not None and env.lex.entity.get(item.ref.split(".")[0]) == item.ref.split(":")[0]:
            owner = _resolve(p, env, window[:1], facts)
            if owner is not None and owner.ref.split(".")[0] == item.ref.split(".")[0] and owner.ref != item.ref \
                    and env.lex.column(owner.ref.split(":")[0]) is not None:
                p.use(item.tokens, "context")  # "which team's members": the members' team
                return owner
        if item is not None and _another_entity(p, env, window[0], item):
            # "each store's customers": the customers are the way to the stores, which are the breakdown
            owner = _resolve(p, env, window[:1], facts)
            if owner is not None:
                p.use(item.tokens, "context")
                return owner
        if item is not None and env.lex.column(item.ref.split(":")[0]) is not None and not item.source.startswith("grain"):
            return Item(ref=item.ref, tokens=(window[0], *item.tokens), source=item.source, score=item.score)
    # ("list the drinks": the drinks one by one, as "each drink" is)
    each = trig in _EACH or trig in ("top n", "top", "ranked", "per") or trig == "rank" and bool(LISTING_RE.match(p.question)) \
        or trig in WHICH_WORDS and _value_alone(p, env, window)
    item = _resolve(p, env, window, facts, rows=trig == "rank" and wants_rows(p), each=each)
    if item is not None and item.tokens:
        item = _through_of(p, env, item, facts)  # "by line of business": the whole name, not "line"
    if item is None and trig in WHICH_WORDS and window:
        _which_shares_metric(p, env, window[0])
    if item is not None and trig not in _STRONG and item.tokens \
            and any(e.ref == item.ref for e in env.lex.boolean_entries):
        node = item.ref.split(".")[0]
        named = [k for k in (item.tokens[-1], item.tokens[-1] + 1)
                 if 0 < k < len(tokens) and node in env.lex.node_words.get(tokens[k].stem, frozenset())]
        if named:  # "list the perishable supplies": a yes/no attribute before its rows' name is a filter (read
            # with the yes/no attributes); the rows named are the item
            entity = env.lex.entity.get(node)
            if entity is None or (facts and not env.lex.reachable(facts, entity)):
                return None
            return Item(ref=entity, tokens=(named[0],), source=f"name of {env.lex.label(entity)}", score=0.95)
    if item is None and allow_skip:
        # "for each returning customer": the value is a filter, the entity follows; "top 5 busiest stores";
        # "split by US city": an unknown word before a known attribute (left unexplained: lower confidence)
        for skip in (1, 2):
            rest = window[skip:]
            skipped = window[:skip]
            ok = trig in ("top", "top n") or all(
                j in p.reserved or (_adjective(tokens[j]) and (loose or tokens[j].text.lower() not in AUXILIARIES))
                or (loose and tokens[j].stem not in env.lex.catalog.vocabulary) for j in skipped)
            if len(window) > skip and ok:
                item = _resolve(p, env, rest, facts, each=each)
                if item is not None:
                    break
    return item


def _value_alone(p: Parse, env: Env, window: list[int]) -> bool:
    """"which drink grew most", "what jaffle sold best": a value's word right after "which", with no noun after it,
    asks for the things the value describes, one by one (each drink), as "each drink" does. Not "which gold
    members" (the entity is named after the value) nor "what gold revenue" (a metric follows: a filter)."""
    if not window:
        return False
    tokens, lex = p.tokens, env.lex
    mention = next((v for v in p.all_mentions if v.score >= 1.0 and min(tokens_in(tokens, v.span), default=-1) == window[0]),
                   None)
    if mention is None:
        return False
    after = max(tokens_in(tokens, mention.span)) + 1
    if after >= len(tokens):
        return False
    t = tokens[after]
    return not (t.stem in lex.node_words or t.stem in lex.attribute_heads or any(
        m.start == after for m in p.metric_matches) or p.used.get(after) == "time" or t.text.isdigit())


def _which_shares_metric(p: Parse, env: Env, i: int) -> None:
    """"which supply cost us the most": the word after "which" starts a metric's name ("supply cost") and names the
    entity asked about: the metric keeps the word, and the entity (reached by that metric) is the breakdown too."""
    lex, tokens = env.lex, p.tokens
    if 0 < i < len(tokens) - 1 and number_value(tokens[i].text) and tokens[i - 1].text.lower() in WHICH_WORDS:
        i += 1  # "which 3 supplies cost us the most"
        counted = True
    else:
        counted = False
    m = next((m for m in p.metric_matches if m.start == i and m.end - m.start > 1 and m.exact), None)
    if m is None or i == 0 or (tokens[i - 1].text.lower() not in WHICH_WORDS and not counted):
        return  # "what % of sales revenue": words between the question word and the metric ask something else
    facts = lex.facts_of([m.ref])
    entities = {e for n in lex.node_words.get(tokens[i].stem, frozenset())
                if (e := lex.entity.get(n)) is not None and lex.reachable(facts, e)}
    # "which drink sold the most": a value of a kind (the metric's own filter) asks for the entity it describes
    of_kind = {e for v in p.all_mentions if v.score >= 1.0 and min(tokens_in(tokens, v.span), default=-1) == i
               and (e := lex.entity.get(v.ref.split(".")[0])) is not None and e != v.ref and lex.reachable(facts, e)}
    if len(entities | of_kind) != 1:
        return
    entity = (entities | of_kind).pop()
    if p.draft.add_dimension(entity, Grounding(kind="dimension", ref=entity, phrase=p.words(i - 1, i + 1),
                                               source=f"rule: which {lex.label(entity)}, named in the metric's name")):
        p.dimension_tokens[entity] = ()
        if entity not in entities and not any(f.ref == m.ref for f in p.draft.filters):
            # only the things of that kind ("which 2 drinks sold the fewest": no jaffle at 0 drinks sold)
            p.draft.filters.append(Filter(ref=m.ref, op=">", values=(0,)))
            p.draft.notes.append(f"Only “{p.words(i, i + 1)}”: each {lex.label(entity)} with some "
                                 f"{lex.metric_label(m.ref)}.")


def _swallowed_by(p: Parse, m, used: list[int]) -> bool:  # noqa: ANN001
    """Whether the item's words lie inside a longer metric phrase that is not a synonym naming this very breakdown
    ("active customers" swallows "customers"; the synonym "sales by product" leaves "by product" a breakdown)."""
    span = set(range(m.start, m.end))
    if not set(used) <= span or m.end - m.start <= len(used) or not m.exact:
        return False  # a reordered metric phrase ("selling products" for "products sold") leaves the entity
    if m.source.startswith("synonym") and any(p.tokens[j].text.lower() in ("by", "across")
                                              for j in range(m.start, min(used))):
        return False
    return True


def _possessive(p: Parse, i: int) -> bool:
    t = p.tokens[i]
    return t.text.lower().endswith(("'s", "’s")) or p.question[t.end:t.end + 1] in ("'", "’")


def _adjective(t: Token) -> bool:
    return bool(MOST_RE.fullmatch(t.text) or LEAST_RE.fullmatch(t.text) or t.stem in FUNCTION_WORDS
                or t.text.lower() in RANK_ADJECTIVES)


def _through_of(p: Parse, env: Env, item: Item, facts: list[str]) -> Item:
    """An item followed by "of" and more words that, with it, name a longer attribute ("line of business",
    "date of birth"): the longer one."""
    tokens = p.tokens
    k = item.tokens[-1] + 1
    if k + 1 >= len(tokens) or tokens[k].text.lower() != "of":
        return item
    rest = _window(p, k + 1)[:_MAX_ITEM_WORDS - 1]
    if not rest:
        return item
    longer = _resolve(p, env, [*range(item.tokens[0], k + 1), *rest], facts)
    if longer is not None and longer.tokens and longer.tokens[-1] > k and not longer.source.startswith("grain"):
        return longer
    if len(item.tokens) == 1:
        # "type of event", "date of loss": the words after "of", then the head, name an attribute ("event type")
        for n in range(len(rest), 0, -1):
            swapped = _resolve(p, env, [*rest[:n], item.tokens[0]], facts)
            if swapped is not None and set(swapped.tokens) == {*rest[:n], item.tokens[0]} \
                    and "partial" not in swapped.source and not swapped.source.startswith("grain"):
                return Item(ref=swapped.ref, tokens=tuple(range(item.tokens[0], rest[n - 1] + 1)),
                            source=f"{swapped.source} (“X of Y” as “Y X”)", score=swapped.score)
    return item


def _window(p: Parse, i: int) -> list[int]:
    """Up to four words from ``i`` that may name one item (stops at words that start another part)."""
    out = []
    j = i
    while j < len(p.tokens) and len(out) < _MAX_ITEM_WORDS:
        t = p.tokens[j]
        w = t.text.lower()
        if out and (w in ITEM_STOPS or w in ("and", "by")):
            break
        if p.used.get(j) in ("time", "metric", "filter", "order", "dimension") and p.used.get(j) != "grain":
            break
        out.append(j)
        j += 1
    return out


def wants_rows(p: Parse) -> bool:
    """"list the orders with their status", "enumerate our stores": a request for rows (a listing verb first, and
    the attributes to show or no breakdown), so the entity named is listed even where a count metric shares its
    name."""
    strong = STRONG_LISTING_ANY_RE.search(p.question)
    if strong:
        # ("list every open claim: ..." - the "every" right after the listing verb is no breakdown)
        quantifier = re.match(r"\s*(?:the\s+)?(all|every|each)\b", p.question[strong.end():], re.I)
        own = strong.end() + quantifier.start(1) if quantifier else -1
        return bool(WITH_ATTRIBUTES_RE.search(p.question) or _WITH_COLUMNS_RE.search(p.question)) \
            or not [t for t in breakdown_triggers(p.question) if t.start() != own]
    # "show me the cancelled policies with policy number, inception date and limit": columns listed after "with";
    # "show me the West agents with their area and hire date": the rows' own attributes after "with their"
    listing = LISTING_ANY_RE.search(p.question)
    # ("pull up every open claim: ..." - the "every" of the listing verb is no breakdown)
    return listing is not None and bool(_WITH_COLUMNS_RE.search(p.question) or _WITH_OWN_RE.search(p.question)) \
        and not [t for t in breakdown_triggers(p.question) if t.start() >= listing.end()]


#: "with A, B and C": three or more things to show after "with" (a list of columns, not a qualifier)
_WITH_COLUMNS_RE = re.compile(r"(?:\b(?:with|including|showing)\s+(?:their\s+|its\s+|the\s+)?|\s[-–—]+\s+|:\s*)"
                              r"[^,;:]+,[^,;:]+(?:,|\band\b)", re.I)
#: "with their ...", "including its ...": the attributes of the rows asked for
_WITH_OWN_RE = re.compile(r"\b(?:with|including|showing|plus)\s+(?:their|its)\b", re.I)
#: columns listed after a dash or a colon ("the open claims - claim #, loss date and cause")
COLUMNS_AFTER_RE = re.compile(r"(?:\s[-–—]+\s+|:\s*)(?=[^,;:]+,[^,;:]+(?:,|\band\b))")


def _resolve(p: Parse, env: Env, window: list[int], facts: list[str], *, rows: bool = False,
             each: bool = False) -> Item | None:
    """The longest attribute, entity or grain named at the start of ``window``; reachable ones first (``rows``: the
    entity of a listing, where a fact named like its count metric is the fact)."""
    if not window:
        return None
    tokens, lex = p.tokens, env.lex
    words = [i for i in window if tokens[i].stem not in ARTICLES]
    if not words or words[0] != window[0] and tokens[window[0]].stem not in ARTICLES:
        return None
    stems = [tokens[i].stem for i in words]
    role = _with_role(p, env, words, facts)
    if role is not None:
        return role
    first = tokens[words[0]].text.lower()
    if first in GRAIN_WORDS and (len(words) == 1 or tokens[words[1]].stem not in lex.attribute_heads):
        grain = GRAIN_WORDS[first]
        return Item(ref=f"{METRIC_TIME}:{grain}", tokens=(words[0],), source="grain", score=1.0)
    best: tuple | None = None
    metric_len = max((m.end - words[0] for m in p.metric_matches if m.start == words[0]), default=0)

    # the first metric named is the measure: its own rows' attributes come first
    main = lex.facts_of([p.metric_matches[0].ref]) if p.metric_matches else facts

    def consider(entries: tuple[Entry, ...], kind: str) -> None:
        nonlocal best
        for e in entries:
            n = len(e.phrase)
            exact = tuple(stems[:n]) == e.phrase
            # "city" may be the "store city" when only stores are in reach
            suffix = not exact and n >= 2 and e.phrase[-1] == stems[0] and e.phrase[-1] not in LEADING \
                and first not in STOP_WORDS and stems[0] not in FUNCTION_WORDS  # ("spend the most on": no "ordered on")
            if not (exact or suffix):
                continue
            ref = e.ref if kind == "attribute" else lex.entity.get(e.ref)
            if ref is None:
                continue
            used = words[:n] if exact else words[:1]
            reach = lex.reachable(facts, ref) if facts else True
            named = 0 if e.source == "synonym" else 1  # "per order": the entity's name beats another's synonym
            # "by ingredient", a synonym of two attributes: the one whose node the word also names
            its_node = ref.split(".")[0] in lex.node_words.get(stems[0], frozenset())
            # "claims by status": the status of the claims, not of the policies they hang off (fewest links first)
            near = -min((lex.catalog.reach.get(f, {}).get(ref.split(".")[0], 99) for f in main), default=0)
            # (the measure named first must reach it: another metric's word, "motor policies", is often a filter)
            key = (len(used), reach or (main != facts and lex.reachable(main, ref)), exact, named, its_node, near,
                   kind == "attribute", e.weight)
            if best is None or key > best[0]:
                best = (key, ref, used, (e.source if exact else f"{e.source} (partial)")
                        + ("" if kind == "attribute" else f" of {lex.label(ref)}"),
                        e.weight if exact else e.weight * 0.85)

    consider(lex.attribute_index.get(stems[0], ()), "attribute")
    consider(lex.node_index.get(stems[0], ()), "node")
    each_value = _each_of_value(p, env, words, facts) if each else None
    if each_value is not None and (best is None or not best[0][2]):
        return each_value  # "each drink": the drinks, one by one (not the "food or drink" attribute)
    if best is None:
        return None
    key, ref, used, source, score = best
    if words[0] in p.reserved and _value_with_its_attribute(p, env, words[0]) \
            and not (len(used) > 1 and any(m.ref == ref for m in p.mentions)):
        return None  # "the drinks type": a value named with its attribute is a filter ("by product type" is not)
    if not key[1] and not key[2]:
        return None  # a partial match that is not even reachable is no match
    if rows and not key[6]:
        return Item(ref=ref, tokens=tuple(used), source=source, score=score)
    if metric_len > len(used) or any(_swallowed_by(p, m, used) for m in p.metric_matches):
        return None  # a longer metric name is here ("by revenue per customer", "also show active customers")
    if metric_len == len(used) and not key[6] and lex.layer.nodes[ref.split(".")[0]].kind == "source":
        return None  # "stores by orders": a fact named like its count metric is that metric, the ranking key
    return Item(ref=ref, tokens=tuple(used), source=source, score=score)


def _each_of_value(p: Parse, env: Env, words: list[int], facts: list[str]) -> Item | None:
    """"how many of each drink": a value of an attribute where a breakdown starts is that value's entity, one row
    each, with the value kept as a filter."""
    tokens, lex = p.tokens, env.lex
    mention = next((v for v in p.all_mentions if words[0] in tokens_in(tokens, v.span) and v.score >= 1.0
                    and min(tokens_in(tokens, v.span)) == words[0]), None)
    if mention is None:
        return None
    after = max(tokens_in(tokens, mention.span)) + 1
    if after < len(tokens) and (tokens[after].stem in lex.node_words or tokens[after].stem in lex.attribute_heads) \
            and p.used.get(after) != "time" and not any(m.start == after for m in p.metric_matches):
        return None  # "for each returning customer": the value is a filter, the entity follows
    entity = lex.entity.get(mention.ref.split(".")[0])
    if entity is None or entity == mention.ref or (facts and not lex.reachable(facts, entity)):
        return None
    used = tuple(sorted(tokens_in(tokens, mention.span)))
    if not any(f.ref == mention.ref and mention.value in f.values for f in p.draft.filters):
        f = Filter(ref=mention.ref, values=(mention.value,))
        p.draft.filters.append(f)
        p.draft.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=p.words(used[0], used[-1] + 1),
                                            source=f"value of {lex.label(mention.ref)}", score=mention.score))
    p.mentions = [v for v in p.mentions if v is not mention]
    return Item(ref=entity, tokens=used, source=f"each {mention.value}: the {lex.label(entity)}s", score=mention.score)


def _with_role(p: Parse, env: Env, words: list[int], facts: list[str]) -> Item | None:
    """"by home store", "origin city": a link's role before an attribute or entity of the node the link reaches is
    that attribute through that link (``stores.name[home]``)."""
    stems = [p.tokens[i].stem for i in words]
    for n in (2, 1):
        targets = env.lex.roles.get(tuple(stems[:n]))
        if not targets or len(words) <= n:
            continue
        inner = _resolve(p, env, words[n:], facts)
        if inner is None or inner.source.startswith("grain") or "[" in inner.ref:
            continue
        ref, _, grain = inner.ref.partition(":")
        node = ref.split(".")[0]
        role = next((r for to, r in sorted(targets) if to == node), None)
        if role is None:
            continue
        return Item(ref=f"{ref}[{role}]" + (f":{grain}" if grain else ""), tokens=(*words[:n], *inner.tokens),
                    source=f"{inner.source} through the {role.replace('_', ' ')} link", score=inner.score)
    return None


def _add(p: Parse, env: Env, item: Item, trig: str, trig_tokens: tuple[int, ...]) -> None:
    """Add the item as a dimension (with a grain for dates), and mark its words and the trigger as explained."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    ref = item.ref
    used = list(item.tokens)
    col = None if is_metric_time(ref) else lex.column(ref)
    if col is not None and col.kind == "time" and any(is_metric_time(x) for x in d.dimensions) \
            and ref.split(".")[1] in {lex.layer.nodes[f].time_column for f in lex.facts_of(
                [m.ref for m in p.metric_matches]) if f in lex.layer.nodes}:
        # "weekly claims in June, by date of loss": the date the metric is dated by, named as the axis of the
        # grain already asked for, not a second breakdown
        p.use(used, "time")
        p.use(trig_tokens, "operator")
        return
    if col is not None and col.kind == "time":
        nxt = used[-1] + 1
        word = tokens[nxt].text.lower() if nxt < len(tokens) else ""
        if word in GRAIN_WORDS and GRAIN_WORDS[word] in col.grains:
            ref = f"{ref}:{GRAIN_WORDS[word]}"
            used.append(nxt)
        else:
            # a listing's columns show each row's own date; a breakdown groups by a grain that suits the period
            grain = "day" if trig == "with" and "day" in col.grains else _grain_for(col.grains, d.time, env)
            ref = f"{ref}:{grain}"
            if trig != "with" and (grain != "day" or len(col.grains) != 1):
                d.notes.append(f"{lex.label(item.ref).capitalize()} is shown by {grain}.")
    if is_metric_time(ref) and any(is_metric_time(x) for x in d.dimensions):
        # "by month" repeats the grain the time pass found ("monthly"): one time axis
        p.use(used, "dimension")
        p.use(trig_tokens, "operator")
        return
    phrase_text = " ".join(filter(None, [" ".join(tokens[i].text for i in trig_tokens),
                                         p.words(used[0], used[-1] + 1)]))
    if d.add_dimension(ref, Grounding(kind="dimension", ref=ref, phrase=phrase_text, source=item.source,
                                      score=item.score)):
        p.dimension_tokens[ref] = tuple(used)
    p.use(used, "dimension")
    p.use(trig_tokens, "operator")
    # a metric phrase on the same words is not a metric here ("by store" vs the number of stores)
    taken = set(used)
    p.metric_matches = [m for m in p.metric_matches if not (set(range(m.start, m.end)) & taken)
                        or (m.end - m.start) > len(taken)]


def _grain_for(declared: tuple[str, ...], time, env: Env) -> str:  # noqa: ANN001
    """A date attribute's grain when none is asked: its only grain, else one that suits the period asked about."""
    if len(declared) == 1:
        return declared[0]
    rng = TimeRange(start=time.start, end=time.end, label=time.label, span=(0, 0)) if time is not None else None
    grain = default_grain(rng, env.today)
    return grain if grain in declared else next((g for g in GRAINS if g in declared), declared[0])


def _another_entity(p: Parse, env: Env, owner: int, item: Item) -> bool:
    """Whether ``item`` (read after the possessive at token ``owner``) names a whole entity other than the owner's
    ("the store's customers"), not one of the owner's attributes ("the store's city")."""
    lex = env.lex
    node = item.ref.split(".")[0]
    if lex.entity.get(node) != item.ref.split(":")[0] or not item.tokens:
        return False
    if node not in lex.node_words.get(p.tokens[item.tokens[0]].stem, frozenset()):
        return False
    stem = p.tokens[owner].stem
    # ("which states' claims": the owner may be an attribute, of another node, as well as an entity)
    return node not in lex.node_words.get(stem, frozenset()) and (
        bool(lex.node_words.get(stem)) or stem in lex.attribute_heads)


def _read_possessives(p: Parse, env: Env, facts: list[str]) -> None:
    """"each customer's orders", "the store's revenue", "stores' revenue": the owner is a breakdown."""
    tokens = p.tokens
    for k, t in enumerate(tokens):
        if k in p.used:
            continue
        if not _possessive(p, k):
            continue
        after = _resolve(p, env, _window(p, k + 1), facts) if k + 1 < len(tokens) else None
        if after is not None and not after.source.startswith("grain") and not _another_entity(p, env, k, after):
            continue  # "the store's city" names the city
        for n in (3, 2, 1):
            lo = k - n + 1
            if lo < 0 or any(j in p.used for j in range(lo, k + 1)):
                continue
            item = _resolve(p, env, list(range(lo, k + 1)), facts)
            if item is not None and item.tokens[-1] == k:
                _add(p, env, item, "possessive", ())
                break


def _value_with_its_attribute(p: Parse, env: Env, i: int) -> bool:
    """Whether the value mention at token ``i`` has its attribute's name right before or after it ("the drinks type")."""
    for m in p.mentions:
        covered = tokens_in(p.tokens, m.span)
        if i not in covered:
            continue
        col = env.lex.column(m.ref)
        if col is None:
            continue
        names = {w for text in (col.name, col.label or "", *col.synonyms) for w in phrase(text)}
        lo, hi = min(covered), max(covered)
        around = [j for j in (lo - 1, hi + 1) if 0 <= j < len(p.tokens)]
        if any(p.tokens[j].stem in names for j in around):
            return True
    return False


def rows_asked(p: Parse, env: Env) -> None:
    """"list the perishable supplies ... with their unit cost": a listing verb with a metric and no breakdown asks
    for one row per thing listed, so the first entity named after the verb (even inside a filter's words) that
    the metrics reach is the breakdown. One number would not be the list asked for."""
    d, lex = p.draft, env.lex
    if not d.metrics or d.rows_of or d.limit or any(not x.startswith(METRIC_TIME) for x in d.dimensions):
        return
    verb = STRONG_LISTING_RE.match(p.question) or (LISTING_RE.match(p.question) if wants_rows(p) else None)
    if verb is None or not (WITH_ATTRIBUTES_RE.search(p.question) or _WITH_COLUMNS_RE.search(p.question)):
        return
    facts = lex.facts_of(d.base_metrics())
    for i, t in enumerate(p.tokens):
        if t.start < verb.end() or p.used.get(i) == "time" or p.used.get(i) == "metric" and any(
                m.start <= i < m.end and m.ref in d.metrics for m in p.metric_matches):
            continue  # (a count metric named like the rows, "the orders", and not asked for, is the rows)
        for node in sorted(lex.node_words.get(t.stem, frozenset()), key=lambda n: (n not in facts, n)):
            entity = lex.entity.get(node)
            if entity and lex.reachable(facts, entity) and d.add_dimension(
                    entity, Grounding(kind="dimension", ref=entity, phrase=t.text,
                                      source=f"rule: a list of {lex.label(entity)}s, one row each")):
                p.dimension_tokens[entity] = (i,)
                p.used.setdefault(i, "dimension")
                return

