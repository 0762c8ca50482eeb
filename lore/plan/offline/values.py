"""Passes over values: the values a question names (verbatim, by another name, or as an identifier's words),
which of them are sure enough to filter on, and yes/no attributes named as filters."""

from __future__ import annotations

import difflib
import re

from lore.plan.catalog import find_phrases, phrase, tokenize
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Mention, Parse
from lore.plan.offline.text import Spans, mask, tokens_in
from lore.plan.words import COMPARE_RE, FUNCTION_WORDS, KNOWN_WORDS, NEGATION_RE, SHORT_WORDS
from lore.retrieve.lexical import STOP_WORDS
from lore.types import Filter, Grounding, PlanOutcome


_HYPHEN_IN_WORDS = re.compile(r"(?<=[A-Za-z])-(?=[A-Za-z])")


def find_values(p: Parse, env: Env) -> None:
    """Every value mention: verbatim from the value index, other names from value synonyms, identifiers in words."""
    if env.searcher is None:
        return
    masked = mask(p.question, p.tokens, p.consumed)
    hits = [Mention(h.ref, h.value, h.span, h.score) for h in env.searcher.match_values(masked)]
    hits += _alias_hits(env, masked, hits)
    # "small-business policies": a value of several words written with hyphens (same length: the spans hold)
    spaced = _HYPHEN_IN_WORDS.sub(" ", masked)
    if spaced != masked:
        more = [Mention(h.ref, h.value, h.span, h.score) for h in env.searcher.match_values(spaced)]
        more += _alias_hits(env, spaced, hits + more)
        seen = Spans((h.span, h) for h in hits)
        hits += [h for h in more if "-" in masked[h.span[0]:h.span[1]]
                 and not any(sp[1] - sp[0] >= h.span[1] - h.span[0] for sp, _ in seen.containing(h.span))]
    idents = _identifier_hits(p, env, hits)
    if p.outcome is not None:
        return
    spans = Spans((m.span, m) for m in idents)
    hits = [h for h in hits if not any((sp[1] - sp[0]) > (h.span[1] - h.span[0]) for sp, _ in spans.containing(h.span))]
    # "Brooklyn's sales": a value's possessive ending belongs to its mention (the token is "Brooklyn's")
    hits = [Mention(h.ref, h.value, (h.span[0], h.span[1] + 2), h.score)
            if p.question[h.span[1]:h.span[1] + 2] in ("'s", "’s") else h for h in hits]
    hits += _misspelt_values(p, env, hits + idents)
    p.mentions = hits + idents
    p.all_mentions = list(p.mentions)


def _edits(a: str, b: str) -> int:
    """Edits between two words: insertions, deletions, substitutions and swaps of two neighbours (each counts 1).

    >>> _edits("brookyln", "brooklyn"), _edits("fraction", "ration"), _edits("paris", "pairs")
    (1, 2, 1)
    """
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def _misspelt_values(p: Parse, env: Env, found: list[Mention]) -> list[Mention]:
    """"revenue from Brookyln": a word no name or value holds, one letter or two off exactly one value of a word
    (five letters or more), is that value, read as a misspelling and said so."""
    lex = env.lex
    if not lex.word_values:
        return []
    covered = set().union(*(tokens_in(p.tokens, h.span) for h in found)) if found else set()
    out: list[Mention] = []
    for i, t in enumerate(p.tokens):
        w = t.text.lower()
        if i in covered or i in p.consumed or len(w) < 5 or not w.isalpha() or t.stem in lex.catalog.vocabulary \
                or w in STOP_WORDS or t.stem in FUNCTION_WORDS or w in KNOWN_WORDS or w in lex.value_refs:
            continue
        close = [c for c in difflib.get_close_matches(w, lex.word_values, n=3, cutoff=0.8)
                 if c[0] == w[0] and _edits(w, c) <= (1 if len(w) < 8 else 2)]
        if len(close) != 1:
            continue
        for ref in lex.value_refs.get(close[0], ()):
            value = next((v for v in lex.values.get(ref, ()) if str(v).lower() == close[0]), None)
            if value is not None:
                out.append(Mention(ref, value, (t.start, t.end), 0.9))
        if out:
            p.draft.notes.append(f"Read “{t.text}” as a misspelling of “{out[-1].value}”.")
            p.draft.signals["spelling"] = 0.85
    return out


