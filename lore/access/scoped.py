"""A scope applied to a project's parts: the retriever, the planner, the values, the layer and the examples a
view of the project (a ``Lore`` with a ``scope``) sees."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lore.access.config import Rule
from lore.access.outside import Outside, cut_metadata, outside_access, outside_message
from lore.access.scope import Scope
from lore.errors import LoreError
from lore.execute.base import distinct_values_sql
from lore.retrieve.documents import RETRIEVE_K, layer_documents
from lore.semantic.spec import SemanticLayer
from lore.tables import table_key
from lore.types import PlanOutcome, QueryPlan, RetrievalResult, ValueMatch

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.retrieve import Example, Retriever

log = logging.getLogger("lore.access")


# --- a retriever that only returns what the scope may see ----------------------------------------


class ScopedRetriever:
    """The project's retriever, with hits outside a scope removed (the index is shared; nothing is rebuilt)."""

    def __init__(self, base: Retriever, scope: Scope, values: Mapping[str, Sequence[str]],
                 example_ok: Any = None, layer: SemanticLayer | None = None) -> None:
        self._base = base
        self._scope = scope
        self._values = {ref: frozenset(vals) for ref, vals in values.items()}
        self._example_ok = example_ok
        self.embedder = base.embedder
        #: metric and dimension documents as the scope's layer writes them (no sample value it does not hold)
        self._texts = {d.id: d.text for d in layer_documents(layer or scope.layer, values) if d.kind in ("metric", "dimension")}

    def _keep_value(self, ref: str, value: str | None) -> bool:
        return value is not None and value in self._values.get(ref, frozenset())

    def search(self, question: str, *, k: int = 8, kinds: Any = None) -> RetrievalResult:
        found = self._base.search(question, k=k * 3 + 8, kinds=kinds)
        kept, per_kind = [], {}
        for hit in found.hits:
            if not self._visible_hit(hit):
                continue
            if per_kind.get(hit.kind, 0) >= k:
                continue
            per_kind[hit.kind] = per_kind.get(hit.kind, 0) + 1
            if hit.kind in ("metric", "dimension"):
                hit = hit.model_copy(update={"text": self._texts.get(hit.id, hit.ref)})
            kept.append(hit)
        return found.model_copy(update={"hits": tuple(kept), "k": k})

    def retrieve(self, question: str, *, k: int = RETRIEVE_K) -> RetrievalResult:
        """The retrieve stage's result, cut to the scope (see :meth:`lore.retrieve.Retriever.retrieve`)."""
        return self.search(question, k=k).model_copy(update={"values": tuple(self.match_values(question))})

    def _visible_hit(self, hit: Any) -> bool:
        if hit.kind == "metric":
            return self._scope.metric_visible(hit.ref)
        if hit.kind == "dimension":
            return self._scope.dimension_visible(hit.ref)
        if hit.kind == "value":
            return self._keep_value(hit.ref, hit.value)
        if hit.kind == "example":
            return self.example(hit.ref) is not None
        return False

    def match_values(self, question: str) -> list[ValueMatch]:
        return [m for m in self._base.match_values(question) if self._keep_value(m.ref, m.value)]

    def example(self, example_id: str) -> Example | None:
        example = self._base.example(example_id)
        if example is None or self._example_ok is None:
            return None
        return example if self._example_ok(example) else None

    def count(self, kind: str | None = None) -> int:
        return self._base.count(kind)


# --- a Lore seen through one scope ------------------------------------------------------------

class NoAccessPlanner:
    """The planner of a scope that leaves no metric visible: every question gets the same refusal."""

    def __init__(self, rules: Sequence[tuple[str, Rule]]) -> None:
        self._names = ", ".join(n for n, _ in rules)

    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None,
             retrieval: RetrievalResult | None = None) -> PlanOutcome:
        return PlanOutcome(status="refuse", message=(
            f"Your access ({self._names}) lets you see no metric in this project. "
            "Ask the project's operator to grant you access in lore.yaml."))


