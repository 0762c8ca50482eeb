"""Passes over words and dates: misspellings read as the layer's words, time ranges and grains."""

from __future__ import annotations

import bisect
import difflib
import functools
import re
from datetime import date, timedelta

from lore.plan.catalog import FILLER, Token, find_phrases, phrase
from lore.plan.offline.env import Env
from lore.plan.offline.parse import Parse
from lore.plan.offline.text import tokens_in
from lore.plan.timeparse import (GrainMention, OffsetMention, TimeRange, default_grain, month_bounds, parse_time,
                                  period_label, quarter_bounds, shift_months, shifted, week_start)
from lore.plan.words import (ALL_TIME_RE, CHANGE_RE, COMPARE_RE, DECLINE_RE, FUNCTION_WORDS, GROWTH_RE, KNOWN_WORDS,
                              RANKED_CHANGE_RE)
from lore.retrieve.lexical import STOP_WORDS
from lore.semantic.spec import METRIC_TIME
from lore.types import Compare, Filter, Grounding, TimeWindow


@functools.lru_cache(maxsize=8192)
def _closest(word: str, vocabulary: tuple[str, ...]) -> str | None:
    close = difflib.get_close_matches(word, vocabulary, n=1, cutoff=0.8)
    return close[0] if close else None


def correct_spelling(p: Parse, env: Env) -> None:
    """Read a misspelt word as the closest word of the layer's vocabulary ("revnue" -> revenue)."""
    vocab = env.lex.spelling
    known = env.lex.catalog.vocabulary
    out: list[Token] = []
    for t in p.tokens:
        word = t.text.lower()
        short = _abbreviated(word, t.stem, vocab, known) if 3 <= len(word) <= 4 else None
        if short is None and 3 <= len(word) <= 4 and out:
            short = _abbreviated_in_name(word, t.stem, [x.stem for x in out], env)
        if short is None and len(word) == 5 and word.endswith("s") and not word.endswith("ss"):
            short = _abbreviated(word[:-1], word[:-1], vocab, known)  # "custs": customers, abbreviated
        if short is not None:  # "rev by store": the one longer word of the layer it starts
            p.draft.notes.append(f"Read “{t.text}” as short for “{env.lex.surface.get(short, short)}”.")
            p.draft.signals["spelling"] = 0.85
            out.append(Token(t.text, short, t.start, t.end))
            continue
        if len(word) >= 4 and word.isalpha() and t.stem not in known and word not in STOP_WORDS \
                and t.stem not in FUNCTION_WORDS and word not in KNOWN_WORDS:
            best = _closest(t.stem, vocab)
            if best is not None and best != t.stem:
                p.draft.notes.append(f"Read “{t.text}” as a misspelling of “{env.lex.surface.get(best, best)}”.")
                p.draft.signals["spelling"] = 0.85
                if len(word) <= 5:  # one letter off a short word may be another word ("brand" is no "band")
                    p.draft.signals["coverage_cap"] = min(p.draft.signals.get("coverage_cap", 1.0), 0.75)
                t = Token(t.text, best, t.start, t.end)
        out.append(t)
    p.tokens = out


def _abbreviated_in_name(word: str, stem_: str, before: list[str], env: Env) -> str | None:
    """"loss adjustment exp": a short word (3-4 letters, unknown) that starts the next word of the one name of the
    layer whose first words are the words just before it (several words start with "exp"; one name goes on so)."""
    lex = env.lex
    if not word.isalpha() or stem_ in lex.catalog.vocabulary or word in STOP_WORDS or stem_ in FUNCTION_WORDS \
            or word in KNOWN_WORDS:
        return None
    found = set()
    for e in (*lex.catalog.metric_entries, *lex.catalog.dimension_entries, *lex.catalog.node_entries):
        k = len(e.phrase) - 1
        if 1 <= k <= len(before) and tuple(before[-k:]) == e.phrase[:k] and len(e.phrase[k]) >= 5 \
                and e.phrase[k].startswith(word):
            found.add(e.phrase[k])
    return found.pop() if len(found) == 1 else None


