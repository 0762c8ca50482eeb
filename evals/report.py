"""Eval reports: JSON for machines, one self-contained HTML page for people, and run-to-run comparison.

The HTML opens offline: charts are Vega-Lite specs rendered to inline SVG with
vl-convert (no JavaScript, no external CSS or fonts), every text from a
question, an answer, the data or SQL is HTML-escaped, and nothing links out.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from evals.harness import CaseResult, ConfidenceStats, EvalReport, GroupStats, TurnResult
from evals.metrics import ReliabilityBin, bin_index
from lore.errors import ConfigError
from lore.types import Frozen, Scalar

#: rows of a result shown in a failure card
SHOWN_ROWS = 8
JSON_NAME = "report.json"
HTML_NAME = "report.html"

# --- JSON -------------------------------------------------------------------------------


def report_json(report: EvalReport) -> str:
    return report.model_dump_json(indent=1)


def write_report(report: EvalReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir`` (created if needed)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, html_path = out_dir / JSON_NAME, out_dir / HTML_NAME
        json_path.write_text(report_json(report), encoding="utf-8")
        html_path.write_text(render_html(report), encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"Cannot write the report into {out_dir}: {err.strerror or err}",
                          hint="Pass --out with a folder you can write to.") from None
    return json_path, html_path


def read_report(path: Path) -> EvalReport:
    """Load a ``report.json`` (or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / JSON_NAME
    try:
        return EvalReport.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"Cannot read the eval report {path}: {err.strerror or err}",
                          hint="Pass a report.json written by `lore eval run` (or its folder).") from None
    except ValidationError as err:
        raise ConfigError(f"{path} is not an eval report of this version: {err.error_count()} problem(s), "
                          f"first: {err.errors()[0]['msg']}", hint="Re-run `lore eval run` to write a fresh report.") from None


def calibration_payload(report: EvalReport) -> dict[str, Any]:
    """What ``lore eval calibrate --write`` ships: the fitted points and where they came from.

    :func:`lore.explain.confidence.parse_calibration` reads ``points``; the rest documents the fit.
    """
    check = report.calibration.check
    return {
        "version": 1,
        "points": [list(p) for p in report.calibration.points],
        "n": report.calibration.n,
        "golden": Path(report.run.golden).name,
        "golden_sha256": report.run.golden_sha256,
        "created_at": report.run.created_at,
        "holdout_ece": {"raw": check.holdout_raw.ece, "calibrated": check.holdout_calibrated.ece},
        "holdout_brier": {"raw": check.holdout_raw.brier, "calibrated": check.holdout_calibrated.brier},
    }


# --- comparison -------------------------------------------------------------------------

Change = Literal["fixed", "broken", "changed", "added", "removed"]


class CaseChange(Frozen):
    id: str
    category: str
    domain: str
    question: str
    change: Change
    before: str
    after: str


class Comparison(Frozen):
    a: str
    b: str
    accuracy_a: float | None
    accuracy_b: float | None
    #: category -> (accuracy in A, accuracy in B)
    by_category: dict[str, tuple[float | None, float | None]]
    changes: tuple[CaseChange, ...]
    unchanged_correct: int
    unchanged_wrong: int

    def of(self, kind: Change) -> list[CaseChange]:
        return [c for c in self.changes if c.change == kind]


def outcome(case: CaseResult) -> str:
    """One line: correct, or what went wrong.

    >>> t = TurnResult(question="q", expect="refused", status="answered", correct=False, reason="expected refused, got answered")
    >>> outcome(CaseResult(id="r", domain="d", category="c", correct=False, status="answered", turns=(t,)))
    'wrong: expected refused, got answered'
    """
    return "correct" if case.correct else f"wrong: {case.reason}"


def _fingerprint(case: CaseResult) -> tuple[Any, ...]:
    return tuple((t.status, t.correct, t.sql, t.reason) for t in case.turns)


