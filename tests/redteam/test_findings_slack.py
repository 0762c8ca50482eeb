"""Red-team findings against the Slack bot, replayed through the real Bolt app served on loopback.

Every request goes over HTTP into ``ui.slack.app`` exactly as Slack would send it (signed, or
forged), and every Web API call the bot makes goes to the local stand-in of
``tests/slack/slack_standin.py``, which records it. The checks are on effects: the HTTP status,
what was posted, to whom, and which rows it carried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "slack"))

from slack_standin import (  # noqa: E402 - the helpers live next to the Slack tests
    BOT_USER,
    SECRET,
    TEAM,
    Call,
    Harness,
    block,
    blocks_of,
    direct_message,
    event_body,
    mention,
    post,
    serve,
    slash_body,
)

from lore import Lore  # noqa: E402

QUESTION = "streaming hours by region in 2026"
ALL_REGIONS = {"APAC", "EMEA", "LATAM", "UCAN"}
#: the restricted member: EMEA rows only, no cloud costs
RESTRICTED = "U0EMEA"
#: a member no rule names: sees everything
BROAD = "U0BOSS"


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def access_project(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo project where one Slack identity is limited to EMEA rows and cannot see cloud costs."""
    folder = tmp_path_factory.mktemp("redteam-slack") / "project"
    shutil.copytree(demo_dir, folder)
    config = yaml.safe_load((folder / "lore.yaml").read_text())
    config["access"] = {"users": {"ana@example.com": {"identities": [f"slack:{TEAM}:{RESTRICTED}"],
                                                      "hide_metrics": ["cloud_cost"],
                                                      "rows": ["countries.region = 'EMEA'"]}}}
    (folder / "lore.yaml").write_text(yaml.safe_dump(config))
    return folder


@pytest.fixture(scope="module")
def access_lore(access_project: Path) -> Iterator[Lore]:
    lore = Lore.open(access_project)
    _ = lore.planner, lore.compiler  # the index is built once for the module
    yield lore
    lore.close()


@pytest.fixture
def bot(access_lore: Lore, access_project: Path) -> Iterator[Harness]:
    """The bot in the default mode (channel answers in the narrowest scope of the channel's members)."""
    yield from serve(access_lore, access_project)


@pytest.fixture
def ephemeral_bot(access_lore: Lore, access_project: Path) -> Iterator[Harness]:
    yield from serve(access_lore, access_project, slack_channel_scope="ephemeral")


# --- helpers ----------------------------------------------------------------------------------------------


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def signed_headers(body: bytes, content_type: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def answers(h: Harness, method: str = "chat.postMessage") -> list[Call]:
    return [c for c in h.slack.of(method) if any(b.get("block_id") == "lore_answer" for b in blocks_of(c))]


def wait_answers(h: Harness, count: int = 1, method: str = "chat.postMessage", timeout: float = 90.0) -> list[Call]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = answers(h, method)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} answer(s) through {method}; calls: {[c.method for c in h.slack.calls]}")


def regions(call: Call) -> set[str]:
    """The regions an answer names, in its words and its table."""
    text = json.dumps(blocks_of(call)) + str(call.params.get("text") or "")
    return {region for region in ALL_REGIONS if region in text}


def posted_text(h: Harness) -> str:
    return json.dumps([c.params for c in h.slack.calls if c.method in ("chat.postMessage", "chat.postEphemeral")])


# --- F8: the signature is checked before the body is read; replayed commands run once -----------------------


