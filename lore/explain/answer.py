"""Words for an answer: the message that leads with the number, and the reasoning steps.

Pure functions of the plan, the layer and the result; no model writes any of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from lore.explain.format import format_value
from lore.semantic.compile import RANK_COLUMN, threshold_shown
from lore.semantic.spec import METRIC_TIME, SemanticLayer, inline_label
from lore.types import ColumnMeta, CompiledQuery, Filter, QueryPlan, ResultSet, Scalar

_ADDITIVE = {"sum", "count"}


#: a metric label that already starts with one of these says "highest" itself ("largest order", "max discount")
_HIGH_WORDS = frozenset({"largest", "biggest", "highest", "greatest", "max", "maximum", "top", "peak", "longest",
                         "most", "best"})

def period_label(value: Scalar, grain: str | None) -> str:
    """A readable time bucket.

    >>> period_label("2026-10-01", "month"), period_label("2026-07-01", "quarter"), period_label("2026-01-01", "year")
    ('Oct 2026', 'Q3 2026', '2026')
    >>> period_label("2026-10-19", "week"), period_label("2026-10-05", "day")
    ('week of 2026-10-19', '2026-10-05')
    """
    if not isinstance(value, str) or len(value) < 10:
        return format_value(value)
    try:
        d = date.fromisoformat(value[:10])
    except ValueError:
        return value
    if grain == "month":
        return d.strftime("%b %Y")
    if grain == "quarter":
        return f"Q{(d.month - 1) // 3 + 1} {d.year}"
    if grain == "year":
        return str(d.year)
    if grain == "week":
        return f"week of {d.isoformat()}"
    return d.isoformat()


def filter_phrase(f: Filter, layer: SemanticLayer) -> str:
    """A short phrase for titles: the values, with a word for negation.

    >>> from lore.semantic.spec import SemanticLayer
    >>> filter_phrase(Filter(ref="accounts.plan", op="=", values=("premium",)), SemanticLayer())
    'premium'
    >>> filter_phrase(Filter(ref="titles.title_type", op="not_in", values=("movie", "series")), SemanticLayer())
    'excl. movie, series'
    >>> filter_phrase(Filter(ref="titles.genre", op="is_not_null"), SemanticLayer())
    'with a titles.genre'
    """
    if f.values and all(isinstance(v, bool) for v in f.values):
        label = _dim_label(layer, f.ref)
        positive = (f.values[0] is True) == (f.op in ("=", "in"))
        return label if positive else f"not {label}"
    if f.op in ("is_null", "is_not_null"):
        label = _dim_label(layer, f.ref)
        article = "an" if label[:1].lower() in "aeiou" else "a"
        return f"no {label}" if f.op == "is_null" else f"with {article} {label}"
    vals = ", ".join(str(v) for v in f.values)
    if f.op in ("!=", "not_in", "not_like"):
        return f"excl. {vals}"
    if f.op in ("=", "in", "like"):
        return vals
    label = _dim_label(layer, f.ref)
    if f.op == "between" and len(f.values) == 2:
        return f"{label} {f.values[0]} to {f.values[1]}"
    return f"{label} {f.op} {vals}"


def scope_phrases(plan: QueryPlan, layer: SemanticLayer) -> list[str]:
    # ("with a store" on a ranking of stores says nothing: the reasoning says the unknown rows are left out)
    # (the compared periods' own buckets, "metric_time:quarter in (...)", are said by the time range's label)
    out = [filter_phrase(f, layer) for f in plan.filters
           if not (f.op == "is_not_null" and any(x.split(":")[0] == f.ref for x in plan.dimensions))
           and not (f.ref.startswith(METRIC_TIME + ":") and plan.time is not None and f.ref in plan.dimensions)]
    if plan.compare is not None:
        early, late = plan.compare.ordered()
        out.append(f"{early.label} vs {late.label}")
    elif plan.time is not None and plan.time.label:
        out.append(plan.time.label)
    return out


def restate(plan: QueryPlan, layer: SemanticLayer) -> str:
    """One line saying what was computed: the metrics, the breakdowns, the filters and the period.

    >>> from lore.semantic.spec import Metric
    >>> layer = SemanticLayer(metrics={"revenue": Metric(name="revenue", source="o", agg="sum", expr="x")})
    >>> restate(QueryPlan(metrics=("revenue",), dimensions=("metric_time:month",),
    ...                   filters=(Filter(ref="stores.name", op="!=", values=("Brooklyn",)),)), layer)
    'Revenue by month, excl. Brooklyn'
    """
    adhoc = {a.name: a.label for a in plan.adhoc}
    if plan.rows_of is not None:
        node = layer.nodes.get(plan.rows_of)
        what = f"List of {(node.display if node else plan.rows_of)}s"
        shown = [_dim_label(layer, d) for d in plan.dimensions]
        text = what + (f" with {', '.join(shown)}" if shown else "")
    else:
        names = [adhoc.get(m) or _metric_label(layer, m) for m in plan.metrics] or ["(no metric)"]
        text = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        share = plan.share
        shown_dims = [d for d in plan.dimensions if share is None or not share.keep or d not in {f.ref for f in share.keep}]
        dims = [_dim_label(layer, d) for d in shown_dims]
        if share is not None and share.whole is not None:
            cut = adhoc.get(share.metric or "") or _metric_label(layer, share.metric or plan.metrics[0])
            text = f"{cut} as a share of {_metric_label(layer, share.whole)}"
        elif share is not None:
            text = "Share of " + inline_label(text)
            if share.keep:
                text += " from " + " and ".join(" or ".join(map(str, f.values)) for f in share.keep)
            dims = [x for d, x in zip(shown_dims, dims) if d not in share.within]
        if plan.running_total:
            text = "Running total of " + inline_label(text)
        if plan.threshold is not None:
            t = plan.threshold
            metric = layer.metrics.get(t.metric)
            text = (f"Count of {_dim_label(layer, t.entity).lower()}s with {inline_label(text)} {t.op} "
                    f"{threshold_shown(metric.format if metric else None, t.value)}")
        if plan.per is not None:  # "Streaming hours per account (per month)"
            who = re.sub(r"\s*\b(?:id|ids|key|code|number|no)$", "", _dim_label(layer, plan.per.entity).lower())
            who = who[:-1] if who.endswith("s") and not who.endswith("ss") else who
            if plan.per.stat == "avg":
                text += f" per {who or plan.per.entity}" + (f" per {plan.per.grain}" if plan.per.grain else "")
            else:  # "Highest revenue of one order"
                text = (f"{'Highest' if plan.per.stat == 'max' else 'Lowest'} {inline_label(text)} of one "
                        f"{who or plan.per.entity}" + (f" per {plan.per.grain}" if plan.per.grain else ""))
        if dims:
            text += " by " + (", ".join(dims[:-1]) + " and " + dims[-1] if len(dims) > 1 else dims[0])
        if share is not None and share.within:
            text += " within each " + " and ".join(_dim_label(layer, d) for d in share.within)
    scope = scope_phrases(plan, layer)
    if scope:
        text += ", " + "; ".join(scope)
    if plan.limit and plan.order_by:
        text += f", {'top' if plan.order_by[0].descending else 'bottom'} {plan.limit}"
        if plan.rank_within:
            text += " in each " + " and ".join(_dim_label(layer, d) for d in plan.rank_within)
    return text[:1].upper() + text[1:]


def _dim_label(layer: SemanticLayer, ref: str) -> str:
    if ref.startswith(METRIC_TIME):
        return ref.partition(":")[2] or "date"
    node, _, attr = ref.partition(".")
    n = layer.nodes.get(node)
    col = n.column(attr.split(":")[0].split("[")[0]) if n else None
    return (col.label or col.name.replace("_", " ")) if col else ref


def _metric_label(layer: SemanticLayer, name: str) -> str:
    m = layer.metrics.get(name)
    return (m.label or name.replace("_", " ")) if m else name


def _share_message(plan: QueryPlan, result: ResultSet, metrics: list[int], dims: list[int], scope_text: str) -> str:
    """A share of a total in words: the kept segment's part of the whole, or the largest parts."""
    cols, share_at, value_at = result.columns, metrics[-1], metrics[0]
    metric = cols[value_at].label.lower()
    kept = {f.ref for f in plan.share.keep} if plan.share is not None else set()
    rows = sorted((r for r in result.rows if isinstance(r[share_at], (int, float))), key=lambda r: -float(r[share_at]))
    if not rows:
        return f"Share of {metric}{scope_text}: no values."

    def name(row: tuple) -> str:
        return " · ".join(format_value(row[i]) for i in dims)

    if plan.share is not None and plan.share.whole is not None and len(metrics) >= 3:
        whole_at = metrics[1]
        if not dims:
            row = rows[0]
            of = (f" ({_value(row[value_at], cols[value_at])} of {_value(row[whole_at], cols[whole_at])})"
                  if row[whole_at] is not None else "")
            text = f"{cols[value_at].label} were {float(row[share_at]):.1%} of {cols[whole_at].label.lower()}{of}"
            return text + (f"{scope_text}." if scope_text else ".")
    if kept:
        kept_at = [i for i in dims if (cols[i].ref or "") in kept]
        group_at = [i for i in dims if i not in kept_at]
        parts = []
        for row in rows[:6]:
            share, value = float(row[share_at]), row[value_at]
            whole = (f" ({_value(value, cols[value_at])} of {_value(value / share, cols[value_at])})"
                     if isinstance(value, (int, float)) and share > 0 else "")
            part = " · ".join(format_value(row[i]) for i in kept_at) or name(row)
            group = " · ".join(format_value(row[i]) for i in group_at)
            parts.append((f"in {group}, " if group else "") + f"{share:.1%} came from {part}{whole}")
        more = f"; and {len(rows) - 6} more" if len(rows) > 6 else ""
        return f"Of {metric}{scope_text}, " + "; ".join(parts) + more + "."
    shown = ", ".join(f"{name(r)} {float(r[share_at]):.1%}" for r in rows[:4])
    more = f", and {len(rows) - 4} more" if len(rows) > 4 else ""
    return f"{cols[share_at].label}{scope_text}: {shown}{more}."