def _alias_hits(env: Env, text: str, found: list[Mention]) -> list[Mention]:
    """Other names of values ("Philly" for Philadelphia), as mentions of the real value, on every attribute
    holding that value."""
    cat = env.lex.catalog
    if cat.alias_matcher is None:
        return []
    out: list[Mention] = []
    seen: set[tuple[str, tuple[int, int]]] = set()
    found_spans = Spans((f.span, f) for f in found)
    for h in cat.alias_matcher.match(text):
        value = cat.aliases.get((h.ref, h.value.lower()))
        if value is None or any(f.score >= h.score for _, f in found_spans.containing(h.span)):
            continue  # type: ignore[attr-defined]
        refs = [h.ref] + [r for r in env.lex.value_refs.get(value.lower(), ()) if r != h.ref]
        for ref in refs:
            if (ref, h.span) not in seen:
                seen.add((ref, h.span))
                out.append(Mention(ref, value, h.span, h.score))
    return out


def _identifier_hits(p: Parse, env: Env, found: list[Mention]) -> list[Mention]:
    """Identifier values named in words: "the checkout redesign test" for ``checkout_redesign_2026q2``.

    Several values with the same words (a test run in two quarters) are told apart by a period in the question
    ("the Q3 2025 checkout redesign test"), which then names the value, not a time range; otherwise the
    question is ambiguous and gets a clarifying question.
    """
    tokens = p.tokens
    out: list[Mention] = []
    stems = [t.stem for t in tokens]
    present = set(stems)
    found_spans = Spans((f.span, f) for f in found)
    ranges = list(p.ranges) + [r for r, *_ in p.attached]
    for ref, cores in env.lex.identifier_cores:
        for core, options in cores.items():
            if core[0] not in present:
                continue
            k = len(core)
            for j in range(len(stems) - k + 1):
                if tuple(stems[j:j + k]) != core:
                    continue
                span = (tokens[j].start, tokens[j + k - 1].end)
                if any(True for _ in found_spans.containing(span)):
                    continue
                chosen = options
                if len(options) > 1:
                    near = [r for r in ranges if abs(r.span[1] - span[0]) <= 12 or abs(span[1] - r.span[0]) <= 12]
                    for r in near:
                        if r.start is None:
                            continue
                        tag = f"{r.start.year}q{(r.start.month - 1) // 3 + 1}"
                        pick = [o for o in options if o[1] in (tag, str(r.start.year))]
                        if len(pick) == 1 and r.end is not None and (r.end - r.start).days <= 92:
                            chosen = pick
                            p.draft.notes.append(f"Read “{p.question[r.span[0]:r.span[1]].strip()}” as part of the "
                                                 f"name {pick[0][0]}, not as a time range.")
                            p.draft.signals["time_is_name"] = 1.0
                            p.name_ranges.append(r)
                            break
                if len(chosen) > 1:
                    p.settle(PlanOutcome(
                        status="clarify",
                        message=f"“{p.question[span[0]:span[1]]}” matches several {env.lex.label(ref)}s. Which one?",
                        suggestions=tuple(o[0] for o in chosen), signals={"value_ambiguity": 0.0}))
                    return []
                out.append(Mention(ref, chosen[0][0], span, 0.85))
    return out


