"""The filter pass: accepted value mentions become filters, one attribute per mention, negation per mention."""

from __future__ import annotations

import re

from lore.plan.catalog import find_phrases, phrase, tokenize
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Mention, Parse
from lore.plan.offline.rates import THRESHOLD_RE, read_threshold
from lore.plan.offline.text import tokens_in
from lore.plan.words import COMBINED_RE, COMPARE_RE, NEGATED_AFTER_RE, NEGATION_RE
from lore.semantic.spec import METRIC_TIME
from lore.types import Filter, Grounding, PlanOutcome


def read_filters(p: Parse, env: Env) -> None:
    """Turn the accepted value mentions into filters (see the module docstring)."""
    d, lex, text, tokens = p.draft, env.lex, p.question, p.tokens
    values = [v for v in p.accepted if not (tokens_in(tokens, v.span) & {i for i, why in p.used.items()
                                                                          if why not in ("value", "operator")})]
    if not values:
        return
    facts = lex.facts_of(d.base_metrics()) if d.metrics else ([d.rows_of] if d.rows_of else [])
    by_span: dict[tuple[int, int], list[Mention]] = {}
    for v in values:
        by_span.setdefault(v.span, []).append(v)
    chosen: list[Mention] = []
    unreachable: list[Mention] = []
    qstems = {t.stem for t in tokens}
    for span, options in sorted(by_span.items()):
        ok = [o for o in options if lex.reachable(facts, o.ref)]
        if not ok:
            mention = text[span[0]:span[1]]
            if all(mention.lower() != o.value.lower() for o in options):
                continue  # a respelled word that is no value of anything the metric reaches: not a filter
            if phrase(mention) in lex.node_phrases:
                continue  # the word names a table here, not a value
            unreachable.append(options[0])
            continue

        def rank(o: Mention) -> tuple:
            col_label = set(phrase(lex.label(o.ref)))
            named = bool(col_label & qstems)
            hops = min(lex.catalog.hops(f, o.ref) for f in facts) if facts else 0
            return (named, o.score, -hops)

        ok.sort(key=rank, reverse=True)
        best = ok[0]
        if len(ok) > 1 and rank(ok[0])[:2] == rank(ok[1])[:2] and ok[0].ref != ok[1].ref:
            d.signals["value_ambiguity"] = 0.75
        chosen.append(best)
    if unreachable and not chosen:
        v = unreachable[0]
        labels = ", ".join(lex.metric_label(m) for m in d.metrics if m in lex.layer.metrics) or lex.label(lex.entity.get(d.rows_of or "", ""))
        reach = lex.reachable_dims(facts)
        p.settle(PlanOutcome(
            status="clarify",
            message=f"“{v.value}” is a {lex.label(v.ref)}, and {labels} can't be filtered by {lex.label(v.ref)}. "
                    f"It can be broken down by: {', '.join(reach[:8])}.",
            suggestions=tuple(reach[:5]), signals={"value_reach": 0.0}))
        return
    if unreachable:
        d.notes.append("Ignored " + ", ".join(f"“{v.value}”" for v in unreachable) + ": not available for these metrics.")
        d.signals["value_unreachable"] = 0.5
    groups: dict[tuple[str, bool], list[Mention]] = {}
    after_neg = _negated_after(text, chosen)
    last_neg = False
    last_end = -1
    for v in chosen:
        before = text[max(0, v.span[0] - 40):v.span[0]]
        between = text[last_end:v.span[0]] if last_end >= 0 else ""
        neg = bool(NEGATION_RE.search(before)) or id(v) in after_neg
        if id(v) in after_neg:
            p.use(tokens_in(tokens, after_neg[id(v)]), "operator")
        if not neg and last_neg and _JOINED_RE.fullmatch(between or ""):
            neg = True  # ("excluding TX and FL": the negation reaches every value of its list)
        groups.setdefault((v.ref, neg), []).append(v)
        last_neg, last_end = neg, v.span[1]
        p.use(tokens_in(tokens, v.span), "value")
        mneg = NEGATION_RE.search(before)
        if mneg:
            offset = v.span[0] - len(before)
            p.use(tokens_in(tokens, (offset + mneg.start(), v.span[0])), "operator")
    compare = bool(COMPARE_RE.search(text))
    for (ref, neg), items in list(groups.items()):
        # "by product (jaffles etc.)": an example of a grouped attribute, not a filter
        if ref in d.dimensions and not neg:
            kept = [v for v in items
                    if not re.match(r"\W*(etc\b|and so on|\.\.\.|…)", text[v.span[1]:v.span[1] + 12], re.I)
                    and not re.search(r"(\be\.?g\.?|such as|like|\()\s*$", text[max(0, v.span[0] - 12):v.span[0]], re.I)
                    and not text.rfind("(", 0, v.span[0]) > text.rfind(")", 0, v.span[0])  # "(food / drink)"
                    and not _names_the_breakdown(p, v, ref)]
            if not kept:
                del groups[(ref, neg)]
                continue
            groups[(ref, neg)] = kept
    for (ref, neg), items in list(groups.items()):
        if not neg and len(items) == 1 and compare and _compared_with_its_attribute(p, env, items[0]):
            # "control vs treatment": one value against the rest of its attribute: broken down by it
            d.dimensions.append(ref) if ref not in d.dimensions else None
            d.groundings.append(Grounding(kind="dimension", ref=ref, phrase=text[items[0].span[0]:items[0].span[1]],
                                          source=f"value of {lex.label(ref)}, compared with the others"))
            del groups[(ref, neg)]
    for (ref, neg), items in groups.items():
        vals = tuple(dict.fromkeys(v.value for v in items))
        node = ref.split(".")[0]
        inherited = [f for f in d.filters if f.ref == ref and f.op in ("=", "in") and not neg]
        if compare and inherited and any(g.kind == "context" for g in d.groundings):
            vals = tuple(dict.fromkeys([v for f in inherited for v in f.values] + list(vals)))  # type: ignore[misc]
        # a new value replaces an inherited filter on the same node (never one of this question)
        d.filters = [f for f in d.filters if f not in d.inherited_filters or f.ref.split(".")[0] != node
                     or (f.op in ("not_in", "!=")) != neg]
        if neg:
            f = Filter(ref=ref, op="not_in" if len(vals) > 1 else "!=", values=vals)
        else:
            f = Filter(ref=ref, op="in" if len(vals) > 1 else "=", values=vals)
        d.filters.append(f)
        phrase_text = ", ".join(text[v.span[0]:v.span[1]] for v in items)
        d.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=("not " if neg else "") + phrase_text,
                                      source=f"value of {lex.label(ref)}", score=min(v.score for v in items)))
        combined = COMBINED_RE.search(text)
        if combined is not None:
            p.use(tokens_in(tokens, combined.span()), "operator")
        first_at = min(v.span[0] for v in items)
        # "by food/drink and by perishable": the values name a breakdown ("across Boston and Denver, by product" is
        # where the sales were, summed: the breakdown is named)
        after_by = re.search(r"\b(?:by|per|split\s+(?:by|into|between|among|across)|broken\s+(?:down|out)\s+(?:by|into)|"
                             r"divided\s+(?:between|among|into))\s+(?:the\s+)?$", text[:first_at], re.I)
        if not neg and len(vals) > 1 and ref not in d.dimensions and d.rows_of is None and combined is None and (
                compare or after_by or not any(not x.startswith(METRIC_TIME) for x in d.dimensions)):
            # several values of one attribute are shown side by side ("Chicago and Brooklyn", "food vs drinks")
            d.dimensions.append(ref)
            d.groundings.append(Grounding(kind="dimension", ref=ref, phrase=" and ".join(str(v) for v in vals),
                                          source="rule: several values are shown side by side"))
    d.signals["value_match"] = min((v.score for v in chosen), default=1.0)


