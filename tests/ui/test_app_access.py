"""The chat page with per-user access (issue 9): the verified identity decides the catalog and the rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from ui.cli import APP_PATH

TIMEOUT = 180
ACCESS = {"groups": {"emea": {"members": ["ana@example.com"], "hide_metrics": ["cloud_cost", "cpu_utilization"],
                              "rows": ["countries.region = 'EMEA'"]}}}


def _start(project: Path, monkeypatch: pytest.MonkeyPatch, user: str, *, signed_in: bool) -> AppTest:
    """The page as ``user``: signed in through Streamlit's authentication, or named by the operator (LORE_USER)."""
    config = yaml.safe_load((project / "lore.yaml").read_text())
    config["access"] = ACCESS
    (project / "lore.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("LORE_PROJECT", str(project))
    monkeypatch.setattr(sys, "argv", [str(APP_PATH)])
    at = AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT)
    if signed_in:
        at.user = {"is_logged_in": True, "email": user}
        monkeypatch.setenv("LORE_USER", "someone-else@example.com")  # the sign-in wins over the operator's name
    else:
        at.user = {"is_logged_in": False}
        monkeypatch.setenv("LORE_USER", user)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _catalog(at: AppTest) -> set[str]:
    return {e.label for e in at.sidebar.expander}


def test_a_restricted_user_sees_only_their_metrics_and_rows(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _start(project_copy, monkeypatch, "ana@example.com", signed_in=True)
    identity = [t for t in at.text_input if t.label == "Signed in as"]
    assert identity and identity[0].value == "ana@example.com" and identity[0].disabled
    labels = _catalog(at)
    assert "streaming hours" in {label.lower() for label in labels}
    assert not any("cloud cost" in label.lower() for label in labels)
    at.chat_input[0].set_value("streaming hours by region").run()
    assert not at.exception, [e.value for e in at.exception]
    answer = at.session_state["history"][-1].answer
    assert answer is not None and answer.status == "answered"
    assert [row[0] for row in answer.rows] == ["EMEA"]
    assert any("Your access limits the rows" in step for step in answer.reasoning)


def test_an_unlisted_user_sees_everything(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _start(project_copy, monkeypatch, "ceo@example.com", signed_in=False)
    identity = [t for t in at.text_input if t.label == "Signed in as"]
    assert identity and identity[0].value == "ceo@example.com"
    assert any("cloud cost" in label.lower() for label in _catalog(at))
    at.chat_input[0].set_value("streaming hours by region").run()
    answer = at.session_state["history"][-1].answer
    assert answer is not None and {row[0] for row in answer.rows} == {"APAC", "EMEA", "LATAM", "UCAN"}
