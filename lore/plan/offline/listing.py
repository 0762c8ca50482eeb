"""The listing pass: "list the stores in the East zone", "which products are drinks?",
"what tests did we start in 2026?": rows of one entity with the attributes asked for, not a number.

A listing has no metric: the entity named after the listing words (or after "which") gives the node whose rows
are listed; attributes named after "with their ..." are its columns; filters and a time range narrow the rows.
The compiler caps the rows (the answer says "showing N of M").
"""

from __future__ import annotations

import re

from lore.plan.offline.breakdowns import _read_list
from lore.plan.offline.env import Env
from lore.plan.offline.lexicon import is_metric_time
from lore.plan.offline.parse import Parse
from lore.plan.offline.text import tokens_in
from lore.plan.offline.ordering import FIRST_METRIC
from lore.plan.words import LISTING_RE, RANK_LIST_RE, RANKED_RE, WHICH_WORDS, WITH_ATTRIBUTES_RE
from lore.types import Grounding


_BARE_WITH = re.compile(r"\b(?:with|showing|including)\b(?!\s+(?:their|its|the|his|her)\b)", re.I)


def read_listing(p: Parse, env: Env) -> None:
    """No metric, a listing cue and an entity: list its rows (see the module docstring)."""
    d, lex = p.draft, env.lex
    if d.metrics or p.followup or d.rows_of is not None:
        return
    cue = LISTING_RE.search(p.question) or RANK_LIST_RE.search(p.question)
    which = any(t.text.lower() in WHICH_WORDS for t in p.tokens)
    if cue is None and not which:
        return
    entities = [x for x in d.dimensions if not is_metric_time(x)]
    if not entities:
        return
    if any(o.ref == FIRST_METRIC for o in d.order_by) and not (cue is not None and RANKED_RE.search(p.question)):
        return  # "which store sold the most": a ranking needs a measure (asked back), not a list of stores
    node = entities[0].split(".")[0]
    d.rows_of = node
    d.groundings.append(Grounding(kind="listing", ref=node, phrase=p.question[cue.start():cue.end()] if cue else
                                  "which", source="rule: a question for rows, not a number"))
    if cue is not None:
        p.use(tokens_in(p.tokens, cue.span()), "operator")
    # ("with their totals", and in a list already asked for, "with start and end dates")
    for m in [*WITH_ATTRIBUTES_RE.finditer(p.question), *_BARE_WITH.finditer(p.question)]:
        trig_tokens = tuple(sorted(tokens_in(p.tokens, m.span())))
        if trig_tokens and trig_tokens[-1] + 1 < len(p.tokens):
            _read_list(p, env, trig_tokens[-1] + 1, "with", trig_tokens, [node])
    # a grain of the metric's time axis means nothing for rows: the time range filters the entity's own date
    d.dimensions = [x for x in d.dimensions if not is_metric_time(x)]
    if d.time is not None:
        date_ref = _date_of(env, node)
        window = d.time.filter()
        if date_ref is not None and window is not None:
            f = window.model_copy(update={"ref": date_ref})
            d.filters.append(f)
            d.groundings = [g for g in d.groundings if g.kind != "time"]
            d.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=d.time.label,
                                          source=f"a date of {lex.label(date_ref)}"))
            d.notes.append(f"The period filters {lex.label(date_ref)}.")
        d.time = None
    if d.order_by and d.order_by[0].ref == FIRST_METRIC:
        d.order_by = []
    d.signals["metric_match"] = 1.0


def _date_of(env: Env, node: str) -> str | None:
    """The date a period filters for a node's rows: its time column, else its first date attribute."""
    n = env.lex.layer.nodes[node]
    if n.time_column:
        return f"{node}.{n.time_column}"
    first = next((c for c in n.columns if c.kind == "time"), None)
    return f"{node}.{first.name}" if first is not None else None

