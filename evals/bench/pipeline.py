"""Benchmark the question-to-answer pipeline on the demo warehouse (run on purpose; not a test).

    python -m evals.bench.pipeline [--scales 1,10] [--questions FILE] [--repeat N] [--out results.json]

For each scale it builds (or reuses, cached under ``--workdir``) a demo project,
then measures:

- cold start: a fresh ``python -c`` process that opens the project and answers one
  question; wall time from before the process is spawned to its first answer;
- per-stage latency (retrieve, plan, compile, guard, execute, chart, explain) from
  ``answer.trace.timings`` and the total wall time of ``lore.chat().ask(q)``, over
  ``--repeat`` runs of every question after one warm-up pass;
- DuckDB's own time for the same SQL on a plain read-only connection to a copy of
  the warehouse (same thread count and memory limit as the engine), the ratio
  total / DuckDB and the pipeline overhead (total minus execute);
- the process's resident memory.

Questions that are not answered ("clarify", "refused", "error") are skipped and
listed. Percentiles interpolate linearly between samples (numpy's default).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console
from rich.table import Table

from lore.errors import LoreError, OperatorError

if TYPE_CHECKING:  # pragma: no cover
    from lore import Lore
    from lore.types import Answer

#: the pipeline's stages, in order (see lore/pipeline.py)
STAGES: tuple[str, ...] = ("retrieve", "plan", "compile", "guard", "execute", "chart", "explain")
#: the default question set, next to this module
DEFAULT_QUESTIONS = Path(__file__).with_name("questions.yaml")
#: the seconds a cold-start process may take before it is killed
COLD_START_TIMEOUT_S = 600.0

#: the cold-start child: a fixed program (the folder and the question are its argv, never code).
#: Its peak memory comes from /proc (VmHWM): ru_maxrss carries the parent's peak over fork and exec on Linux.
COLD_START_CODE = """\
import json, sys, time
t0 = time.perf_counter()
from lore import Lore
t1 = time.perf_counter()
with Lore.open(sys.argv[1]) as lore:
    answer = lore.chat().ask(sys.argv[2])
    t2 = time.perf_counter()
    try:
        with open("/proc/self/status") as f:
            status = f.read()
    except OSError:
        status = ""
    print(json.dumps({"import_s": t1 - t0, "first_answer_s": t2 - t0, "status": answer.status,
                      "proc_status": status}), flush=True)
"""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BenchQuestion(_Frozen):
    question: str
    domain: str = ""


class Stats(_Frozen):
    """Summary of a list of timings (milliseconds unless said otherwise)."""

    n: int
    p50: float | None = None
    p95: float | None = None
    mean: float | None = None
    min: float | None = None
    max: float | None = None


class ColdStart(_Frozen):
    """One fresh process that opened the project and answered one question."""

    #: wall time from before spawning the process to its first answer, in seconds
    seconds: float | None = None
    #: measured inside the child from its first line: seconds to import lore, and to the first answer
    import_s: float | None = None
    first_answer_s: float | None = None
    status: str | None = None
    #: the child's peak resident memory (VmHWM), when /proc is available
    peak_rss_mib: float | None = None
    error: str | None = None


class QuestionRun(_Frozen):
    """One benchmark question: its status and, when answered, its timings."""

    question: str
    domain: str = ""
    status: str
    message: str = ""
    rows: int = 0
    chart_kind: str | None = None
    sql: str | None = None
    stages: dict[str, Stats] = {}
    total: Stats | None = None
    overhead: Stats | None = None
    duckdb: Stats | None = None
    #: p50(total) / p50(duckdb)
    ratio: float | None = None


class LoadRun(_Frozen):
    """A bounded load test: ``requests`` questions from ``threads`` threads against one Lore, each voted on."""

    answer_cache: bool
    requests: int
    threads: int
    seconds: float
    throughput_rps: float
    latency: Stats
    errors: int = 0
    error_messages: tuple[str, ...] = ()
    cache_hits: int = 0
    #: votes written during the load, and how many the store holds afterwards (a retry is a duplicate)
    votes: int = 0
    votes_found: int = 0


class CacheRun(_Frozen):
    """The answer cache: a repeated question's wall time, and the load tests."""

    #: ask() wall time of a question answered before (a cache hit), pooled over the questions
    repeat: Stats | None = None
    hits: int = 0
    loads: tuple[LoadRun, ...] = ()
    error: str | None = None


