"""The offline planner: a question in plain words -> a grounded :class:`~lore.types.QueryPlan`, with no model.

The question is normalised and tokenised once into a :class:`~lore.plan.offline.parse.Parse`, then the passes
of :data:`PASSES` run in order, each reading and extending that one per-question value; a pass that settles the
question (a refusal, a clarifying question) stops the run. Every domain word comes from the semantic layer and
the value index (:class:`~lore.plan.offline.lexicon.Lexicon`, built once); the passes only know English.
"""

from __future__ import annotations

from collections.abc import Callable

from lore.plan.catalog import tokenize
from lore.plan.offline.beyond import beyond_the_data
from lore.plan.offline.rates import highest_single, per_entity_rate, running_total
from lore.plan.offline.breakdowns import read_breakdowns, rows_asked
from lore.plan.offline.checks import (
    account_for_words,
    check_reach,
    data_bounds,
    drop_name_ranges,
    fit_metrics,
    identifying_filters,
    layer_rules,
    metric_filters,
    time_axes,
)
from lore.plan.offline.dates import attach_dates, correct_spelling, date_named_for_the_period, read_time
from lore.plan.offline.definitions import check_definition_parts, read_definitions
from lore.plan.offline.env import Context, Env
from lore.plan.offline.filters import read_attribute_thresholds, read_date_states, read_filters
from lore.plan.offline.followup import detect_followup, merge_followup
from lore.plan.offline.lexicon import Lexicon
from lore.plan.offline.listing import read_listing
from lore.plan.offline.metrics import (
    back_to_back,
    explain_own_words,
    metric_conditions,
    find_metrics,
    metric_cuts,
    no_metric,
    ratio_by_entity,
    take_metrics,
    unsupported_intent,
    vector_metric,
)
from lore.plan.offline.ordering import finish_order, order_by_change, rank_within_groups, read_order
from lore.plan.offline.parse import Parse
from lore.plan.offline.request import check_request
from lore.plan.offline.shares import share_of_total
from lore.plan.offline.text import normalise, operation_typos, sellers, shared_heads, slash_per, things_on
from lore.plan.offline.values import accept_values, find_values, read_booleans
from lore.types import PlanOutcome, QueryPlan, RetrievalResult

Pass = Callable[[Parse, Env], None]

#: the passes, in order; each is a function of the question's :class:`Parse` and the planner's :class:`Env`
PASSES: tuple[Pass, ...] = (
    check_request,        # writes, SQL, injections, secrets, poems: refused; an empty question: asked back
    correct_spelling,     # misspelt words read as the layer's words
    read_time,            # ranges and grains; a range after a date attribute filters that date
    find_values,          # values named verbatim, by another name, or as an identifier's words
    find_metrics,         # metric phrases, "A per B" ratios; a value mention longer than a metric phrase wins
    read_definitions,     # "margin, i.e. revenue minus cost": an ad hoc metric over governed ones
    read_breakdowns,      # "by X, Y and Z", "for each", "which X", "top 5 X", possessives
    take_metrics,         # metric phrases the breakdowns did not take
    metric_conditions,    # "orders that had no items": a metric as a condition on another's rows
    highest_single,       # "the priciest single order": each order's value, the highest taken
    date_named_for_the_period,  # "(by date of loss)": the date the rows are dated by, not a breakdown by day
    read_order,           # top N, the most / the least, ranked
    accept_values,        # sure value mentions; weak ones only in a telling context
    read_booleans,        # yes/no attributes named as filters
    explain_own_words,    # words of a chosen metric's own names
    drop_name_ranges,     # a period that is part of a value's name is no time range
    vector_metric,        # no metric named: the closest by meaning, when clear
    detect_followup,      # does this turn refine the previous answer?
    read_listing,         # no metric, "list the X" / "which X ...": rows of an entity
    no_metric,            # still no metric: ask which one, or say it is out of scope
    merge_followup,       # keep what a follow-up does not change
    attach_dates,         # "signed up in 2025" filters that date
    read_filters,         # values -> filters, negation, several values side by side
    read_date_states,     # "the shops that haven't opened yet": a date of the rows after today
    read_attribute_thresholds,  # "loans with principal over 10k": a numeric attribute past a threshold
    rows_asked,           # "list the X with their <metric>": one row per X
    metric_cuts,          # "negative posts": the governed cut of the metric a leftover word names
    fit_metrics,          # among metrics the same words name, the one reaching everything without fan-out
    layer_rules,          # rules the metric owner declared (compare_by)
    metric_filters,       # a filter on what a metric's own filter fixes: its sibling metric, or a question
    check_reach,          # breakdowns every metric reaches; a fanning breakdown needs its pin
    identifying_filters,  # a code and a name of two different rows cannot both hold: asked back
    ratio_by_entity,      # "revenue per customer": the defined ratio
    per_entity_rate,      # "minutes per active player": the metric of each entity, averaged over them
    running_total,        # "cumulative revenue by month": each bucket and the total so far
    beyond_the_data,      # causes, forecasts, statistical tests: asked back with the closest answerable question
    share_of_total,       # "what share of sales came from online orders", "% of revenue by store"
    unsupported_intent,   # averages, medians, what is still no total: asked back
    time_axes,            # a fact's own date is its time axis; per-grain metrics get their grain
    data_bounds,          # a period outside the data says where the data starts and ends
    finish_order,         # the ranking is on the first metric
    order_by_change,      # "which branch grew most from 2025 to 2026": ranked by the change between the periods
    rank_within_groups,   # "top 3 X in each Y": ranked within each Y
    check_definition_parts,  # a definition that could not be read is asked back, never answered in parts
    back_to_back,         # "cat claim count": two metrics named back to back, maybe one qualified: medium confidence
    account_for_words,    # every content word explained, or said; unknown breakdowns and values asked back
)


