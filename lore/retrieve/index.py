"""The retrieval index: metrics, dimension attributes, dimension values and verified examples.

Vectors live in a persistent chromadb collection (this is the only module that
opens chromadb); a small lexical index is rebuilt in memory at every open
from the same documents (it costs milliseconds, no model). The vectors are
also held in memory, one float32 matrix per kind, and searched exactly (a
matrix-vector product): per question this is far cheaper than a filtered
chromadb query (about 1 ms instead of 2-8 ms per kind on the demo), and the
collection serves as the persisted store the matrices are loaded from.

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
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import chromadb
import numpy as np
from chromadb.config import Settings
from filelock import FileLock, Timeout
from chromadb.errors import NotFoundError

from lore.errors import OperatorError
from lore.retrieve.documents import (
    DEFAULT_MAX_VALUES,
    INDEX_FORMAT,
    KINDS,
    RETRIEVE_K,
    Example,
    IndexDoc,
    content_hash,
    example_doc,
    layer_documents,
)
from lore.retrieve.embed import Embedder
from lore.retrieve.embedding_function import LoreEmbeddingFunction
from lore.retrieve.lexical import LexicalIndex, ValueMatch, ValueMatcher
from lore.semantic.spec import SemanticLayer
from lore.types import Hit, RetrievalResult

COLLECTION = "lore_index"
#: the lock file that lets one process at a time check and (re)build the index in its folder
LOCK_FILE = ".lore-index.lock"
#: how long opening the index waits for another process's build (a 5,000-metric catalog builds in minutes)
INDEX_LOCK_TIMEOUT_S = 900.0
VECTOR_WEIGHT = 0.6
LEXICAL_WEIGHT = 0.4
NAMED_THRESHOLD = 0.9
NAMED_FLOOR = 0.85


class _KindVectors:
    """The unit vectors of one kind of document: ``matrix[row[id]]`` is the vector of ``id``. Never mutated."""

    __slots__ = ("ids", "matrix", "row")

    def __init__(self, ids: Sequence[str], matrix: np.ndarray) -> None:
        self.ids: tuple[str, ...] = tuple(ids)
        matrix = np.asarray(matrix, dtype=np.float32)
        dim = matrix.shape[-1] if matrix.ndim == 2 else (matrix.size // max(1, len(self.ids)))
        self.matrix: np.ndarray = np.ascontiguousarray(matrix.reshape(len(self.ids), dim))
        self.row: dict[str, int] = {i: n for n, i in enumerate(self.ids)}

    def nearest(self, qvec: np.ndarray, n: int) -> dict[str, float]:
        """The ``n`` most similar documents and their similarities (as chromadb's cosine distance reports them)."""
        if not self.ids or n <= 0:
            return {}
        # einsum, not ``matrix @ qvec``: BLAS hands a matrix-vector product to its thread pool, which costs
        # milliseconds of hand-off on a busy machine; this loop is single-threaded and memory-bound
        dots = np.einsum("ij,j->i", self.matrix, qvec)
        if n < len(self.ids):
            top = np.argpartition(-dots, n - 1)[:n]
        else:
            top = np.arange(len(self.ids))
        distances = (np.float32(1.0) - dots[top]).astype(np.float32)
        return {self.ids[int(i)]: _clip01(1.0 - float(d)) for i, d in zip(top, distances)}

    def similarity(self, qvec: np.ndarray, doc_id: str) -> float | None:
        row = self.row.get(doc_id)
        if row is None:
            return None
        return _clip01(float(np.dot(self.matrix[row], qvec)))

    def with_vectors(self, ids: Sequence[str], matrix: np.ndarray) -> _KindVectors:
        """A copy with ``ids`` added or replaced."""
        if not len(ids):
            return self
        replace = set(ids)
        keep = [n for n, i in enumerate(self.ids) if i not in replace]
        new_ids = [self.ids[n] for n in keep] + list(ids)
        added = np.asarray(matrix, dtype=np.float32).reshape(len(ids), -1)
        kept = self.matrix[keep].reshape(len(keep), added.shape[1])
        return _KindVectors(new_ids, np.vstack([kept, added]))

    def without(self, ids: Collection[str]) -> _KindVectors:
        keep = [n for n, i in enumerate(self.ids) if i not in ids]
        return _KindVectors([self.ids[n] for n in keep], self.matrix[keep])


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
        self._sizes: dict[str, int] = _sizes(self._docs)
        vectors = _load_vectors(collection, self._docs)
        self._vectors: dict[str, _KindVectors] = {
            kind: _KindVectors(*vectors.get(kind, ((), np.zeros((0, embedder.dimension), dtype=np.float32))))
            for kind in KINDS
        }

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
        from chromadb.utils.embedding_functions import register_embedding_function  # lazy: chromadb loads with the index

        embedder = embedder if embedder is not None else Embedder()
        # lets chromadb rebuild our function from a persisted collection's config (never its default one)
        register_embedding_function(LoreEmbeddingFunction)
        layer_docs = layer_documents(layer, values, max_values=max_values)
        wanted_hash = content_hash(embedder.name, layer, layer_docs)
        ef = LoreEmbeddingFunction(embedder)
        # one process at a time checks, rebuilds and syncs the index: the workers of one server open it together
        with _index_lock(index_dir):
            client = _client(index_dir)
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
            return RetrievalResult(question=question, k=max(k, 0), kinds=wanted)
        docs, lexical_index, sizes, vectors = self._docs, self._lexical, self._sizes, self._vectors  # one snapshot
        qvec = self.embedder.embed_one(question)
        lexical = lexical_index.score(question, kinds=wanted)
        if "value" in wanted:
            for match in self._matcher.match(question):
                doc_id = f"value:{match.ref}={match.value}"
                if doc_id in docs:
                    lexical[doc_id] = max(lexical.get(doc_id, 0.0), match.score)
        by_kind: dict[str, list[str]] = {kind: [] for kind in wanted}
        for i in lexical:  # in the scorer's order, which settles equal scores
            doc = docs.get(i)
            if doc is not None and doc.kind in by_kind:
                by_kind[doc.kind].append(i)
        hits: list[Hit] = []
        for kind in wanted:
            size = sizes.get(kind, 0)
            if size == 0:
                continue
            vector = vectors[kind].nearest(qvec, min(size, max(4 * k, 24)))
            lexical_top = sorted(by_kind[kind], key=lambda i: -lexical[i])[: 4 * k]
            for i in lexical_top:
                if i not in vector and (sim := vectors[kind].similarity(qvec, i)) is not None:
                    vector[i] = sim
            scored = [
                self._hit(docs[i], vector.get(i, 0.0), lexical.get(i, 0.0))
                for i in set(vector) | set(lexical_top)
                if i in docs
            ]
            scored.sort(key=lambda h: (-h.score, -h.vector_score, h.id))
            hits.extend(scored[:k])
        hits.sort(key=lambda h: (-h.score, -h.vector_score, h.id))
        return RetrievalResult(question=question, hits=tuple(hits), k=k, kinds=wanted)

    def retrieve(self, question: str, *, k: int = RETRIEVE_K) -> RetrievalResult:
        """The ``retrieve`` stage's result: the ``k`` best documents of every kind, and the values named verbatim."""
        found = self.search(question, k=k)
        return found.model_copy(update={"values": tuple(self.match_values(question))})

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
            matrix = self.embedder.embed([d.text for d in docs])  # the texts just embedded: served from its cache
            vectors = dict(self._vectors)
            vectors["example"] = vectors["example"].with_vectors([d.id for d in docs], matrix)
            self._lexical = self._lexical.with_docs(d.lexical() for d in docs)
            self._vectors = vectors
            self._sizes = _sizes(merged)
            self._docs = merged

    def remove_example(self, example_id: str) -> None:
        """Remove a verified example (a no-op when it is not in the index)."""
        doc_id = f"example:{example_id}"
        with self._lock:
            if doc_id not in self._docs:
                return
            self._collection.delete(ids=[doc_id])
            docs = {i: d for i, d in self._docs.items() if i != doc_id}
            vectors = dict(self._vectors)
            vectors["example"] = vectors["example"].without({doc_id})
            self._lexical = self._lexical.without([doc_id])
            self._vectors = vectors
            self._sizes = _sizes(docs)
            self._docs = docs

    # -- introspection -------------------------------------------------------

    def count(self, kind: str | None = None) -> int:
        """How many documents (of a kind) the index holds."""
        sizes = self._sizes
        return sum(sizes.values()) if kind is None else sizes.get(kind, 0)


# --- chromadb at the edge ----------------------------------------------------------


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


def _sizes(docs: Mapping[str, IndexDoc]) -> dict[str, int]:
    sizes = dict.fromkeys(KINDS, 0)
    for doc in docs.values():
        sizes[doc.kind] = sizes.get(doc.kind, 0) + 1
    return sizes


def _load_vectors(collection: Any, docs: Mapping[str, IndexDoc], *, page: int = 5000
                  ) -> dict[str, tuple[list[str], np.ndarray]]:
    """Every stored vector of ``docs``, grouped by kind (read from the collection in pages)."""
    ids: dict[str, list[str]] = {kind: [] for kind in KINDS}
    rows: dict[str, list[np.ndarray]] = {kind: [] for kind in KINDS}
    offset = 0
    while True:
        res = collection.get(include=["embeddings"], limit=page, offset=offset)
        got = res["ids"]
        if not len(got):
            break
        matrix = np.asarray(res["embeddings"], dtype=np.float32).reshape(len(got), -1)
        for n, doc_id in enumerate(got):
            doc = docs.get(doc_id)
            if doc is not None:
                ids[doc.kind].append(doc_id)
                rows[doc.kind].append(matrix[n])
        offset += len(got)
        if len(got) < page:
            break
    return {kind: (ids[kind], np.vstack(rows[kind]) if rows[kind] else np.zeros((0, 0), dtype=np.float32))
            for kind in KINDS if ids[kind]}


def _values_of(docs: Sequence[IndexDoc]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for doc in docs:
        if doc.kind == "value" and doc.value is not None:
            out.setdefault(doc.ref, []).append(doc.value)
    return out


IndexState = Literal["fresh", "stale", "incomplete", "missing"]


def index_state(index_dir: Path, layer: SemanticLayer, values: Mapping[str, Sequence[str]], *,
                embedder_name: str | None = None, max_values: int = DEFAULT_MAX_VALUES) -> IndexState:
    """Whether the index persisted in ``index_dir`` matches the layer and values (nothing is built or embedded).

    ``fresh``: the next open reuses it; ``stale``: built from another layer, data or embedder, so the next open
    rebuilds it; ``incomplete``: a build was interrupted; ``missing``: never built.
    """
    if not (Path(index_dir) / "chroma.sqlite3").is_file():
        return "missing"
    name = embedder_name if embedder_name is not None else Embedder().name
    wanted = content_hash(name, layer, layer_documents(layer, values, max_values=max_values))
    client = _client(index_dir)
    try:
        meta = client.get_collection(COLLECTION).metadata or {}
    except (NotFoundError, ValueError):
        return "missing"
    if meta.get("lore_state") != "ready":
        return "incomplete"
    return "fresh" if meta.get("lore_hash") == wanted else "stale"


@contextmanager
def _index_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index folder's lock file (across processes; a lock a crashed process held is released by the OS)."""
    timeout_s = INDEX_LOCK_TIMEOUT_S
    lock = FileLock(Path(index_dir) / LOCK_FILE, timeout=timeout_s)
    try:
        Path(index_dir).mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        raise OperatorError(
            f"Another process kept the retrieval index at {index_dir} locked for {timeout_s:.0f} s.",
            hint="Wait for the other LORE process to finish building the index, or stop it and retry.",
        ) from None
    except OSError as err:
        raise OperatorError(
            f"Cannot lock the retrieval index at {index_dir}: {err}",
            hint="Check the folder's permissions, or delete it and run `lore index build`.",
        ) from err
    try:
        yield
    finally:
        lock.release()


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
