"""Block Kit building: escaping, the compact table, the context line, the buttons (pure functions)."""

from __future__ import annotations

import doctest
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lore.types import Answer, ColumnMeta, Grounding, QueryPlan
from ui.slack import app as slack_app
from ui.slack import blocks as kit

REGION = ColumnMeta(name="region", label="Region", kind="dimension", ref="countries.region")
HOURS = ColumnMeta(name="hours", label="Streaming hours", kind="metric", unit="hours")
HOSTILE = "<!channel> <!here|here> <@U0BOSS> <#C1|general> <https://evil.example/x|click> & `code` ```"


def answered(**extra: object) -> Answer:
    base: dict[str, object] = dict(id="3f2a9c0e1b7d4e2a9f1c3b5d7e9a1c2b", question="q", status="answered",
                                   message="EMEA leads", columns=(REGION, HOURS),
                                   rows=(("EMEA", 4995.2), ("UCAN", 4028.0)), confidence=0.86,
                                   plan=QueryPlan(metrics=("total_streaming_hours",)))
    base.update(extra)
    return Answer(**base)  # type: ignore[arg-type]


def texts(blocks: list[dict]) -> list[str]:
    out: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(blocks)
    return out


@pytest.mark.parametrize("module", [kit, slack_app])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_hostile_text_in_message_data_and_definitions_cannot_ping_or_link() -> None:
    answer = answered(message=f"Top: {HOSTILE}", rows=((HOSTILE, 1.0), ("UCAN", 2.0)))
    blocks = kit.answer_blocks(answer, definitions=[f"Hours = SUM(x) {HOSTILE}"])
    for text in texts(blocks) + [kit.fallback_text(answer)]:
        assert "<" not in text and ">" not in text, text
    assert "&lt;!channel&gt;" in blocks[0]["text"]["text"]
    table = next(b for b in blocks if b.get("block_id") == "lore_table")["text"]["text"]
    assert table.count("```") == 2  # backticks in the data cannot close the code block
    assert "&lt;!here|here&gt;" in table or "&lt;!here|here…" in table


@given(st.text(max_size=400))
def test_escaped_text_never_contains_markup(text: str) -> None:
    out = kit.section(text)["text"]["text"]
    assert "<" not in out and ">" not in out and len(out) <= kit.SECTION_LIMIT
    assert kit.unescape(out) == text or out.endswith("…")


def test_buttons_carry_only_the_answer_id() -> None:
    blocks = kit.answer_blocks(answered())
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1 and actions[0]["block_id"] == kit.VOTE_BLOCK_ID
    for button in actions[0]["elements"]:
        assert button["value"] == "3f2a9c0e1b7d4e2a9f1c3b5d7e9a1c2b"
        assert set(button) == {"type", "action_id", "value", "text"}
    assert "q" not in json.dumps(actions)  # not the question, nor anything else about the answer


def test_table_is_aligned_capped_and_fits_slack() -> None:
    rows = tuple((f"Country {i:03d}", float(i * 1000.5)) for i in range(200))
    block = kit.table_block((REGION, HOURS), rows, max_rows=15)
    text = block["text"]["text"]
    lines = text.strip("`\n").splitlines()
    assert lines[0].startswith("Region") and lines[0].endswith("Streaming hours")
    assert len(lines) == 1 + 15 + 1 and lines[-1] == "… 185 more rows"
    assert len({len(line) for line in lines[:-1]}) == 1  # numbers right-aligned: equal widths

    wide = tuple(("x" * 500, 1.0) for _ in range(200))
    assert len(kit.table_block((REGION, HOURS), wide, max_rows=200)["text"]["text"]) <= kit.SECTION_LIMIT
    assert "…" in kit.table_text((REGION, HOURS), wide[:1])  # long cells are cut


def test_single_value_answer_has_no_table_and_context_has_confidence_and_definitions() -> None:
    answer = answered(columns=(HOURS,), rows=((12.5,),), confidence=0.42)
    blocks = kit.answer_blocks(answer, definitions=["Streaming hours [total_streaming_hours] = SUM(streaming_hours)"])
    assert [b.get("block_id") for b in blocks] == ["lore_answer", "lore_context", "lore_feedback"]
    context = blocks[1]["elements"][0]["text"]
    assert context.startswith("Confidence: *low* (0.42)") and "[total_streaming_hours]" in context


