"""Load-test the HTTP API with Locust on loopback (run on purpose; not a test of speed).

    python -m evals.bench.load [--scales 1,10] [--users 50] [--duration 120] [--workers 2] [--out results.json]
    python -m evals.bench.load --project DIR ...      # an existing project instead of the demo (copied first)

For each scale it builds (or reuses, under ``--workdir``) a demo project, copies it without its answers, keys,
conversations and votes, makes one API key per simulated user, starts ``lore serve`` with ``--workers`` worker
processes on a free loopback port and waits until every worker is ready. It then asks the cached questions once
(so the run finds them in the answer cache), writes the plan the users read (keys, cached questions, a pool of
questions nobody asked, follow-ups, semantic queries drawn from the server's own ``/v1/metrics`` and
``/v1/dimensions``), and runs Locust headless (``evals/bench/locustfile.py``) for ``--duration`` seconds with
``--users`` users. It prints throughput, p50/p95/p99 latency and failures per endpoint, the answers' statuses
and cache hits, and checks the targets: zero failures, cached answers p95 under 50 ms, uncached answers p95
under 500 ms (exit 1 when one is missed; 2 when the run itself could not be made).

Locust runs on the same machine as the server (one process, gevent), so the server has less than the whole
machine; the report says how many CPUs there were.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from lore.errors import LoreError

from evals.bench.pipeline import demo_folder, load_questions, machine_info, prepare_demo, scratch_project

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DEFAULT_QUESTIONS = Path(__file__).with_name("questions.yaml")
#: (endpoint name in the report, p95 target in ms)
TARGETS: tuple[tuple[str, float], ...] = (("ask (cached)", 50.0), ("ask (uncached)", 500.0))
#: state the copy leaves behind: earlier answers, keys, conversations and votes (the index and the layer stay)
STATE_FILES = ("answers.sqlite*", "api.sqlite*", "feedback.sqlite*")
FOLLOW_UPS = ("what about last year?", "and in 2025?", "only in 2026", "show it by month", "and the quarter before?",
              "now by quarter", "just the top 5")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


class LoadError(Exception):
    """The run could not be made (a server that does not start, Locust missing): exit 2 with the message."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_keys(project: Path, principals: Sequence[str]) -> list[str]:
    """A new API key for each of ``principals`` (each simulated user is its own client with its own key and rate),
    tokens in order."""
    from lore.project import Project
    from ui.api.keys import KeyStore
    from ui.api.store import API_FILE, Database

    db = Database(Project.open(project).state_dir / API_FILE)
    try:
        store = KeyStore(db)
        return [store.create(who, name="load test")[1] for who in principals]
    finally:
        db.close()


class KeyRing:
    """The runner's own keys, all of one person: a new one every ``per_key`` requests, so setting up (warming the
    cache, reading the catalog) stays within the server's real rate limit, which the simulated users meet as it is."""

    def __init__(self, project: Path, per_key: int = 20) -> None:
        self.project, self.per_key = project, per_key
        self._used = per_key
        self._token = ""

    def headers(self) -> dict[str, str]:
        if self._used >= self.per_key:
            self._token = make_keys(self.project, ["load-setup@example.com"])[0]
            self._used = 0
        self._used += 1
        return {"Authorization": f"Bearer {self._token}"}


