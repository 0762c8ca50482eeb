"""Loading golden files: the schema, multi-turn cases, and every problem listed at once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from evals.harness import load_golden, parse_golden
from lore.errors import ConfigError, OperatorError

FIXTURE = Path(__file__).with_name("fixture_golden.yaml")


def test_the_fixture_loads() -> None:
    golden = load_golden(FIXTURE)
    assert golden.today == date(2026, 11, 1)
    ids = [c.id for c in golden.cases]
    assert len(ids) == len(set(ids)) >= 8
    multi = next(c for c in golden.cases if c.multi_turn)
    assert len(multi.turns) == 2 and all(t.gold_sql for t in multi.turns)
    assert {c.turns[0].expect for c in golden.cases} == {"answered", "refused", "clarify"}
    ranked = next(c for c in golden.cases if c.id == "s-top-titles")
    assert ranked.turns[0].ordered is True


def test_single_turn_keys_become_one_turn_and_defaults_apply() -> None:
    golden = parse_golden({"cases": [{"id": 7, "question": "hours by region", "gold_sql": "SELECT 1"}]})
    case = golden.cases[0]
    assert case.id == "7" and case.domain == "general" and case.category == "uncategorised"
    assert case.turns[0].expect == "answered" and case.turns[0].ordered is False
    assert golden.today is None


def test_every_problem_is_listed_at_once() -> None:
    raw = {
        "version": 2,
        "today": "next tuesday",
        "extra": 1,
        "cases": [
            {"id": "a", "question": "q", "gold-sql": "SELECT 1"},
            {"id": "a", "question": "q2", "expect": "refused"},
            {"id": "b", "question": "q", "expect": "maybe"},
            {"id": "c", "turns": [{"question": "q"}], "question": "also"},
            {"id": "d"},
            {"id": "e", "question": "drop it", "expect": "refused", "gold_sql": "SELECT 1"},
            "not a mapping",
        ],
    }
    with pytest.raises(ConfigError) as info:
        parse_golden(raw, "g.yaml")
    text = str(info.value)
    assert isinstance(info.value, OperatorError)
    for needle in ("unknown top-level key 'extra'", "version must be 1", "today must be a date",
                   "unknown key 'gold-sql'", "duplicate id 'a'", "case 3 (b): turns.0.expect",
                   "a case with turns keeps question inside each turn", "case 5 (d): turns",
                   "case 7: expected a mapping", "case 6 (e): turn 1 expects refused, so it has no gold_sql", "turn 1 expects an answer, so it needs gold_sql"):
        assert needle in text, needle


def test_malformed_yaml_and_missing_file_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - id: a\n    question: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: malformed YAML"):
        load_golden(bad)
    with pytest.raises(ConfigError, match="Cannot read the golden file"):
        load_golden(tmp_path / "missing.yaml")