def test_follow_up_is_said_in_the_context_line() -> None:
    plan = QueryPlan(metrics=("m",), groundings=(Grounding(kind="context", ref="x", phrase="previous question",
                                                           source="previous turn"),))
    assert "Follow-up" in kit.context_line(answered(plan=plan))["elements"][0]["text"]


def test_clarify_has_suggestions_and_no_buttons() -> None:
    answer = Answer(id="a", question="q", status="clarify", message="Which metric did you mean?",
                    suggestions=("total_streaming_hours", "<!channel>"))
    blocks = kit.answer_blocks(answer)
    assert [b.get("block_id") for b in blocks] == ["lore_answer", "lore_suggestions", "lore_context"]
    assert "&lt;!channel&gt;" in blocks[1]["text"]["text"]


def test_message_args_turn_unfurling_off() -> None:
    args = kit.message_args("C1", "1.2", [], "t")
    assert args["unfurl_links"] is False and args["unfurl_media"] is False and args["thread_ts"] == "1.2"
    assert "thread_ts" not in kit.message_args("C1", None, [], "t")


def test_voted_blocks_keep_the_answer_and_replace_the_status() -> None:
    original = kit.answer_blocks(answered())
    once = kit.voted_blocks(original, 1)
    twice = kit.voted_blocks(once, -1)
    assert [b.get("block_id") for b in twice] == [b.get("block_id") for b in original] + [kit.VOTE_STATUS_BLOCK_ID]
    assert twice[-1]["elements"][0]["text"].startswith(":-1:")
    assert twice[0] == original[0]


@pytest.mark.parametrize("raw,expected", [
    ("<@UBOT> hours by region", "hours by region"),
    ("hours <@UBOT> by region", "hours by region"),
    ("<@UBOT|lore> revenue &amp; margin &gt; 5%", "revenue & margin > 5%"),
    ("<!channel> hours", "@channel hours"),
    ("<!subteam^S1|@analysts> hours", "@analysts hours"),
    ("see <https://x.example/a?b=1&amp;c=2>", "see https://x.example/a?b=1&c=2"),
])
def test_question_text(raw: str, expected: str) -> None:
    assert kit.question_text(raw, "UBOT") == expected


def test_answer_chart_only_for_drawable_kinds() -> None:
    assert kit.answer_chart(answered(chart={"mark": "bar"}, chart_kind="bar", chart_title="T")) is not None
    assert kit.answer_chart(answered(chart={"mark": "text"}, chart_kind="kpi")) is None
    assert kit.answer_chart(answered(chart=None, chart_kind="table")) is None
    assert kit.answer_chart(answered(chart={"mark": "bar"}, chart_kind="bar", status="error")) is None


def test_delivery_keys_and_vote_keys_identify_one_delivery() -> None:
    click = {"type": "block_actions", "user": {"id": "U1"}, "container": {"message_ts": "1.1"},
             "actions": [{"action_ts": "2.2"}]}
    assert slack_app.delivery_key(click) == slack_app.delivery_key(json.loads(json.dumps(click)))
    other = {**click, "actions": [{"action_ts": "2.3"}]}
    assert slack_app.delivery_key(other) != slack_app.delivery_key(click)
    assert re.fullmatch(r"slack:T1:C1:1\.1:2\.2:U1", kit.vote_key("T1", "C1", "1.1", "2.2", "U1"))


def test_seen_is_bounded() -> None:
    seen = slack_app.Seen(maxsize=3)
    assert all(seen.first(k) for k in "abcd")
    assert seen.first("a")  # forgotten: the oldest went first
    assert not seen.first("d")


def test_conversations_are_an_lru_per_thread() -> None:
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    conversations = slack_app.Conversations(maxsize=2)
    a = conversations.get(("C1", "1.0"), make)  # type: ignore[arg-type]
    assert conversations.get(("C1", "1.0"), make) is a and len(made) == 1  # same thread, same chat
    conversations.get(("C1", "2.0"), make)  # type: ignore[arg-type]
    conversations.get(("C1", "1.0"), make)  # type: ignore[arg-type]  # touch: now the most recent
    conversations.get(("C2", "1.0"), make)  # type: ignore[arg-type]  # evicts ("C1", "2.0")
    assert len(conversations) == 2 and len(made) == 3
    assert conversations.get(("C1", "1.0"), make) is a
    conversations.get(("C1", "2.0"), make)  # type: ignore[arg-type]
    assert len(made) == 4  # forgotten, so a new conversation
