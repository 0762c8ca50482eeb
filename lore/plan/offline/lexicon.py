"""What the offline planner knows of one project: every name of the layer and of its values, built once.

All of it comes from the semantic layer and the value index: the names, labels and synonyms of metrics,
nodes and attributes (identifiers included), the values and their other names, which nodes each fact reaches.
The :class:`Lexicon` is built when the planner is made and never changes after, so one planner can serve any
number of threads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lore.plan.catalog import Catalog, Entry, phrase, tokenize
from lore.plan.offline.durations import Duration, duration_metrics
from lore.retrieve.lexical import stem
from lore.semantic.compile import expand_metric
from lore.semantic.spec import METRIC_TIME, Column, SemanticLayer


@dataclass(frozen=True)
class Lexicon:
    """The layer's vocabulary, indexed for the planner's passes (see the module docstring)."""

    catalog: Catalog
    #: the distinct values of indexed attributes (``node.attr`` -> values)
    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: stem -> nodes named by it ("store" -> {"stores"})
    node_words: dict[str, frozenset[str]] = field(default_factory=dict)
    #: full phrases of node names and labels -> nodes
    node_phrases: dict[tuple[str, ...], frozenset[str]] = field(default_factory=dict)
    #: the attribute a breakdown "by <node>" uses, per node
    entity: dict[str, str] = field(default_factory=dict)
    #: metric -> the stems of its own names (name, label, synonyms, source)
    own_words: dict[str, frozenset[str]] = field(default_factory=dict)
    #: derived metrics: (name, the metrics its expression names, whether it divides)
    ratios: tuple[tuple[str, tuple[str, ...], bool], ...] = ()
    #: metric -> the metrics that are it cut by a filter of their own (same source, aggregation and expression)
    cuts: dict[str, frozenset[str]] = field(default_factory=dict)
    #: attribute entries of time and boolean columns
    time_entries: tuple[Entry, ...] = ()
    boolean_entries: tuple[Entry, ...] = ()
    #: the vocabulary misspellings are read against (stems of 3+ letters), sorted
    spelling: tuple[str, ...] = ()
    #: identifier values written with underscores, by the stems of their words, per attribute
    identifier_cores: tuple[tuple[str, dict[tuple[str, ...], list[tuple[str, str]]]], ...] = ()
    #: the nouns numbers may count here ("2000 orders" is no year): table, label and unit words
    unit_words: frozenset[str] = frozenset()
    #: metric -> the stems of its unit ("minutes")
    metric_units: dict[str, frozenset[str]] = field(default_factory=dict)
    #: value -> the attributes holding it (lower case)
    value_refs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the one-word values of five letters or more of attributes that are no identifiers (lower case), sorted: what a
    #: misspelt value is read against
    word_values: tuple[str, ...] = ()
    #: every phrase naming a metric, an attribute or a node
    name_phrases: frozenset[tuple[str, ...]] = frozenset()
    #: attribute and node entries by their first and by their last stem (a breakdown item starts with one)
    attribute_index: dict[str, tuple[Entry, ...]] = field(default_factory=dict)
    node_index: dict[str, tuple[Entry, ...]] = field(default_factory=dict)
    #: stems that start an attribute's phrase
    attribute_heads: frozenset[str] = frozenset()
    #: a stem of the vocabulary -> a word it was read from ("revenu" -> "revenue"), for notes people read
    surface: dict[str, str] = field(default_factory=dict)
    #: the words of each link role -> (the node the link goes to, the role): "home store", "origin airport"
    roles: dict[tuple[str, ...], frozenset[tuple[str, str]]] = field(default_factory=dict)
    #: metrics measuring the time between two dates of their source ("average days to close": report to close)
    durations: tuple[Duration, ...] = ()
    #: each date attribute's own words, less the words all dates share ("date of loss": "loss")
    date_words: dict[str, frozenset[tuple[str, ...]]] = field(default_factory=dict)
    #: the things sold, in words ("products"): the node the one unfiltered count of sales names besides its own
    #: rows ("items sold", also called "products sold"); None when not exactly one
    sold: str | None = None

    def attributes_spelled_at(self, stems: Sequence[str], i: int) -> list[Entry]:
        """The attribute names the stems starting at ``i`` spell out whole ("opening date", "tax rate").

        >>> lex = Lexicon(None, attribute_index={"tax": (Entry("stores.tax_rate", ("tax", "rate"), "label", 1.0),)})
        >>> [e.ref for e in lex.attributes_spelled_at(["list", "tax", "rate"], 1)], lex.attributes_spelled_at(["tax"], 0)
        (['stores.tax_rate'], [])
        """
        first = stems[i]
        return [e for e in self.attribute_index.get(first, ()) if e.phrase[0] == first
                and tuple(stems[i:i + len(e.phrase)]) == e.phrase]

    @classmethod
    def build(cls, catalog: Catalog, values: Mapping[str, Sequence[str]] | None = None) -> Lexicon:
        layer = catalog.layer
        values = dict(values or {})
        node_words: dict[str, set[str]] = {}
        node_phrases: dict[tuple[str, ...], set[str]] = {}
        units: set[str] = set()
        for n in layer.nodes.values():
            for text in (n.name, n.label or "", *n.synonyms):
                ph = phrase(text)
                if ph:
                    node_phrases.setdefault(ph, set()).add(n.name)
                for w in ph:
                    node_words.setdefault(w, set()).add(n.name)
                units.update(word.lower() for word in re.findall(r"[A-Za-z]+", text.replace("_", " ")))
        own: dict[str, frozenset[str]] = {}
        for m in layer.metrics.values():
            words: set[str] = set()
            for text in (m.name, m.label or "", *m.synonyms):
                words.update(phrase(text))
            own[m.name] = frozenset(words)
            if m.unit:
                units.add(m.unit.lower())
        ratios = tuple((m.name, tuple(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.expr)), "/" in m.expr)
                       for m in layer.metrics.values() if m.is_derived)
        time_entries = tuple(e for e in catalog.dimension_entries if (c := catalog.column(e.ref)) is not None
                             and c.kind == "time")
        boolean_entries = tuple(e for e in catalog.dimension_entries if (c := catalog.column(e.ref)) is not None
                                and c.kind == "boolean")
        spelling = tuple(sorted({w for e in catalog.metric_entries + catalog.dimension_entries + catalog.node_entries
                                 for w in e.phrase if len(w) >= 3}))
        value_refs: dict[str, list[str]] = {}
        for ref, vals in values.items():
            for v in vals:
                value_refs.setdefault(str(v).lower(), []).append(ref)
        durations, date_words = duration_metrics(catalog)
        return cls(
            catalog=catalog, values=values, durations=durations, date_words=date_words, sold=_sold(catalog),
            node_words={k: frozenset(v) for k, v in node_words.items()},
            node_phrases={k: frozenset(v) for k, v in node_phrases.items()},
            entity={name: ref for name in layer.nodes if (ref := entity_attribute(layer, name)) is not None},
            own_words=own, ratios=ratios, cuts=_cuts(layer), time_entries=time_entries, boolean_entries=boolean_entries,
            spelling=spelling, identifier_cores=_identifier_cores(values), unit_words=frozenset(units),
            metric_units={name: frozenset(phrase(m.unit or "")) for name, m in layer.metrics.items()},
            value_refs={k: tuple(v) for k, v in value_refs.items()},
            word_values=tuple(sorted({str(v).lower() for ref, vals in values.items()
                                      if (c := catalog.column(ref)) is not None and c.kind != "identifier"
                                      for v in vals if isinstance(v, str) and v.isalpha() and len(v) >= 5})),
            name_phrases=frozenset(e.phrase for e in (*catalog.metric_entries, *catalog.dimension_entries,
                                                      *catalog.node_entries)),
            attribute_index=_by_end_words(catalog.dimension_entries),
            node_index=_by_end_words(catalog.node_entries),
            attribute_heads=frozenset(e.phrase[0] for e in catalog.dimension_entries if e.phrase),
            roles=_roles(layer), surface=_surface(layer),
        )

    @property
    def layer(self) -> SemanticLayer:
        return self.catalog.layer

    # --- questions about the layer --------------------------------------------------------------
    def facts_of(self, metrics: Sequence[str]) -> list[str]:
        return self.catalog.facts_of(metrics)

    def filter_holds(self, metrics: Sequence[str], ref: str, value: object) -> bool:
        """Whether every metric's own filter already holds ``ref``'s ``value`` ("drinks sold" holds the drinks)."""
        col = ref.split(".")[-1]
        return bool(metrics) and all(col in (m.filter or "") and str(value) in (m.filter or "")
                                     for name in metrics if (m := self.layer.metrics.get(name)) is not None)

    def reachable(self, facts: Sequence[str], ref: str) -> bool:
        return self.catalog.reachable(facts, ref)

    def column(self, ref: str) -> Column | None:
        return self.catalog.column(ref)

    def label(self, ref: str) -> str:
        return self.catalog.dimension_label(ref)

    def metric_label(self, name: str) -> str:
        return self.catalog.metric_label(name)

    def bases(self, metrics: Sequence[str]) -> list[str]:
        return [b for m in metrics for b in expand_metric(self.layer, m)]

    def reachable_dims(self, facts: Sequence[str]) -> list[str]:
        """Labels of the categorical attributes every fact reaches without fan-out (for "it can be broken down by")."""
        out = []
        for node in self.layer.nodes.values():
            for col in node.columns:
                ref = f"{node.name}.{col.name}"
                if col.kind in ("categorical", "boolean") and self.reachable(facts, ref) \
                        and all(node.name in self.catalog.reach.get(f, {}) for f in facts):
                    out.append(self.label(ref))
        return list(dict.fromkeys(out))

    def values_of(self, ref: str) -> list[str]:
        return [str(v) for v in self.values.get(ref, ())]

    def domains(self) -> list[str]:
        """One headline metric per source: the one people have the most names for."""
        best: dict[str, str] = {}
        for m in self.layer.metrics.values():
            src = m.source or (self.facts_of([m.name]) or [""])[0]
            if src not in best or len(m.synonyms) > len(self.layer.metrics[best[src]].synonyms):
                best[src] = m.name
        return [self.metric_label(m) for m in best.values()][:8]

    def starter_metrics(self) -> tuple[str, ...]:
        return tuple(list(self.layer.metrics)[:5])

    def definition_kind(self, name: str) -> str:
        m = self.layer.metrics[name]
        if m.is_derived:
            return "ratio"
        return {"sum": "total", "count": "count", "count_distinct": "distinct count", "avg": "average",
                "min": "minimum", "max": "maximum"}.get(m.agg or "", "total")


def _sold(catalog: Catalog) -> str | None:
    """The things sold, as a plural noun: the one node with a key named in the names of the one unfiltered count
    whose names say "sold" ("items sold", also "products sold": the products), other than the rows it counts, that
    the count reaches."""
    layer = catalog.layer
    sell = stem("sold")
    counts = [m for m in layer.metrics.values() if m.agg == "count" and not m.filter and not m.is_derived and m.source
              and any(sell in phrase(t) for t in (m.name, m.label or "", *m.synonyms))]
    if len(counts) != 1:
        return None
    m = counts[0]
    words = {w for t in (m.name, m.label or "", *m.synonyms) for w in phrase(t)}
    nodes = [n for n in layer.nodes.values() if n.name != m.source and len(n.primary_key) == 1
             and n.name in catalog.reach.get(m.source or "", {})
             and not n.time_column and {w for t in (n.name, n.label or "") for w in phrase(t)} & words]
    if len(nodes) != 1:
        return None
    return nodes[0].name.replace("_", " ")


def _cuts(layer: SemanticLayer) -> dict[str, frozenset[str]]:
    """Each unfiltered base metric's cuts: the metrics with the same source, aggregation and expression and a
    filter of their own ("negative tweets" for "tweets")."""
    wholes: dict[tuple, list[str]] = {}
    for m in layer.metrics.values():
        if not m.is_derived and not m.filter:
            wholes.setdefault((m.source, m.agg, m.expr), []).append(m.name)
    out: dict[str, set[str]] = {}
    for m in layer.metrics.values():
        for whole in wholes.get((m.source, m.agg, m.expr), []) if not m.is_derived and m.filter else []:
            out.setdefault(whole, set()).add(m.name)
    return {k: frozenset(v) for k, v in out.items()}


def entity_attribute(layer: SemanticLayer, node_name: str) -> str | None:
    """The attribute that stands for a node's rows in a breakdown ("by store", "each customer").

    An attribute labelled like the node itself comes first (a store's name labelled "store"), then a unique
    name or title; else the node's one-column primary key (its identifier: names need not be unique); with a key
    of several columns, the attribute labelled like the node even if not unique (rows with one name are one row).
    """
    node = layer.nodes[node_name]
    own = {phrase(node.label or ""), phrase(node.name), *(phrase(s) for s in node.synonyms)} - {()}
    for col in node.columns:
        if col.kind in ("categorical", "identifier") and (phrase(col.label or "") in own or phrase(col.name) in own) \
                and (col.unique or col.kind == "identifier" or col.name in node.primary_key):
            return f"{node_name}.{col.name}"
    for col in node.columns:
        if col.kind == "categorical" and col.unique and re.search(r"(^|_)(name|title)$", col.name):
            return f"{node_name}.{col.name}"
    if len(node.primary_key) == 1:
        return f"{node_name}.{node.primary_key[0]}"
    for col in node.columns:  # a key of several columns: the attribute labelled like the node, unique or not
        if col.kind == "categorical" and (phrase(col.label or "") in own or phrase(col.name) in own):
            return f"{node_name}.{col.name}"
    return None


def _by_end_words(entries: Sequence[Entry]) -> dict[str, tuple[Entry, ...]]:
    """Entries filed under their first stem and their last stem, in their original order."""
    out: dict[str, list[Entry]] = {}
    for e in entries:
        if not e.phrase:
            continue
        for key in dict.fromkeys((e.phrase[0], e.phrase[-1])):
            out.setdefault(key, []).append(e)
    return {k: tuple(v) for k, v in out.items()}


def _identifier_cores(values: Mapping[str, Sequence[str]]) -> tuple[tuple[str, dict[tuple[str, ...], list[tuple[str, str]]]], ...]:
    """Per attribute, the values written as identifiers (with underscores) by the stems of their words, without
    dates, so "the trailer autoplay test" finds ``trailer_autoplay_2026q2``."""
    out = []
    for ref, vals in values.items():
        cores: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for v in vals:
            v = str(v)
            if "_" not in v or len(v) > 80:
                continue
            parts = [x for x in re.split(r"[_\-\s]+", v.lower()) if x]
            core = tuple(stem(x) for x in parts if not re.fullmatch(r"\d{4}(q\d|h\d)?|v\d+|\d+|q\d", x))
            suffix = "".join(x for x in parts if re.fullmatch(r"\d{4}(q\d|h\d)?|q\d", x))
            if len(core) >= 2:
                cores.setdefault(core, []).append((v, suffix))
        if cores:
            out.append((ref, cores))
    return tuple(out)


def is_metric_time(ref: str) -> bool:
    return ref.split(":", 1)[0] == METRIC_TIME


def _roles(layer: SemanticLayer) -> dict[tuple[str, ...], frozenset[tuple[str, str]]]:
    """Link roles by their words ("sold_at" is "sold at"), with the node each link goes to."""
    out: dict[tuple[str, ...], set[tuple[str, str]]] = {}
    for node in layer.nodes.values():
        for link in node.links:
            if link.role:
                words = phrase(link.role.replace("_", " "))
                if words:
                    out.setdefault(words, set()).add((link.to, link.role))
    return {k: frozenset(v) for k, v in out.items()}


def _surface(layer: SemanticLayer) -> dict[str, str]:
    """Each stem of the names, labels and synonyms, with the shortest word it comes from."""
    out: dict[str, str] = {}
    texts = [t for m in layer.metrics.values() for t in (m.name, m.label or "", *m.synonyms)]
    for n in layer.nodes.values():
        texts += [n.name, n.label or "", *n.synonyms]
        for c in n.columns:
            texts += [c.name, c.label or "", *c.synonyms]
    for text in texts:
        for tok in tokenize(text.replace("_", " ")):
            word = tok.text.lower()
            if tok.stem not in out or len(word) < len(out[tok.stem]):
                out[tok.stem] = word
    return out

