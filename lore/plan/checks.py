"""Checks on a finished plan, before it runs: pure functions over the plan and the layer.

A plan can be well-formed and still ask for something no row can satisfy. The check here catches the
common case of a list of entities named two ways ("PHL and Brooklyn": a store code and a store name),
which the planner reads as two filters that must both hold, so the answer would be empty and look
confident. It becomes a clarifying question instead.
"""

from __future__ import annotations

from itertools import combinations

from lore.semantic.spec import SemanticLayer
from lore.types import Filter, PlanOutcome, QueryPlan


def _identifying(layer: SemanticLayer, ref: str) -> tuple[str, str] | None:
    """``(node, attribute)`` when ``ref`` is an attribute that identifies one row of its node (unique or the key)."""
    node_name, _, attr = ref.split("[", 1)[0].partition(".")
    node = layer.nodes.get(node_name)
    if node is None or not attr:
        return None
    col = node.column(attr)
    if attr in node.primary_key and len(node.primary_key) == 1 or (col is not None and col.unique):
        return node_name, attr
    return None


def conflicting_filters(plan: QueryPlan, layer: SemanticLayer) -> list[tuple[Filter, Filter]]:
    """Pairs of single-value equality filters on two different identifying attributes of one node.

    Both can hold only for one row, and a question rarely means that: "PHL and Brooklyn" names two stores.

    >>> from lore.semantic.spec import Column, Node
    >>> node = Node(name="stores", kind="dimension", table="stores", primary_key=("code",),
    ...             columns=(Column(name="code"), Column(name="name", unique=True), Column(name="city")))
    >>> layer = SemanticLayer(nodes={"stores": node}, metrics={})
    >>> plan = QueryPlan(metrics=("m",), filters=(Filter(ref="stores.code", values=("PHL",)),
    ...                                          Filter(ref="stores.name", values=("Brooklyn",))))
    >>> [(a.ref, b.ref) for a, b in conflicting_filters(plan, layer)]
    [('stores.code', 'stores.name')]
    >>> conflicting_filters(plan.model_copy(update={"filters": plan.filters[:1]}), layer)
    []
    """
    single = [f for f in plan.filters if f.op in ("=", "in") and len(f.values) == 1]
    out = []
    for a, b in combinations(single, 2):
        ia, ib = _identifying(layer, a.ref), _identifying(layer, b.ref)
        if ia and ib and ia[0] == ib[0] and ia[1] != ib[1]:
            out.append((a, b))
    return out


def check_outcome(outcome: PlanOutcome, layer: SemanticLayer) -> PlanOutcome:
    """The outcome, or a clarifying question when its plan's filters cannot hold together."""
    if outcome.status != "plan" or outcome.plan is None:
        return outcome
    conflicts = conflicting_filters(outcome.plan, layer)
    if not conflicts:
        return outcome
    a, b = conflicts[0]
    node = layer.nodes[a.ref.split(".", 1)[0]]

    def said(f: Filter) -> str:
        col = node.column(f.ref.split(".", 1)[1].split("[", 1)[0])
        return f"“{f.values[0]}” ({col.display if col else f.ref})"

    return PlanOutcome(
        status="clarify", plan=outcome.plan, signals=outcome.signals.with_(coverage=0.0),
        message=(f"{said(a)} and {said(b)} each pick out one {node.display} in a different way, so no row is "
                 "both and the answer would be empty. If you meant both, name them the same way (two of the same "
                 "kind of value) and ask again."))
