"""Find time ranges and time grains in a plain-English analytics question.

The offline planner turns "total sales by store last quarter, only returning
customers" into a semantic query; this module finds the time part:
*which dates* (a :class:`TimeRange`) and *at what grain* (a
:class:`GrainMention`), with the character span of every match so the planner
can blank them out (:meth:`TimeParse.remainder`) before it looks for metrics,
dimensions and filter values in what is left.

Pure: no I/O, no clock. Every relative phrase is resolved against the ``today``
the caller passes (the date the user is asking on). Dates only, no times of day.

Conventions (ranges are inclusive at both ends; ``None`` means open):

- Calendar periods are complete: "last month" is the whole calendar month
  before today's month, "last week" the previous Monday-Sunday week, "last
  quarter" and "last year" the previous calendar quarter and year.
- "this month", "month to date", "MTD" (and the same for week, quarter and
  year, also "so far this year", "YTD") run from the first day of the current
  period to ``today`` inclusive.
- "last N days" (also "past", "previous", "prior", "trailing", "rolling", and
  number words one to twelve) are the N days *ending yesterday*: today is left
  out because its data is incomplete. "last N weeks/months/quarters/years" are
  the N complete calendar periods before the current one (weeks start on
  Monday). "last 1 month" is "last month", and "past year" is "last year":
  the previous calendar year, not the trailing twelve months (say "last 12
  months", "trailing twelve months" or "TTM" for those).
- A period named without a year ("in March", "Q2", "H1", "March 5", "the
  second quarter") is the most recent one that has started by ``today``;
  "last March" is the most recent March that has ended, "this March" the
  March of today's year. In a range ("from June to August 2025") a missing
  year is taken from the other end (December before February is the
  previous December); in a list ("June, July and August 2025", "Q1 and Q2
  2025") every period takes the year written after it.
- "FY2025", "fiscal 2025", "CY2025" are treated as the calendar year 2025.
- Open ranges: "since X", "starting X", "on or after X" start where X
  starts; "after X" starts the day after X ends; "before X" ends the day
  before X starts; "until X", "through X", "up to X" end where X ends.
  "from X" alone is X itself ("products from 2025"); "from X to Y",
  "between X and Y", "X through Y" and "X - Y" are closed ranges (a plain
  "X to Y" too, unless the question compares: "compare 2024 to 2025").
- A bare four-digit number is a year only between 1990 and 2100, and not
  after words such as "top", "limit", "over", "more than" or a comparison
  sign, nor before a unit word such as "rows", "orders", "hours" (or one the layer names).
  Explicit dates (``2026-03-05``, "March 5, 2026") accept years 1900-2199.
  Ambiguous numeric dates such as ``03/05/2026`` are ignored.
- Not recognised on purpose: "recent", "recently", "latest", "last few
  days", seasons, holidays, weekdays, future periods ("next month").

Text in double quotes is a name ("Night Shift 2024"), never a date.

Spans cover the whole time phrase, including a leading "in", "during", "for",
"over", "within", "throughout", "across", "of", "on" and "the", so that
:meth:`TimeParse.remainder` leaves the rest of the question clean.
"""

from __future__ import annotations

import bisect
import calendar
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from typing import Literal, NamedTuple

from pydantic import model_validator

from lore.plan.words import NUMBER_WORDS
from lore.semantic.spec import Grain
from lore.types import Frozen

__all__ = ["GrainMention", "OffsetMention", "TimeParse", "TimeRange", "default_grain", "parse_time", "period_label",
           "shifted"]


# --- public models ------------------------------------------------------------------------------


class TimeRange(Frozen):
    """A range of dates named in a question: inclusive at both ends, ``None`` when open."""

    start: date | None
    end: date | None
    #: human label for chart headings and answers: "Q2 2026", "last 90 days", "year to date (2026)"
    label: str
    #: character span of the whole phrase in the original question
    span: tuple[int, int]
    #: resolved against ``today`` (would mean other dates on another day)
    relative: bool = False
    #: the calendar period this range is one of ("month" for "October 2026", "last month" and "this month so
    #: far"), None for a span of several or a rolling window
    period: str | None = None

    @model_validator(mode="after")
    def _check(self) -> TimeRange:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"time range ends ({self.end}) before it starts ({self.start})")
        if not 0 <= self.span[0] <= self.span[1]:
            raise ValueError(f"bad span {self.span}")
        return self

    @property
    def days(self) -> int | None:
        """The number of days in the range, or ``None`` when it is open.

        >>> TimeRange(start=date(2026, 1, 1), end=date(2026, 3, 31), label="Q1 2026", span=(0, 7)).days
        90
        """
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).days + 1


class GrainMention(Frozen):
    """A time grain asked for in the question ("monthly", "by week", "YoY")."""

    grain: Grain
    span: tuple[int, int]
    #: chosen by :func:`default_grain` from the range, for "over time", "trend", "trending"
    inferred: bool = False


class OffsetMention(Frozen):
    """A period compared with the one before it: "year over year", "YoY", "vs last year", "the same quarter a year
    earlier", "compared with the previous period" (``unit`` "period": the span of the same length just before)."""

    unit: Literal["day", "week", "month", "quarter", "year", "period"]
    span: tuple[int, int]
    #: the period the words name by themselves ("vs last year": last year, 2025), when they name one: compared
    #: with a period of the same kind ("this year vs last year") they are that period, not the same days earlier
    names: TimeRange | None = None


class TimeParse(Frozen):
    """Every time range and grain found in a question, in order of appearance."""

    ranges: tuple[TimeRange, ...] = ()
    grains: tuple[GrainMention, ...] = ()
    #: "year over year", "vs the same period last year": the period asked about compared with an earlier one
    offsets: tuple[OffsetMention, ...] = ()

    @property
    def first_range(self) -> TimeRange | None:
        """The first range in the question, if any."""
        return self.ranges[0] if self.ranges else None

    @property
    def grain(self) -> Grain | None:
        """The grain asked for: the first explicit one, else the first inferred one."""
        explicit = [g.grain for g in self.grains if not g.inferred]
        inferred = [g.grain for g in self.grains if g.inferred]
        return (explicit or inferred or [None])[0]

    def remainder(self, question: str) -> str:
        """The question with every matched span blanked out by spaces (same length).

        >>> q = "hours by store monthly in 2025"
        >>> parse_time(q, date(2026, 11, 1)).remainder(q)
        'hours by store                '
        """
        chars = list(question)
        for start, end in [r.span for r in self.ranges] + [g.span for g in self.grains]:
            chars[start:end] = " " * (end - start)
        return "".join(chars)


# --- calendar helpers (pure) --------------------------------------------------------------------

_MONTH_NAMES = tuple(calendar.month_name[i] for i in range(1, 13))
_MONTH_ABBR = tuple(name[:3].lower() for name in _MONTH_NAMES)
_FULL_MONTHS = frozenset(name.lower() for name in _MONTH_NAMES) | {"sept"}


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """The first and last day of a calendar month.

    >>> month_bounds(2024, 2)
    (datetime.date(2024, 2, 1), datetime.date(2024, 2, 29))
    """
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    """The first and last day of a calendar quarter.

    >>> quarter_bounds(2026, 2)
    (datetime.date(2026, 4, 1), datetime.date(2026, 6, 30))
    """
    return date(year, 3 * quarter - 2, 1), month_bounds(year, 3 * quarter)[1]


def half_bounds(year: int, half: int) -> tuple[date, date]:
    """The first and last day of a half year.

    >>> half_bounds(2025, 2)
    (datetime.date(2025, 7, 1), datetime.date(2025, 12, 31))
    """
    return date(year, 6 * half - 5, 1), month_bounds(year, 6 * half)[1]


def shift_months(day: date, months: int) -> date:
    """The first day of the month ``months`` months away from ``day``'s month.

    >>> shift_months(date(2026, 1, 15), -1)
    datetime.date(2025, 12, 1)
    >>> shift_months(date(2026, 11, 1), 2)
    datetime.date(2027, 1, 1)
    """
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def week_start(day: date) -> date:
    """The Monday of ``day``'s week.

    >>> week_start(date(2026, 11, 1))  # a Sunday
    datetime.date(2026, 10, 26)
    """
    return day - timedelta(days=day.weekday())


