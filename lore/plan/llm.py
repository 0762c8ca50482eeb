"""The LLM planner: a chat model fills a typed plan restricted to what retrieval found.

The model never writes joins for governed metrics. For each question:

1. **Choices**: retrieval (and the catalog's phrase lexicon) picks the candidate
   metrics and dimensions, plus the previous plan's; the values named in the
   question come from the value index; :func:`~lore.plan.timeparse.parse_time`
   resolves time phrases against today's date.
2. **Schema**: :func:`plan_schema` makes a JSON schema whose metric, dimension,
   filter-dimension and order fields are *enums* of those choices, so a model
   with constrained decoding cannot name anything else (and a model without is
   checked against the same lists).
3. **Prompt**: ``prompts/plan_v2.md`` with the definitions (descriptions,
   labels, units), the values found, the time hint, verified examples and the
   previous plan. No data rows unless ``llm_allow_rows`` (then a few sample rows
   of the tables offered for free SQL).
4. **Checks**: the reply is parsed (:class:`PlanReply`), every name checked
   against the choices, every filter value *grounded* in the value index (a
   value that is not real goes back with the closest real ones), dates parsed,
   then ``validate(plan)`` (the caller compiles the plan and runs the SQL guard).
   A failed check goes back to the model with the valid alternatives, at most
   ``max_retries`` times; then the question ends in a clarifying answer.
5. **Free SQL**: for a question the layer cannot express, the model may answer
   ``status: sql`` with one SELECT over the allow-listed tables. It goes through
   the same ``validate`` (the guard), is marked in ``QueryPlan.sql`` and its
   notes, and carries lower signals (``free_sql: 0.6``).

Every call is logged (:class:`~lore.llm.log.ExchangeLog`) with its outcome.
LangChain is not imported here: the model is reached through
:class:`lore.llm.chat.StructuredChat`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lore.plan.catalog import Catalog, find_phrases, tokenize
from lore.plan.offline import normalise, safety_check
from lore.plan.operations import (CHANGE_SUFFIXES, OperationsReply, Rejection, nullable, offset_periods,
                                  operations_schema, operations_to_reply, read_operations)
from lore.plan.prompt import PromptTemplate, load_prompt
from lore.plan.timeparse import parse_time
from lore.semantic.spec import GRAINS, METRIC_TIME
from lore.tables import table_key
from lore.types import Filter, Grounding, OrderBy, PlanOutcome, QueryPlan, RetrievalResult, Scalar, TimeWindow

if TYPE_CHECKING:  # pragma: no cover
    from lore.llm.chat import Reply, StructuredChat

#: what ``validate`` returns: None when the plan compiles and passes the guard, else the error text
Validator = Callable[[QueryPlan], "str | None"]

STATUSES = ("plan", "clarify", "refuse", "sql")
OPERATORS = ("=", "!=", "in", "not_in")
#: the signal a free-SQL plan carries (lower than any governed plan)
FREE_SQL_SIGNAL = 0.6
_TRUE = frozenset({"true", "yes", "1", "y", "t"})
_FALSE = frozenset({"false", "no", "0", "n", "f"})


# --- what the model may choose from ---------------------------------------------------------------


class Choices(BaseModel):
    """The names a plan may use for one question (the schema's enums) and the context shown with them."""

    model_config = ConfigDict(frozen=True)

    metrics: tuple[str, ...]
    dimensions: tuple[str, ...]
    filter_dimensions: tuple[str, ...]
    #: tables offered for free SQL (table -> columns), empty when free SQL is off
    tables: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: retrieval score of each metric (for the confidence signals)
    metric_scores: dict[str, float] = Field(default_factory=dict)
    #: values named in the question: (ref, value)
    values: tuple[tuple[str, str], ...] = ()
    #: dimensions the question itself names (by a label or synonym, or a time grain)
    named_dimensions: tuple[str, ...] = ()
    #: filter values the model may use: the values named in the question, the previous plan's, and those offered
    #: back to it after a rejection (lower case)
    allowed_values: frozenset[str] = frozenset()
    #: time ranges the question (or the previous plan) names, as ISO (start, end)
    dates: tuple[tuple[str | None, str | None], ...] = ()
    #: whether the question asks for an ordering, and the row limits it names ("top 5": 5; "which ... most": 1)
    ordered: bool = True
    limits: tuple[int, ...] = ()
    #: the entities a rate per entity or a threshold may count (the keys of the nodes the metrics reach)
    entities: tuple[str, ...] = ()
    #: the question (or the conversation) names two periods or an offset ("vs", "YoY"): a comparison may be planned
    compared: bool = False

    @property
    def orderable(self) -> tuple[str, ...]:
        changes = tuple(f"{m}{s}" for m in self.metrics for s in CHANGE_SUFFIXES) if self.compared else ()
        return self.metrics + changes + tuple(d for d in self.dimensions if d not in self.metrics)


def plan_schema(choices: Choices, *, allow_sql: bool = True, tight: bool = False) -> dict[str, Any]:
    """The JSON schema of a plan reply, names restricted to ``choices`` (strict-mode compatible).

    ``tight`` (for small models decoding under a grammar, e.g. llama.cpp) goes further: dimensions
    only among those the question names, filter values only among the values it names, dates only
    the ranges it names, and ``maxItems`` bounds (outside OpenAI's strict subset, so not the default).

    >>> c = Choices(metrics=("revenue",), dimensions=("stores.city", "metric_time:month"), filter_dimensions=("stores.city",))
    >>> s = plan_schema(c, allow_sql=False)
    >>> s["properties"]["metrics"]["items"]["enum"], s["properties"]["status"]["enum"]
    (['revenue'], ['plan', 'clarify', 'refuse'])
    >>> s["properties"]["filters"]["items"]["properties"]["dimension"]["enum"]
    ['stores.city']
    >>> sorted(s["required"]) == sorted(s["properties"]) and s["additionalProperties"] is False
    True
    """
    statuses = [s for s in STATUSES if allow_sql or s != "sql"]
    filter_dims = list(choices.filter_dimensions) or list(choices.dimensions) or ["none"]
    values: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    dims: dict[str, Any] = {"type": "array", "items": {"type": "string", "enum": list(choices.dimensions) or ["none"]}}
    orderable = list(choices.orderable)
    start: dict[str, Any] = nullable({"type": "string"})
    end: dict[str, Any] = nullable({"type": "string"})
    max_filters: int | None = None
    limit: dict[str, Any] = nullable({"type": "integer"})
    if tight:
        value_refs = list(dict.fromkeys(ref for ref, _ in choices.values))
        filter_dims = value_refs or ["none"]
        max_filters = len(value_refs)
        values = {"type": "array", "items": {"type": "string", "enum": [v for _, v in choices.values] or ["none"]},
                  "minItems": 1}
        named = list(choices.named_dimensions)
        dims = {"type": "array", "items": {"type": "string", "enum": named or ["none"]}, "maxItems": len(named)}
        orderable = [*choices.metrics, *named]
        starts = sorted({a for a, _ in choices.dates if a})
        ends = sorted({b for _, b in choices.dates if b})
        start = nullable({"type": "string", "enum": starts}) if starts else {"type": "null"}
        end = nullable({"type": "string", "enum": ends}) if ends else {"type": "null"}
        if not choices.ordered:
            orderable = []
        limit = nullable({"type": "integer", "enum": list(choices.limits)}) if choices.limits else {"type": "null"}
    filter_item = {
        "type": "object",
        "properties": {
            "dimension": {"type": "string", "enum": filter_dims},
            "operator": {"type": "string", "enum": list(OPERATORS)},
            "values": values,
        },
        "required": ["dimension", "operator", "values"],
        "additionalProperties": False,
    }
    filters: dict[str, Any] = {"type": "array", "items": filter_item}
    if max_filters is not None:
        filters["maxItems"] = max_filters
    props: dict[str, Any] = {
        "status": {"type": "string", "enum": statuses},
        "metrics": {"type": "array", "items": {"type": "string", "enum": list(choices.metrics) or ["none"]}},
        "dimensions": dims,
        "filters": filters,
        "start_date": start,
        "end_date": end,
        "order_by": nullable({"type": "string", "enum": orderable}) if orderable else {"type": "null"},
        "descending": {"type": "boolean"},
        "limit": limit,
        **operations_schema(choices.metrics, dims["items"]["enum"], choices.entities, filter_item, compared=choices.compared,
                            starts=sorted({a for a, _ in choices.dates if a}) if tight else (),
                            ends=sorted({b for _, b in choices.dates if b}) if tight else ()),
        "sql": nullable({"type": "string"}),
        "message": {"type": "string"},
    }
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


class FilterReply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    dimension: str
    operator: str = "="
    values: list[Scalar] = Field(default_factory=list)


class PlanReply(OperationsReply):
    """The model's reply, as parsed (names are checked against the choices afterwards)."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["plan", "clarify", "refuse", "sql"] = "plan"
    metrics: list[str] = Field(default_factory=list)
    dimensions: list[str] = Field(default_factory=list)
    filters: list[FilterReply] = Field(default_factory=list)
    start_date: str | None = None
    end_date: str | None = None
    order_by: str | None = None
    descending: bool = True
    limit: int | None = None
    sql: str | None = None
    message: str = ""


class Rejected(Exception):
    """A reply failed a check; ``message`` and ``alternatives`` go back to the model.

    ``offered`` are real values suggested in place of a wrong one: the model may use them on its next try.
    """

    def __init__(self, message: str, alternatives: Sequence[str] = (), *, offered: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.alternatives = list(alternatives)
        self.offered = list(offered)


@dataclass
class _Built:
    plan: QueryPlan
    signals: dict[str, float] = field(default_factory=dict)


# --- the planner ----------------------------------------------------------------------------------


class LLMPlanner:
    """Plans with a chat model, restricted to the catalog; see the module docstring."""

    name = "llm"

    @property
    def prompt_version(self) -> str:
        """The id of the prompt template this planner sends (recorded with every answer for fine-tuning)."""
        return self.template.id

    def __init__(
        self,
        catalog: Catalog,
        retriever: Any,
        model: StructuredChat,
        log: Any = None,
        validate: Validator | None = None,
        *,
        today: date,
        max_retries: int = 2,
        examples: int = 3,
        k_metrics: int = 4,
        k_dimensions: int = 6,
        k_filter_dimensions: int = 16,
        schema: Mapping[str, Mapping[str, str]] | None = None,
        allow_sql: bool = True,
        allow_rows: bool = False,
        sample_rows: Callable[[str], Sequence[Sequence[Scalar]]] | None = None,
        prompt: str = "plan_v2",
        repair_prompt: str = "repair_v1",
        values: Mapping[str, Sequence[str]] | None = None,
        tight_schema: bool | None = None,
    ) -> None:
        """``model`` is the :class:`~lore.llm.chat.StructuredChat` seam; ``log`` (an ExchangeLog) replaces its log
        when given; ``schema`` (table -> column -> type, the allow-listed tables) enables free SQL."""
        self.cat = catalog
        self.layer = catalog.layer
        self.retriever = retriever
        self.chat = model
        if log is not None:
            self.chat.log = log
        self.validate = validate
        self.today = today
        self.max_retries = max_retries
        self.examples = examples
        self.k_metrics = k_metrics
        self.k_dimensions = k_dimensions
        self.k_filter_dimensions = k_filter_dimensions
        self.schema = {t: dict(cols) for t, cols in (schema or {}).items()}
        self.allow_sql = allow_sql and bool(self.schema)
        self.allow_rows = allow_rows
        self.sample_rows = sample_rows
        #: the tightest schema (see :func:`plan_schema`); None: when the model decodes under a llama.cpp grammar
        self.tight_schema = tight_schema
        #: the indexed values per dimension (for the closest spellings of a wrong value)
        self.values = {ref: [str(v) for v in vals] for ref, vals in (values or {}).items()}
        self.template: PromptTemplate = load_prompt(prompt)
        self.repair: PromptTemplate = load_prompt(repair_prompt)

    @property
    def label(self) -> str:
        return f"llm:{self.chat.name}"

    # --- entry point -------------------------------------------------------------------
    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None,
             retrieval: RetrievalResult | None = None) -> PlanOutcome:
        """Plan ``question``; ``retrieval`` is the retrieve stage's result for it (searched here when not given)."""
        text = normalise(question)
        if not re.search(r"[A-Za-z0-9]", text):
            return PlanOutcome(status="clarify", message="Ask a question about your metrics.",
                               suggestions=tuple(list(self.layer.metrics)[:5]))
        why = safety_check(text)
        if why:  # unsafe text never reaches the model
            return PlanOutcome(status="refuse", message=f"I can't do that: {why}. I answer read-only questions "
                               "about the governed metrics.", signals={"safety": 0.0})

        choices = self.choices(text, previous, retrieval=retrieval)
        messages = self.template.render(self.prompt_values(text, choices, previous, retrieval=retrieval))
        return self._converse(text, messages, choices, previous, answer_id, attempts=self.max_retries + 1)

    def replan(self, question: str, previous: QueryPlan | None, failed: QueryPlan, error: str, *,
               answer_id: str | None = None, retrieval: RetrievalResult | None = None) -> PlanOutcome:
        """Once more, after ``failed`` (this planner's plan) passed every check but failed when it ran.

        The model sees its plan and the engine's error (with the valid choices) and gets one attempt.
        """
        text = normalise(question)
        choices = self.choices(text, previous, retrieval=retrieval)
        messages = [*self.template.render(self.prompt_values(text, choices, previous, retrieval=retrieval)),
                    ("assistant", json.dumps(plan_to_reply(failed))),
                    *self.repair.render({"error": f"the query failed when it ran: {error}",
                                         "alternatives": "Valid choices: " + "; ".join(self._alternatives(choices)) + "."})]
        return self._converse(text, messages, choices, previous, answer_id, attempts=1, first_attempt=2)

    def _converse(self, text: str, messages: list[tuple[str, str]], choices: Choices, previous: QueryPlan | None,
                  answer_id: str | None, *, attempts: int, first_attempt: int = 1) -> PlanOutcome:
        """Ask, check the reply, and send what is wrong back, up to ``attempts`` times."""
        tight = self.tight_schema if self.tight_schema is not None else self.chat.structured == "json_object_schema"
        schema = plan_schema(choices, allow_sql=self.allow_sql, tight=tight)
        problem = ""
        for attempt in range(first_attempt, first_attempt + attempts):
            reply = self.chat.complete(messages, schema, schema_name="query_plan", question=text, answer_id=answer_id,
                                       attempt=attempt, prompt_version=self.template.id)
            try:
                outcome = self._outcome(text, reply, choices, previous, attempt)
            except Rejected as rej:
                problem = rej.message
                if rej.offered:
                    choices = choices.model_copy(update={
                        "allowed_values": choices.allowed_values | {v.lower() for v in rej.offered}})
                self.chat.exchange(reply, "invalid", question=text, answer_id=answer_id, error=rej.message,
                                   attempt=attempt, prompt_version=self.template.id)
                alternatives = ("Valid choices: " + "; ".join(rej.alternatives) + ".") if rej.alternatives else ""
                messages = [*messages, ("assistant", reply.text or "(empty reply)"),
                            *self.repair.render({"error": rej.message, "alternatives": alternatives})]
                continue
            kind = {"refuse": "refused"}.get(outcome.status, "ok")
            self.chat.exchange(reply, kind, question=text, answer_id=answer_id, attempt=attempt,  # type: ignore[arg-type]
                               prompt_version=self.template.id)
            return outcome
        return PlanOutcome(
            status="clarify",
            message=f"I could not build a valid query for this question ({problem}). "
                    "Could you rephrase it, naming the metric you want?",
            suggestions=tuple(choices.metrics[:5]), signals={"llm_retries": 0.0})

    # --- choices and prompt ------------------------------------------------------------
    def choices(self, question: str, previous: QueryPlan | None = None, *,
                retrieval: RetrievalResult | None = None) -> Choices:
        """The metrics, dimensions and values this question's plan may use."""
        found = self._search(question, max(self.k_metrics, self.k_dimensions), ("metric", "dimension"), retrieval)
        scores: dict[str, float] = {}
        metrics: list[str] = []
        dims: list[str] = []
        tokens = tokenize(question)
        for m in find_phrases(tokens, self.cat.metric_index or self.cat.metric_entries):  # named outright: always offered
            metrics.append(m.ref)
            scores[m.ref] = max(scores.get(m.ref, 0.0), m.score)
        for hit in found.hits if found else ():
            if hit.kind == "metric" and hit.ref in self.layer.metrics:
                scores[hit.ref] = max(scores.get(hit.ref, 0.0), hit.score)
                if len([x for x in metrics if x != hit.ref]) < self.k_metrics:
                    metrics.append(hit.ref)
            elif hit.kind == "dimension" and self._groupable(hit.ref) and len(dims) < self.k_dimensions:
                dims.append(hit.ref)
        for m in find_phrases(tokens, self.cat.dimension_entries):
            if self._groupable(m.ref):
                dims.insert(0, m.ref)
        values = self._values_named(question, tokens, retrieval)
        if previous is not None:
            metrics += [m for m in previous.metrics if m not in metrics]
        facts = self.cat.facts_of([m for m in metrics if m in self.layer.metrics])
        if facts:  # a value of a dimension no candidate metric reaches cannot be one of this question's filters
            values = [(ref, v) for ref, v in values if any(self.cat.reachable([f], ref) for f in facts)]
        filter_dims = [ref for ref, _ in values]
        if previous is not None:
            dims += [d for d in previous.dimensions if not d.startswith(METRIC_TIME)]
            filter_dims += [f.ref for f in previous.filters if f.ref != METRIC_TIME]
        dims = list(dict.fromkeys(dims))
        filter_dims = list(dict.fromkeys([*filter_dims, *dims, *self._reachable(metrics)]))[: self.k_filter_dimensions]
        dims += [f"{METRIC_TIME}:{g}" for g in GRAINS]
        metrics = sorted(dict.fromkeys(metrics), key=lambda m: -scores.get(m, 0.0))  # best match first
        tables = self._tables(metrics, filter_dims) if self.allow_sql else {}
        named = self._named_dimensions(question, tokens, values, previous)
        if facts:
            named = [d for d in named if d.startswith(METRIC_TIME) or any(self.cat.reachable([f], d) for f in facts)]
        allowed = {v.lower() for _, v in values}
        if previous is not None:
            allowed |= {str(v).lower() for f in previous.filters for v in f.values}
        tp = parse_time(question, self.today)
        dates = [(r.start.isoformat() if r.start else None, r.end.isoformat() if r.end else None) for r in tp.ranges]
        dates += [(a.isoformat(), b.isoformat()) for a, b in offset_periods(tp)]
        compared = bool(tp.offsets) or len(tp.ranges) >= 2 or (previous is not None and (
            previous.compare is not None or (previous.time is not None and bool(tp.ranges))))
        if previous is not None and previous.time is not None:
            dates.append((previous.time.start.isoformat() if previous.time.start else None,
                          previous.time.end.isoformat() if previous.time.end else None))
        if previous is not None:
            values += [(f.ref, str(v)) for f in previous.filters if f.ref != METRIC_TIME
                       for v in f.values if not isinstance(v, bool)]
        ordered, limits = ranking(question)
        if previous is not None and previous.order_by:
            ordered = True
            limits = limits or ((previous.limit,) if previous.limit else ())
        return Choices(ordered=ordered, limits=limits, entities=tuple(self._entities(metrics)), compared=compared,
                       metrics=tuple(metrics), dimensions=tuple(dict.fromkeys([*dims, *named])),
                       filter_dimensions=tuple(filter_dims), tables=tables, metric_scores=scores,
                       values=tuple(dict.fromkeys(values)), named_dimensions=tuple(named),
                       allowed_values=frozenset(allowed), dates=tuple(dict.fromkeys(dates)))

    def _named_dimensions(self, question: str, tokens: Sequence[Any], values: Sequence[tuple[str, str]],
                          previous: QueryPlan | None) -> list[str]:
        """Dimensions the question names (a label or synonym, or a time grain), and the previous plan's."""
        stems = [t.stem for t in tokens]
        metric_spans = [(m.start, m.end) for m in find_phrases(list(tokens), self.cat.metric_index or self.cat.metric_entries)]

        def inside_metric(i: int, n: int) -> bool:  # "game" in "game installs" names the metric, not the dimension
            return any(a <= i and i + n <= b and b - a > n for a, b in metric_spans)

        out: list[str] = []
        for entry in self.cat.dimension_entries:
            n = len(entry.phrase)
            if self._groupable(entry.ref) and any(tuple(stems[i:i + n]) == entry.phrase and not inside_metric(i, n)
                                                  for i in range(len(stems) - n + 1)):
                out.append(entry.ref)
        out += [f"{METRIC_TIME}:{g.grain}" for g in parse_time(question, self.today).grains]
        if previous is not None:
            out += list(previous.dimensions)
        return list(dict.fromkeys(out))

    def _reachable(self, metrics: Sequence[str]) -> list[str]:
        """Categorical attributes every fact of ``metrics`` reaches through safe links (filter candidates)."""
        facts = self.cat.facts_of([m for m in metrics[:2] if m in self.layer.metrics])
        if not facts:
            return []
        out = []
        for node in self.layer.nodes.values():
            if all(node.name in self.cat.reach.get(f, {}) for f in facts):
                out += [f"{node.name}.{c.name}" for c in node.columns if c.kind in ("categorical", "boolean")]
        return out

    def _entities(self, metrics: Sequence[str]) -> list[str]:
        """The keys of the nodes every fact of ``metrics`` is or reaches (a rate per entity or a threshold counts
        them: "per customer", "accounts that streamed more than 10 hours")."""
        facts = self.cat.facts_of([m for m in metrics[:2] if m in self.layer.metrics])
        return [f"{n.name}.{n.primary_key[0]}" for n in self.layer.nodes.values()
                if facts and len(n.primary_key) == 1
                and all(n.name == f or n.name in self.cat.reach.get(f, {}) for f in facts)]

    def _groupable(self, ref: str) -> bool:
        col = self.cat.column(ref)
        return col is not None and col.kind in ("categorical", "boolean")

    def _search(self, text: str, k: int, kinds: tuple[str, ...], retrieval: RetrievalResult | None) -> RetrievalResult | None:
        """The best ``k`` documents of ``kinds`` for ``text``: from the retrieve stage's result when it holds them."""
        if retrieval is not None and retrieval.serves(text, k, kinds):
            return retrieval.top(k, kinds)
        return self.retriever.search(text, k=k, kinds=list(kinds)) if self.retriever is not None else None

    def _values_named(self, question: str, tokens: Sequence[Any],
                      retrieval: RetrievalResult | None = None) -> list[tuple[str, str]]:
        """Values mentioned verbatim, except inside a longer metric phrase ("product" in "product sales")."""
        named = find_phrases(list(tokens), self.cat.metric_index or self.cat.metric_entries)
        metric_spans = [(tokens[m.start].start, tokens[m.end - 1].end) for m in named]
        out: list[tuple[str, str]] = []
        if retrieval is not None and retrieval.question == question and retrieval.values is not None:
            mentioned: Sequence[Any] = retrieval.values
        else:
            mentioned = self.retriever.match_values(question) if self.retriever is not None else ()
        if mentioned:
            for m in mentioned:
                inside = any(s <= m.span[0] and m.span[1] <= e and (e - s) > (m.span[1] - m.span[0]) for s, e in metric_spans)
                if m.score >= 0.5 and not inside:
                    out.append((m.ref, m.value))
        if self.cat.alias_matcher is not None:
            for m in self.cat.alias_matcher.match(question):
                value = self.cat.aliases.get((m.ref, m.value.lower()))
                if value is not None:
                    out.append((m.ref, value))
        return list(dict.fromkeys(out))

    def _tables(self, metrics: Sequence[str], dims: Sequence[str]) -> dict[str, tuple[str, ...]]:
        nodes = set(self.cat.facts_of([m for m in metrics if m in self.layer.metrics]))
        for fact in list(nodes):
            nodes |= set(self.cat.reach.get(fact, {}))
        nodes |= {d.split(".")[0] for d in dims}
        tables = {self.layer.nodes[n].table for n in nodes if n in self.layer.nodes and self.layer.nodes[n].table}
        # the layer and the schema may spell a table differently (case, a "main." prefix): match them normalised
        known = {table_key(name): name for name in self.schema}
        return {t: tuple(self.schema[known[table_key(t)]]) for t in sorted(tables) if table_key(t) in known}

    def prompt_values(self, question: str, choices: Choices, previous: QueryPlan | None, *,
                      retrieval: RetrievalResult | None = None) -> dict[str, str]:
        """The text pasted into the template: definitions, values, time hint, examples, previous plan."""
        metrics = []
        for name in choices.metrics:
            m = self.layer.metrics[name]
            unit = f" ({m.unit})" if m.unit else ""
            metrics.append(f"- {name}: {m.display}{unit}. {m.description.strip()}".rstrip())
        dims = []
        for ref in choices.dimensions:
            if ref.startswith(METRIC_TIME):
                continue
            col = self.cat.column(ref)
            if col is None:
                continue
            desc = f" {col.description.strip()}" if col.description else ""
            samples = f" e.g. {', '.join(col.sample_values[:4])}." if col.sample_values else ""
            dims.append(f"- {ref}: {col.display}.{desc}{samples}".rstrip())
        dims.append(f"- {METRIC_TIME}:day|week|month|quarter|year: each metric's own date, by that grain.")
        only_filters = [r for r in choices.filter_dimensions if r not in choices.dimensions]
        if only_filters:
            dims.append("Also filterable: " + ", ".join(only_filters) + ".")
        values = [f'- "{v}" is a value of {ref}' for ref, v in choices.values] or ["- none: use []"]
        grouping = [f"- {ref}" for ref in choices.named_dimensions] or ["- none: use [] unless the question asks which, top or per"]
        tp = parse_time(question, self.today)
        times = [f'- "{question[r.span[0]:r.span[1]].strip()}" means {r.start or "open"} to {r.end or "open"} ({r.label})'
                 for r in tp.ranges] or ["- the question names no time range: use null dates"]
        times += [f'- "{question[o.span[0]:o.span[1]].strip()}" compares with an earlier period: '
                  + " or ".join(f"{a} to {b}" for a, b in offset_periods(tp.model_copy(update={"offsets": (o,)})))
                  for o in tp.offsets if offset_periods(tp.model_copy(update={"offsets": (o,)}))]
        return {
            "today": self.today.isoformat(),
            "metrics": "\n".join(metrics) or "- none found: answer with status clarify",
            "dimensions": "\n".join(dims),
            "values": "\n".join(values),
            "grouping": "\n".join(grouping),
            "entities": "\n".join(f"- {e}" for e in choices.entities) or "- none: use null",
            "time": "\n".join(times),
            "examples": self._examples_text(question, retrieval),
            "previous": self._previous_text(previous),
            "tables": self._tables_text(choices),
            "question": question,
        }

    def _examples_text(self, question: str, retrieval: RetrievalResult | None = None) -> str:
        if self.retriever is None or self.examples <= 0:
            return ""
        found = self._search(question, self.examples, ("example",), retrieval)
        hits = found.of_kind("example") if found is not None else []
        lines = []
        for hit in hits[: self.examples]:
            if hit.score < 0.5:
                continue
            example = self.retriever.example(hit.ref)
            if example is None:
                continue
            try:
                plan = QueryPlan.model_validate_json(example.plan_json)
            except ValidationError:
                continue
            lines.append(f"Question: {example.question}\n{json.dumps(plan_to_reply(plan))}")
        return ("\nVerified examples (questions answered correctly before):\n" + "\n".join(lines) + "\n") if lines else ""

    def _previous_text(self, previous: QueryPlan | None) -> str:
        if previous is None:
            return ""
        return ("\nThe previous question's plan (if this question continues it, keep what it does not change):\n"
                + json.dumps(plan_to_reply(previous)) + "\n")

    def _tables_text(self, choices: Choices) -> str:
        if not choices.tables:
            return ""
        lines = []
        for table, cols in choices.tables.items():
            lines.append(f"- {table}({', '.join(cols)})")
            if self.allow_rows and self.sample_rows is not None:
                for row in list(self.sample_rows(table))[:3]:
                    lines.append(f"    sample row: {json.dumps(list(row), default=str)}")
        return "\nTables for status sql (only when no metric fits):\n" + "\n".join(lines) + "\n"

    # --- checking a reply --------------------------------------------------------------
    def _outcome(self, question: str, reply: Reply, choices: Choices, previous: QueryPlan | None,
                 attempt: int) -> PlanOutcome:
        if reply.data is None:
            raise Rejected(f"the reply was not a JSON object ({reply.parse_error}).")
        try:
            parsed = PlanReply.model_validate(reply.data)
        except ValidationError as err:
            raise Rejected("the JSON does not follow the schema: " + _validation_text(err),
                           [f"status one of {', '.join(STATUSES)}"]) from None
        parsed = normalise_reply(parsed)
        if parsed.status == "refuse":
            return PlanOutcome(status="refuse", message=parsed.message or "The model declined this question.",
                               signals={"safety": 0.0})
        if parsed.status == "clarify":
            return PlanOutcome(status="clarify", message=parsed.message or "Which metric do you mean?",
                               suggestions=tuple(choices.metrics[:5]), signals={"llm_clarify": 1.0})
        built = self._free_sql(parsed, choices) if parsed.status == "sql" else self._governed(question, parsed, choices, previous)
        if self.validate is not None:
            error = self.validate(built.plan)
            if error:
                raise Rejected(error, self._alternatives(choices))
        signals = dict(built.signals)
        signals["llm_attempts"] = round(1.0 / attempt, 4)
        return PlanOutcome(status="plan", plan=built.plan, message=parsed.message, signals=signals)

    def _alternatives(self, choices: Choices) -> list[str]:
        return [f"metrics {', '.join(choices.metrics)}", f"dimensions {', '.join(choices.dimensions)}"]

    def _free_sql(self, parsed: PlanReply, choices: Choices) -> _Built:
        if not self.allow_sql:
            raise Rejected("status sql is not allowed here; use the listed metrics or status clarify.")
        sql = (parsed.sql or "").strip()
        if not sql:
            raise Rejected("status sql needs one SELECT statement in \"sql\".",
                           [f"tables {', '.join(choices.tables)}"])
        plan = QueryPlan(planner=self.label, sql=sql, notes=(
            "The model wrote this SQL itself because no governed metric expresses the question; "
            "treat the numbers with care.",))
        return _Built(plan, {"free_sql": FREE_SQL_SIGNAL, "metric_match": FREE_SQL_SIGNAL, "coverage": 0.8})

    def _governed(self, question: str, parsed: PlanReply, choices: Choices, previous: QueryPlan | None = None) -> _Built:
        metrics = list(dict.fromkeys(parsed.metrics))
        if not metrics:
            raise Rejected("a plan needs at least one metric (or status clarify).", [f"metrics {', '.join(choices.metrics)}"])
        unknown = [m for m in metrics if m not in choices.metrics]
        if unknown:
            raise Rejected(f"unknown metric {', '.join(unknown)}.", [f"metrics {', '.join(choices.metrics)}"])
        dims = list(dict.fromkeys(parsed.dimensions))
        bad = [d for d in dims if d not in choices.dimensions]
        if bad:
            raise Rejected(f"unknown dimension {', '.join(bad)}.", [f"dimensions {', '.join(choices.dimensions)}"])
        shown = {i.get("dimension") for i in parsed.share.show_only if isinstance(i, dict)} if parsed.share else set()
        unasked = [d for d in dims if d not in choices.named_dimensions and d not in shown]  # (a share's segments
        # are named by their values: "what % came from online orders" breaks down by their kind to take the whole)
        if unasked:
            named = list(choices.named_dimensions)
            raise Rejected(f"the question does not ask to group by {', '.join(unasked)}: remove it.",
                           [f"dimensions the question names: {', '.join(named)}" if named else "dimensions: [] (one number)"])
        groundings = [Grounding(kind="metric", ref=m, phrase=question, source=f"read by the model {self.chat.name}",
                                score=round(choices.metric_scores.get(m, 0.5), 4)) for m in metrics]
        groundings += [Grounding(kind="grain" if d.startswith(METRIC_TIME) else "dimension", ref=d, phrase=question,
                                 source="llm") for d in dims]
        filters, value_score, notes = self._filters(parsed.filters, choices, groundings)
        time = self._time(question, parsed, groundings, previous)
        order, limit = self._order(parsed, metrics, dims, choices)
        plan = QueryPlan(metrics=tuple(metrics), dimensions=tuple(dims), filters=tuple(filters), time=time,
                         order_by=order, limit=limit, groundings=tuple(groundings), planner=self.label,
                         notes=tuple(notes))

        def ground(items: list[dict[str, Any]]) -> list[Filter]:
            try:
                replies = [FilterReply.model_validate(i) for i in items]
            except ValidationError as err:
                raise Rejected("share.show_only: " + _validation_text(err)) from None
            return self._filters(replies, choices, groundings)[0]

        try:
            plan = read_operations(parsed, plan, metrics=choices.metrics, entities=choices.entities,
                                   compared=choices.compared, iso=_iso, ground=ground)
        except Rejection as rej:
            raise Rejected(rej.message, rej.alternatives) from None
        if plan.groundings != tuple(groundings):
            plan = plan.model_copy(update={"groundings": tuple(groundings)})
        metric_match = min(max(choices.metric_scores.get(m, 0.5), 0.5) for m in metrics)
        evidence = min(choices.metric_scores.get(m, 0.0) for m in metrics)
        return _Built(plan, {"metric_match": round(min(metric_match, 0.95), 4), "coverage": 0.9,
                             "value_match": round(value_score, 4), "metric_evidence": round(evidence, 4)})

    def _filters(self, replies: Sequence[FilterReply], choices: Choices,
                 groundings: list[Grounding]) -> tuple[list[Filter], float, list[str]]:
        filters: list[Filter] = []
        notes: list[str] = []
        score = 1.0
        for fr in replies:
            if fr.dimension not in choices.filter_dimensions:
                raise Rejected(f"cannot filter on {fr.dimension}.",
                               [f"filter dimensions {', '.join(choices.filter_dimensions)}"])
            if fr.operator not in OPERATORS:
                raise Rejected(f"unknown operator {fr.operator!r}.", [f"operators {', '.join(OPERATORS)}"])
            if not fr.values:
                raise Rejected(f"the filter on {fr.dimension} has no values.")
            ref = fr.dimension
            col = self.cat.column(ref)
            if col is not None and col.kind == "boolean" and ref not in choices.named_dimensions:
                raise Rejected(f"the question does not name {ref}: remove that filter.")
            values: list[Scalar] = []
            for raw in fr.values:
                got_ref, value, how = self.ground_value(ref, raw)
                if str(value).lower() not in choices.allowed_values and not isinstance(value, bool):
                    named = [f"{v} ({r})" for r, v in choices.values]
                    raise Rejected(f"the question does not name the value “{raw}”: filter only on values it names.",
                                   [f"values named: {', '.join(named)}" if named else "filters: [] (no value is named)"])
                if got_ref != ref:
                    notes.append(f"“{raw}” is a value of {self.cat.dimension_label(got_ref)}, so the filter uses that.")
                    ref = got_ref
                values.append(value)
                score = min(score, 1.0 if how == "exact" else 0.95)
            values = list(dict.fromkeys(values))
            negative = fr.operator in ("!=", "not_in")
            op = ("not_in" if negative else "in") if len(values) > 1 else ("!=" if negative else "=")
            f = Filter(ref=ref, op=op, values=tuple(values))  # type: ignore[arg-type]
            if f not in filters:
                filters.append(f)
                groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=", ".join(str(v) for v in fr.values),
                                            source="value (checked in the value index)"))
        return filters, score, notes

    def ground_value(self, ref: str, raw: Scalar) -> tuple[str, Scalar, str]:
        """The real value (and its dimension) a model's value names; raises :class:`Rejected` with the closest ones."""
        col = self.cat.column(ref)
        text = str(raw).strip()
        if col is not None and col.kind == "boolean":
            low = text.lower()
            if low in _TRUE or low in _FALSE:
                return ref, low in _TRUE, "exact"
            raise Rejected(f"{ref} is yes/no: use the value true or false, not {text!r}.")
        alias = self.cat.aliases.get((ref, text.lower()))
        if alias is not None:
            return ref, alias, "alias"
        matches = [m for m in self.retriever.match_values(text)
                   if m.span[0] == 0 and m.span[1] >= len(text)] if self.retriever is not None else []
        same = [m for m in matches if m.ref == ref]
        if same:
            best = next((m for m in same if m.value == text), same[0])
            return ref, best.value, "exact" if best.value == text else "case"
        others = list(dict.fromkeys(m.ref for m in matches))
        if len(others) == 1:
            best = matches[0]
            return best.ref, best.value, "exact" if best.value == text else "case"
        closest = self._closest_values(ref, text)
        raise Rejected(f"“{text}” is not a value of {ref}.",
                       [f"closest real values: {', '.join(v for v, _ in closest)}"] if closest else [],
                       offered=[v for _, v in closest])

    def _closest_values(self, ref: str, text: str) -> list[tuple[str, str]]:
        """Up to five real values near ``text``: (as shown, the value); close spellings of ``ref``'s values first,
        then the value index's nearest (of ``ref``, else of any dimension)."""
        known = self.values.get(ref, [])
        by_lower = {v.lower(): v for v in known}
        spelled = [by_lower[m] for m in difflib.get_close_matches(text.lower(), list(by_lower), n=5, cutoff=0.6)]
        out = [(v, v) for v in spelled]
        if self.retriever is not None and len(out) < 5:
            hits = self.retriever.search(text, k=12, kinds=["value"]).of_kind("value")
            same = [(h.value, h.value) for h in hits if h.ref == ref and h.value and h.value not in spelled]
            other = [(f"{h.value} ({h.ref})", h.value) for h in hits if h.ref != ref and h.value]
            out += same or ([] if out else other)
        return out[:5]

    def _time(self, question: str, parsed: PlanReply, groundings: list[Grounding],
              previous: QueryPlan | None = None) -> TimeWindow | None:
        start = _iso(parsed.start_date, "start_date")
        end = _iso(parsed.end_date, "end_date")
        if start is None and end is None:
            return None
        if start is not None and end is not None and start > end:
            raise Rejected(f"start_date {start} is after end_date {end}.")
        tp = parse_time(question, self.today)
        label = f"{start or '…'} to {end or '…'}"
        phrase = "(model)"
        for r in tp.ranges:
            if (r.start, r.end) == (start, end):
                label, phrase = r.label, question[r.span[0]:r.span[1]].strip()
                break
        else:
            kept = previous is not None and previous.time is not None and (previous.time.start, previous.time.end) == (start, end)
            if kept:
                label, phrase = previous.time.label or label, "previous question"  # type: ignore[union-attr]
            elif not tp.ranges and not re.search(r"\d", question):
                raise Rejected("the question names no time range: use null for start_date and end_date.")
        groundings.append(Grounding(kind="time", ref=label, phrase=phrase, source="llm"))
        return TimeWindow(start=start, end=end, label=label)

    def _order(self, parsed: PlanReply, metrics: list[str], dims: list[str],
               choices: Choices) -> tuple[tuple[OrderBy, ...], int | None]:
        non_time = [d for d in dims if not d.startswith(METRIC_TIME)]
        if not non_time or not choices.ordered:  # a single number, a time series, or no ranking asked for
            return (), None
        if choices.limits and parsed.limit not in choices.limits:  # "top 5" means 5, whatever the model wrote
            parsed = parsed.model_copy(update={"limit": choices.limits[0]})
        ref = parsed.order_by
        if ref is None or ref in ("none", ""):
            if parsed.limit is None:
                return (), None
            ref = metrics[0]
        changes = [f"{m}{s}" for m in metrics for s in CHANGE_SUFFIXES]
        if ref not in metrics and ref not in dims and ref not in changes:
            raise Rejected(f"order_by {ref} is not in the plan.", [f"order by one of {', '.join(metrics + dims)}"])
        return (OrderBy(ref=ref, descending=parsed.descending),), parsed.limit


