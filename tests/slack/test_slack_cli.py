"""`lore slack`: registration, help, and clear errors for missing credentials."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lore.errors import OperatorError
from lore.settings import Settings
from ui.slack.app import build_app, require_credentials, slack_mode
from ui.slack.cli import register

ENV = ("LORE_SLACK_BOT_TOKEN", "LORE_SLACK_SIGNING_SECRET", "LORE_SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """LORE."""

    register(app)
    return app


def test_registered_as_a_lore_command() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="lore.commands")}
    assert found.get("slack") == "ui.slack.cli:register"


def test_help_names_the_settings(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["slack", "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0
    for word in ("--project", "--port", "--host", "LORE_SLACK_BOT_TOKEN", "LORE_SLACK_SIGNING_SECRET", "LORE_SLACK_APP_TOKEN",
                 "LORE_SLACK_CHANNEL_SCOPE"):
        assert word in result.output


def test_missing_token_and_secret_exit_2_naming_the_variables(cli: typer.Typer, demo_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["slack", "--project", str(demo_dir)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "LORE_SLACK_BOT_TOKEN and LORE_SLACK_SIGNING_SECRET" in " ".join(result.output.split())


def test_missing_secret_only(cli: typer.Typer, demo_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["slack", "--project", str(demo_dir)],
                                env={"LORE_SLACK_BOT_TOKEN": "xoxb-1", "COLUMNS": "300"})
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "needs LORE_SLACK_SIGNING_SECRET." in out and "xoxb-1" not in out


def test_a_bad_channel_scope_setting_exits_2_naming_the_variable(cli: typer.Typer, demo_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["slack", "--project", str(demo_dir)],
                                env={"LORE_SLACK_CHANNEL_SCOPE": "everyone", "COLUMNS": "300"})
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "LORE_SLACK_CHANNEL_SCOPE" in out and "members" in out and "ephemeral" in out


def test_modes_and_credentials() -> None:
    http = Settings(slack_bot_token="xoxb-1", slack_signing_secret="s", slack_app_token=None)
    assert slack_mode(http) == "http" and require_credentials(http).signing_secret == "s"
    socket = Settings(slack_bot_token="xoxb-1", slack_signing_secret=None, slack_app_token="xapp-1")
    assert slack_mode(socket) == "socket" and require_credentials(socket).app_token == "xapp-1"
    with pytest.raises(OperatorError, match="xapp-"):
        require_credentials(Settings(slack_bot_token="xoxb-1", slack_app_token="xoxb-wrong"))
    with pytest.raises(OperatorError, match="LORE_SLACK_BOT_TOKEN"):
        require_credentials(Settings(slack_bot_token=None, slack_app_token="xapp-1"))
    with pytest.raises(OperatorError, match="LORE_SLACK_SIGNING_SECRET"):
        require_credentials(Settings(slack_bot_token="xoxb-1", slack_signing_secret="  ", slack_app_token=None))
    assert "xoxb-1" not in repr(http)  # tokens are secrets: never printed with the settings


def test_build_app_refuses_without_credentials() -> None:
    with pytest.raises(OperatorError, match="LORE_SLACK_BOT_TOKEN and LORE_SLACK_SIGNING_SECRET"):
        build_app(lambda: None, Settings(slack_bot_token=None, slack_signing_secret=None, slack_app_token=None))  # type: ignore[arg-type, return-value]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORE_SLACK_BOT_TOKEN", "xoxb-env")
    monkeypatch.setenv("LORE_SLACK_SIGNING_SECRET", "sec-env")
    monkeypatch.setenv("LORE_SLACK_PORT", "3111")
    monkeypatch.delenv("LORE_SLACK_APP_TOKEN", raising=False)
    s = Settings()
    assert require_credentials(s).bot_token == "xoxb-env" and s.slack_port == 3111 and slack_mode(s) == "http"


def test_docs_manifest_matches_the_bot() -> None:
    import re

    import yaml

    from ui.slack.app import EVENTS_PATH, SLASH_COMMAND, WORKING_REACTION

    text = (Path(__file__).resolve().parents[2] / "docs" / "slack.md").read_text(encoding="utf-8")
    manifest = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "files:write", "im:history", "im:read", "commands",
            "reactions:write"} <= scopes
    assert {"channels:read", "groups:read", "mpim:read"} <= scopes  # conversations.members, for channel answers
    assert "LORE_SLACK_CHANNEL_SCOPE" in text
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    assert settings["interactivity"]["is_enabled"] is True
    urls = [settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"],
            *(c["url"] for c in manifest["features"]["slash_commands"])]
    assert all(url.startswith("https://") and url.endswith(EVENTS_PATH) for url in urls)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [SLASH_COMMAND]
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True  # people can DM the bot
    assert WORKING_REACTION and "lore slack --project" in text
