"""``lore doctor``: each check says ok, a warning or a failure with its fix; exit 1 on any failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lore.cli import app
from lore.doctor import Check, DoctorContext, extras_status, find_project, run
from lore.settings import Settings


def _doctor(*args: str) -> tuple[int, dict[str, Check]]:
    result = CliRunner().invoke(app, ["doctor", "--no-local-model", "--json", *args])
    data = json.loads(result.stdout)
    assert data["ok"] == (result.exit_code == 0)
    return result.exit_code, {c["name"]: Check.model_validate(c) for c in data["checks"]}


@pytest.fixture()
def project(demo_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the demo project (its warehouse, layer and config), with no state yet."""
    copy = tmp_path / "project"
    shutil.copytree(demo_dir, copy, ignore=shutil.ignore_patterns(".lore"))
    return copy


def test_a_good_project_passes_with_the_index_to_build(project: Path) -> None:
    code, checks = _doctor("--project", str(project))
    assert code == 0
    for name in ("python", "install", "embedder", "model", "project", "warehouse", "semantic layer", "feedback store"):
        assert checks[name].status == "ok", checks[name]
    assert "one embedding of 384 dimensions" in checks["embedder"].detail
    assert "opens read-only" in checks["warehouse"].detail
    assert checks["retrieval index"].status == "warn" and "lore index build" in (checks["retrieval index"].fix or "")
    assert "dev" in checks["install"].detail  # the test extra is installed here


def test_the_index_is_fresh_after_a_build_and_stale_after_the_layer_changes(project: Path) -> None:
    from lore import Lore

    with Lore.open(project) as lore:
        lore.retriever  # noqa: B018 - builds the index
    assert _doctor("--project", str(project))[1]["retrieval index"].status == "ok"
    layer_file = next(f for f in sorted((project / "semantic").glob("*.yaml")) if "\nmetrics:" in f.read_text())
    text = layer_file.read_text()
    at = text.index("description: ", text.index("\nmetrics:"))
    end = text.index("\n", at)
    layer_file.write_text(text[:end] + " Edited." + text[end:])  # a metric's description: the documents change
    index = _doctor("--project", str(project))[1]["retrieval index"]
    assert index.status == "warn" and "stale" in index.detail


def test_a_broken_layer_fails_with_where_to_look(project: Path) -> None:
    layer_file = next((project / "semantic").glob("*.yaml"))
    layer_file.write_text(layer_file.read_text() + "\nmetrics_typo: {}\n")
    code, checks = _doctor("--project", str(project))
    assert code == 1
    layer = checks["semantic layer"]
    assert layer.status == "fail" and "metrics_typo" in layer.detail and ".yaml:" in layer.detail
    assert "lore semantic validate" in (layer.fix or "")
    assert checks["retrieval index"].status == "skip"
    assert checks["warehouse"].status == "ok"


def test_a_missing_warehouse_fails_with_its_fix(project: Path) -> None:
    (project / "warehouse.duckdb").unlink()
    code, checks = _doctor("--project", str(project))
    assert code == 1
    failed = [c for c in checks.values() if c.status == "fail"]
    assert failed and all(c.fix for c in failed)
    assert any("warehouse" in (c.detail + (c.fix or "")).lower() for c in failed)


def test_a_corrupt_feedback_store_is_named_corrupt_with_the_way_out(project: Path) -> None:
    state = project / ".lore"
    state.mkdir(exist_ok=True)
    (state / "feedback.sqlite").write_bytes(b"this is not a database" * 100)
    code, checks = _doctor("--project", str(project))
    assert code == 1
    bad = next(c for c in checks.values() if c.status == "fail")
    assert "corrupt" in bad.detail and "aside" in (bad.fix or "")
    assert (state / "feedback.sqlite").read_bytes().startswith(b"this is not a database")  # nothing was overwritten


def test_without_a_project_the_project_checks_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_project(None) is None
    code, checks = _doctor()
    assert code == 0
    assert checks["project"].status == "skip" and checks["feedback store"].status == "skip"


def test_an_openai_model_without_a_key_or_server_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    code, checks = _doctor("--model", "openai:gpt-4o-mini")
    assert code == 1 and checks["model"].status == "fail" and "OPENAI_API_KEY" in (checks["model"].fix or "")


def test_a_check_that_raises_is_a_failure_and_the_others_still_run(tmp_path: Path) -> None:
    """A project folder that is not one: the project check fails with the error's own hint; later checks still run."""
    ctx = DoctorContext(settings=Settings(), project=tmp_path / "nowhere", local_model=False)
    results = run(ctx)
    project = next(c for c in results if c.name == "project")
    assert project.status == "fail" and "lore demo init" in (project.fix or "")
    assert any(c.name in ("local model", "llama.cpp build") for c in results)


def test_the_human_output_marks_each_check(project: Path) -> None:
    result = CliRunner().invoke(app, ["doctor", "--no-local-model", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert "✓ ok   embedder" in result.output and "fix:" in result.output  # the index warning carries its fix
    assert "All checks passed." in result.output


def test_extras_are_read_from_the_package_metadata() -> None:
    extras = extras_status()
    assert {"dev", "local"} <= set(extras)
    size, missing = extras["dev"]
    assert size >= 4 and missing == []
