"""A project seen through one scope: its retriever, planner and ``Lore``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lore.access.config import Rule
from lore.access.outside import Outside, cut_metadata, outside_access, outside_message
from lore.access.scope import Scope
from lore.core import Lore
from lore.errors import LoreError
from lore.semantic.spec import SemanticLayer
from lore.retrieve.documents import RETRIEVE_K
from lore.types import PlanOutcome, QueryPlan, RetrievalResult, ValueMatch

if TYPE_CHECKING:  # pragma: no cover
    from lore.retrieve import Example, Retriever


log = logging.getLogger("lore.access")


# --- a retriever that only returns what the scope may see ----------------------------------------


class ScopedRetriever:
    """The project's retriever, with hits outside a scope removed (the index is shared; nothing is rebuilt)."""

    def __init__(self, base: Retriever, scope: Scope, values: Mapping[str, Sequence[str]],
                 example_ok: Any = None, layer: SemanticLayer | None = None) -> None:
        from lore.retrieve.documents import layer_documents

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

    def __init__(self, inner: Any, lore: ScopedLore) -> None:
        self.inner = inner
        self._lore = lore

    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None,
             retrieval: RetrievalResult | None = None) -> PlanOutcome:
        outcome = self.inner.plan(question, previous, answer_id=answer_id, retrieval=retrieval)
        items = self._lore.outside(question, outcome) if question.strip() else []
        if not items:
            return outcome
        names = sorted(self._lore.layer.metrics)[:4]
        return PlanOutcome(status="refuse", message=outside_message(items, self._lore.scope), suggestions=tuple(names),
                           signals={"access": 0.0})

    def __getattr__(self, name: str) -> Any:  # replan and other planner entry points pass through
        return getattr(self.inner, name)


