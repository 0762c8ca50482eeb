"""Passes over metrics: the metric phrases of the question, ratios of two metrics, a metric found by similarity
when no name is used, and what to say when no metric fits."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from lore.plan.catalog import ARTICLES, FILLER, PhraseMatch, find_phrases, phrase, tokenize
from lore.plan.offline.beyond import CAUSE_RE, TEST_RE, beyond_the_data
from lore.plan.offline.breakdowns import COLUMNS_AFTER_RE, _value_with_its_attribute, wants_rows
from lore.plan.offline.durations import durations_named
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Mention, Parse
from lore.plan.offline.qualified import qualified_matches
from lore.plan.offline.rates import (THEN_MEASURE_RE, THRESHOLD_AT_START_RE, THRESHOLD_RE, entity_counted_by,
                                     is_row_count, node_threshold, ratio_parts, set_threshold)
from lore.plan.offline.text import Spans, gap, mask, tokens_in
from lore.plan.words import (BUSINESS_STEMS, CONDITION_RE, COUNT_CUE_RE, CREATIVE_RE, FUNCTION_WORDS, INTENT_WORDS,
                             LEAST_RE, MOST_RE, NEGATION_RE, NUMBER_ALT, RANKED_RE, WITH_ATTRIBUTES_RE)
from lore.retrieve.lexical import STOP_WORDS
from lore.semantic.spec import METRIC_TIME
from lore.types import AdhocMetric, Grounding, PlanOutcome


#: a question for a quantity ("how many croissants did we sell last month"): with a period, a breakdown or a value it
#: is about the data, so words it names that the layer lacks are asked about, never refused as out of scope
QUANTITY_RE = re.compile(r"\bhow\s+(?:much|many|often)\b|\b(?:number|count|total|amount)\s+of\b", re.I)

#: the most confidence an answer whose metric was found by likeness of meaning (no name used) gets
SIMILARITY_CAP = 0.75


#: words passed over inside a metric's words: object pronouns ("cost us to make"), intensifiers ("biggest
#: single order") and a copula ("policies are in force")
_PASSED_OVER = frozenset({"us", "me", "them", "you", "him", "her", "single", "individual", "are", "is", "were",
                          "was", "who", "have", "has"})  # ("customers who have spent": "customers spent")


def find_metrics(p: Parse, env: Env) -> None:
    """Metric phrases (longest first), ratios written as "A per B", and the value mentions they compete with."""
    tokens, lex = p.tokens, env.lex
    # ("what did it cost us to make" = "cost to make")
    passed_over = {i for i, t in enumerate(tokens) if t.text.lower() in _PASSED_OVER and 0 < i < len(tokens) - 1}
    matches = find_phrases(tokens, lex.catalog.metric_index or lex.catalog.metric_entries,
                           taken=p.consumed - p.grain_tokens, skip=passed_over, text=p.question)
    # a metric's own name may hold a grain word ("monthly active users"): the name wins
    stolen = {i for m in matches for i in range(m.start, m.end)} & p.grain_tokens
    if stolen:
        p.draft.dimensions = [x for x in p.draft.dimensions if not x.startswith(METRIC_TIME)]
        p.draft.groundings = [g for g in p.draft.groundings if g.kind != "grain"]
        for i in stolen:
            p.used.pop(i, None)
    matches = _shared_heads(p, env, matches)  # "good vs bad tweets": both metrics
    matches = _split_by_threshold(p, env, matches)  # "sold over 500 in units": units sold
    matches = _money_made(p, env, matches)  # "how much money did we bring in": the revenue-like amount
    matches = durations_named(p, env, matches)  # "avg days from report to close": the time between two dates
    matches = qualified_matches(p, env, matches)  # "revenue before tax": one measure, before echoes are dropped
    matches = _resolve(p, env, matches)
    matches = _ratio_of_matches(p, env, matches)
    matches, p.mentions = _longest_wins(p, env, matches, p.mentions)
    p.metric_matches = matches
    p.reserved = set().union(*(tokens_in(tokens, h.span) for h in p.mentions)) if p.mentions else set()


_COORDINATOR_RE = re.compile(r"^\s*(?:,?\s*(?:and|or|vs\.?|versus|against|compared (?:to|with))|&|/)\s*$", re.I)


def _shared_heads(p: Parse, env: Env, matches: list[PhraseMatch]) -> list[PhraseMatch]:
    """"good vs bad tweets", "new and returning customers' orders": a word coordinated with the first word of a
    metric phrase shares the phrase's other words; when that names a metric too, it is that metric."""
    tokens, found = p.tokens, []
    covered = {i for m in matches for i in range(m.start, m.end)}
    for m in matches:
        if m.end - m.start < 2 or m.start < 1:
            continue
        k = m.start - 1  # the word before the phrase, maybe the coordinator itself
        between = p.question[tokens[k].end:tokens[m.start].start]
        if _COORDINATOR_RE.match(between):
            w = k  # "good/bad tweets": no coordinator token
        elif k >= 1 and _COORDINATOR_RE.match(p.question[tokens[k].start:tokens[m.start].start]) and \
                _COORDINATOR_RE.match(p.question[tokens[k - 1].end:tokens[m.start].start]):
            w = k - 1
        else:
            continue
        if w in covered or w in p.consumed or tokens[w].stem in FILLER:
            continue
        trial = [tokens[w], *tokens[m.start + 1:m.end]]
        hits = find_phrases(trial, env.lex.catalog.metric_index or env.lex.catalog.metric_entries)
        hit = next((h for h in hits if h.start == 0 and h.end == len(trial) and h.exact and h.ref != m.ref), None)
        if hit is not None:
            found.append(PhraseMatch(hit.ref, w, w + 1, min(hit.score, m.score) * 0.95,
                                     f"{hit.source} (shares “{' '.join(t.text for t in trial[1:])}”)", True))
            covered.add(w)
    return sorted([*matches, *found], key=lambda x: x.start) if found else matches


def _split_by_threshold(p: Parse, env: Env, matches: list[PhraseMatch]) -> list[PhraseMatch]:
    """"stores that sold more than 500 units", "agents who wrote over 500k in new business": a metric's words on both
    sides of the threshold it is held to (the verb before, the noun after) name it; the match is the verb (where
    the threshold pass looks), the noun's words are used by it."""
    tokens = p.tokens
    covered = {i for m in matches for i in range(m.start, m.end)} | p.consumed
    found: list[PhraseMatch] = []
    starts, ends = [t.start for t in tokens], [t.end for t in tokens]
    for hit in THRESHOLD_RE.finditer(p.question):
        w = bisect.bisect_right(ends, hit.start()) - 1  # the last word before the threshold
        lead = THEN_MEASURE_RE.match(p.question, hit.end())
        first = bisect.bisect_left(starts, lead.end() if lead else hit.end())
        if w < 0 or first >= len(tokens) or w in covered:
            continue
        rest = list(range(first, min(first + 3, len(tokens))))
        for k in (3, 2, 1):
            nouns = rest[:k]
            if len(nouns) < k or any(i in covered for i in nouns) or nouns[-1] - nouns[0] != k - 1:
                continue
            trial = [tokens[w], *(tokens[i] for i in nouns)]
            hits = find_phrases(trial, env.lex.catalog.metric_index or env.lex.catalog.metric_entries)
            full = next((h for h in hits if h.start == 0 and h.end == len(trial)), None)
            if full is not None:
                found.append(PhraseMatch(full.ref, w, w + 1, full.score * 0.95,
                                         f"{full.source} (around “{hit.group(0).strip()}”)", True))
                p.use(nouns, "metric")
                covered |= {w, *nouns}
                break
    return sorted([*matches, *found], key=lambda x: x.start) if found else matches


#: a follow-up that narrows the previous answer ("same thing but only ...", "just the ...", "only for ...")
FOLLOWUP_ONLY_RE = re.compile(r"\b(?:same\s+(?:thing|again|for)|but\s+only|only|just)\b", re.I)
#: a turn that says it refines the previous answer
STRONG_FOLLOWUP_RE = re.compile(r"^\W*(?:now|and|also|what about|how about|same|instead|then|plus|what if|but|only|just)\b",
                                re.I)


def _resolve(p: Parse, env: Env, matches: list[PhraseMatch]) -> list[PhraseMatch]:
    """Drop one-word synonym matches that belong to something else.

    - the word before names a table the metric cannot reach ("game sessions" is not another fact's "sessions");
    - the word is part of another matched metric's own names (its echo).
    """
    lex, tokens = env.lex, p.tokens
    strong = list(dict.fromkeys(x.ref for x in matches if x.end - x.start > 1 or x.source == "name"))
    out = []
    for m in matches:
        if m.end - m.start == 1 and m.source != "name":
            facts = lex.facts_of([m.ref])
            prev = tokens[m.start - 1].stem if m.start > 0 else ""
            owners = lex.node_words.get(prev, frozenset())
            if owners and not any(lex.reachable(facts, f"{o}.x") for o in owners):
                # "jaffle sales": another metric named by the same word that reaches the jaffles, if one does
                # (not after a breakdown word: "by supply item" names the supplies)
                after_by = re.search(r"\b(?:by|per|each|every|across)\s+(?:the\s+)?$",
                                     p.question[:tokens[m.start - 1].start], re.I)
                alt = None if after_by else _fitting_alternative(env, m.ref, tokens[m.start].stem, owners)
                if alt is not None:
                    out.append(PhraseMatch(alt, m.start, m.end, m.score * 0.95, "synonym (fits the question)", m.exact))
                continue
            word = tokens[m.start].stem
            if any(word in lex.own_words[ref] for ref in strong if ref != m.ref) and not _listed(p, m, matches):
                continue
            if m.start > 0 and tokens[m.start - 1].text.lower() in ("on", "across", "among", "over") and any(
                    x.ref != m.ref and x.end <= m.start and any(lex.reachable(lex.facts_of([x.ref]), f"{n}.x")
                                                                 for n in lex.node_words.get(word, frozenset()))
                    for x in matches) and lex.node_words.get(word):
                continue  # "fees earned on contracts that carry X cover": the rows the first measure is on
            if m.start > 0 and any(v.ref.split(".")[0] in lex.node_words.get(word, frozenset())
                                   and v.ref == lex.entity.get(v.ref.split(".")[0])
                                   and m.start - 1 in tokens_in(tokens, v.span) for v in p.mentions):
                continue  # "the Chicago store": the word names the one row the value names, not a metric
            if p.previous is not None and p.previous.metrics and m.ref not in p.previous.metrics \
                    and FOLLOWUP_ONLY_RE.search(p.question) and any(
                        v.ref.split(".")[0] in lex.node_words.get(word, frozenset()) for v in p.mentions):
                continue  # "same thing but only agents in the West": the rows kept, not a count of agents
        out.append(m)
    best: dict[str, float] = {}
    for o in out:
        best[o.ref] = max(best.get(o.ref, o.score), o.score)
    return [m for m in out if not (m.end - m.start == 1 and not _listed(p, m, out) and any(
        ref != m.ref and tokens[m.start].stem in lex.own_words[ref] and score >= m.score for ref, score in best.items()))]


