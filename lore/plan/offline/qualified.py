"""A metric qualified by another: "revenue before tax", "pre-tax sales", "cost excluding support", "revenue, tax
included".

Two metric phrases joined by a qualifying word are one measure, not a list of two. In order:

1. a governed metric whose own names say the same thing with the first metric's words ("sales before tax" is a
   synonym of net sales, and "sales" is a name of revenue): that metric;
2. the first metric's description already says it ("revenue ... including sales tax" asked "with tax
   included"): that metric alone, and the answer says why;
3. otherwise an ad hoc metric, the first plus or minus the second, shown as ad hoc (never high confidence); two
   metrics in different units cannot be added or subtracted, so that is asked back.
"""

from __future__ import annotations

import re

from lore.plan.catalog import FILLER, PhraseMatch, find_phrases, phrase, tokenize
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Parse
from lore.types import AdhocMetric, Grounding, PlanOutcome

#: words between two metrics that take the second away from the first, or add it
_MINUS = ("before", "excluding", "excl", "excl.", "ex", "ex.", "without", "net of", "less", "minus", "not including",
          "exclusive of", "after", "after deducting", "after removing", "less any", "before any", "w/o")
_PLUS = ("including", "incl", "incl.", "inclusive of", "plus", "with", "w/", "and including")
#: "with" and "after" qualify in a metric's own names, but in a question they also join a condition ("orders
#: with items", "sessions after installs"): only a governed metric or the description reads them
_NAME_ONLY = ("with", "w/", "after")
#: after the second metric: "revenue, tax included", "sales (tax excluded)"
_POSTFIX = re.compile(r"^[\s)]*(included|incl\.?|inclusive|added|excluded|exclusive|removed|deducted|taken out|"
                      r"stripped out)\b", re.I)
#: before the second metric, which comes right before the first: "pre-tax revenue", "post-tax profit"
_PREFIX = re.compile(r"\b(pre|post|ex)[\s-]*$", re.I)
#: a breakdown word right before a metric's words: they name an entity to split by, not a measure
_BREAKDOWN_BEFORE = re.compile(r"\b(?:by|per|each|every|across|for\s+each|for\s+every)\s+(?:the\s+)?$", re.I)
#: a negation right before a metric's words
_NEGATED = re.compile(r"\b(?:not\s+counting|not\s+including|excluding|exclusive\s+of|without|before|ex|excl\.?|net\s+of|"
                      r"less|minus|leaving\s+out|leave\s+out|ignoring|apart\s+from|w/o)\s+(?:the\s+|any\s+|all\s+)?"
                      r"(?:(?:ones?|those)\s+(?:(?:that|which)\s+)?(?:(?:we|they|were|was|are|is)\s+){0,2})?$|"
                      r"\b(?:pre|post|ex)[\s-]*$", re.I)
_AFTER = re.compile(r"\bafter\s+(?:paying\s+(?:for\s+)?|deducting\s+|removing\s+|taking\s+out\s+)?(?:the\s+|any\s+|all\s+|our\s+)?$",
                    re.I)
_GENERIC = frozenset({"total", "amount", "number", "count", "sum", "of", "the", "a", "an", "all", "our", "valu"})

#: the forms a metric's own name can take: "sales before tax", "pre-tax sales", "sales, tax excluded"
_NAME_INFIX = re.compile(r"^(?P<head>.+?)\s+(?P<conn>" + "|".join(re.escape(w) for w in sorted(_MINUS + _PLUS, key=len,
                                                                                              reverse=True))
                         + r")\s+(?P<q>.+)$", re.I)
_NAME_PREFIX = re.compile(r"^(?P<conn>pre|post|ex)[\s-]*(?P<q>\w+)\s+(?P<head>.+)$", re.I)
_NAME_POSTFIX = re.compile(r"^(?P<head>.+?),?\s+(?P<q>\w+(?:\s\w+)?)\s+(?P<conn>included|excluded|inclusive|exclusive)$",
                           re.I)


def _sign(word: str) -> str:
    w = word.lower().strip()
    if w in _PLUS or w in ("included", "inclusive", "added"):
        return "+"
    return "-"


