"""Text helpers of the offline planner: normalising a question, token spans, and span lookups."""

from __future__ import annotations

import bisect
import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator

from lore.plan.catalog import Token
from lore.plan.words import KNOWN_WORDS
from lore.retrieve.lexical import stem

#: the most of a question the planner reads: the default question limit (longer ones are refused before planning,
#: Settings.max_question_chars); every pass is linear in it
MAX_QUESTION_CHARS = 4000

_TIME_WORDS = {"yr": "year", "yrs": "years", "mo": "month", "mos": "months", "mth": "month", "mths": "months",
               "qtrly": "quarterly", "mthly": "monthly", "wkly": "weekly", "yrly": "yearly",
               "wk": "week", "wks": "weeks", "qtr": "quarter", "qtrs": "quarters", "ytd": "year to date"}
_TIME_ABBREVIATIONS = re.compile(r"\b(" + "|".join(_TIME_WORDS) + r")\b(?!-)", re.I)


def normalise(question: str) -> str:
    """NFKC, no control or invisible characters, single spaces, bounded length; time abbreviations, "w/", a "$"
    standing for money (not before an amount), "half a million", "this yrs", "claim #" and misspelt question
    words ("wich") written out.

    >>> normalise("  revenue\\u200b by\\n  store ")
    'revenue by store'
    >>> normalise("agents over half a million in this yrs sales: agent #, name")
    'agents over 500000 in this year sales: agent number, name'
    >>> normalise("more than half a million dollars of sales, or 20k bucks")
    'more than $500000 of sales, or $20k'
    """
    text = unicodedata.normalize("NFKC", question or "")
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = re.sub(r"[\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]", "", text)
    text = " ".join(text.split())
    text = _TIME_ABBREVIATIONS.sub(lambda m: _TIME_WORDS[m.group(1).lower()], text)
    text = _MONTH_POSSESSIVE.sub(r"\1", text)
    text = _PERIOD_POSSESSIVE.sub(r"\1 \2", text)
    text = _HALF_A.sub(_half_a, text)
    text = _A_UNIT.sub(lambda m: str({"hundred": 100, "thousand": 1000, "grand": 1000, "million": 10**6,
                                      "billion": 10**9}[m.group(1).lower()]), text)
    text = _QUESTION_TYPOS.sub(lambda m: _QUESTION_WORDS[m.group(0).lower()], text)
    text = _TEXTING_ARE.sub(r"\1 are ", text)
    text = _HASH_AFTER.sub(" number", text)
    text = _N_PLUS.sub(r"at least \1", text)
    text = _DOLLAR_SIGNS.sub(" dollars ", text)
    text = _AMOUNT_IN_DOLLARS.sub(r"$\1", text)
    text = " ".join(_WITH_SLASH.sub(lambda m: "without" if m.group(1) else "with", text).split())
    return text[:MAX_QUESTION_CHARS]


#: "this yrs revenue", "last year's sales", "last months orders": the period, not a plural
_PERIOD_POSSESSIVE = re.compile(r"\b(this|last|next|previous|prior)\s+(year|month|week|quarter)(?:s|['’]s)\b(?!\s+ago\b)",
                                re.I)
#: "claim #", "order #s": the number the noun names ("# of" stays a count's cue)
_HASH_AFTER = re.compile(r"(?<=[A-Za-z])\s+#(?:s\b)?(?=\s*(?:[,;:?.)]|$|\s(?!of\b)))", re.I)  # (not "C#")
#: misspelt question words (the layer's words are corrected by the spelling pass; these are no layer's)
_QUESTION_WORDS = {"wich": "which", "whcih": "which", "whihc": "which", "wihch": "which", "waht": "what",
                   "whta": "what", "hwo": "how", "hw": "how", "howmany": "how many", "whre": "where",
                   "evrey": "every", "evry": "every", "eveyr": "every", "eahc": "each"}