def _ranked_message(plan: QueryPlan, result: ResultSet, metrics: list[int], dims: list[int], scope_text: str,
                    layer: SemanticLayer) -> str:
    """A ranking within groups in words: each group's top rows, ties said."""
    cols, value_at = result.columns, metrics[0]
    group_refs = set(plan.rank_within)
    group_at = [i for i in dims if (cols[i].ref or "") in group_refs or any(
        (cols[i].ref or "").split(":")[0] == g.split(":")[0] for g in group_refs)]
    ranked_at = [i for i in dims if i not in group_at]
    groups: dict[tuple, list[tuple]] = {}
    for row in result.rows:
        groups.setdefault(tuple(row[i] for i in group_at), []).append(row)
    word = "Top" if not plan.order_by or plan.order_by[0].descending else "Bottom"
    what = " and ".join(cols[i].label.lower() for i in ranked_at)
    within = " and ".join(cols[i].label.lower() for i in group_at)
    def cell(value: Scalar, i: int) -> str:
        return period_label(value, cols[i].grain) if cols[i].grain else format_value(value, cols[i])

    parts = []
    for key, rows in list(groups.items())[:4]:
        shown = ", ".join(" · ".join(cell(r[i], i) for i in ranked_at) + f" ({_value(r[value_at], cols[value_at])})"
                          for r in rows[:3])
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        parts.append(f"{' · '.join(cell(k, i) for k, i in zip(key, group_at))}: {shown}{more}")
    ties = any(len(rows) > (plan.limit or 0) for rows in groups.values())
    tail = f"; and {len(groups) - 4} more {within}s" if len(groups) > 4 else ""
    what = what if plan.limit == 1 else _plural(what)
    head = f"The {word.lower()} {what}" if plan.limit == 1 else f"{word} {plan.limit} {what}"
    text = (f"{head} by {cols[value_at].label.lower()} in each {within}{scope_text}: "
            + "; ".join(parts) + tail + ".")
    return text + (" Tied rows share a rank, so some groups show more." if ties else "")


