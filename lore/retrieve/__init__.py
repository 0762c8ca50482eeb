"""Retrieval: offline embeddings and a hybrid (vector + lexical) index of the semantic layer.

- :class:`Embedder`: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, fully offline.
- :class:`LoreEmbeddingFunction`: the chromadb adapter of the embedder.
- :class:`Retriever`: metrics, dimension attributes, dimension values and
  verified examples in a persistent chromadb collection; :meth:`Retriever.search`.
- :func:`match_values`: values mentioned verbatim in a question (pure, fast).

chromadb takes about half a second to import, so the names that need it
(:class:`Retriever`, :class:`LoreEmbeddingFunction`) are imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from lore.retrieve.documents import Example, IndexDoc
from lore.retrieve.embed import Embedder
from lore.retrieve.lexical import ValueMatch, ValueMatcher, match_values
from lore.types import Hit, RetrievalResult

if TYPE_CHECKING:  # pragma: no cover
    from lore.retrieve.embedding_function import LoreEmbeddingFunction
    from lore.retrieve.index import Retriever

_LAZY = {
    "Retriever": "lore.retrieve.index",
    "index_state": "lore.retrieve.index",
    "LoreEmbeddingFunction": "lore.retrieve.embedding_function",
}

__all__ = [
    "Embedder",
    "Example",
    "Hit",
    "IndexDoc",
    "LoreEmbeddingFunction",
    "RetrievalResult",
    "Retriever",
    "ValueMatch",
    "ValueMatcher",
    "index_state",
    "match_values",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lore.retrieve' has no attribute {name!r}")
    return getattr(import_module(module), name)
