"""Lexical matching: light stemming, verbatim value mentions, and an idf-weighted phrase score.

Everything here is pure and fast (no model, no I/O). Two things use it:

- :func:`match_values` / :class:`ValueMatcher` find dimension values mentioned
  verbatim in a question ("Brazil", "South Korea", "18-24", "sci-fi",
  "us-east-1", "basic with ads" for ``basic_with_ads``), so planners can ground
  filters and the retriever can score value hits.
- :class:`LexicalIndex` scores the retriever's documents against a question by
  how much of a document's names, labels and synonyms the question contains
  (idf-weighted), see :meth:`LexicalIndex.score`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from lore.types import ValueMatch

#: words that carry no meaning for matching a question to a metric, attribute or value
STOP_WORDS: frozenset[str] = frozenset(
    """a an the of by for in on at to and or per with from into over under vs versus
    how many much what which who whom whose when where why is are was were be been being
    do does did done has have had show me give list tell get each all every our my your
    their its it this that these those there i we you they us please can could would
    should will than then as not no yes up down about s t""".split()
)

_WORD_RE = re.compile(r"[A-Za-z0-9]+")

#: how sure a mention in another spelling is (``basic with ads`` for ``basic_with_ads``, a plural)
VARIANT_WEIGHT = 0.95


#: irregular forms that the suffix rules below cannot reach
IRREGULAR: dict[str, str] = {
    "spent": "spend", "paid": "pay", "bought": "buy", "grew": "grow", "grown": "grow", "ran": "run",
    "sold": "sell", "made": "make", "saw": "see", "seen": "see", "took": "take", "began": "begin",
    "watched": "watch", "people": "person", "children": "child", "kids": "kid", "used": "use", "using": "use",
    "went": "go", "gone": "go", "did": "do", "done": "do", "had": "have", "has": "have", "got": "get",
    "wrote": "write", "written": "write", "brought": "bring", "taken": "take", "gave": "give", "given": "give",
    "won": "win", "lost": "lose", "fell": "fall", "fallen": "fall", "risen": "rise", "drove": "drive",
    "driven": "drive", "kept": "keep", "sent": "send", "built": "build", "held": "hold", "came": "come",
    "chose": "choose", "chosen": "choose", "ate": "eat", "eaten": "eat", "drank": "drink", "caught": "catch",
    "taught": "teach", "told": "tell", "flew": "fly", "flown": "fly", "begun": "begin", "broke": "break",
    "broken": "break", "spoke": "speak", "spoken": "speak",
}


def stem(token: str) -> str:
    """A light, consistent stem: plurals, -ing and -ed endings, a final e.

    Both questions and documents go through it, so only consistency matters.

    >>> [stem(w) for w in ["hours", "hour", "countries", "country", "watched", "watching"]]
    ['hour', 'hour', 'country', 'country', 'watch', 'watch']
    >>> [stem(w) for w in ["games", "game", "release", "released", "status", "ios", "18"]]
    ['gam', 'gam', 'releas', 'releas', 'status', 'ios', '18']
    """
    token = IRREGULAR.get(token, token)
    if len(token) <= 3 or not token.isalpha():
        return token
    if token.endswith(("ies", "ied")) and len(token) > 4:
        return token[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            if suffix == "s" and token.endswith(("ss", "us", "is")):
                break
            token = token[: -len(suffix)]
            break
    if token.endswith("e") and len(token) > 3:
        token = token[:-1]
    return token


def terms(text: str) -> tuple[str, ...]:
    """The stemmed, lower-cased content words of a text (underscores split words).

    >>> terms("How many hours did people watch in Brazil?")
    ('hour', 'person', 'watch', 'brazil')
    >>> terms("total_streaming_hours")
    ('total', 'stream', 'hour')
    """
    out = []
    for word in _WORD_RE.findall(text.lower().replace("_", " ")):
        if word not in STOP_WORDS:
            out.append(stem(word))
    return tuple(out)


# --- verbatim value mentions -------------------------------------------------------


@dataclass(frozen=True)
class _Variant:
    ref: str
    value: str
    spelling: str  # single-spaced, in the value's case
    weight: float  # 1.0 for the value as written, less for a spelling variant

    @property
    def key(self) -> str:
        return self.spelling.lower()


def _normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """Lower-case and collapse whitespace runs; map each output char to its input offset.

    >>> _normalize_with_offsets("South  Korea")
    ('south korea', [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11])
    """
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            if chars and chars[-1] == " ":
                continue
            ch = " "
        for low in ch.lower():  # one character may lower-case to two ("İ"): each maps to the same offset
            chars.append(low)
            offsets.append(i)
    return "".join(chars), offsets


def _variants(ref: str, value: str) -> list[_Variant]:
    """The spellings under which a value counts as mentioned.

    >>> [(v.spelling, v.weight) for v in _variants("accounts.plan", "basic_with_ads")]
    [('basic_with_ads', 1.0), ('basic with ads', 0.95), ('basic-with-ads', 0.95)]
    >>> [(v.spelling, v.weight) for v in _variants("titles.title_type", "Movie")]
    [('Movie', 1.0), ('Movies', 0.95)]
    >>> [v.spelling for v in _variants("titles.genre", "comedy")]
    ['comedy', 'comedies']
    >>> [v.spelling for v in _variants("products.name", "chai latte")]
    ['chai latte', 'chai lattes']
    """
    spelling = " ".join(value.split())
    if not spelling:
        return []
    spellings: dict[str, float] = {spelling: 1.0}
    if "_" in spelling:
        spellings.setdefault(spelling.replace("_", " "), VARIANT_WEIGHT)
        spellings.setdefault(spelling.replace("_", "-"), VARIANT_WEIGHT)
    if "-" in spelling and not any(c.isdigit() for c in spelling):
        spellings.setdefault(spelling.replace("-", " "), VARIANT_WEIGHT)
    words = spelling.split(" ")
    # one word, or a lower-case phrase (a common noun: "chai latte" -> "chai lattes"; not a name like "The Crown")
    if all(w.isalpha() for w in words) and len(words[-1]) >= 3 and (len(words) == 1 or spelling == spelling.lower()):
        lower = spelling.lower()
        if lower.endswith(("s", "x", "ch", "sh")):
            spellings.setdefault(spelling + "es", VARIANT_WEIGHT)
        elif lower.endswith("y") and lower[-2] not in "aeiou":
            spellings.setdefault(spelling[:-1] + "ies", VARIANT_WEIGHT)
        else:
            spellings.setdefault(spelling + "s", VARIANT_WEIGHT)
    return [_Variant(ref, value, sp, w) for sp, w in spellings.items()]


def _mention_score(value: str, found: str, weight: float) -> float:
    """How sure a verbatim find is a mention of the value.

    Long values found as written score 1.0 (0.95 in another case). One- and
    two-character values are often ordinary words ("us", "a", "hi"): they score
    0.9 only when typed exactly and the value is upper-case or has a digit
    ("BR", "A1"), otherwise 0.5, and 0.3 when the find is a stop word. A single
    character never scores above 0.5.

    >>> _mention_score("Brazil", "brazil", 1.0)
    0.95
    >>> _mention_score("BR", "BR", 1.0), _mention_score("US", "us", 1.0), _mention_score("en", "en", 1.0)
    (0.9, 0.3, 0.5)
    """
    exact_case = found == value
    if len(value.strip()) <= 2:
        if found.lower() in STOP_WORDS and not exact_case:
            score = 0.3
        elif exact_case and (value != value.lower() or any(c.isdigit() for c in value)):
            score = 0.9
        else:
            score = 0.5
        if len(value.strip()) == 1:
            score = min(score, 0.5)
    else:
        score = 1.0 if exact_case else 0.95
    return round(score * weight, 4)


class ValueMatcher:
    """Finds values mentioned verbatim in questions; build once per value set, reuse.

    Matching is case-insensitive on whole words: a mention may not continue a
    letter or digit on either side, so "us" is not found in "focus" and "18-24"
    not in "18-245". Whitespace runs count as one space, so multi-word values
    ("South Korea") match across line breaks. A match that lies strictly inside
    a longer match is dropped ("us" inside "us-east-1").

    The work is linear in the question's length: at each word, one dictionary
    lookup per distinct length of the values starting with that word (a number
    fixed by the value set, never by the question), and the nested-match filter
    is one sweep over the sorted spans.

    >>> m = ValueMatcher({"titles.title_name": ["The Crown", "The Office", "The Office Special"]})
    >>> m.lengths_at("the")
    (9, 10, 18)
    >>> [(x.value, x.span) for x in m.match("the office special vs the crown")]
    [('The Office Special', (0, 18)), ('The Crown', (22, 31))]
    """

    def __init__(self, values: Mapping[str, Sequence[str]]) -> None:
        by_key: dict[str, list[_Variant]] = {}
        for ref, vals in values.items():
            for value in dict.fromkeys(str(v) for v in vals if v is not None and str(v).strip()):
                for variant in _variants(ref, value):
                    by_key.setdefault(variant.key, []).append(variant)
        lengths: dict[str, set[int]] = {}
        odd: list[str] = []
        for key in by_key:
            head = _WORD_RE.match(key)
            if head:
                lengths.setdefault(head.group(0), set()).add(len(key))
            else:
                odd.append(key)
        self._by_key = {k: tuple(v) for k, v in by_key.items()}
        self._lengths = {h: tuple(sorted(ls)) for h, ls in lengths.items()}
        self._odd = tuple(odd)

    def lengths_at(self, word: str) -> tuple[int, ...]:
        """The distinct lengths (in characters) of the value spellings starting with ``word``: the lookups made
        at each place the word occurs in a question."""
        return self._lengths.get(word.lower(), ())

    def match(self, question: str) -> list[ValueMatch]:
        norm, offsets = _normalize_with_offsets(question)
        size = len(norm)
        found: dict[tuple[str, str, int, int], float] = {}

        def consider(key: str, start: int) -> None:
            end = start + len(key)
            if start > 0 and norm[start - 1].isalnum() and key[0].isalnum():
                return
            if end < size and norm[end].isalnum() and key[-1].isalnum():
                return
            o_start, o_end = offsets[start], offsets[end - 1] + 1
            as_typed = " ".join(question[o_start:o_end].split())
            for variant in self._by_key[key]:
                score = _mention_score(variant.spelling, as_typed, variant.weight)
                at = (variant.ref, variant.value, o_start, o_end)
                found[at] = max(found.get(at, 0.0), score)

        by_key, lengths = self._by_key, self._lengths
        for word in _WORD_RE.finditer(norm):
            start = word.start()
            for length in lengths.get(word.group(0), ()):
                if start + length > size:
                    break
                key = norm[start:start + length]
                if key in by_key:
                    consider(key, start)
        for key in self._odd:
            start = norm.find(key)
            while start != -1:
                consider(key, start)
                start = norm.find(key, start + 1)

        nested = _nested_spans({(s, e) for (_, _, s, e) in found})
        matches = [ValueMatch(ref, value, (s, e), score)
                   for (ref, value, s, e), score in found.items() if (s, e) not in nested]
        matches.sort(key=lambda m: (-m.score, m.span[0], m.ref, m.value))
        return matches


def _nested_spans(spans: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The spans that lie inside another, different span: one sweep in start order (longest first).

    >>> sorted(_nested_spans({(0, 9), (0, 2), (3, 7), (10, 12), (11, 12), (20, 25)}))
    [(0, 2), (3, 7), (11, 12)]
    """
    nested: set[tuple[int, int]] = set()
    reach = -1
    for start, end in sorted(spans, key=lambda sp: (sp[0], -sp[1])):
        if end <= reach:  # an earlier span starts at or before this one and ends at or after it
            nested.add((start, end))
        reach = max(reach, end)
    return nested


