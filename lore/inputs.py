"""What comes in: checked for its type, cleaned, bounded in length and in time.

Pure helpers used at the entry points (:func:`lore.pipeline.ask`, :meth:`lore.core.Lore.sql`, the
semantic API), so every stage after them sees valid text:

- :func:`require_text`: a str, or an :class:`~lore.errors.BadInput` that says what to pass;
- :func:`clean_question`: lone surrogates replaced, control characters other than newline and tab
  removed, Unicode normalised to NFC;
- :func:`has_words`: whether a question holds any letter or digit at all;
- :class:`Budget`: the time one question may take, checked between stages.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable

from lore.errors import BadInput, QuestionTimeout

_SURROGATE = re.compile("[\ud800-\udfff]")
#: control characters (Unicode category Cc) but tab and newline
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def require_text(value: object, *, what: str, example: str) -> str:
    """``value`` when it is a str; else a :class:`BadInput` naming what to pass.

    >>> require_text("SELECT 1", what="Lore.sql() takes the SQL", example='lore.sql("SELECT 1")')
    'SELECT 1'
    >>> require_text(b"SELECT 1", what="Lore.sql() takes the SQL", example='lore.sql("SELECT 1")')
    Traceback (most recent call last):
    ...
    lore.errors.BadInput: Lore.sql() takes the SQL as text (str), not bytes.
    Decode the bytes first (data.decode("utf-8")), for example: lore.sql("SELECT 1")
    """
    if isinstance(value, str):
        return value
    kind = "None" if value is None else type(value).__name__
    fix = 'Decode the bytes first (data.decode("utf-8")), for example: ' if isinstance(value, (bytes, bytearray)) \
        else "Pass a str, for example: "
    raise BadInput(f"{what} as text (str), not {kind}.", hint=fix + example)


def clean_question(text: str) -> str:
    """The question every stage sees: valid Unicode text, NFC, no control characters but newline and tab.

    A surrogate pair written as two code points becomes its character; a lone surrogate (JSON's
    ``"\\udc80"`` decodes to one) becomes U+FFFD, the replacement character.

    >>> clean_question("hours\\x00 in Brazil\\udc80\\r\\n by\\tregion")
    'hours in Brazil\\ufffd\\n by\\tregion'
    >>> clean_question("\\ud83d\\ude00 Cafe\\u0301")
    '😀 Café'
    """
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = _CONTROL.sub("", text)
    return unicodedata.normalize("NFC", text)


def has_words(text: str) -> bool:
    """Whether the text holds a letter or a digit (in any script).

    >>> has_words("  ?!… "), has_words("¿cuántas horas?"), has_words("收入")
    (False, True, True)
    """
    return any(ch.isalnum() for ch in text)


class Budget:
    """The seconds one question may take; the pipeline checks it between stages.

    >>> b = Budget(20.0, clock=lambda: 100.0)
    >>> b.cap(15.0), b.expired
    (15.0, False)
    >>> late = Budget(5.0, clock=iter([0.0, 4.0, 9.0]).__next__)
    >>> late.cap(15.0)
    1.0
    >>> late.check("plan")
    Traceback (most recent call last):
    ...
    lore.errors.QuestionTimeout: This question took longer than the 5 s LORE gives one question: it was stopped in the plan stage.
    Ask a narrower question (one metric, a few filters, a period), or ask the operator to raise LORE_QUESTION_BUDGET_S.
    """

    #: the least time a query is given, so a nearly spent budget still says "took too long", not a crash
    MIN_QUERY_S = 0.05

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds

    def remaining(self) -> float:
        return self._deadline - self._clock()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self, stage: str) -> None:
        """Raise :class:`QuestionTimeout` (naming ``stage``) when the time is up."""
        if self.expired:
            raise QuestionTimeout(stage=stage, budget_s=self.seconds)

    def cap(self, seconds: float) -> float:
        """``seconds``, or less when the budget has less left (a query's time limit)."""
        return max(self.MIN_QUERY_S, min(seconds, self.remaining()))


__all__ = ["Budget", "clean_question", "has_words", "require_text"]
