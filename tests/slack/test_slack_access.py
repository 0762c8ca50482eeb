"""Per-user access through Slack: the identity is the signed payload's team and user, nothing else; an answer is
computed for everyone who reads it (the channel's members, or the asker alone in a DM)."""

from __future__ import annotations

import json
from typing import Any

from slack_standin import BOT_USER, direct_message, mention

from test_slack_http import block, blocks_of, wait_answers

QUESTION = "streaming hours by region in 2026"


def _regions(answer: Any) -> set[str]:
    table = block(answer, "lore_table")["text"]["text"]
    return {line.split()[0] for line in table.strip("`\n").splitlines()[1:]}


def test_a_channel_thread_is_answered_for_every_member_and_a_dm_for_the_asker(access_harness: Any) -> None:
    h = access_harness
    h.slack.members["C0DATA"] = [BOT_USER, "U0BOSS", "U0EMEA"]
    h.event(mention(QUESTION, "1713000000.000100", user="U0EMEA"), "EvACC1")
    restricted = wait_answers(h, 1)[0]
    words = block(restricted, "lore_answer")["text"]["text"]
    assert "EMEA" in words and not any(region in words for region in ("APAC", "LATAM", "UCAN"))
    if "lore_table" in [b.get("block_id") for b in blocks_of(restricted)]:
        assert _regions(restricted) == {"EMEA"}

    # the same question in the same thread by someone no rule names: the thread is read by the restricted member too
    h.event(mention(QUESTION, "1713000000.000200", user="U0BOSS", thread_ts="1713000000.000100"), "EvACC2")
    in_channel = wait_answers(h, 2)[1]
    assert "lore_table" not in [b.get("block_id") for b in blocks_of(in_channel)] or _regions(in_channel) == {"EMEA"}
    assert not any(region in json.dumps(blocks_of(in_channel)) for region in ("APAC", "LATAM", "UCAN"))

    # in a direct message only the asker reads the answer: every region
    h.event(direct_message(QUESTION, "1713000000.000300", channel="D0BOSS", user="U0BOSS"), "EvACC3")
    everyone = wait_answers(h, 3)[2]
    assert _regions(everyone) == {"APAC", "EMEA", "LATAM", "UCAN"}


def test_a_hidden_metric_is_not_answered_for_the_restricted_user(access_harness: Any) -> None:
    h = access_harness
    h.event(mention("cloud cost by team last month", "1713000001.000100", user="U0EMEA"), "EvACC4")
    posts = h.slack.wait_for("chat.postMessage", timeout=120)
    text = json.dumps([c.params for c in posts])
    assert "lore_table" not in text and "cloud-security" not in text