class ScaleRun(_Frozen):
    """Everything measured on one project (one demo scale, or a folder given with --project)."""

    label: str
    scale: float | None = None
    folder: str
    built: bool = False
    build_s: float | None = None
    warehouse_mib: float | None = None
    error: str | None = None
    #: the first process on a freshly built project (builds the retrieval index and the value cache)
    first_open: ColdStart | None = None
    cold_start: tuple[ColdStart, ...] = ()
    warmup_s: float | None = None
    questions: tuple[QuestionRun, ...] = ()
    stages: dict[str, Stats] = {}
    total: Stats | None = None
    overhead: Stats | None = None
    duckdb: Stats | None = None
    #: median over answered questions of p50(total) / p50(duckdb)
    ratio: float | None = None
    #: median over answered questions of p50(execute) - p50(duckdb): what the guarded engine adds to DuckDB
    engine_overhead_ms: float | None = None
    #: resident memory after the timed runs, and the peak during this run (VmHWM, reset before the run
    #: through /proc/self/clear_refs when the kernel allows it; otherwise the peak of the whole process)
    rss_mib: float | None = None
    peak_rss_mib: float | None = None
    peak_is_per_run: bool = False
    duckdb_threads: int | None = None
    #: the answer cache and the load test
    cache: CacheRun | None = None

    @property
    def answered(self) -> tuple[QuestionRun, ...]:
        return tuple(q for q in self.questions if q.status == "answered")

    @property
    def skipped(self) -> tuple[QuestionRun, ...]:
        return tuple(q for q in self.questions if q.status != "answered")


class Machine(_Frozen):
    date: str
    platform: str
    processor: str
    cpu_count: int | None
    cpus_usable: int | None
    python: str
    duckdb: str
    versions: dict[str, str] = {}


class BenchReport(_Frozen):
    machine: Machine
    repeat: int
    questions_file: str
    runs: tuple[ScaleRun, ...]


# --- pure helpers -----------------------------------------------------------------------


def parse_scales(text: str) -> tuple[float, ...]:
    """Parse a comma-separated list of positive scales.

    >>> parse_scales("1,10")
    (1.0, 10.0)
    >>> parse_scales(" 0.5 , 2 ")
    (0.5, 2.0)
    >>> parse_scales("0")
    Traceback (most recent call last):
    ...
    ValueError: scales must be positive numbers
    """
    scales = tuple(float(part) for part in text.split(",") if part.strip())
    if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
        raise ValueError("scales must be positive numbers")
    return scales


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), interpolating linearly between samples.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    >>> percentile([10.0, 0.0, 5.0], 95)
    9.5
    >>> percentile([7.0], 95)
    7.0
    >>> percentile([], 50) is None
    True
    """
    ordered = sorted(values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(values: Sequence[float]) -> Stats:
    """p50, p95, mean, min and max of ``values``, rounded to microseconds.

    >>> summarize([1.0, 2.0, 3.0]).model_dump()
    {'n': 3, 'p50': 2.0, 'p95': 2.9, 'mean': 2.0, 'min': 1.0, 'max': 3.0}
    >>> summarize([]).p50 is None
    True
    """
    if not values:
        return Stats(n=0)

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return Stats(n=len(values), p50=r(percentile(values, 50)), p95=r(percentile(values, 95)),
                 mean=r(statistics.fmean(values)), min=r(min(values)), max=r(max(values)))


def stage_samples(timings: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Stage -> milliseconds for one answer (a stage timed twice is summed).

    >>> stage_samples([("retrieve", 2.0), ("plan", 1.0), ("plan", 0.5)])
    {'retrieve': 2.0, 'plan': 1.5}
    """
    out: dict[str, float] = {}
    for stage, ms in timings:
        out[stage] = out.get(stage, 0.0) + ms
    return out