_LISTED_RE = re.compile(r"^\s*(?:,|;|&|/|\+|\b(?:and|or|plus|vs\.?|versus|as\s+well\s+as|along\s+with|together\s+with)\b)"
                        r"(?:\s*(?:,|\band\b))?\s*(?:(?:the|our|also|too|how\s+many|(?:total\s+)?(?:number|count|amount)\s+of|"
                        r"total)\s+)*$", re.I)


def _listed(p: Parse, m: PhraseMatch, matches: list[PhraseMatch]) -> bool:
    """Whether a metric phrase is listed with another ("orders and revenue", "revenue, orders"): a measure of its
    own, not an echo of the other's names ("revenue from orders")."""
    tokens = p.tokens
    for o in matches:
        if o.ref == m.ref:
            continue
        left, right = (o, m) if o.end <= m.start else (m, o) if m.end <= o.start else (None, None)
        if left is not None and right is not None and \
                _LISTED_RE.match(p.question[tokens[left.end - 1].end:tokens[right.start].start]):
            return True
    return False


def _fitting_alternative(env: Env, metric: str, word: str, owners: frozenset[str]) -> str | None:
    """The one metric, other than ``metric``, whose own names hold ``word`` and that reaches one of ``owners``."""
    lex = env.lex
    found = [name for name, words in lex.own_words.items() if name != metric and word in words
             and any(lex.reachable(lex.facts_of([name]), f"{o}.x") for o in owners)]
    return found[0] if len(found) == 1 else None


def _ratio_of_matches(p: Parse, env: Env, matches: list[PhraseMatch]) -> list[PhraseMatch]:
    """"spend per install": two metrics joined by per / divided by become the derived ratio defined over them."""
    joined: set[int] = set()
    ratios: list[PhraseMatch] = []
    for a, b in zip(matches, matches[1:]):
        between = p.question[p.tokens[a.end - 1].end:p.tokens[b.start].start].strip().lower()
        if between not in ("per", "/", "divided by", "over", "per each", "for each", "by", "for every", "to"):
            continue
        for name, refs, divides in env.lex.ratios:
            if list(refs) == [a.ref, b.ref] and divides:
                ratios.append(PhraseMatch(name, a.start, b.end, min(a.score, b.score) * 0.95, "ratio of two metrics", True))
                joined.update((id(a), id(b)))
                break
    out = [x for x in matches if id(x) not in joined] + ratios
    return sorted(out, key=lambda x: x.start)


def _longest_wins(p: Parse, env: Env, metrics: list[PhraseMatch],
                  values: list[Mention]) -> tuple[list[PhraseMatch], list[Mention]]:
    """Where a metric phrase and a value mention overlap, keep the one covering more characters; on a tie the value
    wins when its attribute is named next to it ("the drinks type")."""
    tokens = p.tokens
    keep_m, drop_v = [], set()
    spans = Spans((v.span, i) for i, v in enumerate(values))
    for m in metrics:
        m_span = (tokens[m.start].start, tokens[m.end - 1].end)
        rivals = sorted(i for _, i in spans.overlapping(m_span))  # type: ignore[misc]
        if any((values[i].span[1] - values[i].span[0]) > (m_span[1] - m_span[0]) for i in rivals):
            continue
        if any((values[i].span[1] - values[i].span[0]) == (m_span[1] - m_span[0])
               and _value_wins_tie(p, env, values, i, metrics) for i in rivals):
            continue
        keep_m.append(m)
        drop_v.update(rivals)
    return keep_m, [v for i, v in enumerate(values) if i not in drop_v]


def _value_wins_tie(p: Parse, env: Env, values: list[Mention], i: int, metrics: list[PhraseMatch] = ()) -> bool:  # type: ignore[assignment]
    """A value mention as long as a metric phrase on the same words is the value when its attribute is named next
    to it ("the drinks type"), a negation is before it ("excluding drinks") or another value of its attribute is
    listed with it ("drinks vs food")."""
    v = values[i]
    if _value_with_its_attribute(p, env, min(tokens_in(p.tokens, v.span))):
        return True
    if NEGATION_RE.search(p.question[max(0, v.span[0] - 40):v.span[0]]):
        return True
    if re.search(r"\b(?:only|just|solely|exclusively)\s+(?:the\s+|our\s+)?$", p.question[:v.span[0]], re.I) \
            or re.match(r"^\s+(?:only|alone)\b", p.question[v.span[1]:], re.I):
        return True  # "only the drinks", "drinks only": a filter
    if p.previous is not None and any(f.ref == v.ref for f in p.previous.filters):
        return True  # "same for drinks" after a question filtered on jaffles: the other value, not a metric
    if re.search(r"\b(?:each|every)\s+(?:of\s+(?:the|our|your)\s+)?$", p.question[:v.span[0]], re.I):
        return True  # "what does each jaffle cost": the jaffles one by one, not the jaffles-sold count
    for other in values:
        if other is v or other.ref != v.ref:
            continue
        between = p.question[min(v.span[1], other.span[1]):max(v.span[0], other.span[0])].strip(" ,").lower()
        if (between in ("and", "&", "", "and the") or len(metrics) == 2) \
                and _both_governed_cuts(p, env, (v, other), metrics):
            continue  # "cancellations and lapses": two governed counts listed, each its own column
        if between in ("and", "or", "vs", "vs.", "versus", "&", "/", "", "and the", "or the", "compared to",
                       "compared with", "against"):
            return True
    return False


def _both_governed_cuts(p: Parse, env: Env, values: tuple[Mention, ...], metrics: list[PhraseMatch]) -> bool:
    """Whether each value's words are exactly a metric's words, each metric the layer's cut of one whole by that
    very value ("cancellations" = cancelled policies, "lapses" = lapsed policies)."""
    refs = []
    for v in values:
        span = (v.span[0], v.span[1])
        m = next((m for m in metrics if m.exact and (p.tokens[m.start].start, p.tokens[m.end - 1].end) == span), None)
        if m is None:
            return False
        refs.append(m.ref)
    wholes = [{w for w, cuts in env.lex.cuts.items() if ref in cuts} for ref in refs]
    common = set.intersection(*wholes) if wholes else set()
    others = {m.ref for m in metrics if m.ref not in refs}
    # (another measure named beside them, not their whole: "revenue by store, jaffles and drinks" splits revenue)
    return len(set(refs)) == len(refs) and bool(common) and others <= common


def take_metrics(p: Parse, env: Env) -> None:
    """The metric phrases left after breakdowns took theirs become the plan's metrics."""
    d = p.draft
    # (computed once: the tokens of sure value mentions, and where each metric is first named)
    valued = set().union(*(tokens_in(p.tokens, v.span) for v in p.all_mentions if v.score >= 1.0)) \
        if p.all_mentions else set()
    firsts: dict[str, int] = {}
    for m in p.metric_matches:
        firsts[m.ref] = min(firsts.get(m.ref, m.start), m.start)
    for m in p.metric_matches:
        _value_inside_synonym(p, env, m)
        span = set(range(m.start, m.end))
        taken = span & {i for i, why in p.used.items() if why != "metric"}
        if "qualified" in m.source:  # "take in June 2020, tax included": the period inside is the time, still
            span -= {i for i in taken if p.used.get(i) in ("time", "grain")}
            taken -= {i for i in taken if p.used.get(i) in ("time", "grain")}
        if taken:
            # a synonym that ran into a breakdown ("sales by product" before "by product type") keeps its own words
            left = sorted(span - taken)
            if not m.source.startswith("synonym") or not left or not any(
                    p.tokens[i].stem in env.lex.own_words.get(m.ref, frozenset()) for i in left):
                _rematch(p, env, left)  # "sales per order id": the words left name a metric again
                continue
            p.use(left, "metric")
            if m.ref not in d.metrics:
                d.metrics.append(m.ref)
                d.groundings.append(Grounding(kind="metric", ref=m.ref, phrase=" ".join(p.tokens[i].text for i in left),
                                              source=m.source, score=m.score))
            continue
        if _column_of_a_listing(p, env, m):
            continue  # "list our stores with their tax rates": the stores' tax rate, read by the listing pass
        if _rows_of_a_value(p, env, m, valued):
            p.use(range(m.start, m.end), "context")  # "paid losses ... to hurricane claims": the claims cut
            continue
        if _verb_of_another(p, env, m, firsts):
            p.use(range(m.start, m.end), "metric")  # "customers who came in and ordered": the customers' verb
            continue
        if _glosses_a_metric(p, env, m):
            p.use(range(m.start, m.end), "context")  # "net paid (loss plus LAE, after recoveries)": its definition
            continue
        if firsts[m.ref] < m.start and names_its_rows_after_by(p, env, m.ref, m.start, m.end):
            continue  # "units sold by item": a breakdown no attribute makes, not the metric named again
        p.use(range(m.start, m.end), "metric")
        if m.ref not in d.metrics:
            d.metrics.append(m.ref)
            d.groundings.append(Grounding(kind="metric", ref=m.ref, phrase=p.words(m.start, m.end),
                                          source=m.source if m.exact else f"{m.source} (reordered)", score=m.score))
    d.signals["metric_match"] = min((g.score for g in d.groundings if g.kind == "metric"), default=0.0)


def back_to_back(p: Parse, env: Env) -> None:
    """"cat claim count": two metrics named back to back, nothing between them, and both still in the plan, may
    be one measure the first word qualifies (the claims of catastrophes) rather than two: answered as two, at
    medium confidence, and said."""
    d, tokens = p.draft, p.tokens
    if p.outcome is not None or d.threshold is not None:
        return
    taken = [m for m in p.metric_matches if m.ref in d.metrics]
    for a, b in zip(taken, taken[1:]):
        if a.ref != b.ref and a.end == b.start and p.question[tokens[a.end - 1].end:tokens[b.start].start] == " ":
            d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), SIMILARITY_CAP)
            d.notes.append(f"Read “{p.words(a.start, a.end)}” and “{p.words(b.start, b.end)}” as two measures; if "
                           f"“{p.words(a.start, a.end)}” qualifies {env.lex.metric_label(b.ref)}, ask for it with a "
                           "filter instead.")
            return


