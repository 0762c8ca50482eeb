"""Run the golden sets on PostgreSQL and Apache Spark beside DuckDB, case for case (run on purpose; not a test).

    python -m evals.engines [--engines postgres,spark] [--spark local|connect|sc://HOST:15002]
                            [--sets all|demo,jaffle-12,...] [--workdir DIR] [--admin-url-env VAR]

Builds each set's warehouse as ``evals/golden/gate.yaml`` describes it (the demo at scale 0.05 seed 11, the
jaffle shop two years seed 42, the insurance carrier seed 7) in the work folder, reusing what is there. For
PostgreSQL it starts a throwaway server from the machine's own binaries (``evals/servers/postgres.py``; Debian's
``postgresql`` package), unless ``--admin-url-env`` names a variable holding the URL of a role that may create
databases on a server of your own; copies each warehouse into a database of its own (``lore warehouse copy``'s
code), creates LORE's read-only role with ``docs/postgres-readonly-role.sql`` and writes a project that names the
PostgreSQL engine. For Spark it writes each warehouse as a folder of Parquet tables and a project that names the
Spark engine: in local mode (the default), over Spark Connect on a throwaway server started on loopback
(``--spark connect``; ``evals/servers/spark_connect.py``), or on your own server (``--spark sc://...``, which must
be able to read the work folder). Then every set runs on each project through the eval harness, and a table
prints, per set, the cases, the accuracy on each engine and how many cases differ from DuckDB (answer status,
correctness or confidence); each difference is listed. Exit status 1 when any case differs.

CI runs a subset of this (tests/engines/test_postgres_engine.py, test_spark_engine.py and test_spark_connect.py);
this runs them all (about 15 minutes on PostgreSQL here; Spark takes longer).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from evals.harness import CaseResult, load_golden, run_golden, warm_up

GOLDEN = Path(__file__).resolve().parent / "golden"
ROOT = Path(__file__).resolve().parents[1]
#: the demo set is gated on the demo warehouse at this size (gate.yaml's top-level keys)
DEMO_WAREHOUSE = {"kind": "demo", "seed": 11, "scale": 0.05}
READER_URL_ENV = "LORE_EVAL_POSTGRES_URL_{n}"
#: the variable the Spark projects read a Spark Connect URL from (the run sets it)
SPARK_REMOTE_ENV = "LORE_EVAL_SPARK_REMOTE"
#: the engines compared with DuckDB, as the table heads them
ENGINE_NAMES = {"postgres": "PostgreSQL", "spark": "Spark"}


def golden_sets(names: str) -> list[tuple[str, dict[str, Any]]]:
    """``(set file, warehouse spec)`` for the sets named (``all``: the demo set and every set gate.yaml lists).

    >>> golden_sets("demo,jaffle-12")[1]
    ('jaffle-12.yaml', {'kind': 'jaffle', 'seed': 42, 'years': 2})
    """
    gate = yaml.safe_load((GOLDEN / "gate.yaml").read_text(encoding="utf-8"))
    known = {"demo.yaml": DEMO_WAREHOUSE, **{name: spec["warehouse"] for name, spec in gate["sets"].items()}}
    if names == "all":
        return list(known.items())
    out = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        file = name if name.endswith(".yaml") else f"{name}.yaml"
        if file not in known:
            raise SystemExit(f"unknown set {name!r}: one of {', '.join(sorted(known))}")
        out.append((file, known[file]))
    return out


def warehouse_key(spec: dict[str, Any]) -> str:
    """A folder name for a warehouse spec.

    >>> warehouse_key({"kind": "jaffle", "seed": 42, "years": 2})
    'jaffle-seed42-years2'
    """
    return "-".join([str(spec["kind"]), *(f"{k}{v}" for k, v in sorted(spec.items()) if k != "kind")])


def build_duckdb_project(spec: dict[str, Any], folder: Path) -> Path:
    """The DuckDB project for a warehouse spec, built unless already there."""
    if (folder / "lore.yaml").is_file() and (folder / "warehouse.duckdb").is_file():
        return folder
    if spec["kind"] == "demo":
        from lore.demo.project import init_demo

        init_demo(folder, scale=float(spec["scale"]), seed=int(spec["seed"]))
    elif spec["kind"] == "jaffle":
        from evals.jaffle.warehouse import build

        build(folder, years=int(spec["years"]), seed=int(spec["seed"]))
    elif spec["kind"] == "insurance":
        from evals.insurance.warehouse import build as build_insurance

        build_insurance(folder, seed=int(spec["seed"]))
    else:
        raise SystemExit(f"unknown warehouse kind {spec['kind']!r}")
    return folder


class OwnServer:
    """A PostgreSQL server of the operator's: databases made through the owner URL in an environment variable,
    LORE's role through the documented script run by psql."""

    def __init__(self, url: str) -> None:
        self.url = url
        #: one password for the run: the role is shared by the server's databases, and each run of the script sets it
        self.password = secrets.token_urlsafe(12)

    def _url(self, **change: str) -> str:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        return make_conninfo(**{**conninfo_to_dict(self.url), **change})

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self._url(dbname=name)

    def create_reader(self, name: str) -> str:
        import subprocess

        password = self.password
        subprocess.run(["psql", "-X", "-q", "-d", self._url(dbname=name), "-v", f"password={password}",
                        "-v", f"dbname={name}", "-v", "schema=public", "-f", str(ROOT / "docs" / "postgres-readonly-role.sql")],
                       check=True)
        return self._url(dbname=name, user="lore_reader", password=password)


