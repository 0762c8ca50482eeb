"""The offline eval harness: load a golden file, ask every case through the public API, score by execution.

A golden file (YAML)::

    version: 1
    today: "2026-11-01"            # relative dates resolve against this day
    cases:
      - {id: s-1, domain: streaming, category: one_dimension, tags: [],
         question: "streaming hours by region", gold_sql: "SELECT ...", ordered: false}
      - {id: m-1, domain: streaming, category: multi_turn,
         turns: [{question: "...", gold_sql: "..."}, {question: "...", gold_sql: "..."}]}
      - {id: r-1, domain: general, category: refusal, question: "drop table x", expect: refused}

Each turn expects ``answered`` (the default: rows must match the rows of
``gold_sql``, see :mod:`evals.scoring`), ``refused`` or ``clarify`` (the
answer's status must be exactly that). A multi-turn case is asked as one
conversation and is correct when every turn is.

The loading and scoring helpers are pure; :func:`run_golden` is the edge that
asks LORE and runs the gold SQL on the project's engine (trusted SQL, not
guarded, on the same hardened read-only connection).
"""

from __future__ import annotations

import fnmatch
import hashlib
import platform
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlglot
import yaml
from pydantic import Field, ValidationError
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.optimizer.qualify import qualify
from sqlglot.transforms import eliminate_qualify

from evals.metrics import (
    HIGH_CONFIDENCE,
    RefusalStats,
    ReliabilityBin,
    above_threshold,
    accuracy,
    auroc,
    brier_score,
    expected_calibration_error,
    isotonic_points,
    percentile,
    refusal_stats,
    reliability_bins,
)
from evals.scoring import match_rows
from lore.errors import ConfigError, EngineError, LoreError
from lore.explain.confidence import calibrate, raw_score
from lore.semantic.compile import null_safe_eq, portable
from lore.types import Answer, Frozen, ResultSet, Scalar

if TYPE_CHECKING:  # pragma: no cover
    from lore.core import Lore

Expect = Literal["answered", "refused", "clarify"]
#: the statuses that count as declining to answer (for refusal precision and recall)
DECLINED = ("refused", "clarify")
#: rows of each result kept in the report
MAX_REPORT_ROWS = 50
REPORT_VERSION = 1


# --- the golden file ----------------------------------------------------------------------


class GoldenTurn(Frozen):
    question: str = Field(min_length=1)
    gold_sql: str | None = None
    expect: Expect = "answered"
    #: row order matters (the question asks for a ranking or a time series read in order)
    ordered: bool = False


class GoldenCase(Frozen):
    id: str = Field(min_length=1)
    domain: str = "general"
    category: str = "uncategorised"
    tags: tuple[str, ...] = ()
    notes: str = ""
    turns: tuple[GoldenTurn, ...] = Field(min_length=1)

    @property
    def multi_turn(self) -> bool:
        return len(self.turns) > 1

    @property
    def question(self) -> str:
        """The questions, joined by ' → ' for a multi-turn case."""
        return " → ".join(t.question for t in self.turns)


class GoldenSet(Frozen):
    version: int = 1
    today: date | None = None
    cases: tuple[GoldenCase, ...] = ()


_CASE_KEYS = frozenset({"id", "domain", "category", "tags", "notes", "question", "gold_sql", "expect", "ordered", "turns"})
_TURN_KEYS = frozenset({"question", "gold_sql", "expect", "ordered"})


