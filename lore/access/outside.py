"""Telling a restricted user what lies outside their access, and cutting what names it from the layer."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lore.access.scope import Scope
from lore.semantic.spec import METRIC_TIME, SemanticLayer
from lore.types import PlanOutcome, QueryPlan, ValueMatch


# --- telling a restricted user what lies outside their access ----------------------------------------


def mentions(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words, ignoring case and spacing.

    >>> mentions("streaming hours in Brazil", "brazil"), mentions("Brazilian films", "Brazil")
    (True, False)
    """
    words = phrase.split()
    if not words or len(phrase.strip()) < 2:
        return False
    pattern = r"\s+".join(re.escape(w) for w in words)
    return re.search(rf"(?<![\w]){pattern}(?![\w])", text, re.IGNORECASE) is not None


def cut_metadata(layer: SemanticLayer, in_scope: Mapping[str, Sequence[str]], everything: Mapping[str, Sequence[str]],
                 filtered_nodes: Collection[str]) -> SemanticLayer:
    """The layer with what names rows outside the scope removed: sample values and value synonyms of values the
    scope's rows do not hold, and descriptions that name such a value (nodes, attributes and metrics).

    ``in_scope`` and ``everything`` map ``node.attr`` to the distinct values a scoped user and the whole
    warehouse hold; ``filtered_nodes`` are the nodes whose rows the scope cuts.
    """
    outside: list[str] = []
    for ref, values in everything.items():
        if ref.split(".", 1)[0] in filtered_nodes:
            kept = set(in_scope.get(ref, ()))
            outside += [str(v) for v in values if v not in kept and len(str(v).strip()) >= 2]

    def clean(text: str | None) -> str | None:
        if not text or not any(mentions(text, v) for v in outside):
            return text
        return ""

    nodes = {}
    for name, node in layer.nodes.items():
        columns = []
        for col in node.columns:
            ref = f"{name}.{col.name}"
            update: dict[str, Any] = {"description": clean(col.description)}
            if name in filtered_nodes:
                if ref in everything:
                    kept = set(in_scope.get(ref, ()))
                    update["sample_values"] = tuple(v for v in col.sample_values if v in kept)
                    update["value_synonyms"] = {v: s for v, s in col.value_synonyms.items() if v in kept}
                else:  # values never read: nothing says which of them are in scope
                    update["sample_values"] = ()
                    update["value_synonyms"] = {}
            columns.append(col.model_copy(update=update))
        nodes[name] = node.model_copy(update={"columns": tuple(columns), "description": clean(node.description)})
    metrics = {name: m.model_copy(update={"description": clean(m.description)}) for name, m in layer.metrics.items()}
    return layer.model_copy(update={"nodes": nodes, "metrics": metrics})


def refs_visible(layer: SemanticLayer, plan: QueryPlan) -> bool:
    """Whether every metric, dimension, filter and ordering a plan names exists in ``layer`` (a scope's layer)."""
    def dim(ref: str) -> bool:
        base = ref.split(":", 1)[0].split("[", 1)[0].strip()
        if base == METRIC_TIME:
            return True
        node_name, _, attr = base.partition(".")
        node = layer.nodes.get(node_name)
        return node is not None and (not attr or node.column(attr) is not None or attr == node.time_column
                                     or attr in node.primary_key)

    def any_ref(ref: str) -> bool:
        return ref in layer.metrics or dim(ref)

    return (all(m in layer.metrics for m in plan.metrics) and all(dim(d) for d in plan.dimensions)
            and all(any_ref(f.ref) for f in plan.filters) and all(any_ref(o.ref) for o in plan.order_by))


@dataclass(frozen=True)
class Outside:
    """Something a question names that lies outside the asker's access."""

    #: what the question said
    phrase: str
    #: why it is outside: "value" (rows the scope cuts), "attribute" (a hidden attribute), "metric" (a hidden metric)
    kind: str
    #: what it is, in words ("country", "age band", "cloud cost")
    what: str


def _explained(outcome: PlanOutcome, phrase: str) -> bool:
    """The scoped plan accounts for these words with something the asker may see."""
    if outcome.status != "plan" or outcome.plan is None:
        return False
    return any(g.score >= 0.9 and g.source in ("name", "label", "synonym", "value", "rule", "previous turn",
                                                  "verified example")
               and (mentions(g.phrase, phrase) or mentions(phrase, g.phrase) and g.kind != "time")
               for g in outcome.plan.groundings)


