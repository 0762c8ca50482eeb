"""The catalog-scale benchmark's generator (evals/bench/catalog.py), small: a valid layer the planner reads right.

The benchmark itself runs 5,000 metrics and 50,000 values on purpose (speed is measured there, never here);
these tests build 200 metrics and about 2,000 values through the same generator and check correctness.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.bench.catalog import (
    generate_names,
    generate_project,
    generate_questions,
    plan_metrics,
    report_lines,
    run_questions,
    sizes_for,
    value_grounded,
)
from lore import Lore
from lore.plan.catalog import find_phrases, phrase, tokenize
from lore.semantic.validate import validate

METRICS, VALUES, SEED = 200, 2_000, 3


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, dict[str, list[str]]]:
    folder = tmp_path_factory.mktemp("catalog") / "project"
    plans, names = generate_project(folder, metrics=METRICS, values=VALUES, seed=SEED)
    return folder, plans, names


@pytest.fixture(scope="module")
def lore(generated: tuple[Path, list, dict[str, list[str]]]) -> Iterator[Lore]:
    with Lore.open(generated[0], model="offline") as opened:
        yield opened


def test_the_layer_is_valid_and_as_large_as_asked(lore: Lore, generated: tuple[Path, list, dict]) -> None:
    _, plans, names = generated
    layer = lore.layer  # loads and validates against the warehouse (raises on any error)
    assert [i for i in validate(layer, lore.engine.schema()) if i.severity == "error"] == []
    assert len(layer.metrics) == METRICS == len(plans)
    assert len({m.source for m in layer.metrics.values()}) == 10
    assert sum(len(v) for v in names.values()) >= VALUES
    # the named attributes are indexed value by value, every one of them
    assert lore.retriever.count("value") >= VALUES
    for key, ref in (("customers", "customers.customer_name"), ("stores", "stores.store_name")):
        assert sorted(lore.values[ref]) == sorted(names[key])


def test_every_metric_phrase_names_one_metric(lore: Lore) -> None:
    owners: dict[tuple[str, ...], set[str]] = {}
    for e in lore.catalog.metric_entries:
        owners.setdefault(e.phrase, set()).add(e.ref)
    assert {p: refs for p, refs in owners.items() if len(refs) > 1} == {}


def test_value_names_stay_clear_of_metric_words(lore: Lore, generated: tuple[Path, list, dict]) -> None:
    vocabulary = {w for e in lore.catalog.metric_entries for w in e.phrase}
    words = {w for values in generated[2].values() for v in values for w in phrase(v)}
    assert words and not (words & vocabulary)


def test_generation_is_deterministic() -> None:
    assert generate_names(sizes_for(500), 11) == generate_names(sizes_for(500), 11)
    assert generate_names(sizes_for(500), 11) != generate_names(sizes_for(500), 12)
    plans = plan_metrics(120)
    questions = generate_questions(plans, generate_names(sizes_for(500), 11), 40, 5)
    assert questions == generate_questions(plans, generate_names(sizes_for(500), 11), 40, 5)
    assert len({q.question for q in questions}) == 40
    assert {q.kind for q in questions} >= {"metric", "metric_dim", "metric_value", "metric_time", "top_n"}


def test_the_planner_picks_the_intended_metric_and_grounds_values(lore: Lore, generated: tuple[Path, list, dict]) -> None:
    _, plans, names = generated
    questions = generate_questions(plans, names, 80, SEED)
    outcomes = run_questions(lore, questions)
    by_question = {o.question: o for o in outcomes}
    right = [o for o in outcomes if o.metric_ok]
    assert len(right) >= 0.95 * len(outcomes), [(o.question, o.status, o.planned_metrics) for o in outcomes if not o.metric_ok]
    with_value = [q for q in questions if q.value is not None]
    assert with_value
    grounded = [q for q in with_value if by_question[q.question].value_ok]
    assert len(grounded) >= 0.95 * len(with_value), [q.question for q in with_value if q not in grounded]
    # spot-check one plan end to end: the filter holds the generated value on the generated attribute
    q = grounded[0]
    plan = lore.planner.plan(q.question).plan
    assert plan is not None and plan.metrics[0] == q.metric and value_grounded(plan, q.value, q.value_ref)


def test_retrieval_ranks_a_named_metric_first(lore: Lore, generated: tuple[Path, list, dict]) -> None:
    for m in generated[1][::37]:
        hits = lore.retriever.search(m.label, k=4, kinds=["metric"]).of_kind("metric")
        assert hits[0].ref == m.name, (m.label, [h.ref for h in hits])


def test_the_phrase_index_finds_what_a_scan_finds(lore: Lore, generated: tuple[Path, list, dict]) -> None:
    catalog = lore.catalog
    assert catalog.metric_index is not None
    for q in generate_questions(generated[1], generated[2], 60, SEED + 1):
        tokens = tokenize(q.question)
        assert find_phrases(tokens, catalog.metric_index) == find_phrases(tokens, catalog.metric_entries), q.question


def test_the_report_prints(lore: Lore) -> None:
    from evals.bench.catalog import CatalogReport

    assert "latency" in " ".join(str(getattr(x, "title", x)) for x in report_lines(_tiny_report(CatalogReport)))


def _tiny_report(cls: type) -> object:
    from evals.bench.pipeline import machine_info, summarize

    stats = summarize([1.0, 2.0])
    return cls(machine=machine_info(), metrics=1, facts=1, dimension_nodes=1, values_indexed=1, documents={"metric": 1},
               generate_s=0.1, index_build_s=0.1, first_open_s=0.1, rss_after_build_mib=1.0, rss_after_open_mib=1.0,
               retrieve=stats, plan=stats, retrieve_plan=stats, planned=1, clarified=0, refused=0, metric_accuracy=1.0,
               value_accuracy=None, by_kind={"metric": {"n": 1, "planned": 1, "metric_ok": 1, "p95_ms": 1.0}})
