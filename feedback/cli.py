"""``lore feedback``: vote, review nominations, export fine-tuning datasets, show counts.

Registered through the ``lore.commands`` entry-point group (``register(app)``),
so the core never imports it::

    lore feedback vote ANSWER_ID --up --user ana
    lore feedback vote ANSWER_ID --down --user ana --correct-sql "SELECT ..."
    lore feedback review                      # nominations waiting for a reviewer, with the SQL each runs
    lore feedback review --approve p-1a2b3c4d5e6f --reviewer ben
    lore feedback review --revoke p-1a2b3c4d5e6f --reason "wrong filter"
    lore feedback seed examples/dbt_saved_queries.yaml --as ana   # questions and plans, verified as examples
    lore feedback export --format openai-chat --out ft.jsonl --split 0.9
    lore feedback export --format preference --out prefs.jsonl
    lore feedback stats
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from lore.cli import JsonOpt, ProjectOpt, console, handle_errors
from lore.errors import OperatorError

if TYPE_CHECKING:  # pragma: no cover
    from feedback.review import WhatRuns
    from feedback.store import Nomination

feedback_app = typer.Typer(help="Teach LORE with votes: review nominations, export fine-tuning datasets.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """The ``lore.commands`` entry point: adds ``lore feedback``."""
    app.add_typer(feedback_app, name="feedback")


def _store(project: Path):  # -> tuple[Lore, FeedbackStore]
    from lore.core import Lore

    from feedback.store import open_store

    lore = Lore.open(project)
    return lore, open_store(lore)


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers)
        return ""


@feedback_app.command("vote")
@handle_errors
def vote_cmd(
    answer_id: Annotated[str, typer.Argument(help="The answer's id (from `lore ask --json`, the chat page or Slack).")],
    up: Annotated[bool, typer.Option("--up", help="Thumbs up: nominate the question and its plan.")] = False,
    down: Annotated[bool, typer.Option("--down", help="Thumbs down: lower confidence for similar questions.")] = False,
    user: Annotated[str, typer.Option("--user", envvar="LORE_USER", help=(
        "Who votes (votes count once per person). A name typed here is not a verified identity: the vote "
        "nominates, and counts toward no automatic rule of the policy."))] = "",
    comment: Annotated[Optional[str], typer.Option("--comment", help="Why.")] = None,
    correct_sql: Annotated[Optional[str], typer.Option("--correct-sql", help="With --down: the SQL that answers it.")] = None,
    correct_plan: Annotated[Optional[Path], typer.Option("--correct-plan", help=(
        "With --down: a JSON plan file ('-' reads stdin). With --correct-sql too, the review checks that both "
        "return the same result, and the plan is what runs."))] = None,
    key: Annotated[Optional[str], typer.Option("--key", help="Idempotency key: retrying with the same key stores the vote once.")] = None,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Vote on an answer; the vote is stored durably before this returns."""
    if up == down:
        raise OperatorError("Pass exactly one of --up or --down.")
    if not user.strip():
        raise OperatorError("Say who votes with --user NAME (or LORE_USER).")
    correction: str | dict | None = correct_sql
    if correct_plan is not None:
        try:
            text = sys.stdin.read() if str(correct_plan) == "-" else correct_plan.read_text(encoding="utf-8")
        except OSError as err:
            raise OperatorError(f"Cannot read the plan file {correct_plan}: {err}") from None
        if not text.strip().startswith("{"):
            raise OperatorError(f"{correct_plan} does not hold a JSON plan object.")
        correction = text
        if correct_sql:
            try:
                correction = {"plan": json.loads(text), "sql": correct_sql}
            except ValueError:
                raise OperatorError(f"{correct_plan} is not valid JSON.") from None
    lore, _ = _store(project)
    with lore:
        vote = lore.feedback(answer_id, 1 if up else -1, user=user, comment=comment, correction=correction,
                             idempotency_key=key)
    if as_json:
        typer.echo(json.dumps(vote.model_dump(mode="json"), indent=2))
        return
    out = console()
    what = "Retry of vote" if vote.duplicate else "Stored vote"
    out.print(f"{what} {vote.id} ({'up' if vote.rating == 1 else 'down'} by {vote.user}).", highlight=False)
    if vote.nomination_id:
        out.print(f"Nomination {vote.nomination_id}: {vote.nomination_status}.", highlight=False)
    if vote.note:
        out.print(vote.note, highlight=False, markup=False)