class ScopedLore(Lore):
    """One project as one user may see it: its own layer, schema, values, retrieval and planner; the engine,
    index, caches, model and feedback store are the project's (shared, never rebuilt per user)."""

    def __init__(self, base: Lore, scope: Scope) -> None:
        super().__init__(base.project, base.settings)
        self.base = base
        self.scope = scope
        #: example content hash -> whether this scope may see it (searches ask again and again; contents never change)
        self._example_verdicts: dict[str, bool] = {}

    # shared with the project
    @property  # type: ignore[override]
    def engine(self):  # noqa: ANN201
        return self.base.engine

    @property  # type: ignore[override]
    def llm_log(self):  # noqa: ANN201
        return self.base.llm_log

    @property  # type: ignore[override]
    def model(self):  # noqa: ANN201
        return self.base.model

    @property  # type: ignore[override]
    def answer_cache(self):  # noqa: ANN201
        return self.base.answer_cache

    @property  # type: ignore[override]
    def plan_cache(self):  # noqa: ANN201
        return self.base.plan_cache

    @property  # type: ignore[override]
    def disk_cache(self):  # noqa: ANN201
        return self.base.disk_cache

    @property  # type: ignore[override]
    def feedback_backend(self):  # noqa: ANN201
        return self.base.feedback_backend

    @property
    def _examples_revision(self) -> int:  # type: ignore[override]
        return self.base._examples_revision

    @_examples_revision.setter
    def _examples_revision(self, value: int) -> None:
        pass  # the project's retriever keeps the revision

    def sync_examples(self) -> None:
        self.base.sync_examples()

    def for_user(self, user: str | None) -> Lore:
        return self.base.for_user(user)

    # seen through the scope
    @cached_property
    def layer(self) -> SemanticLayer:  # type: ignore[override]
        """The scope's layer; with row limits, also without the sample values, value synonyms and descriptions
        that name rows outside them (so no answer, document or prompt names another region's countries)."""
        filtered = {n.name for n in self.scope.layer.nodes.values() if n.table and n.table.lower() in self.scope.row_filters}
        if not filtered:
            return self.scope.layer
        return cut_metadata(self.scope.layer, self.values, self.base.values, filtered)

    @property  # type: ignore[override]
    def schema(self) -> dict[str, dict[str, str]]:
        return self.scope.schema

    @cached_property
    def values(self) -> dict[str, list[str]]:
        """The project's indexed values of visible attributes, cut to the rows in scope."""
        from lore.execute.engine import distinct_values_sql

        out: dict[str, list[str]] = {}
        for ref, values in self.base.values.items():
            node_name, _, attr = ref.partition(".")
            node = self.scope.layer.nodes.get(node_name)
            if node is None or node.column(attr) is None:
                continue
            if node.table and node.table.lower() in self.scope.row_filters:
                sql = distinct_values_sql(node.table, attr, max(len(values), 1))
                seen = {str(row[0]) for row in self.sql(sql).rows}
                values = [v for v in values if v in seen]
            out[ref] = list(values)
        return out

    @cached_property
    def retriever(self) -> ScopedRetriever:  # type: ignore[override]
        return ScopedRetriever(self.base.retriever, self.scope, self.values, example_ok=self._example_visible,
                               layer=self.layer)

    @cached_property
    def planner(self):  # noqa: ANN201
        if not self.layer.metrics:
            return NoAccessPlanner(self.scope.rules)
        return ScopedPlanner(Lore.planner.func(self), self)  # type: ignore[attr-defined]

    def outside(self, question: str, outcome: PlanOutcome) -> list[Outside]:
        """What the question names outside this scope that its plan does not explain (see :func:`outside_access`)."""
        base = self.base.retriever
        return outside_access(question, outcome, full_layer=self.base.layer, scope=self.scope,
                              value_matches=base.match_values(question), in_scope=self.values,
                              metric_hits=base.search(question, k=4, kinds=["metric"]).hits)

    def _example_visible(self, example: Example) -> bool:
        """Whether a verified example's plan is valid in this scope: it names only what the scope sees, compiles
        in the scope's layer, and what it runs (and the SQL it was verified with) passes this scope's guard."""
        verdict = self._example_verdicts.get(example.content_hash)
        if verdict is None:
            verdict = self._example_verdicts[example.content_hash] = self._judge_example(example)
        return verdict

    def _judge_example(self, example: Example) -> bool:
        try:
            plan = QueryPlan.model_validate_json(example.plan_json)
        except ValueError:
            return False
        refs_ok = (all(self.scope.metric_visible(m) for m in plan.metrics)
                   and all(self.scope.dimension_visible(d) for d in plan.dimensions)
                   and all(self.scope.metric_visible(f.ref) or self.scope.dimension_visible(f.ref) for f in plan.filters)
                   and all(self.scope.metric_visible(o.ref) or self.scope.dimension_visible(o.ref) for o in plan.order_by))
        if not refs_ok:
            return False
        try:  # what the example runs for this person: its plan compiled in this scope (or its SQL), guarded here
            runs = self.compile_plan(plan).sql
        except LoreError:
            return False
        for sql in (runs, example.sql):
            if sql:
                try:
                    self.guard(sql)
                except LoreError:
                    return False
        return True

    def plan_cache_key(self, question: str, previous: QueryPlan | None) -> str:
        return f"{super().plan_cache_key(question, previous)}|{self.scope.id}"

    def cache_key(self, plan: QueryPlan, *, scope: str | None = None) -> str:
        return super().cache_key(plan, scope=self.scope.id)

    def guard(self, sql: str):  # noqa: ANN201
        """The project's guard over this scope's columns, with its row filters wrapped around every table."""
        from lore.guard import guard_sql

        return guard_sql(sql, self.schema, dialect="duckdb", default_limit=self.settings.default_limit,
                         max_rows=self.settings.max_rows, row_filters=self.scope.row_filters)

    def access_note(self, row_filtered: Sequence[str]) -> str | None:
        if not row_filtered or not self.scope.row_labels:
            return None
        return (f"Your access limits the rows read from {', '.join(row_filtered)} to: "
                + "; ".join(self.scope.row_labels) + ".")

    def warm_up(self) -> dict[str, float]:
        took = self.base.warm_up()
        self.values, self.retriever, self.planner  # noqa: B018 - build the scoped parts once
        return took

    def close(self) -> None:
        """Nothing to close: the project's parts belong to the project's Lore."""
