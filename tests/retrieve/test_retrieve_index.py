"""The retrieval index on real chromadb (in tmp dirs) and the real ONNX model."""

from __future__ import annotations

import json
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings
from retrieve_fixtures import VALUES, CountingEmbedder, make_layer

from lore.retrieve import Embedder, Example, Retriever
from lore.retrieve.embedding_function import LoreEmbeddingFunction
from lore.retrieve.index import COLLECTION, combine
from lore.semantic.spec import Column, Metric, Node, SemanticLayer


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    return Retriever.open(tmp_path_factory.mktemp("index"), make_layer(), VALUES, embedder=Embedder())


def plan(metric: str, *dims: str) -> str:
    return json.dumps({"metrics": [metric], "dimensions": list(dims)})


# --- what is indexed ----------------------------------------------------------------


def test_index_holds_metrics_attributes_and_low_cardinality_values(retriever: Retriever) -> None:
    layer = make_layer()
    assert retriever.count("metric") == len(layer.metrics)
    assert retriever.count("dimension") == sum(len(n.columns) for n in layer.nodes.values())
    assert retriever.count("value") == sum(len(v) for v in VALUES.values())
    assert retriever.count("example") == 0


def test_high_cardinality_and_time_values_are_not_indexed(tmp_path: Path, embedder: Embedder) -> None:
    values = {
        "countries.region": ["EMEA", "APAC", "LATAM"],
        "accounts.signup_date": ["2026-01-01", "2026-01-02"],
        "accounts.plan": ["basic_with_ads", "standard", "premium"],
    }
    r = Retriever.open(tmp_path, make_layer(), values, embedder=embedder, max_values=3)
    assert r.count("value") == 6
    r = Retriever.open(tmp_path, make_layer(), values, embedder=embedder, max_values=2)
    assert r.count("value") == 0


# --- retrieval quality --------------------------------------------------------------


def test_hours_question_retrieves_the_hours_metric_first(retriever: Retriever) -> None:
    result = retriever.search("how many hours did people watch")
    metrics = result.of_kind("metric")
    assert metrics[0].ref == "total_streaming_hours"
    assert metrics[0].score > metrics[1].score
    assert result.hits[0].ref == "total_streaming_hours"


def test_hours_metric_wins_on_meaning_alone(retriever: Retriever) -> None:
    # no word of this question is a name, label or synonym of the metric
    hit = retriever.search("amount of video consumed", kinds=["metric"]).hits[0]
    assert hit.ref == "total_streaming_hours"
    assert hit.lexical_score < 0.9


def test_by_region_retrieves_the_region_attribute(retriever: Retriever) -> None:
    dims = retriever.search("streaming hours by region").of_kind("dimension")
    assert dims[0].ref == "countries.region"
    assert dims[0].kind == "dimension" and dims[0].value is None


def test_synonyms_reach_attributes(retriever: Retriever) -> None:
    assert retriever.search("installs per operating system", kinds=["dimension"]).hits[0].ref == "game_installs.platform"
    assert retriever.search("which subscription tier", kinds=["dimension"]).hits[0].ref == "accounts.plan"


def test_brazil_retrieves_the_value_hit(retriever: Retriever) -> None:
    result = retriever.search("Brazil")
    top = result.hits[0]
    assert (top.kind, top.ref, top.value) == ("value", "countries.country_name", "Brazil")
    assert top.text == "Brazil (country name)"
    assert top.score > 0.9 and top.lexical_score >= 0.9


@pytest.mark.parametrize(
    ("question", "ref", "value"),
    [
        ("installs on ios last week", "game_installs.platform", "ios"),
        ("premium accounts", "accounts.plan", "premium"),
        ("hours in BR", "countries.country_iso_code", "BR"),
        ("hours in South Korea", "countries.country_name", "South Korea"),
        ("basic with ads viewers", "accounts.plan", "basic_with_ads"),
    ],
)
def test_exact_value_mentions_score_very_high(retriever: Retriever, question: str, ref: str, value: str) -> None:
    top = retriever.search(question, kinds=["value"]).hits[0]
    assert (top.ref, top.value) == (ref, value)
    assert top.score >= 0.9