_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
            "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20}
_TOP_N = re.compile(r"\b(?:top|bottom|best|worst|first|last|highest|lowest|largest|smallest|biggest)\s+(\d{1,4}|"
                    + "|".join(_NUMBERS) + r")\b", re.I)
_RANKING = re.compile(r"\b(top|bottom|best|worst|highest|lowest|most|least|fewest|largest|smallest|biggest|"
                      r"rank(?:ed|ing)?|sort(?:ed)?|order(?:ed)?|leading|greatest|maximum|minimum)\b", re.I)
_WHICH = re.compile(r"\b(which|what|who)\b", re.I)


def ranking(question: str) -> tuple[bool, tuple[int, ...]]:
    """Whether the question asks for an ordering, and the row limits it names.

    >>> ranking("top 3 products by units sold"), ranking("Which store sold the most jaffles?")
    ((True, (3,)), (True, (1,)))
    >>> ranking("revenue by city in 2026"), ranking("rank stores by revenue")
    ((False, ()), (True, ()))
    """
    limits = [int(n) if n.isdigit() else _NUMBERS[n.lower()] for n in _TOP_N.findall(question)]
    if not _RANKING.search(question):
        return False, ()
    if not limits and _WHICH.search(question) and re.search(r"\b(most|least|highest|lowest|fewest|best|worst|biggest|"
                                                           r"largest|smallest|top|leading|greatest)\b", question, re.I):
        limits = [1]
    return True, tuple(dict.fromkeys(limits))