def _quarter_of(day: date) -> int:
    return (day.month - 1) // 3 + 1


def default_grain(time_range: TimeRange | None, today: date | None = None) -> Grain:
    """The grain to chart a trend over ``time_range`` at.

    Up to 31 days: day; up to 184 days (six calendar months): week; up to 1,096 days
    (three years): month; longer: quarter. No range, or a range open at its start: month.
    A range open at its end runs to ``today`` when it is given.

    >>> default_grain(TimeRange(start=date(2026, 10, 1), end=date(2026, 10, 31), label="October 2026", span=(0, 0)))
    'day'
    >>> default_grain(TimeRange(start=date(2026, 1, 1), end=date(2026, 6, 30), label="H1 2026", span=(0, 0)))
    'week'
    >>> default_grain(TimeRange(start=date(2024, 1, 1), end=date(2026, 10, 31), label="x", span=(0, 0)))
    'month'
    >>> default_grain(TimeRange(start=date(2020, 1, 1), end=None, label="since 2020", span=(0, 0)), date(2026, 11, 1))
    'quarter'
    >>> default_grain(None)
    'month'
    """
    if time_range is None or time_range.start is None:
        return "month"
    end = time_range.end or today
    if end is None:
        return "month"
    days = (end - time_range.start).days + 1
    if days <= 31:
        return "day"
    if days <= 184:
        return "week"
    if days <= 1096:
        return "month"
    return "quarter"


# --- atoms: one period each, before ranges are composed ----------------------------------------

Unit = Literal["day", "month", "quarter", "half", "year", "relative"]
Mode = Literal["started", "ended", "this"]


class _Atom(NamedTuple):
    """One period found in the text (a year, a month, "last quarter", ...)."""

    start: date
    end: date
    label: str
    #: the label without its year ("June", "Q2"), to write "June to August 2025"
    bare: str
    unit: Unit
    span: tuple[int, int]
    relative: bool = False
    #: for a period named without a year: the same period in a given year
    rebuild: Callable[[int], _Atom | None] | None = None
    #: only valid as the end of a range ("... and May", "... to Mar")
    weak: bool = False
    #: the calendar period it is one of ("month" for "last month" and "this month so far"), None for a span
    period: str | None = None


_Builder = Callable[[re.Match[str], date], "_Atom | None"]


def _month_number(token: str) -> int:
    return _MONTH_ABBR.index(token.lower()[:3]) + 1


def _year_value(token: str) -> int:
    digits = re.sub(r"\D", "", token)
    return int(digits) if len(digits) == 4 else 2000 + int(digits)


def _month_atom(year: int, month: int, span: tuple[int, int]) -> _Atom:
    start, end = month_bounds(year, month)
    name = _MONTH_NAMES[month - 1]
    return _Atom(start, end, f"{name} {year}", name, "month", span, period="month")


def _quarter_atom(year: int, quarter: int, span: tuple[int, int]) -> _Atom:
    start, end = quarter_bounds(year, quarter)
    return _Atom(start, end, f"Q{quarter} {year}", f"Q{quarter}", "quarter", span, period="quarter")


def _half_atom(year: int, half: int, span: tuple[int, int]) -> _Atom:
    start, end = half_bounds(year, half)
    return _Atom(start, end, f"H{half} {year}", f"H{half}", "half", span, period="half")


def _year_atom(year: int, span: tuple[int, int]) -> _Atom:
    return _Atom(date(year, 1, 1), date(year, 12, 31), str(year), str(year), "year", span, period="year")


def _day_atom(year: int, month: int, day: int, span: tuple[int, int]) -> _Atom | None:
    try:
        d = date(year, month, day)
    except ValueError:
        return None
    return _Atom(d, d, d.isoformat(), d.isoformat(), "day", span, period="day")


def _yearless(build: Callable[[int], _Atom | None], today: date, mode: Mode) -> _Atom | None:
    """Resolve a period named without a year against ``today``.

    ``started``: the most recent one that has started; ``ended``: the most recent one that
    has ended before today; ``this``: the one in today's year.
    """
    for year in range(today.year, today.year - 9, -1):
        atom = build(year)
        if atom is None:
            continue
        if mode == "this" or (mode == "started" and atom.start <= today) or (mode == "ended" and atom.end < today):
            return atom._replace(relative=True, rebuild=build)
    return None


def _relative(start: date, end: date, label: str, span: tuple[int, int], period: str | None = None) -> _Atom:
    return _Atom(start, end, label, label, "relative", span, relative=True, period=period)


# --- context checks -----------------------------------------------------------------------------

#: words after which a month name alone ("in March", "since may") is a month
_STRONG_PREPS = frozenset(
    "in during for of since after before until till til through thru from between throughout within on".split()
)
#: prepositions after which a bare year is a year even when a unit-like word follows
_YEAR_PREPS = frozenset("in during since before after until till throughout".split())
#: words before a number that make it a count or a threshold, not a year
_COUNT_WORDS = frozenset(
    "top bottom first limit over under above below least most exceeding exceeds id ids number no "
    "around about approximately nearly almost max maximum min minimum".split()
)
_COUNT_PAIRS = frozenset({("more", "than"), ("less", "than"), ("fewer", "than"), ("greater", "than"), ("total", "of"),
                          ("sum", "of")})
#: words after a number that make it a count, not a year
_UNIT_WORDS = frozenset(
    """row rows user users customer customers record records item items result results session sessions
    event events order orders product products entry entries id ids people person member members
    subscriber subscribers download downloads click clicks view views hour hours hrs minute minutes mins
    second seconds secs day days week weeks month months year years ms gb mb kb tb dollars usd eur euros
    units times requests calls samples words pages lines tests errors transactions purchases points km
    miles visits x k""".split()
)

_WORD_RE = re.compile(r"[<>=]+|[\w'#$]+")
_NEXT_WORD = re.compile(r"\s*([\w']+)")
#: how far back the phrases that open or widen a time range ("since the start of", "during the") are looked for;
#: they are a few words long, so a bounded look-back keeps parsing linear in the question's length
_LOOK_BACK = 160


def _words_before(text: str, pos: int, n: int = 2) -> list[str]:
    """The last ``n`` words before ``pos``, lower-cased (read from a window that grows only while it holds too few).

    >>> _words_before("top 5 stores in 2025", 16)
    ['stores', 'in']
    """
    window = 64
    while True:
        lo = max(0, pos - window)
        words = _WORD_RE.findall(text, lo, pos)
        if lo > 0:
            words = words[1:]  # the window may start inside a word
        if lo == 0 or len(words) >= n:
            return [w.lower().strip("'") for w in words[-n:]] if n else []
        window *= 4


def _word_after(text: str, pos: int) -> str:
    m = _NEXT_WORD.match(text, pos)
    return m.group(1).lower() if m else ""


def _search_before(pattern: re.Pattern[str], text: str, pos: int) -> re.Match[str] | None:
    """``pattern`` (anchored at its end by ``$``) searched in the text just before ``pos``."""
    return pattern.search(text, max(0, pos - _LOOK_BACK), pos)


def _prev_word(text: str, pos: int) -> str:
    words = _words_before(text, pos, 1)
    return words[0] if words else ""


def _counted(text: str, start: int, end: int) -> bool:
    """Whether the number at ``text[start:end]`` reads as a count or threshold, not a date part."""
    before = _words_before(text, start)
    if before and before[-1] in ("about", "around") and _word_after(text, end) == "":
        return False  # "what about 2026?"
    if before and (before[-1] in _COUNT_WORDS or before[-1][0] in "<>="):
        return True
    if len(before) == 2 and tuple(before) in _COUNT_PAIRS:
        return True
    if before and before[-1] in _YEAR_PREPS:
        return False
    return _word_after(text, end) in _UNIT_WORDS


def _weak_before(text: str, pos: int) -> bool:
    return re.search(r"(?:\bto|\band|[-\u2013\u2014])\s*$", text[:pos], re.I) is not None


#: words after a sentence-initial "May" that make it the verb: "May I see ..."
_MAY_VERB_NEXT = frozenset("i we you they he she it someone one be have not also please".split())