def test_scores_are_bounded_and_sorted(retriever: Retriever) -> None:
    result = retriever.search("watch time in Germany by device", k=3)
    assert all(0.0 <= h.score <= 1.0 and 0.0 <= h.vector_score <= 1.0 and 0.0 <= h.lexical_score <= 1.0 for h in result.hits)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    for kind in ("metric", "dimension", "value"):
        assert 1 <= len(result.of_kind(kind)) <= 3
    for hit in result.hits:
        assert hit.score == combine(hit.vector_score, hit.lexical_score) or abs(
            hit.score - combine(hit.vector_score, hit.lexical_score)
        ) < 1e-3


def test_kinds_filter_and_bad_input(retriever: Retriever) -> None:
    result = retriever.search("Brazil", kinds=["metric"], k=2)
    assert [h.kind for h in result.hits] == ["metric", "metric"]
    assert retriever.search("   ").hits == ()
    assert retriever.search("Brazil", k=0).hits == ()
    with pytest.raises(ValueError, match="unknown kinds"):
        retriever.search("Brazil", kinds=["table"])


def test_match_values_uses_the_indexed_values(retriever: Retriever) -> None:
    assert [(m.ref, m.value) for m in retriever.match_values("tablet hours in LATAM")] == [
        ("streaming_sessions.device_type", "tablet"),
        ("countries.region", "LATAM"),
    ]


# --- persistence --------------------------------------------------------------------


def test_persisted_index_is_reused_without_re_embedding(tmp_path: Path) -> None:
    first = CountingEmbedder()
    Retriever.open(tmp_path, make_layer(), VALUES, embedder=first)
    assert len(first.texts) == make_layer_doc_count()

    again = CountingEmbedder()
    reopened = Retriever.open(tmp_path, make_layer(), VALUES, embedder=again)
    assert again.texts == []
    assert again.verified_sha256 is None  # the model was not even loaded
    assert reopened.search("how many hours did people watch").of_kind("metric")[0].ref == "total_streaming_hours"
    assert again.texts == ["how many hours did people watch"]


def make_layer_doc_count() -> int:
    layer = make_layer()
    return len(layer.metrics) + sum(len(n.columns) for n in layer.nodes.values()) + sum(len(v) for v in VALUES.values())


def test_index_rebuilds_when_the_layer_changes(tmp_path: Path) -> None:
    Retriever.open(tmp_path, make_layer("v1"), VALUES, embedder=Embedder())
    cloud = Metric(
        name="cloud_cost",
        label="Cloud cost",
        description="Money spent on cloud infrastructure.",
        synonyms=("aws bill", "infrastructure spend"),
        unit="USD",
        source="cloud_costs",
        agg="sum",
        expr="cost_usd",
    )
    counting = CountingEmbedder()
    changed = Retriever.open(tmp_path, make_layer("v2", extra_metric=cloud), VALUES, embedder=counting)
    assert len(counting.texts) == make_layer_doc_count() + 1
    assert changed.search("what is our aws bill", kinds=["metric"]).hits[0].ref == "cloud_cost"

    # the same version string but other content rebuilds too (the hash covers every document)
    counting = CountingEmbedder()
    Retriever.open(tmp_path, make_layer("v2"), VALUES, embedder=counting)
    assert len(counting.texts) == make_layer_doc_count()


def test_index_rebuilds_when_values_change(tmp_path: Path) -> None:
    Retriever.open(tmp_path, make_layer(), VALUES, embedder=Embedder())
    counting = CountingEmbedder()
    values = {**VALUES, "countries.country_name": [*VALUES["countries.country_name"], "Mexico"]}
    r = Retriever.open(tmp_path, make_layer(), values, embedder=counting)
    assert len(counting.texts) == make_layer_doc_count() + 1
    assert r.search("hours in Mexico", kinds=["value"]).hits[0].value == "Mexico"


