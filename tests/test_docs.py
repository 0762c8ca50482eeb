"""The README cannot drift from the code: its quick start, CI's command and every `lore` command it names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]


def _commands() -> list[tuple[str, ...]]:
    """Every `lore WORD [WORD]` in backticks or code blocks of the docs, as argument tuples."""
    found: set[tuple[str, ...]] = set()
    for doc in DOCS:
        # inline (`lore ask ...`) or at the start of a shell line (lore ..., .venv/bin/lore ...)
        for match in re.finditer(r"(?:`|^\s*(?:\.venv/bin/)?)lore ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)",
                                 doc.read_text(encoding="utf-8"), re.MULTILINE):
            words = tuple(match.group(1).split())
            found.add(words)
    return sorted(found)


def test_the_quick_start_is_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./dev.sh demo", "./dev.sh test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line.split("#", 1)[0].strip() for line in ci.splitlines()]
    assert "./dev.sh test" in lines


@pytest.mark.parametrize("words", _commands(), ids=" ".join)
def test_every_lore_command_the_docs_name_exists(words: tuple[str, ...]) -> None:
    """`lore WORD [WORD] --help` exits 0 (a second word that is an argument, not a command, is dropped)."""
    done = subprocess.run([sys.executable, "-m", "lore.cli", *words, "--help"], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    if done.returncode != 0 and len(words) == 2:
        done = subprocess.run([sys.executable, "-m", "lore.cli", words[0], "--help"], capture_output=True, text=True,
                              check=False, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert "Commands" not in done.stdout or words[1] in done.stdout, f"lore {words[0]} has no command {words[1]}"
        return
    assert done.returncode == 0, done.stderr


def test_dev_sh_help_lists_every_command_it_runs() -> None:
    script = (ROOT / "dev.sh").read_text(encoding="utf-8")
    cases = re.findall(r"^  ([a-z]+)\)$", script, re.MULTILINE)
    done = subprocess.run(["bash", str(ROOT / "dev.sh"), "help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    for case in cases:
        assert f"./dev.sh {case}" in done.stdout or case == "setup", f"./dev.sh help does not mention {case}"


def test_cli_messages_keep_their_brackets(tmp_path: Path, demo_dir: Path) -> None:
    """Issue codes like ``[unknown_table]`` and role references like ``stores.region[sold_at]`` are text, not
    Rich markup: they must reach the terminal."""
    import shutil

    from typer.testing import CliRunner

    from lore.cli import app

    project = tmp_path / "p"
    shutil.copytree(demo_dir, project, ignore=shutil.ignore_patterns(".lore"))
    layer = project / "semantic" / "asr.yaml"
    layer.write_text(layer.read_text().replace("table: asr_evaluations", "table: no_such_table", 1))
    result = CliRunner().invoke(app, ["semantic", "validate", "--project", str(project)])
    assert result.exit_code == 1
    assert "[unknown_table]" in result.output
    bad = CliRunner().invoke(app, ["sql", "--project", str(demo_dir), "--metric", "[nope]"])
    assert bad.exit_code == 2 and "[nope]" in bad.output


def test_validate_reads_values_for_value_synonym_keys(tmp_path: Path, demo_dir: Path) -> None:
    """`lore semantic validate` reads the warehouse's values and warns about a `value_synonyms` key no row holds
    (a misspelt key would otherwise be silently unused); `--strict` fails on it."""
    import shutil

    from typer.testing import CliRunner

    from lore.cli import app

    project = tmp_path / "p"
    shutil.copytree(demo_dir, project, ignore=shutil.ignore_patterns(".lore"))
    layer = project / "semantic" / "cloud.yaml"
    text = layer.read_text()
    assert "          database: [databases, db, rds]" in text
    layer.write_text(text.replace("          database: [databases, db, rds]", "          databse: [databases, db, rds]"))
    result = CliRunner().invoke(app, ["semantic", "validate", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert "unknown_synonym_value" in result.output and "databse" in result.output
    strict = CliRunner().invoke(app, ["semantic", "validate", "--project", str(project), "--strict"])
    assert strict.exit_code == 1
