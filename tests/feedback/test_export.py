"""Fine-tuning exports: only verified pairs, deduplicated, split, with provenance, every line valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from feedback import review
from feedback.export import ChatRow, PreferenceRow, export, validate_file
from feedback.store import FeedbackStore, open_store
from lore import Lore
from lore.types import QueryPlan


def _check_chat_line(line: str) -> dict[str, Any]:
    """The OpenAI chat fine-tuning shape, checked by hand (independently of the pydantic model)."""
    row = json.loads(line)
    assert set(row) == {"messages"}
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["system", "user", "assistant"]
    assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) and m["content"] for m in row["messages"])
    return row


def _check_preference_line(line: str) -> dict[str, Any]:
    row = json.loads(line)
    assert set(row) == {"input", "preferred_output", "non_preferred_output"}
    assert set(row["input"]) == {"messages", "tools", "parallel_tool_calls"}
    assert [m["role"] for m in row["input"]["messages"]] == ["system", "user"]
    for side in ("preferred_output", "non_preferred_output"):
        assert len(row[side]) == 1 and row[side][0]["role"] == "assistant" and row[side][0]["content"]
    assert row["preferred_output"] != row["non_preferred_output"]
    return row


def _lines(path: str | Path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


@pytest.fixture
def taught(project: Lore) -> FeedbackStore:
    """Three verified examples, one pending, one rejected and one verified correction of two identical answers."""
    store = open_store(project)
    for question in ("streaming hours by region in 2026", "game installs by platform in 2026", "cloud cost by team in 2026"):
        answer = project.ask(question, user="ana")
        review.approve(store, project.feedback(answer.id, +1, user="ana").nomination_id or "", reviewer="ben")
    pending = project.ask("streaming hours by device type in 2026", user="ana")
    project.feedback(pending.id, +1, user="ana")
    rejected = project.ask("new signups by plan in 2026", user="ana")
    review.reject(store, project.feedback(rejected.id, +1, user="ana").nomination_id or "", reviewer="ben")
    fixed = QueryPlan(metrics=("active_streaming_accounts",), dimensions=("countries.region",))
    for user in ("cy", "dee"):  # two people got the same wrong answer and sent the same correction
        wrong = project.ask("streaming audience by region", user=user)
        vote = project.feedback(wrong.id, -1, user=user, correction=fixed)
    review.approve(store, vote.nomination_id or "", reviewer="ben")
    return store


def test_openai_chat_rows_come_from_verified_pairs_only(taught: FeedbackStore, tmp_path: Path) -> None:
    report = export(taught, "openai-chat", tmp_path / "ft.jsonl")
    lines = _lines(report.files["all"])
    assert report.rows == {"all": 4} and len(lines) == 4 and validate_file(report.files["all"], "openai-chat") == 4
    rows = [_check_chat_line(line) for line in lines]
    questions = sorted(r["messages"][1]["content"].splitlines()[0] for r in rows)
    assert questions == ["Question: cloud cost by team in 2026", "Question: game installs by platform in 2026",
                         "Question: streaming audience by region", "Question: streaming hours by region in 2026"]
    region = next(r for r in rows if "streaming hours by region in 2026" in r["messages"][1]["content"])
    assert "Today: 2026-11-01" in region["messages"][1]["content"]
    assert "metric total_streaming_hours" in region["messages"][1]["content"]  # the grounded context
    assert json.loads(region["messages"][2]["content"]) == {
        "metrics": ["total_streaming_hours"], "dimensions": ["countries.region"],
        "time": {"start": "2026-01-01", "end": "2026-12-31", "label": "2026"}}
    provenance = [json.loads(line) for line in _lines(report.provenance)]
    assert [(p["file"], p["line"]) for p in provenance] == [("ft.jsonl", n) for n in (1, 2, 3, 4)]
    assert all(p["verified_by"] == "ben" and p["pair_id"].startswith("p-") for p in provenance)
    assert {p["source"] for p in provenance} == {"answer", "correction"}


def test_sql_targets_are_the_verified_sql(taught: FeedbackStore, tmp_path: Path) -> None:
    report = export(taught, "openai-chat", tmp_path / "sql.jsonl", target="sql")
    for line in _lines(report.files["all"]):
        assert _check_chat_line(line)["messages"][2]["content"].startswith("WITH ")


def test_preference_pairs_prefer_the_correction_and_are_deduplicated(taught: FeedbackStore, tmp_path: Path) -> None:
    report = export(taught, "preference", tmp_path / "prefs.jsonl")
    lines = _lines(report.files["all"])
    assert len(lines) == 1 and report.duplicates == 1  # two identical corrections: one row
    row = _check_preference_line(lines[0])
    assert validate_file(report.files["all"], "preference") == 1
    assert json.loads(row["preferred_output"][0]["content"])["metrics"] == ["active_streaming_accounts"]
    assert "streaming audience by region" in row["input"]["messages"][1]["content"]
    provenance = json.loads(_lines(report.provenance)[0])
    assert provenance["rejected_answer_id"] and provenance["up_users"] == ["cy", "dee"]


def test_split_writes_train_and_validation_the_same_way_each_time(taught: FeedbackStore, tmp_path: Path) -> None:
    first = export(taught, "openai-chat", tmp_path / "a" / "ft.jsonl", split=0.5)
    again = export(taught, "openai-chat", tmp_path / "b" / "ft.jsonl", split=0.5)
    assert set(first.files) == {"train", "validation"}
    assert first.rows["train"] >= 1 and first.rows["validation"] >= 1 and sum(first.rows.values()) == 4
    for name in ("train", "validation"):
        assert _lines(first.files[name]) == _lines(again.files[name])
        assert validate_file(first.files[name], "openai-chat") == first.rows[name]
    whole = export(taught, "openai-chat", tmp_path / "whole.jsonl")
    assert sorted(_lines(first.files["train"]) + _lines(first.files["validation"])) == sorted(_lines(whole.files["all"]))
    files = {json.loads(line)["file"] for line in _lines(first.provenance)}
    assert files == {"ft.train.jsonl", "ft.validation.jsonl"}


def test_a_revoked_example_leaves_the_next_export(taught: FeedbackStore, tmp_path: Path) -> None:
    pair = taught.nominations("verified")[0]
    review.revoke(taught, pair.id, reviewer="ben", reason="wrong")
    report = export(taught, "openai-chat", tmp_path / "ft.jsonl")
    assert report.rows["all"] == 3
    assert all(pair.question not in line for line in _lines(report.files["all"]))


def test_the_format_models_refuse_rows_that_do_not_fit() -> None:
    good = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                         {"role": "assistant", "content": "a"}]}
    ChatRow.model_validate(good)
    for bad in ({"messages": good["messages"][:2]},  # no assistant target
                {"messages": good["messages"], "metadata": {}},  # unknown key
                {"messages": [{"role": "tool", "content": "x"}, *good["messages"][1:]]},
                {"messages": [good["messages"][0], {"role": "user", "content": ""}, good["messages"][2]]}):
        with pytest.raises(ValidationError):
            ChatRow.model_validate(bad)
    same = {"input": {"messages": [{"role": "user", "content": "q"}]},
            "preferred_output": [{"role": "assistant", "content": "a"}],
            "non_preferred_output": [{"role": "assistant", "content": "a"}]}
    with pytest.raises(ValidationError, match="same"):
        PreferenceRow.model_validate(same)
    with pytest.raises(ValidationError):
        PreferenceRow.model_validate(same | {"non_preferred_output": [{"role": "assistant", "content": "b"}] * 2})


def test_an_empty_store_exports_empty_files(tmp_path: Path) -> None:
    report = export(FeedbackStore(tmp_path / "f.sqlite"), "preference", tmp_path / "p.jsonl", split=0.9)
    assert report.rows == {"train": 0, "validation": 0}
    assert Path(report.files["train"]).read_text() == "" and Path(report.provenance).read_text() == ""
