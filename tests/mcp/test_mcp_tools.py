"""The MCP tools in process, through the SDK's client: the catalog, queries, SQL, questions and votes, each in the
principal's access scope. Numbers are checked against SQL written by hand on a plain DuckDB copy (``raw_db``)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from mcp.server.mcpserver import MCPServer
from access_project import ANA, BO, HOURS_BY_REGION_2026 as HAND_HOURS_BY_REGION, OPS
from mcp_helpers import call, calls, error_text, ok

from ui.api.service import Service
from lore.errors import OperatorError, SemanticLayerError
from lore.semantic.issues import Issue
from ui.api.problems import from_error
from ui.mcp.server import build_server, problem_text

TOOLS = {"list_metrics", "describe_metric", "list_dimensions", "query_metrics", "compile_sql", "ask", "submit_feedback"}


@pytest.fixture(scope="module")
def servers(mcp_service: Service) -> dict[str, MCPServer]:
    """One stdio-style server per principal, over the session's open project."""
    return {who: build_server(mcp_service.project.root, who, service=mcp_service) for who in (ANA, BO, OPS)}


def hand(raw_db: Any, sql: str) -> dict[str, float]:
    return {row[0]: float(row[1]) for row in raw_db.execute(sql).fetchall()}


def by_first_column(rows: list[list[Any]]) -> dict[str, float]:
    return {row[0]: row[-1] for row in rows}


def assert_same_numbers(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want), (got, want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key


def test_the_tools_and_their_typed_inputs(servers: dict[str, MCPServer]) -> None:
    import anyio
    from mcp import Client

    async def listed() -> Any:
        async with Client(servers[OPS]) as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in anyio.run(listed)}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.output_schema, tool.name
    query = tools["query_metrics"].input_schema
    assert query["required"] == ["metrics"]
    assert {"metrics", "dimensions", "filters", "order_by", "limit"} <= set(query["properties"])
    assert all(query["properties"][p].get("description") for p in ("metrics", "dimensions", "filters", "order_by"))
    assert "dialect" in tools["compile_sql"].input_schema["properties"]
    assert tools["submit_feedback"].input_schema["properties"]["rating"]["enum"] == [1, -1]


def test_the_catalog_is_the_principals(servers: dict[str, MCPServer], mcp_service: Service) -> None:
    everything = sorted(mcp_service.lore.layer.metrics)
    seen = {who: ok(call(servers[who], "list_metrics"))["metrics"] for who in (OPS, BO)}
    assert sorted(m["name"] for m in seen[OPS]) == everything
    assert sorted(m["name"] for m in seen[BO]) == [m for m in everything if m != "cloud_cost"]
    hours = next(m for m in seen[OPS] if m["name"] == "total_streaming_hours")
    assert set(hours) == {"name", "label", "description", "unit", "format"} and hours["unit"] == "hours"

    detail = ok(call(servers[OPS], "describe_metric", name="cloud_cost"))
    assert detail["agg"] == "sum" and detail["source"] and "teams.team_name" in {d["ref"] for d in detail["dimensions"]}
    hidden = error_text(call(servers[BO], "describe_metric", name="cloud_cost"))
    assert "cloud_cost" in hidden and "[not_found]" in hidden


def test_dimensions_reachable_from_every_metric(servers: dict[str, MCPServer]) -> None:
    hours = ok(call(servers[OPS], "list_dimensions", metrics=["total_streaming_hours"]))
    refs = {d["ref"]: d for d in hours["dimensions"]}
    assert {"metric_time", "countries.region", "accounts.plan", "streaming_sessions.device_type"} <= set(refs)
    assert not any(ref.startswith("teams.") for ref in refs)
    assert refs["metric_time"]["grains"] == ["day", "week", "month", "quarter", "year"]
    both = ok(call(servers[OPS], "list_dimensions", metrics=["total_streaming_hours", "cloud_cost"]))
    assert not any(d["ref"].startswith(("countries.", "teams.")) for d in both["dimensions"])


def test_query_metrics_gives_the_warehouse_numbers(servers: dict[str, MCPServer], raw_db: Any) -> None:
    query = {"metrics": ["total_streaming_hours"], "dimensions": ["countries.region"],
             "filters": ["metric_time >= '2026-01-01'", "metric_time <= '2026-12-31'"],
             "order_by": ["-total_streaming_hours"]}
    out = ok(call(servers[OPS], "query_metrics", **query))
    assert [c["name"] for c in out["columns"]] == ["region", "total_streaming_hours"]
    assert_same_numbers(by_first_column(out["rows"]), hand(raw_db, HAND_HOURS_BY_REGION.format(extra="")))
    assert [r[1] for r in out["rows"]] == sorted((r[1] for r in out["rows"]), reverse=True)

    premium = ok(call(servers[OPS], "query_metrics", **{**query, "limit": 2, "filters": [
        *query["filters"], {"ref": "accounts.plan", "op": "in", "values": ["premium"]}]}))
    want = hand(raw_db, HAND_HOURS_BY_REGION.format(extra="AND a.plan = 'premium'"))
    top2 = dict(sorted(want.items(), key=lambda kv: -kv[1])[:2])
    assert_same_numbers(by_first_column(premium["rows"]), top2)

    emea = ok(call(servers[ANA], "query_metrics", **query))  # ana sees EMEA's rows only
    assert_same_numbers(by_first_column(emea["rows"]), {"EMEA": want_emea(raw_db)})


