"""LORE's chat page, a Streamlit script: ``lore ui --project DIR`` serves it.

The page is thin: it calls the public API (``Lore.open``, ``lore.chat().ask``,
``lore.feedback``, ``lore.chart.chart_png``) and renders the answers. Each answer is a
card that leads with the answer in words and its chart, then the table, a confidence
badge, feedback and downloads; the reasoning and the SQL sit in expanders below.

Text from the model, the data, the semantic layer or the question is never rendered as
HTML: it goes through :mod:`ui.render` (markdown images and links stripped, the rest
escaped). The conversation lives in ``st.session_state`` so nothing is lost on a rerun.

The project comes from ``--project DIR`` after ``--`` on the ``streamlit run`` command
line, else from the ``LORE_PROJECT`` environment variable, else the current folder.
"""

from __future__ import annotations

import functools
import getpass
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import streamlit as st

from lore.errors import LoreError, OperatorError
from lore.explain.format import pretty_sql
from lore.project import ENGINE_NAMES
from lore.types import Answer
from ui import render

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore
    from lore.pipeline import Chat

#: models offered in the Advanced section (the operator adds others with LORE_UI_MODELS="a,b")
MODEL_CHOICES: tuple[str, ...] = ("offline", "local", "openai:gpt-4o-mini")
#: names the request header an authenticating reverse proxy sets to the user's identity
IDENTITY_HEADER_ENV = "LORE_UI_IDENTITY_HEADER"
PLACEHOLDER = "Ask about your metrics, e.g. “streaming hours by region in 2026”"


@dataclass(frozen=True)
class Prefs:
    """What the Advanced section chose for this run."""

    model: str
    today: date
    show_sql: bool
    user: str
    #: the user came from the sign-in or the trusted proxy header (not typed, not the operator's default)
    verified: bool = False


@dataclass(frozen=True)
class Identity:
    """Who is asking, and whether an authenticated source says so (a sign-in or the trusted proxy header)."""

    user: str
    verified: bool


@dataclass(frozen=True)
class Turn:
    """One question and what came back: an answer, or an error the asker can act on."""

    question: str
    answer: Answer | None = None
    error: render.FriendlyError | None = None
    #: seconds the whole question took (shown under the card)
    seconds: float = 0.0


# --- the project and the Lore instance ------------------------------------------------------


def project_arg(argv: Sequence[str], environ: dict[str, str] | os._Environ[str]) -> str:
    """The project folder: ``--project DIR`` in the script's arguments, else ``LORE_PROJECT``, else ".".

    >>> project_arg(["app.py", "--project", "demo"], {}), project_arg(["app.py"], {"LORE_PROJECT": "/p"})
    ('demo', '/p')
    >>> project_arg(["app.py", "--project=x"], {}), project_arg([], {})
    ('x', '.')
    """
    args = list(argv[1:])
    for i, arg in enumerate(args):
        if arg == "--project" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--project="):
            return arg.split("=", 1)[1]
    return environ.get("LORE_PROJECT") or "."


