"""``lore import dbt PATH --out DIR``: a dbt project's MetricFlow semantic layer, written as a LORE layer.

::

    lore import dbt ../analytics --out shop                      # shop/semantic/*.yaml (+ shop/lore.yaml if none),
                                                                 # shop/examples/dbt_saved_queries.yaml
    lore import dbt ../analytics --out shop --schema analytics   # tables as analytics.<model>
    lore import dbt ../analytics --out shop --force              # overwrite files an earlier import wrote

It reads every YAML file of the project (:func:`lore.onboard.dbt.read_project`), translates it
(:func:`~lore.onboard.dbt.translate`), writes one LORE file per dbt file, then validates the written layer against
the warehouse (when the warehouse file exists) and prints every issue, with what was not imported and why. Exit 0
when the layer validates, 1 when it has errors, 2 when the project cannot be read (nothing is written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:  # pragma: no cover
    from lore.onboard.dbt import Translation
    from lore.semantic.issues import Issue


def dbt_cmd(
    path: Annotated[Path, typer.Argument(help="The dbt project (the folder holding dbt_project.yml) or one YAML file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Project folder to write semantic/*.yaml into (and "
                                                          "lore.yaml when it has none).")],
    schema: Annotated[str, typer.Option("--schema", help="The warehouse schema holding the dbt models' tables.")] = "main",
    warehouse: Annotated[Optional[Path], typer.Option("--warehouse", "-w", help="The DuckDB file the new lore.yaml "
                                                                                "names (only when OUT has no lore.yaml).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite layer files and the seed file that already exist.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Import a dbt project's semantic models, metrics and saved queries as a LORE semantic layer.

    Writes OUT/semantic/<one file per dbt file>.yaml (what could not be imported is listed at the top of each),
    and the saved queries as examples to verify in OUT/examples/dbt_saved_queries.yaml (`lore feedback seed`).
    Then validates the layer, against the warehouse when it exists, and prints every issue.
    """
    from lore.onboard.dbt import (
        check_examples_target,
        read_project,
        render_examples,
        render_files,
        translate,
        write_examples,
        write_layer,
        write_project_config,
    )
    from lore.project import CONFIG_FILE, Project
    from lore.semantic.load import parse_documents

    project = read_project(path)
    translation = translate(project, schema=schema)
    texts = render_files(translation)
    _, load_issues = parse_documents(sorted(texts.items()))
    if any(i.severity == "error" for i in load_issues):  # the importer's own bug: say so, write nothing
        from lore.errors import OperatorError

        raise OperatorError("The translated layer does not load, so nothing was written:\n"
                            + "\n".join(f"  - {i.render()}" for i in load_issues),
                            hint="This is a bug of `lore import dbt`: please report it with the dbt YAML.")
    had_config = (out / CONFIG_FILE).exists()
    seed_text = render_examples(translation)
    if seed_text:
        check_examples_target(out, force=force)  # all or nothing: refused before the layer is written
    written = write_layer(out, texts, force=force)
    seeds = write_examples(out, seed_text, force=force)
    config = write_project_config(out, name=project.name or out.resolve().name,
                                  description=f"Imported from the dbt project {project.name or path}.",
                                  warehouse=warehouse)
    issues, checked_against, layer_path = _validate(out)
    semantic = Project.open(out).semantic_path
    errors = [i for i in issues if i.severity == "error"]
    if as_json:
        typer.echo(json.dumps(_report(translation, written, config, issues, checked_against, seeds), indent=2))
        raise typer.Exit(1 if errors else 0)
    _print(translation, written, config, issues, checked_against, seeds, out=out,
           note=None if not had_config or semantic == layer_path.resolve() else
           f"{out / CONFIG_FILE} reads its layer from {semantic}, not from {layer_path}: point semantic_layer at "
           "semantic to use the imported one.",
           warehouse_ignored=warehouse is not None and had_config)
    if errors:
        raise typer.Exit(1)


def _validate(out: Path) -> tuple[list[Issue], Path | None, Path]:
    """The issues of OUT/semantic, checked against the project's warehouse when its file exists."""
    from lore.core import Lore
    from lore.semantic.load import read_layer
    from lore.semantic.validate import validate

    layer_path = out / "semantic"
    lore = Lore.open(out)
    with lore:
        layer, issues = read_layer(layer_path)
        warehouse = lore.project.warehouse_path
        schema = lore.engine.schema() if lore.project.has_warehouse else None
        if not any(i.severity == "error" for i in issues):
            issues += validate(layer, schema)
    return issues, warehouse if schema is not None else None, layer_path


