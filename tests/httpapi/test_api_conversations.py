"""Conversations over HTTP: ask, follow up (from the store, in any process), stream the stages, vote, chart.

Numbers are checked against SQL written by hand on a plain DuckDB copy of the warehouse (``raw_db``); the demo
project pins today to 2026-11-01.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from access_project import ANA, BO, HOURS_BY_REGION_2026 as BY_REGION, OPS
from api_helpers import assert_problem, auth, start
from fastapi.testclient import TestClient

from lore.settings import Settings
from lore.types import Answer
from ui.api.app import STAGE_EVENTS, create_app
from ui.api.service import Service

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def by_first_column(answer: dict[str, Any]) -> dict[str, float]:
    assert answer["status"] == "answered", (answer["status"], answer["message"])
    return {row[0]: row[-1] for row in answer["rows"]}


def hand(raw_db: Any, sql: str) -> dict[str, float]:
    return {row[0]: float(row[1]) for row in raw_db.execute(sql).fetchall()}


def assert_same_numbers(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want), (got, want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key


def events_of(text: str) -> list[tuple[str, str]]:
    """(event, data) of each Server-Sent Event in a response body."""
    found = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            found.append((fields["event"], fields.get("data", "")))
    return found


def test_a_question_and_its_follow_up_give_the_warehouse_numbers(client: TestClient, tokens: dict[str, str],
                                                                  raw_db: Any) -> None:
    conversation = start(client, tokens[OPS])
    asked = client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                        json={"question": "streaming hours by region in 2026"})
    assert asked.status_code == 200, asked.text
    first = asked.json()
    assert_same_numbers(by_first_column(first), hand(raw_db, BY_REGION.format(extra="")))
    # the Python API's Answer, field for field, without its trace unless asked for
    assert set(first) == set(Answer.model_fields) - {"trace"}
    assert first["conversation_id"] == conversation and first["user"] == OPS and first["sql"]

    follow = client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                         json={"question": "now only for premium accounts"}).json()
    assert_same_numbers(by_first_column(follow), hand(raw_db, BY_REGION.format(extra="AND a.plan = 'premium'")))
    assert any(g["kind"] == "context" for g in follow["plan"]["groundings"]), "the follow-up used the previous plan"

    listed = client.get(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS])).json()
    assert [a["id"] for a in listed["answers"]] == [first["id"], follow["id"]]
    assert all("trace" not in a for a in listed["answers"])
    explained = client.get(f"/v1/answers/{follow['id']}?explain=true", headers=auth(tokens[OPS])).json()
    assert explained["trace"]["guarded"]["sql"] == follow["sql"] and explained["rows"] == follow["rows"]


def test_a_follow_up_is_answered_by_another_process_from_the_store(client: TestClient, tokens: dict[str, str],
                                                                   api_project: Path, raw_db: Any) -> None:
    """Nothing about a conversation stays in a process: a second service (another worker's) takes the next turn."""
    conversation = start(client, tokens[OPS])
    client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                json={"question": "streaming hours by region in 2026"})
    other = Service(api_project, Settings(project=api_project, answer_cache_disk_mb=0))
    try:
        second = TestClient(create_app(api_project, service=other))
        follow = second.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                             json={"question": "now only for premium accounts"}).json()
    finally:
        other.close()
    assert_same_numbers(by_first_column(follow), hand(raw_db, BY_REGION.format(extra="AND a.plan = 'premium'")))


def test_answers_are_computed_in_the_askers_scope(client: TestClient, tokens: dict[str, str], raw_db: Any) -> None:
    conversation = start(client, tokens[ANA])
    answer = client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[ANA]),
                         json={"question": "streaming hours by region in 2026"}).json()
    everyone = hand(raw_db, BY_REGION.format(extra=""))
    assert_same_numbers(by_first_column(answer), {"EMEA": everyone["EMEA"]})


def test_streaming_sends_each_stage_in_order_then_the_answer(client: TestClient, tokens: dict[str, str],
                                                             raw_db: Any) -> None:
    conversation = start(client, tokens[OPS])
    with client.stream("POST", f"/v1/conversations/{conversation}/messages/stream?explain=true",
                       headers=auth(tokens[OPS]), json={"question": "streaming session count by device in 2026"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = events_of(r.read().decode())
    names = [name for name, _ in events]
    assert names == ["retrieved", "planned", "cache_checked", "compiled", "guarded", "ran", "charted", "answered",
                     "answer"], names
    answer = json.loads(events[-1][1])
    # one event per stage the answer's trace timed, in the same order, with the same milliseconds
    timed = [(STAGE_EVENTS[t["stage"]], t["ms"]) for t in answer["trace"]["timings"]]
    assert timed == [(name, json.loads(data)["ms"]) for name, data in events[:-1]]
    expected = {row[0]: float(row[1]) for row in raw_db.execute(
        "SELECT device_type, COUNT(*) FROM streaming_sessions WHERE session_date BETWEEN DATE '2026-01-01' AND "
        "DATE '2026-12-31' GROUP BY 1").fetchall()}
    assert_same_numbers(by_first_column(answer), expected)
    stored = client.get(f"/v1/answers/{answer['id']}", headers=auth(tokens[OPS])).json()
    assert stored == {k: v for k, v in answer.items() if k != "trace"}


def test_streaming_into_someone_elses_conversation_is_not_found(client: TestClient, tokens: dict[str, str]) -> None:
    conversation = start(client, tokens[OPS])
    refused = client.post(f"/v1/conversations/{conversation}/messages/stream", headers=auth(tokens[BO]),
                          json={"question": "streaming hours in 2026"})
    assert_problem(refused, 404, "not_found")


def test_a_principal_cannot_read_or_continue_another_principals_conversation(client: TestClient,
                                                                            tokens: dict[str, str]) -> None:
    conversation = start(client, tokens[ANA])
    answer = client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[ANA]),
                         json={"question": "streaming hours by region in 2026"}).json()
    for method, path, body in (("GET", f"/v1/answers/{answer['id']}", None),
                               ("GET", f"/v1/answers/{answer['id']}/chart", None),
                               ("GET", f"/v1/conversations/{conversation}/messages", None),
                               ("POST", f"/v1/conversations/{conversation}/messages", {"question": "and in 2025"}),
                               ("POST", f"/v1/answers/{answer['id']}/feedback", {"rating": 1})):
        refused = client.request(method, path, headers=auth(tokens[BO]), json=body)
        assert_problem(refused, 404, "not_found")
    assert client.get(f"/v1/answers/{answer['id']}", headers=auth(tokens[ANA])).status_code == 200


