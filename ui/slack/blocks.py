"""Block Kit for LORE answers, and Slack text back into a question: pure functions, no I/O.

Everything that came from the model, the data or the semantic layer goes through
:func:`escape` before it is posted, so ``<!channel>``, ``<@U123>`` or ``<https://x|y>``
in an answer shows as text: it cannot ping anyone or hide a link. Feedback buttons
carry only the answer id; who voted comes from the signed payload of the click.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from lore.explain.format import format_value
from lore.semantic.spec import SemanticLayer
from lore.types import Answer, ChartSpec, ColumnMeta, QueryPlan, Scalar

Block = dict[str, Any]

#: action ids of the feedback buttons
VOTE_UP: Final = "lore_vote_up"
VOTE_DOWN: Final = "lore_vote_down"
#: block ids LORE looks for when it updates its own messages
VOTE_BLOCK_ID: Final = "lore_feedback"
VOTE_STATUS_BLOCK_ID: Final = "lore_vote_status"
#: Slack's limit on the text of a section block
SECTION_LIMIT: Final = 3000
#: limit for a context element and the notification text
CONTEXT_LIMIT: Final = 2000
#: rows shown in the compact table
MAX_TABLE_ROWS: Final = 15
MAX_TABLE_COLUMNS: Final = 6
MAX_CELL_CHARS: Final = 28
#: chart kinds worth a PNG (a KPI is already the sentence; a table is the table)
PNG_KINDS: Final = frozenset({"line", "bar", "grouped_bar", "stacked_bar", "scatter"})

HELP_TEXT: Final = (
    "Ask me about your metrics in plain words, for example "
    "`streaming hours by region in 2026`. Mention me in a channel, send me a direct message "
    "or use `/lore <question>`. Reply in the thread to follow up."
)

_ANSWER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")
_MARKUP = re.compile(r"<([^<>]*)>")


# --- text in and out --------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape the three characters Slack reads as markup (``&``, ``<``, ``>``).

    >>> escape("<!channel> & <@U123> said 2 > 1")
    '&lt;!channel&gt; &amp; &lt;@U123&gt; said 2 &gt; 1'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo Slack's escaping of incoming text.

    >>> unescape("a &lt; b &amp;&amp; c &gt; d, literally &amp;lt;")
    'a < b && c > d, literally &lt;'
    """
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def fit(text: str, limit: int) -> str:
    """``text`` escaped and cut (with an ellipsis) so the escaped form fits in ``limit`` characters.

    >>> fit("a < b", 100)
    'a &lt; b'
    >>> fit("<<<<<<", 10)
    '&lt;&lt;…'
    """
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 1  # the ellipsis
    for ch in text:
        piece = escape(ch)
        if used + len(piece) > limit:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + "…"


def _plain(match: re.Match[str]) -> str:
    target, _, label = match.group(1).partition("|")
    if target.startswith(("@", "#")):
        return target[0] + (label or target[1:])
    if target.startswith("!"):
        return "@" + (label.lstrip("@") if label else target[1:].split("^")[0])
    return label or target


def question_text(raw: str, bot_user_id: str | None = None) -> str:
    """The question in a message as Slack sends it: the bot's mention dropped, markup made plain, entities decoded.

    >>> question_text("<@UBOT> streaming hours by region &amp; plan", "UBOT")
    'streaming hours by region & plan'
    >>> question_text("<@UBOT|lore>  hours in <#C1|emea> like <https://x.io|this> for <@U2> &lt;3", "UBOT")
    'hours in #emea like this for @U2 <3'
    >>> question_text("   ")
    ''
    """
    text = raw
    if bot_user_id:
        text = re.sub(r"<@" + re.escape(bot_user_id) + r"(\|[^<>]*)?>", " ", text)
    text = _MARKUP.sub(_plain, text)
    return " ".join(unescape(text).split())


def plain_title(text: str, limit: int = 200) -> str:
    """A file title or alt text: one line, no markup characters, bounded.

    >>> plain_title("Hours by <b>region</b>\\n(2026)")
    'Hours by ‹b›region‹/b› (2026)'
    """
    one_line = " ".join(text.split()).replace("<", "‹").replace(">", "›")
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def slack_identity(team_id: str | None, user_id: str) -> str:
    """Who asked or voted, as recorded by LORE; built from the signed payload only.

    >>> slack_identity("T1", "U2"), slack_identity(None, "U2")
    ('slack:T1:U2', 'slack:U2')
    """
    return f"slack:{team_id}:{user_id}" if team_id else f"slack:{user_id}"


