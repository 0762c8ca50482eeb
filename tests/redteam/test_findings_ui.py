"""Red-team findings against the chat page, driven through Streamlit's AppTest."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from ui.cli import APP_PATH

ACCESS = {"groups": {"emea": {"members": ["ana@example.com"], "rows": ["countries.region = 'EMEA'"]}}}


@pytest.mark.parametrize("with_access", [True, False], ids=["access section", "no access section"])
def test_r6_a_request_without_the_configured_identity_header_is_refused(
        demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_access: bool) -> None:
    """R6: with LORE_UI_IDENTITY_HEADER set, a request that lacks the header gets no identity (no LORE_USER, no
    OS user): the page says the header is missing and what the operator must fix, and asks nothing."""
    project = tmp_path / "project"
    shutil.copytree(demo_dir, project)
    if with_access:
        config = yaml.safe_load((project / "lore.yaml").read_text())
        config["access"] = ACCESS
        (project / "lore.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("LORE_PROJECT", str(project))
    monkeypatch.setenv("LORE_UI_IDENTITY_HEADER", "X-Forwarded-Email")
    monkeypatch.setenv("LORE_USER", "ceo@example.com")  # the operator's name must not stand in for the missing header
    monkeypatch.setattr(sys, "argv", [str(APP_PATH)])
    at = AppTest.from_file(str(APP_PATH), default_timeout=180)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    shown = " ".join(e.value for e in at.error).replace("\\", "")  # the page escapes markdown
    assert "X-Forwarded-Email" in shown and "does not carry it" in shown
    assert "LORE_UI_IDENTITY_HEADER" in shown and "proxy" in shown  # what the operator must fix
    assert not at.chat_input  # nothing can be asked
    assert all(t.value != "ceo@example.com" for t in at.text_input)  # no fallback identity anywhere on the page
    assert not at.sidebar.expander  # the catalog was not shown for anybody


def test_r6_a_signed_in_user_still_gets_in_when_a_header_is_configured(
        demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """R6: the refusal is about the missing header only: Streamlit's own sign-in is still an identity."""
    project = tmp_path / "project"
    shutil.copytree(demo_dir, project)
    config = yaml.safe_load((project / "lore.yaml").read_text())
    config["access"] = ACCESS
    (project / "lore.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("LORE_PROJECT", str(project))
    monkeypatch.setenv("LORE_UI_IDENTITY_HEADER", "X-Forwarded-Email")
    monkeypatch.setattr(sys, "argv", [str(APP_PATH)])
    at = AppTest.from_file(str(APP_PATH), default_timeout=180)
    at.user = {"is_logged_in": True, "email": "ana@example.com"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    identity = [t for t in at.text_input if t.label == "Signed in as"]
    assert identity and identity[0].value == "ana@example.com"
    assert at.chat_input
