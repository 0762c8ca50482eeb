"""The example planner: a verified question -> plan pair answers the same question again.

Verified examples come from the feedback loop (a thumbs up or a correction,
verified by a reviewer or the operator's policy) and sit in the retrieval
index. Before the offline or LLM planner runs, :meth:`ExamplePlanner.plan`
looks for one that means the same as the question:

- **exact**: the question's words equal the example's (case, punctuation and
  spacing aside);
- **near**: the example is similar (vector score at least
  :data:`NEAR_SIMILARITY`) *and* both questions have the same
  :class:`Signature`: the metrics and dimensions they name, the values they
  mention, their time ranges (resolved against today) and grains, their
  numbers, the words that change a meaning (negation, ranking, comparison,
  "many"/"much" unless a metric follows), what each negation applies to, and
  every other content word. So "sales in Chicago" never reuses "sales in
  Brooklyn", "top 5" never reuses "top 10", "by store" never reuses "by product".

A match answers from the verified plan directly: a grounding of kind
``example``, the signal ``example: 1.0`` and a note saying how it matched. A
relative time ("last month") is re-resolved against today when the plan's
window came from that phrase; a stale window that cannot be re-resolved is
not reused. Anything else falls through to the next planner, which gets the
nearest examples as few-shot examples (:func:`few_shot_examples`).

:class:`VerifiedExamples` is a view's face of all this (``lore.examples``): the example planner, the nearest
examples, and the index kept in step with the feedback store.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, Protocol

from lore.errors import LoreError
from lore.plan.catalog import FILLER, Catalog, find_phrases, tokenize
from lore.plan.offline import normalise, safety_check
from lore.plan.timeparse import TimeParse, parse_time
from lore.plan.words import NUMBER_WORDS
from lore.retrieve.documents import Example
from lore.retrieve.lexical import STOP_WORDS, stem
from lore.semantic.spec import METRIC_TIME
from lore.types import Grounding, PlanOutcome, QueryPlan, RetrievalResult, TimeWindow

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

#: the least vector similarity for a near match (signatures must also be equal)
NEAR_SIMILARITY = 0.8
#: how many example hits are considered
CANDIDATES = 5
#: the least retrieval score for a few-shot example
FEW_SHOT_MIN_SCORE = 0.35



def _stems(text: str) -> frozenset[str]:
    """The stems of space-separated words.

    >>> sorted(_stems("excluding exclude"))
    ['exclud']
    """
    return frozenset(stem(w) for w in text.split())


#: words that turn a request around: what follows them is excluded
NEGATION = _stems("not no excluding exclude excluded except without non besides minus other")
#: words that change what is computed or kept even when every entity is the same
MARKS = NEGATION | _stems(
    "top bottom most least highest lowest largest smallest biggest best worst fewest max maximum min minimum "
    "average avg mean median share percent percentage rate ratio growth change compare comparison versus vs "
    "difference distinct unique cumulative running more less fewer greater above below under exceed exceeding "
    "increase decrease drop rise"
)
#: "how many" / "how much": they tell quantities apart unless a metric follows ("how many hours")
QUANTITY = _stems("many much often long")
#: content words that do not change what is asked
NEUTRAL = _stems(
    "during within across show see tell give list get please data value values figure figures number numbers "
    "stats statistics report breakdown broken break split group grouped look like just only overall total sum "
    "amount metric kpi chart plot graph table what's whats did does do was were is are been"
) | frozenset(FILLER) | frozenset(STOP_WORDS)



class ExampleSearcher(Protocol):
    """What the example planner needs from retrieval (:class:`lore.retrieve.Retriever` fits)."""

    def search(self, question: str, *, k: int = 8, kinds: Collection[str] | None = None) -> Any: ...

    def example(self, example_id: str) -> Example | None: ...

    def match_values(self, question: str) -> Any: ...

    def count(self, kind: str | None = None) -> int: ...


def question_key(question: str) -> str:
    """The question's words, lower-cased, without punctuation: equal keys are the same question.

    >>> question_key("  Total product sales by Store, in 2026? ")
    'total product sales by store in 2026'
    >>> question_key("total\\u200b product sales by store in 2026") == question_key("Total product sales by store in 2026")
    True
    """
    text = unicodedata.normalize("NFKC", normalise(question)).casefold()
    return " ".join(re.findall(r"[^\W_]+(?:[-'.][^\W_]+)*", text))


@dataclass(frozen=True)
class Signature:
    """What a question names and asks, independent of how it is worded (see the module docstring)."""

    metrics: frozenset[str]
    dimensions: frozenset[str]
    values: frozenset[str]
    ranges: tuple[tuple[date | None, date | None], ...]
    grains: tuple[str, ...]
    numbers: tuple[int, ...]
    marks: frozenset[str]
    negated: tuple[str, ...]
    words: frozenset[str]


def signature(question: str, catalog: Catalog, searcher: ExampleSearcher | None, today: date,
              parsed: TimeParse | None = None) -> Signature:
    """The :class:`Signature` of a question (pure but for the value lookup of ``searcher``)."""
    text = normalise(question)
    tp = parsed if parsed is not None else parse_time(text, today)
    tokens = tokenize(text)
    spans = [r.span for r in tp.ranges] + [g.span for g in tp.grains]
    in_time = {i for i, t in enumerate(tokens) if any(s <= t.start and t.end <= e for s, e in spans)}
    masked = "".join(" " if any(s <= i < e for s, e in spans) else ch for i, ch in enumerate(text))

    # metric and dimension phrases and value mentions compete for words: the longer mention wins
    mentions: list[tuple[int, int, int, str, str]] = []  # (start, end, rank, kind, item)
    for rank, (kind, entries) in enumerate((("metric", catalog.metric_entries), ("dimension", catalog.dimension_entries))):
        for m in find_phrases(tokens, entries, taken=in_time):
            mentions.append((m.start, m.end, rank, kind, m.ref))
    for hit in _value_hits(masked, catalog, searcher):
        idx = [i for i, t in enumerate(tokens) if hit.span[0] <= t.start and t.end <= hit.span[1]]
        if not idx or set(idx) & in_time or _weak_value(text[hit.span[0]:hit.span[1]]):
            continue
        mentions.append((idx[0], idx[-1] + 1, 2, "value", f"{hit.ref}={str(hit.value).lower()}"))
    mentions.sort(key=lambda m: (-(m[1] - m[0]), m[2], m[0]))
    items: dict[int, str] = {}
    metric_at: set[int] = set()
    found: dict[str, set[str]] = {"metric": set(), "dimension": set(), "value": set()}
    for start, end, _, kind, item in mentions:
        span = range(start, end)
        if any(i in items for i in span):
            continue
        found[kind].add(item)
        for i in span:
            items[i] = item
            if kind == "metric":
                metric_at.add(i)
    taken = in_time | set(items)

    numbers: list[int] = []
    marks: set[str] = set()
    words: set[str] = set()
    negated: list[str] = []
    for i, tok in enumerate(tokens):
        if i in taken:
            continue
        low = tok.text.lower()
        if low.isdigit() or low in NUMBER_WORDS:
            numbers.append(int(low) if low.isdigit() else NUMBER_WORDS[low])
        elif tok.stem in MARKS or (tok.stem in QUANTITY and i + 1 not in metric_at):
            marks.add(tok.stem)
            if tok.stem in NEGATION:
                negated.append(next((items[j] for j in range(i + 1, len(tokens)) if j in items), ""))
        elif tok.stem not in NEUTRAL and low not in NEUTRAL and tok.stem not in QUANTITY:
            words.add(tok.stem)
    return Signature(
        metrics=frozenset(found["metric"]),
        dimensions=frozenset(found["dimension"]),
        values=frozenset(found["value"]),
        ranges=tuple((r.start, r.end) for r in tp.ranges),
        grains=tuple(sorted({g.grain for g in tp.grains})),
        numbers=tuple(sorted(numbers)),
        marks=frozenset(marks),
        negated=tuple(negated),
        words=frozenset(words),
    )


def _value_hits(text: str, catalog: Catalog, searcher: ExampleSearcher | None) -> list[Any]:
    """Values mentioned verbatim, and other names of values ("Philly" for Philadelphia) as the real value."""
    hits = list(searcher.match_values(text)) if searcher is not None else []
    if catalog.alias_matcher is not None:
        for hit in catalog.alias_matcher.match(text):
            real = catalog.aliases.get((hit.ref, hit.value.lower()))
            if real is not None:
                hits.append(type(hit)(hit.ref, real, hit.span, hit.score))
    return hits


def _weak_value(mention: str) -> bool:
    """A value that is also a common word, written in lower case ("in", "us"), is not read as a value.

    >>> _weak_value("in"), _weak_value("IN"), _weak_value("Chicago")
    (True, False, False)
    """
    return mention.lower() in STOP_WORDS and not mention.isupper()


@dataclass(frozen=True)
class ExampleMatch:
    """A verified example that means the same as the question."""

    example: Example
    how: Literal["exact", "near"]
    similarity: float


def example_plan(example: Example) -> QueryPlan:
    """The verified plan stored with an example.

    >>> example_plan(Example(id="e1", question="q", plan_json='{"metrics": ["order_count"]}')).metrics
    ('order_count',)
    """
    return QueryPlan.model_validate_json(example.plan_json)


def few_shot_examples(searcher: ExampleSearcher, question: str, *, k: int = 3,
                      min_score: float = FEW_SHOT_MIN_SCORE) -> list[Example]:
    """The verified examples nearest to ``question``, best first (for an LLM planner's prompt).

    Returns ``[]`` at no cost when the index holds no example.
    """
    if k <= 0 or not question.strip() or searcher.count("example") == 0:
        return []
    out: list[Example] = []
    for hit in searcher.search(question, k=k, kinds=["example"]).hits:
        example = searcher.example(hit.ref)
        if example is not None and hit.score >= min_score:
            out.append(example)
    return out


class ExamplePlanner:
    """Answers a question from a verified example that means the same (see the module docstring)."""

    name = "example"

    def __init__(self, searcher: ExampleSearcher, catalog: Catalog, today: date) -> None:
        self.searcher = searcher
        self.catalog = catalog
        self.today = today

    def match(self, question: str, retrieval: RetrievalResult | None = None) -> ExampleMatch | None:
        """The verified example that means the same as ``question``, if any (``retrieval``: the retrieve stage's
        result for it, searched here when not given or not for these words)."""
        text = normalise(question)
        if not text or safety_check(text) is not None or self.searcher.count("example") == 0:
            return None
        if retrieval is not None and retrieval.serves(text, CANDIDATES, ("example",)):
            found = retrieval.top(CANDIDATES, ("example",))
        else:
            found = self.searcher.search(text, k=CANDIDATES, kinds=["example"])
        examples: list[tuple[Example, float]] = []
        for hit in found.hits:
            example = self.searcher.example(hit.ref)
            if example is not None:
                examples.append((example, hit.vector_score))
        key = question_key(text)
        for example, _ in examples:
            if question_key(example.question) == key:
                return ExampleMatch(example, "exact", 1.0)
        mine: Signature | None = None
        for example, similarity in examples:
            if similarity < NEAR_SIMILARITY:
                continue
            mine = mine or signature(text, self.catalog, self.searcher, self.today)
            if signature(example.question, self.catalog, self.searcher, self.today) == mine:
                return ExampleMatch(example, "near", similarity)
        return None

    def plan(self, question: str, previous: QueryPlan | None = None, *,
             retrieval: RetrievalResult | None = None) -> PlanOutcome | None:
        """A plan from a matching verified example, or ``None`` (then another planner answers)."""
        found = self.match(question, retrieval)
        if found is None:
            return None
        try:
            stored = example_plan(found.example)
        except ValueError:  # a plan the current code cannot read: fall through to the planners
            return None
        if stored.sql and stored.metrics:  # a plan and a SQL in one: which was verified is unclear, never reuse it
            return None
        if not refs_exist(stored, self.catalog):
            return None
        time = retime(stored, parse_time(normalise(found.example.question), self.today),
                      parse_time(normalise(question), self.today))
        if time is False:
            return None
        how = ("The question is the same as a verified example" if found.how == "exact" else
               f"The question means the same as a verified example (similarity {found.similarity:.2f}; same "
               "metrics, values, numbers and time range)")
        notes = [f"{how}: “{found.example.question}”; its verified plan was reused."]
        if isinstance(time, TimeWindow) and stored.time is not None and (time.start, time.end) != (stored.time.start, stored.time.end):
            notes.append(f"Its time range was resolved again for today: {time.label}.")
        grounding = Grounding(kind="example", ref=found.example.id, phrase=found.example.question,
                              source="verified example", score=round(found.similarity, 4))
        plan = stored.model_copy(update={
            "planner": self.name,
            "time": time if isinstance(time, TimeWindow) else None,
            "groundings": (grounding, *(g for g in stored.groundings if g.kind != "example")),
            "notes": tuple(notes),
        })
        return PlanOutcome(status="plan", plan=plan,
                           signals={"example": 1.0, "metric_match": 1.0, "coverage": 1.0})


def refs_exist(plan: QueryPlan, catalog: Catalog) -> bool:
    """Whether every metric and dimension a stored plan uses is still in the layer."""
    layer = catalog.layer
    if any(m not in layer.metrics for m in plan.metrics):
        return False
    refs = list(plan.dimensions) + [f.ref for f in plan.filters] + [o.ref for o in plan.order_by]
    for ref in refs:
        if ref in layer.metrics or ref.startswith(METRIC_TIME):
            continue
        node, _, attr = ref.partition(".")
        n = layer.nodes.get(node)
        if n is None or n.column(attr.split(":")[0].split("[")[0]) is None:
            return False
    return True


def retime(plan: QueryPlan, example_time: TimeParse, question_time: TimeParse) -> TimeWindow | None | Literal[False]:
    """The time window to use for a reused plan, or ``False`` when the stored window is stale.

    The stored window is kept when it is what the example's words mean today;
    re-resolved when it came from a relative phrase ("last month") that means
    other dates today; refused (``False``) when it is relative but was set by
    hand, or when free SQL hides dates that cannot be re-resolved.

    >>> from lore.plan.timeparse import parse_time
    >>> old = QueryPlan(metrics=("m",), time=TimeWindow(start=date(2026, 8, 1), end=date(2026, 8, 31), label="last month"),
    ...                 groundings=(Grounding(kind="time", ref="last month", phrase="last month", source="rule"),))
    >>> now = parse_time("m last month", date(2026, 11, 1))
    >>> retime(old, now, now).start
    datetime.date(2026, 10, 1)
    >>> retime(old.model_copy(update={"groundings": ()}), now, now)
    False
    """
    first = example_time.first_range
    if plan.sql is not None:
        return False if any(r.relative for r in example_time.ranges) else plan.time
    if plan.time is None or first is None:
        return plan.time
    if (plan.time.start, plan.time.end) == (first.start, first.end):
        return plan.time
    if not first.relative:
        return plan.time  # a verified fixed window (set by a correction): keep it
    from_phrase = any(g.kind == "time" and g.source == "rule" for g in plan.groundings)
    now = question_time.first_range
    if not from_phrase or now is None:
        return False
    return TimeWindow(start=now.start, end=now.end, label=now.label)


__all__ = [
    "CANDIDATES",
    "NEAR_SIMILARITY",
    "ExampleMatch",
    "ExamplePlanner",
    "ExampleSearcher",
    "Signature",
    "example_plan",
    "few_shot_examples",
    "question_key",
    "refs_exist",
    "retime",
    "signature",
]


class VerifiedExamples:
    """The verified examples one view of a project plans with: kept in step with the feedback store
    (:meth:`sync`), matched by the example planner (:attr:`planner`) and offered to an LLM as few-shot examples
    (:meth:`nearest`). Holds no per-question state: one per view, shared by every thread."""

    def __init__(self, lore: Lore) -> None:
        self._lore = lore

    @cached_property
    def planner(self) -> ExamplePlanner:
        lore = self._lore
        return ExamplePlanner(lore.retriever, lore.catalog, lore.today)

    def nearest(self, question: str, k: int = 3) -> list[Example]:
        """The verified examples nearest to ``question`` (for an LLM planner's prompt), best first."""
        try:
            self.sync()
        except LoreError as err:  # plan with the examples the index already holds
            logging.getLogger("lore.feedback").warning("verified examples not refreshed: %s", err)
        return few_shot_examples(self._lore.retriever, question, k=k)

    def revision(self) -> int:
        """The revision of the verified examples this process plans with (-1: no feedback backend).

        The index's revision once the retriever is open (:meth:`sync` keeps it in step with the store); before
        that, the feedback store's own, read now (one single-row read): a process that answers from the plan
        memo without opening the index still sees a revoked or newly verified example at once.
        """
        parts = self._lore.parts
        backend = parts.feedback_backend
        if backend is None:
            return -1
        if parts.opened("retriever"):
            return parts.examples_revision
        try:
            return backend.examples_revision()
        except LoreError as err:  # nothing can change the examples while the store cannot be read
            logging.getLogger("lore.feedback").warning("examples revision not read: %s", err)
            return -2

    def sync(self) -> None:
        """Bring the index's verified examples up to date with the feedback store (one cheap read when unchanged).

        Examples verified or revoked in another process (the Slack bot, the CLI) reach this one here.
        Does nothing before the retriever is opened: opening it loads every verified example.
        """
        parts = self._lore.parts
        backend = parts.feedback_backend
        if backend is None or not parts.opened("retriever"):
            return
        with parts.examples_lock:
            since = parts.examples_revision
            if backend.examples_revision() == since:
                return
            changes = backend.example_changes(since)
            retriever = parts.retriever
            for example_id in changes.removed:
                retriever.remove_example(example_id)
            fresh = [e for e in changes.verified
                     if (held := retriever.example(e.id)) is None or held.content_hash != e.content_hash]
            retriever.add_examples(fresh)
            parts.examples_revision = changes.revision