def _column_of_a_listing(p: Parse, env: Env, m) -> bool:  # noqa: ANN001
    """A metric's words that start a longer attribute name among the columns a listing asks for ("list our stores
    with their opening dates and tax rates", where "tax" alone names a metric)."""
    if not wants_rows(p):
        return False
    cue = WITH_ATTRIBUTES_RE.search(p.question) or COLUMNS_AFTER_RE.search(p.question)
    if cue is None or p.tokens[m.start].start < cue.end():
        return False
    stems = [t.stem for t in p.tokens]
    return any(len(e.phrase) > m.end - m.start for e in env.lex.attributes_spelled_at(stems, m.start))


def _rows_of_a_value(p: Parse, env: Env, m, valued: set[int]) -> bool:  # noqa: ANN001
    """A count named by one noun right after a value ("hurricane claims"), when another metric is the measure
    asked for ("what share of paid losses went to hurricane claims"): the noun names the rows the value cuts.
    ``valued``: the tokens of sure value mentions."""
    if m.end - m.start != 1 or m.start == 0 or (m.start - 1) not in valued or m.start in valued:
        return False
    if gap(p.question, p.tokens, m.start - 1, m.start):
        return False  # "... still open: claim number, ...": a colon or a comma between them, not "open claims"
    metric = env.lex.layer.metrics.get(m.ref)
    if metric is None or metric.agg not in ("count", "count_distinct"):
        return False
    j = m.start - 1
    while j > 0 and (j - 1) in valued and m.start - j < 8:
        j -= 1
    if j > 0 and (p.tokens[j - 1].text.lower() in ("and", "or", "plus", "&") or
                  p.question[p.tokens[j - 1].end:p.tokens[j].start].strip() == ","):
        return False  # "revenue and hurricane claims": a list of measures
    return any(o.ref != m.ref and (o.end <= j or o.start > m.start) for o in p.metric_matches)


def _verb_of_another(p: Parse, env: Env, m, firsts: dict[str, int]) -> bool:  # noqa: ANN001
    """A lone past-tense verb ("ordered") matching a metric, after another metric whose own names hold that verb
    ("customers" for *customers who ordered*): the verb says what those counted did, not a second measure.
    ``firsts``: where each metric matched is first named."""
    if m.end - m.start != 1 or not p.tokens[m.start].text.lower().endswith("ed"):
        return False
    stem, word = p.tokens[m.start].stem, p.tokens[m.start].text.lower()
    return any(ref != m.ref and at < m.start and stem in env.lex.own_words.get(ref, frozenset())
               and word in {w.lower() for w in _label_words(env, ref)} for ref, at in firsts.items())


def _label_words(env: Env, name: str) -> list[str]:
    metric = env.lex.layer.metrics[name]
    return " ".join([metric.name.replace("_", " "), metric.label or "", *metric.synonyms]).split()


#: how often, right after a metric's words ("ordered once", "visited more than twice", "bought 3 times")
TIMES_RE = re.compile(r"^(?:\s+(?:about|with|at|to|for|from|on)\s+(?:us|them|it|me|you))?"  # ("tweeted about us 5 times")
                      r"\s+(?:only\s+|just\s+|exactly\s+|at\s+least\s+|more\s+than\s+|over\s+|fewer\s+than\s+|"
                      r"less\s+than\s+)?(?:once|twice|thrice|(?:\d+|" + NUMBER_ALT + r")\s+times)\b(?!\s+(?:a|an|per|every|each)\b)", re.I)


_WHO_VERB_TIMES_RE = re.compile(r"\b(?:who|that|which)\s+(?:have\s+|has\s+|had\s+)?(?P<verb>[a-z]+)(?=" +
                                TIMES_RE.pattern[1:] + ")", re.I)


def _relative_clause_threshold(p: Parse, env: Env) -> bool:
    """"customers at each shop who ordered more than 50 times": the people a distinct count counts, then "who
    <verb> N times" apart from it, the verb one of a plain count's own words over the same rows: the people whose
    count of those rows passes N."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    if len(d.metrics) != 1 or d.threshold is not None:
        return False
    entity = entity_counted_by(env, d.metrics[0])
    counter = lex.layer.metrics.get(d.metrics[0])
    hit = _WHO_VERB_TIMES_RE.search(p.question)
    if entity is None or counter is None or hit is None:
        return False
    verb = tokenize(hit.group("verb"))
    counts = [x.name for x in lex.layer.metrics.values() if x.agg == "count" and x.source == counter.source
              and (x.filter or None) == (counter.filter or None)]
    if len(verb) != 1 or len(counts) != 1 or verb[0].stem not in lex.own_words.get(d.metrics[0], frozenset()) \
            | lex.own_words.get(counts[0], frozenset()):
        return False
    times = TIMES_RE.match(p.question[hit.end():])
    if times is None:
        return False
    said = tokens_in(tokens, (hit.start(), hit.end() + times.end()))
    return set_threshold(p, env, entity, counts[0], times.group(0), said)


def _ratio_threshold(p: Parse, env: Env) -> bool:
    """"how many customers spent over $1,000": a ratio per entity ("revenue per customer", a total over a count of
    distinct customers) followed by a threshold counts the entities whose own total passes it."""
    d, lex = p.draft, env.lex
    if len(d.metrics) != 1 or not COUNT_CUE_RE.search(p.question):
        return False
    m = next((x for x in p.metric_matches if x.ref == d.metrics[0]), None)
    metric = lex.layer.metrics.get(d.metrics[0])
    parts = ratio_parts(metric) if metric is not None else None
    if m is None or parts is None:
        return False
    numerator, denominator = parts
    entity = entity_counted_by(env, denominator)
    after = p.question[p.tokens[m.end - 1].end:]
    hit = THRESHOLD_AT_START_RE.match(after)
    if entity is None or numerator not in lex.layer.metrics or hit is None:
        return False
    start = p.tokens[m.end - 1].end
    said = tokens_in(p.tokens, (start + hit.start(), start + hit.end()))
    if not set_threshold(p, env, entity, numerator, hit.group(0), said):
        return False
    p.use(range(m.start, m.end), "metric")
    return True


_ON_HOW_MANY_RE = re.compile(r"\b(?:on|across|over|for|from|to|in|among)\s+(?:how\s+many\s+)?$", re.I)


def _distinct_counts_among(env: Env, name: str, entities: set[str]) -> list[str]:
    """The layer's counts of distinct ``entities`` over metric ``name``'s own rows (same source, same filter)."""
    metric = env.lex.layer.metrics[name]
    return [x.name for x in env.lex.layer.metrics.values() if x.agg == "count_distinct" and x.name != name
            and x.source == metric.source and (x.filter or None) == (metric.filter or None)
            and entity_counted_by(env, x.name) in entities]


def _counted_among_rows(p: Parse, env: Env) -> None:
    """"indemnity paid last month, and on how many claims?": a count named after "on how many", next to an amount
    of another fact, counts the things that amount's own rows hang off (the distinct claims among the indemnity
    payments), when the layer defines that count; not every claim."""
    d, lex = p.draft, env.lex
    if len(d.metrics) != 2:
        return
    first, second = (lex.layer.metrics.get(x) for x in d.metrics)
    m = next((x for x in p.metric_matches if x.ref == d.metrics[1]), None)
    if first is None or second is None or m is None or first.is_derived or second.agg != "count" \
            or first.source == second.source or not _ON_HOW_MANY_RE.search(p.question[:p.tokens[m.start].start]) \
            or "how many" not in " ".join(t.text.lower() for t in p.tokens[max(0, m.start - 2):m.end]):
        return
    entity = lex.entity.get(second.source or "")
    exact = _distinct_counts_among(env, first.name, {entity} if entity else set())
    if len(exact) != 1:
        return
    d.metrics[1] = exact[0]
    d.groundings = [g.model_copy(update={"ref": exact[0], "source": f"{g.source}, among the rows of "
                                         f"{lex.metric_label(first.name)}"}) if g.kind == "metric" and g.ref == second.name else g
                    for g in d.groundings]
    d.notes.append(f"Counted with {lex.metric_label(exact[0])}: the {lex.metric_label(second.name)} among the rows of "
                   f"{lex.metric_label(first.name)}.")


HOW_MANY_NOUN_RE = re.compile(r"\bhow\s+many\s+(?:(?:different|distinct|unique|separate)\s+)?(?P<noun>[a-z]+)\b", re.I)


def _entities_among_rows(p: Parse, env: Env) -> None:
    """"how many policies are in force, and how many customers does that cover?": a second "how many <things>",
    the things an entity the first metric's rows hang off, is the layer's count of those distinct things among the
    same rows (under the same filter), when it defines one; never explained away as context."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    if len(d.metrics) != 1:
        return
    first = lex.layer.metrics.get(d.metrics[0])
    if first is None or first.is_derived:
        return
    named = [m for m in p.metric_matches if m.ref == first.name]
    if not named:
        return
    for hit in HOW_MANY_NOUN_RE.finditer(p.question):
        if hit.start() < tokens[named[0].end - 1].end:
            continue  # ("how many accounts streamed more than 20 hours": the things counted, before the measure)
        idx = [i for i in tokens_in(tokens, hit.span("noun")) if i not in p.used]
        if len(idx) != 1 or any(m.start <= idx[0] < m.end for m in p.metric_matches):
            continue
        nodes = lex.node_words.get(tokens[idx[0]].stem, frozenset())
        entities = {e for n in nodes if (e := lex.entity.get(n)) is not None}
        exact = _distinct_counts_among(env, first.name, entities)
        if len(exact) != 1:
            continue
        d.metrics.append(exact[0])
        p.use(idx, "metric")
        d.groundings.append(Grounding(kind="metric", ref=exact[0], phrase=p.words(idx[0], idx[0] + 1),
                                      source=f"the distinct {tokens[idx[0]].text} among the rows of "
                                             f"{lex.metric_label(first.name)}", score=0.9))
        return