def _compare_message(plan: QueryPlan, result: ResultSet, dims: list[int], layer: SemanticLayer) -> str:
    """Two periods compared, leading with the finding: "Streaming hours rose 59.2% from 2025 to 2026: 21,285 →
    33,891 hours (+12,606)"; by a breakdown, the one that rose (or fell) most and how many rose."""
    assert plan.compare is not None
    early, late = plan.compare.ordered()
    name = plan.metrics[0]
    at = {c.name: i for i, c in enumerate(result.columns)}
    cols = result.columns
    change_at, pct_at = at[f"{name}_change"], at[f"{name}_change_pct"]
    before_at, after_at = change_at - 2, change_at - 1
    metric = _metric_label(layer, name)
    metric = metric[:1].upper() + metric[1:]
    scope = scope_phrases(plan.model_copy(update={"compare": None, "time": None}), layer)
    scope_text = f" ({'; '.join(scope)})" if scope else ""
    periods = f"from {early.label} to {late.label}"

    def moved(row: tuple, when: str = "") -> str:
        change, pct = row[change_at], row[pct_at]
        if not isinstance(change, (int, float)):
            return "cannot be compared (no value in one period)"
        verb = "rose" if change > 0 else "fell" if change < 0 else "was unchanged"
        size = f" {abs(pct):.1%}" if isinstance(pct, (int, float)) and change else ""
        sign = "+" if change >= 0 else "−"
        return (f"{verb}{size}{when}: {_value(row[before_at], cols[before_at])} → "
                f"{_value(row[after_at], cols[after_at])} ({sign}{format_value(abs(change), cols[change_at])})")

    if not dims:
        return f"{metric}{scope_text} {moved(result.rows[0], ' ' + periods)}."
    rows = [r for r in result.rows if isinstance(r[change_at], (int, float))]
    label = " and ".join(cols[i].label.lower() for i in dims)
    if not rows:
        return f"{metric} by {label}{scope_text}, {periods}: no group has a value in both periods."

    def who(row: tuple) -> str:
        return " · ".join(format_value(row[i]) for i in dims)

    by_change = plan.order_by and plan.order_by[0].ref in (f"{name}_change", f"{name}_change_pct")
    descending = not plan.order_by or plan.order_by[0].descending
    key = pct_at if by_change and plan.order_by[0].ref.endswith("_pct") else change_at
    ranked = sorted((r for r in rows if isinstance(r[key], (int, float))), key=lambda r: r[key], reverse=descending) or rows
    top = ranked[0]
    rose = sum(1 for r in rows if r[change_at] > 0)
    lead = f"{who(top)} {moved(top)}"
    if by_change:
        word = "most" if (top[change_at] > 0) == descending else "least"
        lead = f"{who(top)} {moved(top).replace(':', f' ({word})', 1)}" if top[change_at] else lead
        rest = ", ".join(f"{who(r)} ({'+' if r[key] >= 0 else '−'}"
                         + (f"{abs(r[key]):.1%})" if key == pct_at else f"{format_value(abs(r[key]), cols[key])})")
                         for r in ranked[1:3])
        return f"{metric} by {label}{scope_text}, {periods}: {lead}" + (f"; then {rest}" if rest else "") + "."
    return (f"{metric} by {label}{scope_text}, {periods}: {rose} of {len(rows)} rose; the largest change: {lead}.")