def qualified_matches(p: Parse, env: Env, matches: list[PhraseMatch]) -> list[PhraseMatch]:
    """Join "A <qualifier> B" into one match (a governed metric, or A itself); ad hoc A ± B goes to the draft."""
    tokens, text = p.tokens, p.question
    out = list(matches)
    for a, b in zip(matches, matches[1:]):
        if a not in out or b not in out or a.ref == b.ref or _BREAKDOWN_BEFORE.search(text[:tokens[a.start].start]):
            continue
        if _is_value(p, a) or _is_value(p, b):
            continue
        between = text[tokens[a.end - 1].end:tokens[b.start].start]
        conn = " ".join(between.lower().strip(" ,(").split())
        if conn and all(i in p.consumed for i in range(a.end, b.start)):
            conn = ""  # "how much did we take in June, tax included": a period between them qualifies nothing
        after = _POSTFIX.match(text[tokens[b.end - 1].end:])
        before = _PREFIX.search(text[:tokens[a.start].start]) if not between.strip() else None
        if conn in _MINUS or conn in _PLUS:
            first, second, sign, span = a, b, _sign(conn), (a.start, b.end)
            name_only = conn in _NAME_ONLY
        elif after and conn in ("", "with", "with the", "w/"):
            first, second, sign = a, b, _sign(after.group(1))
            span = (a.start, _token_at(p, tokens[b.end - 1].end + after.end(1)))
            name_only = False
        elif before:
            # "pre-tax revenue": the qualifier (a) comes first, the measure (b) after it
            first, second, sign = b, a, "-"
            start = next((i for i in range(a.start) if tokens[i].start >= before.start(1)), a.start)
            span, name_only = (start, b.end), False
        else:
            continue
        joined = _resolve(p, env, first, second, sign, span, name_only, qualifier=text[tokens[span[0]].start:
                                                                                          tokens[span[1] - 1].end])
        if joined is None:
            continue
        out = [m for m in out if m is not a and m is not b]
        if isinstance(joined, PhraseMatch):
            out.append(joined)
        if p.outcome is not None:
            return []
    return _negated(p, env, sorted(out, key=lambda x: x.start))


def _negated(p: Parse, env: Env, matches: list[PhraseMatch]) -> list[PhraseMatch]:
    """A metric named after a negation ("..., not counting tax", "excluding refunds") is never the measure asked
    for: it qualifies the metric named before it, or, with none, the one governed metric that is something
    without it; otherwise the question is asked back."""
    tokens, text = p.tokens, p.question
    out = list(matches)
    for b in matches:
        if b not in out or _is_value(p, b):
            continue
        neg = _NEGATED.search(text[:tokens[b.start].start])
        soft = False
        if neg is None:
            neg = _AFTER.search(text[:tokens[b.start].start])
            soft = True  # "after supply costs" with no measure before: only a governed metric reads it
            if neg is None or any(m.end <= b.start and m is not b for m in out):
                continue
        neg_start = next((i for i in range(b.start) if tokens[i].end > neg.start()), b.start)
        qualifier_tokens = set(range(neg_start, b.end))
        earlier = [m for m in out if m.end <= neg_start and m.ref != b.ref
                   and not _BREAKDOWN_BEFORE.search(text[:tokens[m.start].start])]
        a = earlier[-1] if earlier else None
        if a is not None:
            label = f"{p.words(a.start, a.end)} {' '.join(neg.group(0).split())} {p.words(b.start, b.end)}"
            joined = _resolve(p, env, a, b, "-", (a.start, a.end), False, qualifier=label)
            if joined is None:
                continue
            p.use(qualifier_tokens, "metric")
            out = [m for m in out if m is not a and m is not b]
            if isinstance(joined, PhraseMatch):
                out.append(joined)
            if p.outcome is not None:
                return []
            continue
        lex = env.lex
        found = None
        for prev in (p.previous.metrics if p.previous is not None else ()):  # "and the pre-tax figure?"
            if prev in lex.layer.metrics and prev != b.ref:
                found = _governed(env, prev, b.ref, "-") or (prev if _described(env, prev, b.ref) == "-" else None)
                if found is not None:
                    break
        found = found or _governed(env, None, b.ref, "-") or (_derived(env, None, b.ref, "-", "") if soft else None)
        if found is None and soft:
            continue
        if found is None:
            p.settle(PlanOutcome(
                status="clarify",
                message=f"“{text[tokens[neg_start].start:tokens[b.end - 1].end]}” leaves {lex.metric_label(b.ref)} "
                        "out, but out of what? Name the metric to compute without it.",
                suggestions=[b.ref], signals={"metric_match": 0.0}))
            return []
        p.draft.notes.append(f"Read “{text[tokens[neg_start].start:tokens[b.end - 1].end]}” as "
                             f"{lex.metric_label(found)}, the one governed metric without {lex.metric_label(b.ref)}.")
        out = [m for m in out if m is not b]
        out.append(PhraseMatch(found, neg_start, b.end, b.score * 0.9, "synonym (a metric without another)", True))
    return sorted(out, key=lambda x: x.start)


