"""Warm-up and `lore cache warm` (issue 10)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lore import Lore
from lore.cache import catalog_questions, read_questions, warm
from lore.cli import app
from lore.errors import OperatorError


@pytest.fixture()
def project(demo_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(demo_dir, folder)
    return folder


def test_warm_fills_the_cache_so_the_questions_hit(project: Path) -> None:
    questions = ["streaming hours by region in 2026", "game installs by platform", "what is the meaning of life"]
    with Lore.open(project) as lore:
        seen: list[int] = []
        report = warm(lore, questions, progress=lambda done, total, q: seen.append(done))
        assert seen == [1, 2, 3]
        assert (report.questions, report.answered) == (3, 2)
        assert report.not_answered == ("what is the meaning of life",)
        assert {"engine", "layer", "retriever", "planner", "query"} <= set(report.warm_up_s)
        assert report.stats is not None and report.stats.entries == 2
        for q in questions[:2]:
            assert lore.ask(q).trace.cache_hit


def test_catalog_questions_name_every_metric(demo_lore: Lore) -> None:
    asked = catalog_questions(demo_lore.layer)
    assert len(asked) == len(demo_lore.layer.metrics) and all(asked)


def test_read_questions_rejects_a_file_without_a_list(tmp_path: Path) -> None:
    bad = tmp_path / "q.yaml"
    bad.write_text("just: text\n", encoding="utf-8")
    with pytest.raises(OperatorError):
        read_questions(bad)


def test_cli_cache_warm(project: Path, tmp_path: Path) -> None:
    qfile = tmp_path / "questions.yaml"
    qfile.write_text("questions:\n  - streaming hours by region in 2026\n  - {question: game installs by platform}\n",
                     encoding="utf-8")
    result = CliRunner().invoke(app, ["cache", "warm", "--project", str(project), "--questions", str(qfile), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["questions"], report["answered"], report["stats"]["entries"]) == (2, 2, 2)