def metric_conditions(p: Parse, env: Env) -> None:
    """A second metric named as a condition on the rows of the first ("how many orders had no items", "customers
    with more than 3 orders") is no second measure. "At least one" is answered when a governed metric counts
    exactly those rows (the distinct keys of the first's rows among the second's, under the second's own filter:
    "orders with at least one jaffle" is orders with food); a count a metric already makes distinct is its own
    condition ("customers who placed at least one order"); anything else is asked back."""
    d, lex = p.draft, env.lex
    _counted_among_rows(p, env)
    _entities_among_rows(p, env)
    for m in p.metric_matches:  # "customers who have only ever ordered once": a count per row, as a condition
        after = p.question[p.tokens[m.end - 1].end:]
        times = TIMES_RE.match(after)
        if times is not None and m.ref in d.metrics and _glosses_a_value(p, m):
            # "regulars (ordered more than once)": the brackets say what a value named just before means
            d.metrics.remove(m.ref)
            d.groundings = [g for g in d.groundings if not (g.kind == "metric" and g.ref == m.ref)]
            p.used.update({i: "context" for i in tokens_in(p.tokens, (p.tokens[m.start].start,
                                                                      p.tokens[m.end - 1].end + times.end()))})
            continue
        if times is not None and m.ref in d.metrics:
            # "customers who ordered more than 5 times": the customers whose order count passes 5
            entity = entity_counted_by(env, m.ref)
            counter = lex.layer.metrics.get(m.ref)
            people = p.people_counted()
            if entity is None and counter is not None and people is not None and people < m.start:
                # "how many people ordered more than 3 times": the people a distinct count of the same rows counts
                named = {e for x in lex.layer.metrics.values() if x.source == counter.source
                         and (x.filter or None) == (counter.filter or None) and (e := entity_counted_by(env, x.name))}
                entity = named.pop() if len(named) == 1 else None
            counts = [x.name for x in lex.layer.metrics.values() if counter is not None and x.agg == "count"
                      and x.source == counter.source and (x.filter or None) == (counter.filter or None)]
            span = tokens_in(p.tokens, (p.tokens[m.start].start, p.tokens[m.end - 1].end + times.end()))
            if entity is not None and len(counts) == 1 and set_threshold(p, env, entity, counts[0], times.group(0),
                                                                          span - set(range(m.start, m.end))):
                p.use(range(m.start, m.end), "metric")
                return
            p.settle(PlanOutcome(
                status="clarify",
                message=f"“{(p.words(m.start, m.end) + times.group(0)).strip()}” is a condition on how often each "
                        f"one did it, and no governed metric counts only those. I can show "
                        f"{lex.metric_label(d.metrics[0])} itself.",
                suggestions=tuple(d.metrics[:2]), signals={"metric_match": 0.0}))
            return
    if _relative_clause_threshold(p, env) or _ratio_threshold(p, env) or node_threshold(p, env):
        return
    if len(d.metrics) < 2:
        return
    first = lex.layer.metrics.get(d.metrics[0])
    for m in p.metric_matches:
        if m.ref == d.metrics[0] or m.ref not in d.metrics or m.start == 0:
            continue
        before = p.question[max(0, p.tokens[m.start].start - 40):p.tokens[m.start].start]
        hit = CONDITION_RE.search(before)
        if hit is None:
            continue
        second = lex.layer.metrics.get(m.ref)
        if first is None or second is None or first.is_derived or second.is_derived:
            break
        if hit.group("exists") or hit.group("exists_a"):
            if first.agg == "count_distinct" and first.source == second.source and not second.filter:
                d.metrics.remove(m.ref)  # "customers who placed at least one order": counted once each already
                p.use(tokens_in(p.tokens, hit.span()) | set(range(m.start, m.end)), "context")
                return
            key = link_key(lex, second.source, first.source)
            exact = [x.name for x in lex.layer.metrics.values() if x.agg == "count_distinct"
                     and x.source == second.source and (x.filter or None) == (second.filter or None)
                     and key is not None and (x.expr or "").strip() == key] if first.agg in ("count", "count_distinct") \
                and not first.filter else []
            if len(exact) == 1:
                d.metrics = [exact[0] if x == d.metrics[0] else x for x in d.metrics if x != m.ref]
                d.groundings = [g.model_copy(update={"ref": exact[0], "source": "the rows with at least one"})
                                if g.kind == "metric" and g.ref == first.name else g for g in d.groundings
                                if not (g.kind == "metric" and g.ref == m.ref)]
                d.notes.append(f"Counted with {lex.metric_label(exact[0])}: {lex.metric_label(first.name)} with at "
                               f"least one of {lex.metric_label(m.ref)}.")
                p.use(tokens_in(p.tokens, hit.span()), "context")
                return
        named = _condition_named(p, env, first.name, m, hit)
        if named is not None:
            return
        entity = entity_counted_by(env, first.name)
        offset = max(0, p.tokens[m.start].start - 40)  # (where ``before`` starts)
        said = tokens_in(p.tokens, (offset + hit.start(), offset + hit.end()))
        if entity is not None and set_threshold(p, env, entity, m.ref, hit.group(0), said):
            p.use(range(m.start, m.end), "metric")
            return  # "accounts that streamed more than 10 hours": the accounts whose hours pass 10
        p.settle(PlanOutcome(
            status="clarify",
            message=f"“{(hit.group(0) + p.words(m.start, m.end)).strip()}” sets a condition on what "
                    f"{lex.metric_label(first.name)} counts, and no governed metric counts only what meets it. I can "
                    f"show {lex.metric_label(first.name)} and {lex.metric_label(m.ref)} side by side instead.",
            suggestions=(first.name, m.ref), signals={"metric_match": 0.0}))
        return


def _glosses_a_metric(p: Parse, env: Env, m: PhraseMatch) -> bool:
    """"net paid (loss plus LAE, after recoveries)": a metric named inside brackets right after another metric,
    which the other's own description names, restates what the first is; it is no second measure."""
    tokens, lex = p.tokens, env.lex
    start = tokens[m.start].start
    opened = p.question.rfind("(", 0, start)
    if opened < 0 or ")" in p.question[opened:start]:
        return False
    # (the metric named just before the bracket, or running into it: "net paid (loss plus LAE")
    before = [x for x in p.metric_matches if x.ref != m.ref and tokens[x.start].start < opened and x.end <= m.start
              and (tokens[x.end - 1].end >= opened or not p.question[tokens[x.end - 1].end:opened].strip())]
    if not before:
        return False
    outer = lex.layer.metrics.get(before[-1].ref)
    own = lex.layer.metrics.get(m.ref)
    if outer is None or own is None:
        return False
    described = set(phrase(outer.description or "")) | set(phrase(outer.expr or ""))
    words = set(phrase(own.label or own.name)) | {w for syn in own.synonyms for w in phrase(syn)}
    if not (set(phrase(p.words(m.start, m.end))) & described) and not (words & described):
        return False
    p.draft.notes.append(f"Read “{p.words(m.start, m.end)}” in brackets as part of what "
                         f"{lex.metric_label(outer.name)} means, not a second measure.")
    return True


def _glosses_a_value(p: Parse, m: PhraseMatch) -> bool:
    """Whether metric match ``m`` opens a bracket right after a value mention ("regulars (ordered more than once)")."""
    start = p.tokens[m.start].start
    before = p.question[:start].rstrip()
    if not before.endswith("("):
        return False
    end = len(before[:-1].rstrip())
    return any(v.span[1] == end for v in p.all_mentions)


def link_key(lex, source: str | None, target: str | None) -> str | None:  # noqa: ANN001
    """The column of ``source`` its declared link to ``target`` joins on ("order_id" for order items -> orders)."""
    node = lex.layer.nodes.get(source or "")
    if node is None or not target:
        return None
    for link in node.links:
        if link.to != target:
            continue
        for a, b in re.findall(r"(\w+\.\w+)\s*=\s*(\w+\.\w+)", link.on):
            for mine in (a, b):
                if mine.split(".")[0] == source:
                    return mine.split(".")[1]
    return None


def _value_inside_synonym(p: Parse, env: Env, m: PhraseMatch) -> None:
    """A metric synonym holding a value of an attribute the metric reaches ("jaffle sales" when "jaffle" is a
    product type): two readings, so the answer says so and is not given high confidence."""
    if not m.source.startswith("synonym") or m.end - m.start < 2:
        return
    facts = env.lex.facts_of([m.ref])
    for v in p.all_mentions:
        inside = tokens_in(p.tokens, v.span)
        if v.score >= 1.0 and inside and inside <= set(range(m.start, m.end)) and env.lex.reachable(facts, v.ref):
            said = p.question[v.span[0]:v.span[1]]
            p.draft.notes.append(f"“{p.words(m.start, m.end)}” is read as {env.lex.metric_label(m.ref)}; “{said}” is also "
                                 f"a {env.lex.label(v.ref)}: to filter on it, ask for “{env.lex.metric_label(m.ref)} for "
                                 f"the {said} {env.lex.label(v.ref)}”.")
            p.draft.signals["coverage_cap"] = min(p.draft.signals.get("coverage_cap", 1.0), 0.7)
            return


def _rematch(p: Parse, env: Env, left: list[int]) -> None:
    """The metric phrases among the tokens a longer metric phrase left when a breakdown took its end."""
    words = [i for i in left if i not in p.used]
    if not words:
        return
    sub = [p.tokens[i] for i in words]
    for m in find_phrases(sub, env.lex.catalog.metric_index or env.lex.catalog.metric_entries):
        idx = words[m.start:m.end]
        if idx != list(range(idx[0], idx[-1] + 1)):
            continue
        p.use(idx, "metric")
        if m.ref not in p.draft.metrics:
            p.draft.metrics.append(m.ref)
            p.draft.groundings.append(Grounding(kind="metric", ref=m.ref, phrase=p.words(idx[0], idx[-1] + 1),
                                                source=m.source, score=m.score))


def explain_own_words(p: Parse, env: Env) -> None:
    """Words of a chosen metric's own names ("monthly" in "monthly active users") are explained by it."""
    own: set[str] = set()
    for name in p.draft.metrics:
        m = env.lex.layer.metrics.get(name)
        if m is None:
            continue
        for text in (m.name, m.label or "", m.source or "", *m.synonyms):
            own.update(phrase(text))
    for i, t in enumerate(p.tokens):
        if i not in p.used and i not in p.reserved and t.stem in own and not any(
                names_its_rows_after_by(p, env, name, i, i + 1) for name in p.draft.metrics):
            p.use([i], "metric")  # (not "units sold by item": a breakdown by the rows, which no attribute makes)