def _problems_of(where: str, err: ValidationError) -> list[str]:
    return [f"{where}: {'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in err.errors()]


def parse_case(raw: Any, index: int) -> tuple[GoldenCase | None, list[str]]:
    """One case from its YAML mapping; single-turn keys become one turn. Returns (case, problems).

    >>> case, problems = parse_case({"id": "r-1", "question": "drop table x", "expect": "refused"}, 0)
    >>> case.turns[0].expect, problems
    ('refused', [])
    >>> parse_case({"id": "s-1", "question": "hours", "gold-sql": "SELECT 1"}, 3)[1]
    ["case 4 (s-1): unknown key 'gold-sql' (known: category, domain, expect, gold_sql, id, notes, ordered, question, tags, turns)", 'case 4 (s-1): turn 1 expects an answer, so it needs gold_sql']
    """
    if not isinstance(raw, Mapping):
        return None, [f"case {index + 1}: expected a mapping, got {type(raw).__name__}"]
    where = f"case {index + 1}" + (f" ({raw['id']})" if raw.get("id") else "")
    problems = [f"{where}: unknown key {k!r} (known: {', '.join(sorted(_CASE_KEYS))})" for k in raw if k not in _CASE_KEYS]
    data = {k: v for k, v in raw.items() if k in _CASE_KEYS}
    if "turns" in data:
        clash = sorted(k for k in ("question", "gold_sql", "expect", "ordered") if k in data)
        if clash:
            problems.append(f"{where}: a case with turns keeps {', '.join(clash)} inside each turn")
        turns = data.pop("turns")
        if not isinstance(turns, list) or not turns:
            problems.append(f"{where}: turns must be a non-empty list")
            turns = []
        for t_index, turn in enumerate(turns):
            if isinstance(turn, Mapping):
                problems += [f"{where}: turn {t_index + 1}: unknown key {k!r}" for k in turn if k not in _TURN_KEYS]
        data["turns"] = [{k: v for k, v in t.items() if k in _TURN_KEYS} if isinstance(t, Mapping) else t for t in turns]
    else:
        data["turns"] = [{k: data.pop(k) for k in ("question", "gold_sql", "expect", "ordered") if k in data}]
    if isinstance(data.get("tags"), str):
        data["tags"] = [data["tags"]]
    for key in ("id", "domain", "category"):
        if key in data and not isinstance(data[key], str):
            data[key] = str(data[key])
    try:
        case = GoldenCase.model_validate(data)
    except ValidationError as err:
        return None, problems + _problems_of(where, err)
    for t_index, turn in enumerate(case.turns):
        if turn.expect == "answered" and not (turn.gold_sql or "").strip():
            problems.append(f"{where}: turn {t_index + 1} expects an answer, so it needs gold_sql")
        if turn.expect != "answered" and turn.gold_sql:
            problems.append(f"{where}: turn {t_index + 1} expects {turn.expect}, so it has no gold_sql")
    return (None if problems else case), problems


def parse_golden(raw: Any, source: str = "golden file") -> GoldenSet:
    """Validate a parsed golden file; every problem is listed at once in one :class:`ConfigError`.

    >>> g = parse_golden({"version": 1, "today": "2026-11-01", "cases": [
    ...     {"id": "a", "question": "hours by region", "gold_sql": "SELECT 1"},
    ...     {"id": "b", "turns": [{"question": "hours"}, {"question": "drop it", "expect": "refused"}]}]})
    Traceback (most recent call last):
    ...
    lore.errors.ConfigError: golden file: 1 problem(s):
      - case 2 (b): turn 1 expects an answer, so it needs gold_sql
    Every case needs an id and a question (or turns); answered turns need gold_sql.
    """
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping with version, today and cases")
    unknown = sorted(set(raw) - {"version", "today", "cases"})
    problems += [f"unknown top-level key {k!r} (known: version, today, cases)" for k in unknown]
    if raw.get("version", 1) != 1:
        problems.append(f"version must be 1, got {raw.get('version')!r}")
    raw_cases = raw.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        problems.append("cases must be a non-empty list")
        raw_cases = []
    cases: list[GoldenCase] = []
    seen: set[str] = set()
    for i, item in enumerate(raw_cases):
        case, found = parse_case(item, i)
        problems += found
        cid = str(item.get("id")) if isinstance(item, Mapping) and item.get("id") is not None else None
        if cid is not None:
            if cid in seen:
                problems.append(f"case {i + 1}: duplicate id {cid!r}")
            seen.add(cid)
        if case is not None:
            cases.append(case)
    today: date | None = None
    if raw.get("today") is not None:
        try:
            today = raw["today"] if isinstance(raw["today"], date) else date.fromisoformat(str(raw["today"]))
        except ValueError:
            problems.append(f"today must be a date like 2026-11-01, got {raw['today']!r}")
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems),
                          hint="Every case needs an id and a question (or turns); answered turns need gold_sql.")
    return GoldenSet(version=1, today=today, cases=tuple(cases))