def compare_reports(a: EvalReport, b: EvalReport) -> Comparison:
    """What got better or worse from run A to run B, case by case (matched by case id)."""
    before = {c.id: c for c in a.cases}
    after = {c.id: c for c in b.cases}
    changes: list[CaseChange] = []
    same_ok = same_wrong = 0
    for cid, cb in after.items():
        ca = before.get(cid)
        if ca is None:
            changes.append(CaseChange(id=cid, category=cb.category, domain=cb.domain, question=cb.question,
                                      change="added", before="-", after=outcome(cb)))
            continue
        if ca.correct and cb.correct:
            same_ok += 1
            continue
        kind: Change | None = None
        if not ca.correct and cb.correct:
            kind = "fixed"
        elif ca.correct and not cb.correct:
            kind = "broken"
        elif _fingerprint(ca) != _fingerprint(cb):
            kind = "changed"
        if kind is None:
            same_wrong += 1
            continue
        changes.append(CaseChange(id=cid, category=cb.category, domain=cb.domain, question=cb.question, change=kind,
                                  before=outcome(ca), after=outcome(cb)))
    for cid, ca in before.items():
        if cid not in after:
            changes.append(CaseChange(id=cid, category=ca.category, domain=ca.domain, question=ca.question,
                                      change="removed", before=outcome(ca), after="-"))
    order = {"broken": 0, "fixed": 1, "changed": 2, "added": 3, "removed": 4}
    changes.sort(key=lambda c: (order[c.change], c.id))
    cats = sorted(set(a.summary.by_category) | set(b.summary.by_category))
    by_cat = {k: (_acc(a.summary.by_category.get(k)), _acc(b.summary.by_category.get(k))) for k in cats}
    return Comparison(a=a.run.created_at + " " + a.run.golden, b=b.run.created_at + " " + b.run.golden,
                      accuracy_a=a.summary.accuracy, accuracy_b=b.summary.accuracy, by_category=by_cat,
                      changes=tuple(changes), unchanged_correct=same_ok, unchanged_wrong=same_wrong)


def _acc(stats: GroupStats | None) -> float | None:
    return stats.accuracy if stats is not None else None


# --- chart specs (pure) -----------------------------------------------------------------

_FONT = "Helvetica, Arial, sans-serif"
_BLUE, _RED, _GREEN, _GREY = "#3b6ea5", "#c0504d", "#4f9a5a", "#888888"


def _config() -> dict[str, Any]:
    return {"font": _FONT, "view": {"stroke": None}, "axis": {"labelFontSize": 11, "titleFontSize": 12},
            "title": {"fontSize": 14, "anchor": "start"}}


def accuracy_bars_spec(groups: Mapping[str, GroupStats], title: str) -> dict[str, Any]:
    """Horizontal bars: accuracy per group, labelled with correct/n.

    >>> spec = accuracy_bars_spec({"ranking": GroupStats(n=4, correct=3, accuracy=0.75)}, "By category")
    >>> spec["data"]["values"][0]["label"], spec["layer"][0]["mark"]["type"]
    ('75% (3/4)', 'bar')
    """
    values = [{"group": g, "accuracy": s.accuracy or 0.0, "label": f"{(s.accuracy or 0):.0%} ({s.correct}/{s.n})"}
              for g, s in groups.items()]
    y = {"field": "group", "type": "nominal", "sort": None, "title": None}
    return {
        "title": title, "width": 320, "height": {"step": 22}, "data": {"values": values}, "config": _config(),
        "layer": [
            {"mark": {"type": "bar", "color": _BLUE},
             "encoding": {"y": y, "x": {"field": "accuracy", "type": "quantitative", "title": "accuracy",
                                         "scale": {"domain": [0, 1]}, "axis": {"format": "%"}}}},
            {"mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11},
             "encoding": {"y": y, "x": {"field": "accuracy", "type": "quantitative"}, "text": {"field": "label"}}},
        ],
    }