def _report(translation: Translation, written: list[Path], config: Path | None, issues: list[Issue],
            checked_against: Path | None, seeds: Path | None) -> dict[str, Any]:
    return {
        "ok": not any(i.severity == "error" for i in issues),
        "project": translation.project,
        "files": [str(p) for p in written],
        "lore_yaml": str(config) if config else None,
        "counts": translation.counts.model_dump(),
        "not_imported": [n.model_dump(exclude_none=True) for n in translation.not_imported],
        "saved_queries": [q.model_dump(mode="json", exclude={"plan"})
                          | {"command": q.command(), "example": q.plan is not None} for q in translation.queries],
        "examples_file": str(seeds) if seeds else None,
        "seed_command": _seed_command(seeds) if seeds else None,
        "validated_against": str(checked_against) if checked_against else None,
        "issues": [i.model_dump(exclude_none=True) for i in issues],
    }


def _seed_command(seeds: Path) -> str:
    from lore.onboard.dbt import shell_word

    return f"lore feedback seed {shell_word(str(seeds))} --project {shell_word(str(seeds.parent.parent))}"


def _print(translation: Translation, written: list[Path], config: Path | None, issues: list[Issue],
           checked_against: Path | None, seeds: Path | None, *, out: Path, note: str | None,
           warehouse_ignored: bool) -> None:
    from rich.markup import escape

    from lore.cli import console

    c = translation.counts
    con = console()
    con.print(f"[bold]Imported the dbt project {escape(translation.project or '')}[/] into "
              f"{escape(str(out / 'semantic'))}: {len(written)} file(s)"
              + (f", and {escape(str(config))}" if config else "") + ".", soft_wrap=True)
    con.print(f"  semantic models: {c.semantic_models_imported} of {c.semantic_models}, as {c.nodes} nodes "
              f"({c.views} of them sql: views), {c.links} links", highlight=False)
    con.print(f"  metrics: {c.metrics_imported} of {c.metrics}"
              + (f", plus {c.helper_metrics} helper metric(s)" if c.helper_metrics else ""), highlight=False)
    examples = sum(1 for q in translation.queries if q.plan is not None)
    con.print(f"  saved queries: {examples} of {c.saved_queries}, as examples to verify"
              + (f" in {escape(str(seeds))}" if seeds else ""), highlight=False)
    if warehouse_ignored:
        con.print("[yellow]--warehouse was not used:[/] the folder has a lore.yaml already.")
    if note:
        con.print(f"[yellow]Note:[/] {escape(note)}", soft_wrap=True)
    notes = [n for n in translation.not_imported if n.kind != "saved_query"]
    if notes:
        con.print(f"[bold]Not imported ({len(notes)})[/] (also listed at the top of each file):")
        for n in notes:
            con.print(f"  - {escape(n.render())}", soft_wrap=True, highlight=False)
    queries = [n for n in translation.not_imported if n.kind == "saved_query"]
    if queries:
        con.print(f"[bold]Saved queries, not imported ({len(queries)}):[/]", highlight=False)
        for n in queries:
            con.print(f"  - {escape(n.name)}: {escape(n.reason)}", soft_wrap=True, highlight=False)
            if n.detail:
                con.print(f"      {escape(n.detail.replace('DIR', str(out)))}", soft_wrap=True, highlight=False)
    if seeds:
        con.print("Verify the saved queries as examples (each is asked, corrected when LORE answers it otherwise, "
                  "and approved by you):", soft_wrap=True, highlight=False)
        con.print(f"  {escape(_seed_command(seeds))}", soft_wrap=True, highlight=False)
    errors = [i for i in issues if i.severity == "error"]
    warnings = [i for i in issues if i.severity == "warning"]
    for issue in issues:
        colour = "red" if issue.severity == "error" else "yellow"
        con.print(f"[{colour}]{issue.severity}[/] {escape(issue.render())}", highlight=False, soft_wrap=True)
    against = f"against {escape(str(checked_against))}" if checked_against else "without a warehouse (no file yet)"
    status = "[green]OK[/]" if not errors else "[red]FAILED[/]"
    con.print(f"Validation {against}: {status}, {len(errors)} error(s), {len(warnings)} warning(s).")
