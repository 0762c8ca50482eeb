"""Shares of a total: "what share of sales came from online orders", "% of revenue by store", "each product line's
share within each store".

A share is read when the question says share, percentage, percent (or %), proportion or fraction of one metric
that adds up (a sum or a count), and names the parts: a breakdown (each part's share of the whole), or one
segment value (the segment's share of everything; the question's other filters still bound the whole). Two
breakdowns with "within each X" take the share within X. A share of a whole named apart from what cuts it ("what
share of each store's sales was food", "what % of tweets are positive") is the cut over its whole in each row:
the layer's own metric for it when it defines one (``food_sales / sales``), else both metrics and their ratio. A share of a metric that does not add up (an average,
a ratio, a count of distinct things) is asked back with the reason; so is a share with no parts named.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lore.plan.catalog import phrase
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Parse
from lore.plan.offline.rates import without_threshold_percents
from lore.semantic.compile import not_additive
from lore.semantic.spec import METRIC_TIME
from lore.types import Filter, Grounding, PlanOutcome, Share

#: words asking for a part of a whole
SHARE_WORDS = frozenset({"share", "shares", "percentage", "percentages", "percent", "pct", "proportion",
                         "proportions", "fraction", "portion", "slice", "mix"})  # ("the sales mix by product")
#: words that make a percentage a change, not a share ("percent change", "% growth")
_CHANGE_WORDS = frozenset({"change", "changed", "growth", "grew", "increase", "increased", "decrease", "decreased",
                           "drop", "dropped", "rise", "rose", "fell", "vs", "versus", "compared"})
#: words that put parts side by side as well as periods
_SIDE_BY_SIDE = frozenset({"vs", "versus", "compared"})
#: words before a breakdown that take the share within it ("within each store", "in each store")
_WITHIN = ("within", "inside")
_EACH = frozenset({"each", "every"})


def share_of_total(p: Parse, env: Env) -> None:
    d, lex = p.draft, env.lex
    if p.outcome is not None or d.adhoc or d.rows_of is not None or not d.metrics or d.compare is not None:
        return  # (a percentage between two compared periods is their percent change)
    words = [t.text.lower() for t in p.tokens]
    own = _own_stems(p, env)
    asked = [i for i, w in enumerate(words) if w in SHARE_WORDS and i not in p.used and p.tokens[i].stem not in own]
    if not asked and "%" not in without_threshold_percents(p.question):
        return
    # ("jaffles vs drinks, in percentages": parts side by side, no change, unless two periods are)
    periods = len(p.ranges) >= 2
    if any(w in _CHANGE_WORDS and (periods or w not in _SIDE_BY_SIDE) for w in words):
        return  # a percent change: not a share (asked back by the intent check)
    if len(d.metrics) != 1:
        return  # shares of several metrics at once: asked back by the intent check
    _undo_what_breakdowns(p, words)
    name = d.metrics[0]
    metric = lex.layer.metrics.get(name)
    if metric is None:
        return
    label = lex.metric_label(name)
    whole = _whole_of(env, name)
    if whole is not None and _cut_named_apart(p, name):
        _cut_share(p, env, asked, name, whole)
        return
    if (metric.format or "") == "percent" and _says_its_unit(p, name, asked):
        p.use(asked, "metric")  # "gross margin %", "margin in percent": the metric's own unit, no share of a total
        return
    kind = not_additive(metric)
    if kind is not None:
        p.settle(PlanOutcome(
            status="clarify", suggestions=(name,), signals={"intent": 0.0},
            message=f"{label[:1].upper() + label[1:]} has no share of a total: it is {kind}, so its parts do not add "
                    f"up to the whole. I can show {label} by any breakdown, side by side."))
        return
    part = _segment(p, env, words, named_after_metric=True) if d.dimensions else None
    if part is not None and any(lex.entity.get(part.ref.split(".")[0]) == x for x in d.dimensions):
        part = None  # "what fraction was each drink": the kind of each row, one value in each, is no part of it
    if part is not None and part.ref not in d.dimensions:
        # "what fraction of each store's sales came from jaffles": the part in each store, of that store's whole
        within = list(d.dimensions)
        d.filters.remove(part)
        d.dimensions.append(part.ref)
        d.share = Share(within=tuple(within), keep=(part,))
        what = (f"{' or '.join(map(str, part.values))}'s part of the total of every {lex.label(part.ref)}, within each "
                + " and ".join(lex.label(r) for r in within))
    elif d.dimensions:
        within = _within(p, words)
        if within and len(within) >= len(d.dimensions):
            within = []
        d.share = Share(within=tuple(within))
        what = "each row's part of " + ("the total within each " + " and ".join(
            lex.label(r) for r in within) if within else "the total of all rows")
    else:
        segment = _segment(p, env, words)
        if segment is None:
            values = [f for f in d.filters if _is_segment_filter(f, env)]
            p.settle(PlanOutcome(
                status="clarify", suggestions=(name,), signals={"intent": 0.0},
                message=(f"A share of {label} needs its parts: which of "
                         + ", ".join(" or ".join(map(str, f.values)) for f in values)
                         + " is the part, and which bound the whole?") if values else
                        (f"A share of {label} needs its parts: say by what (“share of {label} by …”) or which "
                         f"segment (“share of {label} from …”).")))
            return
        d.filters.remove(segment)
        d.dimensions.append(segment.ref)
        d.share = Share(keep=(segment,))
        what = f"{' or '.join(map(str, segment.values))}'s part of the total of every {lex.label(segment.ref)}"
    p.use(asked, "share")
    d.groundings.append(Grounding(kind="share", ref=name, phrase=" ".join(p.tokens[i].text for i in asked) or "%",
                                  source="rule", score=1.0))
    d.notes.append(f"The share is {what}, as a percentage of {label}.")


def _cut_share(p: Parse, env: Env, asked: list[int], cut: str, whole: str) -> None:
    """"what share of sales was food": the cut over its whole, in each row; the layer's own metric for that
    share when it defines one (``food_share = food_sales / sales``)."""
    d, lex = p.draft, env.lex
    governed = _governed_share(env, cut, whole)
    words = " ".join(p.tokens[i].text for i in asked) or "%"
    if governed is not None:
        d.metrics[0] = governed
        d.groundings = [g.model_copy(update={"ref": governed, "source": f"{g.source}, as a share of "
                                             f"{lex.metric_label(whole)}"})
                        if g.kind == "metric" and g.ref == cut else g for g in d.groundings]
        p.use(asked, "metric")
        d.notes.append(f"Read {lex.metric_label(governed)}, the governed share of {lex.metric_label(whole)} that is "
                       f"{lex.metric_label(cut)}.")
        return
    d.metrics[:] = [cut, whole]
    d.share = Share(metric=cut, whole=whole)
    p.use(asked, "share")
    d.groundings.append(Grounding(kind="share", ref=cut, phrase=words, source="rule", score=1.0))
    d.notes.append(f"The share is {lex.metric_label(cut)} as a part of {lex.metric_label(whole)}, in each row.")


def _undo_what_breakdowns(p: Parse, words: list[str]) -> None:
    """"what % of X's ...", "what share of ...": the question word asks for the share, so a breakdown read from
    it ("what <entity>") is no breakdown; its words are explained by something else, or said as unused."""
    d = p.draft
    asks = [i for i, w in enumerate(words) if w in ("what", "which") and (
        p.question[p.tokens[i].end:].lstrip().startswith("%") or (i + 1 < len(words) and words[i + 1] in SHARE_WORDS))]
    if not asks:
        return
    for ref, toks in list(p.dimension_tokens.items()):
        read_from_what = any(g.kind == "dimension" and g.ref == ref and g.phrase.split()[:1] in (["what"], ["which"])
                             for g in d.groundings)
        if not toks or ref not in d.dimensions or not read_from_what or min(toks) < asks[0]:
            continue
        d.dimensions.remove(ref)
        del p.dimension_tokens[ref]
        d.groundings = [g for g in d.groundings if not (g.kind == "dimension" and g.ref == ref)]
        for i in toks:
            if p.used.get(i) == "dimension":
                del p.used[i]


def _whole_of(env: Env, cut: str) -> str | None:
    """The one metric ``cut`` is a filtered cut of (same rows, same measure, no filter of its own), if any."""
    wholes = [w for w, cuts in env.lex.cuts.items() if cut in cuts]
    return wholes[0] if len(wholes) == 1 else None


def _cut_named_apart(p: Parse, name: str) -> bool:
    """The question named the whole and, apart from it, what cuts it ("sales ... was food", "tweets ... are
    positive"): the share is of the whole, not of the cut."""
    return any(g.kind == "metric" and g.ref == name and ("reordered" in g.source or "its cut named by" in g.source)
               for g in p.draft.groundings)


def _governed_share(env: Env, cut: str, whole: str) -> str | None:
    """A derived metric of the layer defined as exactly ``cut / whole``."""
    for name, m in env.lex.layer.metrics.items():
        if not m.is_derived or not m.expr:
            continue
        try:
            tree = sqlglot.parse_one(m.expr, read="duckdb")
        except SqlglotError:
            continue
        while isinstance(tree, exp.Paren):
            tree = tree.this
        if isinstance(tree, exp.Div) and _names(tree.this) == cut and _names(tree.expression) == whole:
            return name
    return None


def _names(node: exp.Expression) -> str | None:
    while isinstance(node, exp.Paren):
        node = node.this
    return node.name if isinstance(node, exp.Column) and not node.table else None


def _own_stems(p: Parse, env: Env) -> set[str]:
    """The stems of the chosen metrics' own names ("market share" is a metric, not a share of one)."""
    own: set[str] = set()
    for name in p.draft.metrics:
        m = env.lex.layer.metrics.get(name)
        if m is not None:
            for text in (m.name, m.label or "", *m.synonyms):
                own.update(phrase(text))
    return own


def _within(p: Parse, words: list[str]) -> list[str]:
    """The breakdowns the question takes the share within: "within (each) X", "in each X"; with two breakdowns,
    "for each X" too ("for each shop, what share of its sales does each product make up"; with one, "for each X" is
    the breakdown itself: "for each store, what % of reviews are positive"; "at each shop" alike)."""
    out: list[str] = []
    # (a breakdown the values named, "split between food and drinks", counts though no word named the attribute)
    several = len(p.draft.dimensions) >= 2
    for ref, toks in p.dimension_tokens.items():
        if ref not in p.draft.dimensions or not toks:
            continue
        first = min(toks)
        before = words[max(0, first - 2):first]
        if any(w in _WITHIN for w in before) or (len(before) == 2 and before[1] in _EACH and before[0] == "in") \
                or (several and ((len(before) == 2 and before[1] in _EACH and before[0] in ("for", "at"))
                                 or before[-1:] == ["per"])):
            out.append(ref)
    return out


def _is_segment_filter(f: Filter, env: Env) -> bool:
    return (f.op in ("=", "in") and bool(f.values) and not f.ref.startswith(METRIC_TIME)
            and f.ref not in env.lex.layer.metrics)


def _segment(p: Parse, env: Env, words: list[str], *, named_after_metric: bool = False) -> Filter | None:
    """The filter naming the part ("came from online orders"): the one value filter, or the one named after
    the metric's words (those before it bound the whole: "what % of business customers' sales were online").
    ``named_after_metric``: only one named after the metric's words counts ("share of online sales by store" is
    each store's share of online sales, not online's share)."""
    values = [f for f in p.draft.filters if _is_segment_filter(f, env)]
    if len(values) == 1 and not named_after_metric:
        return values[0]
    metric_at = max((i for i, why in p.used.items() if why == "metric"), default=-1)
    after = []
    question = p.question.lower()
    cut = p.tokens[metric_at].end if metric_at >= 0 else 0
    ask = re.search(r"%|\b(?:" + "|".join(sorted(SHARE_WORDS)) + r")\b", question)
    for f in values:
        # the words the question used for the value ("rejected" for denied), else the value itself
        said = [g.phrase for g in p.draft.groundings if g.kind == "filter" and g.ref == f.describe()]
        spots = [question.find(w.lower(), cut) for w in [*said, *map(str, f.values)]]
        # "food as a % of sales by store", "drinks' share of sales": the part named right before the share words
        before = ask is not None and any(re.search(re.escape(w.lower()) + r"(?:'s|’s|')?\s+(?:as\s+)?(?:an?\s+|the\s+)?$",
                                                   question[:ask.start()]) for w in [*said, *map(str, f.values)])
        if any(s >= 0 for s in spots) or before:
            after.append(f)
    return after[0] if len(after) == 1 else None


def _says_its_unit(p: Parse, name: str, asked: list[int]) -> bool:
    """Whether the share words of the question only say the unit of a metric kept in percent: "%" alone, or
    "percent" / "percentage" / "%" right after the metric's words ("gross margin %", "margin in percent")."""
    ends = [m.end for m in p.metric_matches if m.ref == name]
    return bool(ends) and all(any(0 <= i - e <= 1 for e in ends) for i in asked)
