"""Fixtures: the real Bolt app served over HTTP on loopback, talking to a Slack Web API stand-in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_standin import TEAM, Harness, serve

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


@pytest.fixture
def harness(slack_lore: Lore, slack_project: Path) -> Iterator[Harness]:
    yield from serve(slack_lore, slack_project)