class Server:
    """``lore serve`` in a subprocess, its log in a file; ready when every worker finished its start-up."""

    def __init__(self, project: Path, workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log = log
        env = {**os.environ, "LORE_API_SLACK": "false", "PYTHONUNBUFFERED": "1"}
        self._out = open(log, "w", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", "lore.cli", "serve", "--project", str(project), "--port",
                                      str(self.port), "--workers", str(workers)], env=env, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 600.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc.poll() is not None:
                raise LoadError(f"`lore serve` stopped (exit {self.proc.returncode}); its log:\n{self.tail()}")
            text = self.log.read_text(encoding="utf-8", errors="replace")
            if text.count("Application startup complete") >= self.workers:
                try:
                    if httpx.get(f"{self.url}/readyz", timeout=10).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        raise LoadError(f"`lore serve` was not ready after {timeout_s:.0f} s; its log:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the server's processes used so far (its workers are alive until it stops)."""
        import psutil  # lazy: Locust's own dependency, installed with it

        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()


def semantic_plan(url: str, keys: KeyRing, rng: random.Random) -> tuple[list[dict[str, Any]], list[str]]:
    """Semantic queries (a metric by one of its categorical dimensions) and questions nobody asked (a metric by a
    dimension in a month, a quarter or a year), from the server's own catalog; the questions in random order."""
    with httpx.Client(base_url=url, timeout=60) as http:
        metrics = http.get("/v1/metrics", headers=keys.headers()).raise_for_status().json()["metrics"]
        queries: list[dict[str, Any]] = []
        fresh: list[str] = []
        periods = ([f"{m} {y}" for y in (2025, 2026) for m in MONTHS] + [f"Q{q} {y}" for y in (2025, 2026)
                                                                      for q in range(1, 5)] + ["2025", "2026"])
        for metric in metrics:
            dims = http.get("/v1/dimensions", params={"metrics": metric["name"]},
                            headers=keys.headers()).raise_for_status().json()
            categorical = [d for d in dims["dimensions"] if d["kind"] == "categorical"]
            label = metric.get("label") or metric["name"].replace("_", " ")
            for dim in categorical:
                queries.append({"metrics": [metric["name"]], "dimensions": [dim["ref"]], "limit": 100})
                dim_label = dim.get("label") or dim["ref"].split(".")[-1].replace("_", " ")
                fresh.extend(f"{label} by {dim_label} in {period}" for period in periods)
    if not queries:
        raise LoadError("The project's metrics reach no categorical dimension: nothing to query.")
    rng.shuffle(fresh)
    return queries, fresh


def warm(url: str, keys: KeyRing, questions: Sequence[str], workers: int) -> dict[str, int]:
    """Ask every cached question (through each worker, likely: each pass is a new connection, and the port spreads
    connections over the workers) so the run finds them answered; returns the statuses seen."""
    statuses: dict[str, int] = {}
    for _ in range(max(2, 2 * workers)):
        with httpx.Client(base_url=url, timeout=120) as http:
            conversation = http.post("/v1/conversations", headers=keys.headers()).raise_for_status().json()["id"]
            for question in questions:
                answer = http.post(f"/v1/conversations/{conversation}/messages", json={"question": question},
                                   headers=keys.headers()).raise_for_status().json()
                statuses[answer["status"]] = statuses.get(answer["status"], 0) + 1
    return statuses


def run_locust(url: str, plan: Path, out: Path, *, users: int, spawn_rate: float, duration: int,
               wait: tuple[float, float] = (1.0, 5.0), smoke: bool = False,
               tags: Sequence[str] = ()) -> tuple[list[dict[str, str]], dict[str, int], str, float]:
    """Run Locust headless; returns its per-endpoint rows (stats CSV), the answers' tally, its output and the CPU
    seconds it used."""
    prefix = out / "locust"
    tally = out / "tally.json"
    env = {**os.environ, "LORE_LOAD_PLAN": str(plan), "LORE_LOAD_TALLY": str(tally),
           "LORE_LOAD_WAIT": f"{wait[0]:g},{wait[1]:g}"}
    if smoke:
        env["LORE_LOAD_SMOKE"] = "1"
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url, "--users",
               str(users), "--spawn-rate", f"{spawn_rate:g}", "--run-time", f"{duration}s", "--stop-timeout", "30",
               "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    if tags:
        command += ["--tags", *tags]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    counts_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        raise LoadError(f"Locust wrote no statistics (exit {done.returncode}):\n{done.stderr[-3000:]}")
    with stats.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    counts = json.loads(tally.read_text(encoding="utf-8")) if tally.exists() else {"counts": {}, "pipeline_ms": {}}
    return rows, counts, done.stderr, counts_cpu


def endpoint_figures(rows: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
    """Per endpoint (and the aggregate): requests, failures, throughput and latency percentiles in ms.

    >>> row = {"Type": "POST", "Name": "ask (cached)", "Request Count": "10", "Failure Count": "0",
    ...        "Requests/s": "2.5", "50%": "12", "95%": "30", "99%": "41", "Max Response Time": "44.1"}
    >>> endpoint_figures([row])[0]["p95_ms"]
    30.0
    """
    out = []
    for row in rows:
        out.append({"endpoint": row["Name"], "method": row["Type"], "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]), "rps": float(row["Requests/s"]),
                    "p50_ms": _number(row["50%"]), "p95_ms": _number(row["95%"]), "p99_ms": _number(row["99%"]),
                    "max_ms": _number(row["Max Response Time"])})
    return out


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # Locust writes N/A for an endpoint with no requests
        return None


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default).

    >>> percentile([1, 2, 3, 4], 50), percentile([5.0], 95)
    (2.5, 5.0)
    """
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 2)


def check_targets(figures: Sequence[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """The targets, each (what, met, the figure).

    >>> figs = [{"endpoint": "ask (cached)", "requests": 5, "failures": 0, "p95_ms": 20.0},
    ...         {"endpoint": "ask (uncached)", "requests": 5, "failures": 0, "p95_ms": 800.0},
    ...         {"endpoint": "Aggregated", "requests": 10, "failures": 0, "p95_ms": 700.0}]
    >>> [met for _, met, _ in check_targets(figs)]
    [True, True, False]
    """
    by_name = {f["endpoint"]: f for f in figures}
    total = by_name.get("Aggregated", {"failures": sum(f["failures"] for f in figures),
                                       "requests": sum(f["requests"] for f in figures)})
    checks = [("zero failures", total["failures"] == 0, f"{total['failures']} of {total['requests']} requests")]
    for name, limit in TARGETS:
        found = by_name.get(name)
        p95 = found["p95_ms"] if found else None
        checks.append((f"{name} p95 < {limit:g} ms", p95 is not None and p95 < limit,
                       "no requests" if p95 is None else f"{p95:g} ms"))
    return checks


def figures_table(title: str, figures: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for head in ("endpoint", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(head, justify="left" if head == "endpoint" else "right")
    for f in sorted(figures, key=lambda f: (f["endpoint"] == "Aggregated", f["endpoint"])):
        cells = [f"{f['rps']:.1f}"] + [("-" if f[k] is None else f"{f[k]:.0f}")
                                       for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        table.add_row(f["endpoint"], str(f["requests"]), str(f["failures"]), *cells)
    return table


def run_scale(source: Path, scratch: Path, *, label: str, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    project = scratch_project(source, scratch, leave=STATE_FILES)
    tokens = make_keys(project, [f"load-user-{i:03d}@example.com" for i in range(args.users)])
    keys = KeyRing(project)
    server = Server(project, args.workers, scratch / "server.log")
    try:
        ready_s = server.wait_ready()
        console.print(f"[dim]{label}: {args.workers} worker(s) ready in {ready_s:.1f} s on {server.url}[/]")
        rng = random.Random(args.seed)
        cached = [q.question for q in load_questions(args.questions)]
        warmed = warm(server.url, keys, cached, args.workers)
        queries, fresh = semantic_plan(server.url, keys, rng)
        plan = {"tokens": tokens, "cached": cached, "uncached": fresh, "follow_ups": list(FOLLOW_UPS),
                "semantic": queries}
        plan_file = scratch / "plan.json"
        plan_file.write_text(json.dumps(plan), encoding="utf-8")
        console.print(f"[dim]{label}: {len(cached)} cached questions ({_counts(warmed)} while warming), "
                      f"{len(fresh):,} fresh ones, {len(queries)} semantic queries; Locust: {args.users} users for "
                      f"{args.duration} s[/]")
        server_cpu = server.cpu_seconds()
        started = time.monotonic()
        rows, tallied, locust_log, locust_cpu = run_locust(server.url, plan_file, scratch, users=args.users,
                                                         spawn_rate=args.spawn_rate, duration=args.duration,
                                                         wait=args.wait, smoke=args.smoke, tags=args.tags)
        wall = time.monotonic() - started
        server_cpu = server.cpu_seconds() - server_cpu
    finally:
        server.stop()
    figures = endpoint_figures(rows)
    tally = tallied["counts"]
    pipeline = {kind: {"p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95), "n": len(values)}
                for kind, values in sorted(tallied["pipeline_ms"].items()) if values}
    cpus = os.cpu_count() or 1
    return {"label": label, "project": str(source), "users": args.users, "wait_s": list(args.wait),
            "duration_s": args.duration,
            "workers": args.workers, "figures": figures, "tally": tally, "pipeline": pipeline, "targets": [
                {"target": what, "met": met, "figure": figure} for what, met, figure in check_targets(figures)],
            "cpu": {"server_pct": round(100 * server_cpu / wall / cpus, 1),
                    "locust_pct": round(100 * locust_cpu / wall / cpus, 1), "cpus": cpus},
            "locust_errors": locust_log[-2000:] if any(f["failures"] for f in figures) else ""}


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def pause(text: str) -> tuple[float, float]:
    """``--wait LOW,HIGH`` (seconds).

    >>> pause("0.5,2"), pause("3")
    ((0.5, 2.0), (3.0, 3.0))
    """
    low, _, high = text.partition(",")
    try:
        values = float(low), float(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in seconds (e.g. 1,5), not {text!r}") from None
    if not 0 <= values[0] <= values[1]:
        raise argparse.ArgumentTypeError(f"expected 0 <= LOW <= HIGH, not {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals.bench.load", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,10", help="Demo scales, comma-separated (default 1,10).")
    parser.add_argument("--project", type=Path, help="Load-test this project (copied) instead of the demo.")
    parser.add_argument("--users", type=int, default=50, help="Simulated users (default 50).")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="Users started per second (default 10).")
    parser.add_argument("--duration", type=int, default=120, help="Seconds of load per scale (default 120).")
    parser.add_argument("--workers", type=int, default=2, help="`lore serve --workers` (default 2: one per core).")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS,
                        help="The cached questions (the pipeline benchmark's set by default).")
    parser.add_argument("--seed", type=int, default=7, help="Demo warehouse seed and question order (default 7).")
    parser.add_argument("--workdir", type=Path, help="Where demo projects are built and kept between runs.")
    parser.add_argument("--out", type=Path, help="Also write the figures as JSON here.")
    parser.add_argument("--wait", type=pause, default=(1.0, 5.0), metavar="LOW,HIGH",
                        help="Each user's pause between requests, drawn between LOW and HIGH seconds (default 1,5, "
                             "as in Locust's examples; 0.5,2 is a heavier load).")
    parser.add_argument("--tags", nargs="+", default=[], metavar="TAG",
                        help="Only these kinds of request (cached, uncached, follow-up, stream, feedback, read, "
                             "metrics, data, sql; default all): to see how one kind fares on its own.")
    parser.add_argument("--smoke", action="store_true", help="Each user also makes every kind of request once at "
                        "start (a check of the harness, not a load figure).")
    return parser


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = console or Console()
    err = Console(stderr=True)
    if args.users < 1 or args.duration < 1 or args.workers < 1:
        err.print("[red]error:[/] --users, --duration and --workers must be at least 1.")
        return 2
    if importlib.util.find_spec("locust") is None:  # the run needs it: say so before building anything
        err.print("[red]error:[/] Locust is not installed: run `./dev.sh load` (it installs the dev extras).")
        return 2
    workdir = (args.workdir or Path(tempfile.gettempdir()) / "lore-bench-pipeline").expanduser().resolve()
    machine = machine_info()
    console.print(f"LORE HTTP API load test, {machine.date}")
    console.print(f"{machine.platform} ({machine.processor}), {machine.cpu_count} CPUs ({machine.cpus_usable} usable), "
                  f"Python {machine.python}; Locust on the same machine")
    runs = []
    try:
        if args.project is not None:
            targets = [(args.project.expanduser().resolve(), str(args.project))]
        else:
            scales = [float(s) for s in args.scales.split(",") if s.strip()]
            targets = []
            for scale in scales:
                folder, built, build_s = prepare_demo(workdir, scale, args.seed)
                if built:
                    console.print(f"[dim]built the demo at scale {scale:g} in {build_s:.0f} s[/]")
                targets.append((demo_folder(workdir, scale, args.seed), f"scale {scale:g}"))
        for source, label in targets:
            with tempfile.TemporaryDirectory(prefix="lore-load-") as scratch:
                run = run_scale(source, Path(scratch), label=label, args=args, console=console)
            runs.append(run)
            console.print(figures_table(f"{label}: {args.users} users pausing {args.wait[0]:g}-{args.wait[1]:g} s, "
                                        f"{args.duration} s, {args.workers} worker(s)",
                                        run["figures"]))
            console.print("answers: " + (_counts(run["tally"]) or "none"))
            console.print("the pipeline's own time (its stages, server side), p50 / p95: " + "; ".join(
                f"{kind} {p['p50_ms']:.0f} / {p['p95_ms']:.0f} ms" for kind, p in run["pipeline"].items()))
            console.print(f"CPU while loaded: the server {run['cpu']['server_pct']:g}% and Locust "
                          f"{run['cpu']['locust_pct']:g}% of the machine's {run['cpu']['cpus']} CPUs")
            for target in run["targets"]:
                mark = "[green]met[/]" if target["met"] else "[red]missed[/]"
                console.print(f"  {target['target']}: {target['figure']} ({mark})")
            if run["locust_errors"]:
                console.print(f"[dim]{run['locust_errors']}[/]")
    except (LoadError, LoreError, httpx.HTTPError, ValueError, OSError) as e:
        err.print(f"[red]error:[/] {e}")
        return 2
    if args.out is not None:
        args.out.write_text(json.dumps({"machine": machine.model_dump(), "runs": runs}, indent=2), encoding="utf-8")
    return 0 if all(t["met"] for run in runs for t in run["targets"]) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