def _running_message(plan: QueryPlan, result: ResultSet, dims: list[int], scope_text: str) -> str:
    """A running total: where it ended, from where it started ("UA spend by month (2026), added up: $31,502 by
    Oct 2026, from $1,110 in Jan 2026")."""
    cols = result.columns
    total_at = len(cols) - 1
    own_at = next(i for i, c in enumerate(cols) if c.kind == "metric")
    time_at = next(i for i in dims if cols[i].grain or (cols[i].ref or "").startswith(METRIC_TIME))
    groups = [i for i in dims if i != time_at]
    head = f"{cols[total_at].label}{scope_text}"
    if not groups:
        first, last = result.rows[0], result.rows[-1]
        return (f"{head}: {_value(last[total_at], cols[total_at])} by "
                f"{period_label(str(last[time_at]), cols[time_at].grain)}, from "
                f"{_value(first[own_at], cols[own_at])} in {period_label(str(first[time_at]), cols[time_at].grain)}.")
    ends: dict[tuple, tuple] = {}
    for row in result.rows:
        ends[tuple(row[i] for i in groups)] = row
    ranked = sorted(ends.items(), key=lambda kv: kv[1][total_at] if isinstance(kv[1][total_at], (int, float)) else 0,
                    reverse=True)
    parts = [f"{' · '.join(format_value(v) for v in key)} {_value(row[total_at], cols[total_at])} by "
             f"{period_label(str(row[time_at]), cols[time_at].grain)}" for key, row in ranked[:3]]
    more = f"; and {len(ranked) - 3} more" if len(ranked) > 3 else ""
    return f"{head}: " + "; ".join(parts) + more + "."