def names_its_rows_after_by(p: Parse, env: Env, name: str, start: int, end: int) -> bool:
    """Whether tokens ``start:end``, right after "by" or "per", name the rows metric ``name`` counts ("units sold
    by *item*", "sessions by *session*"): a breakdown by those rows, not the metric (which "top 5 products by
    *hours*" names: its measure)."""
    metric = env.lex.layer.metrics.get(name)
    if metric is None or not start or p.tokens[start - 1].text.lower() not in ("by", "per"):
        return False
    if MOST_RE.search(p.question) or LEAST_RE.search(p.question) or RANKED_RE.search(p.question):
        return False  # "best-selling item (by units)", "top 3 by $ sales": the measure a ranking is on
    return all(metric.source in env.lex.node_words.get(p.tokens[i].stem, frozenset()) for i in range(start, end))


def vector_metric(p: Parse, env: Env) -> None:
    """No metric named: the retriever's closest metric, when it is clearly the one and explains a word."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    if d.metrics or env.searcher is None or d.rows_of is not None:
        return
    if p.previous is not None and p.previous.metrics and STRONG_FOLLOWUP_RE.search(p.question):
        return  # "same thing but only agents in the West": the previous metric, narrowed (the follow-up pass)
    if d.order_by and _metric_of_the_kind(p, env):
        return
    if wants_rows(p) and any(not x.startswith(METRIC_TIME) for x in d.dimensions):
        return  # "list our stores with their opening dates": rows, not the closest metric
    if _most_common(p, env):
        return
    masked = mask(p.question, tokens, p.consumed).strip()
    if not phrase(masked):
        return
    hits = env.searcher.search(masked, k=5, kinds=["metric"]).of_kind("metric")
    if not hits:
        return
    named_tables = [nodes for ph, nodes in lex.node_phrases.items()
                    if any(tuple(t.stem for t in tokens[j:j + len(ph)]) == ph for j in range(len(tokens)))]
    spans: dict[tuple[int, int], list[str]] = {}
    for v in p.accepted:
        spans.setdefault(v.span, []).append(v.ref)

    def fits(h) -> bool:  # noqa: ANN001
        facts = lex.facts_of([h.ref])
        tables_ok = all(any(lex.reachable(facts, f"{o}.x") for o in owners) for owners in named_tables)
        dims_ok = all(lex.reachable(facts, x) for x in d.dimensions)
        values_ok = all(any(lex.reachable(facts, r) for r in refs) for refs in spans.values())
        return tables_ok and dims_ok and values_ok

    def explains(h) -> bool:  # noqa: ANN001
        """The metric accounts for at least one word of the question (similarity alone is not enough)."""
        own = lex.own_words[h.ref]  # the metric's own names count even for a common verb ("did we sell")
        words = set(phrase(lex.layer.metrics[h.ref].description))
        return any(t.stem in own or (t.stem in words and t.stem not in FUNCTION_WORDS) for i, t in enumerate(tokens)
                   if i not in p.used and t.stem not in FILLER and t.text.lower() not in STOP_WORDS)

    ranked = sorted(hits, key=lambda h: (fits(h), h.score), reverse=True)
    ranked, family = _one_family(lex, ranked, fits)
    top = ranked[0]
    second = ranked[1].score if len(ranked) > 1 else 0.0
    margin = top.score - second
    grounded = bool(d.dimensions and any(not x.startswith(METRIC_TIME) for x in d.dimensions)) or bool(p.accepted)
    only_fit = grounded and fits(top) and not any(fits(h) for h in ranked[1:])
    d.signals["metric_vector_score"] = top.score
    d.signals["metric_margin"] = max(0.0, margin) if not only_fit else max(margin, 0.1)
    unknown_business = [t for i, t in enumerate(tokens) if i not in p.used and t.stem in BUSINESS_STEMS
                        and t.stem not in lex.catalog.vocabulary]
    spent = _money_spent(p, env)
    if spent is not None and not unknown_business:
        # "top 5 customers by total spend": what the customers paid us; "supplies by spend": what we paid for them
        d.metrics.append(spent)
        d.groundings.append(Grounding(kind="metric", ref=spent, phrase="spend", source="rule: money spent by or on "
                                      "what the question breaks down by", score=0.45))
        d.signals["metric_match"] = 0.45  # a guess: a model, when one is configured, is asked too (the cascade)
        d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), SIMILARITY_CAP)
        d.notes.append(f"Read “spend” as {lex.metric_label(spent)}: the money that moves between us and "
                       + ", ".join(sorted({lex.label(x) for x in d.dimensions if not x.startswith(METRIC_TIME)}
                                          | {v.value for v in p.accepted})) + ".")
        for i, t in enumerate(tokens):
            if t.text.lower() in _SPEND_WORDS and i not in p.used:
                p.use([i], "metric")
        return
    verb = _count_by_verb(p, env)
    if verb is not None and not unknown_business:
        # "how many of each product did we sell": the one count named by that verb ("items sold") reaching it all
        name, at = verb
        d.metrics.append(name)
        d.groundings.append(Grounding(kind="metric", ref=name, phrase=p.words(at, at + 1),
                                      source="rule: the count its verb names", score=0.85))
        d.signals["metric_match"] = 0.85
        p.use([at], "metric")
        d.notes.append(f"Read “how many … {p.words(at, at + 1)}” as {lex.metric_label(name)}.")
        explain_own_words(p, env)
        return
    counted = _count_of_values(p, env)
    if counted is not None and not unknown_business:
        # "how many straws did we go through": the one count that reaches the values named without fan-out
        d.metrics.append(counted)
        d.groundings.append(Grounding(kind="metric", ref=counted, phrase=masked, source="rule: the one count of the "
                                      "values named", score=0.45))
        d.signals["metric_match"] = 0.45  # a guess: a model, when one is configured, is asked too (the cascade)
        d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), SIMILARITY_CAP)
        d.notes.append(f"No metric was named: {lex.metric_label(counted)} is the one count of "
                       + ", ".join(dict.fromkeys(v.value for v in p.accepted)) + ".")
        explain_own_words(p, env)
        return
    if not fits(top) or not explains(top) or unknown_business:
        d.candidates.extend(h.ref for h in ranked[:3])
        return
    fitting = [h for h in ranked if fits(h)]
    if fitting:  # a cut of the best by its own filter is no rival to it ("each drink sold": items sold, drinks kept)
        fitting = [fitting[0], *(h for h in fitting[1:] if not _cut_of(lex, fitting[0].ref, h.ref))]
    fit_margin = fitting[0].score - (fitting[1].score if len(fitting) > 1 else 0.0) if fitting else 0.0
    named = any(t.stem in lex.own_words[top.ref] for i, t in enumerate(tokens)
                if i not in p.used and t.stem not in FILLER and t.stem not in FUNCTION_WORDS
                and t.text.lower() not in STOP_WORDS)  # a word of the metric's own names ("cheese used")
    clear_fit = grounded and bool(fitting) and fitting[0] is top and fit_margin >= 0.08 \
        and top.score >= (0.3 if named else 0.4) and top.lexical_score > 0.2
    # the closest metrics are one measure cut by its own filters ("how many chai lattes did we sell": items,
    # jaffles or drinks sold): the uncut measure, the values named doing the cutting
    family_fit = family and grounded and fits(top) and margin >= 0.12 and top.score >= 0.3 \
        and top.lexical_score > 0.3
    other = _another_of_its_kind(p, env, top.ref)
    if other is not None:
        named_kinds = ", ".join(lex.metric_label(h.ref) for h in ranked[:3])
        p.settle(PlanOutcome(
            status="clarify",
            message=f"There is no “{other}” in the semantic layer. The closest metrics are {named_kinds}: ask for one "
                    f"of them by name, or ask the metric's owner to define “{other}”.",
            suggestions=tuple(lex.metric_label(h.ref) for h in ranked[:3]), signals={"metric_match": 0.0}))
        return
    if (top.score >= 0.62 and margin >= 0.06 and top.lexical_score > 0.2) or (only_fit and top.score >= 0.3
                                                                             and top.lexical_score > 0.1) \
            or clear_fit or family_fit or (top.score >= 0.45 and margin >= 0.2 and top.lexical_score > 0.3):
        d.metrics.append(top.ref)
        d.groundings.append(Grounding(kind="metric", ref=top.ref, phrase=masked, source="description (similarity)",
                                      score=round(top.score, 3)))
        d.signals["metric_match"] = min(0.85, top.score)
        # a metric found by likeness, not by name, is a guess: the answer is never given high confidence
        d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), SIMILARITY_CAP)
        d.notes.append(f"No metric was named: {env.lex.metric_label(top.ref)} is the closest by meaning.")
        explain_own_words(p, env)
    else:
        d.signals["vector_candidates"] = float(len(hits))
        d.candidates.extend(h.ref for h in ranked[:3])


#: the head nouns of measures people name with a qualifier ("combined ratio", "retention rate", "net margin")
_KIND_HEADS = frozenset({"ratio", "rate", "margin", "index", "yield", "score", "share", "percentage"})
#: qualifiers that name no other measure ("the overall ratio", "our average rate")
_PLAIN_QUALIFIERS = frozenset({"overall", "total", "average", "avg", "mean", "current", "actual", "same", "this",
                               "that", "which", "what", "whose", "each", "every", "per", "real", "true"})


def _another_of_its_kind(p: Parse, env: Env, ref: str) -> str | None:
    """"combined ratio" when the closest metric is the loss ratio: a measure named by a qualifier and a head noun
    of ratios, rates, margins ..., the head one of the metric's own words and the qualifier none of its words nor
    any word the rest of the plan used: another measure of that kind, which the layer does not define (the
    phrase), else None."""
    tokens, own = p.tokens, env.lex.own_words.get(ref, frozenset())
    for i in range(1, len(tokens)):
        head, qual = tokens[i], tokens[i - 1]
        if head.stem not in _KIND_HEADS or head.stem not in own or i - 1 in p.used or i in p.used:
            continue
        if not qual.text.isalpha() or qual.stem in own or qual.text.lower() in _PLAIN_QUALIFIERS \
                or qual.stem in ARTICLES or qual.stem in env.lex.catalog.vocabulary:
            continue
        if p.question[qual.end:head.start] != " ":
            continue
        return f"{qual.text.lower()} {head.text.lower()}"
    return None


#: "the most common causes", "least frequent", "commonest": how often each value occurs, a count of rows
_MOST_COMMON_RE = re.compile(r"\b(?:most|least)\s+(?:common(?:ly\s+\w+)?|frequent(?:ly\s+\w+)?|usual|often)\b|"
                             r"\b(?:commonest|rarest)\b", re.I)


def _most_common(p: Parse, env: Env) -> bool:
    """"the three most common causes of loss in each line": no measure named, and how often each value of the
    first breakdown occurs asked: the plain count of the rows that attribute belongs to (the count with no filter
    of its own, defined on that table). Whether one was taken."""
    d, lex = p.draft, env.lex
    m = _MOST_COMMON_RE.search(p.question)
    ranked = [x for x in d.dimensions if not x.startswith(METRIC_TIME)]
    if m is None or not ranked:
        return False
    # (the values counted are the ones named right after the words: "most common causes")
    after = [(min(toks), ref) for ref, toks in p.dimension_tokens.items()
             if ref in ranked and toks and p.tokens[min(toks)].start >= m.end()]
    first = min(after)[1] if after else ranked[0]
    node = first.split(".")[0]
    counts = [x.name for x in lex.layer.metrics.values() if x.source == node and is_row_count(x)]
    if len(counts) != 1 or not all(lex.reachable(lex.facts_of(counts), x.split(":")[0]) for x in ranked):
        return False
    d.metrics.append(counts[0])
    d.groundings.append(Grounding(kind="metric", ref=counts[0], phrase=m.group(0),
                                  source=f"rule: how often each {lex.label(first)} occurs", score=0.9))
    d.signals["metric_match"] = 0.9
    d.notes.append(f"“{m.group(0)}” read as the count of {lex.metric_label(counts[0])} for each "
                   f"{lex.label(first)}.")
    p.use([i for i in tokens_in(p.tokens, m.span()) if i not in p.used], "metric")  # ("most": the ranking's)
    return True


def _metric_of_the_kind(p: Parse, env: Env) -> bool:
    """"the 2 least popular drinks by number sold": the things ranked are a value of a kind (the drinks, one by one)
    and the words left name what the layer counts of that kind: the one metric whose own filter holds the value and
    whose own words include a word left over ("sold": drinks sold); whether one was taken."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    kinds = [f for f in d.filters if f.op == "=" and len(f.values) == 1 and any(
        g.kind == "filter" and g.ref == f.describe() and g.source.startswith("value of") for g in d.groundings)]
    if len(kinds) != 1:
        return False
    f = kinds[0]
    left = {t.stem for i, t in enumerate(tokens) if i not in p.used and i not in p.consumed
            and t.text.lower() not in STOP_WORDS and t.stem not in FILLER}
    found = [m.name for m in lex.layer.metrics.values() if not m.is_derived and m.filter
             and lex.filter_holds([m.name], f.ref, f.values[0]) and left & lex.own_words.get(m.name, frozenset())]
    if len(found) != 1:
        return False
    d.metrics.append(found[0])
    d.groundings.append(Grounding(kind="metric", ref=found[0], phrase=" ".join(sorted(left)),
                                  source=f"what is counted of {f.values[0]}", score=0.9))
    d.signals["metric_match"] = 0.9
    explain_own_words(p, env)
    return True


