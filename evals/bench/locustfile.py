"""The simulated users of the HTTP API's load test (run by ``python -m evals.bench.load``, which writes the plan).

Each user is one API client with its own key and conversation, pausing between requests for a random time in
``LORE_LOAD_WAIT`` ("low,high" seconds; 1 to 5 by default, as in Locust's own examples). What it does, by weight:

- asks a question that was asked before the run (an answer-cache hit): ``ask (cached)``;
- asks a question nobody asked yet (each is used once in the whole run: a plan and answer cache miss):
  ``ask (uncached)``;
- follows up on its last answer in the same conversation ("and by X?", "what about YEAR?"): ``ask (follow-up)``;
- asks over Server-Sent Events and reads the stream to its last event: ``ask (stream)``;
- votes on its last answer: ``feedback``; reads it back: ``GET /v1/answers/{id}``;
- browses and queries the semantic layer: ``GET /v1/metrics``, ``POST /v1/data``, ``POST /v1/sql``.

A request fails when its status is not the one expected, an answer's status is ``error``, or a stream does not end
with an ``answer`` event. The answers' statuses and cache hits are written to ``LORE_LOAD_TALLY`` when the run
stops. The plan (keys, questions, semantic queries) comes from the JSON file named by ``LORE_LOAD_PLAN``. Each task
has a tag (cached, uncached, follow-up, stream, feedback, read, metrics, data, sql): ``--tags`` runs some of them.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from typing import Any

from locust import HttpUser, between, events, tag, task

PLAN: dict[str, Any] = json.loads(open(os.environ["LORE_LOAD_PLAN"], encoding="utf-8").read())
TALLY: Counter[str] = Counter()
#: the pipeline's own time (its stage timings, from the answer's trace) per kind of ask, in ms
PIPELINE_MS: dict[str, list[float]] = {}
_tokens = iter(enumerate(PLAN["tokens"]))
_fresh = iter(PLAN["uncached"])


@events.test_stop.add_listener
def _write_tally(**_: Any) -> None:
    target = os.environ.get("LORE_LOAD_TALLY")
    if target:
        with open(target, "w", encoding="utf-8") as out:
            json.dump({"counts": dict(TALLY), "pipeline_ms": PIPELINE_MS}, out, indent=2, sort_keys=True)


def _pause() -> tuple[float, float]:
    low, _, high = os.environ.get("LORE_LOAD_WAIT", "1,5").partition(",")
    return float(low), float(high or low)


class ApiUser(HttpUser):
    wait_time = between(*_pause())

    def on_start(self) -> None:
        number, token = next(_tokens, (None, None))
        if token is None:  # more users than keys: the runner makes one key per user, so this is a runner bug
            raise RuntimeError("the load plan has fewer API keys than users")
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.rng = random.Random(number)
        self.conversation = self._start()
        self.last_answer: str | None = None
        self.last_asked = False
        if os.environ.get("LORE_LOAD_SMOKE"):  # every kind of request once, in an order where each has its input
            for step in (self.ask_cached, self.follow_up, self.ask_uncached, self.ask_stream, self.feedback,
                         self.read_answer, self.metrics, self.data, self.sql):
                step()

    def _start(self) -> str | None:
        with self.client.post("/v1/conversations", name="POST /v1/conversations", catch_response=True) as res:
            if res.status_code != 201:
                res.failure(f"{res.status_code}: {res.text[:200]}")
                return None
            return res.json()["id"]

    def _ask(self, question: str, kind: str) -> None:
        if self.conversation is None:
            self.conversation = self._start()
            if self.conversation is None:
                return
        path = f"/v1/conversations/{self.conversation}/messages?explain=true"  # the trace says if the cache answered
        with self.client.post(path, json={"question": question}, name=f"ask ({kind})", catch_response=True) as res:
            if res.status_code != 200:
                res.failure(f"{res.status_code}: {res.text[:200]}")
                return
            self._tally(kind, res.json(), res)

    def _tally(self, kind: str, answer: dict[str, Any], res: Any) -> None:
        trace = answer.get("trace") or {}
        TALLY[f"{kind}: {answer['status']}"] += 1
        TALLY[f"{kind}: answer cache hit"] += bool(trace.get("cache_hit"))
        TALLY[f"{kind}: plan cache hit"] += bool(trace.get("plan_cache_hit"))
        PIPELINE_MS.setdefault(kind, []).append(round(sum(t["ms"] for t in trace.get("timings") or ()), 2))
        if answer["status"] == "error":
            res.failure(f"answer status error: {answer['message'][:200]}")
            return
        self.last_answer = answer["id"]
        self.last_asked = answer["status"] == "answered"

    @task(6)
    @tag("cached")
    def ask_cached(self) -> None:
        self._ask(self.rng.choice(PLAN["cached"]), "cached")

    @task(3)
    @tag("uncached")
    def ask_uncached(self) -> None:
        question = next(_fresh, None)
        if question is None:  # the pool ran out: the runner sizes it for the run, so say so instead of repeating
            TALLY["uncached pool exhausted"] += 1
            return
        self._ask(question, "uncached")

    @task(2)
    @tag("follow-up")
    def follow_up(self) -> None:
        if not self.last_asked:
            return self.ask_cached()
        self._ask(self.rng.choice(PLAN["follow_ups"]), "follow-up")

    @task(1)
    @tag("stream")
    def ask_stream(self) -> None:
        if self.conversation is None:
            return
        with self.client.post(f"/v1/conversations/{self.conversation}/messages/stream",
                              json={"question": self.rng.choice(PLAN["cached"])}, name="ask (stream)",
                              headers={"Accept": "text/event-stream"}, catch_response=True) as res:
            if res.status_code != 200:
                res.failure(f"{res.status_code}: {res.text[:200]}")
                return
            events_seen = [line[len("event:"):].strip() for line in res.text.splitlines() if line.startswith("event:")]
            if not events_seen or events_seen[-1] != "answer":
                res.failure(f"the stream ended with {events_seen[-1:] or 'nothing'}, not an answer")
                return
            TALLY["stream: events"] += len(events_seen)
            TALLY["stream: answers"] += 1

    @task(1)
    @tag("feedback")
    def feedback(self) -> None:
        if self.last_answer is None:
            return
        body = {"rating": self.rng.choice((1, 1, 1, -1)), "comment": "load test"}
        with self.client.post(f"/v1/answers/{self.last_answer}/feedback", json=body, name="feedback",
                              catch_response=True) as res:
            if res.status_code not in (200, 201):
                res.failure(f"{res.status_code}: {res.text[:200]}")

    @task(1)
    @tag("read")
    def read_answer(self) -> None:
        if self.last_answer is None:
            return
        with self.client.get(f"/v1/answers/{self.last_answer}", name="GET /v1/answers/{id}",
                             catch_response=True) as res:
            if res.status_code != 200:
                res.failure(f"{res.status_code}: {res.text[:200]}")

    @task(1)
    @tag("metrics")
    def metrics(self) -> None:
        with self.client.get("/v1/metrics", name="GET /v1/metrics", catch_response=True) as res:
            if res.status_code != 200 or not res.json().get("metrics"):
                res.failure(f"{res.status_code}: {res.text[:200]}")

    @task(2)
    @tag("data")
    def data(self) -> None:
        with self.client.post("/v1/data", json=self.rng.choice(PLAN["semantic"]), name="POST /v1/data",
                              catch_response=True) as res:
            if res.status_code != 200:
                res.failure(f"{res.status_code}: {res.text[:200]}")

    @task(1)
    @tag("sql")
    def sql(self) -> None:
        body = {**self.rng.choice(PLAN["semantic"]), "dialect": self.rng.choice(("duckdb", "snowflake", "bigquery"))}
        with self.client.post("/v1/sql", json=body, name="POST /v1/sql", catch_response=True) as res:
            if res.status_code != 200:
                res.failure(f"{res.status_code}: {res.text[:200]}")