def load_golden(path: Path) -> GoldenSet:
    """Read and validate a golden YAML file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"Cannot read the golden file {path}: {err.strerror or err}",
                          hint="Pass the path of a golden YAML file, e.g. evals/golden/demo.yaml.") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: malformed YAML", hint="Fix the syntax of the golden file.") from None
    return parse_golden(raw, str(path))


def select_cases(golden: GoldenSet, patterns: Sequence[str]) -> GoldenSet:
    """Keep the cases whose id or category matches one of the shell-style patterns (all when none).

    >>> g = parse_golden({"cases": [{"id": "stream-1", "question": "q", "expect": "refused"},
    ...                             {"id": "cloud-1", "category": "top_n", "question": "q", "expect": "refused"}]})
    >>> [c.id for c in select_cases(g, ["stream-*"]).cases], [c.id for c in select_cases(g, ["top_n"]).cases]
    (['stream-1'], ['cloud-1'])
    """
    if not patterns:
        return golden
    kept = tuple(c for c in golden.cases if any(fnmatch.fnmatchcase(c.id, p) or fnmatch.fnmatchcase(c.category, p)
                                                for p in patterns))
    return golden.model_copy(update={"cases": kept})


def split_of(case_id: str) -> int:
    """0 or 1, from a hash of the case id: the calibration is fitted on split 0 and checked on split 1.

    >>> [split_of(f"s-{i}") for i in range(1, 7)]
    [1, 0, 0, 0, 1, 0]
    """
    return int(hashlib.sha256(case_id.encode("utf-8")).hexdigest()[:8], 16) % 2


# --- results ------------------------------------------------------------------------------


class TurnResult(Frozen):
    question: str
    expect: Expect
    #: answered | clarify | refused | error (an error answer, or a LoreError) | crash (a bug)
    status: str
    correct: bool
    #: why the turn is wrong (empty when correct)
    reason: str = ""
    message: str = ""
    suggestions: tuple[str, ...] = ()
    plan: dict[str, Any] | None = None
    sql: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Scalar, ...], ...] = ()
    row_count: int = 0
    truncated: bool = False
    gold_sql: str | None = None
    gold_columns: tuple[str, ...] = ()
    gold_rows: tuple[tuple[Scalar, ...], ...] = ()
    gold_row_count: int = 0
    #: the gold SQL failed: the golden file needs fixing
    gold_error: str | None = None
    ordered: bool = False
    column_map: tuple[tuple[str, str], ...] = ()
    #: the answer's (calibrated) confidence; 0 unless answered
    confidence: float = 0.0
    #: the uncalibrated score behind it (the weighted geometric mean of the factors)
    raw_confidence: float = 0.0
    confidence_factors: dict[str, float] = Field(default_factory=dict)
    latency_ms: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)


class CaseResult(Frozen):
    id: str
    domain: str
    category: str
    tags: tuple[str, ...] = ()
    split: int = 0
    correct: bool
    #: the last turn's status
    status: str
    #: the lowest confidence over the turns
    confidence: float = 0.0
    latency_ms: float = 0.0
    turns: tuple[TurnResult, ...]

    @property
    def question(self) -> str:
        return " → ".join(t.question for t in self.turns)

    @property
    def reason(self) -> str:
        """The first failing turn's reason, prefixed by its number in a multi-turn case."""
        for i, t in enumerate(self.turns, 1):
            if not t.correct:
                return (f"turn {i}: " if len(self.turns) > 1 else "") + t.reason
        return ""


class GroupStats(Frozen):
    n: int
    correct: int
    accuracy: float | None


class ConfidenceStats(Frozen):
    """Calibration of the confidence of answered turns for their correctness."""

    n: int
    ece: float | None
    brier: float | None
    auroc: float | None
    accuracy_at_high: float | None
    share_at_high: float | None
    threshold: float = HIGH_CONFIDENCE
    bins: tuple[ReliabilityBin, ...] = ()


class CalibrationCheck(Frozen):
    """An isotonic fit on split 0, applied to split 0 (in sample) and split 1 (held out)."""

    fit_split: int = 0
    points: tuple[tuple[float, float], ...]
    fit_raw: ConfidenceStats
    fit_calibrated: ConfidenceStats
    holdout_raw: ConfidenceStats
    holdout_calibrated: ConfidenceStats


class Calibration(Frozen):
    #: the isotonic fit on every answered turn (what ``lore eval calibrate --write`` ships)
    points: tuple[tuple[float, float], ...]
    n: int
    check: CalibrationCheck


