"""Reports built from case results: figures, the HTML page, comparison of two runs, the calibration file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evals.harness import CaseResult, EvalReport, RunInfo, TurnResult, build_report, split_of
from evals.report import calibration_payload, compare_reports, read_report, render_html, write_report
from lore.errors import ConfigError
from lore.explain.confidence import CALIBRATION, CALIBRATION_FILE, calibration_table, parse_calibration


def turn(correct: bool, *, status: str = "answered", expect: str = "answered", confidence: float = 0.9,
         question: str = "q", latency: float = 10.0, reason: str = "") -> TurnResult:
    return TurnResult(question=question, expect=expect, status=status, correct=correct, confidence=confidence,  # type: ignore[arg-type]
                      raw_confidence=confidence, latency_ms=latency, reason=reason if not correct else "")


def case(cid: str, *turns: TurnResult, category: str = "cat", domain: str = "dom") -> CaseResult:
    return CaseResult(id=cid, domain=domain, category=category, split=split_of(cid), correct=all(t.correct for t in turns),
                      status=turns[-1].status, confidence=min(t.confidence for t in turns),
                      latency_ms=sum(t.latency_ms for t in turns), turns=turns)


def run_info(label: str = "2026-11-01T00:00:00+00:00") -> RunInfo:
    return RunInfo(golden="g.yaml", golden_sha256="0" * 64, project="p", warehouse="w", model="offline",
                   planner="offline", today=None, lore_version="0", python="3.11", created_at=label, elapsed_s=1.0)


def sample_cases() -> list[CaseResult]:
    return [
        case("a", turn(True, confidence=0.95, latency=10), category="ranking", domain="streaming"),
        case("b", turn(False, confidence=0.9, latency=30, reason="expected 4 rows, got 3"), category="ranking"),
        case("c", turn(True, status="refused", expect="refused", confidence=0.0, latency=5), category="refusal"),
        case("d", turn(False, status="answered", expect="clarify", confidence=0.6, latency=20,
                       reason="expected clarify, got answered"), category="clarify"),
        case("m", turn(True, confidence=0.8, latency=40), turn(False, status="clarify", confidence=0.0, latency=50,
                                                                reason="expected answered, got clarify"),
             category="multi_turn"),
    ]


def test_summary_figures() -> None:
    report = build_report(sample_cases(), run_info())
    s = report.summary
    assert (s.n_cases, s.n_correct, s.accuracy) == (5, 2, 0.4)
    assert (s.n_turns, s.turn_accuracy) == (6, 0.5)
    assert s.by_category["ranking"].accuracy == 0.5 and s.by_category["multi_turn"].accuracy == 0.0
    # declined = refused or clarify: c (expected, refused) is a hit; d should have been declined; m's turn 2 was not
    assert (s.refusal.tp, s.refusal.fn, s.refusal.fp) == (1, 1, 1)
    assert s.statuses == {"answered": 4, "clarify": 1, "refused": 1}
    assert s.latency_ms["p50"] == pytest.approx(25.0) and s.latency_ms["max"] == 50.0
    # confidence over answered turns only: a .95 ok, b .9 wrong, d .6 wrong, m1 .8 ok
    assert s.confidence.n == 4
    assert s.confidence.accuracy_at_high == pytest.approx(2 / 3) and s.confidence.share_at_high == 0.75
    assert s.confidence.auroc == pytest.approx(0.75)
    assert report.calibration.n == 4
    assert [c.id for c in report.failures()] == ["b", "d", "m"]
    assert report.cases[-1].reason == "turn 2: expected answered, got clarify"


def test_compare_reports_case_by_case() -> None:
    before = build_report(sample_cases(), run_info("A"))
    cases = sample_cases()
    cases[0] = case("a", turn(False, confidence=0.95, reason="expected 5 rows, got 4"), category="ranking")  # broken
    cases[1] = case("b", turn(True, confidence=0.9), category="ranking")  # fixed
    cases[3] = case("d", turn(False, status="refused", expect="clarify", confidence=0.0,
                              reason="expected clarify, got refused"), category="clarify")  # still wrong, differently
    del cases[2]  # c removed
    cases.append(case("n", turn(True)))  # added
    cmp = compare_reports(before, build_report(cases, run_info("B")))
    kinds = {c.id: c.change for c in cmp.changes}
    assert kinds == {"a": "broken", "b": "fixed", "d": "changed", "c": "removed", "n": "added"}
    assert [c.change for c in cmp.changes] == ["broken", "fixed", "changed", "added", "removed"]
    broken = cmp.of("broken")[0]
    assert (broken.before, broken.after) == ("correct", "wrong: expected 5 rows, got 4")
    assert cmp.unchanged_wrong == 1  # m: same failure both times
    assert cmp.by_category["ranking"] == (0.5, 0.5) and cmp.by_category["refusal"] == (1.0, None)
    same = compare_reports(before, before)
    assert same.changes == () and same.unchanged_correct == 2 and same.unchanged_wrong == 3


def test_html_escapes_everything_and_has_the_charts(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script> ![img](https://evil.example/x.png)'
    cases = sample_cases()
    cases[1] = case("b", turn(False, question=evil, reason=evil), category="<b>ranking</b>")
    report = build_report(cases, run_info())
    page = render_html(report)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;ranking&lt;/b&gt;" in page
    for name in ("accuracy-by-category", "accuracy-by-domain", "reliability", "confidence-histogram", "latency"):
        assert re.search(rf'data-chart="{name}"><svg[^>]*>', page), name
    # self-contained: no external resources, no JavaScript
    assert not re.search(r'(src|href)=["\']?(https?:)?//', page)
    assert "<link" not in page and "javascript:" not in page
    json_path, html_path = write_report(report, tmp_path / "out")
    assert read_report(tmp_path / "out") == report
    assert html_path.read_text(encoding="utf-8") == page
    assert json.loads(json_path.read_text(encoding="utf-8"))["summary"]["accuracy"] == 0.4


def test_read_report_errors_are_clear(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"version": 1}', encoding="utf-8")
    with pytest.raises(ConfigError, match="is not an eval report"):
        read_report(tmp_path)
    with pytest.raises(ConfigError, match="Cannot read the eval report"):
        read_report(tmp_path / "nope.json")


def test_calibration_payload_round_trips_through_the_loader() -> None:
    report = build_report(sample_cases(), run_info())
    payload = calibration_payload(report)
    table = parse_calibration(json.dumps(payload))
    assert table == tuple(tuple(p) for p in report.calibration.points)
    assert table[0] == (0.0, 0.0) and table[-1][0] == 1.0


@pytest.mark.parametrize("text", [
    "not json", '{"points": [[0, 0]]}', '{"points": [[0.1, 0], [1, 1]]}', '{"points": [[0, 0], [0.5, 1.2], [1, 1]]}',
    '{"points": [[0, 0], ["a", 1], [1, 1]]}', '{"points": [[0, 0], [0.5, 0.5], [0.5, 0.6], [1, 1]]}', "[]",
])
def test_invalid_calibration_files_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_calibration(text)


def test_the_shipped_calibration_is_valid_or_identity() -> None:
    shipped = Path(__file__).parents[2] / "lore" / "explain" / CALIBRATION_FILE
    expected = parse_calibration(shipped.read_text(encoding="utf-8")) if shipped.exists() else CALIBRATION
    assert calibration_table() == expected


def test_reports_from_this_version_validate() -> None:
    report = build_report(sample_cases(), run_info())
    assert EvalReport.model_validate_json(report.model_dump_json()) == report
