"""Fixtures for the feedback tests: stores in temp folders, and writable copies of the demo project.

The session's demo project (``demo_dir``/``demo_lore``) is shared by the whole
suite, so tests that write feedback never touch it: they work on a copy. The
copy's retrieval index is built once per session (``feedback_template``) with
the embedder of ``demo_lore``, whose cache already holds every document's
vector, then copied folder by folder for each test.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lore.types import QueryPlan, TimeWindow

SHM = Path("/dev/shm")


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A temp folder in memory (tmpfs) when the machine has one: fsync is free there, so the
    many-commit tests stay fast; process kills behave the same as on disk."""
    if SHM.is_dir() and shutil.disk_usage(SHM).free > 256 * 1024 * 1024:
        folder = Path(tempfile.mkdtemp(prefix="lore-feedback-", dir=SHM))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path


@pytest.fixture(scope="session")
def shared_embedder(demo_lore):  # noqa: ANN001, ANN201
    """The embedder of the session's demo project (its cache holds the vector of every indexed document)."""
    return demo_lore.retriever.embedder


@pytest.fixture(scope="session")
def feedback_template(demo_dir: Path, shared_embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """A copy of the demo project with its own retrieval index, built once per session."""
    from lore import Lore
    from lore.retrieve import Retriever

    folder = tmp_path_factory.mktemp("feedback-template") / "project"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns("index", "feedback.sqlite*"))
    lore = Lore.open(folder)
    with lore:
        Retriever.open(lore.project.state_dir / "index", lore.layer, lore.values, embedder=shared_embedder)
    return folder


@pytest.fixture
def project(feedback_template: Path, shared_embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """A writable copy of the demo project, opened; its feedback store starts empty.

    Every ``Retriever.open`` in the test gets the session's embedder instance (a real
    one, already warm) instead of loading the model again.
    """
    import lore.retrieve.index as index_module
    from lore import Lore

    folder = tmp_path / "project"
    shutil.copytree(feedback_template, folder)
    monkeypatch.setattr(index_module, "Embedder", lambda *a, **k: shared_embedder)
    lore = Lore.open(folder)
    yield lore
    lore.close()


@pytest.fixture
def hours_by_region_plan() -> QueryPlan:
    from datetime import date

    return QueryPlan(metrics=("total_streaming_hours",), dimensions=("countries.region",),
                     time=TimeWindow(start=date(2026, 1, 1), end=date(2026, 12, 31), label="2026"))
