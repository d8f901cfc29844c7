"""Pre-selection passes for large users: a cheaper copy of the matrix scores every row approximately, the best
candidates are re-ranked exactly in float32, and the result is accepted only when no row left out could beat the
k-th (its approximate score plus the pass's error bound is below the k-th exact score).

* ``half`` — float16 rows (half the bytes of float32), ``torch.mv``;
* ``int8`` — rows quantised to int8 with one scale per row, multiplied by a bfloat16 query with torch's
  weight-only int8 kernel (a quarter of the bytes).

Which pass a machine uses is measured once per process (:func:`fastest`, whose winning copy is kept): CPUs without
fast float16 or int8 kernels keep the plain float32 scan. The copies are patched row by row on writes, like the
float32 matrix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("int8", "half")
HALF_ERROR = 1e-2  # largest |float16 score - float32 score| assumed for unit vectors (measured errors are ~1e-3)
# int8: |x - s*w| <= s/2 per component gives |q.x - q.x~| <= s/2 * |q|_1; bfloat16 rounding of the query, of the
# scales and of the output add at most about 3 * 2**-9 for unit vectors.
BF16_ERROR = 3 * 2.0**-9


@dataclass
class Coarse:
    kind: str
    data: Any  # torch tensor (capacity, d): float16 rows, or int8 rows
    scales: Any = None  # int8: bfloat16 scale per row (capacity,)
    max_scale: float = 0.0

    @property
    def capacity(self) -> int:
        return int(self.data.shape[0])


def _int8_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and bfloat16-exact scales with |x - s*w| <= s/2 (scales are rounded first, so no row clips)."""
    import torch

    peak = np.abs(vectors).max(axis=1) if len(vectors) else np.zeros(0, np.float32)
    scales = torch.from_numpy(np.maximum(peak / 126.0, 1e-12).astype(np.float32)).to(torch.bfloat16).float().numpy()
    return np.round(vectors / scales[:, None]).astype(np.int8), scales


def build(kind: str, buffer: np.ndarray, n: int) -> Coarse:
    import torch

    if kind == "half":
        data = torch.zeros((buffer.shape[0], buffer.shape[1]), dtype=torch.float16)
        data[:n] = torch.from_numpy(buffer[:n]).to(torch.float16)
        return Coarse(kind, data)
    rows, scales = _int8_rows(buffer[:n])
    data = torch.zeros((buffer.shape[0], buffer.shape[1]), dtype=torch.int8)
    data[:n] = torch.from_numpy(rows)
    all_scales = torch.zeros(buffer.shape[0], dtype=torch.bfloat16)
    all_scales[:n] = torch.from_numpy(scales).to(torch.bfloat16)
    return Coarse(kind, data, all_scales, float(scales.max()) if n else 0.0)


def update(coarse: Coarse, rows: list[int], vectors: np.ndarray) -> None:
    """Write these rows (already within capacity) in place."""
    import torch

    if not rows:
        return
    index = torch.tensor(rows, dtype=torch.long)
    if coarse.kind == "half":
        coarse.data[index] = torch.from_numpy(vectors).to(torch.float16)
        return
    q, scales = _int8_rows(vectors)
    coarse.data[index] = torch.from_numpy(q)
    coarse.scales[index] = torch.from_numpy(scales).to(torch.bfloat16)
    coarse.max_scale = max(coarse.max_scale, float(scales.max()))


def scores(coarse: Coarse, query: np.ndarray, n: int) -> np.ndarray:
    """Approximate cosine of the first ``n`` rows."""
    import torch

    if coarse.kind == "half":
        return torch.mv(coarse.data[:n], torch.from_numpy(query).to(torch.float16)).float().numpy()
    x = torch.from_numpy(query)[None, :].to(torch.bfloat16)
    out = torch.ops.aten._weight_int8pack_mm(x, coarse.data[:n], coarse.scales[:n])
    return out.float().numpy()[0]


def error(coarse: Coarse, query: np.ndarray) -> float:
    """An upper bound of |approximate - exact| for every row, for this query."""
    if coarse.kind == "half":
        return HALF_ERROR
    return 0.5 * coarse.max_scale * float(np.abs(query).sum()) * (1 + 2.0**-7) + BF16_ERROR


def fastest(buffer: np.ndarray, n: int, exact: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Coarse | None:
    """The copy (of the first ``n`` rows of ``buffer``) whose pass beats the float32 scan (``exact``) by at least
    10% here, or None. Each candidate is timed in turns with the float32 scan; the medians decide."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    matrix = buffer[:n]
    query = matrix[0].copy()
    runs: dict[str | None, Any] = {None: lambda: exact(matrix, query)}
    built: dict[str, Coarse] = {}
    for kind in KINDS:
        try:
            coarse = build(kind, buffer, n)
            scores(coarse, query, n)
        except (RuntimeError, AttributeError, NotImplementedError):
            continue  # the kernel is missing on this CPU or torch build
        built[kind] = coarse
        runs[kind] = lambda coarse=coarse: scores(coarse, query, n)
    times: dict[str | None, list[float]] = {name: [] for name in runs}
    for _ in range(9):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    best = min(medians, key=lambda name: medians[name])
    return built[best] if best is not None and medians[best] < 0.9 * medians[None] else None
