"""Feedback buttons: a click writes one vote through lore.feedback and updates the message, retries included."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from slack_standin import TEAM

QUESTION = "streaming hours by region in 2026"


@pytest.fixture
def store(slack_lore: Any) -> Any:
    assert slack_lore.feedback_backend is not None, "the feedback package ships with LORE: votes must be recordable"
    from feedback.store import open_store

    return open_store(slack_lore)


def ask_and_get_message(h: Any, ts: str, event_id: str) -> tuple[dict[str, Any], str]:
    """Mention the bot; return the answer message as Slack would send it back in a click, and the answer id."""
    from slack_standin import mention

    h.event(mention(QUESTION, ts), event_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for call in h.slack.of("chat.postMessage"):
            blocks = call.params["blocks"]
            blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
            if any(b.get("block_id") == "lore_feedback" for b in blocks):
                answer_id = next(b for b in blocks if b.get("block_id") == "lore_feedback")["elements"][0]["value"]
                message = {"type": "message", "ts": call.reply["ts"], "text": call.params["text"], "blocks": blocks,
                           "bot_id": "BBOT", "thread_ts": ts}
                return message, answer_id
        h.slack.wait_for("chat.postMessage", len(h.slack.of("chat.postMessage")) + 1, timeout=max(0.1, deadline - time.monotonic()))
    raise AssertionError("no answer with feedback buttons")


def test_thumbs_up_records_one_vote_and_updates_the_message(harness: Any, store: Any) -> None:
    message, answer_id = ask_and_get_message(harness, "1712000100.000100", "EvVOTE1")
    before = store.stats().votes
    reply = harness.click("lore_vote_up", answer_id, message=message, channel="C0DATA", action_ts="1712000101.000001")
    assert reply.status == 200 and reply.elapsed < 3
    update = harness.slack.wait_for("chat.update")[0].params
    assert update["channel"] == "C0DATA" and update["ts"] == message["ts"]
    blocks = json.loads(update["blocks"]) if isinstance(update["blocks"], str) else update["blocks"]
    ids = [b.get("block_id") for b in blocks]
    assert ids[-2:] == ["lore_feedback", "lore_vote_status"]  # the buttons stay for other voters
    assert ":+1: Feedback recorded" in blocks[-1]["elements"][0]["text"]
    assert update["text"] == message["text"]

    assert store.stats().votes == before + 1
    key = f"slack:{TEAM}:C0DATA:{message['ts']}:1712000101.000001:U0VOTER"
    assert key in store.event_keys()
    recorded = store.answer(answer_id)
    assert recorded.id == answer_id
    # the voter is who the signed payload says clicked, not whoever asked
    import sqlite3

    from feedback.store import store_path

    with sqlite3.connect(store_path(harness.bot.lore)) as conn:
        actor = conn.execute("SELECT actor FROM events WHERE idempotency_key = ?", (key,)).fetchone()[0]
    assert actor == f"slack:{TEAM}:U0VOTER"


def test_redelivered_click_is_one_vote_and_one_update_even_after_a_restart(harness: Any, store: Any) -> None:
    from ui.slack.app import Seen

    message, answer_id = ask_and_get_message(harness, "1712000200.000100", "EvVOTE2")
    before = store.stats().votes
    click = dict(message=message, channel="C0DATA", action_ts="1712000201.000001")
    assert harness.click("lore_vote_down", answer_id, **click).status == 200
    harness.slack.wait_for("chat.update")
    again = harness.click("lore_vote_down", answer_id, headers={"X-Slack-Retry-Num": "1"}, **click)
    assert again.status == 200
    harness.settle()
    assert len(harness.slack.of("chat.update")) == 1
    assert store.stats().votes == before + 1

    harness.bot.deliveries = Seen()  # the bot restarted: it remembers nothing, the store does
    assert harness.click("lore_vote_down", answer_id, **click).status == 200
    harness.slack.wait_for("chat.update", 2)
    assert store.stats().votes == before + 1

    # a second person's vote is a new vote
    harness.click("lore_vote_up", answer_id, user="U0OTHER", message=message, channel="C0DATA",
                  action_ts="1712000202.000001")
    harness.slack.wait_for("chat.update", 3)
    assert store.stats().votes == before + 2


def test_click_on_an_unknown_answer_tells_the_voter_and_changes_nothing(harness: Any, store: Any) -> None:
    message, _ = ask_and_get_message(harness, "1712000300.000100", "EvVOTE3")
    before = store.stats().votes
    harness.click("lore_vote_up", "0" * 32, message=message, channel="C0DATA", action_ts="1712000301.000001")
    said = harness.slack.wait_for("chat.postEphemeral")[0].params
    assert said["user"] == "U0VOTER" and "No recorded answer" in said["text"]
    harness.click("lore_vote_up", "not an id; <!channel>", message=message, channel="C0DATA",
                  action_ts="1712000302.000001")
    harness.settle()
    assert harness.slack.of("chat.update") == []
    assert store.stats().votes == before
