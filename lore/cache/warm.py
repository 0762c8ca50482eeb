"""Warming: the nightly pre-cache idea (ask a list of questions once so the first users find them cached)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from lore.cache.memory import CacheStats
from lore.errors import OperatorError
from lore.types import Frozen

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.semantic.spec import SemanticLayer


# --- warming: the nightly pre-cache idea ----------------------------------------------


class WarmReport(Frozen):
    """What ``lore cache warm`` did: questions asked, how they ended, and how long it took."""

    questions: int
    answered: int
    cached: int
    not_answered: tuple[str, ...] = ()
    warm_up_s: dict[str, float] = {}
    seconds: float
    stats: CacheStats | None = None


def read_questions(path: Path) -> list[str]:
    """Questions from a YAML file: a list, or a mapping with a ``questions`` list; items are strings or
    mappings with a ``question`` (the format of ``evals/bench/questions.yaml``)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise OperatorError(f"Cannot read the questions file {path}: {err}",
                            hint="Pass a YAML list of questions with --questions.") from None
    return questions_from(data, source=str(path))


def questions_from(data: object, *, source: str = "questions") -> list[str]:
    """The question texts of parsed YAML.

    >>> questions_from({"questions": ["a", {"question": "b", "domain": "x"}]})
    ['a', 'b']
    >>> questions_from(["a", "a", " "])
    ['a']
    """
    items = data.get("questions") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise OperatorError(f"{source} holds no list of questions", hint="Use `questions: [...]` or a plain list.")
    out: list[str] = []
    for item in items:
        text = item.get("question") if isinstance(item, dict) else item
        if isinstance(text, str) and text.strip() and text.strip() not in out:
            out.append(text.strip())
    return out


def catalog_questions(layer: SemanticLayer) -> list[str]:
    """One question per metric (its label, else its name in words): the default warm set without a file."""
    return [(m.label or m.name.replace("_", " ")) for m in layer.metrics.values()]


def warm(lore: Lore, questions: Sequence[str], *, progress: Callable[[int, int, str], None] | None = None) -> WarmReport:
    """Open everything (:meth:`Lore.warm_up`) and answer ``questions`` so their results fill the answer cache.

    With the disk tier on (the default), the results and plans are also in ``.lore/answers.sqlite``, so
    every process of the project started later answers these questions from the cache.
    """
    started = time.perf_counter()
    took = lore.warm_up()
    answered = cached = 0
    missed: list[str] = []
    for i, question in enumerate(questions, 1):
        answer = lore.ask(question, user="lore-cache-warm")
        if answer.status == "answered":
            answered += 1
            cached += bool(answer.trace and answer.trace.cache_hit)
        else:
            missed.append(question)
        if progress is not None:
            progress(i, len(questions), question)
    cache = lore.answer_cache
    return WarmReport(questions=len(questions), answered=answered, cached=cached, not_answered=tuple(missed),
                      warm_up_s=took, seconds=round(time.perf_counter() - started, 3),
                      stats=cache.stats() if cache is not None else None)