def user_mention(user_id: str) -> str:
    """A mention of a Slack user id from a signed payload; anything that is not an id is shown as text.

    >>> user_mention("U024BE7LH"), user_mention("<!channel>")
    ('<@U024BE7LH>', '&lt;!channel&gt;')
    """
    return f"<@{user_id}>" if _SLACK_ID.match(user_id) else escape(user_id)


def is_answer_id(value: str) -> bool:
    """Button values must look like an answer id (nothing else is accepted from a click).

    >>> is_answer_id("3f2a9c0e1b7d4e2a9f1c3b5d7e9a1c2b"), is_answer_id("x; DROP"), is_answer_id("")
    (True, False, False)
    """
    return bool(_ANSWER_ID.match(value))


def vote_key(team_id: str | None, channel: str, message_ts: str, action_ts: str, user_id: str) -> str:
    """The idempotency key of one click: a redelivered click has the same message and action timestamps.

    >>> vote_key("T1", "C1", "1700000000.000100", "1700000005.123456", "U1")
    'slack:T1:C1:1700000000.000100:1700000005.123456:U1'
    """
    return f"slack:{team_id or '-'}:{channel}:{message_ts}:{action_ts}:{user_id}"


# --- the compact table ------------------------------------------------------------------------


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split()).replace("`", "ˋ")  # a backtick could close the code block
    return text if len(text) <= width else text[: width - 1] + "…"


def _numeric(column: ColumnMeta, values: Sequence[Scalar]) -> bool:
    if column.kind == "metric":
        return True
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)