#: how people ask what came in ("how much money did we bring in", "how much did the shop make", "money we took")
_EARNED_RE = re.compile(
    r"\bhow\s+much\s+(?:money\s+|cash\s+)?(?:(?:did|do|does|have|has|had|will|would|are|were|is|was)\s+)?"
    r"(?:(?:we|i|you|they|it|the\s+\w+|our\s+\w+|\w+)\s+)?(?:make|made|making|earn|earned|earning|take\s+in|took\s+in|"
    r"taken\s+in|taking\s+in|bring\s+in|brought\s+in|bringing\s+in|rake\s+in|raked\s+in|generate|generated|gross|"
    r"grossed)\b|\bmoney\s+(?:(?:we|they|the\s+\w+)\s+)?(?:made|took\s+in|brought\s+in|earned|raked\s+in|take|took)\b",
    re.I)
#: the stems of the words a revenue-like metric is named with, in any business
REVENUE_STEMS = frozenset({"revenu", "sal", "income", "earn", "money", "taking", "turnover", "proce", "gross"})


def _money_made(p: Parse, env: Env, matches: list[PhraseMatch]) -> list[PhraseMatch]:
    """"how much money did we bring in last month": where no metric is named in those words, the one unfiltered
    currency metric named with the most revenue words (revenue, sales, income, takings...), when one stands out."""
    hit = _EARNED_RE.search(p.question)
    if hit is None:
        return _money_named(p, env, matches)
    span = sorted(i for i in tokens_in(p.tokens, hit.span()) if i not in p.consumed)  # ("bring in last month")
    if not span or any(m.start <= span[-1] and m.end > span[0] for m in matches):
        return matches
    return _as_revenue(p, env, matches, hit.group(0).strip(), span[0], span[-1] + 1, "rule: money made")


def _as_revenue(p: Parse, env: Env, matches: list[PhraseMatch], said: str, start: int, end: int,
                source: str) -> list[PhraseMatch]:
    """The matches with the words ``start``..``end`` read as the revenue-like metric, when one stands out: a good
    guess, never a certainty."""
    earned = revenue_like(env)
    if earned is None:
        return matches
    p.draft.notes.append(f"Read “{said}” as {env.lex.metric_label(earned)}.")
    p.draft.signals["coverage_cap"] = min(p.draft.signals.get("coverage_cap", 1.0), SIMILARITY_CAP)
    return sorted([*matches, PhraseMatch(earned, start, end, 0.78, source, True)], key=lambda x: x.start)


_MONEY_WORDS = frozenset({"dollars", "dollar", "money", "bucks", "cash"})


def _money_named(p: Parse, env: Env, matches: list[PhraseMatch]) -> list[PhraseMatch]:
    """"the average $ per order", "which 3 products brought in the most $$": money named where no metric is (the
    ``$`` written as "dollars" by the normaliser) is the revenue-like amount, before "per" a ratio's numerator;
    a guess, never a certainty."""
    tokens = p.tokens
    at = next((i for i, t in enumerate(tokens) if t.text.lower() in _MONEY_WORDS and i not in p.consumed
               and not any(m.start <= i < m.end for m in matches)), None)
    if at is None:
        return matches
    per = at + 1 < len(tokens) and tokens[at + 1].text.lower() == "per" and any(m.start == at + 2 for m in matches)
    # ("which drink brings in the least money": "drink", a value named, is no metric beside the money)
    valued = set().union(*(tokens_in(tokens, v.span) for v in p.mentions)) if p.mentions else set()
    named = [m for m in matches if not (m.end - m.start == 1 and m.source != "name" and m.start in valued)]
    in_words = at > 0 and tokens[at - 1].text.lower() == "in" and bool(named)  # "largest order, in dollars"
    if in_words or (named and not per):
        return matches
    return _as_revenue(p, env, matches, tokens[at].text, at, at + 1, "rule: money named")


def is_plain_currency_sum(m) -> bool:  # noqa: ANN001 (a Metric)
    """An unfiltered, non-derived sum kept in a currency: what a revenue-like amount must be."""
    return not m.filter and not m.is_derived and (m.format or "") == "currency" and m.agg == "sum"


def revenue_like(env: Env, reaching: Sequence[str] = ()) -> str | None:
    """The one unfiltered currency sum named with the most revenue words (among those reaching ``reaching``
    without fan-out, when given), else None."""
    lex = env.lex
    scored: dict[str, int] = {}
    for m in lex.layer.metrics.values():
        if not is_plain_currency_sum(m):
            continue
        if reaching and not all(r.split(".")[0].split(":")[0] in lex.catalog.reach.get(m.source or "", {})
                                and r.split(".")[0].split(":")[0] not in lex.catalog.fan_reach.get(m.source or "", set())
                                for r in reaching):
            continue
        n = len(lex.own_words.get(m.name, frozenset()) & REVENUE_STEMS)
        if n:
            scored[m.name] = n
    if not scored:
        return None
    best = max(scored.values())
    top = [x for x, n in scored.items() if n == best]
    return top[0] if len(top) == 1 else None


def reaching_sales(env: Env, name: str, refs: Sequence[str]) -> str | None:
    """The one revenue-like sum reaching ``refs`` without fan-out, when metric ``name`` is a plain currency sum that
    is not it ("sales" summing whole orders, asked by product: the products' own sales), else None."""
    metric = env.lex.layer.metrics.get(name)
    if metric is None or not is_plain_currency_sum(metric):
        return None
    fit = revenue_like(env, refs)
    return fit if fit is not None and fit != name else None


_SPEND_WORDS = frozenset({"spend", "spent", "spending", "spends", "expenditure"})


def _money_spent(p: Parse, env: Env) -> str | None:
    """"spend" named with no metric, by or for some rows: the revenue-like amount when those rows are one link from
    it (customers spend with us), else the one amount named with "spend" that reaches them (what we spend on
    supplies); None when neither is one."""
    d, lex = p.draft, env.lex
    if not any(t.text.lower() in _SPEND_WORDS and i not in p.used for i, t in enumerate(p.tokens)):
        return None
    nodes = {x.split(".")[0] for x in d.dimensions if not x.startswith(METRIC_TIME)} | \
        {v.ref.split(".")[0] for v in p.accepted}
    if not nodes:
        return None
    earned = revenue_like(env)
    if earned is not None:
        source = lex.layer.metrics[earned].source or ""
        if all(lex.catalog.reach.get(source, {}).get(n, 99) <= 1 for n in nodes):
            return earned
    spenders = [m.name for m in lex.layer.metrics.values() if not m.is_derived and (m.format or "") == "currency"
                and "spend" in lex.own_words.get(m.name, frozenset()) and m.source
                and all(n in lex.catalog.reach.get(m.source, {}) for n in nodes)]
    return spenders[0] if len(spenders) == 1 else None


#: the words before a verb that make it one ("did we sell", "have we sold", "were sold", "got sold")
_VERB_BEFORE = frozenset({"did", "do", "does", "have", "has", "had", "we", "they", "you", "i", "were", "was", "got",
                          "get", "been", "be", "are", "is"})


