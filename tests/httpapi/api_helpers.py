"""Helpers of the API tests: auth headers, problem checks (the principals are in tests/access_project.py)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient



def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start(client: TestClient, token: str) -> str:
    """A new conversation's id."""
    made = client.post("/v1/conversations", headers=auth(token))
    assert made.status_code == 201, made.text
    return made.json()["id"]


def assert_problem(response: Any, status: int, code: str) -> dict:
    """An RFC 9457 problem: its media type, the fields every problem has, the status and LORE's code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"urn:lore:problem:{code}"
    assert isinstance(body["title"], str) and body["title"] and isinstance(body["detail"], str) and body["detail"]
    return body