class Summary(Frozen):
    n_cases: int
    n_correct: int
    accuracy: float | None
    n_turns: int
    turn_accuracy: float | None
    by_category: dict[str, GroupStats]
    by_domain: dict[str, GroupStats]
    by_tag: dict[str, GroupStats] = Field(default_factory=dict)
    #: turn statuses: answered, clarify, refused, error, crash
    statuses: dict[str, int]
    refusal: RefusalStats
    latency_ms: dict[str, float | None]
    confidence: ConfidenceStats
    gold_errors: int = 0
    crashes: int = 0


class RunInfo(Frozen):
    golden: str
    golden_sha256: str
    project: str
    warehouse: str
    #: the engine the answers and the gold SQL ran on (accuracy is reported per engine)
    engine: str = "duckdb"
    model: str
    planner: str
    today: date | None
    lore_version: str
    python: str
    created_at: str
    #: opening the project, building the retrieval index and one unscored warm-up question
    setup_s: float = 0.0
    elapsed_s: float


class EvalReport(Frozen):
    version: int = REPORT_VERSION
    run: RunInfo
    summary: Summary
    calibration: Calibration
    cases: tuple[CaseResult, ...]

    def failures(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.correct]


# --- scoring one turn (pure) --------------------------------------------------------------


def score_status(expect: Expect, status: str) -> tuple[bool, str]:
    """Correctness of a turn that expects a refusal or a clarification.

    >>> score_status("refused", "refused"), score_status("clarify", "refused")
    ((True, ''), (False, 'expected clarify, got refused'))
    """
    return (True, "") if status == expect else (False, f"expected {expect}, got {status}")


def score_answer(turn: GoldenTurn, status: str, columns: Sequence[str], rows: Sequence[Sequence[Scalar]],
                 gold: ResultSet | None, gold_error: str | None = None) -> tuple[bool, str, tuple[tuple[str, str], ...]]:
    """(correct, reason, column map) of one turn.

    >>> from lore.types import ColumnMeta
    >>> gold = ResultSet(columns=(ColumnMeta(name="n", label="n"),), rows=((3,),))
    >>> score_answer(GoldenTurn(question="q", gold_sql="SELECT 3 AS n"), "answered", ["total"], [(3.0,)], gold)
    (True, '', (('n', 'total'),))
    >>> score_answer(GoldenTurn(question="q", gold_sql="x"), "clarify", [], [], gold)[:2]
    (False, 'expected answered, got clarify')
    """
    if turn.expect != "answered":
        ok, why = score_status(turn.expect, status)
        return ok, why, ()
    if gold_error is not None:
        return False, f"the gold SQL failed: {gold_error}", ()
    if status != "answered":
        return False, f"expected answered, got {status}", ()
    assert gold is not None
    if gold.truncated:
        return False, f"the gold result has more than {len(gold.rows)} rows; narrow the gold SQL", ()
    match = match_rows(gold.column_names, gold.rows, list(columns), rows, ordered=turn.ordered)
    return match.correct, match.reason, match.column_map


def answer_raw_confidence(answer: Answer) -> float:
    """The uncalibrated score of an answered answer (0 otherwise)."""
    if answer.status != "answered" or not answer.confidence_factors:
        return 0.0
    return round(raw_score(answer.confidence_factors), 6)


def turn_result(turn: GoldenTurn, answer: Answer, latency_ms: float, gold: ResultSet | None,
                gold_error: str | None) -> TurnResult:
    """Score one answer against its golden turn and keep what the report shows."""
    columns = tuple(c.name for c in answer.columns)
    correct, reason, column_map = score_answer(turn, answer.status, columns, answer.rows, gold, gold_error)
    if correct and turn.expect == "refused" and answer.sql:
        correct, reason = False, "refused, but SQL ran first"
    trace = answer.trace
    return TurnResult(
        question=turn.question, expect=turn.expect, status=answer.status, correct=correct, reason=reason,
        message=answer.message, suggestions=answer.suggestions,
        plan=answer.plan.model_dump(mode="json", exclude_defaults=True) if answer.plan is not None else None,
        sql=answer.sql, columns=columns, rows=tuple(answer.rows[:MAX_REPORT_ROWS]), row_count=len(answer.rows),
        truncated=answer.truncated, gold_sql=turn.gold_sql,
        gold_columns=tuple(gold.column_names) if gold is not None else (),
        gold_rows=tuple(gold.rows[:MAX_REPORT_ROWS]) if gold is not None else (),
        gold_row_count=len(gold.rows) if gold is not None else 0, gold_error=gold_error, ordered=turn.ordered,
        column_map=column_map, confidence=answer.confidence if answer.status == "answered" else 0.0,
        raw_confidence=answer_raw_confidence(answer), confidence_factors=dict(answer.confidence_factors),
        latency_ms=round(latency_ms, 3),
        timings={t.stage: t.ms for t in trace.timings} if trace is not None else {},
    )


