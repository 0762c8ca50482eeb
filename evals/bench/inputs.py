"""Benchmark pathological questions: CPU seconds by length (run on purpose; not a test).

    python -m evals.bench.inputs [--project DIR] [--scale 0.05] [--lengths 1000,4000,40000]

For each kind of input the red team tried (one short value repeated, a word that starts hundreds of titles, a
country name repeated, several short values, digits, time words, punctuation, one long token, many different
words) and each length, it prints the CPU seconds (``time.process_time``, the best of two runs) of

- **matching**: dimension values found in the text (``Lore.retriever.match_values``), at every length, also
  beyond the question limit (matching is linear, whatever the length);
- **ask**: the whole pipeline (``lore.chat().ask``, the answer cache off), which refuses a question longer
  than ``max_question_chars`` (4,000 by default) before any work.

Without ``--project`` it builds a demo project at ``--scale`` in a temp folder. The unit tests count calls
instead of timing (tests/redteam/test_findings_input.py); this script gives the seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

KINDS: dict[str, Callable[[int], str]] = {
    "A A A": lambda n: ("A " * n)[:n],
    "The The": lambda n: ("The " * n)[:n],
    "Brazil Brazil": lambda n: ("Brazil " * n)[:n],
    "A B C tv en US": lambda n: ("A B C tv en US " * n)[:n],
    "several values": lambda n: ("Brazil premium iOS US tv A B 18-24 comedy " * n)[:n],
    "digits 12 12": lambda n: ("12 " * n)[:n],
    "digit run": lambda n: ("1234567890" * n)[:n],
    "time words": lambda n: ("in 2024 last month Q1 since January " * n)[:n],
    "punctuation": lambda n: ("!?.,;-" * n)[:n],
    "one token": lambda n: "x" * n,
    "many words": lambda n: " ".join(f"w{i}x" for i in range(n))[:n],
}


def cpu(work: Callable[[str], object], make: Callable[[int], str], n: int) -> float:
    """The best CPU seconds of two runs of ``work`` on ``n`` characters of ``make``, each a new text (its last
    character differs), so no cache of an earlier run answers it."""
    best = float("inf")
    for last in ".,":
        text = make(n - 1) + last
        t0 = time.process_time()
        work(text)
        best = min(best, time.process_time() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="a LORE project (default: a demo built in a temp folder)")
    parser.add_argument("--scale", type=float, default=0.05, help="the demo's scale when --project is not given")
    parser.add_argument("--lengths", default="1000,4000,40000", help="question lengths, in characters")
    args = parser.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]

    from lore import Lore

    with tempfile.TemporaryDirectory(prefix="lore-bench-inputs-") as tmp:
        folder = args.project
        if folder is None:
            from lore.demo.project import init_demo

            folder = Path(tmp) / "demo"
            init_demo(folder, scale=args.scale, seed=7)
        with Lore.open(folder, answer_cache=False, feedback=False) as lore:
            lore.warm_up()
            lore.chat().ask("A B C The Brazil in 2024 last month " * 10)  # the planner's tables, built once
            limit = lore.settings.max_question_chars
            table = Table(title=f"CPU seconds by question length (question limit {limit:,} characters)")
            table.add_column("input")
            for n in lengths:
                table.add_column(f"match {n:,}", justify="right")
            for n in lengths:
                table.add_column(f"ask {n:,}", justify="right")
            match, ask = lore.retriever.match_values, (lambda text: lore.chat().ask(text))
            for name, make in KINDS.items():
                matching = [f"{cpu(match, make, n):.3f}" for n in lengths]
                asking = [f"{cpu(ask, make, n):.3f}" + (" (refused)" if n > limit else "") for n in lengths]
                table.add_row(name, *matching, *asking)
            Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