def _is_value(p: Parse, m: PhraseMatch) -> bool:
    """The metric's words are also a value named as long or longer ("excluding drinks"): the value reading stays."""
    span = (p.tokens[m.start].start, p.tokens[m.end - 1].end)
    return any(v.span[0] <= span[0] and v.span[1] >= span[1] for v in p.mentions)


def _token_at(p: Parse, char_end: int) -> int:
    """The token index just past the token ending at or before ``char_end``."""
    last = max((i for i, t in enumerate(p.tokens) if t.end <= char_end), default=0)
    return last + 1


def _resolve(p: Parse, env: Env, first: PhraseMatch, second: PhraseMatch, sign: str, span: tuple[int, int],
             name_only: bool, qualifier: str) -> PhraseMatch | bool | None:
    lex, d = env.lex, p.draft
    a, b = first.ref, second.ref
    if a not in lex.layer.metrics or b not in lex.layer.metrics:
        return None
    score = min(first.score, second.score) * 0.95
    governed = _governed(env, a, b, sign)
    if governed is not None:
        d.notes.append(f"Read “{qualifier}” as {lex.metric_label(governed)}, the governed metric for it.")
        return PhraseMatch(governed, span[0], span[1], score, "synonym (a metric qualified by another)", True)
    already = _described(env, a, b)
    if already == sign:
        metric = lex.layer.metrics[a]
        d.notes.append(f"{lex.metric_label(a)} already {'includes' if sign == '+' else 'excludes'} "
                       f"{lex.metric_label(b).lower()}: {metric.description.strip()}")
        return PhraseMatch(a, span[0], span[1], score, "name (qualified as its definition says)", True)
    derived = _derived(env, a, b, sign, p.words(first.start, first.end)) if not first.source.startswith("rule") \
        else _derived(env, None, b, sign, "")  # "how much did we make after supply costs": any measure minus b
    if derived is not None:  # "revenue after supply costs": gross profit is defined as product sales - supply cost
        d.notes.append(f"Read “{qualifier}” as {lex.metric_label(derived)}, the governed metric defined as "
                       f"{lex.layer.metrics[derived].expr}.")
        return PhraseMatch(derived, span[0], span[1], score * 0.95, "synonym (a metric defined from the two)", True)
    ua, ub = lex.layer.metrics[a].unit, lex.layer.metrics[b].unit
    if name_only:
        return None  # "sessions after installs", "open claims with claim number ...": a condition or a column
    if sign == "-":  # "orders without items": a governed metric named "orders with no items"
        condition = _condition_metric(env, p.words(first.start, first.end), p.words(second.start, second.end), (a, b))
        if condition is not None:
            d.notes.append(f"Read “{qualifier}” as {lex.metric_label(condition)}.")
            return PhraseMatch(condition, span[0], span[1], score, "synonym (a metric without another)", True)
    if (ua or "").lower() != (ub or "").lower():
        p.settle(PlanOutcome(
            status="clarify",
            message=f"“{qualifier}” reads as {lex.metric_label(a)} {'plus' if sign == '+' else 'minus'} "
                    f"{lex.metric_label(b)}, but one is in {ua or 'counts'} and the other in {ub or 'counts'}: "
                    "they cannot be added or subtracted. Ask for them side by side, or name the governed metric "
                    "you mean.", suggestions=[a, b], signals={"metric_match": 0.0}))
        return True
    name = "adhoc_" + re.sub(r"[^a-z0-9]+", "_", qualifier.lower()).strip("_")[:40]
    if name in lex.layer.metrics:
        name += "_adhoc"
    word = "plus" if sign == "+" else "minus"
    d.adhoc.append(AdhocMetric(name=name, label=" ".join(qualifier.split()), expr=f"{a} {sign} {b}"))
    d.metrics.append(name)
    d.groundings.append(Grounding(kind="metric", ref=name, phrase=qualifier, source="defined in the question",
                                  score=0.8))
    d.notes.append(f"“{' '.join(qualifier.split())}” is not a governed metric: it is computed as "
                   f"{lex.metric_label(a)} {word} {lex.metric_label(b)}.")
    d.signals["adhoc"] = 0.8
    p.use(range(span[0], span[1]), "metric")
    return True


