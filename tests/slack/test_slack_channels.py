"""Who reads an answer: channel members through conversations.members (paged, cached, bounded), ephemeral answers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_standin import BOT_USER, Harness, SlackStandIn, block, blocks_of, mention, serve

from lore import Lore
from lore.errors import OperatorError

QUESTION = "streaming hours by region in 2026"


@pytest.fixture
def standin() -> Iterator[tuple[SlackStandIn, Any]]:
    from slack_sdk import WebClient

    slack = SlackStandIn().start()
    try:
        yield slack, WebClient(token="xoxb-test", base_url=slack.base_url, timeout=10)
    finally:
        slack.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_members_are_read_through_every_page(standin: tuple[SlackStandIn, Any]) -> None:
    from ui.slack.app import MEMBERS_PAGE_SIZE, fetch_members

    slack, client = standin
    everyone = [f"U{i:06d}" for i in range(2 * MEMBERS_PAGE_SIZE + 5)]
    slack.members["CBIG"] = everyone
    assert fetch_members(client, "CBIG") == frozenset(everyone)
    pages = slack.of("conversations.members")
    assert len(pages) == 3 and [p.params.get("cursor") for p in pages] == [None, str(MEMBERS_PAGE_SIZE),
                                                                         str(2 * MEMBERS_PAGE_SIZE)]


def test_a_member_lookup_slack_refuses_is_an_operator_error_naming_the_scopes(standin: tuple[SlackStandIn, Any]) -> None:
    from ui.slack.app import fetch_members

    slack, client = standin
    slack.members_errors["CPRIV"] = "missing_scope"
    with pytest.raises(OperatorError, match="missing_scope") as caught:
        fetch_members(client, "CPRIV")
    assert "groups:read" in (caught.value.hint or "") and "LORE_SLACK_CHANNEL_SCOPE" in (caught.value.hint or "")


def test_members_are_cached_for_a_few_minutes_and_failures_are_not(standin: tuple[SlackStandIn, Any]) -> None:
    from ui.slack.app import ChannelMembers

    slack, client = standin
    clock = Clock()
    cache = ChannelMembers(ttl=300, maxsize=2, clock=clock)
    slack.members["C1"] = [BOT_USER, "U1"]
    assert cache.get(client, "C1") == {BOT_USER, "U1"}
    slack.members["C1"] = [BOT_USER, "U1", "U2"]  # someone joins
    clock.now += 299
    assert cache.get(client, "C1") == {BOT_USER, "U1"}  # still the cached list
    clock.now += 2
    assert cache.get(client, "C1") == {BOT_USER, "U1", "U2"}  # expired: asked again
    assert len(slack.of("conversations.members")) == 2

    slack.members_errors["C2"] = "ratelimited"
    for _ in range(2):
        with pytest.raises(OperatorError):
            cache.get(client, "C2")
    assert len(slack.of("conversations.members")) == 4  # a failure is asked again, never remembered as "nobody"

    # bounded: the least recently used channel is forgotten first
    slack.members.update({"C3": ["U3"], "C4": ["U4"]})
    cache.get(client, "C3")
    cache.get(client, "C4")
    calls = len(slack.of("conversations.members"))
    cache.get(client, "C1")
    assert len(slack.of("conversations.members")) == calls + 1


@pytest.fixture
def ephemeral(slack_lore: Lore, slack_project: Path) -> Iterator[Harness]:
    yield from serve(slack_lore, slack_project, slack_channel_scope="ephemeral")


def test_ephemeral_slash_command_posts_the_question_and_shows_the_answer_to_the_asker(ephemeral: Harness) -> None:
    h = ephemeral
    assert h.command(QUESTION).status == 200
    question = h.slack.wait_for("chat.postMessage")[0]
    assert block(question, "lore_question")
    answer = h.slack.wait_for("chat.postEphemeral", timeout=60)[0]
    assert answer.params["user"] == "U0ASKER" and answer.params["thread_ts"] == question.reply["ts"]
    assert block(answer, "lore_answer") and block(answer, "lore_feedback")
    h.settle()
    assert len(h.slack.of("chat.postMessage")) == 1  # only the question, which the asker typed
    assert h.slack.of("files.getUploadURLExternal") == [] and h.slack.of("conversations.members") == []


def test_a_vote_on_an_ephemeral_answer_is_recorded_and_confirmed_to_the_voter(ephemeral: Harness, slack_lore: Lore) -> None:
    assert slack_lore.feedback_backend is not None, "the feedback package ships with LORE: votes must be recordable"
    h = ephemeral
    h.event(mention(QUESTION, "1715000000.000100"), "EvEPH1")
    answer = h.slack.wait_for("chat.postEphemeral", timeout=60)[0]
    answer_id = block(answer, "lore_feedback")["elements"][0]["value"]
    reply = h.click("lore_vote_up", answer_id, message={"ts": answer.reply["message_ts"]}, channel="C0DATA",
                    action_ts="1715000001.000001", user="U0ASKER", ephemeral=True)
    assert reply.status == 200
    deadline = time.monotonic() + 30
    confirmed: list[Any] = []
    while time.monotonic() < deadline and not confirmed:
        confirmed = [c.params for c in h.slack.of("chat.postEphemeral") if "Feedback recorded" in str(c.params.get("text"))]
        time.sleep(0.1)
    assert confirmed and confirmed[0]["user"] == "U0ASKER"
    h.settle()
    assert h.slack.of("chat.update") == []  # Slack cannot update a message only one person sees


def test_a_dm_mention_without_a_channel_type_is_answered_for_the_dm_members(access_harness: Harness) -> None:
    """A mention in a direct message carries no channel type: its members (the asker and LORE) decide the scope."""
    h = access_harness
    h.slack.members["D0EMEA"] = [BOT_USER, "U0EMEA"]
    h.event(mention(QUESTION, "1715000002.000100", channel="D0EMEA", user="U0EMEA"), "EvDMM")
    answer = h.slack.wait_for("chat.postMessage", timeout=60)[0]
    shown = json.dumps(blocks_of(answer))
    assert "EMEA" in shown and not any(region in shown for region in ("APAC", "LATAM", "UCAN"))
    assert [c.params["channel"] for c in h.slack.of("conversations.members")] == ["D0EMEA"]


def test_without_an_access_section_no_member_lookup_is_needed(harness: Harness) -> None:
    """Everyone sees the whole project: channel answers need no conversations.members (nor its scopes)."""
    harness.slack.members_errors["C0DATA"] = "missing_scope"
    harness.event(mention(QUESTION, "1715000003.000100"), "EvNOACC")
    answer = harness.slack.wait_for("chat.postMessage", timeout=60)[0]
    assert block(answer, "lore_answer") and harness.slack.of("conversations.members") == []