def _plural(words: str) -> str:
    """The plural of a label's last word ("country" -> "countries", "device type" -> "device types").

    >>> _plural("country"), _plural("device type"), _plural("genres"), _plural("branch"), _plural("day")
    ('countries', 'device types', 'genres', 'branches', 'days')
    """
    head, _, last = words.rpartition(" ")
    if not last or last.endswith("s"):
        plural = last
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        plural = last[:-1] + "ies"
    elif last.endswith(("x", "ch", "sh", "z")):
        plural = last + "es"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def _value(v: Scalar, col: ColumnMeta) -> str:
    text = format_value(v, col)
    unit = col.unit
    if unit and col.format not in ("currency", "percent") and unit not in ("share",) and isinstance(v, (int, float)):
        text += f" {unit}"
    return text


def compose_message(plan: QueryPlan, result: ResultSet, layer: SemanticLayer) -> str:
    """The answer in words, leading with the number."""
    cols = result.columns
    metrics = [i for i, c in enumerate(cols) if c.kind == "metric"]
    dims = [i for i, c in enumerate(cols) if c.kind == "dimension"]
    scope = scope_phrases(plan, layer)
    scope_text = f" ({'; '.join(scope)})" if scope else ""
    nodata = next((n for n in plan.notes if n.startswith("There is no data")), None)
    if nodata is not None and all(v is None for r in result.rows for v, c in zip(r, cols) if c.kind == "metric"):
        return nodata + " Ask about a period inside it."
    if plan.rows_of is not None:
        node = layer.nodes.get(plan.rows_of)
        what = (node.display if node else plan.rows_of).lower()
        total = result.total_rows if result.total_rows is not None else len(result.rows)
        if not result.rows:
            return f"No {what} matched{scope_text}."
        shown = (f"showing {len(result.rows):,} of {total:,}" if total > len(result.rows)
                 else f"{total:,} in all")
        first = ", ".join(format_value(r[dims[0]]) for r in result.rows[:3]) if dims else ""
        more = "…" if len(result.rows) > 3 else ""
        return f"{what[:1].upper() + what[1:]}{scope_text}: {shown}" + (f" ({first}{more})." if first else ".")
    if plan.threshold is not None and result.rows and cols[-1].name.endswith("_count"):
        n = cols[-1]
        if not dims:
            return f"{n.label}{scope_text}: {format_value(result.rows[0][-1], n)}."
        parts = ", ".join(f"{' · '.join(format_value(r[i]) for i in dims)} {format_value(r[-1], n)}"
                          for r in result.rows[:6])
        return f"{n.label}{scope_text}: {parts}" + ("…" if len(result.rows) > 6 else "") + "."
    if not metrics:
        return f"{len(result.rows):,} rows."
    if plan.share is not None and result.rows and cols[metrics[-1]].name.endswith("_share"):
        return _share_message(plan, result, metrics, dims, scope_text)
    if plan.compare is not None and result.rows and plan.metrics and any(c.name == f"{plan.metrics[0]}_change"
                                                                         for c in cols):
        text = _compare_message(plan, result, dims, layer)
        empty = next((n for n in plan.notes if n.startswith("There is no data")), None)
        short = next((n for n in plan.notes if "is not complete in the data" in n), None)
        return f"{empty} {text}" if empty else f"{text} {short}" if short else text
    if plan.running_total and result.rows and cols[-1].name.endswith("_running_total"):
        return _running_message(plan, result, dims, scope_text)
    if plan.rank_within and result.rows and cols[-1].name == RANK_COLUMN:
        return _ranked_message(plan, result, metrics, dims, scope_text, layer)
    first = metrics[0]
    mlabel = cols[first].label
    if not result.rows:
        return f"No data matched {mlabel.lower()}{scope_text}. Try a wider time range or fewer filters."
    if not dims:
        row = result.rows[0]
        parts = [f"{cols[i].label}: {_value(row[i], cols[i])}" for i in metrics]
        return "; ".join(parts) + (f"{scope_text}." if scope_text else ".")

    time_dims = [i for i in dims if (cols[i].grain or (cols[i].ref or "").startswith(METRIC_TIME))]
    cat_dims = [i for i in dims if i not in time_dims]
    by = " and ".join(cols[i].label.lower() for i in dims)
    head = f"{mlabel} by {by}{scope_text}"
    rows = [r for r in result.rows if r[first] is not None]
    if not rows:
        return f"{head}: no values."

    if time_dims and not cat_dims:
        t = time_dims[0]
        grain = cols[t].grain
        ordered = sorted(rows, key=lambda r: str(r[t]))
        a, b = ordered[0], ordered[-1]
        text = (f"{head}: from {_value(a[first], cols[first])} in {period_label(a[t], grain)} "
                f"to {_value(b[first], cols[first])} in {period_label(b[t], grain)}")
        if isinstance(a[first], (int, float)) and isinstance(b[first], (int, float)) and a[first]:
            change = (b[first] - a[first]) / abs(a[first])
            text += f" ({change:+.1%})"
        peak = max(ordered, key=lambda r: r[first])
        if len(ordered) > 2:
            text += f"; the peak was {_value(peak[first], cols[first])} in {period_label(peak[t], grain)}"
        return text + "."

    c = cat_dims[0]
    descending = not plan.order_by or plan.order_by[0].descending
    ranked = sorted(rows, key=lambda r: r[first], reverse=descending)  # type: ignore[arg-type, return-value]
    label = cols[c].label.lower()
    if len(dims) == 1:
        top = ranked[0]
        word = "highest" if descending else "lowest"
        if len(ranked) == 1 and plan.limit != 1:
            return f"{mlabel} for {format_value(top[c])}{scope_text}: {_value(top[first], cols[first])}."
        if plan.limit == 1:
            said = mlabel.lower()
            if not (descending and said.split(" ", 1)[0] in _HIGH_WORDS):  # "the largest order", not "the highest largest"
                said = f"{word} {said}"
            return f"{format_value(top[c])} has the {said}{scope_text}: {_value(top[first], cols[first])}."
        base = plan.metrics[0] if plan.metrics else ""
        metric = layer.metrics.get(base)
        share = ""
        total = sum(r[first] for r in rows if isinstance(r[first], (int, float)))
        if metric is not None and not metric.is_derived and metric.agg in _ADDITIVE and total > 0 and descending \
                and plan.limit is None and plan.per is None:  # (averages per entity do not add up)
            share = f" ({top[first] / total:.0%} of the total)"
        rest = ", ".join(f"{format_value(r[c])} ({format_value(r[first], cols[first])})" for r in ranked[1:3])
        lead = ("leads" if not metric or metric.better != "lower" else "is highest") if descending else "is lowest"
        text = f"{head}: {format_value(top[c])} {lead} with {_value(top[first], cols[first])}{share}"
        if rest:
            text += f", followed by {rest}"
        if plan.limit and len(ranked) >= plan.limit:
            text = f"Top {plan.limit} — " + text if descending else f"Bottom {plan.limit} — " + text
        return text + "."
    if time_dims:
        t = time_dims[0]
        last = max(str(r[t]) for r in rows)
        latest = [r for r in ranked if str(r[t]) == last]
        top = latest[0]
        series = len({r[c] for r in rows})
        return (f"{head}: {series} {label} series; in {period_label(last, cols[t].grain)}, "
                f"{format_value(top[c])} leads with {_value(top[first], cols[first])}.")
    top = ranked[0]
    names = " · ".join(format_value(top[i]) for i in cat_dims)
    return f"{head}: the largest is {names} with {_value(top[first], cols[first])}."