def test_feedback_follows_the_rules_of_lore_feedback(client: TestClient, tokens: dict[str, str]) -> None:
    conversation = start(client, tokens[OPS])
    answer = client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                         json={"question": "cloud cost by team last month"}).json()
    assert answer["status"] == "answered", answer["message"]

    up = client.post(f"/v1/answers/{answer['id']}/feedback", headers=auth(tokens[OPS]), json={"rating": 1})
    assert up.status_code == 201, up.text
    vote = up.json()
    assert vote["answer_id"] == answer["id"] and vote["rating"] == 1 and vote["user"] == OPS
    assert vote["verified"] is True and vote["principal"] == f"user:{OPS}"
    assert vote["nomination_status"] == "pending" and vote["nomination_id"]

    down = client.post(f"/v1/answers/{answer['id']}/feedback", headers=auth(tokens[OPS]),
                       json={"rating": -1, "comment": "only the platform team",
                             "correction": "SELECT team_id, SUM(cost_usd) FROM cloud_costs GROUP BY 1"})
    assert down.status_code == 201, down.text
    assert down.json()["correction"]["sql"].startswith("SELECT team_id") and down.json()["nomination_id"]

    bad = assert_problem(client.post(f"/v1/answers/{answer['id']}/feedback", headers=auth(tokens[OPS]),
                                     json={"rating": 2}), 422, "asker")
    assert bad["detail"] == "A rating is +1 (thumbs up) or -1 (thumbs down), got 2."
    wrong = assert_problem(client.post(f"/v1/answers/{answer['id']}/feedback", headers=auth(tokens[OPS]),
                                       json={"rating": 1, "correction": "SELECT 1"}), 422, "asker")
    assert "thumbs down" in wrong["detail"]
    assert_problem(client.post(f"/v1/answers/{answer['id']}/feedback", headers=auth(tokens[OPS]),
                               json={"rating": True}), 422, "invalid_request")

    follow = client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                         json={"question": "now only for the data org"}).json()
    noted = client.post(f"/v1/answers/{follow['id']}/feedback", headers=auth(tokens[OPS]), json={"rating": 1}).json()
    assert noted["nomination_id"] is None and "Follow-up questions are not nominated" in noted["note"]


def test_the_chart_of_an_answer_as_vega_lite_and_png(client: TestClient, tokens: dict[str, str]) -> None:
    conversation = start(client, tokens[OPS])
    bar = client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                      json={"question": "streaming hours by device in 2026"}).json()
    assert bar["chart_kind"] == "bar"
    spec = client.get(f"/v1/answers/{bar['id']}/chart", headers=auth(tokens[OPS]))
    assert spec.status_code == 200 and spec.headers["content-type"] == "application/json"
    assert "vega-lite" in spec.json()["$schema"] and spec.json() == bar["chart"]
    png = client.get(f"/v1/answers/{bar['id']}/chart.png", headers=auth(tokens[OPS]))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(PNG_SIGNATURE)

    table = client.post(f"/v1/conversations/{start(client, tokens[OPS])}/messages", headers=auth(tokens[OPS]),
                        json={"question": "list the teams"}).json()
    assert table["status"] == "answered" and table["chart_kind"] == "table"
    assert_problem(client.get(f"/v1/answers/{table['id']}/chart", headers=auth(tokens[OPS])), 404, "no_chart")
    assert_problem(client.get(f"/v1/answers/{table['id']}/chart.png", headers=auth(tokens[OPS])), 404, "no_chart")


def test_refusals_and_long_questions_are_answers_as_in_the_python_api(client: TestClient, api_service: Service,
                                                                      tokens: dict[str, str]) -> None:
    conversation = start(client, tokens[OPS])
    refused = client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                          json={"question": "delete all accounts"}).json()
    assert refused["status"] == "refused"
    limit = api_service.settings.max_question_chars
    long = client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                       json={"question": "hours " * (limit // 6 + 1)}).json()
    assert long["status"] == "refused" and f"{limit:,} characters" in long["message"]
    assert_problem(client.post(f"/v1/conversations/{conversation}/messages", headers=auth(tokens[OPS]),
                               json={"question": 42}), 422, "invalid_request")
    assert_problem(client.post("/v1/conversations/nope/messages", headers=auth(tokens[OPS]),
                               json={"question": "hours"}), 404, "not_found")
