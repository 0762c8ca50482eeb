"""Red-team findings on input handling (R1, R3, R5) and bounded work on any input, each a test.

Work is measured by counting, never by a clock: :func:`_calls` counts the Python and C function calls
a piece of work makes (``sys.setprofile``), which is the same on a busy machine and an idle one. Linear
work on a question four times as long makes about four times the calls; the quadratic matching the red
team found made sixteen times as many. The CPU seconds are in ``python -m evals.bench.inputs``.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lore import Lore
from lore.errors import AskerError, LoreError, OperatorError
from lore.llm.chat import StructuredChat
from lore.llm.models import ModelHandle
from lore.llm.scripted import ScriptedChatModel
from lore.settings import Settings

#: pathological questions of a given length: one short value repeated, a word that starts 500 titles,
#: a real country name, several short values, digits, time words, one long token, many different words
PATHOLOGICAL: dict[str, Callable[[int], str]] = {
    "A A A": lambda n: ("A " * n)[:n],
    "The The": lambda n: ("The " * n)[:n],
    "Brazil": lambda n: ("Brazil " * n)[:n],
    "A B C tv en": lambda n: ("A B C tv en US " * n)[:n],
    "values": lambda n: ("Brazil premium iOS US tv A B 18-24 comedy " * n)[:n],
    "digits": lambda n: ("12 " * n)[:n],
    "time words": lambda n: ("in 2024 last month Q1 since January " * n)[:n],
    "one token": lambda n: "x" * n,
    "many words": lambda n: " ".join(f"w{i}x" for i in range(n))[:n],
}
#: a question four times as long may cost at most this many times the calls (linear: about 4; quadratic: 16)
MAX_GROWTH = 5.0
#: the default question limit, in characters (Settings.max_question_chars)
LIMIT = 4_000


def _calls(work: Callable[[], object]) -> int:
    """How many function calls (Python and C) running ``work`` makes: a count of work, not a clock."""
    count = 0

    def tally(frame: object, event: str, arg: object) -> None:
        nonlocal count
        count += 1

    sys.setprofile(tally)
    try:
        work()
    finally:
        sys.setprofile(None)
    return count


# --- R1: value matching was quadratic in the question's length --------------------------------------------------

@pytest.mark.parametrize("kind", list(PATHOLOGICAL))
def test_r1_value_matching_grows_linearly_with_the_question(demo_lore: Lore, kind: str) -> None:
    """R1: matching dimension values in a question four times as long makes about four times the calls (it made
    sixteen: every match was compared with every other, 26.5 s of CPU for 38 KB of "A A A")."""
    match = demo_lore.retriever.match_values
    make = PATHOLOGICAL[kind]
    match(make(100))  # warm
    short, long_ = _calls(lambda: match(make(LIMIT // 4))), _calls(lambda: match(make(LIMIT)))
    assert long_ <= MAX_GROWTH * short, (kind, short, long_)


def test_r1_lookups_per_word_are_bounded_by_the_value_set(demo_lore: Lore) -> None:
    """R1: at each word the matcher makes one lookup per distinct length of the values starting with that word
    (a number fixed by the values, whatever the question), so the 500 titles starting with "The" cost a few
    lookups per "The", and the matches found are the values as written."""
    from lore.retrieve.lexical import ValueMatcher

    values = demo_lore.values
    matcher = ValueMatcher(values)
    longest = max(len(v) for vals in values.values() for v in vals)
    titles_the = sum(1 for v in values["titles.title_name"] if v.lower().startswith("the "))
    assert titles_the > 20
    assert 0 < len(matcher.lengths_at("the")) < titles_the
    assert all(n <= longest + 3 for n in matcher.lengths_at("the"))  # +3: a plural spelling ("comedies")
    title = next(v for v in values["titles.title_name"] if v.lower().startswith("the "))
    found = matcher.match(f"hours of {title} and {title.upper()} " + "The " * 500)
    assert [(m.value, m.score) for m in found if m.value == title] == [(title, 1.0), (title, 0.95)]


@pytest.mark.parametrize("kind", ["A A A", "The The", "values", "time words", "A B C tv en"])
def test_r1_the_whole_pipeline_grows_linearly_up_to_the_length_limit(demo_lore: Lore, kind: str) -> None:
    """R1: retrieval, planning and the rest answer a 4,000-character question (the limit) with about four times
    the calls of a 1,000-character one (the planner compared every value mention with every token)."""
    make = PATHOLOGICAL[kind]
    demo_lore.chat().ask(make(300))  # warm: the planner's tables are built on first use
    short = _calls(lambda: demo_lore.chat().ask(make(LIMIT // 4)))
    long_ = _calls(lambda: demo_lore.chat().ask(make(LIMIT)))
    assert long_ <= MAX_GROWTH * short, (kind, short, long_)


# --- bounded work: a length limit, and a time budget for the whole pipeline -----------------------------------

def test_budget_a_question_over_the_length_limit_is_refused_before_any_work(demo_lore: Lore) -> None:
    """Bounded work: a question over ``max_question_chars`` (4,000 by default) is refused with a message that
    says the limit and what to do, before any stage runs (a 1 MB message took 209 s of CPU)."""
    assert Settings().max_question_chars == LIMIT
    limit = demo_lore.settings.max_question_chars
    for question in ("A " * (limit // 2) + "x", "A " * 500_000):
        answer = demo_lore.ask(question)
        assert answer.status == "refused", answer.message
        assert f"{limit:,} characters" in answer.message and "fewer words" in answer.message
        assert "LORE_MAX_QUESTION_CHARS" in answer.message
        assert answer.trace is not None and answer.trace.timings == ()
        assert len(answer.question) < 300  # the answer does not carry the megabyte along
    assert demo_lore.ask("streaming hours by region in 2025 " + " " * (limit - 40)).status == "answered"


def test_budget_the_length_limit_is_a_setting(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded work: LORE_MAX_QUESTION_CHARS sets the limit, and LORE_QUESTION_BUDGET_S the time budget."""
    monkeypatch.setenv("LORE_MAX_QUESTION_CHARS", "40")
    monkeypatch.setenv("LORE_QUESTION_BUDGET_S", "7.5")
    settings = Settings(project=demo_dir)
    assert settings.max_question_chars == 40 and settings.question_budget() == 7.5
    with Lore.open(demo_dir, settings=settings, feedback=False) as small:
        assert small.ask("streaming hours by region in 2025").status == "answered"
        refused = small.ask("streaming hours by region in 2025, and by country")
        assert refused.status == "refused" and "up to 40 characters" in refused.message