@contextmanager
def postgres_server(url_env: str | None) -> Iterator[Any]:
    """The server the sets run on: the operator's (``url_env``), or a throwaway one started for this run and
    stopped at the end. Either has ``create_database(name) -> owner URL`` and ``create_reader(name) -> URL``."""
    if url_env:
        url = os.environ.get(url_env, "").strip()
        if not url:
            raise SystemExit(f"{url_env} is not set")
        yield OwnServer(url)
        return
    from evals.servers.postgres import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("No PostgreSQL server binaries (initdb): install Debian's postgresql, or pass "
                         "--admin-url-env naming a variable with the URL of a server of your own.")
    server = PgServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()


def postgres_project(duckdb_project: Path, folder: Path, n: int, server: Any) -> Path:
    """Copy ``duckdb_project``'s warehouse into a new database and write a project naming the PostgreSQL engine;
    the reader's URL goes into the environment variable the project names."""
    from lore.execute.copy import copy_duckdb_to_postgres
    from lore.project import EngineConfig, Project, write_config

    name = f"lore_eval_{n}"
    admin = server.create_database(name)
    with tempfile.TemporaryDirectory() as tmp:  # a file no engine of this process has open
        source = Path(tmp) / "warehouse.duckdb"
        shutil.copy(duckdb_project / "warehouse.duckdb", source)
        copy_duckdb_to_postgres(source, admin)
    env = READER_URL_ENV.format(n=n)
    os.environ[env] = server.create_reader(name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copytree(duckdb_project / "semantic", folder / "semantic")
    project = Project.open(duckdb_project)
    write_config(folder, project.config.model_copy(update={"engine": EngineConfig(type="postgres", url_env=env)}))
    return folder


def differences(duck: Sequence[CaseResult], other: Sequence[CaseResult]) -> list[tuple[str, str, str]]:
    """``(case, on DuckDB, on the other engine)`` for each case whose status, correctness or confidence (beyond
    1e-6) differs; the other engine's side says why (its message, or the gold SQL's error there)."""
    theirs = {c.id: c for c in other}
    out = []
    for case in duck:
        there = theirs.get(case.id)
        if there is None or (case.status, case.correct) != (there.status, there.correct) or \
                abs(case.confidence - there.confidence) > 1e-6:
            shown = "missing" if there is None else (f"{there.status}, {'right' if there.correct else 'wrong'}, "
                                                      f"confidence {there.confidence:.4f}")
            if there is not None and there.turns:
                last = there.turns[-1]
                why = last.gold_error and f"gold SQL: {last.gold_error}" or last.reason or last.message
                shown += f" ({why[:300]})"
            out.append((case.id, f"{case.status}, {'right' if case.correct else 'wrong'}, confidence "
                                 f"{case.confidence:.4f}", shown))
    return out


def spark_project(duckdb_project: Path, folder: Path, remote: str | None) -> Path:
    """Write ``duckdb_project``'s warehouse as Parquet tables in ``folder/parquet`` and a project that names the Spark
    engine on them (local mode; with ``remote``, the Spark Connect server at that URL reads the same folder)."""
    from lore.execute.copy import export_duckdb_to_parquet
    from lore.project import EngineConfig, Project, write_config

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:  # a file no engine of this process has open
        source = Path(tmp) / "warehouse.duckdb"
        shutil.copy(duckdb_project / "warehouse.duckdb", source)
        export_duckdb_to_parquet(source, folder / "parquet")
    shutil.copytree(duckdb_project / "semantic", folder / "semantic")
    engine = EngineConfig(type="spark", tables=Path("parquet"), url_env=SPARK_REMOTE_ENV if remote else "LORE_SPARK_REMOTE")
    if remote:
        os.environ[SPARK_REMOTE_ENV] = remote
    write_config(folder, Project.open(duckdb_project).config.model_copy(update={"engine": engine}))
    return folder


@contextmanager
def spark_remote(mode: str) -> Iterator[str | None]:
    """``None`` for Spark's local mode; for ``connect``, the URL of a throwaway Spark Connect server (stopped at
    the end); for an ``sc://`` URL, that server (it must read the work folder at the same paths)."""
    if mode == "local":
        yield None
    elif mode == "connect":
        from evals.servers.spark_connect import SparkConnectServer

        server = SparkConnectServer.start()
        try:
            yield server.url
        finally:
            server.stop()
    elif mode.startswith("sc://"):
        yield mode
    else:
        raise SystemExit(f"--spark takes local, connect or an sc:// URL, not {mode!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.engines", description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="all", help="comma-separated set names, or all (default)")
    parser.add_argument("--engines", default="postgres,spark",
                        help="comma-separated engines to compare with DuckDB: postgres, spark (default: both)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lore-engines",
                        help="where the warehouses and projects go (reused between runs)")
    parser.add_argument("--admin-url-env", default=None,
                        help="postgres: a variable holding the URL of a role that may create databases on your own "
                             "server (default: start a throwaway server)")
    parser.add_argument("--spark", default="local",
                        help="spark: local (a local-mode driver in this process, the default), connect (a throwaway "
                             "Spark Connect server) or the sc:// URL of your own server")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINE_NAMES))
    if unknown or not engines:
        raise SystemExit(f"--engines takes {', '.join(ENGINE_NAMES)}, not {args.engines!r}")
    from lore import Lore

    console = Console()
    sets = golden_sets(args.sets)
    args.workdir.mkdir(parents=True, exist_ok=True)
    shown = [ENGINE_NAMES[e] for e in engines]
    table = Table(title="Golden sets on DuckDB and " + " and ".join(shown), title_justify="left")
    for head in ("set", "cases", "DuckDB", *shown, "differ"):
        table.add_column(head, justify="left" if head == "set" else "right")
    differing = 0
    with ExitStack() as stack:
        server = stack.enter_context(postgres_server(args.admin_url_env)) if "postgres" in engines else None
        remote = stack.enter_context(spark_remote(args.spark)) if "spark" in engines else None
        projects: dict[str, list[Path]] = {}
        for file, spec in sets:
            key = warehouse_key(spec)
            if key not in projects:
                console.print(f"Preparing {key} ...")
                duck = build_duckdb_project(spec, args.workdir / key)
                projects[key] = [duck]
                for engine in engines:
                    if engine == "postgres":
                        projects[key].append(postgres_project(duck, args.workdir / f"{key}-postgres",
                                                              len(projects), server))
                    else:
                        projects[key].append(spark_project(duck, args.workdir / f"{key}-spark", remote))
        for file, spec in sets:
            golden = load_golden(GOLDEN / file)
            results = []
            for folder in projects[warehouse_key(spec)]:
                with Lore.open(folder) as lore:
                    warm_up(lore, golden)  # the index and the data profile, before the first case's time budget
                    results.append(run_golden(lore, golden))
            diffs = [differences(results[0], other) for other in results[1:]]
            differing += sum(map(len, diffs))
            share = [f"{sum(c.correct for c in r) / max(len(r), 1):.1%}" for r in results]
            row = [file.removesuffix(".yaml"), str(len(results[0])), *share, " / ".join(str(len(d)) for d in diffs)]
            table.add_row(*row)
            console.print("  ".join(row), highlight=False)  # as each set ends: a long run shows its progress
            for name, diff in zip(shown, diffs):
                for case, on_duck, there in diff:
                    console.print(f"  {file} {case}: DuckDB {on_duck}; {name} {there}")
    console.print(table)
    return 1 if differing else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
