"""The Spark engine's hardening and limits, checked the same way in local mode (test_spark_engine.py) and over
Spark Connect (test_spark_connect.py): each takes an open engine over the demo's tables."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from lore.errors import EngineError, QueryTimeout, ResultTooLarge

#: a slow query: a count over a cross join of ten billion rows
SLOW = "SELECT COUNT(*) FROM range(100000000) AS a CROSS JOIN range(100) AS b CROSS JOIN range(1000) AS c"
#: statements Spark would run at once (DDL, DML, settings, a second statement): never more than one query runs
NOT_QUERIES = ("CREATE TABLE x (a INT)", "CREATE TEMPORARY VIEW x AS SELECT 1",
               "INSERT INTO accounts SELECT * FROM accounts", "DROP VIEW accounts", "SET spark.sql.runSQLOnFiles=true",
               "CACHE TABLE accounts", "SELECT 1; DROP VIEW accounts",
               "WITH a AS (SELECT 1) INSERT INTO accounts SELECT * FROM a",
               "CREATE TEMPORARY FUNCTION f AS 'java.lang.String'", "ADD JAR /tmp/x.jar", "RESET")


def assert_runs_queries_only(engine: Any) -> None:
    for sql in NOT_QUERIES:
        with pytest.raises(EngineError, match="runs queries only"):
            engine.run(sql)
    assert engine.run("SELECT COUNT(*) FROM accounts").rows[0][0] > 0  # the view is still there
    with pytest.raises(EngineError, match="TABLE_OR_VIEW_NOT_FOUND"):
        engine.run("SELECT * FROM x")  # and nothing was created


def assert_time_limit(engine: Any, within_s: float) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 1s"):
        engine.run(SLOW, timeout_s=1)
    assert time.monotonic() - started < within_s
    assert engine.run("SELECT 1 AS one").rows == ((1,),)  # the session is usable again


def assert_cancel_stops_a_running_query(engine: Any) -> None:
    caught: list[BaseException] = []

    def slow() -> None:
        try:
            engine.run(SLOW)
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion
            caught.append(err)

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(1.5)
    engine.cancel()
    worker.join(20)
    assert not worker.is_alive()
    assert len(caught) == 1 and isinstance(caught[0], EngineError) and not isinstance(caught[0], QueryTimeout)
    assert "interrupted" in str(caught[0])
    assert engine.run("SELECT 2 AS two").rows == ((2,),)  # the session is usable again


def assert_row_cap_and_byte_cap(capped: Any) -> None:
    """``capped`` was opened with max_rows=50 and max_result_mb=0.05."""
    result = capped.run("SELECT id FROM range(100000)")
    assert len(result.rows) == 50 and result.truncated
    small = capped.run("SELECT id FROM range(20)")
    assert len(small.rows) == 20 and not small.truncated
    with pytest.raises(ResultTooLarge):
        capped.run("SELECT repeat('x', 10000) FROM range(40)")


def assert_threads_share_one_engine(engine: Any, threads: int = 8) -> None:
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            results[n] = engine.run(
                f"SELECT {n} * 2 AS v, COUNT(*) AS c FROM streaming_sessions WHERE session_id % {threads} = {n}").rows[0][0]
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion
            errors.append(err)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors and results == {n: n * 2 for n in range(threads)}
