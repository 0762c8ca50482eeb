"""The listing pass: "list the stores in the East zone", "which products are drinks?",
"what tests did we start in 2026?": rows of one entity with the attributes asked for, not a number.

A listing has no metric: the entity named after the listing words (or after "which") gives the node whose rows
are listed; attributes named after "with their ..." are its columns; filters and a time range narrow the rows.
The compiler caps the rows (the answer says "showing N of M").
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lore.plan.catalog import phrase
from lore.plan.offline.breakdowns import COLUMNS_AFTER_RE, _read_list, wants_rows
from lore.plan.offline.env import Env
from lore.plan.offline.lexicon import is_metric_time
from lore.plan.offline.parse import Parse
from lore.plan.offline.shares import SHARE_WORDS
from lore.plan.offline.text import tokens_in
from lore.plan.offline.ordering import FIRST_METRIC
from lore.plan.words import LISTING_ANY_RE, RANK_LIST_RE, RANKED_RE, WHICH_WORDS, WITH_ATTRIBUTES_RE
from lore.types import Filter, Grounding


_BARE_WITH = re.compile(r"\b(?:with|showing|including)\b(?!\s+(?:their|its|the|his|her)\b)", re.I)
#: "list the agents and when each one was hired", "... and the date they were hired": a date of the rows, asked
#: for by what happened on it
_AND_WHEN = re.compile(r"\b(?:and|with|plus)\s+(?:when\s+|(?:the\s+)?(?:date|day)\s+(?:that\s+|when\s+|on\s+which\s+)?)"
                       r"(?:each(?:\s+one)?|they|it|he|she|every\s+one)\s+(?:was|were|got|had|did|first)?\b", re.I)


def read_listing(p: Parse, env: Env) -> None:
    """No metric, a listing cue and an entity: list its rows (see the module docstring)."""
    d, lex = p.draft, env.lex
    _count_noun_listing(p, env)
    if d.metrics or p.followup or d.rows_of is not None:
        return
    cue = LISTING_ANY_RE.search(p.question) or RANK_LIST_RE.search(p.question)
    which = any(t.text.lower() in WHICH_WORDS for t in p.tokens)
    if cue is None and not which:
        return
    if "%" in p.question or any(t.text.lower() in SHARE_WORDS for t in p.tokens):
        return  # "show each shop's % of the total": a share of some measure (asked back), never a list of shops
    entities = [x for x in d.dimensions if not is_metric_time(x)]
    if not entities and cue is not None:
        entities = _rows_named_by_values(p, env)
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
    _read_columns(p, env, node)
    # a grain of the metric's time axis means nothing for rows: the time range filters the entity's own date
    d.dimensions = [x for x in d.dimensions if not is_metric_time(x)]
    _dates_as_days(p)
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


def _read_columns(p: Parse, env: Env, node: str) -> None:
    """The columns a listing shows: after "with (their)", "including", "showing", or a dash or colon before a list
    ("the open claims - claim #, loss date and cause")."""
    for m in [*WITH_ATTRIBUTES_RE.finditer(p.question), *_BARE_WITH.finditer(p.question)]:
        trig_tokens = tuple(sorted(tokens_in(p.tokens, m.span())))
        if trig_tokens and trig_tokens[-1] + 1 < len(p.tokens):
            _read_list(p, env, trig_tokens[-1] + 1, "with", trig_tokens, [node])
    for m in _AND_WHEN.finditer(p.question):
        trig_tokens = tuple(sorted(tokens_in(p.tokens, m.span())))
        if trig_tokens and trig_tokens[-1] + 1 < len(p.tokens) and trig_tokens[-1] + 1 not in p.used:
            p.use(trig_tokens, "operator")
            _read_list(p, env, trig_tokens[-1] + 1, "with", trig_tokens, [node])
    for m in COLUMNS_AFTER_RE.finditer(p.question):
        first = next((i for i, t in enumerate(p.tokens) if t.start >= m.end() and t.text not in ("-", ":")), None)
        if first is None:
            continue
        # each item on its own: one the layer lacks ("which storm") does not hide the ones after it
        starts = [first] + [i + 1 for i in range(first, len(p.tokens) - 1)
                            if p.tokens[i].text.lower() == "and" or p.question[p.tokens[i].end:p.tokens[i + 1].start].strip() == ","]
        for i in starts:
            if i not in p.used:
                _read_list(p, env, i, "with", (), [node])


_GRAIN_WORD_RE = re.compile(r"\b(?:week|month|quarter|year|half)(?:ly|s)?\b|\bannual|\bdaily\b", re.I)


def _rows_named_by_values(p: Parse, env: Env) -> list[str]:
    """"show me our jaffles with their sku and description": the rows named by a value of one of their own
    attributes (products whose type is jaffle), when columns are asked for; [] otherwise."""
    d, lex = p.draft, env.lex
    if not (WITH_ATTRIBUTES_RE.search(p.question) or COLUMNS_AFTER_RE.search(p.question)):
        return []
    nodes = {v.ref.split(".")[0] for v in p.accepted}
    if len(nodes) != 1:
        return []
    entity = lex.entity.get(nodes.pop())
    if entity is None:
        return []
    v = p.accepted[0]
    d.add_dimension(entity, Grounding(kind="dimension", ref=entity, phrase=p.question[v.span[0]:v.span[1]],
                                      source=f"rule: the rows whose {lex.label(v.ref)} is named"))
    return [entity]


def _dates_as_days(p: Parse) -> None:
    """A listing's date column is the date itself ("the date each one started"), unless a grain is named for it
    ("with their opening month")."""
    d = p.draft
    for k, x in enumerate(d.dimensions):
        ref, _, grain = x.partition(":")
        if not grain or grain == "day":
            continue
        said = " ".join(g.phrase for g in d.groundings if g.kind == "dimension" and g.ref == x)
        if _GRAIN_WORD_RE.search(said):
            continue
        d.dimensions[k] = f"{ref}:day"
        d.groundings = [g.model_copy(update={"ref": f"{ref}:day"}) if g.kind == "dimension" and g.ref == x else g
                        for g in d.groundings]


def _count_noun_listing(p: Parse, env: Env) -> None:
    """"list the cancelled policies in Colorado with their policy number and limit": a listing verb, a count
    metric named only by its fact's own noun (values before it), and columns asked for after "with": the rows of
    the fact, not their count. The count's words are released so the columns can be read."""
    d, lex, tokens = p.draft, env.lex, p.tokens
    if not d.metrics or d.adhoc or p.followup or d.rows_of is not None or d.limit or not wants_rows(p):
        return
    cue = min([*WITH_ATTRIBUTES_RE.finditer(p.question), *_BARE_WITH.finditer(p.question),
               *COLUMNS_AFTER_RE.finditer(p.question)], key=lambda m: m.start(), default=None)
    # ("...: claim number, date of loss and the insured's state": a metric's words among the columns are a column)
    before = [x for x in d.metrics if cue is None or any(tokens[m.start].start < cue.start()
                                                         for m in p.metric_matches if m.ref == x)]
    if len(before) != 1:
        return
    metric = lex.layer.metrics.get(before[0])
    if metric is None or metric.is_derived or metric.agg != "count" or metric.expr not in ("*", ""):
        return
    # (a breakdown by the fact's own rows, "list the claims", is the listing already)
    if any(not is_metric_time(x) and x != lex.entity.get(metric.source or "") for x in d.dimensions):
        return
    own = _as_filters(metric.filter, metric.source or "") if metric.filter else []
    if own is None:
        return  # a count cut by a condition no filter can say: its rows are not these
    matches = [m for m in p.metric_matches if m.ref == metric.name]
    # (named by the fact's own noun: "policies", "still-open claims", "claims that are still open")
    node = metric.source or ""
    nouns = [i for m in matches for i in range(m.start, m.end) if node in lex.node_words.get(tokens[i].stem, frozenset())]
    if len({tokens[i].stem for i in nouns}) > 1:  # ("claims reported": the node's own name among its words)
        n = lex.layer.nodes.get(node)
        own_names = set(phrase(n.name)) | set(phrase(n.label or "")) if n is not None else set()
        nouns = [i for i in nouns if tokens[i].stem in own_names]
    if not matches or len({tokens[i].stem for i in nouns}) != 1:
        return
    with_cue = cue
    first = min(matches, key=lambda m: m.start)
    if with_cue is None or with_cue.start() < tokens[first.start].end:
        return
    # "... with their policy number": the noun again inside a column's name, or any metric's words among the
    # columns, are columns to read
    for i, t in enumerate(tokens):
        if p.used.get(i) == "metric" and (t.start >= with_cue.start() or any(m.start <= i < m.end for m in matches[1:])):
            del p.used[i]
    p.metric_matches = [m for m in p.metric_matches if m.ref != metric.name and tokens[m.start].start < with_cue.start()]
    d.notes = [n for n in d.notes if f"read as {lex.metric_label(metric.name)}" not in n]
    columns = [x for x in d.metrics if x != metric.name]  # metrics named only among the columns: columns to read
    d.groundings = [g for g in d.groundings if not (g.kind == "metric" and g.ref in columns)]
    d.metrics = []
    for f in own:  # "the open claims": the rows the count counts, cut as it cuts them
        if f not in d.filters:
            d.filters.append(f)
            d.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=p.words(first.start, first.end),
                                          source=f"the filter of {lex.metric_label(metric.name)}"))
    d.groundings = [g for g in d.groundings if not (g.kind == "metric" and g.ref == metric.name)]
    d.dimensions = [x for x in d.dimensions if not is_metric_time(x)]
    if lex.entity.get(node):
        d.add_dimension(lex.entity[node], Grounding(kind="dimension", ref=lex.entity[node], phrase=tokens[nouns[0]].text,
                                                    source=f"rule: a list of {lex.label(lex.entity[node])}s, one row each"))