def _may_is_month(m: re.Match[str], group: str) -> bool:
    """"may" is a month after a preposition, written "May" inside a sentence, or opening one
    when no pronoun or verb follows ("May revenue", not "May I see")."""
    text, pos = m.string, m.start()
    if _prev_word(text, pos) in _STRONG_PREPS:
        return True
    before = text[:pos].rstrip()
    if before == "" or before.endswith((".", "?", "!", ":")):
        return _word_after(text, m.end(group)) not in _MAY_VERB_NEXT
    return m.group(group) == "May"


# --- patterns -----------------------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])"
)
#: a year inside a longer expression: 2026, FY2026, FY26, '26
_Y = r"(?:(?:fy|cy)\s?'?\d\d(?!\d)|(?:(?:fy|cy)\s?)?(?:19|20|21)\d\d|'\d\d)(?![\w%+])(?!\.\d)(?!,\d)"
_ORD = r"(?:1st|2nd|3rd|4th|first|second|third|fourth)"
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
_PERIOD = r"(?P<unit>week|month|quarter|year)"
_ADJ = r"(?:(?:full|complete|whole|calendar)\s+)?"


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _span(m: re.Match[str]) -> tuple[int, int]:
    return m.start(), m.end()


def _b_iso_day(m: re.Match[str], today: date) -> _Atom | None:
    return _day_atom(int(m["y"]), int(m["m"]), int(m["d"]), _span(m))


def _b_month_year(m: re.Match[str], today: date) -> _Atom | None:
    month = int(m["m"]) if m["m"] else _month_number(m["mon"])
    if not 1 <= month <= 12:
        return None
    return _month_atom(_year_value(m["year"]), month, _span(m))


def _b_day_month_year(m: re.Match[str], today: date) -> _Atom | None:
    return _day_atom(_year_value(m["year"]), _month_number(m["mon"]), int(m["day"]), _span(m))


def _b_day_range(m: re.Match[str], today: date) -> _Atom | None:
    """Days of one month: "from 1 to 15 August 2026", "Aug 3-9" (the most recent such days without a year).

    >>> t = date(2026, 11, 1)
    >>> [(r.start, r.end) for r in parse_time("new customers from 1 to 15 August 2026", t).ranges]
    [(datetime.date(2026, 8, 1), datetime.date(2026, 8, 15))]
    >>> [(r.start, r.end) for r in parse_time("sessions between the 3rd and the 9th of March", t).ranges]
    [(datetime.date(2026, 3, 3), datetime.date(2026, 3, 9))]
    >>> [r.label for r in parse_time("installs Aug 3-9, 2025", t).ranges]
    ['2025-08-03 to 2025-08-09']
    >>> parse_time("top 3 and 5 May items", t).ranges[0].label  # "and" joins days only after "between"
    'May 2026'
    """
    if m["conn"].lower() == "and" and (m["opener"] or "").lower() != "between":
        return None
    if m["mon"].lower() == "may" and not _may_is_month(m, "mon") and not m["year"]:
        return None
    month, first, last = _month_number(m["mon"]), int(m["d1"]), int(m["day"])
    if not 1 <= first < last <= 31:
        return None
    span = _span(m)

    def build(year: int) -> _Atom | None:
        try:
            start, end = date(year, month, first), date(year, month, last)
        except ValueError:
            return None
        label = f"{start.isoformat()} to {end.isoformat()}"
        return _Atom(start, end, label, label, "day", span)

    if m["year"]:
        return build(_year_value(m["year"]))
    return _yearless(build, today, "started")


def _b_day_month(m: re.Match[str], today: date) -> _Atom | None:
    text = m.string
    if m["mon"].lower() == "may" and not _may_is_month(m, "mon"):
        return None
    if _counted(text, m.start(), m.end()):
        return None
    month, day, span = _month_number(m["mon"]), int(m["day"]), _span(m)
    if not 1 <= day <= 31:
        return None
    return _yearless(lambda y: _day_atom(y, month, day, span), today, "started")


def _b_month_alone(m: re.Match[str], today: date) -> _Atom | None:
    text, token, pre = m.string, m["mon"], (m["pre"] or "").lower()
    lowered = token.lower()
    strong = bool(pre) or _prev_word(text, m.start()) in _STRONG_PREPS
    if lowered == "may":
        accepted = strong or _may_is_month(m, "mon")
    else:
        accepted = strong or lowered in _FULL_MONTHS
    if not accepted and not _weak_before(text, m.start()):
        return None
    month, span = _month_number(token), _span(m)
    mode: Mode = "this" if pre == "this" else "ended" if pre else "started"
    atom = _yearless(lambda y: _month_atom(y, month, span), today, mode)
    return atom._replace(weak=not accepted) if atom else None


def _b_in_relative_year(m: re.Match[str], today: date) -> _Atom | None:
    """"July this year", "Q2 of last year", "H1 this year": the period in this year or the one before.

    >>> _b_in_relative_year(_p(r"(?P<mon>july) (?P<rel>last) year(?P<q>)(?P<h>)").search("july last year"),
    ...                     date(2020, 8, 31)).label
    'July 2019'
    """
    year = today.year - (0 if m["rel"].lower() == "this" else 1)
    span = _span(m)
    if m["mon"]:
        atom = _month_atom(year, _month_number(m["mon"]), span)
    elif m["q"]:
        atom = _quarter_atom(year, int(m["q"]), span)
    else:
        atom = _half_atom(year, int(m["h"]), span)
    return atom._replace(relative=True)


def _b_ordinal_in_relative_year(m: re.Match[str], today: date) -> _Atom | None:
    """"the first half of this year", "the 3rd quarter of last year": a numbered half or quarter of this year or
    the one before.

    >>> _b_ordinal_in_relative_year(_p(rf"(?P<ord>{_ORD}|last) (?P<unit>half|quarter) of (?P<rel>this) year")
    ...     .search("first half of this year"), date(2020, 8, 31)).label
    'H1 2020'
    """
    year = today.year - (0 if m["rel"].lower() in ("this", "current") else 1)
    ordinal = m["ord"].lower()
    span = _span(m)
    if m["unit"].lower() == "half":
        h = 2 if ordinal in ("second", "2nd", "last", "final", "latter") else 1 if ordinal in ("first", "1st") else 0
        return _half_atom(year, h, span)._replace(relative=True) if h else None
    q = 4 if ordinal in ("last", "final") else _ORDINALS.get(ordinal)
    return _quarter_atom(year, q, span)._replace(relative=True) if q and ordinal != "latter" else None


def _b_quarter_year(m: re.Match[str], today: date) -> _Atom | None:
    q = int(m["q"]) if m["q"] else _ORDINALS.get(m["ord"].lower(), 4)
    return _quarter_atom(_year_value(m["year"]), q, _span(m))


def _b_quarter_alone(m: re.Match[str], today: date) -> _Atom | None:
    q = int(m["q"]) if m["q"] else _ORDINALS[m["ord"].lower()]
    pre = (m["pre"] or "").lower()
    span = _span(m)
    mode: Mode = "this" if pre == "this" else "ended" if pre else "started"
    return _yearless(lambda y: _quarter_atom(y, q, span), today, mode)


def _b_half_year(m: re.Match[str], today: date) -> _Atom | None:
    h = int(m["h"]) if m["h"] else (1 if m["ord"].lower() in ("first", "1st") else 2)
    return _half_atom(_year_value(m["year"]), h, _span(m))


def _b_half_alone(m: re.Match[str], today: date) -> _Atom | None:
    h = int(m["h"]) if m["h"] else (1 if m["ord"].lower() in ("first", "1st") else 2)
    span = _span(m)
    return _yearless(lambda y: _half_atom(y, h, span), today, "started")


def _b_ordinal_month(m: re.Match[str], today: date) -> _Atom | None:
    month = 1 if m["ord"].lower() == "first" else 12
    return _month_atom(_year_value(m["year"]), month, _span(m))


def _b_fiscal_year(m: re.Match[str], today: date) -> _Atom | None:
    return _year_atom(_year_value(m["year"]), _span(m))


#: words before a number followed by a unit word that make it a count ("with 2025 sessions", "of 2025 rows")
#: ("of" is no count: "a breakdown of 2024 claims", "the list of 2025 orders" name the year; "a total of" is one)
_QUANTITY_BEFORE = frozenset("with has have had having than at exactly only just least most all each per".split())