def accept_values(p: Parse, env: Env) -> None:
    """Keep sure value mentions; short or weak ones ("tv", "en", a one-letter code) only in a telling context."""
    text, lex = p.question, env.lex
    hits = [h for h in p.mentions if not (tokens_in(p.tokens, h.span) & set(k for k, v in p.used.items()
                                                                             if v != "value"))]
    # a plural or respelled mention that names a table ("products") is that table, not a value
    hits = [h for h in hits if not (h.score < 1.0 and phrase(text[h.span[0]:h.span[1]]) in lex.node_phrases
                                    and text[h.span[0]:h.span[1]].lower() != h.value.lower())]
    # "broken out by <attribute> of <value>": a value right after its own attribute, read as a breakdown, and "of"
    # makes them one name of that attribute, not a filter on it
    hits = [h for h in hits if not _names_its_breakdown(p, h)]
    sure = [h for h in hits if h.score >= 0.8]
    out = list(sure)
    by_ref: dict[str, list[tuple[tuple[int, int], object]]] = {}
    for h in sure:
        by_ref.setdefault(h.ref, []).append((h.span, h.ref))
    sure_of = {r: Spans(items) for r, items in by_ref.items()}
    labels: dict[str, set[str]] = {}
    weak = [h for h in hits if 0.5 <= h.score < 0.8]
    for h in weak:
        word = text[h.span[0]:h.span[1]].lower()
        before = text[max(0, h.span[0] - 30):h.span[0]].lower()
        label_words = labels.get(h.ref)
        if label_words is None:
            label_words = labels[h.ref] = set(phrase(lex.label(h.ref)))
            col = lex.column(h.ref)
            for syn in (col.synonyms if col else ()):
                label_words |= set(phrase(syn))
        named = bool(label_words & {t.stem for t in tokenize(before)[-3:]})
        near = sure_of.get(h.ref)
        listed = near is not None and near.near(h.span, 6)
        contextual = bool(re.search(r"\b(on|via|excluding|except|without|not|only|just|vs|versus|and|or|for|in|of|"
                                    r"with|from|to|at)\W*$", before))
        ok = (named or listed) if len(word) == 1 else word not in SHORT_WORDS and (named or listed or contextual)
        if ok:
            out.append(Mention(h.ref, h.value, h.span, 0.8))
    # "for tx, la and fl": a weak mention in a list with accepted values of the same attribute is one of them
    # (each attribute's mentions in order, swept both ways: a run accepted at either end is accepted whole)
    taken = {(o.ref, o.span) for o in out}
    by_attribute: dict[str, list[Mention]] = {}
    for h in sorted([*out, *weak], key=lambda h: h.span):
        by_attribute.setdefault(h.ref, []).append(h)
    for run in by_attribute.values():
        for order in (run, run[::-1]):
            for before, h in zip(order, order[1:]):
                if (h.ref, h.span) in taken or (before.ref, before.span) not in taken or h.span == before.span \
                        or text[h.span[0]:h.span[1]].lower() in SHORT_WORDS or not _in_a_list(text, before.span, h.span):
                    continue
                out.append(Mention(h.ref, h.value, h.span, 0.8))
                taken.add((h.ref, h.span))
    p.accepted = out


def _in_a_list(text: str, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Two mentions side by side in a list: only a comma, "and", "or", "&" or "/" between them."""
    left, right = (a, b) if a[0] < b[0] else (b, a)
    return bool(re.fullmatch(r"\s*(?:,|/|&|,?\s*(?:and|or|n|nor))?\s*", text[left[1]:right[0]], re.I))


def _names_its_breakdown(p: Parse, h: Mention) -> bool:
    toks = p.dimension_tokens.get(h.ref)
    if not toks or h.ref not in p.draft.dimensions:
        return False
    first = min(tokens_in(p.tokens, h.span), default=None)
    if first is None:
        return False
    between = p.question[p.tokens[max(toks)].end:p.tokens[first].start].strip().lower()
    return between in ("of", "of the")


def read_booleans(p: Parse, env: Env) -> None:
    """A yes/no attribute named outside a breakdown is a filter: "perishable supplies", "non-perishable ones"."""
    blocked = p.consumed | p.reserved
    for m in find_phrases(p.tokens, list(env.lex.boolean_entries), taken=blocked):
        start = p.tokens[m.start].start
        neg = bool(NEGATION_RE.search(p.question[max(0, start - 40):start])) or \
            p.question[max(0, start - 4):start].lower().endswith(("non-", "non", "not-", "un"))
        if any(x.ref == m.ref for x in p.draft.filters) or m.ref in p.draft.dimensions:
            p.use(range(m.start, m.end), "filter")
            continue
        near = p.question[max(0, start - 40):p.tokens[m.end - 1].end + 40]
        if COMPARE_RE.search(near):  # "TBD slots vs the others": both sides, side by side
            p.draft.add_dimension(m.ref, Grounding(kind="dimension", ref=m.ref, phrase=p.words(m.start, m.end),
                                                   source=f"yes/no attribute {env.lex.label(m.ref)}, compared"))
            p.use(range(m.start, m.end), "dimension")
            continue
        f = Filter(ref=m.ref, op="=", values=(not neg,))
        p.draft.filters.append(f)
        p.use(range(m.start, m.end), "filter")
        p.draft.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=p.words(m.start, m.end),
                                            source=f"yes/no attribute {env.lex.label(m.ref)}", score=m.score))