def _abbreviated(word: str, stem_: str, vocab, known) -> str | None:  # noqa: ANN001
    """The one vocabulary word of five letters or more that ``word`` (3-4 letters, unknown) starts, else None."""
    if not word.isalpha() or stem_ in known or word in STOP_WORDS or stem_ in FUNCTION_WORDS or word in KNOWN_WORDS:
        return None
    found = {v for v in vocab if len(v) >= 5 and v.startswith(word)}
    return found.pop() if len(found) == 1 else None


def read_time(p: Parse, env: Env) -> None:
    """Time ranges and grains; a range right after a date attribute ("signed up in 2025") filters that date."""
    text, tokens, d = p.question, p.tokens, p.draft
    tp = parse_time(text, env.today, env.lex.unit_words)
    named = _time_metric_spans(p, env)
    if named:  # "month-to-date revenue", a time metric of the layer: its name, not a period
        tp = tp.model_copy(update={"ranges": tuple(r for r in tp.ranges if not any(
            a <= r.span[0] and r.span[1] <= b for a, b in named))})
    for m in ALL_TIME_RE.finditer(text):  # "all time", "ever": no range, said so
        p.use(tokens_in(tokens, m.span()), "time")
        d.notes.append("Over all the data: no time range.")
    for r in tp.ranges:
        p.use(tokens_in(tokens, r.span), "time")
    for g in tp.grains:
        p.grain_tokens |= tokens_in(tokens, g.span)
    p.use(p.grain_tokens, "grain")
    ranges = list(tp.ranges)
    # ("orders from June to July": two periods a change is asked between, neither a date attribute's filter)
    paired = len(ranges) == 2 and ranges[0].span[1] <= ranges[1].span[0] and bool(
        re.fullmatch(r"\s*(?:to|through|thru|until|and|-|–)\s*", text[ranges[0].span[1]:ranges[1].span[0]], re.I))
    for r in list(ranges):
        if paired:
            continue
        refs, named = _time_attribute_before(p, env, r)
        if refs:
            p.attached.append((r, refs, named))
            ranges.remove(r)
    if len(ranges) > 1:  # "Q1 vs Q2 revenue this year": a range holding all the others only says their year
        outer = [r for r in ranges if r.start and r.end and all(
            o is r or (o.start and o.end and r.start <= o.start and o.end <= r.end and (o.start, o.end) != (r.start, r.end))
            for o in ranges)]
        if len(outer) == 1 and (len(ranges) > 2 or not COMPARE_RE.search(text)):  # ("2019 vs this year so far")
            ranges.remove(outer[0])
    grains = list(tp.grains)
    offset = tp.offsets[0] if tp.offsets else None
    if offset is None and len(ranges) == 1 and ranges[0].period is not None and _ranks_growth(text):
        # "which branch grew most in 2026": grew since the period before
        offset = OffsetMention(unit=ranges[0].period if ranges[0].period != "half" else "period", span=(0, 0))
        d.notes.append(f"Growth in {ranges[0].label} read as the change from the {offset.unit} before.")
    if offset is not None:
        for other in tp.offsets[1:]:  # "last month vs the month before ... MoM": one comparison, said twice
            grains = [g for g in grains if not (g.span[0] < other.span[1] and other.span[0] < g.span[1])]
            if other.unit == offset.unit:
                p.use(tokens_in(tokens, other.span), "time")
        ranges, grains = _offset_periods(p, env, offset, ranges, grains)
    p.ranges = ranges
    rng: TimeRange | None = ranges[0] if ranges else None
    compare_grain = None
    explicit = next((g.grain for g in grains if not g.inferred), None)
    if len(ranges) > 1:
        rng, compare_grain = covering(ranges)
        if explicit is not None:
            compare_grain = None  # "quarterly ..., 2025 and 2026": the grain asked for shows both periods
        elif _set_comparison(p, ranges):
            compare_grain = None
        else:
            d.notes.append("Compared " + " and ".join(r.label for r in ranges) + f" side by side, by {compare_grain}.")
    if rng is not None:
        d.time = TimeWindow(start=rng.start, end=rng.end, label=rng.label)
        if rng.start is None and re.match(r"(?:through|thru)\s+(?:the\s+)?(?:year\s+)?\d{4}\b", text[rng.span[0]:], re.I):
            # ("month by month through 2024": until the end of 2024, or over the course of 2024)
            d.signals["coverage_cap"] = min(d.signals.get("coverage_cap", 1.0), 0.75)
            d.notes.append(f"“{text[rng.span[0]:rng.span[1]].strip()}” read as everything {rng.label}; for that "
                           f"year alone, ask “in {rng.label.split()[-1]}”.")
        d.groundings.append(Grounding(kind="time", ref=rng.label, phrase=text[rng.span[0]:rng.span[1]].strip(),
                                      source="rule"))
    if compare_grain is not None:
        d.dimensions.append(f"{METRIC_TIME}:{compare_grain}")
        _only_the_periods(p, ranges, compare_grain)
    grain = explicit or next((g.grain for g in grains if g.inferred), None)
    if grain is not None and compare_grain is None and d.compare is None:
        inferred = explicit is None
        g = next(g for g in grains if g.grain == grain)
        if inferred:
            grain = default_grain(rng, env.today)
            d.notes.append(f"Shown by {grain}, which suits the period asked about.")
        d.dimensions.append(f"{METRIC_TIME}:{grain}")
        d.groundings.append(Grounding(kind="grain", ref=f"{METRIC_TIME}:{grain}", phrase=text[g.span[0]:g.span[1]].strip(),
                                      source="rule"))