def reliability_spec(bins: Sequence[ReliabilityBin], title: str = "Reliability diagram") -> dict[str, Any]:
    """Accuracy per confidence bin against the diagonal of perfect calibration, with the count per bin below.

    >>> spec = reliability_spec([ReliabilityBin(lo=0.9, hi=1.0, count=3, confidence=0.95, accuracy=2 / 3)])
    >>> [layer["mark"]["type"] for layer in spec["vconcat"][0]["layer"]]
    ['bar', 'line', 'point']
    """
    values = [{"lo": b.lo, "hi": b.hi, "count": b.count, "confidence": b.confidence, "accuracy": b.accuracy}
              for b in bins]
    filled = [v for v in values if v["count"]]
    x = {"field": "lo", "type": "quantitative", "title": "confidence", "scale": {"domain": [0, 1]}}
    return {
        "title": title, "config": _config(), "spacing": 6,
        "vconcat": [
            {"width": 320, "height": 240, "layer": [
                {"data": {"values": filled}, "mark": {"type": "bar", "color": _BLUE, "opacity": 0.75, "binSpacing": 1},
                 "encoding": {"x": x, "x2": {"field": "hi"},
                              "y": {"field": "accuracy", "type": "quantitative", "title": "accuracy",
                                    "scale": {"domain": [0, 1]}}, "y2": {"datum": 0}}},
                {"data": {"values": [{"p": 0.0}, {"p": 1.0}]},
                 "mark": {"type": "line", "color": _GREY, "strokeDash": [4, 4]},
                 "encoding": {"x": {"field": "p", "type": "quantitative"}, "y": {"field": "p", "type": "quantitative"}}},
                {"data": {"values": filled}, "mark": {"type": "point", "color": _RED, "filled": True},
                 "encoding": {"x": {"field": "confidence", "type": "quantitative"},
                              "y": {"field": "accuracy", "type": "quantitative"}}},
            ]},
            {"width": 320, "height": 60, "data": {"values": values}, "mark": {"type": "bar", "color": _GREY},
             "encoding": {"x": x, "x2": {"field": "hi"},
                          "y": {"field": "count", "type": "quantitative", "title": "answers"}, "y2": {"datum": 0}}},
        ],
    }


def latency_spec(latencies_ms: Sequence[float], p50: float | None, p95: float | None) -> dict[str, Any]:
    """A histogram of per-turn latency with the p50 and p95 marked.

    >>> spec = latency_spec([10.0, 20.0, 30.0], 20.0, 29.0)
    >>> spec["layer"][0]["encoding"]["x"]["bin"], len(spec["layer"][1]["data"]["values"])
    ({'maxbins': 30}, 2)
    """
    marks = [{"name": name, "ms": v} for name, v in (("p50", p50), ("p95", p95)) if v is not None]
    return {
        "title": "Latency per question", "width": 420, "height": 200, "config": _config(),
        "layer": [
            {"data": {"values": [{"ms": v} for v in latencies_ms]}, "mark": {"type": "bar", "color": _BLUE},
             "encoding": {"x": {"field": "ms", "type": "quantitative", "bin": {"maxbins": 30}, "title": "milliseconds"},
                          "y": {"aggregate": "count", "type": "quantitative", "title": "questions"}}},
            {"data": {"values": marks}, "mark": {"type": "rule", "color": _RED, "strokeDash": [4, 3]},
             "encoding": {"x": {"field": "ms", "type": "quantitative"}}},
            {"data": {"values": marks}, "mark": {"type": "text", "align": "left", "dx": 3, "y": 8, "color": _RED},
             "encoding": {"x": {"field": "ms", "type": "quantitative"}, "text": {"field": "name"}}},
        ],
    }