def normalise_reply(reply: PlanReply) -> PlanReply:
    """Read a small model's near-misses the way it meant them.

    A status ``sql`` that also names metrics is a plan (the governed metric wins over free SQL: small
    coding models reach for SQL first); a plan without metrics but with SQL is free SQL; a limit below 1
    means none.

    >>> normalise_reply(PlanReply(status="sql", metrics=["revenue"], limit=0)).model_dump(include={"status", "limit"})
    {'status': 'plan', 'limit': None}
    """
    update: dict[str, Any] = {}
    has_sql = bool((reply.sql or "").strip())
    if reply.status == "sql" and reply.metrics:
        update["status"] = "plan"
        update["sql"] = None
    elif reply.status == "plan" and has_sql and not reply.metrics:
        update["status"] = "sql"
    if reply.limit is not None and reply.limit < 1:
        update["limit"] = None
    if reply.limit is not None and reply.limit > 10_000:
        update["limit"] = 10_000
    return reply.model_copy(update=update) if update else reply


def _text(value: Scalar) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _iso(value: str | None, name: str) -> date | None:
    if value is None or not str(value).strip() or str(value).strip().lower() in ("null", "none"):
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise Rejected(f"{name} must be a date like 2026-01-31 or null, got {value!r}.") from None


def _validation_text(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5])