def _as_filters(condition: str, node: str) -> list[Filter] | None:
    """A metric's row filter as plan filters when it is plain comparisons joined by AND ("status = 'open'",
    "kind IN ('a', 'b') AND paid = true"), else None."""
    try:
        tree = sqlglot.parse_one(condition, read="duckdb")
    except SqlglotError:
        return None
    parts = list(tree.flatten()) if isinstance(tree, exp.And) else [tree]
    out: list[Filter] = []
    for part in parts:
        if isinstance(part, (exp.EQ, exp.NEQ)) and isinstance(part.this, exp.Column) \
                and isinstance(part.expression, (exp.Literal, exp.Boolean)):
            value = part.expression.this if isinstance(part.expression, exp.Boolean) else part.expression.to_py()
            out.append(Filter(ref=f"{node}.{part.this.name}", op="=" if isinstance(part, exp.EQ) else "!=",
                              values=(value,)))
        elif isinstance(part, exp.In) and isinstance(part.this, exp.Column) \
                and all(isinstance(x, exp.Literal) for x in part.expressions):
            out.append(Filter(ref=f"{node}.{part.this.name}", op="in",
                              values=tuple(x.to_py() for x in part.expressions)))
        else:
            return None
    return out


def _date_of(env: Env, node: str) -> str | None:
    """The date a period filters for a node's rows: its time column, else its first date attribute."""
    n = env.lex.layer.nodes[node]
    if n.time_column:
        return f"{node}.{n.time_column}"
    first = next((c for c in n.columns if c.kind == "time"), None)
    return f"{node}.{first.name}" if first is not None else None