def _count_by_verb(p: Parse, env: Env) -> tuple[str, int] | None:
    """"how many of each product did we sell", "how many did we sell of each drink": a count question with no
    metric named whose verb is a word of count metrics' names ("items sold"): the one unfiltered count among them
    reaching every breakdown and value (its cuts, "drinks sold", are no rivals: the values named cut it). With the
    token of the verb; None when not exactly one."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    if not COUNT_CUE_RE.search(p.question):
        return None
    refs = [x for x in d.dimensions if not x.startswith(METRIC_TIME)] + [v.ref for v in p.accepted]
    valued = set().union(*(tokens_in(tokens, v.span) for v in p.accepted)) if p.accepted else set()
    left = [i for i, t in enumerate(tokens) if i not in p.used and i not in valued and t.stem not in FILLER
            and t.stem not in FUNCTION_WORDS and t.text.lower() not in STOP_WORDS and not t.text.isdigit()]
    if left:
        return None  # ("how many croissants did we sell": a thing the layer does not know, asked about)
    for i, t in enumerate(tokens):
        if i in p.used or i == 0 or tokens[i - 1].text.lower() not in _VERB_BEFORE or t.stem in FILLER \
                or t.text.lower() in STOP_WORDS:
            continue  # (a common verb is a function word elsewhere: here it names what is counted)
        found = [m.name for m in lex.layer.metrics.values()
                 if m.agg == "count" and not m.filter and not m.is_derived and m.source
                 and t.stem in lex.own_words.get(m.name, frozenset())
                 and all(lex.reachable([m.source], r) for r in refs)]
        if len(found) == 1:
            return found[0], i
    return None


def _count_of_values(p: Parse, env: Env) -> str | None:
    """"how many straws did we go through in July": a count question naming only values, answered by the one
    unfiltered count metric whose rows reach every value's attribute without fan-out (None when not one)."""
    d, lex = p.draft, env.lex
    if not COUNT_CUE_RE.search(p.question) or not p.accepted or any(not x.startswith(METRIC_TIME) for x in d.dimensions):
        return None
    nodes = {v.ref.split(".")[0] for v in p.accepted}
    found = [m.name for m in lex.layer.metrics.values()
             if m.agg == "count" and not m.filter and not m.is_derived and m.source
             and all(n in lex.catalog.reach.get(m.source, {}) for n in nodes)]
    return found[0] if len(found) == 1 else None


#: "orders with nothing in them", "empty orders", "orders that had zero items": the rows holding nothing
_EMPTY_RE = re.compile(r"\b(?:with\s+nothing|nothing\s+in\s+(?:them|it)|(?:that|which)\s+(?:were|are|was|is)\s+empty|"
                       r"with\s+(?:no|zero|0)\s+\w+|(?:that|which)\s+(?:had|have|has|contained)\s+(?:no|zero|0|nothing)\b)",
                       re.I)


def _empty_cut(p: Parse, env: Env) -> None:
    """"how many orders went through with nothing in them": a count whose rows are said to hold nothing is the one
    governed cut of it that keeps the rows whose amount is 0 (a filter "x = 0"), when the layer has exactly one."""
    d, lex = p.draft, env.lex
    hit = _EMPTY_RE.search(p.question)
    if hit is None:
        return
    for i, name in enumerate(list(d.metrics)):
        m = next((x for x in p.metric_matches if x.ref == name), None)
        if m is None or p.tokens[m.start].start > hit.start():
            continue
        zero = [c for c in sorted(lex.cuts.get(name, ())) if c not in d.metrics
                and re.search(r"=\s*0(?:\.0+)?\s*$", lex.layer.metrics[c].filter or "")]
        if len(zero) != 1:
            continue
        d.metrics[i] = zero[0]
        d.groundings = [g.model_copy(update={"ref": zero[0], "source": f"{g.source} (its cut holding nothing: "
                                             f"“{hit.group(0)}”)"}) if g.kind == "metric" and g.ref == name else g
                        for g in d.groundings]
        p.use([j for j in tokens_in(p.tokens, hit.span()) if p.used.get(j) in (None, "context")], "metric")
        d.notes.append(f"Read {lex.metric_label(zero[0])}, the governed cut of {lex.metric_label(name)} with nothing "
                       "in it.")
        return


def _whole_without_cut(p: Parse, env: Env, i: int, whole: str, cut: str, said: list[int]) -> None:
    """"leaving out the cat events, how many claims ...": a governed cut named after a negation is taken away from
    its whole (the whole minus the cut, an ad hoc metric from two governed ones, said so), never the cut itself."""
    d, lex = p.draft, env.lex
    name = f"{whole}_without_{cut}"
    label = f"{lex.metric_label(whole)} without {lex.metric_label(cut)}"
    d.adhoc.append(AdhocMetric(name=name, label=label, expr=f"{whole} - {cut}"))
    d.metrics[i] = name
    d.groundings = [g.model_copy(update={"ref": name, "source": f"{g.source}, less {lex.metric_label(cut)} (named "
                                         "after a negation)"}) if g.kind == "metric" and g.ref == whole else g
                    for g in d.groundings]
    p.use(said, "metric")
    d.notes.append(f"“{label}” is {lex.metric_label(whole)} less {lex.metric_label(cut)}: the question leaves "
                   f"{lex.metric_label(cut)} out, and no governed metric counts only the rest.")
    d.signals["adhoc"] = 0.8