def _b_bare_year(m: re.Match[str], today: date) -> _Atom | None:
    """A year; before a unit word ("2025 sessions") only when it is near today and nothing makes it a count.

    >>> t = date(2026, 11, 1)
    >>> [r.label for r in parse_time("Break down 2025 sessions by store", t).ranges]
    ['2025']
    >>> parse_time("customers with 2025 sessions", t).ranges, parse_time("show 1995 items", t).ranges
    ((), ())
    """
    year = int(m["year"])
    if not 1990 <= year <= 2100:
        return None
    text, start, end = m.string, m.start(), m.end()
    if _counted(text, start, end):
        before = _words_before(text, start)
        counted_by_words = bool(before) and (before[-1] in _COUNT_WORDS or before[-1][0] in "<>="
                                            or (len(before) == 2 and tuple(before) in _COUNT_PAIRS))
        near = abs(year - today.year) <= 10
        if counted_by_words or not near or (before and before[-1] in _QUANTITY_BEFORE):
            return None
    return _year_atom(year, _span(m))


def _b_short_year(m: re.Match[str], today: date) -> _Atom | None:
    """'23 is 2023: the year of this century, or of the last when that would be over ten years ahead.

    >>> [r.label for r in parse_time("fee growth '23 to '24", date(2025, 7, 1)).ranges]
    ['2023', '2024']
    """
    year = 2000 + int(m["year"])
    if year > today.year + 10:
        year -= 100
    return _year_atom(year, _span(m))


def _previous_period(unit: str, today: date, span: tuple[int, int]) -> _Atom:
    if unit == "week":
        start = week_start(today) - timedelta(days=7)
        end = start + timedelta(days=6)
        return _relative(start, end, f"last week ({start} to {end})", span, "week")
    if unit == "month":
        start, end = month_bounds(*_ym(shift_months(today, -1)))
        return _relative(start, end, f"last month ({_MONTH_NAMES[start.month - 1]} {start.year})", span, "month")
    if unit == "quarter":
        start = shift_months(quarter_bounds(today.year, _quarter_of(today))[0], -3)
        q = _quarter_of(start)
        return _relative(start, quarter_bounds(start.year, q)[1], f"last quarter (Q{q} {start.year})", span, "quarter")
    if unit == "year":
        y = today.year - 1
        return _relative(date(y, 1, 1), date(y, 12, 31), f"last year ({y})", span, "year")
    yesterday = today - timedelta(days=1)
    return _relative(yesterday, yesterday, f"yesterday ({yesterday})", span, "day")


def _ym(day: date) -> tuple[int, int]:
    return day.year, day.month


def _b_previous(m: re.Match[str], today: date) -> _Atom | None:
    return _previous_period(m["unit"].lower(), today, _span(m))


_ABBR_UNITS = {"wtd": "week", "mtd": "month", "qtd": "quarter", "ytd": "year"}


def _b_to_date(m: re.Match[str], today: date) -> _Atom | None:
    unit = m["unit"].lower() if m["unit"] else _ABBR_UNITS[m["abbr"].lower()]
    span = _span(m)
    if unit == "week":
        start = week_start(today)
        return _relative(start, today, f"week to date (week of {start})", span, "week")
    if unit == "month":
        start = today.replace(day=1)
        return _relative(start, today, f"month to date ({_MONTH_NAMES[today.month - 1]} {today.year})", span, "month")
    if unit == "quarter":
        q = _quarter_of(today)
        return _relative(quarter_bounds(today.year, q)[0], today, f"quarter to date (Q{q} {today.year})", span, "quarter")
    return _relative(date(today.year, 1, 1), today, f"year to date ({today.year})", span, "year")


def _b_day_word(m: re.Match[str], today: date) -> _Atom | None:
    if m["word"].lower() == "today":
        return _relative(today, today, f"today ({today})", _span(m), "day")
    return _previous_period("day", today, _span(m))


_UNIT_PREFIX = {"d": "day", "w": "week", "m": "month", "q": "quarter", "y": "year"}


def _rolling(n: int, unit: str, today: date, span: tuple[int, int]) -> _Atom | None:
    """The ``n`` days ending yesterday, or the ``n`` complete weeks/months/... before the current one."""
    if n < 1:
        return None
    if n == 1:
        return _previous_period(unit, today, span)
    label = f"last {n} {unit}s"
    try:
        if unit == "day":
            return _relative(today - timedelta(days=n), today - timedelta(days=1), label, span)
        if unit == "week":
            this_week = week_start(today)
            return _relative(this_week - timedelta(weeks=n), this_week - timedelta(days=1), label, span)
        if unit in ("month", "quarter"):
            months = 1 if unit == "month" else 3
            current = today.replace(day=1) if unit == "month" else quarter_bounds(today.year, _quarter_of(today))[0]
            return _relative(shift_months(current, -months * n), current - timedelta(days=1), label, span)
        return _relative(date(today.year - n, 1, 1), date(today.year - 1, 12, 31), label, span)
    except (ValueError, OverflowError):
        return None


def _b_rolling(m: re.Match[str], today: date) -> _Atom | None:
    n = int(m["n"]) if m["n"] else NUMBER_WORDS[m["w"].lower()]
    return _rolling(n, _UNIT_PREFIX[m["unit"].lower()[0]], today, _span(m))


def _b_ttm(m: re.Match[str], today: date) -> _Atom | None:
    return _rolling(12, "month", today, _span(m))