def reasoning_steps(plan: QueryPlan, layer: SemanticLayer, compiled: CompiledQuery | None = None,
                    result: ResultSet | None = None, guarded_tables: Sequence[str] = ()) -> list[str]:
    """Readable steps: which definitions, dimensions, filters and time range were chosen, from what."""
    steps: list[str] = []
    if any(g.kind == "context" for g in plan.groundings):
        steps.append("Continued from the previous question, keeping what this one did not change.")
    if any(g.kind == "example" for g in plan.groundings):
        g = next(g for g in plan.groundings if g.kind == "example")
        steps.append(f"Reused a verified answer to a similar question (“{g.phrase}”).")
    for name in plan.metrics:
        m = layer.metrics.get(name)
        if m is None:
            continue
        g = next((g for g in plan.groundings if g.kind == "metric" and g.ref == name), None)
        how = f" from “{g.phrase}” ({g.source})" if g else ""
        definition = (f"{m.expr} (a ratio computed from the totals at each grain)" if m.is_derived
                      else f"{(m.agg or '').upper()}({m.expr}) over {m.source}" + (f" where {m.filter}" if m.filter else ""))
        owner = f", owned by {m.owner}" if m.owner else ""
        steps.append(f"Metric {m.display} [{name}]{how}: {m.description.rstrip('.')}. Definition: {definition}{owner}.")
    for ref in plan.dimensions:
        g = next((g for g in plan.groundings if g.kind in ("dimension", "grain") and g.ref == ref), None)
        how = f" from “{g.phrase}”" if g else ""
        if ref.startswith(METRIC_TIME):
            steps.append(f"Grouped by {ref.partition(':')[2] or 'day'}{how}, on each metric's own date column.")
        else:
            steps.append(f"Grouped by {_dim_label(layer, ref)} [{ref}]{how}.")
    for f in plan.filters:
        g = next((g for g in plan.groundings if g.kind == "filter" and g.ref == f.describe()), None)
        how = f" from “{g.phrase}” ({g.source})" if g else ""
        steps.append(f"Filtered on {f.describe()}{how}.")
    if plan.time is not None:
        g = next((g for g in plan.groundings if g.kind == "time"), None)
        how = f" from “{g.phrase}”" if g else ""
        rng = f"{plan.time.start or 'the beginning'} to {plan.time.end or 'the latest data'}"
        cols = sorted({layer.nodes[layer.metrics[b].source].time_column or "?" for b in (compiled.base_metrics if compiled else ())
                       if layer.metrics.get(b) and layer.metrics[b].source in layer.nodes})
        on = f" on {', '.join(cols)}" if cols else ""
        steps.append(f"Time range {plan.time.label}: {rng}{how}{on}.")
    if plan.order_by:
        o = plan.order_by[0]
        label = _metric_label(layer, o.ref) if o.ref in layer.metrics else _dim_label(layer, o.ref)
        steps.append(f"Ordered by {label}, {'highest' if o.descending else 'lowest'} first"
                     + (f", keeping the top {plan.limit}." if plan.limit else "."))
    if compiled is not None and compiled.joins:
        steps.append("Joins through the declared links: " + "; ".join(j.split(" (")[0] for j in compiled.joins) + ".")
    steps.extend(plan.notes)
    if plan.sql:
        steps.append("This question is outside the semantic layer, so the model wrote SQL over the allowed tables; "
                     "it passed the same guard, but no governed definition vouches for it.")
    if result is not None:
        tables = ", ".join(guarded_tables) if guarded_tables else ""
        steps.append(f"The SQL passed the read-only guard{(' (tables: ' + tables + ')') if tables else ''} and ran in "
                     f"{result.elapsed_ms:.0f} ms, returning {len(result.rows):,} row{'s' if len(result.rows) != 1 else ''}"
                     + (" (capped)." if result.truncated else "."))
    return steps
