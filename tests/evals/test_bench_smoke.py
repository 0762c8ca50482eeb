"""Smoke test of the pipeline benchmark (evals/bench/pipeline.py): it runs end to end and reports every stage.

No timing assertions: the numbers depend on the machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.bench.pipeline import STAGES, build_parser, main

QUESTIONS = """\
questions:
  - {domain: streaming, question: "streaming hours by region in 2026"}
  - "content cash spend by phase"
"""


def test_bench_runs_on_the_demo_project_and_reports_every_stage(demo_dir: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.yaml"
    questions.write_text(QUESTIONS, encoding="utf-8")
    out = tmp_path / "results.json"

    code = main(["--project", str(demo_dir), "--questions", str(questions), "--repeat", "1", "--cold-repeat", "0",
                 "--workdir", str(tmp_path / "work"), "--out", str(out)])

    assert code == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["machine"]["duckdb"] and report["machine"]["cpu_count"]
    (run,) = report["runs"]
    assert run["error"] is None
    assert [q["question"] for q in run["questions"]] == ["streaming hours by region in 2026",
                                                          "content cash spend by phase"]
    for q in run["questions"]:
        assert q["status"] == "answered", q["message"]
        assert list(q["stages"]) == list(STAGES)
        assert all(s["n"] == 1 and s["p50"] is not None for s in q["stages"].values())
        assert q["total"]["n"] == 1 and q["duckdb"]["n"] == 1 and q["overhead"]["n"] == 1
        assert q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))
    assert list(run["stages"]) == list(STAGES)
    assert run["total"]["n"] == 2 and run["duckdb"]["n"] == 2
    assert run["rss_mib"] is None or run["rss_mib"] > 0
    # the DuckDB reference ran on a copy, removed afterwards
    assert not list((tmp_path / "work").glob("lore-bench-ref-*"))


def test_bench_reports_a_bad_questions_file_as_misuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "questions.yaml"
    bad.write_text("questions: []\n", encoding="utf-8")

    assert main(["--project", str(tmp_path), "--questions", str(bad), "--workdir", str(tmp_path)]) == 2
    assert "malformed" in capsys.readouterr().err


def test_bench_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--scales", "--questions", "--repeat", "--out", "--workdir", "--project", "--cold-repeat"):
        assert option in text