def _compared_with_its_attribute(p: Parse, env: Env, v: Mention) -> bool:
    """"control vs treatment": a value, a comparison word, and a word naming the value's attribute (or a synonym)."""
    col = env.lex.column(v.ref)
    if col is None:
        return False
    names = {w for t in (col.name, col.label or "", *col.synonyms) for w in phrase(t)}
    after = p.question[v.span[1]:v.span[1] + 40]
    before = p.question[max(0, v.span[0] - 40):v.span[0]]
    m = COMPARE_RE.search(after) or COMPARE_RE.search(before)
    if m is None:
        return False
    side = after[m.end():] if COMPARE_RE.search(after) else before[:m.start()]
    words = [t.stem for t in tokenize(side)][:3]
    return any(w in names for w in words)


def _names_the_breakdown(p: Parse, v: Mention, ref: str) -> bool:
    """"split by personal/commercial segment": values joined by "/", "or" or "vs" right before the name of the
    attribute broken down spell out its values; they filter nothing."""
    toks = p.dimension_tokens.get(ref)
    vt = tokens_in(p.tokens, v.span)
    if not toks or not vt or max(vt) >= max(toks) or min(vt) < min(toks) - 4:
        return False
    if any(p.used.get(i) != "value" and p.tokens[i].text.lower() not in ("or", "and", "vs", "versus")
           for i in range(max(vt) + 1, min(toks))):
        return False  # "for FL, GA and NC - by state": the values come before the breakdown's own words: filters
    return bool(re.match(r"\s*(?:/|or\b|vs\.?|versus\b|and\b)", p.question[v.span[1]:], re.I)
                or re.search(r"(?:/|\bor|\bvs\.?|\bversus|\band)\s*$", p.question[:v.span[0]], re.I))