def _time_metric_spans(p: Parse, env: Env) -> list[tuple[int, int]]:
    """The character spans of the question naming a time metric of the layer (an offset, a window or a to-date
    metric: "MTD revenue", "revenue month to date"), whose time words are its name."""
    timed = {m.name for m in env.lex.layer.metrics.values() if m.time_type is not None}
    if not timed:
        return []
    entries = [e for e in env.lex.catalog.metric_entries if e.ref in timed]
    return [(p.tokens[m.start].start, p.tokens[m.end - 1].end) for m in find_phrases(p.tokens, entries)]


def _ranks_growth(text: str) -> bool:
    """Whether the question ranks by a rise or a fall ("which branch grew most", "the biggest drop")."""
    return RANKED_CHANGE_RE.search(text) is not None


#: the longest period, in days, each unit of an offset compares whole ("YoY" over a span longer than a year is a
#: series by year, not two periods)
_UNIT_DAYS = {"day": 1, "week": 7, "month": 31, "quarter": 92, "half": 184, "year": 366}


def _offset_periods(p: Parse, env: Env, offset: OffsetMention, ranges: list[TimeRange],
                    grains: list[GrainMention]) -> tuple[list[TimeRange], list[GrainMention]]:
    """"Q2 2026 vs the same quarter a year earlier", "hours by country year over year", "October compared with the
    previous month": the period asked about and the same period one unit earlier, compared side by side. With no
    period named, the latest complete one ("MoM": last month and the month before), except a year: this year so
    far and the same days a year earlier. Over a span longer than the unit ("QoQ for the last four quarters") the
    offset stays a grain: a series, not two periods."""
    own = [g for g in grains if g.span[0] < offset.span[1] and offset.span[0] < g.span[1]]
    if len(ranges) > 1 or any(not g.inferred for g in grains if g not in own):
        p.use(tokens_in(p.tokens, offset.span), "time")
        return ranges, [g for g in grains if g not in own]  # two periods named, or a grain asked for besides
    unit = offset.unit
    if ranges and offset.names is not None and offset.names.period == ranges[0].period:
        # "this year vs last year": the two periods as named (not the same days a year earlier)
        p.use(tokens_in(p.tokens, offset.span), "time")
        return [ranges[0], offset.names.model_copy(update={"span": offset.span})], [g for g in grains if g not in own]
    if ranges:
        period = ranges[0]
    else:
        period = _latest(env.today, "year" if unit == "period" else unit)
        p.latest_offset = unit
    if period.start is None or period.end is None:
        return ranges, grains
    days = (period.end - period.start).days + 1
    if unit == "period" and period.period is not None:
        unit = period.period  # "Q3 vs the period before": the quarter before
    if unit in _UNIT_DAYS and days > _UNIT_DAYS[unit]:
        return ranges, grains  # a series by the unit
    start, end = shifted(period.start, period.end, unit)
    earlier = TimeRange(start=start, end=end, label=period_label(start, end), span=offset.span, relative=period.relative,
                        period=period.period)
    p.use(tokens_in(p.tokens, offset.span), "time")
    p.like_for_like = True
    if not ranges:
        p.draft.notes.append(f"No period was named: compared {period.label} with {earlier.label}.")
    return [period, earlier], [g for g in grains if g not in own]