def match_values(question: str, values: Mapping[str, Sequence[str]]) -> list[ValueMatch]:
    """Dimension values mentioned verbatim in a question, best first.

    ``values`` maps a dimension reference to its distinct values. Each match
    is ``(ref, value, span, score)``; ``question[span[0]:span[1]]`` is the text
    found. For many questions over the same values, build a
    :class:`ValueMatcher` once.

    >>> vals = {"countries.country_name": ["Brazil", "South Korea"], "countries.country_iso_code": ["BR", "US"],
    ...         "accounts.age_band": ["18-24", "55+"], "titles.genre": ["sci-fi"], "cloud_costs.cloud_region": ["us-east-1"]}
    >>> [(m.value, m.span, m.score) for m in match_values("Hours in south  korea vs BR for 18-24 sci-fi fans", vals)]
    [('18-24', (32, 37), 1.0), ('sci-fi', (38, 44), 1.0), ('South Korea', (9, 21), 0.95), ('BR', (25, 27), 0.9)]
    >>> [m.value for m in match_values("cost in us-east-1 for users 55+", vals)]
    ['us-east-1', '55+']
    >>> match_values("focus on brazilian titles", vals)
    []
    """
    return ValueMatcher(values).match(question)


# --- idf-weighted phrase scoring -------------------------------------------------------


