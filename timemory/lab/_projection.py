"""2-D projections of memory embeddings for the map: PCA at once, UMAP when there are enough points."""

from __future__ import annotations

from typing import Literal

import numpy as np

from timemory._extras import require

Method = Literal["pca", "umap"]
UMAP_MIN_POINTS = 15


def pca_2d(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates (n, 2) plus the mean and the 2 components, so new points can be placed with the same map."""
    x = np.asarray(matrix, dtype=np.float32)
    if x.shape[0] == 0:
        return np.zeros((0, 2), np.float32), np.zeros(x.shape[1], np.float32), np.zeros((2, x.shape[1]), np.float32)
    mean = x.mean(axis=0)
    centred = x - mean
    if x.shape[0] == 1:
        comps = np.eye(2, x.shape[1], dtype=np.float32)
    else:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        comps = vt[:2]
        if comps.shape[0] < 2:
            comps = np.vstack([comps, np.zeros((2 - comps.shape[0], x.shape[1]), np.float32)])
    return (centred @ comps.T).astype(np.float32), mean, comps.astype(np.float32)


def umap_2d(matrix: np.ndarray, seed: int = 42) -> np.ndarray:
    """UMAP with cosine distance. The first call in a process compiles numba code (tens of seconds)."""
    umap = require("umap", "dashboard", "The UMAP projection")
    n = matrix.shape[0]
    reducer = umap.UMAP(
        n_components=2, metric="cosine", n_neighbors=min(15, max(2, n - 1)), min_dist=0.1, random_state=seed,
        low_memory=True, n_epochs=200, init="random" if n < 50 else "spectral",
    )
    return np.asarray(reducer.fit_transform(matrix), dtype=np.float32)


def project(matrix: np.ndarray, method: Method) -> np.ndarray:
    if method == "umap" and matrix.shape[0] >= UMAP_MIN_POINTS:
        return umap_2d(matrix)
    return pca_2d(matrix)[0]


def place_query(query: np.ndarray, matrix: np.ndarray, coords: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Where a query lands on an existing map: the similarity-weighted mean of its k nearest points.

    UMAP has no cheap exact transform for one point; this keeps the query next to what it resembles on any map.
    Returns (xy, indices of the nearest points, best first).
    """
    if matrix.shape[0] == 0:
        return np.zeros(2, np.float32), np.zeros(0, dtype=int)
    scores = matrix @ np.asarray(query, dtype=np.float32).ravel()
    k = min(k, len(scores))
    top = np.argsort(-scores)[:k]
    weights = np.clip(scores[top], 1e-3, None)
    return (coords[top] * weights[:, None]).sum(axis=0) / weights.sum(), top