#: (pattern, builder): every candidate period; overlaps are settled longest first
_ATOMS: tuple[tuple[re.Pattern[str], _Builder], ...] = (
    # 2026-03-05, 2026/03/05
    (_p(r"(?<![\w/.:-])(?P<y>(?:19|20|21)\d\d)(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?![\w/-])(?!\.\d)"), _b_iso_day),
    # 2026-03, 2026/03
    (_p(r"(?<![\w/.:-])(?P<year>(?:19|20|21)\d\d)[-/](?P<m>\d\d)(?![\w/-])(?!\.\d)(?P<mon>)"), _b_month_year),
    # 03/2026
    (_p(r"(?<![\w/.:-])(?P<m>\d{1,2})/(?P<year>(?:19|20|21)\d\d)(?![\w/-])(?!\.\d)(?P<mon>)"), _b_month_year),
    # from 1 to 15 August 2026, 1-15 Aug, between the 3rd and the 9th of March; August 1 to 15, 2026, Aug 3-9
    (
        _p(
            rf"(?:\b(?P<opener>from|between)\s+)?\b(?:the\s+)?(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\s*"
            rf"(?P<conn>to|through|thru|until|till|and|-|\u2013)\s*(?:the\s+)?(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+"
            rf"(?:of\s+)?(?P<mon>{_MONTH})\.?(?:,?\s+(?P<year>{_Y}))?(?![\w/-])"
        ),
        _b_day_range,
    ),
    (
        _p(
            rf"(?:\b(?P<opener>from|between)\s+)?\b(?P<mon>{_MONTH})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\s*"
            rf"(?P<conn>to|through|thru|until|till|and|-|\u2013)\s*(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?![\w:/.])"
            rf"(?:\s*,?\s*(?P<year>{_Y}))?(?![\w/-])"
        ),
        _b_day_range,
    ),
    # March 5, 2026 / Mar. 5th 2026
    (_p(rf"\b(?P<mon>{_MONTH})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?:\s*,\s*|\s+)(?:of\s+)?(?P<year>{_Y})"), _b_day_month_year),
    # 5 March 2026 / the 5th of March, 2026
    (_p(rf"\b(?:the\s+)?(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_MONTH})\.?,?\s+(?P<year>{_Y})"), _b_day_month_year),
    # March 5 / 5th of March (most recent)
    (_p(rf"\b(?P<mon>{_MONTH})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?![\w:/.-])"), _b_day_month),
    (_p(rf"\b(?:the\s+)?(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_MONTH})"), _b_day_month),
    # March 2026, Mar '26, March of 2026
    (_p(rf"\b(?P<mon>{_MONTH})(?:\.?\s*[,/-]?\s*|\s+of\s+)(?P<year>{_Y})(?P<m>)"), _b_month_year),
    # March this year, July of last year, Q2 last year, H1 this year: the period in the year named relatively
    (_p(rf"\b(?:(?P<mon>{_MONTH})|q(?P<q>[1-4])|h(?P<h>[12]))\.?\s+(?:of\s+)?(?P<rel>this|last|previous|prior)\s+year\b"),
     _b_in_relative_year),
    # the first half of this year, the third quarter of last year
    (_p(rf"\b(?:the\s+)?(?P<ord>{_ORD}|last|final|latter)\s+(?P<unit>half|quarter)\s+(?:of\s+|in\s+)?(?:the\s+)?"
        r"(?P<rel>this|last|previous|prior|current)\s+year\b"), _b_ordinal_in_relative_year),
    # March, last March, this May
    (_p(rf"\b(?:(?P<pre>last|past|previous|prior|this)\s+)?(?P<mon>{_MONTH})(?![\w/-])"), _b_month_alone),
    # the first month of 2026
    (_p(rf"\b(?:the\s+)?(?P<ord>first|last|final)\s+month\s+of\s+(?P<year>{_Y})"), _b_ordinal_month),
    # Q2 2026, q2 of 2026, Q2 FY26, 2026 Q2, 2026-Q2, the second quarter of 2026, last quarter of 2025
    (_p(rf"\bq(?P<q>[1-4])(?:\s*[-/,]?\s*|\s+(?:of|in)\s+)(?P<year>{_Y})(?P<ord>)"), _b_quarter_year),
    (_p(r"(?<![\w'])(?P<year>(?:(?:fy|cy)\s?)?(?:19|20|21)\d\d)\s*[-/]?\s*q(?P<q>[1-4])\b(?P<ord>)"), _b_quarter_year),
    (_p(rf"\b(?:the\s+)?(?P<ord>{_ORD}|last|final)\s+quarter(?:\s+of|\s+in|\s*,)?\s+(?P<year>{_Y})(?P<q>)"), _b_quarter_year),
    # Q2, last Q2, the second quarter
    (_p(r"\b(?:(?P<pre>last|previous|prior|this)\s+)?q(?P<q>[1-4])\b(?P<ord>)"), _b_quarter_alone),
    (_p(rf"\b(?:the\s+)?(?P<ord>{_ORD})\s+quarter\b(?P<q>)(?P<pre>)"), _b_quarter_alone),
    # H1 2026, 2026 H2, first half of 2026, H1, the second half
    (_p(rf"\bh(?P<h>[12])(?:\s*[-/,]?\s*|\s+(?:of|in)\s+)(?P<year>{_Y})(?P<ord>)"), _b_half_year),
    (_p(r"(?<![\w'])(?P<year>(?:(?:fy|cy)\s?)?(?:19|20|21)\d\d)\s*[-/]?\s*h(?P<h>[12])\b(?P<ord>)"), _b_half_year),
    (_p(rf"\b(?:the\s+)?(?P<ord>first|second|1st|2nd|last|latter)\s+half(?:\s+of|\s+in|\s*,)?\s+(?P<year>{_Y})(?P<h>)"), _b_half_year),
    (_p(r"\bh(?P<h>[12])\b(?P<ord>)"), _b_half_alone),
    (_p(r"\b(?:the\s+)?(?P<ord>first|second|1st|2nd)\s+half\b(?P<h>)"), _b_half_alone),
    # FY2025, FY 25, fiscal year 2025, calendar 2025 (treated as calendar years)
    (
        _p(
            r"\b(?P<year>(?:fiscal|calendar)\s+(?:year\s+)?(?:19|20|21)\d\d|(?:fy|cy)\s?'?\d\d(?!\d)|(?:fy|cy)\s?(?:19|20|21)\d\d)"
            r"(?![\w%+])(?!\.\d)(?!,\d)"
        ),
        _b_fiscal_year,
    ),
    # 2025 (a bare year, checked in context)
    (_p(r"(?<![\w$#€£.,/:'])(?<![a-z_]-)(?P<year>\d{4})(?![\w%+])(?!\.\d)(?!,\d)(?!-\d{1,3}(?!\d))(?!/\d)"), _b_bare_year),
    # '23, ’24 (a year in two digits after an apostrophe)
    (_p(r"(?<![\w'’])['’](?P<year>\d\d)(?![\w%+'’])(?!\.\d)"), _b_short_year),
    # last month, previous quarter, past year, last full week
    (_p(rf"\b(?:last|previous|prior|past|preceding)\s+{_ADJ}{_PERIOD}\b(?!-)"), _b_previous),
    # this month, current quarter, this year so far, so far this year, year to date, YTD
    (_p(rf"\b(?:this|current|the\s+current)\s+(?:calendar\s+)?{_PERIOD}(?:\s+(?:so\s+far|to\s+date))?\b(?P<abbr>)"), _b_to_date),
    (_p(rf"\bso\s+far\s+this\s+{_PERIOD}\b(?P<abbr>)"), _b_to_date),
    (_p(rf"\b{_PERIOD}[\s-]+to[\s-]+date\b(?P<abbr>)"), _b_to_date),
    (_p(r"\b(?P<abbr>wtd|mtd|qtd|ytd)\b(?P<unit>)"), _b_to_date),
    # today, yesterday
    (_p(r"\b(?P<word>today|yesterday)\b"), _b_day_word),
    # last 90 days, past 6 months, previous two quarters, trailing 12 months, last 30d
    (
        _p(
            r"\b(?:last|past|previous|prior|trailing|rolling|preceding)\s+"
            r"(?:(?P<n>\d{1,5})\s*|(?P<w>one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s+)"
            rf"{_ADJ}(?P<unit>days?|d|weeks?|wks?|w|months?|mos?|m|quarters?|qtrs?|q|years?|yrs?|y)\b(?!-)"
        ),
        _b_rolling,
    ),
    (_p(r"\b(?:ttm|ltm)\b"), _b_ttm),
)


#: double-quoted text names a thing ("Night Shift 2024"), not a date
_QUOTED = re.compile(r'"[^"]*"|\u201c[^\u201d]*\u201d')


def _candidates(question: str, today: date, units: frozenset[str] = frozenset()) -> Iterator[_Atom]:
    quoted = [_span(m) for m in _QUOTED.finditer(question)]
    for pattern, build in _ATOMS:
        for m in pattern.finditer(question):
            atom = build(m, today)
            if atom is None or _overlaps(atom.span, quoted):
                continue
            if units and build in (_b_bare_year, _b_day_month) and _word_after(question, atom.span[1]) in units \
                    and _counted_here(question, atom, today, year=build is _b_bare_year):
                continue  # "with 2000 installs": a count of the layer's things, not a year
            yield atom


def _counted_here(text: str, atom: _Atom, today: date, *, year: bool) -> bool:
    """Whether a number before one of the project's unit words is a count: as for the generic unit words, a year
    near today stays a year ("2025 sessions") unless words before it make it a count ("with 2025 sessions")."""
    if not year:
        return True
    start = atom.span[0]
    before = _words_before(text, start)
    counted_by_words = bool(before) and (before[-1] in _COUNT_WORDS or before[-1][0] in "<>="
                                        or (len(before) == 2 and tuple(before) in _COUNT_PAIRS)
                                        or before[-1] in _QUANTITY_BEFORE)
    value = atom.start.year if atom.start is not None else today.year
    return counted_by_words or abs(value - today.year) > 10


class _Taken:
    """Disjoint character spans, kept sorted so an overlap test is two binary searches.

    >>> t = _Taken([(0, 4), (10, 14)])
    >>> t.overlaps((3, 6)), t.overlaps((4, 10)), t.overlaps((12, 20))
    (True, False, True)
    """

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for span in spans:
            self.add(span)

    def overlaps(self, span: tuple[int, int]) -> bool:
        i = bisect.bisect_right(self.starts, span[0])
        return (i > 0 and self.ends[i - 1] > span[0]) or (i < len(self.starts) and self.starts[i] < span[1])

    def add(self, span: tuple[int, int]) -> None:
        """Add a span, merged with any it overlaps (so the spans stay disjoint and sorted)."""
        start, end = span
        lo = bisect.bisect_right(self.starts, start)
        if lo > 0 and self.ends[lo - 1] > start:
            lo -= 1
        hi = lo
        while hi < len(self.starts) and self.starts[hi] < end:
            hi += 1
        if hi > lo:
            start, end = min(start, self.starts[lo]), max(end, self.ends[hi - 1])
        self.starts[lo:hi] = [start]
        self.ends[lo:hi] = [end]