@dataclass(frozen=True)
class LexicalDoc:
    """What the lexical scorer knows of one document.

    ``phrases``: names, labels, synonyms or the value, each with a weight in
    0..1; ``bag``: further words (descriptions); ``symmetric``: score as a
    whole-question match (verified examples).
    """

    id: str
    kind: str
    phrases: tuple[tuple[str, float], ...] = ()
    bag: str = ""
    symmetric: bool = False


@dataclass(frozen=True)
class _Prepared:
    id: str
    kind: str
    phrases: tuple[tuple[frozenset[str], float], ...]
    all_terms: frozenset[str]
    symmetric: bool


def _idf(n: int, df: int) -> float:
    """BM25's idf of a term in ``df`` of ``n`` documents.

    >>> round(_idf(10, 1), 4), round(_idf(10, 10), 4)
    (1.9924, 0.0465)
    """
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def _prepare(doc: LexicalDoc) -> _Prepared:
    phrases = tuple((frozenset(terms(text)), w) for text, w in doc.phrases)
    phrases = tuple((t, w) for t, w in phrases if t)
    all_terms = frozenset().union(*(t for t, _ in phrases), terms(doc.bag))
    return _Prepared(doc.id, doc.kind, phrases, all_terms, doc.symmetric)


class _Arrays:
    """The lexical index as arrays, so a question's sums are a few vectorised additions.

    Per term: the documents holding it (``docs_of``) and the phrase slots holding it (``slots_of``; a slot is
    one phrase of one document, with its idf total and weight). Sums are accumulated term by term in the
    question's term order (the same float additions as a loop over the terms), then combined per document
    as :meth:`LexicalIndex.score` describes.
    """

    __slots__ = ("ids", "index", "symmetric", "docs_of", "slots_of", "slot_doc", "slot_total", "slot_weight")

    def __init__(self, ids: list[str], symmetric: np.ndarray, docs_of: dict[str, np.ndarray],
                 slots_of: dict[str, np.ndarray], slot_doc: np.ndarray, slot_total: np.ndarray,
                 slot_weight: np.ndarray) -> None:
        self.ids = ids
        self.index = {d: i for i, d in enumerate(ids)}
        self.symmetric = symmetric
        self.docs_of = docs_of
        self.slots_of = slots_of
        self.slot_doc = slot_doc
        self.slot_total = slot_total
        self.slot_weight = slot_weight

    @classmethod
    def build(cls, docs: Mapping[str, _Prepared], postings: Mapping[str, frozenset[str]],
              idfs: Mapping[str, float]) -> _Arrays:
        ids = list(docs)
        index = {d: i for i, d in enumerate(ids)}
        slots: dict[str, list[int]] = {}
        slot_doc: list[int] = []
        slot_total: list[float] = []
        slot_weight: list[float] = []
        for i, doc in enumerate(docs.values()):
            for phrase, weight in doc.phrases:
                slot = len(slot_doc)
                slot_doc.append(i)
                slot_total.append(sum(idfs[t] for t in phrase))
                slot_weight.append(weight)
                for t in phrase:
                    slots.setdefault(t, []).append(slot)
        return cls(
            ids,
            np.array([doc.symmetric for doc in docs.values()], dtype=bool),
            {t: np.fromiter((index[d] for d in ds), dtype=np.int64, count=len(ds)) for t, ds in postings.items()},
            {t: np.array(v, dtype=np.int64) for t, v in slots.items()},
            np.array(slot_doc, dtype=np.int64),
            np.array(slot_total, dtype=np.float64),
            np.array(slot_weight, dtype=np.float64),
        )

    def scores(self, q_terms: Iterable[str], idf: Mapping[str, float], q_total: float,
               rows: Sequence[int]) -> list[float]:
        """The unrounded score of the documents at ``rows``."""
        q_sum = np.zeros(len(self.ids), dtype=np.float64)
        phrase_sum = np.zeros(len(self.slot_doc), dtype=np.float64)
        touched = []
        for term in q_terms:
            w = idf[term]
            docs = self.docs_of.get(term)
            if docs is not None:
                q_sum[docs] += w  # a document appears once per term: plain fancy-index addition is exact
            slots = self.slots_of.get(term)
            if slots is not None:
                phrase_sum[slots] += w
                touched.append(slots)
        best = np.zeros(len(self.ids), dtype=np.float64)
        if touched:
            used = np.unique(np.concatenate(touched))
            total = self.slot_total[used]
            cov = np.divide(phrase_sum[used], total, out=np.zeros(len(used)), where=total != 0)
            owner = self.slot_doc[used]
            sym = self.symmetric[owner]
            if sym.any():
                cov[sym] = np.minimum(cov[sym], q_sum[owner[sym]] / q_total)
            np.maximum.at(best, owner, self.slot_weight[used] * cov)
        at = np.asarray(rows, dtype=np.int64)
        out = best[at]
        plain = ~self.symmetric[at]
        out[plain] = np.maximum(out[plain], 0.5 * (q_sum[at[plain]] / q_total))
        return out.tolist()


