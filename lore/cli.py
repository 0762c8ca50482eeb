"""The ``lore`` command.

Exit codes: 0 on success, 1 on a failed check (validation issues, a refused or
failed query), 2 on misuse (bad arguments, unknown names, no project).

Commands from other parts of the product (the chat page, the Slack bot, the
eval harness, feedback) plug in through the ``lore.commands`` entry-point
group: each entry point is a ``register(app: typer.Typer) -> None`` function.
The core never imports them.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lore import __version__
from lore.errors import (
    AskerError,
    EngineError,
    GuardError,
    LoreError,
    OperatorError,
    SemanticLayerError,
)
from lore.explain.format import format_value
from lore.onboard.dbt_cli import dbt_cmd
from lore.tables import table_key
from lore.types import ResultSet

if TYPE_CHECKING:  # pragma: no cover
    from lore.project import Project

app = typer.Typer(
    name="lore",
    help="LORE: ask your warehouse questions in plain words, answered from governed metric definitions.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
demo_app = typer.Typer(help="Create and explore the demo warehouse.", no_args_is_help=True)
semantic_app = typer.Typer(help="Inspect and validate the semantic layer.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(semantic_app, name="semantic")
cache_app = typer.Typer(help="The answer cache: warm it with example questions (the nightly pre-cache), see or clear "
                             "its shared file (.lore/answers.sqlite).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
import_app = typer.Typer(help="Import a semantic layer written for another tool (dbt's MetricFlow).", no_args_is_help=True)
app.add_typer(import_app, name="import")
access_app = typer.Typer(help="Per-user access (the access section of lore.yaml): check it and see what a user sees.",
                         no_args_is_help=True)
app.add_typer(access_app, name="access")
warehouse_app = typer.Typer(help="Move a project's DuckDB warehouse to another engine (PostgreSQL, Spark).",
                            no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", envvar="LORE_PROJECT", help="Project folder (holds lore.yaml).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

F = TypeVar("F", bound=Callable[..., Any])


def exit_code(err: LoreError) -> int:
    """1 for a failed check, 2 for misuse.

    >>> exit_code(GuardError("no")), exit_code(OperatorError("x"))
    (1, 2)
    """
    if isinstance(err, (SemanticLayerError, GuardError, EngineError)):
        return 1
    if isinstance(err, (AskerError, OperatorError)):
        return 2
    return 1


def handle_errors(func: F) -> F:
    """Turn LORE errors into a clear message and the right exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LoreError as err:
            Console(stderr=True).print(f"[bold red]Error:[/] {escape(str(err))}", highlight=False, markup=True,
                                       soft_wrap=True)
            raise typer.Exit(exit_code(err)) from None

    return wrapper  # type: ignore[return-value]


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def result_table(result: ResultSet, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in result.columns:
        numeric = col.kind == "metric" or (col.type or "").upper() in ("BIGINT", "INTEGER", "DOUBLE", "HUGEINT", "FLOAT", "DECIMAL")
        table.add_column(col.label or col.name, justify="right" if numeric else "left")
    for row in result.rows:
        table.add_row(*[format_value(v, c) for v, c in zip(row, result.columns)])
    if result.truncated:
        table.caption = f"Showing the first {len(result.rows):,} rows (row cap reached)."
    return table


def result_json(result: ResultSet) -> dict[str, Any]:
    return {
        "columns": [c.model_dump(exclude_none=True) for c in result.columns],
        "rows": [list(r) for r in result.rows],
        "truncated": result.truncated,
        "elapsed_ms": round(result.elapsed_ms, 2),
    }


def _open(project: Path, **overrides: Any):
    from lore.core import Lore  # lazy: loaded by the command that needs it

    return Lore.open(project, **overrides)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = None,
) -> None:
    """LORE: ask your warehouse questions in plain words, answered from governed metric definitions."""


# --- lore sql -----------------------------------------------------------------