def _select(atoms: Iterator[_Atom]) -> list[_Atom]:
    """Non-overlapping atoms, longest first, returned in order of appearance."""
    chosen: list[_Atom] = []
    taken = _Taken()
    for atom in sorted(atoms, key=lambda a: (a.span[0] - a.span[1], a.span[0])):
        if not taken.overlaps(atom.span):
            chosen.append(atom)
            taken.add(atom.span)
    return sorted(chosen, key=lambda a: a.span[0])


# --- ranges: atoms joined by "between ... and", "from ... to", "since", "before" ---------------

_GAP = _p(r"\s*(?P<conn>to|through|thru|until|till|-|\u2013|\u2014|and)\s*")
_BETWEEN = _p(r"\bbetween\s+(?:the\s+)?$")
_FROM = _p(r"\b(?:from|since|starting(?:\s+(?:from|in|on|with))?)\s+(?:the\s+)?$")
_LIST_GAP = _p(r"\s*(?:,\s*(?:and\s+|or\s+)?|and\s+|or\s+|&\s*)")
_VERSUS_GAP = _p(r"\s*,?\s*(?:vs\.?|versus|against|compared\s+(?:to|with))\s+(?:the\s+)?")
_COMPARE = _p(r"\b(?:compare|compared|comparing|comparison|versus|vs)\b")
#: words that make "from X to Y" a change between two periods ("grew from 2025 to 2026"), not one range
_CHANGE = _p(r"\b(?:chang(?:e|es|ed|ing)|grow(?:s|n|ing|th)?|grew|add(?:s|ed)|increas(?:e|es|ed|ing)|decreas(?:e|es|ed|ing)|"
             r"declin(?:e|es|ed|ing)|drop(?:s|ped|ping)?|f[ae]ll(?:s|en|ing)?|ris(?:e|es|en|ing)|rose|jump(?:s|ed)?|"
             r"shift(?:s|ed)?|mov(?:e|es|ed)|went|gone|go|goes|differ(?:s|ence|ent)?|delta|compar(?:e|ed|ing|ison)|"
             r"evolv(?:e|ed)|shr[iau]nk(?:s|ing)?|gain(?:s|ed)?|los[et]|lost|improv(?:e|ed)|worsen(?:ed)?|"
             r"perform(?:s|ed|ing|ance)?|far(?:e|es|ed|ing)|stack(?:s|ed)?\s+up|put(?:s|ting)?\s+on|pick(?:s|ed)?\s+up|extra|"
             r"do(?=\s+(?:from|between)\b))\b")
_EDGE = r"(?:(?:the\s+)?(?P<edge>start|beginning|end)\s+of\s+)?(?:the\s+)?$"
_OPEN = (
    ("since", _p(rf"\b(?:since|starting(?:\s+(?:from|in|on|with))?|beginning(?:\s+(?:in|on|with))?|on\s+or\s+after)\s+{_EDGE}")),
    ("after", _p(rf"\b(?:after|later\s+than)\s+{_EDGE}")),
    ("before", _p(rf"\b(?:before|prior\s+to|earlier\s+than)\s+{_EDGE}")),
    # ("went through last week": a phrasal verb, the period itself)
    ("until", _p(rf"\b(?:until|till|til|(?<!\bgo\s)(?<!\bgone\s)(?<!\bwent\s)(?<!\bgoing\s)(?<!\bgoes\s)(?<!\bgot\s)"
                 rf"(?<!\bget\s)(?<!\bran\s)(?<!\brun\s)(?:through|thru)|up\s+(?:to|until|through)|on\s+or\s+before|"
                 rf"no\s+later\s+than)\s+{_EDGE}")),
)
_WEEK_OF = _p(r"\b(?:the\s+)?week\s+(?P<how>of|starting(?:\s+on)?|beginning|commencing|from)\s+(?:the\s+)?$")
_FILLER = _p(r"(?:\b(?:in|during|for|over|within|throughout|across|of|on|from)\s+)?(?:\bthe\s+)?$")


def _join_label(a: _Atom, b: _Atom) -> str:
    if a.unit == b.unit and a.unit in ("month", "quarter", "half") and a.start.year == b.start.year:
        return f"{a.bare} to {b.label}"
    return f"{a.label} to {b.label}"


def _between(question: str, a: _Atom, b: _Atom,
             compare_end: int | None = None) -> TimeRange | tuple[TimeRange, TimeRange] | None:
    """``a`` and ``b`` joined into one range, when the text between them says so (``compare_end``: where the
    question's first "compare" / "versus" ends, None when it has none); the two periods, each with the year the
    other gives it, when a change from one to the other is asked ("grew from March to May 2025")."""
    gap = _GAP.fullmatch(question, a.span[1], b.span[0])
    if gap is None:
        return None
    conn = gap["conn"].lower()
    opener = _search_before(_BETWEEN if conn == "and" else _FROM, question, a.span[0])
    # "how did sales change from last month to this month": two periods compared, not one range
    # ("fastest-growing states, 2023 to 2024": whole years or quarters joined by "to" alone, a change asked)
    changed = ((conn == "to" and opener is not None and opener.group(0).lower().startswith("from"))
               or (conn == "and" and opener is not None)
               or (conn == "to" and opener is None and a.period in ("year", "quarter", "half"))) and not b.weak \
        and a.period is not None and a.period == b.period and _CHANGE.search(question) is not None
    if opener is None:
        if conn == "and":
            return None
        explicit = a.unit != "relative" and b.unit != "relative"
        if not explicit or (conn == "to" and compare_end is not None and compare_end <= a.span[0]):
            return None
    relative = a.relative or b.relative
    if a.rebuild is not None and (b.rebuild is None or b.relative):
        rebuilt = a.rebuild(b.start.year)
        if rebuilt is not None and rebuilt.start > b.start:
            rebuilt = a.rebuild(b.start.year - 1)
        if rebuilt is None:
            return None
        a, relative = rebuilt, b.relative
    elif b.rebuild is not None:
        rebuilt = b.rebuild(a.start.year)
        if rebuilt is not None and rebuilt.end < a.start:
            rebuilt = b.rebuild(a.start.year + 1)
        if rebuilt is None:
            return None
        b, relative = rebuilt, a.relative
    if changed and b.start > a.end:
        return _single(question, a), _single(question, b)
    span = (opener.start() if opener else a.span[0], b.span[1])
    if b.end < a.start:
        if conn != "and":
            return None
        a, b = b, a  # "between 2025-08-31 and 2025-06-01" means the same interval
    return TimeRange(start=a.start, end=b.end, label=_join_label(a, b), span=span, relative=relative)


def _single(question: str, a: _Atom) -> TimeRange:
    """One atom as a range, opened by "since", "after", "before" or "until" when one precedes it; the week of a
    day ("the week of 14 September": its Monday-Sunday week; "the week starting 14 September": seven days)."""
    week = _search_before(_WEEK_OF, question, a.span[0]) if a.period == "day" else None
    if week is not None:
        start = a.start if week["how"].lower() != "of" else week_start(a.start)
        end = start + timedelta(days=6)
        return TimeRange(start=start, end=end, label=f"the week of {start:%-d %B %Y}", span=(week.start(), a.span[1]),
                         relative=a.relative, period="week" if start == week_start(start) else None)
    for kind, pattern in _OPEN:
        m = _search_before(pattern, question, a.span[0])
        if m is None:
            continue
        edge = (m["edge"] or "").lower()
        if kind == "since" and edge == "end":
            kind = "after"
        elif kind == "until" and edge in ("start", "beginning"):
            kind = "before"
        span = (m.start(), a.span[1])
        if kind == "since":
            return TimeRange(start=a.start, end=None, label=f"since {a.label}", span=span, relative=a.relative)
        if kind == "after":
            return TimeRange(start=a.end + timedelta(days=1), end=None, label=f"after {a.label}", span=span, relative=a.relative)
        if kind == "before":
            return TimeRange(start=None, end=a.start - timedelta(days=1), label=f"before {a.label}", span=span, relative=a.relative)
        return TimeRange(start=None, end=a.end, label=f"until {a.label}", span=span, relative=a.relative)
    return TimeRange(start=a.start, end=a.end, label=a.label, span=a.span, relative=a.relative, period=a.period)