class ScopedPlanner:
    """A scope's planner: when the question names a value, attribute or metric outside the scope that the plan
    does not otherwise explain, the answer says so instead of silently dropping or emptying it."""

    def __init__(self, inner: Any, view: Lore) -> None:
        self.inner = inner
        self._view = view

    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None,
             retrieval: RetrievalResult | None = None) -> PlanOutcome:
        outcome = self.inner.plan(question, previous, answer_id=answer_id, retrieval=retrieval)
        view = self._view
        scope = view.scope
        assert scope is not None
        items = outside(view, question, outcome) if question.strip() else []
        if not items:
            return outcome
        names = sorted(view.layer.metrics)[:4]
        return PlanOutcome(status="refuse", message=outside_message(items, scope), suggestions=tuple(names),
                           signals={"access": 0.0})

    def __getattr__(self, name: str) -> Any:  # replan and other planner entry points pass through
        return getattr(self.inner, name)


# --- a scope applied to the project's parts ---------------------------------------------------------


def scoped_values(scope: Scope, values: Mapping[str, Sequence[str]],
                  rows: Callable[[str], Sequence[Sequence[Any]]], dialect: str = "duckdb") -> dict[str, list[str]]:
    """The project's indexed ``values`` of the attributes ``scope`` shows, cut to the rows in scope (``rows``
    runs guarded SQL, written in ``dialect``, in the scope)."""
    out: dict[str, list[str]] = {}
    for ref, found in values.items():
        node_name, _, attr = ref.partition(".")
        node = scope.layer.nodes.get(node_name)
        if node is None or node.column(attr) is None:
            continue
        if node.table and table_key(node.table) in scope.row_filters:
            sql = distinct_values_sql(node.table, attr, max(len(found), 1), dialect)
            seen = {str(row[0]) for row in rows(sql)}
            found = [v for v in found if v in seen]
        out[ref] = list(found)
    return out


def scoped_layer(scope: Scope, in_scope: Mapping[str, Sequence[str]], everything: Mapping[str, Sequence[str]]) -> SemanticLayer:
    """The scope's layer; with row limits, also without the sample values, value synonyms and descriptions that
    name rows outside them (so no answer, document or prompt names another region's countries)."""
    filtered = {n.name for n in scope.layer.nodes.values() if n.table and table_key(n.table) in scope.row_filters}
    if not filtered:
        return scope.layer
    return cut_metadata(scope.layer, in_scope, everything, filtered)


def outside(view: Lore, question: str, outcome: PlanOutcome) -> list[Outside]:
    """What the question names outside ``view``'s scope that its plan does not explain (see :func:`outside_access`):
    the project's whole index and layer are asked what the words name."""
    scope = view.scope
    assert scope is not None
    index = view.parts.retriever
    return outside_access(question, outcome, full_layer=view.parts.layer, scope=scope,
                          value_matches=index.match_values(question), in_scope=view.values,
                          metric_hits=index.search(question, k=4, kinds=["metric"]).hits)


class ExampleJudge:
    """Whether a verified example's plan is valid in a view: it names only what the scope sees, compiles in the
    scope's layer, and what it runs (and the SQL it was verified with) passes the scope's guard. Each example is
    judged once per view (its contents never change)."""

    def __init__(self, view: Lore) -> None:
        self._view = view
        #: example content hash -> verdict
        self._verdicts: dict[str, bool] = {}

    def __call__(self, example: Example) -> bool:
        verdict = self._verdicts.get(example.content_hash)
        if verdict is None:
            verdict = self._verdicts[example.content_hash] = self._judge(example)
        return verdict

    def _judge(self, example: Example) -> bool:
        view = self._view
        scope = view.scope
        assert scope is not None
        try:
            plan = QueryPlan.model_validate_json(example.plan_json)
        except ValueError:
            return False
        refs_ok = (all(scope.metric_visible(m) for m in plan.metrics)
                   and all(scope.dimension_visible(d) for d in plan.dimensions)
                   and all(scope.metric_visible(f.ref) or scope.dimension_visible(f.ref) for f in plan.filters)
                   and all(scope.metric_visible(o.ref) or scope.dimension_visible(o.ref) for o in plan.order_by))
        if not refs_ok:
            return False
        try:  # what the example runs for this person: its plan compiled in this scope (or its SQL), guarded here
            runs = view.compile_plan(plan).sql
        except LoreError:
            return False
        for sql in (runs, example.sql):
            if sql:
                try:
                    view.guard(sql)
                except LoreError:
                    return False
        return True