def test_budget_a_question_that_runs_out_of_time_gets_an_error_answer_naming_the_stage(demo_lore: Lore) -> None:
    """Bounded work: the whole pipeline, not only DuckDB, has a time budget; a question that uses it up gets an
    error Answer saying it took too long and in which stage, and no later stage runs."""
    settings = demo_lore.settings.model_copy(update={"question_budget_s": 1e-6})
    with Lore(demo_lore.project, settings) as hurried:
        answer = hurried.ask("streaming hours by region in 2025")
    assert answer.status == "error"
    assert "took longer than the 1e-06 s" in answer.message and "retrieve stage" in answer.message
    assert "LORE_QUESTION_BUDGET_S" in answer.message
    assert answer.sql is None and answer.rows == ()
    assert answer.trace is not None and answer.trace.error and {t.stage for t in answer.trace.timings} <= {"retrieve"}


# --- R3: every input gives an Answer or a LoreError --------------------------------------------------------------

def test_r3_a_lone_surrogate_gets_an_answer(demo_lore: Lore) -> None:
    """R3: a lone surrogate (Slack's JSON "\\udc80" decodes to one) raised UnicodeEncodeError, and a dotted
    capital I (two characters in lower case) IndexError in value matching; questions are now cleaned once as
    ask() starts (surrogates replaced, control characters dropped, Unicode in NFC) and matching keeps offsets."""
    answer = demo_lore.ask("streaming hours in Brazil\udc80 in 2025\x00")
    assert answer.status == "answered" and answer.rows
    assert answer.question == "streaming hours in Brazil\ufffd in 2025"
    json.dumps(answer.to_json(), ensure_ascii=False).encode("utf-8")  # every adapter can send it
    paired = demo_lore.ask("streaming hours by region in 2025 \ud83d\udcc8")  # a pair written as two code points
    assert paired.status == "answered" and paired.question.endswith("\U0001f4c8")
    assert demo_lore.ask("\udc80\udc80").status == "clarify"
    assert demo_lore.ask("streaming hours in Cafe\u0301 İİ US").question.endswith("Caf\u00e9 İİ US")


