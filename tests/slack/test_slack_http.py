"""The real Bolt app over HTTP on loopback: signed requests in, Web API calls out to a stand-in."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
from slack_standin import BOT_USER, SECRET, Call, block, blocks_of, direct_message, event_body, mention, post

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUESTION = "streaming hours by region in 2026"


def all_text(value: Any) -> list[str]:
    """Every string a message carries (text fields of blocks, the fallback text)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in all_text(v)]
    if isinstance(value, list):
        return [t for v in value for t in all_text(v)]
    return []


def assert_no_slack_markup(call: Call, *, allowed: tuple[str, ...] = ()) -> None:
    """No ``<...>`` control sequence in anything posted, except ones the bot built itself (``allowed``)."""
    for text in all_text(blocks_of(call)) + [call.params.get("text") or ""]:
        for seq in re.findall(r"<[^>]*>?", text):
            assert seq in allowed, f"unescaped Slack markup {seq!r} in {text!r}"


def answer_posts(h: Any) -> list[Call]:
    return [c for c in h.slack.of("chat.postMessage") if any(b.get("block_id") == "lore_answer" for b in blocks_of(c))]


def wait_answers(h: Any, count: int = 1, timeout: float = 60.0) -> list[Call]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = answer_posts(h)
        if len(found) >= count:
            return found
        h.slack.wait_for("chat.postMessage", len(h.slack.of("chat.postMessage")) + 1, timeout=deadline - time.monotonic())
    raise AssertionError(f"expected {count} answers")


# --- request verification ---------------------------------------------------------------------------


def test_signed_mention_is_answered_in_its_thread_with_table_context_and_buttons(harness: Any, raw_db: Any) -> None:
    reply = harness.event(mention(QUESTION, "1712000000.000100"), "EvGOOD1")
    assert reply.status == 200
    answer = wait_answers(harness)[0]
    p = answer.params
    assert p["channel"] == "C0DATA" and p["thread_ts"] == "1712000000.000100"
    assert p["unfurl_links"] is False and p["unfurl_media"] is False
    assert answer.headers.get("Authorization") == "Bearer xoxb-test"

    # the words, the table with the numbers the warehouse gives by hand-written SQL, the context line
    words = block(answer, "lore_answer")["text"]["text"]
    assert "EMEA" in words and "Streaming hours" in words
    table = block(answer, "lore_table")["text"]["text"]
    assert table.startswith("```\n") and table.endswith("\n```")
    lines = table.strip("`\n").splitlines()
    assert lines[0].split() == ["Region", "Streaming", "hours"]
    expected = raw_db.execute("""
        SELECT c.region, SUM(s.streaming_hours) AS hours
        FROM streaming_sessions s JOIN accounts a ON a.account_id = s.account_id
        JOIN countries c ON c.country_iso_code = a.country_iso_code
        WHERE s.session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31'
        GROUP BY 1 ORDER BY 2 DESC""").fetchall()
    shown = {line[: line.rindex(" ")].strip(): line.split()[-1] for line in lines[1:]}
    assert shown == {region: f"{hours:,.0f}" for region, hours in expected}
    assert len({len(line) for line in lines[1:]}) == 1  # right-aligned numbers: equal line lengths

    context = block(answer, "lore_context")["elements"][0]["text"]
    assert re.match(r"Confidence: \*(high|medium|low)\* \(\d\.\d\d\)", context)
    assert "Definitions:" in context and "[total_streaming_hours]" in context and "SUM(streaming_hours)" in context

    buttons = block(answer, "lore_feedback")["elements"]
    assert [b["action_id"] for b in buttons] == ["lore_vote_up", "lore_vote_down"]
    answer_id = buttons[0]["value"]
    assert re.fullmatch(r"[0-9a-f]{32}", answer_id) and buttons[1]["value"] == answer_id
    assert all(set(b) == {"type", "action_id", "value", "text"} for b in buttons)  # nothing but the id travels

    # working indicator on the question, removed when done
    added = harness.slack.wait_for("reactions.add")[0].params
    assert (added["channel"], added["timestamp"], added["name"]) == ("C0DATA", "1712000000.000100", "hourglass_flowing_sand")
    harness.slack.wait_for("reactions.remove")
    assert_no_slack_markup(answer)


