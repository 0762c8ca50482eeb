"""Fuzzing with hypothesis: mutated and random SQL against the guard, any string against the planner.

- The guard never raises anything but :class:`GuardError`; whatever it accepts is a bounded
  SELECT over allowed tables that re-guards to itself, and running it on real DuckDB changes
  nothing (warehouse checksum) and never returns the hidden table's data.
- The offline planner never crashes on any string (unicode, huge, empty, control characters):
  it returns a :class:`PlanOutcome`.

The seeds are the valid and adversarial corpus of tests/guard/test_guard.py. Examples are
bounded (derandomized, no example database) so the module runs in well under a minute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redteam_corpus import guard_cases

from lore.errors import EngineError, GuardError
from lore.execute.engine import Engine
from lore.guard import guard_sql
from lore.guard.passes import PASSES
from lore.settings import Settings
from lore.types import PlanOutcome

CORPUS = guard_cases()
SCHEMA = CORPUS.SCHEMA
SEEDS: list[str] = [*CORPUS.VALID, *(sql for sql, _ in CORPUS.ADVERSARIAL if len(sql) < 2_000)]
#: what an attacker splices in: statement breaks, comment and quote markers, forbidden names and calls
SPLICES: list[str] = [
    *CORPUS.FRAGMENTS, "; DROP TABLE countries", " UNION ALL SELECT * FROM secret_salaries",
    " WITH d AS (DELETE FROM accounts RETURNING *) ", "read_text('/etc/hostname')", " INTO stolen ",
    "'/etc/passwd'", "$x$", "\\", "''", "E'", "U&'", "）", "；", "\u202e", "\ufeff", "\x00", "\r\n",
    " LIMIT 99999999999", " WITH RECURSIVE ", "information_schema.tables", "main.countries", "countries.*",
]
RULES = {"parse", "single_statement", "render", *(p.__name__ for p in PASSES)}
#: only the hidden table holds these values
HIDDEN_VALUES = {"alice", 250000.0}
FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated_sql(draw: st.DrawFn) -> str:
    """A corpus statement with up to four random edits: splices, deletions, duplications, case flips, unicode."""
    text = draw(st.one_of(st.sampled_from(CORPUS.VALID), st.sampled_from(SEEDS)))  # valid seeds weigh half
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        kind = draw(st.sampled_from(["splice", "delete", "duplicate", "flip", "unicode", "join"]))
        if kind == "splice":
            text = text[:at] + draw(st.sampled_from(SPLICES)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=12)):]
        elif kind == "duplicate":
            text = text[:at] + text[at:at + draw(st.integers(min_value=1, max_value=30))] + text[at:]
        elif kind == "flip":
            text = text[:at] + text[at:at + 8].swapcase() + text[at + 8:]
        elif kind == "unicode":
            text = text[:at] + draw(st.text(min_size=1, max_size=3)) + text[at:]
        else:
            text = text + draw(st.sampled_from([" UNION ALL ", "; ", " "])) + draw(st.sampled_from(SEEDS))
    return text


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(CORPUS.FIXTURE_SQL)
    con.close()
    return path


@pytest.fixture(scope="module")
def engine(warehouse: Path) -> Iterator[Engine]:
    eng = Engine.open(warehouse, Settings(query_timeout_s=2, duckdb_threads=1, duckdb_memory_limit="256MB"))
    yield eng
    eng.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check(sql: str, engine: Engine, warehouse: Path, before: str) -> bool:
    """Guard ``sql``; if accepted, check the output's shape and run it. True when the guard accepted it."""
    try:
        guarded = guard_sql(sql, SCHEMA)
    except GuardError as err:
        assert err.rule in RULES, err.rule
        return False
    tree = sqlglot.parse_one(guarded.sql, read="duckdb")
    assert tree.key in {"select", "union", "except", "intersect"}
    ctes = {cte.alias_or_name for cte in tree.find_all(sqlglot.exp.CTE)}
    assert {t.name for t in tree.find_all(sqlglot.exp.Table)} <= set(SCHEMA) | ctes
    assert 0 <= guarded.limit <= 10_000
    assert guard_sql(guarded.sql, SCHEMA).sql == guarded.sql
    try:
        result = engine.run(guarded.sql)
    except EngineError:  # a runtime error (a bad cast, a timeout) is an answer, not a side effect
        pass
    else:
        assert not {v for row in result.rows for v in row if isinstance(v, (str, float))} & HIDDEN_VALUES
    assert _digest(warehouse) == before
    return True


@given(sql=mutated_sql())
@settings(max_examples=400, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
def test_mutated_corpus_sql_is_refused_or_harmless(sql: str, engine: Engine, warehouse: Path) -> None:
    before = _digest(warehouse)
    for text in (sql, sql.upper(), f"SELECT * FROM ({sql}) AS q"):
        _check(text, engine, warehouse, before)


@given(text=st.text(max_size=300))
@FUZZ
def test_random_text_only_ever_raises_guard_errors(text: str, engine: Engine, warehouse: Path) -> None:
    before = _digest(warehouse)
    for sql in (text, "SELECT " + text, "SELECT * FROM countries WHERE " + text):
        _check(sql, engine, warehouse, before)


def test_the_fuzzer_reaches_both_verdicts(engine: Engine, warehouse: Path) -> None:
    """The mutations keep some inputs valid and make others invalid (else the fuzzing would prove little)."""
    before = _digest(warehouse)
    verdicts: list[bool] = []

    @given(sql=mutated_sql())
    @settings(max_examples=100, deadline=None, database=None, derandomize=True)
    def collect(sql: str) -> None:
        verdicts.append(_check(sql, engine, warehouse, before))

    collect()
    print(f"\nfuzz: {sum(verdicts)} of {len(verdicts)} mutated inputs accepted")
    assert any(verdicts) and not all(verdicts)


#: strings a planner must survive: empty, whitespace, control and invisible characters, huge, SQL-ish
NASTY = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3000), max_size=200),
    st.sampled_from(["", " ", "\x00", "\n\r\t", "\u200b\u202e\ufeff", "；", "?" * 5000, "💥" * 1000]),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=20), st.integers(min_value=1_000, max_value=20_000)),
    st.builds(" ".join, st.lists(st.sampled_from(SPLICES + ["streaming hours", "by region", "in 2026", "top 5",
                                                           "cloud cost", "excluding", "last month"]), max_size=25)),
)


@given(text=NASTY)
@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_the_planner_never_crashes_on_any_string(text: str, demo_lore) -> None:
    outcome = demo_lore.planner.plan(text)
    assert isinstance(outcome, PlanOutcome)
    assert outcome.status in {"plan", "clarify", "refuse"}
    assert outcome.status != "plan" or outcome.plan is not None
