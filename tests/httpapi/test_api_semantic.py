"""The semantic API over HTTP (metrics, dimensions, SQL, data), each in the caller's access scope."""

from __future__ import annotations

from typing import Any

import pytest
from access_project import ANA, BO, OPS
from api_helpers import assert_problem, auth
from fastapi.testclient import TestClient

from ui.api.service import Service

HOURS_BY_REGION = {"metrics": ["total_streaming_hours"], "dimensions": ["countries.region"],
                   "order_by": ["countries.region"]}
HAND_HOURS_BY_REGION = """
    SELECT c.region, SUM(s.streaming_hours)
    FROM streaming_sessions s
    JOIN accounts a ON a.account_id = s.account_id
    JOIN countries c ON c.country_iso_code = a.country_iso_code
    GROUP BY 1 ORDER BY 1"""


def test_the_metric_catalog_is_the_callers(client: TestClient, tokens: dict[str, str], api_service: Service) -> None:
    everything = sorted(api_service.lore.layer.metrics)
    seen = {who: sorted(m["name"] for m in client.get("/v1/metrics", headers=auth(tokens[who])).json()["metrics"])
            for who in (OPS, BO, ANA)}
    assert seen[OPS] == everything
    assert seen[BO] == [m for m in everything if m != "cloud_cost"]
    assert "cloud_cost" not in seen[ANA] and "total_streaming_hours" in seen[ANA]  # facts not tied to a country

    detail = client.get("/v1/metrics/cloud_cost", headers=auth(tokens[OPS]))
    assert detail.status_code == 200 and detail.json()["agg"] == "sum"
    assert "teams.team_name" in {d["ref"] for d in detail.json()["dimensions"]}
    hidden = assert_problem(client.get("/v1/metrics/cloud_cost", headers=auth(tokens[BO])), 404, "not_found")
    assert "cloud_cost" not in hidden.get("suggestions", [])
    typo = assert_problem(client.get("/v1/metrics/total_streaming_hour", headers=auth(tokens[BO])), 404, "not_found")
    assert typo["suggestions"][0] == "total_streaming_hours"


def test_a_hidden_metric_cannot_be_queried(client: TestClient, tokens: dict[str, str]) -> None:
    query = {"metrics": ["cloud_cost"], "dimensions": ["teams.team_name"]}
    for path in ("/v1/sql", "/v1/data"):
        refused = assert_problem(client.post(path, headers=auth(tokens[BO]), json=query), 422, "unknown_reference")
        assert "cloud_cost" in refused["detail"]
        assert client.post(path, headers=auth(tokens[OPS]), json=query).status_code == 200
    assert_problem(client.get("/v1/dimensions?metrics=cloud_cost", headers=auth(tokens[BO])), 422, "unknown_reference")


def test_dimensions_reachable_from_the_metrics(client: TestClient, tokens: dict[str, str]) -> None:
    hours = client.get("/v1/dimensions?metrics=total_streaming_hours", headers=auth(tokens[OPS])).json()
    refs = {d["ref"]: d for d in hours["dimensions"]}
    assert hours["metrics"] == ["total_streaming_hours"]
    assert {"metric_time", "countries.region", "accounts.plan", "streaming_sessions.device_type"} <= set(refs)
    assert not any(ref.startswith("teams.") for ref in refs)
    assert refs["metric_time"]["grains"] == ["day", "week", "month", "quarter", "year"]
    assert refs["countries.region"]["kind"] == "categorical" and refs["countries.region"]["type"] == "VARCHAR"
    both = client.get("/v1/dimensions?metrics=total_streaming_hours,cloud_cost", headers=auth(tokens[OPS])).json()
    assert not any(d["ref"].startswith(("countries.", "teams.")) for d in both["dimensions"])
    typo = assert_problem(client.get("/v1/dimensions?metrics=total_streaming_hour", headers=auth(tokens[OPS])),
                          422, "unknown_reference")
    assert "total_streaming_hours" in typo["suggestions"]