def failed_turn(turn: GoldenTurn, status: str, message: str, latency_ms: float, gold: ResultSet | None,
                gold_error: str | None) -> TurnResult:
    """A turn whose question raised instead of returning an answer."""
    correct, reason, _ = score_answer(turn, status, (), (), gold, gold_error)
    if turn.expect == "answered" and gold_error is None:
        reason = f"{status}: {message.splitlines()[0] if message else ''}"
    return TurnResult(question=turn.question, expect=turn.expect, status=status, correct=correct, reason=reason,
                      message=message, gold_sql=turn.gold_sql, gold_error=gold_error, ordered=turn.ordered,
                      gold_columns=tuple(gold.column_names) if gold is not None else (),
                      gold_rows=tuple(gold.rows[:MAX_REPORT_ROWS]) if gold is not None else (),
                      gold_row_count=len(gold.rows) if gold is not None else 0, latency_ms=round(latency_ms, 3))


def case_result(case: GoldenCase, turns: Sequence[TurnResult]) -> CaseResult:
    """A case is correct when every turn is; its confidence is the lowest of its turns'."""
    return CaseResult(
        id=case.id, domain=case.domain, category=case.category, tags=case.tags, split=split_of(case.id),
        correct=all(t.correct for t in turns), status=turns[-1].status if turns else "error",
        confidence=min((t.confidence for t in turns), default=0.0),
        latency_ms=round(sum(t.latency_ms for t in turns), 3), turns=tuple(turns),
    )


# --- asking (the I/O edge) ----------------------------------------------------------------


def gold_result(lore: Lore, sql: str, cache: dict[str, ResultSet | str]) -> tuple[ResultSet | None, str | None]:
    """Run trusted gold SQL on the project's engine (memoised per run): (result, error message).

    Gold SQL is written for DuckDB; on another engine sqlglot renders it in the engine's dialect first.
    """
    if sql not in cache:
        try:
            cache[sql] = lore.engine.run(gold_sql(sql, lore.dialect, lore.engine.schema()),
                                         max_rows=lore.settings.max_rows)
        except LoreError as err:
            cache[sql] = err.message
    found = cache[sql]
    return (None, found) if isinstance(found, str) else (found, None)


def gold_sql(sql: str, dialect: str, schema: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """Gold SQL (DuckDB's) in ``dialect``; unchanged on DuckDB. What DuckDB allows and others do not is written
    out: a subquery in FROM gets an alias (PostgreSQL before 16 requires one), a select alias used later in the
    same select list is expanded (given the warehouse's ``schema``), QUALIFY becomes a filtered subquery,
    every division divides as DOUBLE as DuckDB's does (Spark would keep DECIMAL operands DECIMAL),
    ``IS NOT DISTINCT FROM`` in a FULL JOIN
    becomes a condition the engine can join on, and functions it lacks are rewritten as the compiler does.

    >>> gold_sql("SELECT SUM(a) / COUNT(*) FROM (SELECT a FROM t)", "postgres")
    'SELECT CAST(SUM(a) AS DOUBLE PRECISION) / COUNT(*) FROM (SELECT a FROM t) AS _q1'
    >>> gold_sql("SELECT SUM(a) AS s, s * 2 AS d FROM t", "postgres", {"t": {"a": "INTEGER"}})
    'SELECT SUM(t.a) AS s, SUM(t.a) * 2 AS d FROM t AS t'
    >>> gold_sql("SELECT SUM(a) / 100.0 / COUNT(*) FROM t", "spark")  # DuckDB's division: DOUBLE, not DECIMAL
    'SELECT CAST(SUM(a) AS DOUBLE) / 100.0 / COUNT(*) FROM t'
    """
    if dialect == "duckdb":
        return sql
    try:
        trees = [tree for tree in sqlglot.parse(sql, read="duckdb") if tree is not None]
        out = []
        for tree in trees:
            unnamed = [q for q in tree.find_all(exp.Subquery) if not q.alias and isinstance(q.parent, (exp.From, exp.Join))]
            for n, query in enumerate(unnamed, 1):
                query.set("alias", exp.TableAlias(this=exp.to_identifier(f"_q{n}")))
            tree = tree.transform(eliminate_qualify)  # QUALIFY as a filtered subquery, before names are qualified
            if schema:
                try:
                    tree = qualify(tree, dialect="duckdb", schema={t: dict(c) for t, c in schema.items()},
                                   validate_qualify_columns=False, identify=False, quote_identifiers=False)
                except sqlglot.errors.SqlglotError:
                    pass  # run as written
            if dialect == "spark":  # DuckDB's `/` divides as DOUBLE; Spark's keeps DECIMAL operands DECIMAL (6 places)
                for div in list(tree.find_all(exp.Div)):
                    numerator = div.this
                    if div.args.get("typed") or isinstance(numerator, exp.Div) or (
                            isinstance(numerator, exp.Cast) and numerator.is_type("double")):
                        continue  # integer division as written, or a numerator that is a DOUBLE already
                    div.set("this", exp.cast(numerator, exp.DataType.build("DOUBLE"), copy=False))
            for join in tree.find_all(exp.Join):
                if join.side == "FULL" and isinstance(join.args.get("on"), exp.Expression):
                    join.set("on", join.args["on"].transform(
                        lambda n: null_safe_eq(n.this, n.expression, dialect) if isinstance(n, exp.NullSafeEQ) else n))
            out.append(portable(tree, dialect).sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE))
        return ";\n".join(out)
    except sqlglot.errors.SqlglotError as err:
        raise EngineError(f"The gold SQL cannot be written in {dialect}: {err}", sql=sql) from None