def test_an_interrupted_build_is_redone(tmp_path: Path) -> None:
    Retriever.open(tmp_path, make_layer(), VALUES, embedder=Embedder())
    client = chromadb.PersistentClient(path=str(tmp_path), settings=Settings(anonymized_telemetry=False, allow_reset=True))
    collection = client.get_collection(COLLECTION, embedding_function=LoreEmbeddingFunction(Embedder()))
    meta = dict(collection.metadata or {})
    collection.modify(metadata={**meta, "lore_state": "building"})
    counting = CountingEmbedder()
    Retriever.open(tmp_path, make_layer(), VALUES, embedder=counting)
    assert len(counting.texts) == make_layer_doc_count()


def test_collection_carries_our_embedding_function_never_chromas_default(tmp_path: Path, embedder: Embedder) -> None:
    Retriever.open(tmp_path, make_layer(), VALUES, embedder=embedder)
    client = chromadb.PersistentClient(path=str(tmp_path), settings=Settings(anonymized_telemetry=False, allow_reset=True))
    config = client.get_collection(COLLECTION, embedding_function=LoreEmbeddingFunction(embedder)).configuration
    assert isinstance(config["embedding_function"], LoreEmbeddingFunction)
    assert config["hnsw"]["space"] == "cosine"


# --- verified examples ----------------------------------------------------------------


def test_examples_are_searchable_at_once_and_removable(tmp_path: Path, embedder: Embedder) -> None:
    r = Retriever.open(tmp_path, make_layer(), VALUES, embedder=embedder)
    ex = Example(id="ex1", question="weekly watch time in Brazil", plan_json=plan("total_streaming_hours"))
    other = Example(id="ex2", question="game downloads by platform", plan_json=plan("game_installs", "game_installs.platform"), sql="SELECT 1")
    r.add_examples([ex, other])
    hits = r.search("watch time per week in Brazil", kinds=["example"]).hits
    assert [h.ref for h in hits] == ["ex1", "ex2"]
    assert hits[0].text == ex.question and hits[0].score > hits[1].score
    assert r.example("ex2") == other

    r.remove_example("ex1")
    assert [h.ref for h in r.search("watch time per week in Brazil", kinds=["example"]).hits] == ["ex2"]
    assert r.example("ex1") is None
    r.remove_example("ex1")  # removing again is a no-op


def test_examples_persist_and_are_synced_at_open(tmp_path: Path) -> None:
    ex1 = Example(id="ex1", question="weekly watch time in Brazil", plan_json=plan("total_streaming_hours"))
    ex2 = Example(id="ex2", question="signups by plan", plan_json=plan("new_signups", "accounts.plan"))
    Retriever.open(tmp_path, make_layer(), VALUES, embedder=Embedder(), examples=[ex1])

    counting = CountingEmbedder()
    r = Retriever.open(tmp_path, make_layer(), VALUES, embedder=counting, examples=[ex1, ex2])
    assert counting.texts == [ex2.question]  # only the new example is embedded
    assert {h.ref for h in r.search("signups by plan", kinds=["example"]).hits} == {"ex1", "ex2"}

    changed = ex1.model_copy(update={"plan_json": plan("streaming_session_count")})
    counting = CountingEmbedder()
    r = Retriever.open(tmp_path, make_layer(), VALUES, embedder=counting, examples=[changed])
    assert [h.ref for h in r.search("signups by plan", kinds=["example"]).hits] == ["ex1"]
    assert r.example("ex1") == changed

    # the rebuilt layer part keeps the examples
    r = Retriever.open(tmp_path, make_layer("v9"), VALUES, embedder=Embedder(), examples=[changed])
    assert r.count("example") == 1 and r.example("ex1") == changed


