"""Fixtures: the real Bolt app served over HTTP on loopback, talking to a Slack Web API stand-in."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_standin import TEAM, Reply, SlackStandIn, bot_settings, click_body, event_body, post, slash_body

from lore import Lore


@pytest.fixture(scope="session")
def slack_project(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo project (votes write into its .lore/ folder)."""
    folder = tmp_path_factory.mktemp("slack") / "project"
    shutil.copytree(demo_dir, folder)
    return folder


@pytest.fixture(scope="session")
def slack_access_project(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo project whose lore.yaml limits one Slack user to EMEA rows (issue 9)."""
    import yaml

    folder = tmp_path_factory.mktemp("slack-access") / "project"
    shutil.copytree(demo_dir, folder)
    config = yaml.safe_load((folder / "lore.yaml").read_text())
    config["access"] = {"users": {"ana@example.com": {"identities": [f"slack:{TEAM}:U0EMEA"],
                                                      "hide_metrics": ["cloud_cost"],
                                                      "rows": ["countries.region = 'EMEA'"]}}}
    (folder / "lore.yaml").write_text(yaml.safe_dump(config))
    return folder


@pytest.fixture
def access_harness(slack_access_project: Path) -> Iterator[Harness]:
    lore = Lore.open(slack_access_project)
    try:
        yield from serve(lore, slack_access_project)
    finally:
        lore.close()


@pytest.fixture(scope="session")
def slack_lore(slack_project: Path) -> Iterator[Lore]:
    lore = Lore.open(slack_project)
    _ = lore.planner, lore.compiler  # build the index once for the whole module
    yield lore
    lore.close()


@dataclass
class Harness:
    slack: SlackStandIn
    bot: Any
    url: str

    def event(self, event: dict[str, Any], event_id: str, **kwargs: Any) -> Reply:
        return post(self.url, event_body(event, event_id), content_type="application/json", **kwargs)

    def command(self, text: str, **kwargs: Any) -> Reply:
        body = slash_body(text, response_url=f"http://127.0.0.1:{self.slack.port}/respond/1",
                          **{k: kwargs.pop(k) for k in ("channel", "user") if k in kwargs})
        return post(self.url, body, content_type="application/x-www-form-urlencoded", **kwargs)

    def click(self, action_id: str, value: str, *, message: dict[str, Any], channel: str, action_ts: str,
              user: str = "U0VOTER", **kwargs: Any) -> Reply:
        body = click_body(action_id, value, message=message, channel=channel, action_ts=action_ts, user=user)
        return post(self.url, body, content_type="application/x-www-form-urlencoded", **kwargs)

    def settle(self, quiet: float = 0.4, timeout: float = 15.0) -> None:
        """Wait until the bot has made no Web API call for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            count = len(self.slack.calls)
            if count == seen:
                return
            seen = count
            time.sleep(quiet)


@pytest.fixture
def harness(slack_lore: Lore, slack_project: Path) -> Iterator[Harness]:
    yield from serve(slack_lore, slack_project)


def serve(lore: Lore, project: Path) -> Iterator[Harness]:
    """The bot for ``lore`` over HTTP on loopback, with a Web API stand-in; stopped when the generator closes."""
    from slack_sdk import WebClient

    from ui.slack.app import SlackBot, build_app, serve_http

    slack = SlackStandIn().start()
    client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=10)
    bot = SlackBot(lambda: lore)
    app = build_app(lambda: lore, bot_settings(project), client=client, bot=bot)
    server = serve_http(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    h = Harness(slack=slack, bot=bot, url=f"http://127.0.0.1:{server.server_address[1]}/slack/events")
    try:
        yield h
    finally:
        h.settle(quiet=0.3, timeout=10)
        server.shutdown()
        server.server_close()
        slack.stop()