def run_case(lore: Lore, case: GoldenCase, cache: dict[str, ResultSet | str],
             clock: Callable[[], float] = time.perf_counter) -> CaseResult:
    """Ask a case's turns as one conversation and score each."""
    chat = lore.chat(user="lore-eval", conversation_id=f"eval-{case.id}")
    turns: list[TurnResult] = []
    for turn in case.turns:
        gold, gold_error = gold_result(lore, turn.gold_sql, cache) if turn.expect == "answered" and turn.gold_sql else (None, None)
        started = clock()
        try:
            answer = chat.ask(turn.question)
        except LoreError as err:
            turns.append(failed_turn(turn, "error", str(err), (clock() - started) * 1000, gold, gold_error))
            continue
        except Exception as err:  # noqa: BLE001 - the harness is the outermost edge: a bug in one case must not stop the run
            detail = "".join(traceback.format_exception_only(type(err), err)).strip()
            turns.append(failed_turn(turn, "crash", detail, (clock() - started) * 1000, gold, gold_error))
            continue
        turns.append(turn_result(turn, answer, (clock() - started) * 1000, gold, gold_error))
    return case_result(case, turns)


def run_golden(lore: Lore, golden: GoldenSet, *, progress: Callable[[int, int, str], None] | None = None,
               clock: Callable[[], float] = time.perf_counter) -> tuple[CaseResult, ...]:
    """Ask every case; ``progress(done, total, case_id)`` is called after each."""
    cache: dict[str, ResultSet | str] = {}
    results: list[CaseResult] = []
    for i, case in enumerate(golden.cases):
        results.append(run_case(lore, case, cache, clock))
        if progress is not None:
            progress(i + 1, len(golden.cases), case.id)
    return tuple(results)


# --- the figures (pure) -------------------------------------------------------------------


def group_stats(cases: Sequence[CaseResult], key: Callable[[CaseResult], Sequence[str]]) -> dict[str, GroupStats]:
    """Accuracy per group (a case may sit in several groups, as with tags), sorted by group name."""
    groups: dict[str, list[bool]] = {}
    for c in cases:
        for g in key(c):
            groups.setdefault(g, []).append(c.correct)
    return {g: GroupStats(n=len(f), correct=sum(f), accuracy=accuracy(f)) for g, f in sorted(groups.items())}


def confidence_stats(confidence: Sequence[float], correct: Sequence[bool]) -> ConfidenceStats:
    acc_high, share_high = above_threshold(confidence, correct)
    return ConfidenceStats(
        n=len(confidence), ece=expected_calibration_error(confidence, correct), brier=brier_score(confidence, correct),
        auroc=auroc(confidence, correct), accuracy_at_high=acc_high, share_at_high=share_high,
        bins=tuple(reliability_bins(confidence, correct)),
    )