#: the verbs whose "out" comes after what they leave out ("leave brooklyn out", "take the test accounts out")
_OUT_VERB_RE = re.compile(r"\b(?:leave|leaving|leaves|keep|keeping|take|taking|cut|cutting|count|counting|rule|"
                          r"ruling|filter|filtering|strip|stripping|throw|throwing)\b\W+(?:\w+\W+){0,5}$", re.I)
#: only a conjunction between two values of one list ("TX, FL & GA", "Chicago or the Brooklyn")
_JOINED_RE = re.compile(r"[\s,]*(and|or|nor|,|&)?[\s,]*(?:(?:the|a|an|any|all|our)\s+)?", re.I)


def _negated_after(text: str, chosen: list[Mention]) -> dict[int, tuple[int, int]]:
    """The values negated by words after them ("2020 sales per location, leave brooklyn out": Brooklyn is left
    out, never kept), with the span of the negating words; the values listed before one ("leave brooklyn and
    chicago out") are negated with it."""
    ordered = sorted(chosen, key=lambda v: v.span[0])
    out: dict[int, tuple[int, int]] = {}
    for v in ordered:
        m = NEGATED_AFTER_RE.match(text[v.span[1]:])
        if m is None or m.group("out") and not _OUT_VERB_RE.search(text[max(0, v.span[0] - 40):v.span[0]]):
            continue
        out[id(v)] = (v.span[1] + m.start(), v.span[1] + m.end())
    for i in range(len(ordered) - 2, -1, -1):
        v, nxt = ordered[i], ordered[i + 1]
        if id(nxt) in out and id(v) not in out and _JOINED_RE.fullmatch(text[v.span[1]:nxt.span[0]]):
            out[id(v)] = out[id(nxt)]
    return out


#: "the stores that haven't opened yet", "not yet opened", "yet to open": a date of the rows still to come;
#: "already opened", "have opened": a date that has passed. The word after the cue is a date attribute's own word.
_NOT_YET_RE = re.compile(r"\b(?:(?:(?:have|has|had)n['’]?t|(?:have|has|had)\s+not|not)\s+(?:yet\s+)?(?:been\s+)?"
                         r"(?P<a>[a-z]+)(?:\s+(?:their|its|the|our)\s+[a-z]+)?\s+yet|not\s+yet\s+(?:been\s+)?(?P<b>[a-z]+)|(?:yet|still)\s+to\s+(?:be\s+)?"
                         r"(?P<c>[a-z]+))\b", re.I)