@pytest.mark.parametrize("value", [None, b"SELECT 1", 7])
def test_r3_a_value_that_is_not_text_raises_an_asker_error_saying_what_to_pass(demo_lore: Lore, value: object) -> None:
    """R3: ``lore.run_sql(None)`` and ``lore.run_sql(b"...")`` raised TypeError; every entry point now raises an
    AskerError that says to pass a str (and to decode bytes)."""
    calls: dict[str, Callable[[], object]] = {
        "Lore.run_sql": lambda: demo_lore.run_sql(value),  # type: ignore[arg-type]
        "Lore.ask": lambda: demo_lore.ask(value),  # type: ignore[arg-type]
        "Chat.ask": lambda: demo_lore.chat().ask(value),  # type: ignore[arg-type]
        "semantic.sql": lambda: demo_lore.semantic.sql(metrics=value),  # type: ignore[arg-type]
        "semantic.data": lambda: demo_lore.semantic.data(["total_streaming_hours"], dimensions=[value]),  # type: ignore[list-item]
        "semantic.compile": lambda: demo_lore.semantic.compile(["total_streaming_hours"], filters=value),  # type: ignore[arg-type]
    }
    for name, call in calls.items():
        with pytest.raises(AskerError) as caught:
            call()
        text = str(caught.value)
        assert "str" in text and type(value).__name__.replace("NoneType", "None") in text, (name, text)
        if isinstance(value, bytes):
            assert "decode" in text, name


def test_r3_an_empty_or_punctuation_only_question_gets_a_clarifying_answer_without_a_model(demo_lore: Lore) -> None:
    """R3: an empty question, or only spaces, control characters or punctuation, gets a clarifying Answer that
    offers metrics, and no model is asked (this held, but for a lone surrogate, which raised UnicodeEncodeError)."""
    settings = demo_lore.settings.model_copy(update={"model": "scripted"})
    model = ScriptedChatModel(replies=[])  # any call fails the test
    with Lore(demo_lore.project, settings) as with_model:
        with_model.parts.__dict__["model"] = ModelHandle(chat=StructuredChat(model, name="scripted"), spec="scripted")
        for question in ("", "   ", "?!…", "\n\t\x00", "\u200b", "\udc80"):
            answer = with_model.ask(question)
            assert answer.status == "clarify" and answer.suggestions, repr(question)
    assert model.calls == []


# --- R5: a corrupt feedback store is named as corrupt, with the fix ----------------------------------------------

@pytest.fixture
def corrupt_project(demo_dir: Path, tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    folder = tmp_path / "project"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns("feedback.sqlite*", "answers.sqlite*"))
    garbage = bytes(range(256)) * 16
    (folder / ".lore" / "feedback.sqlite").write_bytes(garbage)
    yield folder, garbage


def test_r5_a_corrupt_feedback_store_is_named_corrupt_and_answers_still_come(
        corrupt_project: tuple[Path, bytes], caplog: pytest.LogCaptureFixture) -> None:
    """R5: a feedback.sqlite of garbage bytes gave a hint about writable folders and network shares; now a vote
    raises an OperatorError that says the store is corrupt and to move the file aside, while questions are
    still answered (recording fails, is logged, and the pipeline goes on) and the file is left as it was."""
    folder, garbage = corrupt_project
    store = folder / ".lore" / "feedback.sqlite"
    with Lore.open(folder) as lore, caplog.at_level(logging.WARNING, logger="lore.feedback"):
        answer = lore.ask("streaming hours by region in 2025")
        assert answer.status == "answered" and answer.rows
        assert any(r.name == "lore.feedback" for r in caplog.records)
        with pytest.raises(OperatorError) as caught:
            lore.feedback(answer.id, 1, user="ana")
        err = caught.value
        assert "corrupt" in err.message and "feedback.sqlite" in err.message
        assert err.hint is not None and "aside" in err.hint and "network share" not in err.hint
        assert isinstance(err, LoreError)
        assert lore.ask("streaming hours by country in 2025").status == "answered"
    assert store.read_bytes() == garbage