def answered_turns(cases: Sequence[CaseResult], split: int | None = None) -> list[TurnResult]:
    """The turns that were answered (the ones a confidence speaks for), optionally of one split."""
    return [t for c in cases if split is None or c.split == split for t in c.turns if t.status == "answered"]


def calibration_check(cases: Sequence[CaseResult], fit_split: int = 0) -> CalibrationCheck:
    """Fit the isotonic map on one split's raw scores and measure it on both splits."""
    fit = answered_turns(cases, fit_split)
    hold = answered_turns(cases, 1 - fit_split)
    points = isotonic_points([t.raw_confidence for t in fit], [1.0 if t.correct else 0.0 for t in fit])

    def stats(turns: Sequence[TurnResult], table: Sequence[tuple[float, float]] | None) -> ConfidenceStats:
        conf = [t.raw_confidence if table is None else calibrate(t.raw_confidence, table) for t in turns]
        return confidence_stats(conf, [t.correct for t in turns])

    return CalibrationCheck(fit_split=fit_split, points=points, fit_raw=stats(fit, None),
                            fit_calibrated=stats(fit, points), holdout_raw=stats(hold, None),
                            holdout_calibrated=stats(hold, points))


def calibration_of(cases: Sequence[CaseResult]) -> Calibration:
    turns = answered_turns(cases)
    points = isotonic_points([t.raw_confidence for t in turns], [1.0 if t.correct else 0.0 for t in turns])
    return Calibration(points=points, n=len(turns), check=calibration_check(cases))


def summarise(cases: Sequence[CaseResult]) -> Summary:
    """Every figure of the report from the case results."""
    turns = [t for c in cases for t in c.turns]
    statuses: dict[str, int] = {}
    for t in turns:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    latencies = [t.latency_ms for t in turns]
    answered = answered_turns(cases)
    return Summary(
        n_cases=len(cases), n_correct=sum(c.correct for c in cases), accuracy=accuracy([c.correct for c in cases]),
        n_turns=len(turns), turn_accuracy=accuracy([t.correct for t in turns]),
        by_category=group_stats(cases, lambda c: [c.category]), by_domain=group_stats(cases, lambda c: [c.domain]),
        by_tag=group_stats(cases, lambda c: list(c.tags)), statuses=dict(sorted(statuses.items())),
        refusal=refusal_stats([t.expect in DECLINED for t in turns], [t.status in DECLINED for t in turns]),
        latency_ms={"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                    "mean": sum(latencies) / len(latencies) if latencies else None,
                    "max": max(latencies) if latencies else None},
        confidence=confidence_stats([t.confidence for t in answered], [t.correct for t in answered]),
        gold_errors=sum(1 for t in turns if t.gold_error), crashes=statuses.get("crash", 0),
    )


def build_report(cases: Sequence[CaseResult], run: RunInfo) -> EvalReport:
    return EvalReport(run=run, summary=summarise(cases), calibration=calibration_of(cases), cases=tuple(cases))


def warm_up(lore: Lore, golden: GoldenSet) -> None:
    """Ask the first question once, unscored, so that building the index and loading the embedding
    model are not counted in the first case's latency (latencies are steady-state; see ``setup_s``)."""
    if golden.cases:
        try:
            lore.ask(golden.cases[0].turns[0].question, user="lore-eval-warm-up")
        except LoreError:
            pass  # the real run records it


def evaluate(lore: Lore, golden: GoldenSet, golden_path: Path, *,
             progress: Callable[[int, int, str], None] | None = None) -> EvalReport:
    """Run a golden set on an open project and build the report."""
    from lore import __version__

    started = time.perf_counter()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    planner = getattr(lore.planner, "name", type(lore.planner).__name__)
    warm_up(lore, golden)
    setup_s = time.perf_counter() - started
    cases = run_golden(lore, golden, progress=progress)
    digest = hashlib.sha256(Path(golden_path).read_bytes()).hexdigest()
    run = RunInfo(
        golden=str(golden_path), golden_sha256=digest, project=str(lore.project.root),
        warehouse=lore.engine.description, engine=lore.project.config.engine.type, model=lore.settings.model, planner=str(planner),
        today=lore.settings.today or lore.project.config.today, lore_version=__version__,
        python=platform.python_version(), created_at=created, setup_s=round(setup_s, 3),
        elapsed_s=round(time.perf_counter() - started, 3),
    )
    return build_report(cases, run)
