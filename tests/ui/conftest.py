"""Fixtures for the chat page tests: demo project copies the app may write into (.lore/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def warm_project(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo project with its retrieval index and value cache built (once per session)."""
    from lore import Lore

    folder = tmp_path_factory.mktemp("ui-warm") / "project"
    shutil.copytree(demo_dir, folder)
    lore = Lore.open(folder)
    try:
        _ = lore.retriever  # builds .lore/index and .lore/values.json in the copy
    finally:
        lore.close()
    return folder


def copy_project(source: Path, parent: Path) -> Path:
    folder = parent / "project"
    shutil.copytree(source, folder)
    return folder


@pytest.fixture()
def project_copy(warm_project: Path, tmp_path: Path) -> Path:
    """A copy of the warm project for one test that changes it (or needs a Lore of its own)."""
    return copy_project(warm_project, tmp_path)


@pytest.fixture(scope="module")
def ui_project(warm_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the warm project for one test module: the feedback store and logs it writes stay there."""
    return copy_project(warm_project, tmp_path_factory.mktemp("ui"))
