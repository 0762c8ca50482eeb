"""Who may call the API and how much: keys, the trusted proxy header, rate limits, body size, problem JSON, health."""

from __future__ import annotations

from access_project import ANA, BO, OPS
from api_helpers import assert_problem, auth, start
from fastapi.testclient import TestClient

from lore.settings import Settings
from ui.api.app import create_app
from ui.api.keys import TOKEN_PREFIX
from ui.api.service import Service


def test_health_needs_no_key_and_readiness_checks_every_part(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"project": "ok", "warehouse": "ok", "index": "ok",
                                                          "store": "ok"}}


def test_the_openapi_document_and_docs_page(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["info"]["title"] == "LORE"
    for path in ("/v1/conversations", "/v1/conversations/{conversation_id}/messages",
                 "/v1/conversations/{conversation_id}/messages/stream", "/v1/answers/{answer_id}",
                 "/v1/answers/{answer_id}/feedback", "/v1/answers/{answer_id}/chart", "/v1/answers/{answer_id}/chart.png",
                 "/v1/metrics", "/v1/metrics/{name}", "/v1/dimensions", "/v1/sql", "/v1/data", "/healthz", "/readyz"):
        assert path in doc["paths"], path
    # the answer's schema is the Python API's own model
    assert "Answer" in doc["components"]["schemas"] and "confidence_factors" in doc["components"]["schemas"]["Answer"]["properties"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()


def test_no_key_a_bad_key_and_a_revoked_key_are_refused(client: TestClient, api_service: Service) -> None:
    missing = assert_problem(client.get("/v1/metrics"), 401, "unauthorized")
    assert "lore keys create" in missing["hint"]
    assert client.get("/v1/metrics").headers["www-authenticate"].startswith("Bearer")
    key, token = api_service.keys.create(OPS, name="to revoke")
    assert client.get("/v1/metrics", headers=auth(token)).status_code == 200
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "not-a-token", TOKEN_PREFIX + "0" * 12 + "_" + "x" * 43):
        assert_problem(client.get("/v1/metrics", headers=auth(bad)), 401, "unauthorized")
    assert_problem(client.get("/v1/metrics", headers={"Authorization": f"Basic {token}"}), 401, "unauthorized")
    api_service.keys.revoke(key.id)
    revoked = assert_problem(client.get("/v1/metrics", headers=auth(token)), 401, "unauthorized")
    assert "revoked" in revoked["detail"]
    assert_problem(client.post("/v1/conversations", headers=auth(token)), 401, "unauthorized")


def test_tokens_are_stored_hashed(api_service: Service) -> None:
    key, token = api_service.keys.create(BO, name="hash check")
    secret = token.rsplit("_", 1)[-1] if token.count("_") == 2 else token[len(TOKEN_PREFIX) + 13:]
    store = api_service.db.path
    held = b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*"))
    assert key.id.encode() in held
    assert secret.encode() not in held and token.encode() not in held
    assert [k.principal for k in api_service.keys.list() if k.id == key.id] == [BO]


def test_each_key_has_its_own_rate(api_service: Service, tokens: dict[str, str]) -> None:
    limited = TestClient(create_app(api_service.project.root, service=api_service,
                                    settings=Settings(project=api_service.project.root, api_rate_burst=2,
                                                      api_rate_per_minute=1)))
    assert [limited.get("/v1/metrics", headers=auth(tokens[ANA])).status_code for _ in range(2)] == [200, 200]
    over = limited.get("/v1/metrics", headers=auth(tokens[ANA]))
    body = assert_problem(over, 429, "rate_limited")
    assert 50 <= int(over.headers["retry-after"]) <= 60 and "Retry-After" in body["hint"]
    assert limited.get("/v1/metrics", headers=auth(tokens[BO])).status_code == 200  # another key, another bucket
    assert limited.get("/healthz").status_code == 200  # health is never limited


def test_oversized_bodies_are_refused_before_they_are_read(client: TestClient, tokens: dict[str, str],
                                                           api_service: Service) -> None:
    conversation = start(client, tokens[OPS])
    path = f"/v1/conversations/{conversation}/messages"
    limit = api_service.settings.api_max_body_bytes
    body = b'{"question": "' + b"x" * limit + b'"}'
    declared = assert_problem(client.post(path, headers={**auth(tokens[OPS]), "Content-Type": "application/json"},
                                          content=body), 413, "too_large")
    assert f"{limit:,} bytes" in declared["detail"] and declared["instance"] == path

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(8):
            yield b"x" * (limit // 4)

    streamed = client.post(path, headers={**auth(tokens[OPS]), "Content-Type": "application/json"}, content=chunks())
    assert_problem(streamed, 413, "too_large")
    # an asked question well within the limit goes through
    assert client.post(path, headers=auth(tokens[OPS]), json={"question": "streaming hours in 2026"}).status_code == 200


def test_errors_are_problem_json(client: TestClient, tokens: dict[str, str]) -> None:
    assert_problem(client.get("/v1/nothing-here", headers=auth(tokens[OPS])), 404, "http_404")
    assert_problem(client.delete("/v1/metrics", headers=auth(tokens[OPS])), 405, "http_405")
    invalid = assert_problem(client.post("/v1/sql", headers=auth(tokens[OPS]), json={"metrics": "x", "extra": 1}),
                             422, "invalid_request")
    assert {tuple(e["loc"]) for e in invalid["errors"]} >= {("body", "metrics"), ("body", "extra")}
    unknown = assert_problem(client.post("/v1/sql", headers=auth(tokens[OPS]), json={"metrics": ["total_hours"]}),
                             422, "unknown_reference")
    assert unknown["detail"] == "unknown metric 'total_hours'" and unknown["hint"].startswith("Did you mean")
    assert unknown["instance"] == "/v1/sql"


def test_a_trusted_proxy_header_names_the_user_from_loopback_only(api_service: Service,
                                                                  tokens: dict[str, str]) -> None:
    app = create_app(api_service.project.root, service=api_service,
                     settings=Settings(project=api_service.project.root, api_trust_header="X-Forwarded-User"))
    local = TestClient(app, client=("127.0.0.1", 50000))
    names = {m["name"] for m in local.get("/v1/metrics", headers={"X-Forwarded-User": BO}).json()["metrics"]}
    assert "cloud_cost" not in names and "total_streaming_hours" in names
    made = local.post("/v1/conversations", headers={"X-Forwarded-User": "Bo@Example.com "}).json()
    assert made["user"] == "Bo@Example.com"
    assert local.get(f"/v1/conversations/{made['id']}/messages", headers={"X-Forwarded-User": BO}).status_code == 200
    assert_problem(local.get("/v1/metrics"), 401, "unauthorized")  # without the header: a key, as always
    assert local.get("/v1/metrics", headers=auth(tokens[OPS])).status_code == 200
    remote = TestClient(app, client=("192.0.2.10", 50000))
    refused = assert_problem(remote.get("/v1/metrics", headers={"X-Forwarded-User": OPS}), 401, "unauthorized")
    assert "proxy on this machine" in refused["detail"]
    # the default app does not read the header at all
    plain = TestClient(create_app(api_service.project.root, service=api_service), client=("127.0.0.1", 50000))
    assert_problem(plain.get("/v1/metrics", headers={"X-Forwarded-User": OPS}), 401, "unauthorized")