def _with_filler(question: str, r: TimeRange) -> TimeRange:
    """Widen the span over a leading "in", "during", "over the", ... that belongs to the phrase."""
    m = _search_before(_FILLER, question, r.span[0])
    if m is None or m.start() == r.span[0]:
        return r
    return r.model_copy(update={"span": (m.start(), r.span[1])})


def _share_years(question: str, atoms: list[_Atom]) -> list[_Atom]:
    """Give the year to periods listed before one that has it: "June, July and August 2025",
    "Q1 and Q2 2025" (the same year for all, as written); "Q1 vs Q2 2025" alike, "Q4 vs Q1 2026" the Q4 before."""
    shared = list(atoms)
    for i in range(len(shared) - 2, -1, -1):
        a, b = shared[i], shared[i + 1]
        if a.rebuild is None or a.unit != b.unit or (b.rebuild is not None and b.relative):
            continue
        versus = _VERSUS_GAP.fullmatch(question, a.span[1], b.span[0]) is not None
        if _LIST_GAP.fullmatch(question, a.span[1], b.span[0]) is None and not versus:
            continue
        rebuilt = a.rebuild(b.start.year)
        if versus and rebuilt is not None and rebuilt.start >= b.start:
            before = a.rebuild(b.start.year - 1)  # "Q4 vs Q1 2026": the quarter just before, Q4 2025
            if before is not None and (b.start - before.end).days == 1:
                rebuilt = before  # ("Q2 vs Q1 2020" is Q2 2020 against Q1 2020, not Q2 2019: the year as written)
        if rebuilt is not None:
            shared[i] = rebuilt._replace(weak=a.weak, relative=b.relative)
    return shared


def _ranges(question: str, atoms: list[_Atom]) -> list[TimeRange]:
    atoms = _share_years(question, atoms)
    compare = _COMPARE.search(question)
    compare_end = compare.end() if compare else None
    ranges: list[TimeRange] = []
    i = 0
    while i < len(atoms):
        if i + 1 < len(atoms):
            joined = _between(question, atoms[i], atoms[i + 1], compare_end)
            if isinstance(joined, tuple):
                ranges += [_with_filler(question, r) for r in joined]
                i += 2
                continue
            if joined is not None:
                ranges.append(_with_filler(question, joined))
                i += 2
                continue
        if not atoms[i].weak:
            ranges.append(_with_filler(question, _single(question, atoms[i])))
        i += 1
    return ranges


# --- grains ---------------------------------------------------------------------------------------

#: adjectives that name a plan or a metric, not a grain: "monthly active users", "annual plan"
_NOT_A_GRAIN = (
    r"(?!\s+(?:plans?|subscriptions?|subscribers?|billing|billed|prices?|pricing|fees?|tiers?|caps?"
    r"|limits?|quotas?|budgets?|pass|passes|memberships?|users?)\b)"
)
_NOT_A_PART = r"(?!\s+of\s+(?:the\s+)?(?:week|month|quarter|year)\b)"
#: "a month" is a rate's grain unless a span or a point: "in a month", "for a month", "within a year", "half a year"
_NOT_A_SPAN = (r"(?<!\bin\s)(?<!\bfor\s)(?<!within\s)(?<!\bover\s)(?<!after\s)(?<!\bthan\s)(?<!about\s)"
               r"(?<!\bhalf\s)(?<!once\s)(?<!\bjust\s)(?<!under\s)(?<!\bonly\s)(?<!\blast\s)(?<!\bnext\s)"
               r"(?<!\bthat\s)(?<!\bsuch\s)(?<!\bwhat\s)(?<!\bsuch\s)(?<!\bof\s)")


def _grain_pattern(adverbs: str, unit: str, nouns: str, abbrevs: str) -> re.Pattern[str]:
    return _p(
        rf"\b(?:(?:{adverbs}){_NOT_A_GRAIN}"
        rf"|{unit}[\s-]+(?:over|by|on)[\s-]+{unit}"
        rf"|(?:by|per|each)\s+(?:the\s+)?(?:(?:calendar|fiscal)\s+)?(?:{nouns}){_NOT_A_PART}"
        # "how many times a month", "orders a week": a rate's grain (not "in a month", "a month ago")
        rf"|{_NOT_A_SPAN}(?:a|an)\s+(?:{unit})(?!\s+(?:ago|earlier|before|later|back|prior|from|of|or|and|to|in|"
        rf"after|since|long|old|apart)\b)(?!\s*-)"
        rf"|{abbrevs})(?![\w/])"
    )


_GRAINS: tuple[tuple[re.Pattern[str], Grain], ...] = (
    (_grain_pattern("daily", "day", "day|date", "dod|d/d"), "day"),
    (_grain_pattern("weekly", "week", "week", "wow|w/w"), "week"),
    (_grain_pattern("monthly", "month", "month", "mom|m/m"), "month"),
    (_grain_pattern("quarterly", "quarter", "quarter", "qoq|q/q"), "quarter"),
    (_grain_pattern("yearly|annually", "year", "year", "yoy|y/y"), "year"),
)
_TREND = _p(r"\b(?:over\s+time|trends?|trending|trend\s*lines?|time[\s-]+series)\b")
#: "for each of the last 3 months", "in every one of the past 4 quarters": the range's own unit is the grain
_EACH_OF_LAST = _p(r"\b(?:for\s+|in\s+)?(?:each|every)(?:\s+one)?(?=\s+of\s+(?:the\s+|our\s+)?(?:last|past|previous|prior|"
                   r"preceding|first|final)\s+(?:\d+|[a-z]+)\s+(?P<u>day|week|month|quarter|year)s\b)")


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(span[0] < e and s < span[1] for s, e in spans)


def _grains(question: str, ranges: list[TimeRange], today: date) -> list[GrainMention]:
    taken = _Taken([r.span for r in ranges])
    found: list[GrainMention] = []
    for pattern, grain in _GRAINS:
        found += [GrainMention(grain=grain, span=_span(m)) for m in pattern.finditer(question)]
    found += [GrainMention(grain=m.group("u"), span=_span(m)) for m in _EACH_OF_LAST.finditer(question)]  # type: ignore[arg-type]
    trend = default_grain(ranges[0] if ranges else None, today)
    found += [GrainMention(grain=trend, span=_span(m), inferred=True) for m in _TREND.finditer(question)]
    chosen: list[GrainMention] = []
    for g in sorted(found, key=lambda g: (g.span[0] - g.span[1], g.span[0])):
        if not taken.overlaps(g.span):
            chosen.append(g)
            taken.add(g.span)
    return sorted(chosen, key=lambda g: g.span[0])


# --- offsets: a period compared with the one before it ------------------------------------------------

_UNIT = r"(?P<u>year|quarter|month|week|day)"
_BACK = (rf"(?:(?:last|previous|prior|preceding)\s+{_UNIT}|(?:a|one|the)\s+{_UNIT.replace('?P<u>', '?P<u2>')}\s+"
         rf"(?:earlier|before|ago|prior|back)|{_UNIT.replace('?P<u>', '?P<u3>')}\s+before)")