def ordered_stages(names: Iterable[str]) -> list[str]:
    """The known stages first, in pipeline order, then any others alphabetically.

    >>> ordered_stages(["explain", "zeta", "retrieve", "plan"])
    ['retrieve', 'plan', 'explain', 'zeta']
    """
    seen = set(names)
    return [s for s in STAGES if s in seen] + sorted(seen - set(STAGES))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the denominator is not positive.

    >>> ratio(30.0, 5.0)
    6.0
    >>> ratio(30.0, 0.0) is None
    True
    """
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 2)


def parse_questions(data: Any) -> tuple[BenchQuestion, ...]:
    """Questions from parsed YAML: ``{questions: [...]}`` or a bare list; items are strings or mappings.

    >>> [q.question for q in parse_questions({"questions": ["a", {"question": "b", "domain": "x"}]})]
    ['a', 'b']
    >>> parse_questions({"questions": [3]})
    Traceback (most recent call last):
    ...
    ValueError: item 1: expected a question or a mapping with a 'question' key, got 3
    """
    items = data.get("questions") if isinstance(data, Mapping) else data
    if not isinstance(items, list) or not items:
        raise ValueError("expected a non-empty list under 'questions'")
    out: list[BenchQuestion] = []
    for i, item in enumerate(items, 1):
        if isinstance(item, str) and item.strip():
            out.append(BenchQuestion(question=item.strip()))
        elif isinstance(item, Mapping) and isinstance(item.get("question"), str) and item["question"].strip():
            try:
                out.append(BenchQuestion(**{**item, "question": item["question"].strip()}))
            except ValidationError as err:
                raise ValueError(f"item {i}: {err.errors()[0]['msg']}") from None
        else:
            raise ValueError(f"item {i}: expected a question or a mapping with a 'question' key, got {item!r}")
    return tuple(out)


def rss_from_status(text: str, key: str = "VmRSS") -> float | None:
    """A memory line (``VmRSS``, ``VmHWM``) of ``/proc/<pid>/status``, in MiB.

    >>> rss_from_status("Name:\\tpython\\nVmHWM:\\t  409600 kB\\nVmRSS:\\t  204800 kB\\n")
    200.0
    >>> rss_from_status("VmHWM:\\t  409600 kB\\n", "VmHWM")
    400.0
    >>> rss_from_status("Name: x") is None
    True
    """
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            parts = line.split()
            return round(int(parts[1]) / 1024, 1) if len(parts) >= 2 and parts[1].isdigit() else None
    return None


def maxrss_mib(value: int, system: str) -> float:
    """``ru_maxrss`` in MiB (kilobytes on Linux, bytes on macOS).

    >>> maxrss_mib(2048, "Linux"), maxrss_mib(2 * 1024 * 1024, "Darwin")
    (2.0, 2.0)
    """
    return round(value / (1024 * 1024 if system == "Darwin" else 1024), 1)


def fmt_ms(value: float | None) -> str:
    """Milliseconds for a table cell.

    >>> fmt_ms(0.1234), fmt_ms(12.345), fmt_ms(1234.5), fmt_ms(None)
    ('0.12', '12.3', '1,234', '-')
    """
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


# --- measurements (I/O) ------------------------------------------------------------------


def load_questions(path: Path) -> tuple[BenchQuestion, ...]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise OperatorError(f"Cannot read the questions file {path}: {err.strerror}",
                            hint="Pass an existing YAML file with --questions.") from None
    except yaml.YAMLError as err:
        raise OperatorError(f"The questions file {path} is not valid YAML: {err}") from None
    try:
        return parse_questions(data)
    except ValueError as err:
        raise OperatorError(
            f"The questions file {path} is malformed: {err}",
            hint="Write `questions:` followed by a list of strings or {question, domain} mappings.",
        ) from None


def machine_info() -> Machine:
    import chromadb
    import sqlglot

    import lore

    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = None
    return Machine(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        cpus_usable=usable,
        python=platform.python_version(),
        duckdb=duckdb.__version__,
        versions={"lore": lore.__version__, "sqlglot": sqlglot.__version__, "chromadb": chromadb.__version__},
    )


def current_rss_mib(key: str = "VmRSS") -> float | None:
    try:
        return rss_from_status(Path("/proc/self/status").read_text(), key)
    except OSError:
        return None


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """The peak resident memory: VmHWM (resettable), else ru_maxrss (the whole process's life)."""
    hwm = current_rss_mib("VmHWM")
    return hwm if hwm is not None else maxrss_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, platform.system())


def measure_cold_start(folder: Path, question: str, *, timeout_s: float = COLD_START_TIMEOUT_S) -> ColdStart:
    """Spawn a fresh interpreter that opens ``folder`` and answers ``question``; time it to the first answer."""
    import lore

    root = str(Path(lore.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p),
           "LORE_ANSWER_CACHE_DISK_MB": "0"}  # a true cold start: no answer from an earlier run's shared cache
    with tempfile.TemporaryFile(mode="w+") as errors:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", COLD_START_CODE, str(folder), question],
                                stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        killer = threading.Timer(timeout_s, proc.kill)
        killer.start()
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            seconds = time.perf_counter() - started
            proc.communicate()
        finally:
            killer.cancel()
        errors.seek(0)
        tail = errors.read()[-2000:].strip()
    try:
        data = json.loads(line)
    except ValueError:
        killed = proc.returncode == -signal.SIGKILL
        why = f"was killed after {timeout_s:g} s" if killed else f"exited with code {proc.returncode}"
        return ColdStart(error=f"the cold-start process {why}: {tail.splitlines()[-1] if tail else 'no output'}")
    return ColdStart(seconds=round(seconds, 3), import_s=round(data["import_s"], 3),
                     first_answer_s=round(data["first_answer_s"], 3), status=data["status"],
                     peak_rss_mib=rss_from_status(str(data.get("proc_status", "")), "VmHWM"))


