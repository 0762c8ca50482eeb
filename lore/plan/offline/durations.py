"""Time between two dates: "the average days between the loss and its report", "avg time from report to close",
"how long does it take to close": the metric the layer defines as the time between two date columns of its
source (an expression such as ``DATE_DIFF('day', reported_date, closed_date)``), named by those two dates.

The metric's own names need not be said: the two dates are named by the words of their columns (labels and
synonyms, less the words every date shares: "date", "day", "on"). Two dates of one table named this way with no
metric measuring the time between them are asked back, with the metrics that do measure a time between dates:
never answered with a count of something else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from lore.plan.catalog import ARTICLES, PhraseMatch, Token, phrase
from lore.retrieve.lexical import stem
from lore.types import PlanOutcome

if TYPE_CHECKING:  # (the lexicon builds the durations; the pass reads them)
    from lore.plan.catalog import Catalog
    from lore.plan.offline.env import Env
    from lore.plan.offline.parse import Parse


@dataclass(frozen=True)
class Duration:
    """A metric measuring the time from one date column of its source to another."""

    metric: str
    start: str  # the earlier date's attribute (``claims.reported_date``)
    end: str


def _stems(words: str) -> frozenset[str]:
    return frozenset(stem(w) for w in words.split())


#: words every date shares: left out of a date's own words ("date of loss" is named "loss")
_DATE_WORDS = _stems("date dates day days time on at of when")
#: words passed over between a date's words ("the date the claim was reported", "its first report")
_PASSED = _stems("the a an its their his her it was were is are be being been got get gets getting first initial "
                  "that this") | \
    frozenset(ARTICLES) | _DATE_WORDS
#: words that say a length of time ("days", "how long", "lag")
_LENGTH = _stems("day days week weeks month months hour hours minute minutes time long elapsed gap lag duration "
                 "turnaround")
#: words before the two dates that belong to the same phrase ("on avg how many days between ...")
_LEAD = _LENGTH | _stems("average avg mean typical typically usual number of the a an on how many much it take takes "
                         "took taking does do did is was")
#: the word joining the two dates, after the word that opens them
_JOINS = {"between": frozenset({"and", "&"}), "from": frozenset({"to", "till", "until", "through", "thru"})}


def duration_metrics(catalog: Catalog) -> tuple[tuple[Duration, ...], dict[str, frozenset[tuple[str, ...]]]]:
    """The metrics that measure the time between two date columns of their source, and every date attribute's
    own words (its labels and synonyms less the words all dates share)."""
    layer = catalog.layer
    words: dict[str, set[tuple[str, ...]]] = {}
    for e in catalog.dimension_entries:
        col = catalog.column(e.ref)
        if col is None or col.kind != "time" or ":" in e.ref:
            continue
        own = tuple(s for s in e.phrase if s not in _DATE_WORDS)
        if own:
            words.setdefault(e.ref, set()).add(own)
    for node in layer.nodes.values():
        for col in node.columns:
            own = tuple(s for s in phrase(col.name.replace("_", " ")) if s not in _DATE_WORDS)
            if col.kind == "time" and own:
                words.setdefault(f"{node.name}.{col.name}", set()).add(own)
    out = []
    for m in layer.metrics.values():
        if m.is_derived or not m.source or not m.expr or m.source not in layer.nodes:
            continue
        try:
            tree = sqlglot.parse_one(m.expr, read="duckdb")
        except sqlglot.errors.ParseError:
            continue
        while isinstance(tree, exp.Paren):
            tree = tree.this
        if not isinstance(tree, (exp.DateDiff, exp.Sub)):
            continue
        ends = []
        for side in (tree.expression, tree.this):  # (DATE_DIFF(unit, a, b) and b - a both read as this=b)
            cols = list(side.find_all(exp.Column))
            ends.append(f"{m.source}.{cols[0].name}" if len(cols) == 1 else None)
        if all(ends) and ends[0] != ends[1] and all(ref in words for ref in ends):
            out.append(Duration(m.name, ends[0], ends[1]))  # type: ignore[arg-type]
    return tuple(out), {k: frozenset(v) for k, v in words.items()}


def _dates_in(tokens: Sequence[Token], start: int, end: int, words: dict[str, frozenset[tuple[str, ...]]],
              node_words: Mapping[str, object]) -> set[str]:
    """The date attributes the words ``start``..``end`` name, each wholly: one date's own words, and only words
    passed over (articles, "date", "was", the table's own words: "the date the claim was reported") around them."""
    stems = [t.stem for t in tokens[start:end]]
    out = set()
    for ref, phrases in words.items():
        for ph in phrases:
            for at in range(len(stems) - len(ph) + 1):
                if tuple(stems[at:at + len(ph)]) == ph and all(
                        s in _PASSED or s in node_words for k, s in enumerate(stems)
                        if not at <= k < at + len(ph)):
                    out.add(ref)
    return out


def _date_after(tokens: Sequence[Token], start: int, words: dict[str, frozenset[tuple[str, ...]]],
                node_words: Mapping[str, object], walls: set[int]) -> tuple[set[str], int]:
    """The date attributes named by the fewest words from ``start`` on (at most seven, within the clause), and
    where they end."""
    for end in range(start + 1, min(start + 8, len(tokens) + 1)):
        found = _dates_in(tokens, start, end, words, node_words)
        if found:
            return found, end
        if end - 1 in walls:
            break
    return set(), start


def durations_named(p: Parse, env: Env, matches: list[PhraseMatch]) -> list[PhraseMatch]:
    """"days between <date> and <date>", "time from <date> to <date>", "time to <date>": the metric measuring
    the time between those dates takes the words (and the metric phrases inside them); two dates no metric
    measures the time between are asked back."""
    lex, tokens = env.lex, p.tokens
    if not lex.date_words or not any(t.text.lower() in ("between", "from", "to") for t in tokens):
        return matches
    node_words = lex.node_words  # (every stem there names at least one node)
    walls = {i for i in range(len(tokens) - 1)
             if any(ch in p.question[tokens[i].end:tokens[i + 1].start] for ch in ",;:?()")}
    found: list[tuple[int, int, Duration]] = []
    for i, t in enumerate(tokens):
        word = t.text.lower()
        if i in p.consumed or word not in ("between", "from", "to") or (found and i < found[-1][1]):
            continue
        lead = i
        while lead > max(0, i - 8) and tokens[lead - 1].stem in _LEAD and lead - 1 not in p.consumed \
                and lead - 1 not in walls:
            lead -= 1
        if not any(tokens[k].stem in _LENGTH for k in range(lead, i)):
            continue  # ("revenue from January to March": periods, not a length of time)
        if word == "to":  # "time to close", "how long does it take to settle": the date it ends at
            if tokens[i - 1].stem not in _LENGTH | _stems("take takes took taking"):
                continue
            ends, stop = _date_after(tokens, i + 1, lex.date_words, node_words, walls)
            fits = {d.metric: d for d in lex.durations if d.end in ends}
            if len(fits) == 1:
                d = next(iter(fits.values()))
                found.append((lead, _rows_named(tokens, stop, lex, d, walls), d))
            continue
        for j in range(i + 2, min(i + 8, len(tokens))):
            if tokens[j].text.lower() in _JOINS[word] or j - 1 in walls:
                break
        else:
            continue
        if tokens[j].text.lower() not in _JOINS[word]:
            continue
        firsts = _dates_in(tokens, i + 1, j, lex.date_words, node_words)
        seconds, stop = _date_after(tokens, j + 1, lex.date_words, node_words, walls)
        if not firsts or not seconds:
            continue
        fits = {d.metric: d for d in lex.durations
                if (d.start in firsts and d.end in seconds) or (d.end in firsts and d.start in seconds)}
        if len(fits) == 1:
            d = next(iter(fits.values()))
            found.append((lead, _rows_named(tokens, stop, lex, d, walls), d))
        elif not fits:
            pairs = [(a, b) for a in firsts for b in seconds if a != b and a.split(".")[0] == b.split(".")[0]]
            if pairs:
                _no_duration(p, env, pairs[0], p.words(lead, stop))
                return matches
    if not found:
        return matches
    out = [m for m in matches if not any(m.start < stop and m.end > start for start, stop, _ in found)]
    inside = {k for start, stop, _ in found for k in range(start, stop)}
    # ("avg days from loss to report - 2024 losses": the period is the metric's own, not a date of the report)
    p.attached = [(r, [] if set(named) & inside else refs, [k for k in named if k not in inside])
                  for r, refs, named in p.attached]
    for start, stop, d in found:
        p.draft.notes.append(f"Read “{p.words(start, stop)}” as {lex.metric_label(d.metric)} (from "
                             f"{lex.label(d.start)} to {lex.label(d.end)}).")
        out.append(PhraseMatch(d.metric, start, stop, 0.95, "rule: time between two dates", True))
    return sorted(out, key=lambda m: m.start)


def _rows_named(tokens: Sequence[Token], stop: int, lex, d: Duration, walls: set[int]) -> int:  # noqa: ANN001
    """Where the words end once the rows the time is measured on are passed over ("time to close *a claim*")."""
    node = d.start.split(".")[0]
    while stop < len(tokens) and stop - 1 not in walls and (
            tokens[stop].stem in ARTICLES or node in lex.node_words.get(tokens[stop].stem, frozenset())):
        stop += 1
    return stop


def _no_duration(p: Parse, env: Env, pair: tuple[str, str], said: str) -> None:
    """Two dates named for a length of time no metric measures: asked back, with the metrics that measure one."""
    lex = env.lex
    known = "; ".join(f"{lex.metric_label(d.metric)} ({lex.label(d.start)} to {lex.label(d.end)})"
                      for d in lex.durations)
    p.settle(PlanOutcome(
        status="clarify",
        message=(f"No governed metric measures the time from {lex.label(pair[0])} to {lex.label(pair[1])} "
                 f"(“{said}”). " + (f"The times between dates I can compute: {known}." if known else
                                   "Ask the metric owner to define one (a metric over DATE_DIFF of the two dates).")),
        suggestions=tuple(f"{lex.metric_label(d.metric)} by month" for d in lex.durations[:3]),
        signals={"metric_match": 0.0}))