_EXPR = re.compile(r"^\s*\(?\s*(\w+)\s*([-+])\s*(\w+)\s*\)?\s*$")


def _derived(env: Env, a: str | None, b: str, sign: str, a_words: str) -> str | None:
    """The one governed metric defined as ``X ± b`` where X is ``a`` or is named by the words used for ``a`` ("revenue
    after supply costs" is gross profit when it is product sales - supply cost and "revenue" names product sales)."""
    lex = env.lex
    said = set(phrase(a_words)) - _GENERIC - FILLER if a_words else set()
    found = []
    for m in lex.layer.metrics.values():
        hit = _EXPR.match(m.expr or "") if m.is_derived else None
        if hit is None or hit.group(2) != sign or hit.group(3) != b or m.name in (a, b):
            continue
        x = hit.group(1)
        if x == a or a is None or (said and said <= lex.own_words.get(x, frozenset())):
            found.append(m.name)
    return found[0] if len(found) == 1 else None


def _condition_metric(env: Env, a_words: str, b_words: str, exclude: tuple[str, str]) -> str | None:
    """The one metric named "<a> with no <b>" ("orders with no items"), when the layer has one."""
    index = env.lex.catalog.metric_index or env.lex.catalog.metric_entries
    for text in (f"{a_words} with no {b_words}", f"{a_words} without {b_words}"):
        tokens = tokenize(text)
        found = find_phrases(tokens, index)
        if len(found) == 1 and found[0].start == 0 and found[0].end == len(tokens) and found[0].ref not in exclude:
            return found[0].ref
    return None


def _governed(env: Env, a: str | None, b: str, sign: str) -> str | None:
    """The one other metric one of whose names is "<a name> <qualifier> <b name>" in any of the usual forms (any
    head when ``a`` is None)."""
    lex = env.lex
    head_words = lex.own_words.get(a, frozenset()) if a is not None else None
    qual_words = lex.own_words.get(b, frozenset())
    found: list[str] = []
    for m in lex.layer.metrics.values():
        if m.name in (a, b):
            continue
        for text in (m.label or "", *m.synonyms):
            t = " ".join(text.split())
            form = _NAME_INFIX.match(t) or _NAME_PREFIX.match(t) or _NAME_POSTFIX.match(t)
            if form is None:
                continue
            conn = form.group("conn").lower()
            s = "-" if conn in ("pre", "post", "ex") else _sign(conn)
            head = set(phrase(form.group("head"))) - _GENERIC - FILLER
            qual = set(phrase(form.group("q"))) - _GENERIC - FILLER
            if s == sign and head and qual and (head_words is None or head <= head_words) and qual <= qual_words:
                found.append(m.name)
                break
    return found[0] if len(set(found)) == 1 else None


def _described(env: Env, a: str, b: str) -> str | None:
    """"+" when a's description says it includes b ("including sales tax"), "-" when it says it is before or
    without b, None when it says neither."""
    lex = env.lex
    desc = " ".join(lex.layer.metrics[a].description.lower().split())
    if not desc:
        return None
    m = lex.layer.metrics[b]
    words = {w for text in (m.name.replace("_", " "), m.label or "", *m.synonyms)
             for w in re.findall(r"[a-z]{3,}", text.lower())} - {"total", "amount", "number", "count", "sum", "the",
                                                                 "all", "our", "value"}
    if not words:
        return None
    alt = "|".join(sorted(map(re.escape, words), key=len, reverse=True))
    if re.search(r"\b(?:including|includes|include|incl\.?|inclusive of|with|plus)\s+(?:[a-z]+\s+){0,2}?(?:" + alt
                 + r")\b", desc):
        return "+"
    if re.search(r"\b(?:before|excluding|excludes|exclude|without|ex|net of|less|after)\s+(?:[a-z]+\s+){0,2}?(?:"
                 + alt + r")\b", desc):
        return "-"
    return None