def confidence_histogram_spec(turns: Sequence[TurnResult], n_bins: int = 20) -> dict[str, Any]:
    """Answered turns by confidence (bins of 0.05, the last one holding 1.0), stacked correct then wrong.

    >>> t = TurnResult(question="q", expect="answered", status="answered", correct=True, confidence=1.0)
    >>> [v for v in confidence_histogram_spec([t])["data"]["values"] if v["count"]]
    [{'lo': 0.95, 'hi': 1.0, 'outcome': 'correct', 'count': 1, 'y0': 0, 'y1': 1}]
    """
    counts = [[0, 0] for _ in range(n_bins)]
    for t in turns:
        counts[bin_index(t.confidence, n_bins)][0 if t.correct else 1] += 1
    values = []
    for b, (ok, bad) in enumerate(counts):
        lo, hi = round(b / n_bins, 6), round((b + 1) / n_bins, 6)
        values.append({"lo": lo, "hi": hi, "outcome": "correct", "count": ok, "y0": 0, "y1": ok})
        values.append({"lo": lo, "hi": hi, "outcome": "wrong", "count": bad, "y0": ok, "y1": ok + bad})
    return {
        "title": "Confidence of answered questions", "width": 320, "height": 200, "config": _config(),
        "data": {"values": values}, "transform": [{"filter": "datum.count > 0"}],
        "mark": {"type": "bar", "binSpacing": 1},
        "encoding": {
            "x": {"field": "lo", "type": "quantitative", "title": "confidence", "scale": {"domain": [0, 1]}},
            "x2": {"field": "hi"},
            "y": {"field": "y1", "type": "quantitative", "title": "answers"},
            "y2": {"field": "y0"},
            "color": {"field": "outcome", "type": "nominal",
                      "scale": {"domain": ["correct", "wrong"], "range": [_GREEN, _RED]}, "title": None},
        },
    }


def to_svg(spec: Mapping[str, Any]) -> str:
    """Render a Vega-Lite spec to SVG offline (no URL may be fetched)."""
    import vl_convert

    return str(vl_convert.vegalite_to_svg(dict(spec), allowed_base_urls=[]))


# --- HTML -------------------------------------------------------------------------------

_CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --ok: #2f7d3a; --bad: #b3261e; --bg: #f7f9fb; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); margin: 0;
       background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 12px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; } h3 { font-size: 16px; margin: 18px 0 8px; }
