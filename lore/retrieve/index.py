"""The retrieval index: metrics, dimension attributes, dimension values and verified examples.

Vectors live in a persistent chromadb collection (this is the only module that
opens chromadb); a small lexical index is rebuilt in memory at every open
from the same documents (it costs milliseconds, no model).

Persistence: the collection's metadata holds a content hash of everything
it was built from (index format, embedder name, ``layer.version``, and each
metric, attribute and value document). :meth:`Retriever.open` reuses the
collection when the hash matches and rebuilds it otherwise. Verified
examples are synced one by one: ``examples`` given to ``open`` is the full set
the index must hold (missing or changed ones are embedded, others removed),
so only new examples are embedded at start.

Scoring, per document (all parts in 0..1)::

    vector  v = max(0, cosine(question, document))
    lexical l = LexicalIndex.score(...)        # names, labels, synonyms named in the question
                for values: max(that, the verbatim mention score of match_values)
    score     = 0.6·v + 0.4·l
    if l >= 0.9 (the document is named whole in the question):
        score = 0.85 + 0.15·score             # named documents rank above merely similar ones

``search`` returns up to ``k`` hits of each requested kind, best first overall.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings
from chromadb.errors import NotFoundError
from pydantic import BaseModel, ConfigDict

from lore.errors import OperatorError
from lore.retrieve.documents import (
    DEFAULT_MAX_VALUES,
    INDEX_FORMAT,
    KINDS,
    Example,
    IndexDoc,
    Kind,
    content_hash,
    example_doc,
    layer_documents,
)
from lore.retrieve.embed import Embedder
from lore.retrieve.embedding_function import LoreEmbeddingFunction
from lore.retrieve.lexical import LexicalIndex, ValueMatch, ValueMatcher
from lore.semantic.spec import SemanticLayer

COLLECTION = "lore_index"
VECTOR_WEIGHT = 0.6
LEXICAL_WEIGHT = 0.4
NAMED_THRESHOLD = 0.9
NAMED_FLOOR = 0.85


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Hit(_Frozen):
    """One retrieved document and why it scored."""

    kind: Kind
    #: the document id in the index, e.g. ``metric:total_streaming_hours``
    id: str
    #: metric name | dimension ref ``node.attr`` | for values the dimension ref | example id
    ref: str
    #: the value, for kind=value
    value: str | None = None
    #: what was indexed
    text: str
    #: combined score, 0..1
    score: float
    vector_score: float
    lexical_score: float


class RetrievalResult(_Frozen):
    question: str
    hits: tuple[Hit, ...] = ()

    def of_kind(self, kind: str) -> list[Hit]:
        """The hits of one kind, best first."""
        return [h for h in self.hits if h.kind == kind]


def combine(vector: float, lexical: float) -> float:
    """The combined score (see the module docstring).

    >>> combine(0.5, 0.0), combine(0.5, 0.5), combine(0.5, 1.0)
    (0.3, 0.5, 0.955)
    >>> combine(0.9, 0.85) < combine(0.2, 0.95)
    True
    """
    score = VECTOR_WEIGHT * vector + LEXICAL_WEIGHT * lexical
    if lexical >= NAMED_THRESHOLD:
        score = NAMED_FLOOR + (1.0 - NAMED_FLOOR) * score
    return round(min(1.0, max(0.0, score)), 4)


def _check_kinds(kinds: Collection[str] | None) -> tuple[str, ...]:
    if kinds is None:
        return KINDS
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; use some of {list(KINDS)}")
    return tuple(k for k in KINDS if k in kinds)


class Retriever:
    """Hybrid (vector + lexical) search over a semantic layer's documents; see the module docstring."""

    def __init__(
        self,
        *,
        client: Any,
        collection: Any,
        embedder: Embedder,
        layer_docs: Sequence[IndexDoc],
        example_docs: Sequence[IndexDoc],
    ) -> None:
        self._client = client
        self._collection = collection
        self.embedder = embedder
        self._lock = threading.Lock()
        self._docs: dict[str, IndexDoc] = {d.id: d for d in [*layer_docs, *example_docs]}
        self._lexical = LexicalIndex.build(d.lexical() for d in self._docs.values())
        self._matcher = ValueMatcher(_values_of(layer_docs))

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        index_dir: Path,
        layer: SemanticLayer,
        values: Mapping[str, Sequence[str]],
        *,
        embedder: Embedder | None = None,
        examples: Sequence[Example] = (),
        max_values: int = DEFAULT_MAX_VALUES,
    ) -> Retriever:
        """Open (building or rebuilding when needed) the index persisted in ``index_dir``.

        ``values`` maps dimension refs (``countries.country_name``) to their
        distinct values, read from the warehouse by the caller. ``examples``
        is the full set of verified examples the index must hold.
        """
        from chromadb.utils.embedding_functions import register_embedding_function

        embedder = embedder if embedder is not None else Embedder()
        # lets chromadb rebuild our function from a persisted collection's config (never its default one)
        register_embedding_function(LoreEmbeddingFunction)
        layer_docs = layer_documents(layer, values, max_values=max_values)
        wanted_hash = content_hash(embedder.name, layer, layer_docs)
        client = _client(index_dir)
        ef = LoreEmbeddingFunction(embedder)
        collection = _reusable(client, ef, wanted_hash)
        if collection is None:
            collection = _rebuild(client, ef, wanted_hash, layer_docs)
        example_docs = _sync_examples(collection, examples)
        return cls(
            client=client,
            collection=collection,
            embedder=embedder,
            layer_docs=layer_docs,
            example_docs=example_docs,
        )

    # -- searching -----------------------------------------------------------

    def match_values(self, question: str) -> list[ValueMatch]:
        """Indexed values mentioned verbatim in the question (see :func:`lore.retrieve.match_values`)."""
        return self._matcher.match(question)

    def search(self, question: str, *, k: int = 8, kinds: Collection[str] | None = None) -> RetrievalResult:
        """Up to ``k`` hits of each kind in ``kinds`` (default: all), best first overall."""
        wanted = _check_kinds(kinds)
        if not question.strip() or k <= 0:
            return RetrievalResult(question=question)
        docs, lexical_index = self._docs, self._lexical  # one consistent snapshot
        qvec = self.embedder.embed_one(question)
        lexical = lexical_index.score(question, kinds=wanted)
        if "value" in wanted:
            for match in self._matcher.match(question):
                doc_id = f"value:{match.ref}={match.value}"
                if doc_id in docs:
                    lexical[doc_id] = max(lexical.get(doc_id, 0.0), match.score)
        hits: list[Hit] = []
        for kind in wanted:
            size = sum(1 for d in docs.values() if d.kind == kind)
            if size == 0:
                continue
            vector = self._nearest(qvec, kind, min(size, max(4 * k, 24)))
            lexical_top = sorted(
                (i for i, s in lexical.items() if docs.get(i) is not None and docs[i].kind == kind),
                key=lambda i: -lexical[i],
            )[: 4 * k]
            missing = [i for i in lexical_top if i not in vector]
            vector.update(self._similarities(qvec, missing))
            scored = [
                self._hit(docs[i], vector.get(i, 0.0), lexical.get(i, 0.0))
                for i in set(vector) | set(lexical_top)
                if i in docs
            ]
            scored.sort(key=lambda h: (-h.score, -h.vector_score, h.id))
            hits.extend(scored[:k])
        hits.sort(key=lambda h: (-h.score, -h.vector_score, h.id))
        return RetrievalResult(question=question, hits=tuple(hits))

    def _nearest(self, qvec: np.ndarray, kind: str, n: int) -> dict[str, float]:
        res = self._collection.query(
            query_embeddings=[qvec.tolist()], n_results=n, where={"kind": kind}, include=["distances"]
        )
        ids, distances = res["ids"][0], res["distances"][0]
        return {i: _clip01(1.0 - float(d)) for i, d in zip(ids, distances)}

    def _similarities(self, qvec: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        if not ids:
            return {}
        res = self._collection.get(ids=list(ids), include=["embeddings"])
        return {
            i: _clip01(float(np.dot(np.asarray(e, dtype=np.float32), qvec)))
            for i, e in zip(res["ids"], res["embeddings"])
        }

    @staticmethod
    def _hit(doc: IndexDoc, vector: float, lexical: float) -> Hit:
        return Hit(
            kind=doc.kind,
            id=doc.id,
            ref=doc.ref,
            value=doc.value,
            text=doc.text,
            score=combine(vector, lexical),
            vector_score=round(vector, 4),
            lexical_score=round(lexical, 4),
        )

    # -- examples ------------------------------------------------------------

    def example(self, example_id: str) -> Example | None:
        """The stored example with this id (for an example hit's plan)."""
        doc = self._docs.get(f"example:{example_id}")
        return doc.example if doc is not None else None

    def add_examples(self, examples: Sequence[Example]) -> None:
        """Add (or replace) verified examples; searchable as soon as this returns."""
        docs = list({d.id: d for d in (example_doc(e) for e in examples)}.values())
        if not docs:
            return
        with self._lock:
            _upsert(self._collection, docs)
            merged = dict(self._docs)
            merged.update({d.id: d for d in docs})
            self._lexical = self._lexical.with_docs(d.lexical() for d in docs)
            self._docs = merged

    def remove_example(self, example_id: str) -> None:
        """Remove a verified example (a no-op when it is not in the index)."""
        doc_id = f"example:{example_id}"
        with self._lock:
            if doc_id not in self._docs:
                return
            self._collection.delete(ids=[doc_id])
            self._docs = {i: d for i, d in self._docs.items() if i != doc_id}
            self._lexical = self._lexical.without([doc_id])

    # -- introspection -------------------------------------------------------

    def count(self, kind: str | None = None) -> int:
        """How many documents (of a kind) the index holds."""
        return sum(1 for d in self._docs.values() if kind is None or d.kind == kind)


# --- chromadb at the edge ----------------------------------------------------------


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


def _values_of(docs: Sequence[IndexDoc]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for doc in docs:
        if doc.kind == "value" and doc.value is not None:
            out.setdefault(doc.ref, []).append(doc.value)
    return out


def _client(index_dir: Path) -> Any:
    try:
        Path(index_dir).mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(
            path=str(index_dir), settings=Settings(anonymized_telemetry=False, allow_reset=True)
        )
    except OSError as err:
        raise OperatorError(
            f"Cannot open the retrieval index at {index_dir}: {err}",
            hint="Check the folder's permissions, or delete it and run `lore index build`.",
        ) from err


def _reusable(client: Any, ef: LoreEmbeddingFunction, wanted_hash: str) -> Any | None:
    """The persisted collection when it is complete and built from the same content, else None."""
    try:
        collection = client.get_collection(COLLECTION, embedding_function=ef)
    except NotFoundError:
        return None
    except ValueError:  # built with another embedding function: rebuild
        return None
    meta = collection.metadata or {}
    if meta.get("lore_state") == "ready" and meta.get("lore_hash") == wanted_hash:
        return collection
    return None


def _rebuild(client: Any, ef: LoreEmbeddingFunction, wanted_hash: str, docs: Sequence[IndexDoc]) -> Any:
    try:
        client.delete_collection(COLLECTION)
    except NotFoundError:
        pass
    collection = client.create_collection(
        COLLECTION,
        embedding_function=ef,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"lore_hash": wanted_hash, "lore_state": "building", "lore_format": INDEX_FORMAT},
    )
    _upsert(collection, docs, batch=client.get_max_batch_size())
    # marked ready only once every document is in: an interrupted build is redone at the next open
    collection.modify(metadata={"lore_hash": wanted_hash, "lore_state": "ready", "lore_format": INDEX_FORMAT})
    return collection


def _upsert(collection: Any, docs: Sequence[IndexDoc], *, batch: int = 1000) -> None:
    """Add documents; chromadb embeds their text through our embedding function."""
    for start in range(0, len(docs), batch):
        chunk = docs[start : start + batch]
        collection.upsert(
            ids=[d.id for d in chunk],
            documents=[d.text for d in chunk],
            metadatas=[d.metadata() for d in chunk],  # type: ignore[misc]
        )


def _sync_examples(collection: Any, examples: Sequence[Example]) -> list[IndexDoc]:
    """Make the collection hold exactly ``examples``; embeds only new or changed ones."""
    stored = collection.get(where={"kind": "example"}, include=["metadatas"])
    stored_hash = {i: (m or {}).get("content_hash") for i, m in zip(stored["ids"], stored["metadatas"])}
    wanted = {d.id: d for d in (example_doc(e) for e in examples)}
    stale = [i for i in stored_hash if i not in wanted]
    changed = [d for i, d in wanted.items() if d.example is not None and stored_hash.get(i) != d.example.content_hash]
    if stale:
        collection.delete(ids=stale)
    if changed:
        _upsert(collection, changed)
    return list(wanted.values())