def duckdb_times(con: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> list[float]:
    """Milliseconds to execute and fetch ``sql`` ``repeat`` times, after one untimed run."""
    con.execute(sql).fetchall()
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        con.execute(sql).fetchall()
        out.append((time.perf_counter() - started) * 1000)
    return out


class _Samples:
    """Timings of one question (or of many, pooled), collected over the repeats."""

    def __init__(self) -> None:
        self.stages: dict[str, list[float]] = {}
        self.total: list[float] = []
        self.overhead: list[float] = []
        self.duckdb: list[float] = []

    def add(self, stages: Mapping[str, float], total_ms: float) -> None:
        for stage, ms in stages.items():
            self.stages.setdefault(stage, []).append(ms)
        self.total.append(total_ms)
        self.overhead.append(total_ms - stages.get("execute", 0.0))

    def extend(self, other: _Samples) -> None:
        for stage, values in other.stages.items():
            self.stages.setdefault(stage, []).extend(values)
        self.total.extend(other.total)
        self.overhead.extend(other.overhead)
        self.duckdb.extend(other.duckdb)

    def stage_stats(self) -> dict[str, Stats]:
        return {stage: summarize(self.stages[stage]) for stage in ordered_stages(self.stages)}


def _timed_ask(lore: Lore, question: str) -> tuple[Answer, float]:
    started = time.perf_counter()
    answer = lore.chat().ask(question)
    return answer, (time.perf_counter() - started) * 1000


def run_cold_starts(folder: Path, question: str, *, repeat: int, fresh: bool,
                    log: Callable[[str], None]) -> tuple[ColdStart | None, tuple[ColdStart, ...]]:
    """The first open of a ``fresh`` project (index and caches built), then ``repeat`` true cold starts."""
    first_open = None
    if repeat > 0 and fresh:
        log("first open (builds the retrieval index and the value cache)")
        first_open = measure_cold_start(folder, question)
    cold = []
    for i in range(repeat):
        log(f"cold start {i + 1}/{repeat}")
        cold.append(measure_cold_start(folder, question))
    return first_open, tuple(cold)


def time_pipeline(lore: Lore, questions: Sequence[BenchQuestion], *, repeat: int,
                  log: Callable[[str], None]) -> tuple[float, dict[str, Answer], dict[str, _Samples]]:
    """One untimed warm-up pass, then ``repeat`` timed passes over the questions answered in the warm-up.

    Returns the warm-up seconds, the latest answer to every question, and the samples of the answered ones.
    """
    log("warm-up pass")
    started = time.perf_counter()
    latest = {q.question: _timed_ask(lore, q.question)[0] for q in questions}
    warmup_s = round(time.perf_counter() - started, 3)
    answered = [q.question for q in questions if latest[q.question].status == "answered"]
    samples: dict[str, _Samples] = {}
    for r in range(repeat):
        log(f"repeat {r + 1}/{repeat}: {len(answered)} questions")
        for question in answered:
            answer, total_ms = _timed_ask(lore, question)
            latest[question] = answer
            if answer.status == "answered" and answer.trace is not None:
                timings = stage_samples((t.stage, t.ms) for t in answer.trace.timings)
                samples.setdefault(question, _Samples()).add(timings, total_ms)
    return warmup_s, latest, samples


def time_duckdb(warehouse: Path, sqls: Mapping[str, str], *, repeat: int, threads: int, memory_limit: str,
                scratch: Path) -> dict[str, list[float]]:
    """DuckDB's own time for each SQL on a plain read-only connection to a copy of ``warehouse``.

    A copy, because DuckDB refuses a second connection with another configuration to the
    same file in one process (the engine's connection is hardened).
    """
    with tempfile.TemporaryDirectory(prefix="lore-bench-ref-", dir=scratch) as tmp:
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copyfile(warehouse, copy)
        con = duckdb.connect(str(copy), read_only=True, config={"threads": threads, "memory_limit": memory_limit})
        try:
            return {key: duckdb_times(con, sql, repeat) for key, sql in sqls.items()}
        finally:
            con.close()


def question_run(q: BenchQuestion, answer: Answer, samples: _Samples | None) -> QuestionRun:
    """The summary of one question (skipped when it has no samples)."""
    if samples is None or not samples.total or answer.status != "answered":
        return QuestionRun(question=q.question, domain=q.domain, status=answer.status, message=answer.message[:300])
    total, db = summarize(samples.total), summarize(samples.duckdb)
    return QuestionRun(
        question=q.question, domain=q.domain, status="answered", message=answer.message[:300],
        rows=len(answer.rows), chart_kind=answer.chart_kind, sql=answer.sql, stages=samples.stage_stats(),
        total=total, overhead=summarize(samples.overhead), duckdb=db, ratio=ratio(total.p50, db.p50),
    )


def median_or_none(values: Sequence[float], digits: int) -> float | None:
    """
    >>> median_or_none([3.0, 1.0, 2.0], 2), median_or_none([], 2)
    (2.0, None)
    """
    return round(statistics.median(values), digits) if values else None


def bench_project(
    folder: Path,
    questions: Sequence[BenchQuestion],
    *,
    repeat: int,
    cold_repeat: int,
    label: str,
    scratch: Path,
    scale: float | None = None,
    built: bool = False,
    build_s: float | None = None,
    log: Callable[[str], None] = lambda _msg: None,
    load_requests: int = 0,
    load_threads: int = 4,
) -> ScaleRun:
    """Measure one project folder: cold start, warm per-stage timings, the answer cache and load, DuckDB alone."""
    from lore import Lore

    lore = Lore.open(folder, answer_cache=False)  # every stage runs: the answer cache is measured on its own
    settings, warehouse = lore.settings, lore.project.warehouse_path
    fresh = built or not (lore.project.state_dir / "index").exists()
    first_open, cold = run_cold_starts(folder, questions[0].question, repeat=cold_repeat, fresh=fresh, log=log)
    per_run_peak = reset_peak_rss()
    try:
        warmup_s, latest, samples = time_pipeline(lore, questions, repeat=repeat, log=log)
        rss, peak = current_rss_mib(), peak_rss_mib()
    finally:
        lore.close()

    answered = [q.question for q in questions if q.question in samples]
    cache = bench_cache(folder, answered, repeat=repeat, requests=load_requests, threads=load_threads,
                        scratch=scratch, log=log)

    log("DuckDB alone on a copy of the warehouse")
    sqls = {q: latest[q].sql or "" for q in samples}
    for question, times in time_duckdb(warehouse, sqls, repeat=repeat, threads=settings.duckdb_threads,
                                       memory_limit=settings.duckdb_memory_limit, scratch=scratch).items():
        samples[question].duckdb.extend(times)

    runs = tuple(question_run(q, latest[q.question], samples.get(q.question)) for q in questions)
    pooled = _Samples()
    for s in samples.values():
        pooled.extend(s)
    engine_extra = [q.stages["execute"].p50 - q.duckdb.p50 for q in runs
                    if "execute" in q.stages and q.stages["execute"].p50 is not None
                    and q.duckdb is not None and q.duckdb.p50 is not None]
    return ScaleRun(
        label=label, scale=scale, folder=str(folder), built=built, build_s=build_s,
        warehouse_mib=round(warehouse.stat().st_size / 2**20, 1), duckdb_threads=settings.duckdb_threads,
        first_open=first_open, cold_start=cold, warmup_s=warmup_s, questions=runs,
        stages=pooled.stage_stats(), total=summarize(pooled.total), overhead=summarize(pooled.overhead),
        duckdb=summarize(pooled.duckdb),
        ratio=median_or_none([r.ratio for r in runs if r.ratio is not None], 2),
        engine_overhead_ms=median_or_none(engine_extra, 3),
        rss_mib=rss, peak_rss_mib=peak, peak_is_per_run=per_run_peak, cache=cache,
    )


# --- the answer cache and the load test ------------------------------------------


def scratch_project(folder: Path, scratch: Path, leave: Sequence[str] = ()) -> Path:
    """A throwaway copy of a project (the load test writes votes): warehouses hard-linked (read-only), the rest copied
    but for files matching ``leave`` (glob patterns)."""

    def copy(src: str, dst: str) -> object:
        if src.endswith(".duckdb"):
            try:
                os.link(src, dst)
                return dst
            except OSError:
                pass
        return shutil.copy2(src, dst)

    target = Path(tempfile.mkdtemp(prefix="lore-bench-load-", dir=scratch)) / folder.name
    shutil.copytree(folder, target, copy_function=copy, ignore=shutil.ignore_patterns("*.wal", "*.tmp", *leave))
    return target


def cached_repeats(lore: Lore, questions: Sequence[str], *, repeat: int) -> tuple[list[float], int]:
    """Ask each question once (filling the cache), then ``repeat`` more times: the repeats' wall ms and hits."""
    for question in questions:
        lore.ask(question)
    times, hits = [], 0
    for _ in range(repeat):
        for question in questions:
            answer, ms = _timed_ask(lore, question)
            times.append(ms)
            hits += bool(answer.trace is not None and answer.trace.cache_hit)
    return times, hits


def load_test(lore: Lore, questions: Sequence[str], *, requests: int, threads: int, tag: str) -> LoadRun:
    """``requests`` asks spread over ``threads`` threads on one Lore; every answer gets a thumbs-up vote.

    Afterwards each vote is sent again with its idempotency key: the store must answer "duplicate"
    for every one (no vote lost).
    """
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    votes: list[tuple[str, str, str]] = []
    hits = 0

    def worker(k: int) -> None:
        nonlocal hits
        for i in range(k, requests, threads):
            question = questions[i % len(questions)]
            try:
                answer, ms = _timed_ask(lore, question)
                key = f"{tag}-{i}"
                if answer.status == "answered":
                    lore.feedback(answer.id, rating=+1, user=f"bench-{k}", idempotency_key=key)
                with lock:
                    latencies.append(ms)
                    hits += bool(answer.trace is not None and answer.trace.cache_hit)
                    if answer.status == "answered":
                        votes.append((answer.id, f"bench-{k}", key))
                    else:
                        failures.append(f"{question}: {answer.status}: {answer.message[:120]}")
            except LoreError as err:
                with lock:
                    failures.append(f"{question}: {type(err).__name__}: {err}"[:200])

    pool = [threading.Thread(target=worker, args=(k,), name=f"bench-load-{k}") for k in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    found = 0
    for answer_id, user, key in votes:
        try:
            found += lore.feedback(answer_id, rating=+1, user=user, idempotency_key=key).duplicate
        except LoreError as err:
            failures.append(f"vote {key} not found: {err}"[:200])
    return LoadRun(answer_cache=lore.answer_cache is not None, requests=requests, threads=threads,
                   seconds=round(seconds, 3), throughput_rps=round(len(latencies) / seconds, 1) if seconds else 0.0,
                   latency=summarize(latencies), errors=len(failures), error_messages=tuple(failures[:10]),
                   cache_hits=hits, votes=len(votes), votes_found=found)


def bench_cache(folder: Path, questions: Sequence[str], *, repeat: int, requests: int, threads: int, scratch: Path,
                log: Callable[[str], None] = lambda _msg: None) -> CacheRun:
    """The cached repeat and the load tests (cache on, then off) on a throwaway copy of the project."""
    from lore import Lore

    if not questions:
        return CacheRun(error="no answered question to repeat")
    copy = scratch_project(folder, scratch)
    try:
        tag = f"bench-{os.getpid()}-{int(time.time())}"
        with Lore.open(copy) as lore:
            log("answer cache: repeated questions")
            lore.warm_up()
            times, hits = cached_repeats(lore, questions, repeat=repeat)
            loads = []
            if requests > 0:
                log(f"load test, answer cache on: {requests} requests from {threads} threads")
                loads.append(load_test(lore, questions, requests=requests, threads=threads, tag=f"{tag}-on"))
        if requests > 0:
            with Lore.open(copy, answer_cache=False) as lore:
                lore.warm_up()
                log(f"load test, answer cache off: {requests} requests from {threads} threads")
                loads.append(load_test(lore, questions, requests=requests, threads=threads, tag=f"{tag}-off"))
        return CacheRun(repeat=summarize(times), hits=hits, loads=tuple(loads))
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


def demo_folder(workdir: Path, scale: float, seed: int) -> Path:
    """Where the demo project for ``scale`` and ``seed`` is cached.

    >>> demo_folder(Path("/w"), 10.0, 42).as_posix()
    '/w/demo-scale-10-seed-42'
    """
    return workdir / f"demo-scale-{scale:g}-seed-{seed}"


def prepare_demo(workdir: Path, scale: float, seed: int) -> tuple[Path, bool, float]:
    """Build (or reuse) the demo project for ``scale``; returns its folder, whether it was built, and seconds."""
    from lore.demo.project import init_demo

    folder = demo_folder(workdir, scale, seed)
    started = time.perf_counter()
    _, built = init_demo(folder, scale=scale, seed=seed)
    return folder, built, round(time.perf_counter() - started, 3)


# --- report -------------------------------------------------------------------------------


def machine_lines(machine: Machine) -> list[str]:
    """The report header.

    >>> m = Machine(date="2026-11-01T00:00:00+00:00", platform="Linux-6", processor="x86_64", cpu_count=2,
    ...             cpus_usable=2, python="3.11.9", duckdb="1.2.0", versions={"sqlglot": "30"})
    >>> machine_lines(m)[0]
    'LORE pipeline benchmark, 2026-11-01T00:00:00+00:00'
    """
    extra = ", ".join(f"{k} {v}" for k, v in machine.versions.items())
    return [
        f"LORE pipeline benchmark, {machine.date}",
        f"{machine.platform} ({machine.processor}), {machine.cpu_count} CPUs"
        + (f" ({machine.cpus_usable} usable)" if machine.cpus_usable is not None else ""),
        f"python {machine.python}, duckdb {machine.duckdb}" + (f", {extra}" if extra else ""),
    ]


def _cold_text(run: ScaleRun) -> str:
    good = [c for c in run.cold_start if c.seconds is not None]
    parts = []
    if good:
        best = sorted(good, key=lambda c: c.seconds or 0.0)[len(good) // 2]
        parts.append(f"cold start {best.seconds:.2f} s to the first answer (import lore {best.import_s:.2f} s"
                     + (f", child peak RSS {best.peak_rss_mib:,.0f} MiB" if best.peak_rss_mib else "") + ")"
                     + (f", median of {len(good)}" if len(good) > 1 else ""))
    parts += [f"cold start failed: {c.error}" for c in run.cold_start if c.error]
    if run.first_open is not None:
        fo = run.first_open
        parts.append(f"first open after build {fo.seconds:.2f} s" if fo.seconds is not None
                     else f"first open failed: {fo.error}")
    return "; ".join(parts) or "cold start not measured"


def scale_tables(run: ScaleRun, *, repeat: int) -> list[Table | str]:
    """The rich renderables for one run: a summary, the stage table, the per-question table."""
    title = f"{run.label}: {run.folder}"
    if run.error:
        return [f"[bold red]{title}[/]", f"[red]error: {run.error}[/]"]
    build = "existing project" if run.build_s is None else f"built in {run.build_s:.1f} s" if run.built else "reused"
    size = f"{run.warehouse_mib:,.1f} MiB" if run.warehouse_mib is not None else "size unknown"
    warmup = f"{run.warmup_s:.1f} s" if run.warmup_s is not None else "-"
    lines: list[Table | str] = [
        f"[bold]{title}[/]",
        f"warehouse {size} ({build}); {len(run.answered)} of {len(run.questions)} questions answered, "
        f"{repeat} repeat(s) each after a warm-up pass ({warmup}); duckdb threads {run.duckdb_threads}",
        _cold_text(run),
        f"memory: RSS {run.rss_mib if run.rss_mib is not None else '-'} MiB after the runs, peak "
        f"{run.peak_rss_mib} MiB " + ("during the runs (DuckDB reference excluded)" if run.peak_is_per_run
                                       else "(of this process so far)"),
    ]
    table = Table(title=f"latency per stage, all questions pooled ({run.total.n if run.total else 0} answers)")
    table.add_column("stage")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("mean ms", justify="right")
    for stage, st in run.stages.items():
        table.add_row(stage, fmt_ms(st.p50), fmt_ms(st.p95), fmt_ms(st.mean))
    table.add_section()
    for name, st in (("total (ask wall time)", run.total), ("overhead (total - execute)", run.overhead),
                     ("duckdb alone, same SQL", run.duckdb)):
        if st is not None:
            table.add_row(name, fmt_ms(st.p50), fmt_ms(st.p95), fmt_ms(st.mean))
    lines.append(table)
    lines.append(f"ratio total / duckdb: {run.ratio}x (median over questions of p50 total / p50 duckdb); "
                 f"execute - duckdb: {fmt_ms(run.engine_overhead_ms)} ms (median over questions of the p50s)")

    per_q = Table(title="per question (p50, ms)")
    per_q.add_column("question", no_wrap=True, overflow="ellipsis", max_width=48)
    for col in ("rows", "total", "execute", "overhead", "duckdb", "ratio"):
        per_q.add_column(col, justify="right")
    for q in run.answered:
        per_q.add_row(q.question, str(q.rows), fmt_ms(q.total.p50 if q.total else None),
                      fmt_ms(q.stages["execute"].p50 if "execute" in q.stages else None),
                      fmt_ms(q.overhead.p50 if q.overhead else None), fmt_ms(q.duckdb.p50 if q.duckdb else None),
                      f"{q.ratio}x" if q.ratio else "-")
    lines.append(per_q)
    for q in run.skipped:
        lines.append(f"[yellow]skipped ({q.status}):[/] {q.question} -> {q.message[:160]}")
    lines += cache_lines(run.cache)
    return lines


def cache_lines(cache: CacheRun | None) -> list[Table | str]:
    """The answer-cache summary and the load-test table."""
    if cache is None:
        return []
    if cache.error:
        return [f"answer cache: {cache.error}"]
    out: list[Table | str] = []
    if cache.repeat is not None:
        out.append(f"answer cache: a repeated question p50 {fmt_ms(cache.repeat.p50)} ms, p95 {fmt_ms(cache.repeat.p95)} ms "
                   f"(ask() wall time, {cache.hits} of {cache.repeat.n} were hits)")
    if cache.loads:
        table = Table(title="load test: one Lore, several threads, a thumbs-up vote per answer")
        for col in ("answer cache", "requests", "threads", "req/s", "p50 ms", "p95 ms", "hits", "errors", "votes kept"):
            table.add_column(col, justify="right")
        for load in cache.loads:
            table.add_row("on" if load.answer_cache else "off", str(load.requests), str(load.threads),
                          f"{load.throughput_rps:,.1f}", fmt_ms(load.latency.p50), fmt_ms(load.latency.p95),
                          str(load.cache_hits), str(load.errors), f"{load.votes_found}/{load.votes}")
        out.append(table)
        for load in cache.loads:
            out += [f"[red]load error:[/] {m}" for m in load.error_messages]
    return out


# --- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evals.bench.pipeline",
        description="Benchmark LORE's question-to-answer pipeline on the demo warehouse: cold start, per-stage "
                    "latency p50/p95, pipeline overhead, DuckDB's own time for the same SQL, memory.",
    )
    parser.add_argument("--scales", default="1,10", help="comma-separated demo scales (default: 1,10)")
    parser.add_argument("--seed", type=int, default=42, help="demo generator seed (default: 42)")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS,
                        help="YAML file of questions (default: evals/bench/questions.yaml)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of every question (default: 5)")
    parser.add_argument("--cold-repeat", type=int, default=1,
                        help="fresh processes timed for the cold start (default: 1; 0 skips it)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where demo projects are built and cached (default: <tmp>/lore-bench-pipeline)")
    parser.add_argument("--project", type=Path, default=None,
                        help="benchmark this existing project folder instead of building demos (ignores --scales)")
    parser.add_argument("--out", type=Path, default=None, help="write the full results as JSON to this file")
    parser.add_argument("--load-requests", type=int, default=200,
                        help="requests of the load test, per answer-cache setting (default: 200; 0 skips it)")
    parser.add_argument("--load-threads", type=int, default=4, help="threads of the load test (default: 4)")
    return parser


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        scales = parse_scales(args.scales)
    except ValueError:
        parser.error(f"--scales must be comma-separated positive numbers, got {args.scales!r}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.cold_repeat < 0:
        parser.error("--cold-repeat must be 0 or more")
    if args.load_requests < 0 or args.load_threads < 1:
        parser.error("--load-requests must be 0 or more and --load-threads at least 1")
    out = console or Console(width=None if sys.stdout.isatty() else 120)
    err = Console(stderr=True)
    try:
        questions = load_questions(args.questions)
    except OperatorError as e:
        err.print(f"[red]error:[/] {e}")
        return 2
    workdir = (args.workdir or Path(tempfile.gettempdir()) / "lore-bench-pipeline").expanduser().resolve()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        err.print(f"[red]error:[/] cannot create the work folder {workdir}: {e.strerror}")
        return 2
    machine = machine_info()
    for line in machine_lines(machine):
        out.print(line, highlight=False)

    def log(label: str) -> Callable[[str], None]:
        return lambda msg: err.print(f"[dim]{label}: {msg}[/]", highlight=False)

    targets: list[tuple[str, float | None]] = (
        [(f"project {args.project.name}", None)] if args.project else [(f"scale {s:g}", s) for s in scales]
    )
    runs: list[ScaleRun] = []
    for label, scale in targets:
        folder, built, build_s = args.project, False, None
        if scale is not None:
            log(label)(f"building or reusing the demo project (seed {args.seed})")
            try:
                folder, built, build_s = prepare_demo(workdir, scale, args.seed)
            except (LoreError, OSError, duckdb.Error) as e:
                run = ScaleRun(label=label, scale=scale, folder=str(demo_folder(workdir, scale, args.seed)),
                               error=f"building the demo project at scale {scale:g} failed: {e}")
                runs.append(run)
                for item in scale_tables(run, repeat=args.repeat):
                    out.print(item)
                continue
        assert folder is not None
        try:
            run = bench_project(folder.resolve(), questions, repeat=args.repeat, cold_repeat=args.cold_repeat,
                                label=label, scale=scale, built=built, build_s=build_s, scratch=workdir,
                                log=log(label), load_requests=args.load_requests, load_threads=args.load_threads)
        except (LoreError, OSError, duckdb.Error) as e:
            run = ScaleRun(label=label, scale=scale, folder=str(folder), built=built, build_s=build_s,
                           error=f"benchmarking {folder} failed: {e}")
        runs.append(run)
        out.print()
        for item in scale_tables(run, repeat=args.repeat):
            out.print(item)

    report = BenchReport(machine=machine, repeat=args.repeat, questions_file=str(args.questions), runs=tuple(runs))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report.model_dump(mode="json"), indent=2), encoding="utf-8")
        err.print(f"results written to {args.out}")
    failed = [r for r in runs if r.error or not r.answered]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