def test_unknown_value_refs_are_indexed_with_their_attribute_name(tmp_path: Path, embedder: Embedder) -> None:
    layer = SemanticLayer(nodes={"t": Node(name="t", columns=(Column(name="c"),))}, version="x")
    r = Retriever.open(tmp_path, layer, {"other.cloud_region": ["us-east-1"]}, embedder=embedder)
    top = r.search("cost in us-east-1", kinds=["value"]).hits[0]
    assert (top.ref, top.value, top.text) == ("other.cloud_region", "us-east-1", "us-east-1 (cloud region)")


# --- values of a table in another schema of the warehouse ----------------------------------------------------------


def test_values_of_a_table_in_another_schema_are_indexed(tmp_path: Path) -> None:
    """A node over ``crm.accounts``: its categorical values are read from that table (not from main's table of
    the same name) and a question naming one finds it."""
    import duckdb

    from lore import Lore

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("""
        CREATE TABLE accounts (account_id INTEGER, plan VARCHAR);
        INSERT INTO accounts VALUES (1, 'legacy_gold');
        CREATE SCHEMA crm;
        CREATE TABLE crm.accounts (account_id INTEGER, plan VARCHAR, signup_date DATE);
        INSERT INTO crm.accounts VALUES (1, 'premium', DATE '2026-01-02'), (2, 'basic_with_ads', DATE '2026-02-03'),
            (3, 'premium', DATE '2026-03-04');
    """)
    con.close()
    (tmp_path / "semantic").mkdir()
    (tmp_path / "semantic" / "crm.yaml").write_text(
        "sources:\n"
        "  - name: accounts\n"
        "    table: crm.accounts\n"
        "    primary_key: [account_id]\n"
        "    time_column: signup_date\n"
        "    columns:\n"
        "      - {name: plan, label: subscription plan}\n"
        "      - {name: signup_date, kind: time}\n"
        "metrics:\n"
        "  - {name: account_count, source: accounts, agg: count, description: Accounts.}\n",
        encoding="utf-8")
    (tmp_path / "lore.yaml").write_text("name: crm\n", encoding="utf-8")
    with Lore.open(tmp_path, feedback=False) as lore:
        assert lore.values["accounts.plan"] == ["basic_with_ads", "premium"]
        assert lore.time_bounds["accounts"] == ("2026-01-02", "2026-03-04")
        index = lore.retriever
        assert index.count("value") == 2
        assert [(m.ref, m.value) for m in index.match_values("accounts on basic_with_ads")] == [
            ("accounts.plan", "basic_with_ads")]
        top = index.search("premium accounts", kinds=["value"]).hits[0]
        assert (top.ref, top.value) == ("accounts.plan", "premium")
        assert not index.match_values("legacy_gold accounts")  # main.accounts is another table


# --- several processes ----------------------------------------------------------------

OPEN_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
from retrieve_fixtures import VALUES, make_layer
from lore.retrieve import Retriever
r = Retriever.open(sys.argv[1], make_layer(), VALUES)
print(r.count("metric"))
"""


def test_processes_opening_an_index_to_build_take_turns(tmp_path: Path) -> None:
    """The workers of `lore serve --workers N` open a project whose index must be (re)built at the same moment: one
    builds while the others wait, then they reuse it (two builds at once used to fail: collection already exists)."""
    import subprocess
    import sys

    here = str(Path(__file__).parent)
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_SCRIPT, str(tmp_path), here], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    assert {out.strip() for out, _ in outs} == {str(len(make_layer().metrics))}


def test_an_index_locked_too_long_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from filelock import FileLock

    from lore.errors import OperatorError
    from lore.retrieve import index

    monkeypatch.setattr(index, "INDEX_LOCK_TIMEOUT_S", 0.2)
    with FileLock(tmp_path / index.LOCK_FILE):
        with pytest.raises(OperatorError, match="locked for 0 s") as caught:
            Retriever.open(tmp_path, make_layer(), VALUES)
    assert "Wait for the other LORE process" in (caught.value.hint or "")
    assert Retriever.open(tmp_path, make_layer(), VALUES).count("metric") == len(make_layer().metrics)