def test_sql_in_a_dialect_is_what_lore_sql_prints(client: TestClient, tokens: dict[str, str],
                                                  api_service: Service) -> None:
    query = {**HOURS_BY_REGION, "filters": ["accounts.plan = 'premium'"], "dialect": "postgres"}
    out = client.post("/v1/sql", headers=auth(tokens[OPS]), json=query)
    assert out.status_code == 200, out.text
    body = out.json()
    expected = api_service.lore.semantic.compile(query["metrics"], query["dimensions"], query["filters"],
                                                 query["order_by"], dialect="postgres")
    assert body["sql"] == expected.sql and body["dialect"] == "postgres"
    assert [c["name"] for c in body["columns"]] == ["region", "total_streaming_hours"]
    assert body["guarded_sql"] is None and body["row_filters"] == []

    duck = client.post("/v1/sql", headers=auth(tokens[ANA]), json=HOURS_BY_REGION).json()
    assert duck["dialect"] == "duckdb" and "EMEA" in duck["guarded_sql"] and "EMEA" not in duck["sql"]
    assert duck["row_filters"] == ["countries.region = 'EMEA'"]
    unknown = assert_problem(client.post("/v1/sql", headers=auth(tokens[OPS]), json={**query, "dialect": "postgress"}),
                             422, "unknown_reference")
    assert "postgres" in unknown["suggestions"]


def test_data_runs_through_the_guard_in_the_callers_rows(client: TestClient, tokens: dict[str, str],
                                                         raw_db: Any) -> None:
    expected = [[region, pytest.approx(float(hours), rel=1e-9)]
                for region, hours in raw_db.execute(HAND_HOURS_BY_REGION).fetchall()]
    everyone = client.post("/v1/data", headers=auth(tokens[OPS]), json=HOURS_BY_REGION).json()
    assert [c["name"] for c in everyone["columns"]] == ["region", "total_streaming_hours"]
    assert everyone["rows"] == expected and everyone["truncated"] is False
    emea = client.post("/v1/data", headers=auth(tokens[ANA]), json=HOURS_BY_REGION).json()
    assert emea["rows"] == [row for row in expected if row[0] == "EMEA"]
    assert "EMEA" in emea["sql"]
    assert_problem(client.post("/v1/data", headers=auth(tokens[OPS]), json={**HOURS_BY_REGION, "dialect": "postgres"}),
                   422, "invalid_request")
    assert_problem(client.post("/v1/data", headers=auth(tokens[OPS]), json={"metrics": []}), 422, "invalid_request")
    bad_filter = client.post("/v1/data", headers=auth(tokens[OPS]),
                             json={**HOURS_BY_REGION, "filters": ["countries.regio = 'EMEA'"]})
    assert bad_filter.status_code == 422 and bad_filter.json()["code"] in ("unknown_reference", "filter_error")


def test_a_repeated_query_comes_from_the_answer_cache_in_the_callers_scope(client: TestClient,
                                                                          tokens: dict[str, str]) -> None:
    """The same semantic query again is served from the answer cache with the same rows; another scope (a row
    filter) never sees the cached rows of a wider one."""
    query = {**HOURS_BY_REGION, "filters": ["metric_time >= '2025-01-01'"]}
    first = client.post("/v1/data", headers=auth(tokens[OPS]), json=query).json()
    again = client.post("/v1/data", headers=auth(tokens[OPS]), json=query).json()
    assert first["cache_hit"] is False and again["cache_hit"] is True
    assert again["rows"] == first["rows"] and again["sql"] == first["sql"] and len(first["rows"]) == 4
    emea = client.post("/v1/data", headers=auth(tokens[ANA]), json=query).json()
    assert emea["cache_hit"] is False and [r[0] for r in emea["rows"]] == ["EMEA"]
    other = client.post("/v1/data", headers=auth(tokens[OPS]), json={**query, "order_by": ["-countries.region"]}).json()
    assert other["cache_hit"] is False and other["rows"] == first["rows"][::-1]
