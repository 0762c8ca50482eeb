"""Benchmark the engines: LORE's own time and the engine's time per question on DuckDB, PostgreSQL and Spark (local
mode), at several demo scales (run on purpose; not a test).

    python -m evals.bench.engines [--scales 1,10] [--repeat 3] [--engines duckdb,postgres,spark] [--workdir DIR]
                                  [--admin-url-env VAR]

For each scale it builds the demo warehouse (seed 42; reused from the work folder when there), copies it into
PostgreSQL (a throwaway server, or your own: see ``python -m evals.engines``) and into a folder of Parquet tables
for Spark, and asks the benchmark questions
(``evals/bench/questions.yaml``) on both projects with the answer cache off: once to warm up, then ``--repeat``
times each. Per engine and scale it prints the median time of a whole answer, the engine's part (the execute
stage: the query on the warehouse, fetching its rows) and LORE's own part (everything else: retrieval, planning,
compiling, the guard, the chart, the text), and how the engine's time grows from one scale to the next.
"""

from __future__ import annotations

import argparse
import statistics
from contextlib import nullcontext
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from evals.bench.pipeline import DEFAULT_QUESTIONS, load_questions, parse_scales
from evals.engines import build_duckdb_project, postgres_project, postgres_server, spark_project

ENGINES = ("duckdb", "postgres", "spark")


def engine_ms(answer) -> float:  # -> answer: lore.types.Answer
    """The execute stage's milliseconds in an answer's trace (0 when it did not run)."""
    if answer.trace is None:
        return 0.0
    return sum(t.ms for t in answer.trace.timings if t.stage == "execute")


def measure(folder: Path, questions: Sequence[str], repeat: int) -> dict[str, list[float]]:
    """Total and engine milliseconds of every answered question, ``repeat`` times each after one warm-up."""
    from lore import Lore

    totals: list[float] = []
    engines: list[float] = []
    with Lore.open(folder, answer_cache=False) as lore:
        lore.warm_up()  # the engine, the layer, the index and the planner, before any question's time budget
        answered = [q for q in questions if lore.ask(q).status == "answered"]  # warm-up; the others are not timed
        for _ in range(repeat):
            for question in answered:
                started = time.perf_counter()
                answer = lore.ask(question)
                totals.append((time.perf_counter() - started) * 1000)
                engines.append(engine_ms(answer))
    return {"total": totals, "engine": engines, "answered": [float(len(answered))]}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench.engines", description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="1,10", help="comma-separated demo scales (default: 1,10)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of every question (default: 3)")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="the questions (YAML)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lore-engines-bench",
                        help="where the warehouses and projects go (reused between runs)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines (default: all three)")
    parser.add_argument("--admin-url-env", default=None,
                        help="a variable holding the URL of a role that may create databases on your own server "
                             "(default: start a throwaway server)")
    args = parser.parse_args(argv)
    console = Console()
    questions = [q.question for q in load_questions(args.questions)]
    scales = parse_scales(args.scales)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown := set(engines) - set(ENGINES):
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    results: dict[tuple[str, float], dict[str, list[float]]] = {}
    with postgres_server(args.admin_url_env) if "postgres" in engines else nullcontext() as server:
        for n, scale in enumerate(scales, 1):
            spec = {"kind": "demo", "seed": 42, "scale": scale}
            console.print(f"Preparing the demo at scale {scale:g} ...")
            started = time.perf_counter()
            folders = {"duckdb": build_duckdb_project(spec, args.workdir / f"demo-{scale:g}")}
            console.print(f"  built in {time.perf_counter() - started:.0f} s")
            if "postgres" in engines:
                started = time.perf_counter()
                folders["postgres"] = postgres_project(folders["duckdb"], args.workdir / f"demo-{scale:g}-postgres",
                                                       n, server)
                console.print(f"  copied into PostgreSQL in {time.perf_counter() - started:.0f} s")
            if "spark" in engines:
                started = time.perf_counter()
                folders["spark"] = spark_project(folders["duckdb"], args.workdir / f"demo-{scale:g}-spark", None)
                console.print(f"  written as Parquet for Spark in {time.perf_counter() - started:.0f} s")
            for engine in engines:
                console.print(f"  asking on {engine} ...")
                results[(engine, scale)] = measure(folders[engine], questions, args.repeat)
    table = Table(title=f"Per question, median of {args.repeat} runs (ms)", title_justify="left")
    for head in ("engine", "scale", "answered", "answer", "engine part", "LORE's part", "engine x vs previous scale"):
        table.add_column(head, justify="left" if head == "engine" else "right")
    for engine in engines:
        previous: float | None = None
        for scale in scales:
            r = results[(engine, scale)]
            total, part = median(r["total"]), median(r["engine"])
            own = median([t - e for t, e in zip(r["total"], r["engine"])])
            growth = f"{part / previous:.1f}x" if previous else "-"
            table.add_row(engine, f"{scale:g}", f"{int(r['answered'][0])}/{len(questions)}", f"{total:,.0f}",
                          f"{part:,.0f}", f"{own:,.0f}", growth)
            previous = part
    console.print(table)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