def plan_to_reply(plan: QueryPlan) -> dict[str, Any]:
    """A plan in the reply format the model writes (for examples and the previous turn).

    >>> from lore.types import QueryPlan, Filter
    >>> plan_to_reply(QueryPlan(metrics=("revenue",), filters=(Filter(ref="stores.city", values=("Chicago",)),)))["filters"]
    [{'dimension': 'stores.city', 'operator': '=', 'values': ['Chicago']}]
    """
    order = plan.order_by[0] if plan.order_by else None
    return {
        "status": "sql" if plan.sql else "plan",
        "metrics": list(plan.metrics),
        "dimensions": list(plan.dimensions),
        "filters": [{"dimension": f.ref, "operator": f.op, "values": [_text(v) for v in f.values]}
                    for f in plan.filters if f.ref != METRIC_TIME],
        "start_date": plan.time.start.isoformat() if plan.time and plan.time.start else None,
        "end_date": plan.time.end.isoformat() if plan.time and plan.time.end else None,
        "order_by": order.ref if order else None,
        "descending": order.descending if order else True,
        "limit": plan.limit,
        **operations_to_reply(plan),
        "sql": plan.sql,
        "message": "",
    }


__all__ = ["Choices", "LLMPlanner", "PlanReply", "Rejected", "plan_schema", "plan_to_reply"]