def table_text(columns: Sequence[ColumnMeta], rows: Sequence[Sequence[Scalar]], *, max_rows: int = MAX_TABLE_ROWS,
               max_columns: int = MAX_TABLE_COLUMNS, max_cell: int = MAX_CELL_CHARS, truncated: bool = False) -> str:
    """Columns aligned as fixed-width text (numbers right-aligned), at most ``max_rows`` rows. Not escaped yet.

    >>> cols = (ColumnMeta(name="region", label="Region", kind="dimension"),
    ...         ColumnMeta(name="hours", label="Hours", kind="metric"))
    >>> print(table_text(cols, [("EMEA", 4995.2), ("UCAN", 402.0), ("APAC", None)]))
    Region   Hours
    EMEA     4,995
    UCAN    402.00
    APAC         —
    >>> print(table_text(cols, [(f"R{i}", i) for i in range(5)], max_rows=2))
    Region  Hours
    R0          0
    R1          1
    … 3 more rows
    """
    cols = list(columns)[:max_columns]
    shown = [list(r)[: len(cols)] for r in rows[:max_rows]]
    numeric = [_numeric(c, [r[i] for r in shown]) for i, c in enumerate(cols)]
    header = [_cell(c.label or c.name, max_cell) for c in cols]
    body = [[_cell(format_value(v, c), max_cell) for v, c in zip(r, cols)] for r in shown]
    widths = [max(len(x) for x in [h, *(r[i] for r in body)]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    lines = [line(header), *(line(r) for r in body)]
    hidden = len(rows) - len(shown)
    if hidden > 0:
        lines.append(f"… {hidden:,} more row{'s' if hidden != 1 else ''}" + (" (row cap reached)" if truncated else ""))
    elif truncated:
        lines.append("(row cap reached: more rows exist)")
    if len(columns) > len(cols):
        lines.append(f"… {len(columns) - len(cols)} more column(s)")
    return "\n".join(lines)


def table_block(columns: Sequence[ColumnMeta], rows: Sequence[Sequence[Scalar]], *, max_rows: int = MAX_TABLE_ROWS,
                truncated: bool = False) -> Block:
    """The table as a code block in a section, with fewer rows if it would not fit."""
    shown = max(1, max_rows)
    while True:
        text = "```\n" + escape(table_text(columns, rows, max_rows=shown, truncated=truncated)) + "\n```"
        if len(text) <= SECTION_LIMIT or shown == 1:
            break
        shown = max(1, shown // 2)
    return {"type": "section", "block_id": "lore_table", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}}


# --- the answer -------------------------------------------------------------------------


def definitions_used(plan: QueryPlan, layer: SemanticLayer) -> tuple[str, ...]:
    """The governed definitions behind a plan's metrics, one short line each (raw text, not escaped)."""
    out: list[str] = []
    for name in plan.metrics:
        m = layer.metrics.get(name)
        if m is None:
            continue
        if m.is_derived:
            definition = m.expr
        else:
            definition = f"{(m.agg or '').upper()}({m.expr}) over {m.source}" + (f" where {m.filter}" if m.filter else "")
        owner = f", owner {m.owner}" if m.owner else ""
        out.append(f"{m.display} [{name}] = {definition}{owner}")
    return tuple(out)


def section(text: str, *, block_id: str | None = None) -> Block:
    """A mrkdwn section from raw text: escaped and fitted to Slack's limit.

    >>> section("<!here> 5 > 3")["text"]["text"]
    '&lt;!here&gt; 5 &gt; 3'
    """
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": fit(text, SECTION_LIMIT)}}
    if block_id:
        block["block_id"] = block_id
    return block


def vote_block(answer_id: str) -> Block:
    """Thumbs up and down; each button's value is the answer id and nothing else.

    >>> [(e["action_id"], e["value"]) for e in vote_block("a1")["elements"]]
    [('lore_vote_up', 'a1'), ('lore_vote_down', 'a1')]
    """

    def button(label: str, action_id: str) -> Block:
        return {"type": "button", "action_id": action_id, "value": answer_id,
                "text": {"type": "plain_text", "text": label, "emoji": True}}

    return {"type": "actions", "block_id": VOTE_BLOCK_ID,
            "elements": [button(":+1: Helpful", VOTE_UP), button(":-1: Not right", VOTE_DOWN)]}


def context_line(answer: Answer, definitions: Sequence[str] = ()) -> Block:
    """Confidence and the definitions used, in small print.

    >>> a = Answer(id="a", question="q", status="answered", message="m", confidence=0.86)
    >>> context_line(a, ["Hours [h] = SUM(x) over <t>"])["elements"][0]["text"]
    'Confidence: *high* (0.86) · Definitions: Hours [h] = SUM(x) over &lt;t&gt;'
    """
    text = f"Confidence: *{answer.confidence_label}* ({answer.confidence:.2f})"
    if answer.plan is not None and any(g.kind == "context" for g in answer.plan.groundings):
        text += " · Follow-up: kept the thread's previous question"
    if definitions:
        text += " · Definitions: "
        text += fit("; ".join(definitions), CONTEXT_LIMIT - len(text))
    return {"type": "context", "block_id": "lore_context", "elements": [{"type": "mrkdwn", "text": text}]}


_STATUS_NOTE: Final = {
    "clarify": "LORE needs a more precise question.",
    "refused": "LORE cannot answer this from the semantic layer.",
    "error": "The query could not run.",
}


def answer_blocks(answer: Answer, *, definitions: Sequence[str] = (), max_rows: int = MAX_TABLE_ROWS) -> list[Block]:
    """The whole reply: the answer in words, the compact table, the context line and the feedback buttons."""
    blocks: list[Block] = []
    if answer.status == "answered" and answer.restatement:  # what was computed, before the number
        blocks.append({"type": "context", "block_id": "lore_restatement",
                       "elements": [{"type": "mrkdwn", "text": fit(answer.restatement, CONTEXT_LIMIT)}]})
    blocks.append(section(answer.message or "(no answer)", block_id="lore_answer"))
    if answer.status != "answered":
        missing = [s for s in answer.suggestions if s not in answer.message]
        if missing:
            blocks.append(section("Closest: " + ", ".join(missing), block_id="lore_suggestions"))
        note = _STATUS_NOTE.get(answer.status, "")
        blocks.append({"type": "context", "block_id": "lore_context", "elements": [{"type": "mrkdwn", "text": note}]})
        return blocks
    single_value = len(answer.rows) == 1 and len(answer.columns) == 1
    if answer.rows and answer.columns and not single_value:
        blocks.append(table_block(answer.columns, answer.rows, max_rows=max_rows, truncated=answer.truncated))
    blocks.append(context_line(answer, definitions))
    blocks.append(vote_block(answer.id))
    return blocks


def fallback_text(answer: Answer) -> str:
    """The notification text that goes with the blocks (escaped).

    >>> fallback_text(Answer(id="a", question="q", status="answered", message="<!channel> up 5%"))
    '&lt;!channel&gt; up 5%'
    """
    return fit(answer.message or "LORE answered.", CONTEXT_LIMIT)


def answer_chart(answer: Answer) -> ChartSpec | None:
    """The answer's chart as a :class:`~lore.types.ChartSpec` when it is worth a PNG.

    >>> answer_chart(Answer(id="a", question="q", status="answered", message="", chart_kind="kpi", chart={}))
    >>> answer_chart(Answer(id="a", question="q", status="answered", message="", chart_kind="bar",
    ...                     chart={"mark": "bar"}, chart_title="T")).kind
    'bar'
    """
    if answer.status != "answered" or not answer.chart or answer.chart_kind not in PNG_KINDS:
        return None
    return ChartSpec(kind=answer.chart_kind, title=answer.chart_title or "Chart", spec=answer.chart,  # type: ignore[arg-type]
                     reason="the answer's chart")


def message_args(channel: str, thread_ts: str | None, blocks: list[Block], text: str) -> dict[str, Any]:
    """Arguments of ``chat.postMessage``: in the thread, link and media unfurling off, no name linking.

    >>> sorted(message_args("C1", "1.2", [], "t"))
    ['blocks', 'channel', 'link_names', 'text', 'thread_ts', 'unfurl_links', 'unfurl_media']
    """
    args: dict[str, Any] = {"channel": channel, "blocks": blocks, "text": text, "unfurl_links": False,
                            "unfurl_media": False, "link_names": False}
    if thread_ts:
        args["thread_ts"] = thread_ts
    return args


def ephemeral_args(channel: str, user_id: str, thread_ts: str | None, blocks: list[Block], text: str) -> dict[str, Any]:
    """Arguments of ``chat.postEphemeral``: shown to ``user_id`` alone, in the thread, no name linking.

    >>> sorted(ephemeral_args("C1", "U1", "1.2", [], "t"))
    ['blocks', 'channel', 'link_names', 'text', 'thread_ts', 'user']
    """
    args: dict[str, Any] = {"channel": channel, "user": user_id, "blocks": blocks, "text": text, "link_names": False}
    if thread_ts:
        args["thread_ts"] = thread_ts
    return args


def private_note_block(text: str) -> Block:
    """Small print above an answer only its asker sees, saying why (escaped).

    >>> private_note_block("Only you can see this <3")["elements"][0]["text"]
    'Only you can see this &lt;3'
    """
    return {"type": "context", "block_id": "lore_private", "elements": [{"type": "mrkdwn", "text": fit(text, CONTEXT_LIMIT)}]}


def question_blocks(user_id: str, question: str) -> list[Block]:
    """The message a ``/lore`` command starts its thread with (the asker from the signed payload).

    >>> question_blocks("U1", "<!here> hours")[0]["text"]["text"]
    '<@U1> asked: &lt;!here&gt; hours'
    """
    return [{"type": "section", "block_id": "lore_question",
             "text": {"type": "mrkdwn", "text": f"{user_mention(user_id)} asked: " + fit(question, SECTION_LIMIT - 60)}}]


def notice_blocks(text: str) -> list[Block]:
    """A short message from LORE itself (help, an error) as one escaped section."""
    return [section(text, block_id="lore_notice")]


def vote_status_text(rating: int) -> str:
    """What LORE says once a vote is recorded.

    >>> vote_status_text(1), vote_status_text(-1)
    (':+1: Feedback recorded. Thank you!', ':-1: Feedback recorded. Thank you!')
    """
    return f"{':+1:' if rating > 0 else ':-1:'} Feedback recorded. Thank you!"


def voted_blocks(blocks: Sequence[Mapping[str, Any]], rating: int) -> list[Block]:
    """A message's blocks with a line saying the vote was recorded (the buttons stay: others may vote too).

    >>> start = [section("Hours: 5"), vote_block("a1")]
    >>> [b.get("block_id") for b in voted_blocks(start, 1)]
    [None, 'lore_feedback', 'lore_vote_status']
    >>> again = voted_blocks(voted_blocks(start, 1), -1)
    >>> len(again), again[-1]["elements"][0]["text"]
    (3, ':-1: Feedback recorded. Thank you!')
    """
    kept = [dict(b) for b in blocks if b.get("block_id") != VOTE_STATUS_BLOCK_ID]
    status: Block = {"type": "context", "block_id": VOTE_STATUS_BLOCK_ID,
                     "elements": [{"type": "mrkdwn", "text": vote_status_text(rating)}]}
    at = next((i + 1 for i, b in enumerate(kept) if b.get("block_id") == VOTE_BLOCK_ID), len(kept))
    return [*kept[:at], status, *kept[at:]]