@dataclass(frozen=True)
class LexicalIndex:
    """An immutable lexical index over documents; :meth:`with_docs` / :meth:`without` return new ones.

    >>> idx = LexicalIndex.build([
    ...     LexicalDoc("m1", "metric", (("total_streaming_hours", 1.0), ("watch time", 1.0))),
    ...     LexicalDoc("m2", "metric", (("game_installs", 1.0),), bag="Installs of games on phones"),
    ...     LexicalDoc("d1", "dimension", (("region", 1.0),)),
    ... ])
    >>> idx.score("how much time did people watch")["m1"]
    1.0
    >>> sorted(idx.score("hours by region").items())
    [('d1', 1.0), ('m1', 0.3333)]
    """

    docs: Mapping[str, _Prepared] = field(default_factory=dict)
    postings: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, docs: Iterable[LexicalDoc]) -> LexicalIndex:
        return cls()._rebuilt({d.id: _prepare(d) for d in docs})

    def with_docs(self, docs: Iterable[LexicalDoc]) -> LexicalIndex:
        merged = dict(self.docs)
        merged.update({d.id: _prepare(d) for d in docs})
        return self._rebuilt(merged)

    def without(self, ids: Iterable[str]) -> LexicalIndex:
        drop = set(ids)
        return self._rebuilt({i: d for i, d in self.docs.items() if i not in drop})

    #: precomputed from docs and postings (see _rebuilt): idf of every indexed term, and per document the
    #: idf total of each of its phrases, so a question costs no logarithms beyond its own unknown words
    idfs: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)
    #: the arrays the scorer adds up (see _Arrays), built with the index
    arrays: _Arrays | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def _rebuilt(docs: dict[str, _Prepared]) -> LexicalIndex:
        postings: dict[str, set[str]] = {}
        for doc in docs.values():
            for term in doc.all_terms:
                postings.setdefault(term, set()).add(doc.id)
        frozen = {t: frozenset(ids) for t, ids in postings.items()}
        n = len(docs)
        idfs = {t: _idf(n, len(ids)) for t, ids in frozen.items()}
        return LexicalIndex(docs, frozen, idfs, _Arrays.build(docs, frozen, idfs))

    def idf(self, term: str) -> float:
        """BM25's idf: ln(1 + (N - df + 0.5) / (df + 0.5)), always positive."""
        known = self.idfs.get(term)
        if known is not None:
            return known
        return _idf(len(self.docs), len(self.postings.get(term, ())))

    def score(self, question: str, *, kinds: Iterable[str] | None = None) -> dict[str, float]:
        """Lexical scores in 0..1 of the documents sharing a word with the question (others: 0).

        For a document with phrases P (weight w) and all its words D, and the
        question's words Q, with idf weights:

        - phrase coverage  c(p) = idf(p ∩ Q) / idf(p): how much of a name, label,
          synonym or value the question contains (1.0 = all of it);
        - question coverage  q = idf(Q ∩ D) / idf(Q): how much of the question
          the document's words (descriptions too) explain;
        - score = max(max_p w·c(p), 0.5·q); for examples (symmetric) min(c, q)
          over the example question, so only a near-identical question scores 1.
        """
        q_terms = frozenset(terms(question))
        if not q_terms:
            return {}
        wanted = None if kinds is None else frozenset(kinds)
        idf = {t: self.idf(t) for t in q_terms}
        q_total = sum(idf.values())
        postings = self.postings
        candidates: set[str] = set()
        for term in q_terms:
            candidates |= postings.get(term, frozenset())
        if not candidates:
            return {}
        arrays = self.arrays if self.arrays is not None else _Arrays.build(self.docs, postings, self.idfs)
        scores = arrays.scores(q_terms, idf, q_total, [arrays.index[d] for d in candidates])
        docs = self.docs
        out: dict[str, float] = {}
        for doc_id, best in zip(candidates, scores):  # the candidates' order settles equal scores
            if wanted is not None and docs[doc_id].kind not in wanted:
                continue
            if best > 0:
                out[doc_id] = round(best, 4)
        return out
