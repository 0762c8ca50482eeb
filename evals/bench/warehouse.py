"""Benchmark the demo warehouse generator (run on purpose; not a test).

    python -m evals.bench.warehouse [--scales 1,10] [--seed 42] [--threads 2]

For each scale it builds a warehouse in a temporary directory and prints the wall
time, the file size and the row count of every table, then deletes the file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lore.demo.warehouse import TABLES, generate_warehouse
from lore.errors import LoreError


def parse_scales(text: str) -> tuple[float, ...]:
    """Parse a comma-separated list of scales.

    >>> parse_scales("1,10")
    (1.0, 10.0)
    >>> parse_scales(" 0.5 , 2 ")
    (0.5, 2.0)
    """
    return tuple(float(part) for part in text.split(",") if part.strip())


def format_report(scale: float, seconds: float, size_bytes: int, counts: dict[str, int]) -> str:
    """A readable report for one build.

    >>> print(format_report(1.0, 1.5, 2 * 1024 * 1024, {"countries": 20}))
    scale 1: 1.50 s, 2.0 MiB
      countries                      20
    """
    lines = [f"scale {scale:g}: {seconds:.2f} s, {size_bytes / 2**20:.1f} MiB"]
    lines += [f"  {table:<20} {counts[table]:>12,}" for table in TABLES if table in counts]
    return "\n".join(lines)


def run(scales: Sequence[float], *, seed: int, threads: int) -> list[tuple[float, float, int, dict[str, int]]]:
    results = []
    for scale in scales:
        with tempfile.TemporaryDirectory(prefix="lore-bench-") as tmp:
            path = Path(tmp) / "demo.duckdb"
            started = time.perf_counter()
            counts = generate_warehouse(path, scale=scale, seed=seed, threads=threads)
            seconds = time.perf_counter() - started
            size = path.stat().st_size
        results.append((scale, seconds, size, counts))
        print(format_report(scale, seconds, size, counts), flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench.warehouse", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10", help="comma-separated scales (default: 1,10)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        scales = parse_scales(args.scales)
    except ValueError:
        parser.error(f"--scales must be comma-separated numbers, got {args.scales!r}")
    try:
        run(scales, seed=args.seed, threads=args.threads)
    except LoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