@app.command("sql")
@handle_errors
def sql_cmd(
    metric: Annotated[list[str], typer.Option("--metric", "-m", help="Metric name (repeatable).")],
    dimension: Annotated[Optional[list[str]], typer.Option("--dimension", "-d", help="Dimension reference, e.g. countries.region or metric_time:month (repeatable).")] = None,
    filter: Annotated[Optional[list[str]], typer.Option("--filter", "-f", help="Filter predicate, e.g. \"accounts.plan = 'premium'\" (repeatable).")] = None,
    order_by: Annotated[Optional[list[str]], typer.Option("--order-by", "-o", help="Metric or dimension to order by; prefix with - for descending.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-l", min=1, help="Maximum rows.")] = None,
    dialect: Annotated[Optional[str], typer.Option("--dialect", help="SQL dialect to render (duckdb, postgres, snowflake, bigquery, trino, spark, ...).")] = None,
    run: Annotated[bool, typer.Option("--run", help="Run the query on the warehouse and print the table.")] = False,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Compile metrics by dimensions with filters to SQL (DataJunction-style); --run executes it."""
    lore = _open(project)
    with lore:
        compiled = lore.semantic.compile(metric, dimension or (), filter or (), order_by or (), limit, dialect=dialect)
        if not run:
            if as_json:
                typer.echo(json.dumps({"sql": compiled.sql, "dialect": compiled.dialect,
                                       "columns": [c.model_dump(exclude_none=True) for c in compiled.columns],
                                       "joins": list(compiled.joins)}, indent=2))
            else:
                typer.echo(compiled.sql)
            return
        if compiled.dialect != lore.dialect:
            raise OperatorError(f"--run executes on the project's engine, which runs {lore.dialect} SQL",
                                hint="Drop --dialect, or leave out --run to print SQL for another engine.")
        result = lore.run_compiled(compiled)
        if as_json:
            typer.echo(json.dumps({"sql": compiled.sql, **result_json(result)}, indent=2))
        else:
            console().print(result_table(result))


# --- lore ask -------------------------------------------------------------------


def _print_answer(answer: Any, out: Console, *, explain: bool, dialect: str = "duckdb") -> None:
    from rich.panel import Panel  # lazy: loaded by the command that needs it

    colour = {"answered": "green", "clarify": "yellow", "refused": "red", "error": "red"}[answer.status]
    badge = f"confidence {answer.confidence_label} ({answer.confidence:.2f})" if answer.status == "answered" else answer.status
    from rich.text import Text  # lazy: loaded by the command that needs it

    out.print(Panel(Text(answer.message), title=f"[{colour}]{badge}[/]", title_align="left", expand=False), highlight=False)
    if answer.suggestions:
        out.print("Closest: " + ", ".join(answer.suggestions), highlight=False)
    if answer.rows and len(answer.columns) and answer.status == "answered":
        result = ResultSet(columns=answer.columns, rows=answer.rows, truncated=answer.truncated)
        out.print(result_table(result, title=answer.chart_title))
    if explain:
        trace = answer.trace
        if trace is not None and trace.retrieved:
            ctx = Table(title="Retrieved context", title_justify="left", header_style="bold")
            for head in ("kind", "ref", "value", "score"):
                ctx.add_column(head)
            for hit in trace.retrieved[:12]:
                ctx.add_row(hit.kind, hit.ref, hit.value or "", f"{hit.score:.2f}")
            out.print(ctx)
        if answer.plan is not None:
            out.print("[bold]Plan[/]", highlight=False)
            out.print_json(json.dumps(answer.plan.semantic_query().model_dump(mode="json", exclude_defaults=True)))
        if answer.reasoning:
            out.print("[bold]Reasoning[/]")
            for i, step in enumerate(answer.reasoning, 1):
                out.print(f"  {i}. {step}", highlight=False, markup=False)
        if answer.sql:
            from lore.project import ENGINE_NAMES

            out.print(f"[bold]SQL[/] (after the guard, as it ran on {ENGINE_NAMES.get(dialect, dialect)})",
                      highlight=False)
            from lore.explain.format import pretty_sql  # lazy: loaded by the command that needs it

            out.print(pretty_sql(answer.sql, dialect), highlight=False, markup=False)
        if answer.confidence_factors:
            conf = Table(title="Confidence factors", title_justify="left", header_style="bold")
            conf.add_column("factor")
            conf.add_column("value", justify="right")
            for k, v in answer.confidence_factors.items():
                conf.add_row(k, f"{v:.2f}")
            out.print(conf)
        if trace is not None and trace.timings:
            out.print("Stages: " + ", ".join(f"{t.stage} {t.ms:.1f} ms" for t in trace.timings), style="dim")


@app.command("ask")
@handle_errors
def ask_cmd(
    question: Annotated[list[str], typer.Argument(help="The question, in plain words. Several questions form one conversation.")],
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
    explain: Annotated[bool, typer.Option("--explain", help="Show the retrieved context, the plan, the SQL and the confidence breakdown.")] = False,
    model: Annotated[str, typer.Option("--model", envvar="LORE_MODEL", help="Planner model: offline (default, no model), local (the bundled Qwen2.5-Coder-0.5B), openai:<model> (honours OPENAI_BASE_URL and OPENAI_API_KEY) or any LangChain provider:model.")] = "offline",
    today: Annotated[Optional[str], typer.Option("--today", help="Resolve relative dates against this day (YYYY-MM-DD).")] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="Who is asking: recorded with the answer and, when lore.yaml has an access section, what they may see (the CLI trusts whoever runs it).")] = None,
) -> None:
    """Ask questions in plain words; each answer comes with its reasoning and a confidence score.

    Pass several questions to ask them as one conversation (follow-ups refine the previous answer):
    lore ask "streaming hours by region in 2026" "now only premium accounts"
    """
    from datetime import date  # lazy: loaded by the command that needs it

    overrides: dict[str, Any] = {"model": model}
    if today:
        try:
            overrides["today"] = date.fromisoformat(today)
        except ValueError:
            raise OperatorError(f"--today must be a date like 2026-11-01, got {today!r}") from None
    if model != "offline":
        from lore.llm.models import check_spec  # lazy: loaded by the command that needs it

        check_spec(model)  # a missing key or package fails here, before any work
    lore = _open(project, **overrides)
    out = console()
    answers = []
    with lore:
        # the engine, the index (built on a project's first question) and the planner open before the first
        # question's clock starts, as the chat page and the servers do: a Spark driver alone takes seconds to start
        with Console(stderr=True).status("Opening the warehouse, the index and the planner…", spinner="dots"):
            lore.warm_up()
        chat = lore.chat(user=user)
        for q in question:
            answers.append(chat.ask(q))
    if as_json:
        payload = [a.to_json() | ({"trace": a.trace.model_dump(mode="json")} if explain and a.trace else {}) for a in answers]
        typer.echo(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, default=str))
    else:
        for q, a in zip(question, answers):
            if len(question) > 1:
                out.print(f"[bold]> {escape(q)}[/]", highlight=False)
            _print_answer(a, out, explain=explain, dialect=lore.dialect)
    if any(a.status == "error" for a in answers):
        raise typer.Exit(1)


@app.command("logs")
@handle_errors
def logs_cmd(
    project: ProjectOpt = Path("."),
    n: Annotated[int, typer.Option("-n", "--count", min=1, help="How many exchanges to show, newest first.")] = 20,
    answer: Annotated[Optional[str], typer.Option("--answer", help="Only the exchanges behind this answer id (as shown by `lore ask --json`, the chat page's feedback or the feedback store).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the latest LLM exchanges (prompt, response, model, latency, tokens, outcome) from .lore/llm.sqlite."""
    from rich.markup import escape  # lazy: loaded by the command that needs it

    from lore.llm.log import LOG_FILE, ExchangeLog  # lazy: loaded by the command that needs it
    from lore.project import Project  # lazy: loaded by the command that needs it

    proj = Project.open(project)
    path = proj.state_dir / LOG_FILE
    rows = ExchangeLog.open(path).recent(n, answer_id=answer) if path.exists() else []
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    out = console()
    if not rows:
        out.print(f"No LLM exchanges logged yet in {path} (ask with --model to log some).")
        return
    out.print(f"LLM exchanges in {path}, newest first:", style="bold", highlight=False)
    colour = {"ok": "green", "refused": "yellow", "invalid": "yellow", "timeout": "red", "error": "red"}
    for r in rows:
        tokens = f"{r.tokens_in if r.tokens_in is not None else '?'}→{r.tokens_out if r.tokens_out is not None else '?'} tokens"
        link = f"  answer {r.answer_id}" if r.answer_id else ""
        out.print(f"#{r.id}  {r.created_at[:19].replace('T', ' ')}  {escape(r.model)}{link}  "
                  f"[{colour.get(r.outcome, 'white')}]{r.outcome}[/]  try {r.attempt}  {r.latency_ms:,.0f} ms  {tokens}",
                  highlight=False)
        out.print(f"  Q: {escape(r.question)}", highlight=False, soft_wrap=True)
        said = " ".join((r.response or "").split())
        out.print(f"  A: {escape(said[:300])}{'…' if len(said) > 300 else ''}", highlight=False, soft_wrap=True)
        if r.error:
            out.print(f"  why: {escape(' '.join(r.error.split())[:300])}", highlight=False, soft_wrap=True)


@app.command("index")
@handle_errors
def index_cmd(
    action: Annotated[str, typer.Argument(help="build: (re)build the retrieval index now.")] = "build",
    project: ProjectOpt = Path("."),
) -> None:
    """Build the retrieval index of metrics, dimensions and values (otherwise built on first question)."""
    import time  # lazy: loaded by the command that needs it

    if action != "build":
        raise OperatorError(f"unknown action {action!r}", hint="Use: lore index build")
    lore = _open(project)
    t0 = time.perf_counter()
    with lore:
        retriever = lore.retriever
        counts = {k: retriever.count(k) for k in ("metric", "dimension", "value", "example")}
    console().print(f"Index ready in {time.perf_counter() - t0:.1f} s: " + ", ".join(f"{v:,} {k}s" for k, v in counts.items()),
                    highlight=False)


# --- lore doctor --------------------------------------------------------------------

_DOCTOR_MARK = {"ok": "[green]✓ ok  [/]", "warn": "[yellow]! warn[/]", "fail": "[bold red]✗ FAIL[/]", "skip": "[dim]- skip[/]"}


@app.command("doctor")
@handle_errors
def doctor_cmd(
    project: Annotated[Optional[Path], typer.Option("--project", "-p", envvar="LORE_PROJECT",
                                                    help="Project folder to check too (default: this folder when it "
                                                         "holds lore.yaml).")] = None,
    local_model: Annotated[bool, typer.Option("--local-model/--no-local-model",
                                              help="Run the local model's short completion in a child process "
                                                   "(when llama-cpp-python is installed).")] = True,
    model: Annotated[Optional[str], typer.Option("--model", help="The model setting to check (default: LORE_MODEL).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check this set-up: Python, extras, the embedder, a project's warehouse, layer, index and stores, the local model.

    Each check prints ok, a warning or a failure with its fix; the exit code is 1 when any check failed.
    """
    import contextlib  # lazy: loaded by the command that needs it

    from lore import doctor  # lazy: loaded by the command that needs it
    from lore.settings import Settings  # lazy: loaded by the command that needs it

    settings = Settings() if model is None else Settings(model=model)
    ctx = doctor.DoctorContext(settings=settings, project=doctor.find_project(project), local_model=local_model)
    out = console()

    def show(check: doctor.Check) -> None:
        if as_json:
            return
        out.print(f"{_DOCTOR_MARK[check.status]} [bold]{escape(check.name)}[/]: {escape(check.detail)}", soft_wrap=True)
        if check.fix and check.status in ("warn", "fail"):
            out.print(f"         [dim]fix:[/] {escape(check.fix)}", soft_wrap=True)

    spinner = Console(stderr=True).status("Checking…", spinner="dots") if not as_json else contextlib.nullcontext()
    with spinner:
        results = doctor.run(ctx, on_check=show)
    code = doctor.exit_code(results)
    if as_json:
        typer.echo(json.dumps({"ok": code == 0, "checks": [c.model_dump() for c in results]}, indent=2))
    else:
        counts = {s: sum(c.status == s for c in results) for s in ("ok", "warn", "fail", "skip")}
        verdict = "[bold red]Some checks failed.[/]" if code else "[green]All checks passed.[/]"
        out.print(f"{verdict} {counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failures, "
                  f"{counts['skip']} skipped.")
    raise typer.Exit(code)


# --- lore cache ---------------------------------------------------------------------

#: the example questions `lore cache warm` asks when no --questions file is given (if present in the working folder)
DEFAULT_WARM_QUESTIONS = Path("evals/bench/questions.yaml")


@cache_app.command("warm")
@handle_errors
def cache_warm(
    project: ProjectOpt = Path("."),
    questions: Annotated[Optional[Path], typer.Option("--questions", "-q", help="YAML list of questions (default: evals/bench/questions.yaml if present, else one question per metric).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open everything and answer the example questions, so their results are in the answer cache.

    Results are persisted in the project's shared cache file (.lore/answers.sqlite), so a process
    started later (the chat page, the Slack bot, `lore ask`) gets cache hits for these questions until
    the warehouse or the semantic layer changes, or the day does. It also builds the on-disk parts
    (index, embeddings, value lists) and checks that every example question answers, with its timings.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lore.cache import catalog_questions, read_questions, warm  # lazy: loaded by the command that needs it

    lore = _open(project)
    out = Console(stderr=True)
    with lore:
        path = questions or (DEFAULT_WARM_QUESTIONS if DEFAULT_WARM_QUESTIONS.is_file() else None)
        asked = read_questions(path) if path is not None else catalog_questions(lore.layer)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=out, transient=True, disable=as_json) as bar:
            task = bar.add_task("Warming up", total=len(asked))

            def progress(done: int, total: int, question: str) -> None:
                bar.update(task, completed=done, description=f"Asking: {question[:40]}")

            report = warm(lore, asked, progress=progress)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    source = str(path) if path is not None else "one question per metric"
    stats = report.stats
    out.print(f"[green]Warmed[/] in {report.seconds:.1f} s: {report.answered}/{report.questions} questions answered "
              f"({source}); {stats.entries if stats else 0} results cached"
              f"{'' if stats else ' (the answer cache is off: LORE_ANSWER_CACHE)'}.", highlight=False)
    disk = stats.disk if stats else None
    if disk is not None and disk.error is None:
        out.print(f"Persisted in {disk.path} ({disk.results} results, {disk.plans} plans, {_mib(disk.bytes)} of "
                  f"{_mib(disk.max_bytes)}): later processes of this project get cache hits for these questions "
                  "until the data, the semantic layer or the day changes.", highlight=False)
    elif stats is not None:
        why = disk.error if disk is not None else "LORE_ANSWER_CACHE_DISK_MB is 0"
        out.print(f"[yellow]Not persisted[/] ({why}): the results stay in this process only.", highlight=False)
    out.print("Warm-up: " + ", ".join(f"{k} {v:.2f} s" for k, v in report.warm_up_s.items()), highlight=False)
    for q in report.not_answered:
        out.print(f"  [yellow]not answered:[/] {escape(q)}", highlight=False)


def _mib(n: int) -> str:
    """A byte count in MiB.

    >>> _mib(3 * 1024 * 1024), _mib(1500)
    ('3.0 MiB', '0.0 MiB')
    """
    return f"{n / 2**20:.1f} MiB"


def _disk_cache(project: Path):  # -> DiskCache
    """The project's shared cache file (even when settings turn it off: it can still be seen and cleared)."""
    from lore.cache import DISK_FILE, DiskCache  # lazy: loaded by the command that needs it

    lore = _open(project)
    size = lore.settings.answer_cache_disk_mb or 256
    return DiskCache(lore.project.state_dir / DISK_FILE, max_bytes=size * 1024 * 1024)


@cache_app.command("stats")
@handle_errors
def cache_stats(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Show the shared cache file: results and plans stored, size and bound."""
    disk = _disk_cache(project)
    stats = disk.stats()
    if as_json:
        typer.echo(json.dumps(stats.model_dump(mode="json"), indent=2))
    else:
        console().print(f"{stats.path}: {stats.results} results, {stats.plans} plans, {_mib(stats.bytes)} of "
                        f"{_mib(stats.max_bytes)}" + (f" [red]unusable:[/] {stats.error}" if stats.error else ""),
                        highlight=False)
    if stats.error:
        raise typer.Exit(1)


@cache_app.command("clear")
@handle_errors
def cache_clear(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Empty the shared cache file (a corrupt one is removed); running processes keep their in-memory entries."""
    import sqlite3  # lazy: loaded by the command that needs it

    disk = _disk_cache(project)
    try:
        removed = disk.clear()
    except (sqlite3.Error, OSError) as err:
        raise OperatorError(f"Cannot clear the answer cache file {disk.path}: {err}",
                            hint="Check the file's permissions, or delete it while no LORE process runs.") from None
    if as_json:
        typer.echo(json.dumps({"path": str(disk.path), "removed": removed}))
    else:
        console().print(f"Cleared {disk.path}: {removed} entries removed.", highlight=False)


# --- lore semantic --------------------------------------------------------------


@semantic_app.command("validate")
@handle_errors
def semantic_validate(
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
) -> None:
    """Check the semantic layer against the warehouse; list every issue with file and line (exit 1 on errors)."""
    from lore.core import Lore  # lazy: loaded by the command that needs it
    from lore.semantic.load import read_layer  # lazy: loaded by the command that needs it
    from lore.semantic.validate import validate  # lazy: loaded by the command that needs it

    lore = Lore.open(project)
    with lore:
        layer, issues = read_layer(lore.project.semantic_path)
        schema = lore.engine.schema() if lore.project.has_warehouse else None
        if not any(i.severity == "error" for i in issues):
            issues += validate(layer, schema)
        if schema is not None and not any(i.severity == "error" for i in issues):
            issues += [i for i in validate(layer, schema, values=lore.values) if i.code == "unknown_synonym_value"]
    errors = [i for i in issues if i.severity == "error"]
    warnings = [i for i in issues if i.severity == "warning"]
    if as_json:
        typer.echo(json.dumps({"ok": not errors, "issues": [i.model_dump(exclude_none=True) for i in issues],
                               "metrics": len(layer.metrics), "nodes": len(layer.nodes)}, indent=2))
    else:
        out = console()
        for issue in issues:
            colour = "red" if issue.severity == "error" else "yellow"
            out.print(f"[{colour}]{issue.severity}[/] {escape(issue.render())}", highlight=False)
        status = "[green]OK[/]" if not errors else "[red]FAILED[/]"
        out.print(f"{status}: {len(layer.metrics)} metrics, {len(layer.nodes)} nodes, "
                  f"{len(errors)} error(s), {len(warnings)} warning(s).")
    if errors or (strict and warnings):
        raise typer.Exit(1)


@semantic_app.command("list")
@handle_errors
def semantic_list(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """List the metrics and dimensions you can ask for."""
    from lore.core import Lore  # lazy: loaded by the command that needs it
    from lore.semantic.load import load_layer  # lazy: loaded by the command that needs it

    lore = Lore.open(project)
    layer = load_layer(lore.project.semantic_path)
    if as_json:
        typer.echo(json.dumps({
            "metrics": [m.model_dump(exclude_defaults=True) for m in layer.metrics.values()],
            "dimensions": [f"{n.name}.{c.name}" for n in layer.nodes.values() for c in n.columns],
        }, indent=2))
        return
    table = Table(title="Metrics", title_justify="left", header_style="bold")
    for head in ("metric", "definition", "unit", "owner"):
        table.add_column(head)
    for m in layer.metrics.values():
        definition = m.expr if m.is_derived else f"{m.agg}({m.expr}) over {m.source}" + (f" where {m.filter}" if m.filter else "")
        table.add_row(m.name, definition, m.unit or "", m.owner or "")
    out = console()
    out.print(table)
    dims = Table(title="Dimensions (plus metric_time:day|week|month|quarter|year)", title_justify="left", header_style="bold")
    dims.add_column("reference")
    dims.add_column("description")
    for n in layer.nodes.values():
        for c in n.columns:
            if c.kind != "identifier":
                dims.add_row(f"{n.name}.{c.name}" + (":<grain>" if c.kind == "time" else ""), c.description)
    out.print(dims)


# --- lore access ------------------------------------------------------------------


@access_app.command("show")
@handle_errors
def access_show(
    user: Annotated[Optional[str], typer.Option("--user", help="Show what this identity sees (an email, or slack:TEAM:USER).")] = None,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Check every group and user of the access section; with --user, what that identity may see."""
    from lore.access import build_scope, rules_for  # lazy: loaded by the command that needs it

    lore = _open(project)
    with lore:
        config = lore.access
        if config is None:
            raise OperatorError("This project has no access section: every user sees every metric and row.",
                                hint="Add access: to lore.yaml (see the README's 'Access control').")
        identities = [user] if user else [*config.users, *(m for g in config.groups.values() for m in g.members)]
        rows = []
        seen: set[str] = set()
        for identity in identities:
            person = config.principal(identity)
            if person.id in seen:
                continue
            seen.add(person.id)
            who = {"user": person.name, "principal": person.id, "identities": list(person.identities),
                   "groups": list(person.groups), "asked_as": identity}
            rules = rules_for(config, identity)
            if rules is None:
                rows.append({**who, "rules": [], "metrics": sorted(lore.layer.metrics), "hidden_metrics": [],
                             "hidden_tables": [], "row_filters": []})
                continue
            scope = build_scope(lore.layer, lore.schema, rules, dialect=lore.dialect)  # ConfigError: a bad rule
            rows.append({**who, "rules": [n for n, _ in rules], "metrics": sorted(scope.layer.metrics),
                         "hidden_metrics": sorted(set(lore.layer.metrics) - set(scope.layer.metrics)),
                         "hidden_tables": sorted(t for t in lore.schema
                                                 if table_key(t) not in {table_key(v) for v in scope.schema}),
                         "row_filters": list(scope.row_labels)})
    if as_json:
        typer.echo(json.dumps({"default": config.default, "users": rows}, indent=2))
        return
    table = Table(title=f"Access (people no rule names: {config.default})", title_justify="left", header_style="bold")
    for head in ("person (identities)", "groups", "rules", "metrics", "hidden tables", "row filters"):
        table.add_column(head)
    for row in rows:
        others = [i for i in row["identities"] if i != row["user"].casefold()]
        table.add_row(row["user"] + (f" ({', '.join(others)})" if others else ""), ", ".join(row["groups"]),
                      ", ".join(row["rules"]) or "(none: no limits)",
                      f"{len(row['metrics'])} of {len(lore.layer.metrics)}", ", ".join(row["hidden_tables"]),
                      "; ".join(row["row_filters"]))
    console().print(table)
    if user and rows:
        console().print("Metrics: " + ", ".join(rows[0]["metrics"]), highlight=False)


# --- lore init ------------------------------------------------------------------


@app.command("init")
@handle_errors
def init_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder to create the project in (lore.yaml and semantic/).")],
    warehouse: Annotated[Optional[Path], typer.Option("--warehouse", "-w", help="The DuckDB file to draft a layer for (opened read-only); "
                                                                           "with --engine spark, a folder of Parquet tables.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="duckdb (the --warehouse file), postgres (the server whose URL "
                                                         "is in --url-env) or spark (the --warehouse folder in local "
                                                         "mode, or the catalog of the Spark Connect server in --url-env).")] = "duckdb",
    url_env: Annotated[Optional[str], typer.Option("--url-env", help="The environment variable holding the URL (written into "
                                                                     "lore.yaml, the URL is not): postgres, LORE's read-only "
                                                                     "role's (default LORE_POSTGRES_URL); spark, a Spark Connect "
                                                                     "server's (default LORE_SPARK_REMOTE).")] = None,
    schema: Annotated[str, typer.Option("--schema", help="--engine postgres: the schema whose tables go by bare names.")]
    = "public",
    databases: Annotated[Optional[str], typer.Option("--databases", help="--engine spark over a catalog: other databases "
                                                                         "to draft too, comma-separated (their tables "
                                                                         "named database.table).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a project already in FOLDER (its lore.yaml and semantic/ "
                                                        "are moved to .lore/backup/ first).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Draft a project over your own warehouse (a DuckDB file, PostgreSQL, or Spark: Parquet tables or a Spark Connect
    catalog): finds facts, dimensions, keys, links, categories and amounts, drafts metrics, and marks what to check
    with '# review:' comments."""
    from datetime import date, timedelta

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from lore.onboard.init import init_project  # lazy: loaded by the command that needs it
    from lore.project import EngineConfig

    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("Reading the catalog", total=None)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, description=escape(step), completed=done, total=total)

        if engine not in ("duckdb", "postgres", "spark"):
            raise OperatorError(f"--engine {engine!r} is not one lore init drafts from",
                                hint="Use duckdb, postgres or spark.")
        wanted = [d.strip() for d in (databases or "").split(",") if d.strip()]
        if wanted and engine != "spark":
            raise OperatorError("--databases names Spark catalog databases",
                                hint="Use it with --engine spark (on PostgreSQL every schema the role may read is drafted).")
        config = EngineConfig.model_validate({"type": engine, "schema": schema, "databases": wanted}
                                             | ({"url_env": url_env} if url_env else {}))
        result = init_project(folder, warehouse, force=force, progress=progress, engine=config)
    draft = result.draft
    if as_json:
        typer.echo(json.dumps({
            "project": str(result.root), "warehouse": str(result.warehouse), "files": list(result.files),
            "facts": draft.facts, "dimensions": draft.dimensions, "keys": draft.keys, "links": draft.links,
            "metrics": draft.metrics, "review_notes": draft.notes, "data_ends": draft.data_ends, "skipped": [list(s) for s in draft.skipped],
            "backup": str(result.backup) if result.backup else None,
            "issues": [i.model_dump() for i in result.issues]}, indent=2))
        raise typer.Exit(1 if result.errors else 0)
    out = console()
    shown = result.warehouse.name if isinstance(result.warehouse, Path) else result.warehouse
    table = Table(title=f"Drafted from {escape(shown)}", title_justify="left", header_style="bold")
    for head in ("file", "kind", "table", "key", "links", "metrics", "to review"):
        table.add_column(head, justify="right" if head in ("links", "metrics", "to review") else "left")
    for f in draft.files:
        item = (f.sources or f.dimensions)[0]
        key = item.data.get("primary_key")
        table.add_row(f"{f.name}.yaml", "fact" if f.sources else "dimension", escape(str(item.data.get("table") or next((d.data["table"] for d in f.dimensions if "table" in d.data), "sql:"))),
                      ", ".join(key) if key else "[yellow]none[/]", str(len(item.data.get("links", ()))),
                      str(len(f.metrics)), str(len(item.notes) + sum(len(m.notes) for m in f.metrics)))
    out.print(table)
    found = lambda counts: ", ".join(f"{n} {ev.replace('_', ' ')}" for ev, n in sorted(counts.items())) or "none"  # noqa: E731
    out.print(f"Keys: {found(draft.keys)}. Links: {found(draft.links)}. Metrics drafted: {draft.metrics}.", highlight=False)
    for ref, why in draft.skipped:
        out.print(f"[yellow]Skipped[/] {escape(ref)}: {escape(why)}")
    if result.backup:
        out.print(f"The previous lore.yaml and semantic/ are in {escape(str(result.backup))}.")
    for issue in result.issues:
        colour = "red" if issue.severity == "error" else "yellow"
        out.print(f"[{colour}]{issue.severity}[/] {escape(issue.render())}", highlight=False)
    if draft.data_ends and draft.data_ends < (date.today() - timedelta(days=31)).isoformat():
        out.print(f"The data ends on {draft.data_ends}: \"last month\" and other relative dates resolve against "
                  f"today. To read them as of the data's end, set [bold]today: <a date>[/] in lore.yaml.")
    where = escape(str(folder))
    out.print(f"[green]Created[/] {escape(str(result.root / 'lore.yaml'))} and {len(result.files)} files in "
              f"{escape(str(result.root / 'semantic'))}.")
    out.print(f"Next: check the {draft.notes} '# review:' notes in {where}/semantic/*.yaml (add descriptions and the "
              f"words people use as synonyms), then\n  lore semantic validate --project {where}\n"
              f"  lore ui --project {where}", highlight=False)
    if result.errors:
        raise typer.Exit(1)


import_app.command("dbt")(handle_errors(dbt_cmd))


# --- lore warehouse -------------------------------------------------------------


@warehouse_app.command("copy")
@handle_errors
def warehouse_copy(
    project: ProjectOpt = Path("."),
    to: Annotated[str, typer.Option("--to", help="The engine to copy for: postgres (into a database) or spark (a "
                                               "folder of Parquet tables).")] = "postgres",
    url_env: Annotated[str, typer.Option("--url-env", help="postgres: the environment variable holding the URL of a "
                                                         "role that may create tables there (never LORE's read-only "
                                                         "role).")]
    = "LORE_POSTGRES_ADMIN_URL",
    schema: Annotated[str, typer.Option("--schema", help="postgres: the schema for the tables of DuckDB's main "
                                                       "schema (other schemas keep their names).")] = "public",
    out: Annotated[Optional[Path], typer.Option("--out", help="spark: the folder to write the Parquet tables to "
                                                         "(default: parquet, in the project folder).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace tables (or Parquet files) that already "
                                                          "exist.")] = False,
    switch: Annotated[bool, typer.Option("--switch", help="Then point the project's lore.yaml at the new engine "
                                                        "(engine: postgres, or engine: spark on the folder; the "
                                                        "DuckDB file stays).")] = False,
    reader_env: Annotated[str, typer.Option("--reader-env", help="postgres, with --switch: the environment variable "
                                                               "LORE reads its read-only role's URL from.")]
    = "LORE_POSTGRES_URL",
) -> None:
    """Copy the project's DuckDB warehouse into PostgreSQL (every table and view, types, keys; one transaction),
    or write it as a folder of Parquet tables for Spark (one NAME.parquet per table and view of the main schema),
    so the same semantic layer answers there."""
    from lore.project import Project

    if to not in ("postgres", "spark"):
        raise OperatorError(f"--to {to!r} is not an engine LORE can copy for", hint="Use --to postgres or --to spark.")
    proj = Project.open(project)
    source = proj.warehouse_path
    if not source.is_file():
        raise OperatorError(f"No DuckDB warehouse at {source}",
                            hint="Point warehouse: in lore.yaml at the DuckDB file to copy.")
    if to == "spark":
        _copy_to_spark(proj, source, out, replace=replace, switch=switch)
    else:
        _copy_to_postgres(proj, source, url_env, schema, replace=replace, switch=switch, reader_env=reader_env)


def _copy_to_postgres(proj: Project, source: Path, url_env: str, schema: str, *, replace: bool, switch: bool,
                      reader_env: str) -> None:
    import os

    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from lore.execute.copy import copy_duckdb_to_postgres  # lazy: duckdb and psycopg load for this command only
    from lore.project import EngineConfig, write_config

    url = os.environ.get(url_env, "").strip()
    if not url:
        raise OperatorError(f"The environment variable {url_env} is not set",
                            hint=f"export {url_env}=postgresql://OWNER:PASSWORD@HOST:5432/DATABASE (a role that may "
                                 "create tables in the schema; LORE answers through a read-only one).")
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("Connecting", total=None)

        def progress(table: str, rows: int) -> None:
            bar.update(task, description=f"Copying {table}: {rows:,} rows")

        copied = copy_duckdb_to_postgres(source, url, schema=schema, replace=replace, progress=progress)
    out = console()
    out.print(f"[green]Copied[/] {len(copied)} tables ({sum(copied.values()):,} rows) from {escape(source.name)} into "
              f"PostgreSQL, schema {escape(schema)}.", highlight=False)
    engine = EngineConfig(type="postgres", url_env=reader_env, schema_name=schema)
    if switch:
        write_config(proj.root, proj.config.model_copy(update={"engine": engine}))
        out.print(f"lore.yaml now names engine: postgres; LORE reads its URL from ${reader_env}.", highlight=False)
    else:
        out.print("To answer from PostgreSQL, add to lore.yaml (or run again with --switch):\n"
                  f"  engine:\n    type: postgres\n    url_env: {reader_env}\n    schema: {schema}", highlight=False)
    out.print(f"LORE refuses a role that may write: create its read-only role with docs/postgres-readonly-role.sql "
              f"and export {reader_env} with that role's URL.", highlight=False)


def _copy_to_spark(proj: Project, source: Path, folder: Path | None, *, replace: bool, switch: bool) -> None:
    import os

    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from lore.execute.copy import export_duckdb_to_parquet  # lazy: duckdb loads for this command only
    from lore.project import EngineConfig, write_config

    target = folder.resolve() if folder is not None else (proj.root / "parquet").resolve()
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("Writing Parquet", total=None)

        def progress(table: str, rows: int) -> None:
            bar.update(task, description=f"Wrote {table}: {rows:,} rows")

        written = export_duckdb_to_parquet(source, target, replace=replace, progress=progress)
    out = console()
    out.print(f"[green]Wrote[/] {len(written)} tables ({sum(written.values()):,} rows) from {escape(source.name)} to "
              f"{escape(str(target))}, one NAME.parquet each.", highlight=False)
    inside = target.is_relative_to(proj.root.resolve())
    tables = Path(os.path.relpath(target, proj.root.resolve())) if inside else target
    if switch:
        engine = EngineConfig(type="spark", tables=tables)
        write_config(proj.root, proj.config.model_copy(update={"engine": engine}))
        out.print(f"lore.yaml now names engine: spark on {escape(str(tables))} (local mode; export "
                  "LORE_SPARK_REMOTE=sc://HOST:15002 to use a Spark Connect server that reads the same folder).",
                  highlight=False)
    else:
        out.print("To answer from Spark, add to lore.yaml (or run again with --switch):\n"
                  f"  engine:\n    type: spark\n    tables: {tables}", highlight=False)
    out.print("Spark's local mode needs a Java 17 or 21 runtime and pip install 'lore-analytics[spark]'.",
              highlight=False, markup=False)


# --- lore demo ------------------------------------------------------------------


@demo_app.command("init")
@handle_errors
def demo_init(
    folder: Annotated[Path, typer.Argument(help="Folder to create the demo project in.")] = Path("demo"),
    scale: Annotated[float, typer.Option("--scale", help="Data size: 1 gives about 1,000,000 streaming sessions.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed and scale give identical data.")] = 42,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the folder already holds this demo.")] = False,
) -> None:
    """Create a demo project: lore.yaml, the demo semantic layer and a generated DuckDB warehouse."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from lore.demo.project import init_demo  # lazy: loaded by the command that needs it

    if scale <= 0 or scale > 100:
        raise OperatorError(f"--scale must be above 0 and at most 100, got {scale}")
    out = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=out, transient=True) as bar:
        task = bar.add_task("Generating the demo warehouse", total=None)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"Generating {step}", completed=done, total=total)

        project, built = init_demo(folder, scale=scale, seed=seed, force=force, progress=progress)
    verb = "Created" if built else "Already up to date:"
    out.print(f"[green]{verb}[/] demo project at {escape(str(project.root))} (scale {scale}, seed {seed}).")
    out.print(f"Try: lore sql --project {folder} --metric total_streaming_hours --dimension countries.region --run")


@demo_app.command("tour")
@handle_errors
def demo_tour(project: ProjectOpt = Path("demo"), show_sql: Annotated[bool, typer.Option("--sql", help="Print the SQL of each query too.")] = False) -> None:
    """Answer a few example semantic queries on the demo warehouse and print the tables."""
    from lore.demo.project import TOUR  # lazy: loaded by the command that needs it

    lore = _open(project)
    out = console()
    with lore:
        for title, q in TOUR:
            compiled = lore.semantic.compile(q["metrics"], q.get("dimensions", ()), q.get("filters", ()),
                                             q.get("order_by", ()), q.get("limit"))
            result = lore.run_compiled(compiled)
            out.print(result_table(result, title=f"{title}"))
            if show_sql:
                out.print(compiled.sql, style="dim")
            out.print()


def _load_plugins() -> None:
    """Add the commands other packages register; a broken plugin is reported and skipped, never fatal."""
    for ep in entry_points(group="lore.commands"):
        try:
            register = ep.load()
            register(app)
        except Exception as err:  # noqa: BLE001 - a plugin's own bug must not take the core commands down
            Console(stderr=True).print(f"[yellow]Warning:[/] the '{escape(ep.name)}' commands could not load "
                                       f"({escape(ep.value)}): {type(err).__name__}: {escape(str(err))}", highlight=False)


def main() -> None:  # pragma: no cover - the console-script entry point
    _load_plugins()
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