_ALREADY_RE = re.compile(r"\b(?:(?:have|has)\s+(?:already\s+)?|already\s+)(?:been\s+)?(?P<a>[a-z]+)\b", re.I)


def _open_facts(p: Parse, env: Env) -> list[str]:
    """The facts the plan's metrics (or its listing) are on; none once the question is settled."""
    d = p.draft
    if p.outcome is not None:
        return []
    return env.lex.facts_of(d.base_metrics()) if d.metrics else ([d.rows_of] if d.rows_of else [])


def read_date_states(p: Parse, env: Env) -> None:
    """"list the shops that haven't opened yet": a date attribute of the rows (named by its own word, "opened"
    for an opening date) after today; "already opened": on or before today. Only a date the rows reach."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    facts = _open_facts(p, env)
    if not facts:
        return
    for pattern, op in ((_NOT_YET_RE, ">"), (_ALREADY_RE, "<=")):
        for m in pattern.finditer(p.question):
            group = next(g for g in ("a", "b", "c") if g in m.groupdict() and m.group(g))
            word = tokenize(m.group(group))[0].stem
            refs = sorted({e.ref for e in lex.catalog.dimension_entries if e.phrase == (word,)
                           and (c := lex.column(e.ref)) is not None and c.kind == "time" and lex.reachable(facts, e.ref)})
            span = tokens_in(tokens, m.span())
            if len(refs) != 1 or any(p.used.get(i) not in (None, "operator", "metric") for i in span):
                continue
            f = Filter(ref=refs[0], op=op, values=(env.today.isoformat(),))
            if f in d.filters:
                continue
            d.filters.append(f)
            p.use(span, "filter")
            d.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=m.group(0),
                                          source=f"{lex.label(refs[0])} {'after' if op == '>' else 'on or before'} "
                                                 f"today ({env.today.isoformat()})"))


def read_attribute_thresholds(p: Parse, env: Env) -> None:
    """"the loans ... with principal over 10k", "orders where the tip is at least 5": a threshold right
    after a numeric attribute of the rows filters that attribute (a threshold on a measure was read before)."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    facts = _open_facts(p, env)
    if not facts:
        return
    for hit in THRESHOLD_RE.finditer(p.question):
        said = tokens_in(tokens, hit.span())
        if not said or any(p.used.get(i) not in (None, "operator") for i in said):
            continue
        before = list(range(max(0, min(said) - 6), min(said)))  # (the few words right before it)
        while before and tokens[before[-1]].text.lower() in _LINKING_VERBS:
            before.pop()
        if not before:
            continue
        window = [tokens[i] for i in before]
        found = [m for m in find_phrases(window, lex.catalog.dimension_entries) if m.end == len(window)]
        refs = sorted({m.ref.split(":")[0] for m in found if (c := lex.column(m.ref.split(":")[0])) is not None
                       and c.kind == "numeric" and lex.reachable(facts, m.ref.split(":")[0])})
        read = read_threshold(hit.group(0))
        if len(refs) != 1 or read is None:
            continue
        op, value = read
        f = Filter(ref=refs[0], op=op, values=(int(value) if value.is_integer() else value,))
        d.filters.append(f)
        p.use(said, "filter")
        p.use([before[k] for m in found for k in range(m.start, m.end)], "filter")
        d.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=p.question[tokens[before[0]].start:hit.end()],
                                      source=f"a threshold on {lex.label(refs[0])}"))


#: words between an attribute and its threshold ("principal is over 10k", "a tip of at least 5")
_LINKING_VERBS = frozenset({"is", "was", "are", "were", "of", "at", "being", "be", "that's", "thats"})