@feedback_app.command("review")
@handle_errors
def review_cmd(
    approve: Annotated[Optional[str], typer.Option("--approve", help="Verify this nomination (what it runs re-runs through the guard).")] = None,
    reject: Annotated[Optional[str], typer.Option("--reject", help="Reject this nomination.")] = None,
    revoke: Annotated[Optional[str], typer.Option("--revoke", help="Revoke this verified example.")] = None,
    reviewer: Annotated[str, typer.Option("--reviewer", envvar="LORE_REVIEWER", help="Who decides (default: your login name).")] = "",
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why (kept with the decision).")] = None,
    status: Annotated[str, typer.Option("--status", help="List: pending, verified, rejected, revoked or all.")] = "pending",
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """List nominations waiting for review, or approve, reject or revoke one."""
    from feedback import review

    actions = [(name, pid) for name, pid in (("approve", approve), ("reject", reject), ("revoke", revoke)) if pid]
    if len(actions) > 1:
        raise OperatorError("Pass one of --approve, --reject or --revoke at a time.")
    lore, store = _store(project)
    with lore:
        if actions:
            name, pid = actions[0]
            decide = {"approve": review.approve, "reject": review.reject, "revoke": review.revoke}[name]
            try:
                nomination = decide(store, pid, reviewer=reviewer or _default_reviewer(), reason=reason)
            except review.CorrectionMismatch as err:  # a failed check (exit 1), like a guard refusal
                console_err = Console(stderr=True)
                console_err.print(f"[bold red]Error:[/] {err}", highlight=False, markup=True, soft_wrap=True)
                raise typer.Exit(1) from None
            if as_json:
                typer.echo(json.dumps(nomination.model_dump(mode="json"), indent=2))
            else:
                console().print(f"{nomination.id} is {nomination.status} (by {nomination.decided_by}).", highlight=False)
            return
        items = store.nominations(None if status == "all" else status)
        runs = [review.what_runs(lore, n) for n in items]
    if as_json:
        typer.echo(json.dumps([n.model_dump(mode="json") | {"runs": r.model_dump(mode="json")} for n, r in zip(items, runs)],
                              indent=2))
        return
    table = Table(title=f"Nominations ({status})", title_justify="left", header_style="bold")
    table.add_column("id", no_wrap=True, min_width=14)
    table.add_column("status", no_wrap=True)
    table.add_column("question", overflow="fold")
    table.add_column("runs", overflow="fold", ratio=3)
    for head in ("up", "down"):
        table.add_column(head, justify="right", no_wrap=True)
    table.add_column("source", no_wrap=True)
    for n, r in zip(items, runs):
        table.add_row(n.id, n.status, n.question, _runs_text(n, r), str(len(n.up_users)), str(len(n.down_users)),
                      n.source)
    out = console()
    out.print(table)
    if not items:
        out.print("Nothing to review." if status == "pending" else "None.", highlight=False)


_OUTCOMES = {"already_right": "already right", "corrected": "corrected", "already_verified": "already verified",
             "failed": "failed"}


@feedback_app.command("seed")
@handle_errors
def seed_cmd(
    file: Annotated[Path, typer.Argument(help="A seed file: YAML, a list of `question:` and `plan:` (and `note:`).")],
    as_user: Annotated[str, typer.Option("--as", envvar="LORE_USER", help=(
        "Who seeds: they vote on each answer and approve each example as its reviewer (default: your login "
        "name)."))] = "",
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Verify a file's questions and plans as examples: ask each, vote (correcting it when LORE answers it
    otherwise), and approve it after what it runs re-runs through the guard. Seeding again changes nothing."""
    from rich.markup import escape

    from lore.onboard.examples import read_seed_file

    from feedback.seed import check_operator, seed

    entries = read_seed_file(file)
    lore, store = _store(project)
    with lore:
        operator = check_operator(store, as_user or _default_reviewer())
        results = seed(lore, store, entries, operator=operator)
    failed = [r for r in results if not r.ok]
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
    else:
        table = Table(title=f"Seeded from {file} (as {operator})", title_justify="left", header_style="bold")
        for head in ("#", "question", "outcome", "example", "why"):
            table.add_column(head, overflow="fold", no_wrap=head in ("#", "example"))
        for r in results:
            outcome = _OUTCOMES[r.outcome]
            table.add_row(str(r.number), escape(r.question), f"[red]{outcome}[/]" if not r.ok else outcome,
                          r.nomination_id or "", escape(r.reason or ""))
        out = console()
        out.print(table)
        counts = {k: sum(1 for r in results if r.outcome == k) for k in _OUTCOMES}
        out.print(", ".join(f"{n} {_OUTCOMES[k]}" for k, n in counts.items()) + ".", highlight=False)
    if failed:
        raise typer.Exit(1)


def _runs_text(nomination: Nomination, runs: WhatRuns) -> str:
    """What a pair runs, for the review table: the plan and its compiled SQL, or the SQL."""
    from feedback.export import plan_text

    lines = []
    if runs.kind == "sql":
        lines.append("SQL:")
    else:
        lines.append(f"plan: {plan_text(nomination.plan)}")
        lines.append("its SQL:")
    lines.append(runs.sql if runs.sql else f"(cannot compile now: {runs.error})")
    if runs.claimed_sql:
        lines.append("SQL sent with the plan (it must return the same result; it never runs in answers):")
        lines.append(runs.claimed_sql)
    return "\n".join(lines)


@feedback_app.command("export")
@handle_errors
def export_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="The JSONL file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="openai-chat (verified examples) or preference (corrections).")] = "openai-chat",
    split: Annotated[Optional[float], typer.Option("--split", help="Train share, e.g. 0.9: writes NAME.train.jsonl and NAME.validation.jsonl.")] = None,
    target: Annotated[str, typer.Option("--target", help="What the assistant answers: plan (JSON) or sql.")] = "plan",
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Write a fine-tuning dataset from verified feedback (every line validated, provenance in a sidecar)."""
    from feedback.export import FORMATS, export

    if fmt not in FORMATS:
        raise OperatorError(f"Unknown format {fmt!r}.", hint=f"Use one of: {', '.join(FORMATS)}.")
    if target not in ("plan", "sql"):
        raise OperatorError(f"Unknown target {target!r}.", hint="Use plan or sql.")
    if split is not None and not 0.0 < split < 1.0:
        raise OperatorError(f"--split is the train share, between 0 and 1 (exclusive), got {split}.")
    _, store = _store(project)
    report = export(store, fmt, out, split=split, target=target)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    c = console()
    for name, path in report.files.items():
        c.print(f"Wrote {report.rows[name]:,} {fmt} rows to {path}" + (f" ({name})" if name != "all" else "") + ".",
                highlight=False)
    c.print(f"Provenance: {report.provenance}. Duplicates dropped: {report.duplicates}; skipped: {report.skipped}.",
            highlight=False)


@feedback_app.command("stats")
@handle_errors
def stats_cmd(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Counts: answers recorded, votes, voters, nominations by status."""
    _, store = _store(project)
    stats = store.stats()
    if as_json:
        typer.echo(json.dumps(stats.model_dump(mode="json"), indent=2))
        return
    table = Table(title="Feedback", title_justify="left", header_style="bold", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [("answers recorded", stats.answers), ("answered", stats.answered), ("votes", stats.votes),
            ("thumbs up", stats.up), ("thumbs down", stats.down), ("corrections", stats.corrections),
            ("voters", stats.voters)] + [(f"pairs {k}", v) for k, v in stats.pairs.items() if k != "none"]
    for what, n in rows:
        table.add_row(what, f"{n:,}")
    console().print(table)
