"""``lore eval``: run a golden set, compare two runs, ship a confidence calibration.

Registered through the ``lore.commands`` entry-point group (``eval = "evals.cli:register"``)::

    lore eval run evals/golden/demo.yaml --project demo --out reports/today [--min-accuracy 0.9]
    lore eval compare reports/yesterday reports/today
    lore eval calibrate reports/today/report.json --write

Exit codes: 0 on success, 1 when ``--min-accuracy`` (or ``--fail-on-regression``)
is not met, 2 on misuse (bad arguments, a broken golden file, no project).
"""

from __future__ import annotations

import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from evals.harness import ConfidenceStats, EvalReport, evaluate, load_golden, select_cases
from evals.report import Comparison, calibration_payload, compare_reports, read_report, write_report
from lore.cli import handle_errors
from lore.errors import ConfigError, OperatorError

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", envvar="LORE_PROJECT", help="Project folder (holds lore.yaml).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command group to the ``lore`` app (the ``lore.commands`` entry point)."""
    app.add_typer(build_app(), name="eval")


def build_app() -> typer.Typer:
    group = typer.Typer(help="Score LORE on a golden question set, compare runs, calibrate the confidence.",
                        no_args_is_help=True)
    group.command("run")(run_cmd)
    group.command("compare")(compare_cmd)
    group.command("calibrate")(calibrate_cmd)
    return group


def _pct(value: float | None) -> str:
    """
    >>> _pct(0.5), _pct(None)
    ('50.0%', '–')
    """
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def parse_today(text: str | None) -> date | None:
    """
    >>> parse_today("2026-11-01"), parse_today(None)
    (datetime.date(2026, 11, 1), None)
    """
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise OperatorError(f"--today must be a date like 2026-11-01, got {text!r}") from None


# --- lore eval run ----------------------------------------------------------------------


def print_summary(report: EvalReport, out: Console) -> None:
    s = report.summary
    head = Table(title=f"LORE eval: {Path(report.run.golden).name}", title_justify="left", header_style="bold")
    head.add_column("figure")
    head.add_column("value", justify="right")
    head.add_row("accuracy", f"{_pct(s.accuracy)} ({s.n_correct}/{s.n_cases} cases)")
    head.add_row("turn accuracy", f"{_pct(s.turn_accuracy)} ({s.n_turns} questions)")
    head.add_row("refusal precision / recall", f"{_pct(s.refusal.precision)} / {_pct(s.refusal.recall)}")
    head.add_row("latency p50 / p95", f"{_num(s.latency_ms.get('p50'), 0)} / {_num(s.latency_ms.get('p95'), 0)} ms")
    head.add_row("ECE / Brier / AUROC", f"{_num(s.confidence.ece)} / {_num(s.confidence.brier)} / {_num(s.confidence.auroc)}")
    head.add_row("accuracy at confidence ≥ 0.8",
                 f"{_pct(s.confidence.accuracy_at_high)} ({_pct(s.confidence.share_at_high)} of answers)")
    if s.gold_errors:
        head.add_row("[red]gold SQL errors[/]", str(s.gold_errors))
    if s.crashes:
        head.add_row("[red]crashes[/]", str(s.crashes))
    out.print(head)
    groups = Table(header_style="bold")
    for col in ("group", "cases", "correct", "accuracy"):
        groups.add_column(col, justify="left" if col == "group" else "right")
    for prefix, stats in (("category", s.by_category), ("domain", s.by_domain)):
        for name, g in stats.items():
            colour = "green" if g.accuracy == 1 else "red" if (g.accuracy or 0) < 0.5 else "yellow"
            groups.add_row(f"{prefix}: {name}", str(g.n), str(g.correct), f"[{colour}]{_pct(g.accuracy)}[/]")
    out.print(groups)
    failures = report.failures()
    if failures:
        table = Table(title=f"Failures ({len(failures)})", title_justify="left", header_style="bold")
        for col in ("case", "question", "why"):
            table.add_column(col, overflow="fold")
        for c in failures[:30]:
            table.add_row(c.id, c.question, c.reason)
        out.print(table)


@handle_errors
def run_cmd(
    golden: Annotated[Path, typer.Argument(help="The golden YAML file (e.g. evals/golden/demo.yaml).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.json and report.html.")],
    project: ProjectOpt = Path("."),
    model: Annotated[str, typer.Option("--model", envvar="LORE_MODEL", help="Planner model (recorded in the report): offline.")] = "offline",
    today: Annotated[Optional[str], typer.Option("--today", help="Resolve relative dates against this day (default: the golden file's, then the project's).")] = None,
    min_accuracy: Annotated[Optional[float], typer.Option("--min-accuracy", help="Exit 1 when the accuracy is below this (0..1).")] = None,
    case: Annotated[Optional[list[str]], typer.Option("--case", "-k", help="Only cases whose id or category matches this pattern, e.g. 'stream-*' or top_n (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask every golden question through LORE, score the answers by execution, write JSON and HTML reports."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lore.core import Lore

    if min_accuracy is not None and not 0 <= min_accuracy <= 1:
        raise OperatorError(f"--min-accuracy must be between 0 and 1, got {min_accuracy}")
    golden_set = select_cases(load_golden(golden), case or ())
    if not golden_set.cases:
        raise OperatorError(f"no case of {golden} matches {', '.join(case or ())}",
                            hint="--case matches case ids or categories with shell-style patterns, e.g. 'stream-*'.")
    day = parse_today(today) or golden_set.today
    # the planner is measured, not the verified examples a project may have learnt from feedback
    overrides: dict[str, Any] = {"model": model, "feedback": False}
    if day is not None:
        overrides["today"] = day
    err = Console(stderr=True, highlight=False)
    with Lore.open(project, **overrides) as lore:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("Opening the project and building the index", total=len(golden_set.cases))

            def progress(done: int, total: int, case_id: str) -> None:
                bar.update(task, completed=done, description=f"Asked {case_id}")

            report = evaluate(lore, golden_set, golden, progress=progress)
    json_path, html_path = write_report(report, out)
    passed = min_accuracy is None or (report.summary.accuracy or 0.0) >= min_accuracy
    if as_json:
        typer.echo(json.dumps({"summary": report.summary.model_dump(mode="json", exclude={"confidence": {"bins"}}),
                               "json": str(json_path), "html": str(html_path), "passed": passed}, indent=2))
    else:
        print_summary(report, Console(highlight=False))
        err.print(f"Reports: {json_path} and {html_path}")
    if not passed:
        err.print(f"[red]Accuracy {_pct(report.summary.accuracy)} is below --min-accuracy {_pct(min_accuracy)}.[/]")
        raise typer.Exit(1)


# --- lore eval compare ------------------------------------------------------------------


def print_comparison(cmp: Comparison, out: Console) -> None:
    delta = (cmp.accuracy_b - cmp.accuracy_a) if cmp.accuracy_a is not None and cmp.accuracy_b is not None else None
    sign = "" if delta is None else f" ({delta:+.1%})"
    out.print(f"Accuracy {_pct(cmp.accuracy_a)} → {_pct(cmp.accuracy_b)}{sign}: "
              f"{len(cmp.of('fixed'))} fixed, {len(cmp.of('broken'))} broken, {len(cmp.of('changed'))} changed, "
              f"{len(cmp.of('added'))} added, {len(cmp.of('removed'))} removed; "
              f"{cmp.unchanged_correct} still correct, {cmp.unchanged_wrong} still wrong.")
    cats = Table(header_style="bold", title="By category", title_justify="left")
    for col in ("category", "A", "B"):
        cats.add_column(col, justify="left" if col == "category" else "right")
    for name, (a, b) in cmp.by_category.items():
        colour = "green" if (a or 0) < (b or 0) else "red" if (a or 0) > (b or 0) else "default"
        cats.add_row(name, _pct(a), f"[{colour}]{_pct(b)}[/]")
    out.print(cats)
    if cmp.changes:
        table = Table(title="Case by case", title_justify="left", header_style="bold")
        for col in ("change", "case", "question", "before", "after"):
            table.add_column(col, overflow="fold")
        colours = {"fixed": "green", "broken": "red", "changed": "yellow", "added": "cyan", "removed": "magenta"}
        for c in cmp.changes:
            table.add_row(f"[{colours[c.change]}]{c.change}[/]", c.id, c.question, c.before, c.after)
        out.print(table)


@handle_errors
def compare_cmd(
    before: Annotated[Path, typer.Argument(help="The earlier report.json (or its folder).")],
    after: Annotated[Path, typer.Argument(help="The later report.json (or its folder).")],
    as_json: JsonOpt = False,
    fail_on_regression: Annotated[bool, typer.Option("--fail-on-regression", help="Exit 1 when a case that was correct is now wrong.")] = False,
) -> None:
    """Show what got better or worse between two eval runs, case by case."""
    cmp = compare_reports(read_report(before), read_report(after))
    if as_json:
        typer.echo(cmp.model_dump_json(indent=2))
    else:
        print_comparison(cmp, Console(highlight=False))
    if fail_on_regression and cmp.of("broken"):
        raise typer.Exit(1)


# --- lore eval calibrate ----------------------------------------------------------------


def shipped_calibration_path() -> Path:
    """Where :mod:`lore.explain.confidence` reads the calibration table from."""
    return Path(str(resources.files("lore.explain").joinpath("calibration.json")))


def _stats_row(table: Table, name: str, s: ConfidenceStats) -> None:
    table.add_row(name, str(s.n), _num(s.ece), _num(s.brier), _num(s.auroc), _pct(s.accuracy_at_high))


@handle_errors
def calibrate_cmd(
    report_path: Annotated[Path, typer.Argument(metavar="REPORT", help="A report.json written by `lore eval run`.")],
    write: Annotated[bool, typer.Option("--write", help="Write the fitted points to lore/explain/calibration.json.")] = False,
    to: Annotated[Optional[Path], typer.Option("--to", help="Write to this file instead of lore/explain/calibration.json.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the confidence calibration (isotonic) on a report; check it on a held-out split; optionally ship it."""
    report = read_report(report_path)
    cal = report.calibration
    payload = calibration_payload(report)
    if as_json:
        typer.echo(json.dumps(payload | {"check": cal.check.model_dump(mode="json")}, indent=2))
    else:
        out = Console(highlight=False)
        table = Table(title="Calibration check (isotonic fit on split "
                            f"{cal.check.fit_split}, by a hash of the case id)", title_justify="left", header_style="bold")
        for col in ("", "answers", "ECE", "Brier", "AUROC", "accuracy ≥ 0.8"):
            table.add_column(col, justify="left" if not col else "right", no_wrap=not col)
        _stats_row(table, "fit split, raw", cal.check.fit_raw)
        _stats_row(table, "fit split, calibrated", cal.check.fit_calibrated)
        _stats_row(table, "held-out split, raw", cal.check.holdout_raw)
        _stats_row(table, "held-out split, calibrated", cal.check.holdout_calibrated)
        out.print(table)
        out.print(f"Fitted on all {cal.n} answered questions (raw → calibrated): "
                  + ", ".join(f"{x:g} → {y:g}" for x, y in cal.points))
        if cal.n < 30:
            out.print(f"[yellow]Only {cal.n} answered questions: the fit is noisy.[/]")
    if write:
        if cal.n == 0:
            raise ConfigError("The report has no answered questions to fit a calibration on.",
                              hint="Run a golden set with answerable questions first.")
        target = to or shipped_calibration_path()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"Cannot write {target}: {err.strerror or err}") from None
        Console(stderr=True, highlight=False).print(f"Wrote {len(cal.points)} calibration points to {target}")