def test_chart_png_is_uploaded_into_the_thread(harness: Any) -> None:
    harness.event(mention(QUESTION, "1712000000.000200"), "EvCHART")
    done = harness.slack.wait_for("files.completeUploadExternal")[0]
    step1 = harness.slack.of("files.getUploadURLExternal")[0]
    upload = harness.slack.of("upload")[0]
    assert upload.raw.startswith(PNG_SIGNATURE) and len(upload.raw) > 1000
    assert step1.params["filename"] == "lore-chart.png" and int(step1.params["length"]) == len(upload.raw)
    assert upload.params["file_id"] == json.loads(done.params["files"])[0]["id"]
    assert done.params["channel_id"] == "C0DATA" and done.params["thread_ts"] == "1712000000.000200"
    assert "initial_comment" not in done.params or not done.params["initial_comment"]
    # the chart comes after the answer, in the same thread
    answer = answer_posts(harness)[0]
    assert answer.at <= step1.at


@pytest.mark.parametrize("case", ["wrong secret", "stale timestamp", "future timestamp", "tampered body",
                                  "no signature", "no timestamp", "no headers"])
def test_forged_requests_get_401_and_run_nothing(harness: Any, case: str) -> None:
    event_id = "EvFORGED"
    body = event_body(mention(QUESTION, "1712000000.000300"), event_id)
    now = int(time.time())
    kwargs: dict[str, Any] = {}
    if case == "wrong secret":
        kwargs["secret"] = "not-the-secret"
    elif case == "stale timestamp":
        kwargs["timestamp"] = now - 6 * 60
    elif case == "future timestamp":
        kwargs["timestamp"] = now + 6 * 60
    elif case == "tampered body":
        kwargs["signed_body"] = body
        body = body.replace(QUESTION, "subscriber count by plan")
    elif case == "no signature":
        kwargs = {"secret": None, "headers": {"X-Slack-Request-Timestamp": str(now)}}
    elif case == "no timestamp":
        kwargs = {"secret": None, "headers": {"X-Slack-Signature": "v0=" + "0" * 64}}
    elif case == "no headers":
        kwargs["secret"] = None
    reply = post(harness.url, body, content_type="application/json", **kwargs)
    assert reply.status == 401
    time.sleep(0.2)
    assert [c.method for c in harness.slack.calls] == ["auth.test"]
    assert harness.bot.deliveries.first(f"event:{event_id}")  # no middleware after verification ever saw it
    assert len(harness.bot.conversations) == 0


def test_the_signature_window_is_five_minutes(harness: Any) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "unused"})
    inside = post(harness.url, body, content_type="application/json", timestamp=int(time.time()) - 4 * 60)
    assert inside.status == 200 and "c-123" in inside.body
    outside = post(harness.url, body, content_type="application/json", timestamp=int(time.time()) - 5 * 60 - 30)
    assert outside.status == 401