_QUESTION_TYPOS = re.compile(r"\b(?:" + "|".join(_QUESTION_WORDS) + r")\b", re.I)
#: "half a million", "a quarter of a million": the number
#: "how many policies r in force", "we r": "are" in texting shorthand (lower case, after a plural or a pronoun;
#: never "rated R")
_TEXTING_ARE = re.compile(r"\b(we|you|they|there|[a-z]+s) r (?=[a-z])")
#: "more than a thousand bucks", "over a million": the number (not "a hundred percent" alone: still 100)
_A_UNIT = re.compile(r"(?<![\w.,])(?:an?|one)\s+(hundred|thousand|grand|million|billion)\b(?!\s+(?:and|of)\b)", re.I)
_HALF_A = re.compile(r"\b(half|a\s+quarter)\s+(?:of\s+)?an?\s+(million|billion|thousand|mn|bn|k)\b", re.I)
def _half_a(m: re.Match[str]) -> str:
    """ "half a million" -> "500000" (a number the threshold and value passes read)."""
    unit = {"million": 10**6, "mn": 10**6, "billion": 10**9, "bn": 10**9}.get(m.group(2).lower(), 1000)
    return str(unit // (2 if m.group(1).lower() == "half" else 4))


#: "100+ visits", "shops with 5+ refunds": at least the number
_N_PLUS = re.compile(r"(?<![\w.$])(\d[\d,]*(?:\.\d+)?)\s*\+(?=\s+[A-Za-z])")
#: "w/" and "w/o" written out
_WITH_SLASH = re.compile(r"\bw/(o\b)?(?=\s|$)", re.I)
#: dollar signs standing for money, not before an amount ("the average $ per order", "the most $$")
_DOLLAR_SIGNS = re.compile(r"(?<![\w$])\$+(?!\s*[\d.,$])")
#: an amount said in dollars ("500000 dollars of sales", "2k bucks") is the amount with its sign
_AMOUNT_IN_DOLLARS = re.compile(r"(?<![\w$.,])(\d[\d,]*(?:\.\d+)?\s*(?:k|m|mm|bn)?)\s+(?:dollars|bucks|usd)\b", re.I)


#: a month's possessive ("October's spend") is the month
_MONTH_POSSESSIVE = re.compile(r"\b(january|february|march|april|june|july|august|september|october|november|december|"
                               r"jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)['’]s\b", re.I)


#: the words of the analysis operations a misspelling of which is read as meant (the layer's words are corrected
#: by the spelling pass; these are no layer's)
OPERATION_WORDS: tuple[str, ...] = ("cumulative", "cumulatively", "percentage", "percentages", "proportion",
                                    "comparison", "compared", "versus", "average", "running", "growth", "increase",
                                    "decrease", "decline", "quarterly", "monthly", "weekly", "yearly", "change",
                                    "changed", "changes", "quarter", "quarters", "months")
_WORD = re.compile(r"[A-Za-z]{6,}")


def operation_typos(text: str, vocabulary: frozenset[str] | set[str] = frozenset()) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with misspelt operation words corrected ("cumulitive" -> "cumulative"), and what was corrected; a
    word of the layer's ``vocabulary`` (stems) is left alone.

    >>> operation_typos("cumulitive cost by week")
    ('cumulative cost by week', [('cumulitive', 'cumulative')])
    >>> operation_typos("tax we charged, nearly $1k")[1]  # ordinary words one letter off are left alone
    []
    """
    fixed: list[tuple[str, str]] = []

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        if low in vocabulary or stem(low) in vocabulary or low in KNOWN_WORDS or any(
                low.startswith(w) or w.startswith(low) for w in OPERATION_WORDS):
            return word  # a word of the layer, or an operation word's own form ("quarter", "averages")
        close = difflib.get_close_matches(low, OPERATION_WORDS, n=1, cutoff=0.85) or [
            w for w in OPERATION_WORDS if _one_edit(low, w)][:1]
        if not close:
            return word
        fixed.append((word, close[0]))
        return close[0]

    return _WORD.sub(fix, text), fixed


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with one letter changed, added, dropped or two neighbours swapped.

    >>> _one_edit("chnage", "change"), _one_edit("leverage", "average")
    (True, False)
    """
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


_SLASH = re.compile(r"\b([A-Za-z][A-Za-z\-]+)\s*/\s*([A-Za-z][A-Za-z\-]+)\b")  # ("A/B test": no word)
_GROUPING = frozenset({"by", "per", "each", "every", "across", "and", "or"})


def slash_per(text: str, names_entity: Callable[[str], bool]) -> str:
    """``text`` with "A/B" read as "A per B" where B names an entity and A is no breakdown ("hours/acct" is hours
    per account; "by store/customer" and "cash/card" stay).

    >>> slash_per("hours/acct by plan", lambda w: w == "acct")
    'hours per acct by plan'
    >>> slash_per("revenue by store/acct", lambda w: w == "acct")
    'revenue by store/acct'
    """
    def fix(m: re.Match[str]) -> str:
        before = text[:m.start()].split()[-1:]
        if not names_entity(m.group(2)) or names_entity(m.group(1)) or (before and before[0].lower() in _GROUPING):
            return m.group(0)
        return f"{m.group(1)} per {m.group(2)}"

    return _SLASH.sub(fix, text)


_THINGS_ON = re.compile(r"\b(things?|items?|stuff|options?|sellers?)\s+on\s+(?:the|our|my|your)\s+([A-Za-z]+)\b", re.I)


def things_on(text: str, names_entity: Callable[[str], bool]) -> str:
    """``text`` with "things on the <X>" read as "<X> things" where X names an entity ("each thing on the menu" is
    each menu item; "the 2 worst sellers on the menu" are the menu's).

    >>> things_on("how many of each thing on the menu did we sell", lambda w: w == "menu")
    'how many of each menu thing did we sell'
    >>> things_on("items on the agenda", lambda w: w == "menu")
    'items on the agenda'
    """
    def fix(m: re.Match[str]) -> str:
        if not names_entity(m.group(2)):
            return m.group(0)
        return f"{m.group(2)} {m.group(1)}"

    return _THINGS_ON.sub(fix, text)


_SELLER_ADJECTIVES = r"best|worst|top|bottom|biggest|slowest|poorest|weakest|strongest"
_SELLERS = re.compile(rf"\b(?P<adj>{_SELLER_ADJECTIVES})(?P<n>\s+\d+)?"
                      rf"(?:\s+(?!(?:{_SELLER_ADJECTIVES})\b)(?P<entity>[A-Za-z]+))?[\s-]*sellers?\b", re.I)


def sellers(text: str, names_entity: Callable[[str], bool], sold: str | None) -> str:
    """``text`` with "best sellers" read as "best selling <things>": the things named before it ("the worst menu
    sellers"), else ``sold``, the things the layer's count of sales names (None: left as it is).

    >>> sellers("top 2 best sellers at each store", lambda w: False, "products")
    'top 2 best selling products at each store'
    >>> sellers("our 3 bestsellers", lambda w: False, "products")
    'our 3 best selling products'
    >>> sellers("the 2 worst menu sellers", lambda w: w == "menu", None)
    'the 2 worst selling menu'
    >>> sellers("our top sellers", lambda w: False, None)
    'our top sellers'
    """
    def fix(m: re.Match[str]) -> str:
        entity = m.group("entity")
        if entity and not names_entity(entity):
            return m.group(0)
        thing = entity or sold
        if thing is None:
            return m.group(0)
        return f"{m.group('adj')}{m.group('n') or ''} selling {thing}"

    return _SELLERS.sub(fix, text)


_SHARED_HEAD = re.compile(r"\b([A-Za-z]+)\s+(and|or|&)\s+([A-Za-z]+)\s+([A-Za-z]+s)\b", re.I)


def shared_heads(text: str, names_attribute: Callable[[str], bool]) -> str:
    """``text`` with two attributes sharing one plural noun written out ("start and end dates" -> "start date and
    end dates"), when both read so name an attribute.

    >>> shared_heads("list the tests with start and end dates", lambda p: p in ("start date", "end date"))
    'list the tests with start date and end dates'
    """
    def fix(m: re.Match[str]) -> str:
        head = m.group(4)[:-1]
        if not (names_attribute(f"{m.group(1)} {head}") and names_attribute(f"{m.group(3)} {head}")):
            return m.group(0)
        return f"{m.group(1)} {head} {m.group(2)} {m.group(3)} {m.group(4)}"

    return _SHARED_HEAD.sub(fix, text)


def tokens_in(tokens: list[Token], span: tuple[int, int]) -> set[int]:
    """The indexes of the tokens inside ``span``: tokens are in order and do not overlap, so two binary searches.

    >>> from lore.plan.catalog import tokenize
    >>> sorted(tokens_in(tokenize("orders in New York by store"), (10, 18)))
    [2, 3]
    """
    lo = bisect.bisect_left(tokens, span[0], key=lambda t: t.start)
    hi = bisect.bisect_right(tokens, span[1], key=lambda t: t.end)
    return set(range(lo, hi))


def span_text(text: str, tokens: list[Token], start: int, end: int) -> str:
    """The question's own words from token ``start`` to token ``end`` (exclusive)."""
    return text[tokens[start].start:tokens[end - 1].end]


def mask(text: str, tokens: list[Token], hide: set[int]) -> str:
    """The text with the given tokens blanked (spans keep their positions).

    >>> from lore.plan.catalog import tokenize
    >>> mask("orders by store", tokenize("orders by store"), {2})
    'orders by      '
    """
    chars = list(text)
    for i in hide:
        t = tokens[i]
        chars[t.start:t.end] = " " * (t.end - t.start)
    return "".join(chars)


def gap(text: str, tokens: list[Token], left: int, right: int) -> str:
    """The characters between token ``left`` and token ``right`` (punctuation, spaces), stripped."""
    return text[tokens[left].end:tokens[right].start].strip()


class Spans:
    """Character spans with an item each, sorted by start: which contain, overlap or sit near a span, in
    O(log n) plus the spans that can qualify (they start within the longest span's length), not a scan of all.

    >>> s = Spans([((0, 5), "a"), ((3, 9), "b"), ((20, 22), "c")])
    >>> [x for _, x in s.containing((3, 5))], [x for _, x in s.overlapping((4, 21))], s.near((25, 27), 3)
    (['a', 'b'], ['a', 'b', 'c'], True)
    """

    def __init__(self, items: Iterable[tuple[tuple[int, int], object]]) -> None:
        self._items = sorted(items, key=lambda x: x[0][0])
        self._starts = [sp[0] for sp, _ in self._items]
        self._ends = sorted(sp[1] for sp, _ in self._items)
        self._longest = max((sp[1] - sp[0] for sp, _ in self._items), default=0)

    def _starting(self, lo: int, hi: int) -> list[tuple[tuple[int, int], object]]:
        """The items whose span starts in lo..hi (both included)."""
        return self._items[bisect.bisect_left(self._starts, lo):bisect.bisect_right(self._starts, hi)]

    def containing(self, span: tuple[int, int]) -> Iterator[tuple[tuple[int, int], object]]:
        for sp, item in self._starting(span[1] - self._longest, span[0]):
            if sp[0] <= span[0] and span[1] <= sp[1]:
                yield sp, item

    def overlapping(self, span: tuple[int, int]) -> Iterator[tuple[tuple[int, int], object]]:
        for sp, item in self._starting(span[0] - self._longest, span[1] - 1):
            if sp[0] < span[1] and span[0] < sp[1]:
                yield sp, item

    def near(self, span: tuple[int, int], distance: int) -> bool:
        """Whether a span starts within ``distance`` of ``span``'s end or ends within it of its start."""
        starts = bisect.bisect_left(self._starts, span[1] - distance) < bisect.bisect_right(self._starts,
                                                                                             span[1] + distance)
        return starts or bisect.bisect_left(self._ends, span[0] - distance) < bisect.bisect_right(self._ends,
                                                                                                  span[0] + distance)
