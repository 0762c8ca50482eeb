"""The chromadb adapter of :class:`~lore.retrieve.embed.Embedder`.

chromadb's own default embedding function downloads a model at run time; LORE
never uses it. Every collection LORE creates gets a
:class:`LoreEmbeddingFunction`, which implements chromadb 1.5's
``EmbeddingFunction`` protocol: ``__call__``, ``name``, ``get_config``,
``build_from_config`` (so ``is_legacy()`` is False), ``default_space``,
``supported_spaces``.
"""

from __future__ import annotations

from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space

from lore.retrieve.embed import MAX_LENGTH, Embedder


class LoreEmbeddingFunction(EmbeddingFunction[Documents]):
    """A chromadb embedding function backed by a (shared) offline :class:`Embedder`."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder if embedder is not None else Embedder()

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "lore_minilm_l6_v2_onnx_int8"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.embedder.name, "max_length": self.embedder.max_length}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LoreEmbeddingFunction:
        return LoreEmbeddingFunction(Embedder(max_length=int(config.get("max_length", MAX_LENGTH))))

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]