def _visible_phrases(layer: SemanticLayer) -> list[str]:
    """Every name a scope's layer gives its metrics, nodes and attributes (as people would write them)."""
    out: list[str] = []
    for m in layer.metrics.values():
        out += [m.name.replace("_", " "), m.display, *m.synonyms]
    for node in layer.nodes.values():
        out += [node.name.replace("_", " "), node.label or "", *node.synonyms]
        for col in node.columns:
            out += [col.name.replace("_", " "), col.display, *col.synonyms]
    return [p for p in dict.fromkeys(out) if p and len(p) >= 2]


def outside_access(question: str, outcome: PlanOutcome, *, full_layer: SemanticLayer, scope: Scope,
                   value_matches: Sequence[ValueMatch], in_scope: Mapping[str, Sequence[str]],
                   metric_hits: Sequence[Any]) -> list[Outside]:
    """What the question names that the asker may not see, and the scoped plan does not otherwise explain.

    ``value_matches`` are the *whole* warehouse's value mentions in the question, ``metric_hits`` the whole
    layer's metric hits, ``in_scope`` the values the asker's rows hold.
    """
    found: list[Outside] = []
    spoken: list[tuple[ValueMatch, str]] = [(m, question[m.span[0]:m.span[1]]) for m in value_matches if m.score >= 0.8]
    for node in full_layer.nodes.values():  # value synonyms ("Latin America" for LATAM) name values too
        for col in node.columns:
            for value, names in col.value_synonyms.items():
                said = next((n for n in names if mentions(question, n)), None)
                if said is not None:
                    spoken.append((ValueMatch(f"{node.name}.{col.name}", value, (0, 0), 1.0), said))
    visible = [v for v in _visible_phrases(scope.layer) if mentions(question, v)]
    longest = [said for _, said in spoken]
    for match, said in spoken:
        if _explained(outcome, said) or any(mentions(v, said) for v in visible):
            continue  # the words are (part of) a name the asker may see: "streaming" in "streaming hours"
        if any(len(other) > len(said) and mentions(other, said) for other in longest):
            continue  # part of a longer mention: "America" in "Latin America"
        node_name, _, attr = match.ref.partition(".")
        full_node = full_layer.nodes.get(node_name)
        col = full_node.column(attr) if full_node else None
        what = col.display if col is not None else attr.replace("_", " ")
        if not scope.dimension_visible(match.ref):
            found.append(Outside(phrase=said, kind="attribute", what=what))
        elif match.value not in set(in_scope.get(match.ref, ())):
            found.append(Outside(phrase=said, kind="value", what=what))
    hidden = [h for h in metric_hits if h.ref not in scope.layer.metrics and h.lexical_score >= 0.99]
    if hidden and not any(h.ref in scope.layer.metrics and h.lexical_score >= hidden[0].lexical_score
                          for h in metric_hits):
        metric = full_layer.metrics.get(hidden[0].ref)
        if metric is not None:
            names = [metric.name.replace("_", " "), metric.display, *metric.synonyms]
            said = next((n for n in names if mentions(question, n)), None)
            if said is not None and not _explained(outcome, said):
                found.append(Outside(phrase=said, kind="metric", what=metric.display))
    unique: dict[str, Outside] = {}
    for item in found:
        unique.setdefault(item.phrase.casefold(), item)
    return [item for item in unique.values()  # "production" is part of "production budget": say it once
            if not any(len(o.phrase) > len(item.phrase) and mentions(o.phrase, item.phrase) for o in unique.values())]


def outside_message(items: Sequence[Outside], scope: Scope) -> str:
    """The refusal that tells a restricted user what lies outside their access, and what they do see."""
    parts = []
    for item in items:
        if item.kind == "value":
            parts.append(f"“{item.phrase}” ({item.what}) is outside the rows you may see")
        elif item.kind == "attribute":
            parts.append(f"“{item.phrase}” is a value of {item.what}, which your access does not include")
        else:
            parts.append(f"{item.what} is a metric your access does not include")
    seen = (f" You see rows where {'; '.join(scope.row_labels)}."
            if scope.row_labels and any(i.kind == "value" for i in items) else "")
    text = "; ".join(parts) + "." + seen + " Ask about what your access includes, or ask the project's operator for more."
    return text[0].upper() + text[1:]
