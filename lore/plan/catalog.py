"""What the planners know about the layer: phrase lexicons and reachability.

Built once per semantic layer (pure, no I/O). A *phrase* is a tuple of light
stems (:func:`lore.retrieve.lexical.stem`); questions are tokenised the same
way, with character spans, so a match says exactly which words it used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from lore.retrieve.lexical import STOP_WORDS, ValueMatcher, stem
from lore.semantic.compile import expand_metric
from lore.semantic.graph import FANNING, LinkGraph
from lore.semantic.spec import METRIC_TIME, Column, SemanticLayer

_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")

#: words dropped anywhere in phrases and questions before matching ("the city of the store")
ARTICLES = frozenset({"the", "a", "an", "of", "our", "my", "all", "their", "its", "your"})
#: words dropped only where a phrase starts ("number of installs" = "installs", "total revenue" = "revenue"):
#: after a noun they carry meaning ("order number" is an identifier, "order total" an amount)
LEADING = frozenset({"total", "overall", "number", "amount", "count", "sum"})
#: words that link a phrase to the next: a reordered match may not start or end on one
_LINKING = frozenset({"per", "by", "of", "for"})
#: words that give a phrase a direction: reversed around them, it means something else
_DIRECTED = frozenset({"by", "vs", "versus"})
#: both (what the planners skip when they compare words)
FILLER = ARTICLES | LEADING


@dataclass(frozen=True)
class Token:
    text: str
    stem: str
    start: int
    end: int


#: abbreviations people type, read as the word they stand for
ABBREVIATIONS: dict[str, str] = {
    "hrs": "hours", "hr": "hour", "mins": "minutes", "min": "minutes", "avg": "average", "num": "number",
    "yr": "year", "yrs": "years", "mo": "month", "mos": "months", "mth": "month", "wk": "week", "wks": "weeks",
    "qtr": "quarter", "ppl": "people", "accts": "accounts", "acct": "account", "subs": "subscribers",
    "dev": "device", "vs": "versus", "info": "information", "approx": "approximately", "tot": "total",
    "biz": "business", "amt": "amount", "qty": "quantity", "dept": "department", "depts": "departments",
    "mgmt": "management", "mgr": "manager", "mgrs": "managers", "cust": "customer", "custs": "customers",
    "txn": "transaction", "txns": "transactions", "pct": "percent", "yoy": "yoy",
}


def tokenize(text: str) -> list[Token]:
    """Words with their stems and character spans.

    >>> [(t.stem, t.start) for t in tokenize("Hours streamed, by city")]
    [('hour', 0), ('stream', 6), ('by', 16), ('city', 19)]
    >>> [t.stem for t in tokenize("hrs per acct")]
    ['hour', 'per', 'account']
    """
    out = []
    for m in _TOKEN_RE.finditer(text):
        word = m.group(0).lower().replace("’", "'")
        if word.endswith("'s"):
            word = word[:-2]
        word = ABBREVIATIONS.get(word, word)
        out.append(Token(m.group(0), stem(word), m.start(), m.end()))
    return out


def phrase(text: str) -> tuple[str, ...]:
    """The stem sequence of a phrase: articles removed, and words such as "total" or "number" where it starts.

    >>> phrase("Number of installs"), phrase("total_order_value"), phrase("order number")
    (('install',), ('order', 'valu'), ('order', 'number'))
    """
    stems = tuple(t.stem for t in tokenize(text.replace("_", " ")))
    kept = [s for s in stems if s not in ARTICLES]
    while kept and kept[0] in LEADING:
        kept.pop(0)
    return tuple(kept) or stems


@dataclass(frozen=True)
class Entry:
    """One phrase that names a metric or a dimension."""

    ref: str
    phrase: tuple[str, ...]
    source: str  # name | label | synonym
    weight: float


@dataclass
class Catalog:
    """Phrase lexicons for metrics and dimensions, and which nodes each fact reaches."""

    layer: SemanticLayer
    metric_entries: list[Entry] = field(default_factory=list)
    #: every attribute, identifiers included (they break answers down by entity: "by order id")
    dimension_entries: list[Entry] = field(default_factory=list)
    #: nodes by their name, label and synonyms ("store", "customers"): an entity a question names
    node_entries: list[Entry] = field(default_factory=list)
    reach: dict[str, dict[str, int]] = field(default_factory=dict)  # fact -> node -> hops (safe links only)
    fan_reach: dict[str, set[str]] = field(default_factory=dict)  # fact -> nodes reachable only through fan-out
    #: stems that appear in any metric or dimension phrase, description or node name (known vocabulary)
    vocabulary: set[str] = field(default_factory=set)
    #: other names of values: (ref, alias lower-case) -> the value
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    alias_matcher: ValueMatcher | None = None
    #: (ref, phrase) pairs already added (keeps _add linear in the number of entries)
    _seen: set[tuple[str, tuple[str, ...]]] = field(default_factory=set, repr=False)
    #: the metric entries indexed by stem, for find_phrases (built by build())
    metric_index: PhraseIndex | None = field(default=None, repr=False)
    _columns: dict[str, Column | None] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, layer: SemanticLayer) -> Catalog:
        cat = cls(layer=layer)
        for m in layer.metrics.values():
            cat._add(cat.metric_entries, m.name, m.name, "name", 1.0)
            if m.label:
                cat._add(cat.metric_entries, m.name, m.label, "label", 1.0)
            for s in m.synonyms:
                cat._add(cat.metric_entries, m.name, s, "synonym", 0.97)
            cat.vocabulary.update(phrase(m.description))
        for node in layer.nodes.values():
            cat.vocabulary.update(phrase(node.name))
            cat.vocabulary.update(phrase(node.label or ""))
            cat._add(cat.node_entries, node.name, node.name, "name", 0.95)
            if node.label:
                cat._add(cat.node_entries, node.name, node.label, "label", 1.0)
            for s in node.synonyms:
                cat._add(cat.node_entries, node.name, s, "synonym", 0.9)
            for col in node.attributes:
                ref = f"{node.name}.{col.name}"
                # an identifier is a breakdown like any attribute, a little behind a same-named categorical one
                scale = 0.97 if col.kind == "identifier" else 1.0
                cat._add(cat.dimension_entries, ref, col.name, "name", 0.95 * scale)
                if col.label:
                    cat._add(cat.dimension_entries, ref, col.label, "label", 1.0 * scale)
                for s in col.synonyms:
                    cat._add(cat.dimension_entries, ref, s, "synonym", 0.9 * scale)
                cat.vocabulary.update(phrase(col.description))
                for value, names in col.value_synonyms.items():
                    for alias in names:
                        cat.aliases[(ref, alias.lower())] = value
        cat._node_synonyms_in_metric_names()
        if cat.aliases:
            by_ref: dict[str, list[str]] = {}
            for (ref, alias_lower), value in cat.aliases.items():
                original = next(a for a in layer.nodes[ref.split(".")[0]].column(ref.split(".")[1]).value_synonyms[value]  # type: ignore[union-attr]
                                if a.lower() == alias_lower)
                by_ref.setdefault(ref, []).append(original)
            cat.alias_matcher = ValueMatcher(by_ref)
        graph = LinkGraph(layer)
        for name in layer.nodes:
            cat.reach[name], cat.fan_reach[name] = _reach(graph, name)
        cat.metric_index = PhraseIndex.build(cat.metric_entries)
        return cat

    def _node_synonyms_in_metric_names(self) -> None:
        """"new shops" for the metric "new stores": a node's one-word name inside a metric's name of several words
        may be said with that node's one-word synonyms (the layer's own words, put together)."""
        words: dict[str, set[str]] = {}
        for node in self.layer.nodes.values():
            names = [p for p in (phrase(node.name), phrase(node.label or "")) if len(p) == 1]
            others = {p[0] for s in node.synonyms if len(p := phrase(s)) == 1}
            for n in names:
                words.setdefault(n[0], set()).update(others - {n[0]})
        taken = {e.phrase for e in (*self.metric_entries, *self.dimension_entries, *self.node_entries)}
        for e in list(self.metric_entries):
            if len(e.phrase) < 2:
                continue
            for i, w in enumerate(e.phrase):
                for other in sorted(words.get(w, ())):
                    variant = (*e.phrase[:i], other, *e.phrase[i + 1:])
                    key = ("metric:" + e.ref, variant)
                    if variant not in taken and key not in self._seen:
                        self._seen.add(key)
                        self.metric_entries.append(Entry(e.ref, variant, "synonym", round(e.weight * 0.97, 4)))

    def _add(self, entries: list[Entry], ref: str, text: str, source: str, weight: float) -> None:
        p = phrase(text)
        kind = "metric:" if entries is self.metric_entries else "node:" if entries is self.node_entries else "dimension:"
        key = (kind + ref, p)
        if p and key not in self._seen:
            self._seen.add(key)
            entries.append(Entry(ref, p, source, weight))
            self.vocabulary.update(p)

    # --- queries -----------------------------------------------------------------
    def facts_of(self, metrics: Iterable[str]) -> list[str]:
        """The source facts behind metrics (derived metrics expanded)."""
        out: list[str] = []
        for m in metrics:
            for base in expand_metric(self.layer, m):
                src = self.layer.metrics[base].source
                if src and src not in out:
                    out.append(src)
        return out

    def reachable(self, facts: Iterable[str], ref: str) -> bool:
        """Whether every fact reaches the node of a dimension reference (through any link)."""
        node = ref.split(".")[0].split("[")[0].split(":")[0]
        if node == METRIC_TIME:
            return all(self.layer.nodes[f].time_column for f in facts)
        return all(node in self.reach.get(f, {}) or node in self.fan_reach.get(f, set()) for f in facts)

    def hops(self, fact: str, ref: str) -> int:
        node = ref.split(".")[0]
        return self.reach.get(fact, {}).get(node, 99 if node in self.fan_reach.get(fact, set()) else 999)

    def column(self, ref: str) -> Column | None:
        if ref in self._columns:
            return self._columns[ref]
        node, _, attr = ref.partition(".")
        n = self.layer.nodes.get(node)
        col = n.column(attr.split(":")[0].split("[")[0]) if n else None
        if len(self._columns) < 100_000:
            self._columns[ref] = col
        return col

    def dimension_label(self, ref: str) -> str:
        if ref.startswith(METRIC_TIME):
            return ref.partition(":")[2] or "date"
        col = self.column(ref)
        return (col.label or col.name.replace("_", " ")) if col else ref

    def metric_label(self, name: str) -> str:
        m = self.layer.metrics[name]
        return m.label or name.replace("_", " ")


def _reach(graph: LinkGraph, start: str) -> tuple[dict[str, int], set[str]]:
    """Nodes reachable from ``start``: hop counts through safe links, and nodes only reachable by fan-out."""
    safe = {start: 0}
    frontier = [start]
    depth = 0
    while frontier and depth < 6:
        depth += 1
        nxt = []
        for n in frontier:
            for e in graph.edges.get(n, ()):
                if e.link.cardinality not in FANNING and e.target not in safe:
                    safe[e.target] = depth
                    nxt.append(e.target)
        frontier = nxt
    fan: set[str] = set()
    frontier = list(safe)
    seen = set(safe)
    for _ in range(6):
        nxt = []
        for n in frontier:
            for e in graph.edges.get(n, ()):
                if e.target not in seen:
                    seen.add(e.target)
                    fan.add(e.target)
                    nxt.append(e.target)
        frontier = nxt
    return safe, fan


class PhraseIndex:
    """Entries indexed by their stems, so :func:`find_phrases` only tries those whose every word is in a question.

    An entry can match (exactly or reordered) only when all of its stems are among the question's, so
    the entries tried are those filed under one of the question's stems (each entry is filed under its
    rarest stem) whose stems are all present; they are tried in their original order, which keeps the
    result identical to trying every entry.

    >>> idx = PhraseIndex.build([Entry("a", ("stream", "hour"), "name", 1.0), Entry("b", ("install",), "name", 1.0)])
    >>> [e.ref for e in idx.candidates({"hour", "stream", "city"})]
    ['a']
    """

    __slots__ = ("entries", "_by_stem")

    def __init__(self, entries: list[Entry], by_stem: dict[str, tuple[int, ...]]) -> None:
        self.entries = entries
        self._by_stem = by_stem

    @classmethod
    def build(cls, entries: list[Entry]) -> PhraseIndex:
        df: dict[str, int] = {}
        for e in entries:
            for st in set(e.phrase):
                df[st] = df.get(st, 0) + 1
        by_stem: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            if e.phrase:
                rarest = min(set(e.phrase), key=lambda st: (df[st], st))
                by_stem.setdefault(rarest, []).append(i)
        return cls(list(entries), {k: tuple(v) for k, v in by_stem.items()})

    def candidates(self, stems: set[str]) -> list[Entry]:
        """The entries whose every stem is in ``stems``, in their original order."""
        found: list[int] = []
        for st in stems:
            for i in self._by_stem.get(st, ()):
                if set(self.entries[i].phrase) <= stems:
                    found.append(i)
        return [self.entries[i] for i in sorted(found)]


@dataclass(frozen=True)
class PhraseMatch:
    ref: str
    start: int  # token index
    end: int  # token index (exclusive)
    score: float
    source: str
    exact: bool


#: marks that end a clause: a phrase never reaches across one
_WALL_RE = re.compile(r"[,:;]|\s[-–—]+\s")


def _walls(tokens: list[Token], text: str) -> frozenset[int]:
    """Token positions ``i`` with a clause mark between token ``i`` and token ``i + 1``."""
    return frozenset(i for i in range(len(tokens) - 1)
                     if _WALL_RE.search(text[tokens[i].end:tokens[i + 1].start]))


def find_phrases(tokens: list[Token], entries: list[Entry] | PhraseIndex, *, taken: set[int] | None = None,
                 skip: set[int] | frozenset[int] = frozenset(), text: str | None = None) -> list[PhraseMatch]:
    """Longest, non-overlapping phrase matches of ``entries`` in ``tokens`` (fillers skipped).

    Exact sequences first; then, for phrases of two or more words, the same words in
    another order within a short window ("sales of products" for "product sales").
    ``entries`` may be a :class:`PhraseIndex` of them (same result, faster for many entries).
    Tokens in ``skip`` are passed over like articles (a phrase may span them). Given the ``text`` the tokens come
    from, no phrase reaches across a clause mark (``,`` ``:`` ``;``, a spaced dash; brackets may qualify a
    name: "sales (before tax)"): "still open: claim
    number, loss date" names no "open claims".
    """
    taken = set(taken or ())
    walls = _walls(tokens, text) if text is not None else frozenset()
    idx = [i for i, t in enumerate(tokens) if t.stem not in ARTICLES and i not in taken and i not in skip]
    stems = [tokens[i].stem for i in idx]
    if isinstance(entries, PhraseIndex):
        entries = entries.candidates(set(stems))
    candidates: list[PhraseMatch] = []
    for e in entries:
        n = len(e.phrase)
        for j in range(len(stems) - n + 1):
            if n == 1 and tokens[idx[j]].text.lower() in STOP_WORDS:
                continue  # "were" is not WER, "us" is not a country code here
            if tuple(stems[j:j + n]) == e.phrase and idx[j + n - 1] - idx[j] <= n + 1 \
                    and not any(x in walls for x in range(idx[j], idx[j + n - 1])):
                candidates.append(PhraseMatch(e.ref, idx[j], idx[j + n - 1] + 1, e.weight, e.source, True))
        # "number of orders" is not a reordered "order number", nor "products by sales" a reordered "sales by product"
        if n >= 2 and not (set(e.phrase) & LEADING) and not (set(e.phrase) & _DIRECTED):
            want = set(e.phrase)
            for j in range(len(stems)):
                window = stems[j:j + n + 2]
                if window and window[0] in want and want <= set(window):
                    k = j + max(window.index(w) for w in want)
                    if not set(stems[j:k + 1]) <= want:
                        continue  # a reordering may not swallow other words
                    if stems[k] in _LINKING or stems[j] in _LINKING:
                        continue  # nor end on a word that links to what follows ("customer spend per | month")
                    if any(tokens[x + 1].start - tokens[x].end > 1 for x in range(idx[j], idx[k])):
                        continue  # nor reach across punctuation ("stores, all time")
                    candidates.append(PhraseMatch(e.ref, idx[j], idx[k] + 1, e.weight * 0.85, e.source, False))
    # longest (in words), then best score, then earliest
    candidates.sort(key=lambda m: (-(m.end - m.start), -m.score, m.start))
    chosen: list[PhraseMatch] = []
    used: set[int] = set(taken)
    for m in candidates:
        span = set(range(m.start, m.end))
        if span & used:
            continue
        chosen.append(m)
        used |= span
    chosen.sort(key=lambda m: m.start)
    return chosen