.meta { color: var(--muted); font-size: 13px; margin: 0; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(165px, 1fr)); gap: 12px; margin-top: 20px; }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.kpi .v { font-size: 24px; font-weight: 600; } .kpi .k { color: var(--muted); font-size: 12px; text-transform: uppercase;
     letter-spacing: .04em; } .kpi .s { color: var(--muted); font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
.chart svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; background: #fff; font-size: 13px; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f6; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
.case { background: #fff; border: 1px solid var(--line); border-left: 4px solid var(--bad); border-radius: 6px;
        padding: 10px 14px; margin: 12px 0; }
.case .q { font-size: 15px; font-weight: 600; } .case .why { color: var(--bad); }
.pair { display: flex; flex-wrap: wrap; gap: 18px; } .pair > div { min-width: 280px; flex: 1; }
pre { background: #f1f4f8; border: 1px solid var(--line); border-radius: 4px; padding: 8px; font-size: 12px;
      white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
details summary { cursor: pointer; color: var(--muted); font-size: 13px; }
.tag { display: inline-block; background: #eef2f6; border-radius: 10px; padding: 0 8px; font-size: 12px; margin-right: 4px; }
"""


def _e(value: object) -> str:
    """Escape any text for HTML.

    >>> _e('<script>alert("x")</script>')
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
    """
    return html.escape(str(value), quote=True)


def fmt_pct(value: float | None) -> str:
    """
    >>> fmt_pct(0.9234), fmt_pct(None)
    ('92.3%', '–')
    """
    return "–" if value is None else f"{value:.1%}"


def fmt_num(value: float | None, digits: int = 3) -> str:
    """
    >>> fmt_num(0.12345), fmt_num(None), fmt_num(1234.5, 0)
    ('0.123', '–', '1,234')
    """
    return "–" if value is None else f"{value:,.{digits}f}"


def _kpi(label: str, value: str, sub: str = "") -> str:
    return (f'<div class="kpi"><div class="k">{_e(label)}</div><div class="v">{_e(value)}</div>'
            + (f'<div class="s">{_e(sub)}</div>' if sub else "") + "</div>")


def _chart(spec: Mapping[str, Any], name: str) -> str:
    return f'<figure class="chart" data-chart="{_e(name)}">{to_svg(spec)}</figure>'


def _cell(value: Scalar) -> str:
    if value is None:
        return '<td class="num"><i>NULL</i></td>'
    if isinstance(value, float):
        return f'<td class="num">{_e(f"{value:,.6g}")}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{_e(f"{value:,}")}</td>'
    return f"<td>{_e(value)}</td>"


def rows_table(columns: Sequence[str], rows: Sequence[Sequence[Scalar]], total: int, limit: int = SHOWN_ROWS) -> str:
    """A small HTML table of the first ``limit`` rows (escaped).

    >>> rows_table(["a"], [("<b>",)], 1)
    '<table><tr><th>a</th></tr><tr><td>&lt;b&gt;</td></tr></table>'
    """
    if not columns:
        return ""
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows[:limit])
    more = f'<p class="meta">… {total - limit:,} more row(s)</p>' if total > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _group_table(title: str, groups: Mapping[str, GroupStats]) -> str:
    rows = "".join(f"<tr><td>{_e(g)}</td><td class='num'>{s.n}</td><td class='num'>{s.correct}</td>"
                   f"<td class='num'>{fmt_pct(s.accuracy)}</td></tr>" for g, s in groups.items())
    return (f"<table><tr><th>{_e(title)}</th><th>cases</th><th>correct</th><th>accuracy</th></tr>{rows}</table>")


def _confidence_table(rows: Sequence[tuple[str, ConfidenceStats]]) -> str:
    head = ("<tr><th></th><th>answers</th><th>ECE</th><th>Brier</th><th>AUROC</th>"
            "<th>accuracy at ≥ 0.8</th><th>share at ≥ 0.8</th></tr>")
    body = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{s.n}</td><td class='num'>{fmt_num(s.ece)}</td>"
        f"<td class='num'>{fmt_num(s.brier)}</td><td class='num'>{fmt_num(s.auroc)}</td>"
        f"<td class='num'>{fmt_pct(s.accuracy_at_high)}</td><td class='num'>{fmt_pct(s.share_at_high)}</td></tr>"
        for name, s in rows)
    return f"<table>{head}{body}</table>"


def _turn_html(i: int, n: int, turn: TurnResult) -> str:
    mark = '<span class="ok">✓</span>' if turn.correct else '<span class="bad">✗</span>'
    head = f"<h3>{mark} " + (f"Turn {i}: " if n > 1 else "") + f"{_e(turn.question)}</h3>"
    if turn.expect == "answered":
        expected = (f"<b>answered</b>{' (in this order)' if turn.ordered else ''}"
                    + rows_table(turn.gold_columns, turn.gold_rows, turn.gold_row_count))
        if turn.gold_error:
            expected += f'<p class="why">gold SQL failed: {_e(turn.gold_error)}</p>'
    else:
        expected = f"<b>{_e(turn.expect)}</b>"
    got = (f"<b>{_e(turn.status)}</b>"
           + (f" (confidence {turn.confidence:.2f})" if turn.status == "answered" else "")
           + f"<p>{_e(turn.message)}</p>"
           + (rows_table(turn.columns, turn.rows, turn.row_count) if turn.status == "answered" else ""))
    why = f'<p class="why">{_e(turn.reason)}</p>' if not turn.correct and turn.reason else ""
    sql = ""
    if turn.sql or turn.gold_sql:
        sql = ("<details><summary>SQL</summary>"
               + (f"<p class='meta'>answer</p><pre>{_e(turn.sql)}</pre>" if turn.sql else "")
               + (f"<p class='meta'>gold</p><pre>{_e(turn.gold_sql.strip())}</pre>" if turn.gold_sql else "")
               + "</details>")
    plan = (f"<details><summary>plan</summary><pre>{_e(json.dumps(turn.plan, indent=1))}</pre></details>"
            if turn.plan else "")
    return (f"{head}{why}<div class='pair'><div><p class='meta'>expected</p>{expected}</div>"
            f"<div><p class='meta'>got</p>{got}</div></div>{sql}{plan}")


def failure_html(case: CaseResult) -> str:
    tags = "".join(f'<span class="tag">{_e(t)}</span>' for t in (case.category, case.domain, *case.tags))
    turns = "".join(_turn_html(i, len(case.turns), t) for i, t in enumerate(case.turns, 1))
    return f'<div class="case" id="case-{_e(case.id)}"><div class="q">{_e(case.id)} {tags}</div>{turns}</div>'


def _cases_table(cases: Sequence[CaseResult]) -> str:
    head = ("<tr><th>case</th><th>category</th><th>domain</th><th>question</th><th>status</th><th>result</th>"
            "<th>confidence</th><th>ms</th></tr>")
    body = "".join(
        f"<tr><td>{_e(c.id)}</td><td>{_e(c.category)}</td><td>{_e(c.domain)}</td><td>{_e(c.question)}</td>"
        f"<td>{_e(' → '.join(t.status for t in c.turns))}</td>"
        f"<td>{'<span class=ok>correct</span>' if c.correct else '<span class=bad>wrong</span>'}</td>"
        f"<td class='num'>{c.confidence:.2f}</td><td class='num'>{c.latency_ms:,.0f}</td></tr>" for c in cases)
    return f"<table>{head}{body}</table>"


def render_html(report: EvalReport) -> str:
    """The whole report as one HTML page with inline SVG charts."""
    s, run, cal = report.summary, report.run, report.calibration
    answered = [t for c in report.cases for t in c.turns if t.status == "answered"]
    latencies = [t.latency_ms for c in report.cases for t in c.turns]
    kpis = "".join([
        _kpi("accuracy", fmt_pct(s.accuracy), f"{s.n_correct} of {s.n_cases} cases"),
        _kpi("turn accuracy", fmt_pct(s.turn_accuracy), f"{s.n_turns} questions"),
        _kpi("refusal precision", fmt_pct(s.refusal.precision), f"{s.refusal.tp} right, {s.refusal.fp} wrongly declined"),
        _kpi("refusal recall", fmt_pct(s.refusal.recall), f"{s.refusal.fn} should have been declined"),
        _kpi("latency p50", f"{fmt_num(s.latency_ms.get('p50'), 0)} ms", f"p95 {fmt_num(s.latency_ms.get('p95'), 0)} ms"),
        _kpi("ECE", fmt_num(s.confidence.ece), f"Brier {fmt_num(s.confidence.brier)}"),
        _kpi("AUROC", fmt_num(s.confidence.auroc), "confidence for correctness"),
        _kpi("accuracy at ≥ 0.8", fmt_pct(s.confidence.accuracy_at_high),
             f"{fmt_pct(s.confidence.share_at_high)} of answers"),
    ])
    problems = []
    if s.gold_errors:
        problems.append(f"{s.gold_errors} gold SQL statement(s) failed: fix the golden file.")
    if s.crashes:
        problems.append(f"{s.crashes} question(s) crashed LORE (status crash): see the failures.")
    warn = "".join(f'<p class="bad">{_e(p)}</p>' for p in problems)
    check = cal.check
    failures = report.failures()
    statuses = ", ".join(f"{k} {v}" for k, v in s.statuses.items())
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>LORE eval: {_e(Path(run.golden).name)} ({fmt_pct(s.accuracy)})</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>LORE eval report</h1>",
        f'<p class="meta">golden {_e(run.golden)} · project {_e(run.project)} · engine {_e(run.engine)} · '
        f"model {_e(run.model)} "
        f"(planner {_e(run.planner)}) · today {_e(run.today or '-')} · LORE {_e(run.lore_version)} · "
        f"{_e(run.created_at)} · {run.elapsed_s:,.1f} s</p>",
        warn, f'<section class="kpis">{kpis}</section>',
        "<h2>Accuracy</h2>",
        '<div class="charts">' + _chart(accuracy_bars_spec(s.by_category, "Accuracy by category"), "accuracy-by-category")
        + _chart(accuracy_bars_spec(s.by_domain, "Accuracy by domain"), "accuracy-by-domain") + "</div>",
        '<div class="charts">' + _group_table("category", s.by_category) + _group_table("domain", s.by_domain) + "</div>",
        (f"<details><summary>Accuracy by tag ({len(s.by_tag)} tags)</summary>{_group_table('tag', s.by_tag)}</details>"
         if s.by_tag else ""),
        f'<p class="meta">Answer statuses over all questions: {_e(statuses)}.</p>',
        "<h2>Refusals and clarifications</h2>",
        "<p>Positives are the questions the golden set expects LORE to decline (refused or clarify); "
        "a question is predicted positive when LORE refused or asked to clarify.</p>",
        f"<table><tr><th></th><th>declined</th><th>answered (or error)</th></tr>"
        f"<tr><th>should decline</th><td class='num'>{s.refusal.tp}</td><td class='num'>{s.refusal.fn}</td></tr>"
        f"<tr><th>should answer</th><td class='num'>{s.refusal.fp}</td><td class='num'>{s.refusal.tn}</td></tr></table>",
        f"<p>Precision {fmt_pct(s.refusal.precision)}, recall {fmt_pct(s.refusal.recall)}.</p>",
        "<h2>Confidence</h2>",
        '<div class="charts">' + _chart(reliability_spec(s.confidence.bins), "reliability")
        + _chart(confidence_histogram_spec(answered), "confidence-histogram") + "</div>",
        _confidence_table([("all answered questions (as shipped)", s.confidence)]),
        "<h3>Isotonic calibration</h3>",
        f"<p>Fitted by pool-adjacent-violators on split {check.fit_split} of the cases (by a hash of the case id) and "
        f"checked on the other split. <code>lore eval calibrate report.json --write</code> ships the fit on all "
        f"{cal.n} answered questions.</p>",
        _confidence_table([("fit split, raw", check.fit_raw), ("fit split, calibrated", check.fit_calibrated),
                           ("held-out split, raw", check.holdout_raw),
                           ("held-out split, calibrated", check.holdout_calibrated)]),
        '<p class="meta">Fitted points (raw → calibrated): '
        + _e(", ".join(f"{x:g} → {y:g}" for x, y in cal.points)) + "</p>",
        "<h2>Latency</h2>",
        '<div class="charts">' + _chart(latency_spec(latencies, s.latency_ms.get("p50"), s.latency_ms.get("p95")), "latency")
        + "</div>",
        f"<p>p50 {fmt_num(s.latency_ms.get('p50'), 0)} ms, p95 {fmt_num(s.latency_ms.get('p95'), 0)} ms, "
        f"max {fmt_num(s.latency_ms.get('max'), 0)} ms per question (setup before the first question: "
        f"{run.setup_s:,.1f} s).</p>",
        f"<h2>Failures ({len(failures)})</h2>",
        "".join(failure_html(c) for c in failures) or "<p>None.</p>",
        f"<h2>All cases ({len(report.cases)})</h2>", _cases_table(report.cases),
        "</main></body></html>",
    ]
    return "\n".join(parts)