def metric_cuts(p: Parse, env: Env) -> None:
    """"how many negative posts": a word left over that names one filtered cut of a chosen metric (negative tweets
    is tweets cut by its own filter) asks for that cut, not the whole."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    _empty_cut(p, env)
    spans = {m.ref: (m.start, m.end) for m in p.metric_matches}
    for whole in list(d.metrics):  # "jaffle items sold": the cut named right before its whole is the cut alone
        for cut in list(d.metrics):
            if whole in d.metrics and _cut_of(lex, whole, cut) and whole in spans and cut in spans \
                    and spans[cut][1] == spans[whole][0]:
                d.metrics.remove(whole)
                d.groundings = [g for g in d.groundings if not (g.kind == "metric" and g.ref == whole)]
    for i, name in enumerate(list(d.metrics)):
        if name not in lex.layer.metrics:
            continue
        own = lex.own_words.get(name, frozenset())
        free = {t.stem for j, t in enumerate(tokens) if p.used.get(j) in (None, "context") and t.stem not in own
                and t.stem not in FILLER and t.stem not in FUNCTION_WORDS and t.text.lower() not in STOP_WORDS}
        cuts = [c for c in sorted(lex.cuts.get(name, ())) if c not in d.metrics
                and lex.own_words.get(c, frozenset()) & free]
        if len(cuts) != 1:
            continue
        cut = cuts[0]
        words = lex.own_words[cut] & free
        said = [j for j, t in enumerate(tokens) if t.stem in words and p.used.get(j) in (None, "context")]
        if said and NEGATION_RE.search(p.question[max(0, tokens[said[0]].start - 40):tokens[said[0]].start]) \
                and not lex.layer.metrics[name].is_derived:
            _whole_without_cut(p, env, i, name, cut, said)
            return
        d.metrics[i] = cut
        d.groundings = [g.model_copy(update={"ref": cut, "source": f"{g.source} (its cut named by "
                                             f"“{', '.join(sorted(words))}”)"})
                        if g.kind == "metric" and g.ref == name else g for g in d.groundings]
        for j, t in enumerate(tokens):
            if t.stem in words and p.used.get(j) in (None, "context"):
                p.used[j] = "metric"
        d.notes.append(f"Read {lex.metric_label(cut)}, the governed cut of {lex.metric_label(name)} the question names.")


def _cut_of(lex, whole: str, part: str) -> bool:  # noqa: ANN001
    """Whether metric ``part`` is metric ``whole`` (no filter of its own) cut by a filter of its own."""
    return part in lex.cuts.get(whole, ())


def _one_family(lex, ranked: list, fits) -> tuple[list, bool]:  # noqa: ANN001
    """When the hits within 0.06 of the best are all one measure (same source, aggregation and expression) that
    differ only by their own filters, and the uncut one is among them: that one stands for them all (the others
    are dropped from the ranking), and True."""
    top = ranked[0]
    close = [h for h in ranked if top.score - h.score < 0.06 and fits(h)]
    if len(close) < 2:
        return ranked, False
    metrics = [lex.layer.metrics[h.ref] for h in close]
    if any(m.is_derived for m in metrics) or len({(m.source, m.agg, m.expr) for m in metrics}) != 1:
        return ranked, False
    uncut = [h for h, m in zip(close, metrics) if not m.filter]
    if len(uncut) != 1:
        return ranked, False
    dropped = {h.ref for h in close} - {uncut[0].ref}
    return [uncut[0]] + [h for h in ranked if h.ref not in dropped and h is not uncut[0]], True


def _condition_named(p: Parse, env: Env, first: str, second: PhraseMatch, hit: re.Match[str]) -> str | None:
    """"orders with zero items": a governed metric one of whose names is the whole condition ("orders with no
    items"), with "zero", "0" and "without any" read as "no". It replaces both metrics."""
    d, lex = p.draft, env.lex
    own = next((x for x in p.metric_matches if x.ref == first and x.end <= second.start), None)
    if own is None:
        return None
    text = p.question[p.tokens[own.start].start:p.tokens[second.end - 1].end]
    text = re.sub(r"\b(?:zero|0|without\s+any|without)\b", "no", text, flags=re.I)
    text = re.sub(r"\b(?:(?:that|which|who)\s+)?(?:had|has|have|contained|contain|contains|having|containing)\b", "with",
                  text, flags=re.I)
    found = find_phrases(tokenize(text), lex.catalog.metric_index or lex.catalog.metric_entries)
    if len(found) != 1 or found[0].ref in (first, second.ref) or found[0].start != 0 \
            or found[0].end != len(tokenize(text)):
        return None
    name = found[0].ref
    d.metrics = [name if x == first else x for x in d.metrics if x != second.ref]
    d.groundings = [g.model_copy(update={"ref": name, "source": "name (the condition)"})
                    if g.kind == "metric" and g.ref == first else g for g in d.groundings
                    if not (g.kind == "metric" and g.ref == second.ref)]
    p.use(range(own.start, second.end), "metric")
    return name


def ratio_by_entity(p: Parse, env: Env) -> None:
    """"revenue per customer", "on average, how much does each customer spend": the defined ratio A / B.

    A derived metric ``A / B`` is chosen when A was matched and the question names B's entity right after
    "per", "each", "every" or "an average", using one of B's own words (customer, order, account...).
    """
    d, lex, tokens = p.draft, env.lex, p.tokens
    if not d.metrics:
        return
    averaged = re.search(r"\b(average|avg|mean)\b", p.question, re.I)
    for name, refs, divides in lex.ratios:
        if not divides or len(refs) != 2 or refs[0] not in d.metrics:
            continue
        a_words, b_words = lex.own_words.get(refs[0], frozenset()), lex.own_words.get(refs[1], frozenset())
        for m in p.metric_matches:
            # "items on an average order": the words "average order" are B's entity here, not another metric
            if m.ref == refs[0] or m.ref not in d.metrics or m.end - m.start != 2:
                continue
            if tokens[m.start].text.lower() not in ("average", "avg", "typical", "mean") \
                    or tokens[m.end - 1].stem not in b_words:
                continue
            prev = " ".join(x.text.lower() for x in tokens[max(0, m.start - 2):m.start])
            if not re.search(r"\b(?:on|in|for|from|of|per)\s+(?:an?|the)$|\b(?:per|each)$", prev):
                continue
            d.metrics = [name if x == refs[0] else x for x in d.metrics if x != m.ref]
            d.groundings = [g.model_copy(update={"ref": name, "source": "ratio of two metrics"})
                            if g.kind == "metric" and g.ref == refs[0] else g for g in d.groundings
                            if not (g.kind == "metric" and g.ref == m.ref)]
            return
        for i, t in enumerate(tokens):
            if t.stem not in b_words or p.used.get(i) not in (None, "dimension") or (t.stem in a_words and not any(
                    toks == (i,) for toks in p.dimension_tokens.values())):
                continue
            if p.used.get(i) == "dimension" and not any(toks == (i,) for toks in p.dimension_tokens.values()):
                continue  # "per product type" is a breakdown by type, not a ratio per product
            prev = " ".join(x.text.lower() for x in tokens[max(0, i - 2):i])
            if not averaged and re.search(r"\bfor (?:each|every)$", prev):
                continue  # "for each customer, how many orders": one row per customer, not the ratio
            if not averaged and (t.text.lower().endswith(("'s", "’s")) or p.question[t.end:t.end + 1] in ("'", "’")):
                continue  # "each customer's order count": each one's own count, one row per customer
            if re.search(r"\b(per|each|every|an|a single|by the)$", prev) or \
                    (averaged and re.search(r"\b(per|each|every)\b", prev)):
                _drop_breakdown_at(p, i)
                d.metrics = [name if x == refs[0] else x for x in d.metrics]
                d.groundings = [g.model_copy(update={"ref": name, "source": "ratio of two metrics"})
                                if g.kind == "metric" and g.ref == refs[0] else g for g in d.groundings]
                p.used[i] = "metric"
                for j in range(max(0, i - 2), i):
                    if tokens[j].text.lower() in ("per", "each", "every"):
                        p.used[j] = "metric"
                for j, x in enumerate(tokens):
                    if x.text.lower() in ("average", "avg", "mean"):
                        p.used[j] = "metric"
                return


def _drop_breakdown_at(p: Parse, i: int) -> None:
    """Undo a breakdown read from token ``i`` ("per customer" is a ratio here, not a breakdown)."""
    for ref, toks in list(p.dimension_tokens.items()):
        if toks == (i,):
            del p.dimension_tokens[ref]
            if ref in p.draft.dimensions:
                p.draft.dimensions.remove(ref)
            p.draft.groundings = [g for g in p.draft.groundings if not (g.kind == "dimension" and g.ref == ref)]


def unsupported_intent(p: Parse, env: Env) -> None:
    """Averages, medians, shares... of a metric the layer defines as a total: ask instead of answering the total."""
    d, lex = p.draft, env.lex
    if d.adhoc or not d.metrics:
        return  # the question defined what to compute, or lists rows
    own: set[str] = set()
    for name in d.metrics:
        m = lex.layer.metrics.get(name)
        if m is None:
            continue
        for t in (m.name, m.label or "", m.description, *m.synonyms):
            own.update(phrase(t))
    if d.share is not None or any(_is_share(lex, m) for m in d.metrics):
        return  # read as a share of a total, or the metric is one
    if "%" in p.question and not any(t.stem in ("percent", "percentage") for t in p.tokens) and d.compare is None:
        labels = ", ".join(lex.metric_label(m) for m in d.metrics if m in lex.layer.metrics)
        p.settle(PlanOutcome(
            status="clarify",
            message=f"I can't compute a percentage of {labels} from the governed definitions yet. I can show "
                    f"{labels} itself, by any dimension, so the parts can be compared.",
            suggestions=tuple(d.metrics)[:4], signals={"intent": 0.0}))
        return
    for i, t in enumerate(p.tokens):
        if i in p.used:
            continue
        word = t.text.lower()
        if word in INTENT_WORDS and INTENT_WORDS[word] == "average" and all(_is_average(lex, m) for m in d.metrics):
            p.use([i], "metric")  # "on average, how many orders per customer": the ratio is that average
            continue
        if d.compare is not None and INTENT_WORDS.get(word) in ("percentage", "percent"):
            p.use([i], "order")  # "the steepest percentage decline": the percent change between the periods
            continue
        if word in INTENT_WORDS and t.stem not in own and INTENT_WORDS[word] in ("average", "median", "percentile",
                                                                             "share", "percentage", "proportion",
                                                                             "fraction", "variance",
                                                                             "standard deviation", "distribution",
                                                                             "correlation"):
            labels = ", ".join(lex.metric_label(m) for m in d.metrics if m in lex.layer.metrics)
            close = [x for x in lex.layer.metrics if x not in d.metrics and t.stem in phrase(
                lex.layer.metrics[x].description + " " + (lex.layer.metrics[x].label or ""))]
            p.settle(PlanOutcome(
                status="clarify",
                message=f"I can't compute the {INTENT_WORDS[word]} of {labels} from the governed definitions "
                        f"(it is defined as a {lex.definition_kind(d.metrics[0])}). I can show {labels} itself, "
                        "by any dimension or over time.",
                suggestions=tuple((close + list(d.metrics))[:4]), signals={"intent": 0.0}))
            return


def _is_share(lex, name: str) -> bool:  # noqa: ANN001
    """Whether a metric is itself a share or a percentage (its unit or format says so)."""
    m = lex.layer.metrics.get(name)
    return m is not None and ((m.unit or "").lower() in ("share", "percent", "percentage", "%", "ratio")
                              or (m.format or "") == "percent")


def _is_average(lex, name: str) -> bool:  # noqa: ANN001
    """Whether a metric is already an average: a mean, or a ratio of one metric over another (a total per thing)."""
    m = lex.layer.metrics.get(name)
    if m is None:
        return False
    return m.agg == "avg" or (m.is_derived and bool(re.fullmatch(r"\s*\(?\s*\w+\s*\)?\s*/\s*\(?\s*\w+\s*\)?\s*",
                                                                  m.expr or "")))


def no_metric(p: Parse, env: Env) -> None:
    """Nothing names a metric and this is no follow-up: say what could not be matched, or that it is out of scope."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    if d.metrics or d.rows_of is not None or p.followup:
        return
    grounded_something = bool(d.dimensions or p.accepted or d.time)
    if CAUSE_RE.search(p.question) and (grounded_something or any(
            t.stem in lex.catalog.vocabulary for t in tokens if t.stem not in FILLER and t.stem not in FUNCTION_WORDS
            and t.text.lower() not in STOP_WORDS)):
        beyond_the_data(p, env)  # "why did our home losses blow up in H1": a cause about the data, asked back as one
        if p.outcome is not None:
            return  # (a forecast with no metric, "will this season be worse", stays out of scope)
    pool = [n for n in d.candidates if n in lex.layer.metrics]
    if env.searcher is not None:
        masked = mask(p.question, tokens, p.consumed).strip() or p.question
        pool += [h.ref for h in env.searcher.search(masked, k=8, kinds=["metric"]).of_kind("metric")]
    spans: dict[tuple[int, int], list[str]] = {}
    for v in p.accepted:
        spans.setdefault(v.span, []).append(v.ref)

    def usable(name: str) -> bool:
        facts = lex.facts_of([name])
        return all(lex.reachable(facts, x) for x in d.dimensions) and \
            all(any(lex.reachable(facts, r) for r in refs) for refs in spans.values())

    pool = list(dict.fromkeys(pool))
    suggestions = ([n for n in pool if usable(n)] or pool)[:3]
    value_tokens = set().union(*(tokens_in(tokens, v.span) for v in p.accepted)) if p.accepted else set()
    content = [t for i, t in enumerate(tokens) if i not in p.used and i not in value_tokens
               and t.stem not in FILLER and t.stem not in FUNCTION_WORDS and t.text.lower() not in STOP_WORDS
               and not t.text.isdigit()]
    unknown = [t for t in content if t.stem not in lex.catalog.vocabulary]
    business = [t for t in content if t.stem in BUSINESS_STEMS]
    quantity = bool(QUANTITY_RE.search(p.question)) and bool(p.ranges or d.dimensions or p.accepted)
    if CREATIVE_RE.search(p.question) or (not business and content and len(unknown) >= max(1, (len(content) + 1) // 2)
                                          and not (d.dimensions and len(unknown) < len(content)) and not quantity
                                          # "which store dropped the most last month vs the month before": a
                                          # breakdown over named periods is in scope; only its measure is missing
                                          and not (any(not x.startswith(METRIC_TIME) for x in d.dimensions)
                                                   and (p.ranges or d.compare is not None))):
        if (p.accepted or d.dimensions or p.ranges) and TEST_RE.search(p.question):
            # "is SF's higher bill vs Chicago statistically significant?": a test about the data is asked back
            beyond_the_data(p, env)
            if p.outcome is not None:
                return
        p.settle(PlanOutcome(
            status="refuse",
            message="That is outside what I can answer: I answer questions about the governed metrics in this "
                    "project (" + ", ".join(lex.domains()) + "). Try one of the suggestions.",
            suggestions=tuple(suggestions or lex.starter_metrics()), signals={"in_scope": 0.0}))
        return
    if not content and not grounded_something:
        p.settle(PlanOutcome(
            status="clarify", message="Which metric would you like to see? For example: " + ", ".join(lex.domains()[:5]) + ".",
            suggestions=tuple(suggestions or lex.starter_metrics()), signals={"metric_match": 0.0}))
        return
    words = " ".join(t.text for t in content)
    if not words:
        about = [lex.label(x) for x in d.dimensions if not x.startswith(METRIC_TIME)]
        about += [v.value for v in p.accepted]
        scope = f" for {', '.join(dict.fromkeys(about))}" if about else ""
        p.settle(PlanOutcome(
            status="clarify",
            message=f"Which metric would you like{scope}? For example: "
                    + ", ".join(lex.metric_label(m) for m in (suggestions or lex.starter_metrics())[:3]) + ".",
            suggestions=tuple(suggestions or lex.starter_metrics()), signals={"metric_match": 0.0}))
        return
    p.settle(PlanOutcome(
        status="clarify", message=f"I couldn't match “{words}” to a metric I know. Did you mean one of these?",
        suggestions=tuple(suggestions or lex.starter_metrics()), signals={"metric_match": 0.0}))