class OfflinePlanner:
    """Deterministic planner over the semantic layer's vocabulary and the value index (see the module docstring).

    Holds nothing about any question: one instance serves every thread.
    """

    name = "offline"
    #: no prompt: the offline planner sends none
    prompt_version: str | None = None

    def __init__(self, context: Context) -> None:
        self.ctx = context
        self.cat = context.catalog
        self.layer = context.catalog.layer
        self.env = Env(lex=Lexicon.build(context.catalog, context.values), searcher=context.searcher,
                       today=context.today, bounds=dict(context.bounds))

    def plan(self, question: str, previous: QueryPlan | None = None, *, answer_id: str | None = None,
             retrieval: RetrievalResult | None = None) -> PlanOutcome:
        """Plan ``question``. ``retrieval`` (the retrieve stage's result) is not needed: the passes look up the
        phrases they are unsure of themselves (``Context.searcher``), each with its values masked."""
        p = self.parse(question, previous)
        if p.outcome is not None:
            return p.outcome
        return PlanOutcome(status="plan", plan=p.draft.plan(), signals=p.draft.signals)

    def _names_entity(self, word: str) -> bool:
        """Whether ``word`` (one word) names a node of the layer that has a key ("acct" for accounts)."""
        toks = tokenize(word)
        if len(toks) != 1:
            return False
        # (a whole name of the node: "menu" inside the synonym "menu item" names no node alone)
        whole = {e.ref for e in self.env.lex.catalog.node_entries if e.phrase == (toks[0].stem,)}
        return any(self.env.lex.entity.get(n) or self.layer.nodes[n].primary_key
                   for n in self.env.lex.node_words.get(toks[0].stem, frozenset()) if n in whole)

    def _names_attribute(self, words: str) -> bool:
        """Whether ``words`` are exactly a name of an attribute of the layer ("end date")."""
        stems = tuple(t.stem for t in tokenize(words))
        return bool(stems) and any(e.phrase == stems for e in self.env.lex.attribute_index.get(stems[0], ()))

    def parse(self, question: str, previous: QueryPlan | None = None, *, until: Pass | None = None) -> Parse:
        """Run the passes on ``question`` (up to and including ``until``) and return the parse, for tests and
        ``--explain``."""
        p = Parse(question=normalise(question), today=self.env.today, previous=previous)
        p.question, fixed = operation_typos(p.question, self.env.lex.catalog.vocabulary)
        for wrong, right in fixed:
            p.draft.notes.append(f"Read “{wrong}” as a misspelling of “{right}”.")
            p.draft.signals["spelling"] = 0.85
        p.question = slash_per(p.question, self._names_entity)
        p.question = things_on(p.question, self._names_entity)
        # ("only keep the 3 best sellers" after a breakdown: the rows already asked for, not the things sold)
        p.question = sellers(p.question, self._names_entity, self.env.lex.sold if previous is None else None)
        p.question = shared_heads(p.question, self._names_attribute)
        p.tokens = tokenize(p.question)
        for step in PASSES:
            step(p, self.env)
            if p.outcome is not None or step is until:
                break
        return p