_OFFSETS = (
    # YoY, year over year, year-on-year growth (MoM and WoW written so: "mom" and "wow" are words)
    _p(r"\b(?:(?P<y>yoy|y/y|y-o-y|year[\s-]+(?:over|on)[\s-]+year)|(?P<q>qoq|q/q|quarter[\s-]+(?:over|on)[\s-]+quarter)|"
       r"(?P<m>m/m|month[\s-]+(?:over|on)[\s-]+month)|(?P<w>w/w|week[\s-]+(?:over|on)[\s-]+week)|"
       r"(?P<d>d/d|day[\s-]+(?:over|on)[\s-]+day))(?![\w/])"),
    re.compile(r"\b(?:(?P<m>MoM|MOM)|(?P<w>WoW|WOW)|(?P<d>DoD))\b"),
    _p(r"\b(?:(?P<m>mom)|(?P<w>wow))(?=\s+(?:growth|change|increase|decrease|decline|%|percent))"),
    # the same quarter a year earlier, the same period last year, the equivalent days of the prior year
    _p(rf"\b(?:(?:vs\.?|versus|compared\s+(?:with|to)|against|than|with|to)\s+)?(?:the\s+)?(?:same|equivalent|corresponding|comparable|matching)\s+(?:(?:period|time|span|stretch|dates?|days?|point|stage|"
       rf"weeks?|months?|quarters?|half|years?)\s+)?(?:(?:of|in|from|during)\s+)?(?:the\s+)?{_BACK}"),
    # vs last year, compared with the previous quarter, than a year ago, against the prior period
    _p(rf"\b(?:vs\.?|versus|compared\s+(?:with|to)|comparing\s+(?:with|to)|against|than|relative\s+to|from)\s+(?:the\s+)?"
       rf"(?:{_BACK}|(?:(?:last|previous|prior|preceding)\s+(?P<p>period)|(?P<p2>period)\s+before))\b"),
)
#: a marker: the offset's words name a period of their own (filled in by :func:`parse_time`)
_NAMES_PERIOD = TimeRange(start=None, end=None, label="", span=(0, 0))
_UNIT_GROUPS = {"y": "year", "q": "quarter", "m": "month", "w": "week", "d": "day"}


def _offsets(question: str) -> list[OffsetMention]:
    """Every offset comparison named, left to right, none inside another.

    >>> [(o.unit, o.span) for o in _offsets("UA spend in Q2 2026 vs the same quarter a year earlier")]
    [('year', (20, 54))]
    >>> [o.unit for o in _offsets("sales YoY by branch")], [o.unit for o in _offsets("revenue vs the prior period")]
    (['year'], ['period'])
    >>> _offsets("mom and pop stores"), _offsets("hours from last year")
    ([], [])
    """
    taken = _Taken()
    found: list[OffsetMention] = []
    for pattern in _OFFSETS:
        for m in pattern.finditer(question):
            groups = {k: v for k, v in m.groupdict().items() if v}
            unit = next((_UNIT_GROUPS[k] for k in groups if k in _UNIT_GROUPS), None)
            unit = unit or next((v.lower() for k, v in groups.items() if k in ("u", "u2", "u3")), None)
            unit = unit or ("period" if groups.get("p") or groups.get("p2") else None)
            if unit is None or taken.overlaps(_span(m)):
                continue
            if m.group(0).lower().startswith("from") and (not _CHANGE.search(question) or re.match(
                    r"\s*(?:to|through|thru|until|till|-)\b", question[m.end():], re.I)):
                continue  # "hours from last year": the period itself; "from last month to this month": a range
            taken.add(_span(m))
            found.append(OffsetMention(unit=unit, span=_span(m), names=None))  # type: ignore[arg-type]
            if pattern is _OFFSETS[-1] and groups.get("u"):
                found[-1] = found[-1].model_copy(update={"names": _NAMES_PERIOD})
    return sorted(found, key=lambda o: o.span[0])


def shifted(start: date, end: date, unit: str) -> tuple[date, date]:
    """The period ``start``-``end`` one ``unit`` earlier ("period": the span of the same length just before);
    whole calendar months stay whole ("February 2026" a year earlier is February 2025, to its last day).

    >>> shifted(date(2026, 7, 1), date(2026, 9, 30), "year")
    (datetime.date(2025, 7, 1), datetime.date(2025, 9, 30))
    >>> shifted(date(2026, 1, 1), date(2026, 11, 1), "year")
    (datetime.date(2025, 1, 1), datetime.date(2025, 11, 1))
    >>> shifted(date(2026, 3, 1), date(2026, 3, 31), "month")
    (datetime.date(2026, 2, 1), datetime.date(2026, 2, 28))
    >>> shifted(date(2026, 10, 5), date(2026, 10, 11), "period")
    (datetime.date(2026, 9, 28), datetime.date(2026, 10, 4))
    """
    if unit in ("day", "week", "period"):
        days = {"day": 1, "week": 7}.get(unit, (end - start).days + 1)
        return start - timedelta(days=days), end - timedelta(days=days)
    months = {"month": 1, "quarter": 3, "half": 6, "year": 12}[unit]

    def back(day: date, last: bool) -> date:
        first = shift_months(day, -months)
        length = calendar.monthrange(first.year, first.month)[1]
        return first.replace(day=length if last else min(day.day, length))

    whole_end = end == month_bounds(end.year, end.month)[1]
    return back(start, False), back(end, whole_end)


def period_label(start: date, end: date) -> str:
    """A period's name: "2025", "Q3 2025", "H1 2025", "October 2025", "January–October 2025", "the week of 6
    October 2025", "5 October 2025", else its two ends.

    >>> period_label(date(2025, 7, 1), date(2025, 9, 30)), period_label(date(2025, 1, 1), date(2025, 11, 1))
    ('Q3 2025', '1 January\u20131 November 2025')
    """
    if start == end:
        return f"{start:%-d %B %Y}"
    if (start.month, start.day, end.month, end.day) == (1, 1, 12, 31) and start.year == end.year:
        return str(start.year)
    if start.year == end.year and start.day == 1 and end == month_bounds(end.year, end.month)[1]:
        if start.month == end.month:
            return f"{_MONTH_NAMES[start.month - 1]} {start.year}"
        if (start.month - 1) % 3 == 0 and end.month == start.month + 2:
            return f"Q{_quarter_of(start)} {start.year}"
        if start.month in (1, 7) and end.month == start.month + 5:
            return f"H{1 if start.month == 1 else 2} {start.year}"
        return f"{_MONTH_NAMES[start.month - 1]}\u2013{_MONTH_NAMES[end.month - 1]} {start.year}"
    if start == week_start(start) and end == start + timedelta(days=6):
        return f"the week of {start:%-d %B %Y}"
    if start.year == end.year:
        return f"{start:%-d %B}\u2013{end:%-d %B %Y}"
    return f"{start:%-d %B %Y}\u2013{end:%-d %B %Y}"


# --- entry point ----------------------------------------------------------------------------------


def parse_time(question: str, today: date, unit_words: Iterable[str] = ()) -> TimeParse:
    """Find the time ranges and grains in ``question``, resolving relative phrases against ``today``.

    ``unit_words`` are the nouns a number may count in this project (its tables' and metrics' names, lower
    case), besides the generic ones: "top 5 with 2000 installs" holds no year when installs are counted.

    >>> today = date(2026, 11, 1)
    >>> r = parse_time("total sales by store last quarter, only returning customers", today).ranges[0]
    >>> (r.start, r.end, r.label, r.relative)
    (datetime.date(2026, 7, 1), datetime.date(2026, 9, 30), 'last quarter (Q3 2026)', True)
    >>> [(r.label, r.start, r.end) for r in parse_time("sessions between 2025-06-01 and 2025-08-31", today).ranges]
    [('2025-06-01 to 2025-08-31', datetime.date(2025, 6, 1), datetime.date(2025, 8, 31))]
    >>> q = "installs in the last 90 days, weekly"
    >>> p = parse_time(q, today)
    >>> p.ranges[0].label, p.ranges[0].start, p.ranges[0].end, q[slice(*p.ranges[0].span)]
    ('last 90 days', datetime.date(2026, 8, 3), datetime.date(2026, 10, 31), 'in the last 90 days')
    >>> [g.grain for g in p.grains]
    ['week']
    >>> parse_time("top 5 products with 2000 views", today)
    TimeParse(ranges=(), grains=(), offsets=())
    """
    ranges = _ranges(question, _select(_candidates(question, today, frozenset(w.lower() for w in unit_words))))
    offsets = _offsets(question)
    for k, o in enumerate(offsets):
        if o.names is not None:  # "vs last year": the range of "last year", for a comparison of the same kind
            own = [r for r in ranges if _overlaps(r.span, [o.span])]
            offsets[k] = o.model_copy(update={"names": own[0] if len(own) == 1 else None})
    ranges = [r for r in ranges if not _overlaps(r.span, [o.span for o in offsets])]
    return TimeParse(ranges=tuple(ranges), grains=tuple(_grains(question, ranges, today)), offsets=tuple(offsets))