def _latest(today: date, unit: str) -> TimeRange:
    """The period an offset compares when none is named: this year so far, else the latest complete unit."""
    if unit == "year":
        start = date(today.year, 1, 1)
        return TimeRange(start=start, end=today, label=f"{today.year} so far ({period_label(start, today)})",
                         span=(0, 0), relative=True, period="year")
    if unit == "day":
        day = today - timedelta(days=1)
        return TimeRange(start=day, end=day, label=period_label(day, day), span=(0, 0), relative=True, period="day")
    if unit == "week":
        start = week_start(today) - timedelta(days=7)
        end = start + timedelta(days=6)
    elif unit == "month":
        first = shift_months(today, -1)
        start, end = month_bounds(first.year, first.month)
    else:
        this = quarter_bounds(today.year, (today.month - 1) // 3 + 1)[0]
        start = shift_months(this, -3)
        end = this - timedelta(days=1)
    return TimeRange(start=start, end=end, label=period_label(start, end), span=(0, 0), relative=True, period=unit)


def _time_attribute_before(p: Parse, env: Env, r: TimeRange) -> tuple[list[str], list[int]]:
    """Date attributes named right before a range ("signed up in 2025", "opened in 2024"), best first, and the
    tokens naming them."""
    tokens = p.tokens
    end = bisect.bisect_right(tokens, r.span[0], key=lambda t: t.end)  # the tokens that end before the range
    offset = max(0, end - 4)
    before = tokens[offset:end]
    if not before:
        return [], []
    matches = find_phrases(before, list(env.lex.time_entries))
    if not matches:
        return [], []
    m = matches[-1]
    if all(offset + i in p.grain_tokens for i in range(m.start, m.end)):
        return [], []  # "orders per day over the past week": "day" is the grain, not a date named
    if m.end != len(before) and not all(t.stem in FILLER or t.text.lower() in ("in", "on", "during", "since", "before",
                                                                                 "after", "between", "from")
                                        for t in before[m.end:]):
        return [], []
    span_stems = tuple(t.stem for t in before[m.start:m.end] if t.stem not in FILLER)
    refs = [e.ref for e in env.lex.time_entries if e.phrase == span_stems]
    return refs, list(range(offset + m.start, offset + m.end))


def attach_dates(p: Parse, env: Env) -> None:
    """Filter the date attribute a range names; if none is reachable, the range is the metric's own time."""
    d, lex = p.draft, env.lex
    facts = lex.facts_of(d.base_metrics())
    for r, refs, named in p.attached:
        p.use([i for i in named if i not in p.used], "time")  # "signed up" names the date filtered
        reachable = [ref for ref in refs if lex.reachable(facts, ref)]
        own = {lex.layer.nodes[f].time_column for f in facts}
        mine = [ref for ref in reachable if ref.split(".")[1] in own and ref.split(".")[0] in facts]
        if not reachable or mine:  # a date the metric is dated by ("ordered in 2020" for orders) is its own time
            if d.time is None:
                d.time = TimeWindow(start=r.start, end=r.end, label=r.label)
                p.ranges.append(r)
                d.groundings.append(Grounding(kind="time", ref=r.label, phrase=p.question[r.span[0]:r.span[1]].strip(),
                                              source="rule"))
            elif p.latest_offset is not None and r.start is not None and r.end is not None:
                _offset_from(p, r, p.latest_offset)  # "order count last month MoM": that month and the one before
            elif r not in p.ranges:
                _compare_with(p, r)  # "items per order, 2019 vs 2020": both years, side by side
            continue
        ref = reachable[0]
        f = TimeWindow(start=r.start, end=r.end).filter()
        if f is None:
            continue
        f = f.model_copy(update={"ref": ref})
        d.filters.append(f)
        d.groundings.append(Grounding(kind="filter", ref=f.describe(), phrase=p.question[r.span[0]:r.span[1]].strip(),
                                      source=f"a date of {lex.label(ref)}"))


def _offset_from(p: Parse, r: TimeRange, unit: str) -> None:
    """An offset read before its period (the period named after a date's words): compare that period, not the
    latest one, with the same period one ``unit`` earlier."""
    if unit == "period" and r.period is not None:
        unit = r.period
    start, end = shifted(r.start, r.end, unit)  # type: ignore[arg-type]
    earlier = TimeRange(start=start, end=end, label=period_label(start, end), span=r.span, relative=r.relative,
                        period=r.period)
    _compare_instead(p, r, earlier, phrase=p.question[r.span[0]:r.span[1]].strip(), source="rule",
                     stale=("No period was named", "Compared "))


def _compare_with(p: Parse, r: TimeRange) -> None:
    """A second period of the metric's own time, read after the first: the window covers both, shown side by side
    (by the grain asked for, else one that tells them apart)."""
    d = p.draft
    p.ranges.append(r)
    rng, grain = covering(sorted(p.ranges, key=lambda x: x.span[0]))
    d.time = TimeWindow(start=rng.start, end=rng.end, label=rng.label)
    d.groundings = [g for g in d.groundings if g.kind != "time"]
    d.groundings.append(Grounding(kind="time", ref=rng.label, phrase=rng.label, source="rule"))
    if not any(x.startswith(METRIC_TIME) for x in d.dimensions):
        if _set_comparison(p, p.ranges):
            return
        d.dimensions.append(f"{METRIC_TIME}:{grain}")
        d.notes.append("Compared " + rng.label + f" side by side, by {grain}.")
        _only_the_periods(p, p.ranges, grain)


def period_kind(window: TimeWindow | None) -> str:
    """The calendar unit a period is one of (a whole month, quarter or year, one day, seven days from a Monday), else
    "period" (the span of the same length).

    >>> period_kind(TimeWindow(start=date(2026, 7, 1), end=date(2026, 9, 30)))
    'quarter'
    """
    if window is None or window.start is None or window.end is None:
        return "period"
    start, end = window.start, window.end
    if start == end:
        return "day"
    if start.weekday() == 0 and (end - start).days == 6:
        return "week"
    if start.day == 1 and end == month_bounds(end.year, end.month)[1]:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        kind = {1: "month", 3: "quarter", 12: "year"}.get(months)
        if kind == "quarter" and start.month % 3 != 1 or kind == "year" and start.month != 1:
            return "period"
        return kind or "period"
    return "period"


def compare_previous(p: Parse, unit: str | None, other: TimeRange | None) -> bool:
    """A follow-up comparing the previous answer's period: with the same period one ``unit`` earlier ("and vs
    last year?"), or with the one period this turn names ("compare that with Q2"); whether it did."""
    prev = p.previous.time if p.previous is not None else None
    if prev is None or prev.start is None or prev.end is None or p.previous.compare is not None:  # type: ignore[union-attr]
        return False
    period = TimeRange(start=prev.start, end=prev.end, label=prev.label or period_label(prev.start, prev.end),
                       span=(0, 0))
    if other is None:
        if unit is None:
            return False
        start, end = shifted(prev.start, prev.end, unit)
        other = TimeRange(start=start, end=end, label=period_label(start, end), span=(0, 0))
        p.like_for_like = True  # the same days one unit earlier: both stop where the data stops
    return _compare_instead(p, period, other, phrase=other.label, source="rule, with the previous question's period",
                            stale=("No period was named", "Compared "))


def _compare_instead(p: Parse, period: TimeRange, other: TimeRange, *, phrase: str, source: str,
                     stale: tuple[str, ...]) -> bool:
    """Compare ``period`` with ``other`` in place of what the draft compared (its notes starting with ``stale``
    dropped): the window covering both, one time grounding; whether the two could be compared."""
    d = p.draft
    d.notes = [n for n in d.notes if not n.startswith(stale)]
    d.compare = None
    p.latest_offset = None
    if not _set_comparison(p, [period, other]):
        return False
    early, late = d.compare.ordered()  # type: ignore[union-attr]
    d.time = TimeWindow(start=early.start, end=max(early.end, late.end), label=f"{period.label} and {other.label}")  # type: ignore[type-var]
    d.groundings = [g for g in d.groundings if g.kind != "time"]
    d.groundings.append(Grounding(kind="time", ref=d.time.label, phrase=phrase, source=source))
    p.ranges = [period, other]
    return True


#: the words that set two periods against each other ("Q2 against Q1", "2025 vs 2024")
_VERSUS_WORDS = re.compile(r"\b(?:vs\.?|versus|against|compared?|comparing|comparison)\b", re.I)


def _set_comparison(p: Parse, ranges: list[TimeRange]) -> bool:
    """Set the plan's ``compare`` when two bounded, non-overlapping periods are compared (each computed whole, side
    by side with the change); whether it did. Not for more than two, or an open-ended one (then they are shown by a
    grain that tells them apart)."""
    if len(ranges) != 2 or any(r.start is None or r.end is None for r in ranges):
        return False
    a, b = sorted(ranges, key=lambda r: (r.start, r.end))
    if b.start <= a.end:  # overlapping periods ("2019 vs this year so far" in 2019) have no change between them
        return False
    windows = tuple(TimeWindow(start=r.start, end=r.end, label=r.label) for r in ranges)
    compare = Compare(periods=windows)  # type: ignore[arg-type]
    p.draft.compare = compare
    # "how did X change from A to B", "A against B": the comparison's words
    for pattern in (GROWTH_RE, DECLINE_RE, CHANGE_RE, _VERSUS_WORDS):
        for m in pattern.finditer(p.question):
            p.use([i for i in tokens_in(p.tokens, m.span()) if i not in p.used], "compare")
    early, late = compare.ordered()
    p.draft.notes.append(f"Compared {early.label} with {late.label}: each period computed whole, side by side, with "
                         f"the change from {early.label} to {late.label}.")
    return True


#: the most grain buckets a comparison lists one by one (more: the window is shown whole)
_MAX_BUCKETS = 400


def _only_the_periods(p: Parse, ranges: list[TimeRange], grain: str) -> None:
    """Two periods compared with time between them ("Q3 2026 vs Q3 2025"): the window covering both also holds the
    quarters between, so the breakdown keeps only the compared periods' own buckets."""
    wanted: list[str] = []
    for r in ranges:
        if r.start is None or r.end is None:
            return
        found = _buckets(r.start, r.end, grain)
        if found is None:
            return
        wanted += [b for b in found if b not in wanted]
    rng_start, rng_end = min(r.start for r in ranges), max(r.end for r in ranges)  # type: ignore[type-var]
    every = _buckets(rng_start, rng_end, grain)
    if every is None or len(every) == len(wanted):
        return  # adjacent periods: nothing lies between them
    ref = f"{METRIC_TIME}:{grain}"
    p.draft.filters.append(Filter(ref=ref, op="in", values=tuple(sorted(wanted))))


def _buckets(start: date, end: date, grain: str) -> list[str] | None:
    """The first days of the ``grain`` buckets a date range touches (None: an unknown grain or too many).

    >>> _buckets(date(2025, 7, 1), date(2025, 9, 30), "quarter"), _buckets(date(2025, 11, 20), date(2026, 1, 5), "month")
    (['2025-07-01'], ['2025-11-01', '2025-12-01', '2026-01-01'])
    """
    months = {"year": 12, "quarter": 3, "month": 1}.get(grain)

    def floor(day: date) -> date:
        if months is not None:  # the first month of the year, quarter or month
            return date(day.year, 1, 1) if months == 12 else shift_months(day, -((day.month - 1) % months))
        return week_start(day) if grain == "week" else day

    def step(day: date) -> date:
        return shift_months(day, months) if months is not None else day + timedelta(days=7 if grain == "week" else 1)

    if grain not in ("year", "quarter", "month", "week", "day"):
        return None
    out, day = [], floor(start)
    while day <= end:
        out.append(day.isoformat())
        if len(out) > _MAX_BUCKETS:
            return None
        day = step(day)
    return out


def covering(ranges: list[TimeRange]) -> tuple[TimeRange, str]:
    """One window over several compared periods, and the grain that shows them side by side.

    >>> from datetime import date
    >>> a = TimeRange(start=date(2025, 1, 1), end=date(2025, 12, 31), label="2025", span=(0, 4))
    >>> b = TimeRange(start=date(2026, 1, 1), end=date(2026, 11, 1), label="2026", span=(9, 13))
    >>> r, g = covering([b, a]); (r.start, r.end, r.label, g)
    (datetime.date(2025, 1, 1), datetime.date(2026, 11, 1), '2026 and 2025', 'year')
    """
    starts = [r.start for r in ranges if r.start]
    ends = [r.end for r in ranges if r.end]
    lengths = [((r.end - r.start).days + 1) for r in ranges if r.start and r.end]
    shortest = min(lengths) if lengths else 366
    grain = "day" if shortest <= 1 else "week" if shortest <= 7 else "month" if shortest <= 31 else \
        "quarter" if shortest <= 92 else "year"
    window = TimeRange(start=min(starts) if starts else None, end=max(ends) if ends else None,
                       label=" and ".join(r.label for r in ranges), span=ranges[0].span)
    return window, grain


#: "by date of loss", "(by loss date)": the date a period and a grain are on, said after "by"
_BY_DATE_OF_RE = re.compile(r"\bby\s+(?:the\s+)?(?:date\s+(?:of\s+(?:the\s+)?)?(?P<a>[a-z]+)|(?P<b>[a-z]+)\s+date)\b", re.I)


def date_named_for_the_period(p: Parse, env: Env) -> None:
    """"qtrly claim count for 2024 (by date of loss)", "customers with more than 2 claims (by date of loss) in
    2024": "by date of <the fact's own date>" says which date dates the rows, not a daily breakdown; with another
    grain asked, in brackets, or on a count of entities past a threshold, the day grain it made is dropped ("claims
    by date of loss" alone is a breakdown by day)."""
    d, lex, text = p.draft, env.lex, p.question
    facts = lex.facts_of(d.base_metrics()) if d.metrics else []
    if len(facts) != 1 or f"{METRIC_TIME}:day" not in d.dimensions:
        return
    node = lex.layer.nodes.get(facts[0])
    col = next((c for c in node.columns if c.name == node.time_column), None) if node is not None else None
    if col is None:
        return
    names = {w for t in (col.name, col.label or "", *col.synonyms) for w in phrase(t)} - {"date", "day", "dat"}
    for m in _BY_DATE_OF_RE.finditer(text):
        word = (m.group("a") or m.group("b")).lower()
        if not set(phrase(word)) & names:
            continue
        said = [g.phrase.lower() for g in d.groundings if g.ref == f"{METRIC_TIME}:day" and g.kind in ("grain", "dimension")]
        if any(ph and ph not in m.group(0).lower() for ph in said):
            continue  # "daily claim count ... (by loss date)": a day grain asked in its own words stays
        bracketed = text[:m.start()].rstrip().endswith("(")
        other_grain = any(x.startswith(METRIC_TIME) and x != f"{METRIC_TIME}:day" for x in d.dimensions)
        if not (bracketed or other_grain or d.threshold is not None):
            continue
        d.dimensions = [x for x in d.dimensions if x != f"{METRIC_TIME}:day"]
        d.groundings = [g for g in d.groundings if not (g.kind == "grain" and g.ref == f"{METRIC_TIME}:day")]
        p.use(tokens_in(p.tokens, m.span()), "context")
        if not d.dimensions:  # (a threshold read before: no rows to count in)
            d.notes = [n.replace(" in each row,", ",") for n in d.notes]
        d.notes.append(f"“{m.group(0)}”: the rows are dated by {lex.label(f'{node.name}.{col.name}')}, as "
                       f"{lex.metric_label(d.metrics[0])} is; not a breakdown by day.")
        return
