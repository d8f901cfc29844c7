"""Concurrent embed calls share encoder calls, and each caller gets exactly its own vectors (or its error)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from timemory import EmbeddingError
from timemory.providers import BatchingEmbedder, LocalEmbedder


class SlowEmbedderDouble:
    """Takes 50 ms a call whatever the batch; a text's vector is its length and first letter, so any mix-up shows."""

    name = "slow-double"
    dim = 2

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.fail_on: str | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        time.sleep(0.05)
        if self.fail_on in texts:
            raise EmbeddingError("the encoder failed")
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)


def test_concurrent_calls_share_encoder_calls_and_each_gets_its_own_vectors() -> None:
    inner = SlowEmbedderDouble()
    batching = BatchingEmbedder(inner, max_batch=64)
    texts = [[f"{chr(97 + i % 26)}{'x' * i}"] if i % 3 else [f"q{i}", f"{'y' * i}z"] for i in range(30)]
    start = threading.Barrier(30)

    def call(t: list[str]) -> np.ndarray:
        start.wait()
        return batching.embed(t)

    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(call, texts))
    for asked, got in zip(texts, results, strict=True):
        assert got.tolist() == [[len(t), ord(t[0])] for t in asked]
    assert batching.calls == len(inner.batches) < 30 / 2  # waiting callers were encoded together
    assert sorted(t for b in inner.batches for t in b) == sorted(t for ts in texts for t in ts)


def test_a_lone_caller_is_not_held_back_and_a_batch_never_exceeds_its_limit() -> None:
    inner = SlowEmbedderDouble()
    batching = BatchingEmbedder(inner, max_batch=4)
    assert batching.embed(["alone"]).tolist() == [[5, ord("a")]] and inner.batches == [["alone"]]
    big = [f"t{i}" for i in range(10)]
    assert batching.embed(big).shape == (10, 2)  # one call larger than the limit goes alone, whole
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda i: batching.embed([f"p{i}"]), range(12)))
    assert max(len(b) for b in inner.batches[2:]) <= 4


def test_an_encoder_error_reaches_every_caller_of_that_batch_and_the_next_call_works() -> None:
    inner = SlowEmbedderDouble()
    inner.fail_on = "boom"
    batching = BatchingEmbedder(inner)
    with pytest.raises(EmbeddingError, match="the encoder failed"):
        batching.embed(["boom"])
    assert batching.embed(["fine"]).tolist() == [[4, ord("f")]]


def test_batched_vectors_are_the_vectors_of_one_text_at_a_time(embedder: LocalEmbedder) -> None:
    texts = ["Where does the user live?", "cello", "The user moved to Berlin last month and loves it there."]
    batching = BatchingEmbedder(embedder)
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda t: batching.embed([t])[0], texts))
    alone = [embedder.embed([t])[0] for t in texts]
    np.testing.assert_allclose(np.array(together), np.array(alone), atol=1e-5)
    assert batching.dim == embedder.dim and batching.name == embedder.name