def test_oversized_body_is_refused_before_it_is_read(harness: Any) -> None:
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(harness.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.putrequest("POST", url.path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(2 * 1024 * 1024))
        conn.endheaders()
        conn.send(b"{}")
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    assert [c.method for c in harness.slack.calls] == ["auth.test"]


# --- conversations -------------------------------------------------------------------------------------


def test_follow_up_in_the_thread_keeps_context_and_a_new_thread_does_not(harness: Any) -> None:
    root = "1712000000.000400"
    harness.event(mention(QUESTION, root), "EvTHREAD1")
    first = wait_answers(harness, 1)[0]
    harness.event(mention("now only premium accounts", "1712000000.000401", thread_ts=root), "EvTHREAD2")
    follow = wait_answers(harness, 2)[1]
    assert follow.params["thread_ts"] == root
    words = block(follow, "lore_answer")["text"]["text"]
    assert "premium" in words and "region" in words.lower()
    assert "Follow-up" in block(follow, "lore_context")["elements"][0]["text"]
    assert block(first, "lore_feedback")["elements"][0]["value"] != block(follow, "lore_feedback")["elements"][0]["value"]
    assert len(harness.bot.conversations) == 1

    # the same words as the first message of another thread are not a follow-up of anything
    harness.event(mention("now only premium accounts", "1712000000.000500"), "EvTHREAD3")
    other = wait_answers(harness, 3)[2]
    assert other.params["thread_ts"] == "1712000000.000500"
    assert "premium" not in block(other, "lore_answer")["text"]["text"] or "Follow-up" not in json.dumps(blocks_of(other))
    assert len(harness.bot.conversations) == 2


def test_direct_message_is_answered_and_bot_or_edited_messages_are_not(harness: Any) -> None:
    harness.event(direct_message("subscribers by plan", "1712000000.000600", bot_id="BOTHER"), "EvDMBOT")
    harness.event(direct_message("subscribers by plan", "1712000000.000601", subtype="message_changed"), "EvDMEDIT")
    harness.event(direct_message(QUESTION, "1712000000.000602"), "EvDM")
    answer = wait_answers(harness)[0]
    assert answer.params["channel"] == "D0ASKER" and answer.params["thread_ts"] == "1712000000.000602"
    harness.settle()
    assert len(answer_posts(harness)) == 1


def test_slash_command_acks_then_answers_in_a_thread_under_the_question(harness: Any) -> None:
    reply = harness.command(QUESTION)
    assert reply.status == 200 and reply.elapsed < 3
    assert reply.body == f"Working on it: {QUESTION}"  # shown to the asker only
    question = harness.slack.wait_for("chat.postMessage")[0]
    assert "thread_ts" not in question.params
    assert block(question, "lore_question")["text"]["text"] == f"<@U0ASKER> asked: {QUESTION}"
    answer = wait_answers(harness)[0]
    assert answer.params["thread_ts"].startswith("1700000000.")  # the ts the stand-in gave the question message
    assert answer.params["thread_ts"] != question.params.get("thread_ts")
    assert_no_slack_markup(question, allowed=("<@U0ASKER>",))


def test_slash_command_without_text_shows_help_and_posts_nothing(harness: Any) -> None:
    reply = harness.command("   ")
    assert reply.status == 200 and reply.body.startswith("Ask me about your metrics")
    assert "<" not in reply.body and "&lt;question&gt;" in reply.body
    harness.settle()
    assert harness.slack.of("chat.postMessage") == []


def test_slash_command_in_a_channel_without_the_bot_explains_how_to_invite_it(harness: Any) -> None:
    harness.command(QUESTION, channel="CNOTIN")
    said = harness.slack.wait_for("respond")[0].params
    assert said["response_type"] == "ephemeral" and "/invite" in said["text"]


# --- security of what is posted ---------------------------------------------------------------------


def test_mentions_and_links_in_the_question_cannot_ping_or_link(harness: Any) -> None:
    text = "<!channel> <!here> <@U0BOSS> <https://evil.example/x|click me> &lt;script&gt; " + QUESTION
    harness.event(mention(text, "1712000000.000700"), "EvINJECT")
    answer = wait_answers(harness)[0]
    harness.settle()
    for call in harness.slack.of("chat.postMessage") + harness.slack.of("chat.update"):
        assert_no_slack_markup(call)
        assert "<!channel>" not in json.dumps(call.params) and "<script" not in json.dumps(call.params)
    assert answer.params["unfurl_links"] is False


# --- acknowledging within 3 seconds ----------------------------------------------------------------------


def test_ack_comes_at_once_and_the_answer_afterwards(harness: Any) -> None:
    gate = threading.Event()
    harness.slack.gates["reactions.add"] = gate  # Slack is slow to take the reaction: the work is held back
    try:
        reply = harness.event(mention(QUESTION, "1712000000.000800"), "EvSLOW")
        assert reply.status == 200 and reply.elapsed < 3
        time.sleep(0.3)
        assert answer_posts(harness) == []  # acknowledged before the answer exists
    finally:
        gate.set()
    assert wait_answers(harness)


# --- retries ---------------------------------------------------------------------------------------------


def test_redelivered_event_is_answered_once(harness: Any) -> None:
    event = mention(QUESTION, "1712000000.000900")
    first = harness.event(event, "EvRETRY")
    again = harness.event(event, "EvRETRY", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    third = harness.event(event, "EvRETRY", headers={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"})
    assert (first.status, again.status, third.status) == (200, 200, 200)
    wait_answers(harness)
    harness.settle()
    assert len(answer_posts(harness)) == 1
    assert len(harness.slack.of("files.completeUploadExternal")) == 1


def test_same_message_as_mention_and_dm_is_answered_once(harness: Any) -> None:
    ts = "1712000000.000950"
    harness.event(mention(QUESTION, ts, channel="D0ASKER"), "EvBOTH1")
    harness.event(direct_message(f"<@{BOT_USER}> {QUESTION}", ts), "EvBOTH2")
    wait_answers(harness)
    harness.settle()
    assert len(answer_posts(harness)) == 1


# --- errors ------------------------------------------------------------------------------------------------


def test_a_question_it_cannot_answer_gets_a_clear_reply_without_buttons(harness: Any) -> None:
    harness.event(mention("what is the weather on mars", "1712000000.001000"), "EvCLARIFY")
    reply = wait_answers(harness)[0]
    ids = [b.get("block_id") for b in blocks_of(reply)]
    assert "lore_feedback" not in ids and "lore_table" not in ids
    assert block(reply, "lore_answer")["text"]["text"]
    assert harness.slack.of("files.getUploadURLExternal") == []


def test_app_built_with_secret_only_verifies_that_secret(slack_lore: Any, slack_project: Any) -> None:
    """Building never falls back to an empty or environment secret."""
    from slack_sdk import WebClient
    from slack_standin import SlackStandIn, bot_settings, served

    from ui.slack.app import build_app
    from ui.slack.asgi import slack_app

    slack = SlackStandIn().start()
    try:
        client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=10)
        app = build_app(lambda: slack_lore, bot_settings(slack_project, slack_signing_secret=None,
                                                         slack_app_token="xapp-1-socket"), client=client)
        # served with the right secret in front, Bolt (built without one) still refuses every request
        with served(slack_app(app, signing_secret=SECRET)) as base:
            url = f"{base}/slack/events"
            body = json.dumps({"type": "url_verification", "challenge": "c", "token": "unused"})
            assert post(url, body, content_type="application/json", secret="").status == 401
            assert post(url, body, content_type="application/json", secret=SECRET).status == 401
    finally:
        slack.stop()


def test_a_revoked_token_stops_the_bot_with_an_operator_error(slack_lore: Any, slack_project: Any) -> None:
    from slack_sdk import WebClient
    from slack_standin import SlackStandIn, bot_settings

    from lore.errors import OperatorError
    from ui.slack.app import build_app

    slack = SlackStandIn().start()
    try:
        client = WebClient(token="xoxb-revoked", base_url=slack.base_url, timeout=10)
        with pytest.raises(OperatorError, match="did not accept the bot token"):
            build_app(lambda: slack_lore, bot_settings(slack_project), client=client)
    finally:
        slack.stop()


def test_socket_mode_envelopes_reach_the_same_listeners(slack_lore: Any, slack_project: Any) -> None:
    """Socket Mode: Slack's envelopes go through the real SocketModeHandler into the same app (no socket opened)."""
    import logging

    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk import WebClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_standin import SlackStandIn, bot_settings

    from ui.slack.app import build_app, slack_mode

    class Socket:
        """Records the acknowledgements the handler sends back over the socket."""

        logger = logging.getLogger("test.socket")

        def __init__(self) -> None:
            self.sent: list[Any] = []

        def send_socket_mode_response(self, response: Any) -> None:
            self.sent.append(response)

    slack = SlackStandIn().start()
    settings = bot_settings(slack_project, slack_signing_secret=None, slack_app_token="xapp-1-test")
    assert slack_mode(settings) == "socket"
    client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=10)
    handler = SocketModeHandler(build_app(lambda: slack_lore, settings, client=client), "xapp-1-test")
    socket = Socket()
    try:
        envelope = json.loads(event_body(mention(QUESTION, "1712000000.002000"), "EvSOCKET"))
        for _ in range(2):  # Slack redelivers an envelope it did not see acknowledged: answered once
            handler.handle(socket, SocketModeRequest(type="events_api", envelope_id="env-1", payload=envelope))
        assert [r.envelope_id for r in socket.sent] == ["env-1", "env-1"]
        answer = slack.wait_for("chat.postMessage", timeout=60)[0]
        assert answer.params["thread_ts"] == "1712000000.002000" and answer.params["unfurl_links"] is False
        slack.wait_for("files.completeUploadExternal")
        time.sleep(0.3)
        assert len(slack.of("chat.postMessage")) == 1
    finally:
        handler.client.close()
        slack.stop()


def test_a_broken_project_is_logged_for_the_operator_not_shown_to_the_asker(slack_project: Any, tmp_path: Any) -> None:
    from slack_sdk import WebClient
    from slack_standin import SlackStandIn, bot_settings, served

    from lore import Lore
    from ui.slack.app import build_app
    from ui.slack.asgi import slack_app

    missing = tmp_path / "no-such-project"
    slack = SlackStandIn().start()
    client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=10)
    app = build_app(lambda: Lore.open(missing), bot_settings(slack_project), client=client)
    try:
        with served(slack_app(app, signing_secret=SECRET)) as base:
            url = f"{base}/slack/events"
            assert post(url, event_body(mention(QUESTION, "1712000000.003000"), "EvBROKEN"),
                        content_type="application/json").status == 200
            said = slack.wait_for("chat.postMessage")[0]
            text = json.dumps(said.params)
            assert "not set up correctly" in text and str(missing) not in text
            assert said.params["thread_ts"] == "1712000000.003000"
            slack.wait_for("reactions.remove")  # the working reaction does not stay forever
    finally:
        slack.stop()
