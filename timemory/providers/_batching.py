"""Micro-batching: texts that threads ask to embed at the same time are encoded in one call.

An encoder answers a batch of 16 queries in little more time than one, so under concurrent searches (the API's
clients, the chat and the queue workers of one process) one encoder thread takes everything that is waiting and
encodes it together. A lone caller waits only for its own call: nothing is held back to fill a batch.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from timemory.providers._embeddings import Embedder


@dataclass
class _Request:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    vectors: np.ndarray | None = None
    error: BaseException | None = None


class BatchingEmbedder:
    """An :class:`Embedder` that encodes concurrent calls together, at most ``max_batch`` texts per call."""

    def __init__(self, inner: Embedder, max_batch: int = 64) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_batch = max_batch
        self.calls = 0  # encoder calls made (fewer than embed calls when they were batched)
        self._waiting: deque[_Request] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def dim(self) -> int:
        return self.inner.dim

    def __getattr__(self, name: str) -> object:  # the wrapped embedder's own attributes (runtime, ...)
        return getattr(self.inner, name)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return self.inner.embed([])
        request = _Request(list(texts))
        with self._ready:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._encode_forever, name="embed-batcher", daemon=True)
                self._thread.start()
            self._waiting.append(request)
            self._ready.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.vectors is not None
        return request.vectors

    def _take(self) -> list[_Request]:
        """Everything waiting, up to ``max_batch`` texts (a larger single call goes alone)."""
        with self._ready:
            while not self._waiting:
                self._ready.wait()
            batch = [self._waiting.popleft()]
            size = len(batch[0].texts)
            while self._waiting and size + len(self._waiting[0].texts) <= self.max_batch:
                size += len(self._waiting[0].texts)
                batch.append(self._waiting.popleft())
            return batch

    def _encode_forever(self) -> None:
        while True:
            batch = self._take()
            try:
                vectors = self.inner.embed([t for r in batch for t in r.texts])
                self.calls += 1
            except BaseException as exc:  # noqa: BLE001 - each caller gets the encoder's error as its own
                for r in batch:
                    r.error = exc
                    r.done.set()
                continue
            start = 0
            for r in batch:
                r.vectors = vectors[start:start + len(r.texts)]
                start += len(r.texts)
                r.done.set()
