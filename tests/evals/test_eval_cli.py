"""``lore eval run|compare|calibrate`` through Typer's CliRunner on the session's demo project."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from evals.cli import register
from evals.scoring import match_rows
from lore.explain.confidence import parse_calibration

FIXTURE = Path(__file__).with_name("fixture_golden.yaml")
ROOT = Path(__file__).parents[2]

SMALL = """\
version: 1
today: "2026-11-01"
cases:
  - {id: r-1, domain: general, category: refusal, question: "drop table accounts", expect: refused}
  - id: x-1
    domain: streaming
    category: negative_control
    question: "total streaming hours by region"
    gold_sql: "SELECT 'nowhere' AS region, 1.0 AS hours"
"""


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """A stand-in for the lore app (plugins register the same way)."""

    register(app)
    return app


def invoke(*args: str):  # -> click.testing.Result
    return CliRunner().invoke(make_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def fixture_run(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("eval") / "run"
    result = invoke("eval", "run", FIXTURE, "--project", demo_dir, "--out", out, "--json")
    return out, result


@pytest.fixture()
def small_golden(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def test_the_entry_point_is_declared() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["entry-points"]["lore.commands"]["eval"] == "evals.cli:register"
    assert "explain/calibration.json" in data["tool"]["setuptools"]["package-data"]["lore"]


def test_run_writes_both_reports_and_prints_the_summary(fixture_run: tuple[Path, object]) -> None:
    out, result = fixture_run
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["passed"] is True and printed["json"] == str(out / "report.json")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert printed["summary"]["accuracy"] == report["summary"]["accuracy"]
    assert report["run"]["model"] == "offline" and report["run"]["today"] == "2026-11-01"
    cases = {c["id"]: c for c in report["cases"]}
    assert len(cases) == 9
    for cid in ("s-region", "s-country-2026", "m-region-premium", "r-drop", "q-cell"):
        assert cases[cid]["correct"], (cid, cases[cid])
    assert not cases["x-control"]["correct"]
    assert cases["r-drop"]["status"] == "refused" and cases["q-cell"]["status"] == "clarify"
    # every case records its question(s), status, plan, SQL, rows, correctness, confidence and latency
    first = cases["s-region"]["turns"][0]
    for key in ("question", "status", "plan", "sql", "rows", "correct", "confidence", "latency_ms", "gold_rows"):
        assert first[key] not in (None, "", []), key
    assert first["plan"]["metrics"] == ["total_streaming_hours"]
    # the multi-turn case reports both turns; the follow-up carries the premium filter
    turns = cases["m-region-premium"]["turns"]
    assert len(turns) == 2 and all(t["correct"] for t in turns)
    assert "premium" in turns[1]["sql"]
    # the relabelled case matched codes to names
    assert dict(map(tuple, cases["s-country-2026"]["turns"][0]["column_map"]))["country_iso_code"] == "country_name"
    summary = report["summary"]
    assert summary["n_cases"] == 9 and summary["n_turns"] == 10
    assert summary["by_category"]["negative_control"]["accuracy"] == 0.0
    assert summary["refusal"]["tp"] == 2 and summary["refusal"]["recall"] == 1.0
    assert summary["latency_ms"]["p50"] > 0 and summary["latency_ms"]["p95"] >= summary["latency_ms"]["p50"]
    assert len(summary["confidence"]["bins"]) == 10 and summary["confidence"]["n"] == 8
    assert report["calibration"]["points"][0] == [0.0, 0.0] and report["calibration"]["points"][-1][0] == 1.0


def test_gold_sql_ran_on_the_project_warehouse(fixture_run: tuple[Path, object], raw_db) -> None:  # noqa: ANN001
    out, _ = fixture_run
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    turn = next(c for c in report["cases"] if c["id"] == "s-country-2026")["turns"][0]
    rel = raw_db.execute(turn["gold_sql"])
    expected = rel.fetchall()
    names = [d[0] for d in rel.description]
    assert match_rows(names, expected, turn["gold_columns"], turn["gold_rows"]).correct
    assert turn["gold_row_count"] == len(expected) == 20


def test_the_html_report_has_the_figures_and_the_failure(fixture_run: tuple[Path, object]) -> None:
    out, _ = fixture_run
    page = (out / "report.html").read_text(encoding="utf-8")
    for chart in ("accuracy-by-category", "accuracy-by-domain", "reliability", "confidence-histogram", "latency"):
        assert f'data-chart="{chart}"><svg' in page, chart
    for text in ("Reliability diagram", "Latency per question", "Accuracy by category", "refusal precision",
                 "ECE", "AUROC", "Failures (1)", 'id="case-x-control"', "Isotonic calibration"):
        assert text in page, text
    assert "<script" not in page


def test_min_accuracy_gates_the_exit_code(demo_dir: Path, small_golden: Path, tmp_path: Path) -> None:
    failed = invoke("eval", "run", small_golden, "--project", demo_dir, "--out", tmp_path / "a", "--min-accuracy", "0.6")
    assert failed.exit_code == 1, failed.output
    assert "below --min-accuracy" in failed.stderr
    assert (tmp_path / "a" / "report.json").exists()  # the report is written even when the gate fails
    passed = invoke("eval", "run", small_golden, "--project", demo_dir, "--out", tmp_path / "b",
                    "--min-accuracy", "0.5", "--today", "2026-06-01")
    assert passed.exit_code == 0, passed.output
    assert "accuracy" in passed.stdout and "x-1" in passed.stdout  # the summary and the failure table
    report = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))
    assert report["run"]["today"] == "2026-06-01"


def test_case_patterns_select_cases(demo_dir: Path, tmp_path: Path) -> None:
    result = invoke("eval", "run", FIXTURE, "--project", demo_dir, "--out", tmp_path, "--case", "r-*", "-k", "clarify")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in report["cases"]] == ["r-drop", "q-cell"]
    none = invoke("eval", "run", FIXTURE, "--project", demo_dir, "--out", tmp_path, "--case", "zzz-*")
    assert none.exit_code == 2 and "no case of" in none.output


@pytest.mark.parametrize(("args", "message"), [
    (["--today", "2026-13-01"], "--today must be a date"),
    (["--min-accuracy", "1.5"], "between 0 and 1"),
    (["--today", "soon"], "--today must be a date"),
])
def test_misuse_exits_2(demo_dir: Path, small_golden: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke("eval", "run", small_golden, "--project", demo_dir, "--out", tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_broken_golden_file_or_project_exits_2(demo_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - {id: a, question: q}\n", encoding="utf-8")
    result = invoke("eval", "run", bad, "--project", demo_dir, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "needs gold_sql" in result.output
    result = invoke("eval", "run", FIXTURE, "--project", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "No LORE project" in result.output
    assert invoke("eval", "run").exit_code == 2  # Typer: missing argument


def test_compare_shows_what_changed(fixture_run: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = fixture_run
    same = invoke("eval", "compare", out, out / "report.json")
    assert same.exit_code == 0, same.output
    assert "0 fixed, 0 broken" in same.stdout
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    for c in data["cases"]:
        if c["id"] == "s-region":
            c["correct"] = False
            c["turns"][0]["correct"] = False
            c["turns"][0]["reason"] = "expected 4 rows, got 3"
    (tmp_path / "later.json").write_text(json.dumps(data), encoding="utf-8")
    worse = invoke("eval", "compare", out, tmp_path / "later.json", "--fail-on-regression")
    assert worse.exit_code == 1
    assert "1 broken" in worse.stdout and "s-region" in worse.stdout
    as_json = invoke("eval", "compare", out, tmp_path / "later.json", "--json")
    assert as_json.exit_code == 0
    changes = json.loads(as_json.stdout)["changes"]
    assert [(c["id"], c["change"], c["after"]) for c in changes] == [("s-region", "broken", "wrong: expected 4 rows, got 3")]
    missing = invoke("eval", "compare", out, tmp_path / "nope.json")
    assert missing.exit_code == 2 and "Cannot read the eval report" in missing.output


def test_calibrate_checks_and_writes_a_loadable_table(fixture_run: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = fixture_run
    shown = invoke("eval", "calibrate", out / "report.json")
    assert shown.exit_code == 0, shown.output
    assert "held-out split, calibrated" in shown.stdout and "Fitted on all 8 answered questions" in shown.stdout
    target = tmp_path / "calibration.json"
    written = invoke("eval", "calibrate", out / "report.json", "--write", "--to", target, "--json")
    assert written.exit_code == 0, written.output
    table = parse_calibration(target.read_text(encoding="utf-8"))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [list(p) for p in table] == report["calibration"]["points"]
    assert json.loads(written.stdout)["check"]["fit_split"] == 0


def test_eval_help_lists_the_commands() -> None:
    result = invoke("eval", "--help")
    assert result.exit_code == 0
    for name in ("run", "compare", "calibrate"):
        assert name in result.stdout
    assert "--min-accuracy" in invoke("eval", "run", "--help").stdout
    assert sys.modules["evals.cli"].__doc__ is not None