def want_emea(raw_db: Any) -> float:
    return hand(raw_db, HAND_HOURS_BY_REGION.format(extra="AND c.region = 'EMEA'"))["EMEA"]


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery"])
def test_compile_sql_in_the_dialect_asked(servers: dict[str, MCPServer], mcp_service: Service, dialect: str) -> None:
    query = {"metrics": ["total_streaming_hours"], "dimensions": ["countries.region"],
             "filters": ["accounts.plan = 'premium'"], "order_by": ["-total_streaming_hours"], "limit": 3}
    out = ok(call(servers[OPS], "compile_sql", **query, dialect=dialect))
    assert out["dialect"] == dialect
    tree = sqlglot.parse_one(out["sql"], read=dialect)
    assert isinstance(tree, sqlglot.exp.Query)
    expected = mcp_service.lore.semantic.compile(query["metrics"], query["dimensions"], query["filters"],
                                                 query["order_by"], query["limit"], dialect=dialect)
    assert out["sql"] == expected.sql


def test_an_unknown_metric_is_a_tool_error_with_the_closest_names(servers: dict[str, MCPServer]) -> None:
    for tool, arguments in (("query_metrics", {"metrics": ["total_streaming_hour"]}),
                            ("compile_sql", {"metrics": ["total_streaming_hour"], "dialect": "postgres"}),
                            ("list_dimensions", {"metrics": ["total_streaming_hour"]}),
                            ("describe_metric", {"name": "total_streaming_hour"})):
        text = error_text(call(servers[OPS], tool, **arguments))
        assert "'total_streaming_hour'" in text, (tool, text)
        assert "Did you mean: total_streaming_hours," in text or "Closest: total_streaming_hours," in text, (tool, text)
    bad_filter = error_text(call(servers[OPS], "query_metrics", metrics=["total_streaming_hours"],
                                 filters=["countries.regio = 'EMEA'"]))
    assert "countries.region" in bad_filter
    wrong_type = error_text(call(servers[OPS], "query_metrics", metrics="total_streaming_hours", limit=0))
    assert "limit" in wrong_type


def test_a_hidden_metric_cannot_be_listed_or_queried(servers: dict[str, MCPServer]) -> None:
    query = {"metrics": ["cloud_cost"], "dimensions": ["teams.team_name"]}
    assert "cloud_cost" not in {m["name"] for m in ok(call(servers[BO], "list_metrics"))["metrics"]}
    for tool in ("query_metrics", "compile_sql"):
        refused = error_text(call(servers[BO], tool, **query))
        assert "cloud_cost" in refused and "[unknown_reference]" in refused
        assert ok(call(servers[OPS], tool, **query))["sql"]
    error_text(call(servers[BO], "list_dimensions", metrics=["cloud_cost"]))


def test_ask_and_follow_up_in_one_conversation(servers: dict[str, MCPServer], raw_db: Any) -> None:
    first, follow = calls(servers[OPS], ("ask", {"question": "streaming hours by region in 2026"}),
                          ("ask", {"question": "now only for premium accounts"}))
    first = ok(first)
    assert first["status"] == "answered" and first["answer_id"] and first["conversation_id"]
    assert_same_numbers(by_first_column(first["rows"]), hand(raw_db, HAND_HOURS_BY_REGION.format(extra="")))
    assert first["reasoning"] and 0 < first["confidence"] <= 1 and first["message"]
    # without a conversation_id, a question starts a new conversation: no premium filter yet
    assert ok(follow)["conversation_id"] != first["conversation_id"]

    follow = ok(call(servers[OPS], "ask", question="now only for premium accounts",
                     conversation_id=first["conversation_id"]))
    assert follow["conversation_id"] == first["conversation_id"] and follow["status"] == "answered"
    assert_same_numbers(by_first_column(follow["rows"]),
                        hand(raw_db, HAND_HOURS_BY_REGION.format(extra="AND a.plan = 'premium'")))

    other = error_text(call(servers[BO], "ask", question="and by device", conversation_id=first["conversation_id"]))
    assert "[not_found]" in other  # another person's conversation is not theirs to see


def test_submit_feedback_follows_lore_feedback_rules(servers: dict[str, MCPServer], mcp_service: Service) -> None:
    answer = ok(call(servers[OPS], "ask", question="streaming hours by device in 2026"))
    vote = ok(call(servers[OPS], "submit_feedback", answer_id=answer["answer_id"], rating=1, comment="right"))
    assert vote["answer_id"] == answer["answer_id"] and vote["rating"] == 1 and vote["user"] == OPS
    assert vote["verified"] is False  # the operator named the principal: not an authenticated identity
    assert vote["nomination_status"] in {"pending", "verified", "none", None}

    again = ok(call(servers[OPS], "submit_feedback", answer_id=answer["answer_id"], rating=-1,
                    correction={"metrics": ["total_streaming_hours"], "dimensions": ["streaming_sessions.device_type"]}))
    assert again["rating"] == -1 and again["vote_id"] != vote["vote_id"]
    assert "rating" in error_text(call(servers[OPS], "submit_feedback", answer_id=answer["answer_id"], rating=2))
    assert "[not_found]" in error_text(call(servers[BO], "submit_feedback", answer_id=answer["answer_id"], rating=1))
    assert "[not_found]" in error_text(call(servers[OPS], "submit_feedback", answer_id="nope", rating=1))


def test_operator_and_metric_owner_details_stay_in_the_log() -> None:
    """What a tool error says for errors only the operator or the metric owner can fix (as the HTTP API)."""
    operator = problem_text(from_error(OperatorError("cannot open /srv/secret/warehouse.duckdb", hint="set LORE_X")))
    assert "/srv/secret" not in operator and "LORE_X" not in operator and "operator" in operator
    issue = Issue(code="bad_expr", message="metric margin: SUM(cost_internal)", file="semantic/x.yaml", line=3)
    owner = problem_text(from_error(SemanticLayerError([issue])))
    assert "cost_internal" not in owner and "lore semantic validate" in owner