MALFORMED = {
    "truncated JSON": ('{"type": "event_callback", "event": ', "application/json"),
    "a JSON array": ("[1,2,3]", "application/json"),
    "a payload that is not JSON": ("payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    "an event that is not an object": ('{"type": "event_callback", "event": "x", "event_id": "EvF8X"}', "application/json"),
    "actions that are not objects": ("payload=" + urllib.parse.quote('{"type": "block_actions", "actions": "x"}'),
                                     "application/x-www-form-urlencoded"),
}


@pytest.mark.parametrize("case", [*MALFORMED, "non-numeric timestamp", "not UTF-8"])
def test_f8_unsigned_malformed_bodies_get_401_not_500(bot: Harness, case: str) -> None:
    """F8: malformed bodies without a valid signature are refused with 401 before anything parses them."""
    if case == "non-numeric timestamp":
        body = event_body(mention(QUESTION, "1714000000.000100"), "EvF8TS").encode()
        attempts = [{"Content-Type": "application/json", "X-Slack-Request-Timestamp": "soon",
                     "X-Slack-Signature": "v0=" + "0" * 64}]
    else:
        if case == "not UTF-8":
            body, headers = b"\xff\xfe{\x00", {"Content-Type": "application/json"}
        else:
            text, content_type = MALFORMED[case]
            body, headers = text.encode(), {"Content-Type": content_type}
        # no signature at all, and a signature that does not match
        attempts = [headers, {**headers, "X-Slack-Request-Timestamp": str(int(time.time())),
                              "X-Slack-Signature": "v0=" + "1" * 64}]
    for attempt in attempts:
        status, said = raw_post(bot.url, body, attempt)
        assert status == 401, (status, said)
        assert "Traceback" not in said
    time.sleep(0.2)
    assert [c.method for c in bot.slack.calls] == ["auth.test"]


@pytest.mark.parametrize("case", [*MALFORMED, "not UTF-8"])
def test_f8_signed_malformed_bodies_get_400_not_500(bot: Harness, case: str) -> None:
    """F8: a correctly signed body that is not a Slack payload is a bad request (400), never a 500."""
    if case == "not UTF-8":
        body, content_type = b"\xff\xfe{\x00", "application/json"
    else:
        text, content_type = MALFORMED[case]
        body = text.encode()
    status, said = raw_post(bot.url, body, signed_headers(body, content_type))
    assert status == 400, (status, said)
    assert "Traceback" not in said
    time.sleep(0.2)
    assert [c.method for c in bot.slack.calls] == ["auth.test"]


def test_f8_a_replayed_slash_command_is_answered_once(bot: Harness) -> None:
    """F8: the same signed /lore request sent again within the 5-minute window is acknowledged, not answered again."""
    body = slash_body(QUESTION, user=BROAD, trigger_id="1.2.replayed",
                      response_url=f"http://127.0.0.1:{bot.slack.port}/respond/1")
    timestamp = int(time.time())
    first = post(bot.url, body, content_type="application/x-www-form-urlencoded", timestamp=timestamp)
    replay = post(bot.url, body, content_type="application/x-www-form-urlencoded", timestamp=timestamp)
    assert (first.status, replay.status) == (200, 200)
    wait_answers(bot, 1)
    bot.settle()
    questions = [c for c in bot.slack.of("chat.postMessage")
                 if any(b.get("block_id") == "lore_question" for b in blocks_of(c))]
    assert len(questions) == 1 and len(answers(bot)) == 1

    # a new invocation of the same words (its own trigger id) is a new question
    bot.command(QUESTION, user=BROAD)
    wait_answers(bot, 2)


# --- S1: an answer posted where several people read it is computed for all of them -----------------------------


def test_s1_a_channel_answer_is_computed_in_the_narrowest_members_scope(bot: Harness) -> None:
    """S1: in a shared channel, a broad user's answer carries only what its most restricted member may see."""
    fillers = [f"U0FILL{i:04d}" for i in range(1500)]
    bot.slack.members["C0SHARED"] = [BOT_USER, BROAD, *fillers, RESTRICTED]  # the restricted member is on page 2
    root = "1714000001.000100"
    bot.event(mention(QUESTION, root, channel="C0SHARED", user=BROAD), "EvS1A")
    first = wait_answers(bot, 1)[0]
    assert first.params["channel"] == "C0SHARED" and first.params["thread_ts"] == root
    assert regions(first) == {"EMEA"}, block(first, "lore_answer")
    pages = bot.slack.of("conversations.members")
    assert len(pages) >= 2 and all(p.params["channel"] == "C0SHARED" for p in pages)

    # a follow-up in the thread stays in the channel's scope; the member list is remembered, not fetched again
    bot.event(mention("now only premium accounts", "1714000001.000200", channel="C0SHARED", user=BROAD,
                      thread_ts=root), "EvS1B")
    follow = wait_answers(bot, 2)[1]
    assert follow.params["thread_ts"] == root and regions(follow) <= {"EMEA"}

    # a metric the restricted member may not see is not answered for anyone in the channel
    bot.event(mention("cloud cost by team last month", "1714000001.000300", channel="C0SHARED", user=BROAD), "EvS1C")
    hidden = wait_answers(bot, 3)[2]
    assert "lore_table" not in [b.get("block_id") for b in blocks_of(hidden)]
    assert len(bot.slack.of("conversations.members")) == len(pages)
    bot.settle()
    assert bot.slack.of("chat.postEphemeral") == []


def test_s1_the_same_question_in_a_channel_of_broad_members_sees_every_region(bot: Harness) -> None:
    """S1: the narrowing comes from the members: a channel without restricted members gets every region."""
    bot.slack.members["C0BROAD"] = [BOT_USER, BROAD, "U0ASKER"]
    bot.event(mention(QUESTION, "1714000002.000100", channel="C0BROAD", user=BROAD), "EvS1D")
    assert regions(wait_answers(bot, 1)[0]) == ALL_REGIONS


def test_s1_direct_messages_use_the_askers_own_scope(bot: Harness) -> None:
    """S1: a direct message with LORE is read by the asker alone, so it is answered in the asker's scope."""
    bot.event(direct_message(QUESTION, "1714000003.000100", channel="D0BOSS", user=BROAD), "EvS1E")
    assert regions(wait_answers(bot, 1)[0]) == ALL_REGIONS
    bot.event(direct_message(QUESTION, "1714000003.000200", channel="D0EMEA", user=RESTRICTED), "EvS1F")
    assert regions(wait_answers(bot, 2)[1]) == {"EMEA"}
    assert bot.slack.of("conversations.members") == []  # a DM needs no member lookup


def test_s1_ephemeral_mode_shows_each_asker_their_own_answer_only(ephemeral_bot: Harness) -> None:
    """S1: with LORE_SLACK_CHANNEL_SCOPE=ephemeral, a channel answer goes to the asker alone, in the asker's scope."""
    h = ephemeral_bot
    root = "1714000004.000100"
    h.event(mention(QUESTION, root, user=BROAD), "EvS1G")
    broad = wait_answers(h, 1, method="chat.postEphemeral")[0]
    assert broad.params["user"] == BROAD and broad.params["channel"] == "C0DATA" and broad.params["thread_ts"] == root
    assert regions(broad) == ALL_REGIONS
    h.event(mention(QUESTION, "1714000004.000200", user=RESTRICTED, thread_ts=root), "EvS1H")
    narrow = wait_answers(h, 2, method="chat.postEphemeral")[1]
    assert narrow.params["user"] == RESTRICTED and regions(narrow) == {"EMEA"}
    h.settle()
    assert answers(h) == []  # nothing was posted for the whole channel
    assert h.slack.of("files.getUploadURLExternal") == []  # a chart upload would be seen by everyone


def test_s1_a_failed_member_lookup_never_falls_back_to_the_askers_scope_in_public(bot: Harness) -> None:
    """S1: when the channel's members cannot be listed, the answer is shown to the asker alone, never posted."""
    bot.slack.members_errors["C0DATA"] = "missing_scope"
    bot.event(mention(QUESTION, "1714000005.000100", user=BROAD), "EvS1I")
    private = wait_answers(bot, 1, method="chat.postEphemeral")[0]
    assert private.params["user"] == BROAD and private.params["channel"] == "C0DATA"
    assert "Only you can see" in json.dumps(blocks_of(private))
    bot.settle()
    assert answers(bot) == []
    public = json.dumps([c.params for c in bot.slack.of("chat.postMessage")])
    assert not any(region in public for region in ALL_REGIONS)