def model_choices(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The models a user may pick: the defaults plus the operator's ``LORE_UI_MODELS`` (never free text).

    >>> model_choices({"LORE_UI_MODELS": "ollama:qwen2.5, local"})
    ['offline', 'local', 'openai:gpt-4o-mini', 'ollama:qwen2.5']
    """
    extra = [m.strip() for m in environ.get("LORE_UI_MODELS", "").split(",") if m.strip()]
    return list(dict.fromkeys([*MODEL_CHOICES, *extra]))


@st.cache_resource(show_spinner=False, max_entries=8)
def open_lore(project: str, model: str, today: date) -> Lore:
    """One ``Lore`` per project and settings, shared by every session of this server."""
    from lore.core import Lore

    lore = Lore.open(project, model=model, today=today)
    lore.warm_up()  # the engine, the layer, the index and the embedder load once, before the first question
    return lore


def resolve_identity(email: object, headers: Mapping[str, str], environ: Mapping[str, str]) -> Identity:
    """Who is asking, from a verified source only (access control trusts this, never a text box):

    1. the signed-in user's email when the server has Streamlit authentication (``st.login``);
    2. the header named by ``LORE_UI_IDENTITY_HEADER`` (e.g. ``X-Forwarded-Email``), set by an
       authenticating reverse proxy in front of the server (the operator must strip it from client requests).
       When the operator named a header, a request without it is refused (:class:`OperatorError`): it did not
       come through the proxy, so it gets no identity at all, never a fallback one;
    3. otherwise ``LORE_USER``, set by the operator who starts the server, else the OS user running it.

    >>> resolve_identity("ana@example.com", {}, {"LORE_UI_IDENTITY_HEADER": "X-Email"})
    Identity(user='ana@example.com', verified=True)
    >>> resolve_identity(None, {"X-Email": " bo@example.com "}, {"LORE_UI_IDENTITY_HEADER": "X-Email", "LORE_USER": "ops"})
    Identity(user='bo@example.com', verified=True)
    >>> resolve_identity(None, {}, {"LORE_USER": "ops"})
    Identity(user='ops', verified=False)
    >>> try:
    ...     resolve_identity(None, {"X-Email": "  "}, {"LORE_UI_IDENTITY_HEADER": "X-Email", "LORE_USER": "ops"})
    ... except OperatorError as err:
    ...     print(err.message)
    This page takes who you are from the X-Email header, and this request does not carry it.
    """
    if isinstance(email, str) and email.strip():
        return Identity(email.strip(), verified=True)
    header_name = environ.get(IDENTITY_HEADER_ENV, "").strip()
    if header_name:
        value = headers.get(header_name)
        if isinstance(value, str) and value.strip():
            return Identity(value.strip(), verified=True)
        raise OperatorError(
            f"This page takes who you are from the {header_name} header, and this request does not carry it.",
            hint=f"Open LORE through the sign-in proxy your organisation uses. Operator: serve this page only behind "
                 f"the authenticating reverse proxy that sets {header_name} on every request (and strips it from "
                 f"clients), or unset {IDENTITY_HEADER_ENV} if no proxy signs people in.")
    try:
        return Identity(environ.get("LORE_USER") or getpass.getuser(), verified=False)
    except (KeyError, OSError):
        return Identity("anonymous", verified=False)


def current_identity() -> Identity:
    """This request's identity (:func:`resolve_identity`) from Streamlit's sign-in and the request's headers."""
    try:
        email = st.user.get("email")
    except (AttributeError, KeyError, RuntimeError):
        email = None
    try:
        headers: Mapping[str, str] = st.context.headers
    except (AttributeError, KeyError, RuntimeError):
        headers = {}
    return resolve_identity(email, headers, os.environ)


# --- session state --------------------------------------------------------------------------


def init_state() -> None:
    defaults: dict[str, Any] = {"history": [], "pending": None, "feedback": {}, "chat": None, "chat_key": None}
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def queue_question(question: str) -> None:
    """Button callback: ask ``question`` on this rerun."""
    st.session_state.pending = question


def new_conversation() -> None:
    st.session_state.history = []
    st.session_state.chat = None
    st.session_state.chat_key = None
    st.session_state.pending = None


def session_chat(lore: Lore, key: tuple[Any, ...], user: str) -> Chat:
    """The session's conversation; a change of settings keeps its history and its follow-up context."""
    chat = st.session_state.chat
    if chat is not None and st.session_state.chat_key == (key, user):
        return chat
    fresh = lore.chat(user=user, conversation_id=chat.id if chat is not None else None)
    if chat is not None:
        fresh.history = list(chat.history)
    st.session_state.chat = fresh
    st.session_state.chat_key = (key, user)
    return fresh


# --- page parts -----------------------------------------------------------------------------


def header(title: str, description: str) -> None:
    left, right = st.columns([0.72, 0.28], vertical_alignment="center")
    with left:
        st.title(":material/query_stats: LORE", anchor=False)
        st.caption("Ask your data in plain words. Every number comes from a governed metric definition, "
                   "with its reasoning, its SQL and a confidence score.")
    with right, st.container(horizontal=True, horizontal_alignment="right"):
        st.badge(render.escape_markdown(render.plain(title)) or "project", icon=":material/database:", color="gray",
                 help=render.plain(description) or None)
        if st.session_state.history:
            st.button("New conversation", icon=":material/add_comment:", on_click=new_conversation, type="tertiary")


def advanced(default_today: date, identity: Identity, *, locked: bool) -> Prefs:
    """The Advanced section at the bottom of the sidebar (``locked``: the identity decides access, so it shows read-only)."""
    with st.sidebar.expander("Advanced", icon=":material/tune:"):
        model = st.selectbox("Model", model_choices(os.environ), index=0, key="model",
                             help="The planner that reads questions. **offline** needs no model and no network; "
                                  "the others need their server or key set up where LORE runs.")
        show_sql = st.toggle("Show SQL by default", value=False, key="show_sql")
        today = st.date_input("Today's date", value=default_today, key="today",
                              help="Relative ranges such as “last month” or “year to date” resolve against this day.")
        if locked:  # access control: the identity decides what you see, so it is not editable
            user = st.text_input("Signed in as", value=identity.user, disabled=True,
                                 help="This project limits what each person may see; you see what this identity may.")
        else:
            user = st.text_input("Your name", value=identity.user, key="user",
                                 help="Recorded with your questions and feedback.")
    name = (user or "").strip() or "anonymous"
    return Prefs(model=str(model or "offline"), today=today if isinstance(today, date) else default_today,
                 show_sql=bool(show_sql), user=name, verified=identity.verified and name == identity.user)


def catalog_sidebar(lore: Lore, box: Any) -> None:
    """The metric catalog: search, definitions, dimensions and owners, so users learn what can be asked."""
    layer, catalog = lore.layer, lore.catalog
    dims = {name: [d.label for d in render.metric_dimensions(layer, catalog, name)] for name in layer.metrics}
    with box:
        st.subheader(":material/menu_book: Metric catalog", anchor=False)
        query = st.text_input("Search metrics", key="catalog_query", placeholder="Search: hours, cost, region…",
                              label_visibility="collapsed", icon=":material/search:")
        names = render.search_metrics(layer, query, dims)
        st.caption(f"{len(names)} of {len(layer.metrics)} metrics" if query else
                   f"{len(layer.metrics)} governed metrics. Open one to see how it is defined.")
        for domain, group in render.metrics_by_domain(layer, names).items():
            st.markdown(f"**{render.escape_markdown(domain)}**")
            for name in group:
                metric = layer.metrics[name]
                with st.expander(render.escape_markdown(render.plain(metric.display))):
                    if metric.description:
                        st.markdown(render.safe_markdown(metric.description))
                    st.code(render.metric_definition(metric), language="sql", wrap_lines=True)
                    facts = [f"**Owner:** {render.safe_markdown(metric.owner or 'unassigned')}"]
                    if metric.unit:
                        facts.append(f"**Unit:** {render.safe_markdown(metric.unit)}")
                    if metric.synonyms:
                        facts.append("**Also called:** " + render.safe_markdown(", ".join(metric.synonyms[:6])))
                    if dims[name]:
                        facts.append("**Break down by:** " + render.safe_markdown(", ".join(dims[name])))
                    st.markdown("  \n".join(facts))
                    example = render.metric_example(layer, catalog, name)
                    st.button(f"Ask “{render.escape_markdown(render.plain(example))}”", key=f"cat_ask_{name}",
                              on_click=queue_question, args=(example,), type="tertiary", icon=":material/send:")


def welcome(lore: Lore) -> None:
    """The first-visit panel: what LORE is, and example questions per domain."""
    examples = render.example_questions(lore.layer, lore.catalog)
    with st.container(border=True):
        st.subheader("What would you like to know?", anchor=False)
        st.markdown("Ask in plain words. I answer from the governed metric definitions in the catalog on the "
                    "left, show a chart and the table, and tell you how confident I am and why. "
                    "Follow-up questions such as *“now only premium accounts”* refine the last answer.")
        domains = list(examples.items())
        per_row = 3
        for start in range(0, len(domains), per_row):
            cols = st.columns(per_row, gap="medium")
            for col, (domain, questions) in zip(cols, domains[start:start + per_row]):
                with col:
                    st.markdown(f"**{render.escape_markdown(domain)}**")
                    for i, q in enumerate(questions):
                        st.button(render.escape_markdown(render.plain(q)), key=f"example_{domain}_{i}",
                                  on_click=queue_question, args=(q,), icon=":material/arrow_outward:",
                                  width="stretch")


def show_error(err: render.FriendlyError) -> None:
    body = f"**{render.escape_markdown(err.title)}**  \n{render.safe_markdown(err.detail)}"
    if err.hint:
        body += f"  \n{render.safe_markdown(err.hint)}"
    st.error(body, icon=":material/error:")


# --- the answer card ------------------------------------------------------------------------


def result_table(answer: Answer) -> None:
    import pandas as pd

    names = [c.name for c in answer.columns]
    frame = pd.DataFrame([list(r) for r in render.sorted_rows(answer)], columns=names)
    config: dict[str, Any] = {}
    for col in answer.columns:
        title = render.column_title(col)
        if (date_fmt := render.date_format(col)) is not None:
            frame[col.name] = pd.to_datetime(frame[col.name], errors="coerce")
            config[col.name] = st.column_config.DateColumn(title, format=date_fmt)
        elif (fmt := render.number_format(col)) is not None:
            config[col.name] = st.column_config.NumberColumn(title, format=fmt)
        else:
            config[col.name] = st.column_config.TextColumn(title)
    st.dataframe(frame, column_config=config, hide_index=True, width="stretch",
                 height="auto" if len(frame) <= 12 else 420)
    if answer.truncated:
        st.caption(f"Showing the first {len(answer.rows):,} rows: the row cap was reached. Narrow the question "
                   "(a shorter period, a filter) to see everything.")


def suggestion_buttons(lore: Lore, answer: Answer) -> None:
    if not answer.suggestions:
        return
    with st.container(horizontal=True):
        for i, suggestion in enumerate(answer.suggestions[:8]):
            label = render.escape_markdown(render.suggestion_label(lore.layer, suggestion))
            question = render.reask_question(lore.layer, answer.question, suggestion, answer.status)
            st.button(label, key=f"suggest_{answer.id}_{i}", on_click=queue_question, args=(question,),
                      help=render.escape_markdown(render.plain(f"Ask: {question}")))


def downloads(answer: Answer) -> None:
    stem = render.file_stem(answer.chart_title or answer.question)
    st.download_button("CSV", data=render.table_csv(answer.columns, render.sorted_rows(answer)), file_name=f"{stem}.csv",
                       mime="text/csv", key=f"csv_{answer.id}", icon=":material/download:", on_click="ignore",
                       help="The table as a CSV file.")
    chart = render.answer_chart(answer)
    if chart is not None:
        from lore.chart import chart_png

        st.download_button("PNG", data=functools.partial(chart_png, chart), file_name=f"{stem}.png",
                           mime="image/png", key=f"png_{answer.id}", icon=":material/image:", on_click="ignore",
                           help="The chart as a PNG image.")


def send_feedback(lore: Lore, answer: Answer, rating: int, user: str, comment: str, correction: str, *,
                  verified: bool = False) -> None:
    """Write a vote through the feedback API; returns only after the store has it (raises LoreError).

    ``verified``: ``user`` came from the sign-in or the trusted proxy header, so the vote counts toward
    the feedback policy's thresholds; a typed name never does.
    """
    record = getattr(lore, "feedback", None)
    if record is None:
        raise OperatorError("The feedback store is not installed in this version of LORE, so the vote was not recorded.",
                            hint="Update LORE (the feedback store ships with `lore feedback`), then vote again.")
    comment, correction = comment.strip(), correction.strip()
    record(answer.id, rating=rating, user=user, comment=comment or None, correction=correction or None,
           idempotency_key=render.feedback_key(answer.id, user, rating, comment, correction), verified=verified)


def feedback_vote(answer: Answer) -> int | None:
    """The thumbs of an answer (in its action row): 1 up, 0 down, None before a vote."""
    state = st.session_state.feedback.get(answer.id)
    recorded = bool(state and state[0] == "recorded")
    return st.feedback("thumbs", key=f"vote_{answer.id}", disabled=recorded)


def feedback_form(lore: Lore, answer: Answer, prefs: Prefs, vote: int | None) -> None:
    """After a vote: an optional comment and correction, then the API; acknowledged only after it returns."""
    state = st.session_state.feedback.get(answer.id)
    if state and state[0] == "recorded":
        st.success("Thanks, recorded", icon=":material/check_circle:")
        return
    if vote is None:
        return
    rating = 1 if vote == 1 else -1
    with st.form(key=f"fbform_{answer.id}", border=True):
        prompt = "What was right about it? (optional)" if rating > 0 else "What was wrong? (optional)"
        comment = st.text_input(prompt, key=f"fbcomment_{answer.id}", max_chars=2000)
        correction = st.text_area("Corrected SQL or plan (optional)", key=f"fbcorrection_{answer.id}", height=90,
                                  max_chars=20000,
                                  help="Paste the SQL (or the plan) that gives the right answer. It is checked by the "
                                       "SQL guard and reviewed before LORE learns from it.")
        sent = st.form_submit_button("Send feedback", type="primary", icon=":material/send:")
    if sent:
        try:
            send_feedback(lore, answer, rating, prefs.user, comment, correction, verified=prefs.verified)
        except LoreError as err:
            st.session_state.feedback[answer.id] = ("error", err.message, err.hint or "")
        else:
            st.session_state.feedback[answer.id] = ("recorded",)
            st.rerun()
    state = st.session_state.feedback.get(answer.id)
    if state and state[0] == "error":
        show_error(render.FriendlyError("Your feedback was not recorded", state[1], state[2]))


def details(answer: Answer, prefs: Prefs, seconds: float, dialect: str) -> None:
    """The reasoning and the SQL, below the answer."""
    if answer.reasoning:
        with st.expander("How I got this", icon=":material/psychology:"):
            st.markdown("\n".join(f"{i}. {render.safe_markdown(' '.join(step.split()))}"
                                  for i, step in enumerate(answer.reasoning, 1)))
            meta = []
            if answer.plan is not None:
                meta.append(f"Planner: {render.safe_markdown(answer.plan.planner)}")
            if answer.trace is not None and answer.trace.timings:
                meta.append(" · ".join(render.escape_markdown(x) for x in render.stage_lines(answer.trace.timings)))
            if seconds:
                meta.append(f"Answered in {seconds:.1f} s")
            if meta:
                st.caption("  \n".join(meta))
    if answer.sql:
        with st.expander("SQL", icon=":material/code:", expanded=prefs.show_sql):
            st.code(pretty_sql(answer.sql, dialect), language="sql", wrap_lines=True)
            st.caption(f"The exact query that ran on {ENGINE_NAMES.get(dialect, dialect)}, after the safety guard. "
                       "Copy it with the button at its corner.")


def answer_card(lore: Lore, turn: Turn, prefs: Prefs) -> None:
    if turn.error is not None:
        show_error(turn.error)
        return
    answer = turn.answer
    if answer is None:  # pragma: no cover - a turn always has one or the other
        return
    message = render.safe_markdown(answer.message)
    if answer.status != "answered":
        if answer.status == "clarify":
            st.info(message, icon=":material/help:")
        elif answer.status == "refused":
            st.warning(message, icon=":material/block:")
        else:
            st.error(message, icon=":material/error:")
        suggestion_buttons(lore, answer)
        vote = feedback_vote(answer)
        feedback_form(lore, answer, prefs, vote)
        details(answer, prefs, turn.seconds, lore.dialect)
        return

    badge = render.confidence_badge(answer)
    if answer.restatement:  # what was computed, first, so a misreading shows before the number
        st.caption(":material/functions: " + render.safe_markdown(answer.restatement))
    st.markdown(f"#### {message}")
    if answer.chart and answer.chart_kind and answer.chart_kind != "table":
        st.vega_lite_chart(render.display_spec(answer.chart), width="stretch", theme=None, key=f"chart_{answer.id}")
    if answer.rows:
        result_table(answer)
    else:
        st.caption("No rows matched. Try a longer period or fewer filters.")
    with st.container(horizontal=True, vertical_alignment="center"):
        st.badge(badge.label, icon=badge.icon, color=badge.color, help=badge.help)
        vote = feedback_vote(answer)
        if answer.rows:
            downloads(answer)
    feedback_form(lore, answer, prefs, vote)
    details(answer, prefs, turn.seconds, lore.dialect)


def ask(lore: Lore, chat: Chat, question: str) -> Turn:
    """Answer a question inside a status box that names each stage."""
    started = time.perf_counter()
    with st.status("Reading your question…", expanded=False) as status:
        try:
            status.update(label="Loading the metric definitions…")
            _ = lore.layer  # load (and validate) the semantic layer now, under a clear label (no bare
            status.update(label="Preparing the search index (the first question takes a little longer)…")
            _ = lore.retriever  # expressions here: Streamlit's "magic" would render them)
            status.update(label="Finding the definitions, planning, writing and checking the SQL, running it…")
            answer = chat.ask(question)
        except LoreError as err:
            status.update(label="Could not answer", state="error")
            return Turn(question=question, error=render.friendly_error(err), seconds=time.perf_counter() - started)
        seconds = time.perf_counter() - started
        for line in render.stage_lines(answer.trace.timings if answer.trace else ()):
            status.write(render.escape_markdown(line))
        done = {"answered": "Answered", "clarify": "I need a little more detail", "refused": "I can't answer that",
                "error": "The query could not run"}[answer.status]
        status.update(label=f"{done} · {seconds:.1f} s", state="error" if answer.status == "error" else "complete")
    return Turn(question=question, answer=answer, seconds=seconds)


def show_turn(lore: Lore, turn: Turn, prefs: Prefs) -> None:
    with st.chat_message("user", avatar=":material/person:"):
        st.markdown(render.safe_markdown(turn.question))
    with st.chat_message("assistant", avatar=":material/query_stats:"):
        answer_card(lore, turn, prefs)


# --- the page -------------------------------------------------------------------------------


def main() -> None:
    st.set_page_config(page_title="LORE", page_icon=":material/query_stats:", layout="wide",
                       initial_sidebar_state="expanded",
                       menu_items={"About": "LORE: conversational analytics grounded in a semantic layer."})
    init_state()
    try:
        identity = current_identity()
    except OperatorError as err:  # the operator named an identity header and this request has none: no fallback
        show_error(render.FriendlyError("The identity header is missing", err.message, err.hint or ""))
        return
    question = st.chat_input(PLACEHOLDER, max_chars=500) or st.session_state.pending
    st.session_state.pending = None

    from lore.project import Project

    try:
        project = Project.open(project_arg(sys.argv, os.environ))
    except LoreError as err:
        header("no project", "")
        show_error(render.friendly_error(err))
        return
    catalog_box = st.sidebar.container()
    # access control: with an access section the identity comes from a verified source only
    prefs = advanced(project.config.today or date.today(), identity, locked=project.config.access is not None)
    header(project.config.name, project.config.description)
    key = (str(project.root), prefs.model, prefs.today)
    try:
        lore = open_lore(*key)
        view = lore.for_user(prefs.user)  # what this user may see: the catalog and examples show only that
        catalog_sidebar(view, catalog_box)
    except LoreError as err:
        show_error(render.friendly_error(err))
        return
    chat = session_chat(lore, key, prefs.user)

    history: list[Turn] = st.session_state.history
    if not history and not question:
        welcome(view)
    for turn in history:
        show_turn(lore, turn, prefs)
    if question:
        with st.chat_message("user", avatar=":material/person:"):
            st.markdown(render.safe_markdown(question))
        with st.chat_message("assistant", avatar=":material/query_stats:"):
            turn = ask(lore, chat, question)
            history.append(turn)
            answer_card(lore, turn, prefs)


if __name__ == "__main__":
    main()
