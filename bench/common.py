"""What every benchmark shares: one BLAS thread, timing statistics, the machine, and the results file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "bench"  # raw results and caches (ignored by git); the report goes to docs/
REPORT = ROOT / "docs" / "benchmarks.md"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def pin_threads() -> None:
    """Numerical libraries run many times slower with 2 threads on 2-core boxes: every figure uses one."""
    for key, value in ONE_THREAD.items():
        os.environ.setdefault(key, value)


def dashboard_engine(store: object, embedder: object) -> object:
    """A TiMem for driving the dashboard's pages: the configured local model is attached (the dashboard needs one)
    but only started if a page asks it something."""
    from timemory import Settings, TiMem
    from timemory.wiring import build_llm

    settings = Settings(_env_file=None, openai_api_key=None, openai_base_url=None)  # type: ignore[call-arg]
    return TiMem(store, embedder, build_llm(settings))  # type: ignore[arg-type]


@dataclass
class Stats:
    n: int
    p50: float
    p95: float
    p99: float
    mean: float

    @classmethod
    def of(cls, seconds: list[float]) -> Stats:
        ms = sorted(s * 1000 for s in seconds)
        q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
        return cls(n=len(ms), p50=statistics.median(ms), p95=q[94], p99=q[98], mean=statistics.fmean(ms))

    def row(self) -> str:
        return f"{self.p50:.2f} | {self.p95:.2f} | {self.p99:.2f}"


def timed(fn: Callable[[], object], repeat: int, warmup: int = 2) -> Stats:
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return Stats.of(seconds)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    out: list[float] = []
    started = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - started)


def machine() -> dict[str, str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    versions = []
    for pkg in ("numpy", "SQLAlchemy", "sentence-transformers", "torch", "llama_cpp_python", "streamlit",
                "umap-learn", "mem0ai", "qdrant-client", "faiss-cpu"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{pkg} {metadata.version(pkg)}")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": ", ".join(versions),
        "threads": "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1",
    }


def save(section: str, data: dict[str, object]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{section}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=str))
    return path


def load(section: str) -> dict[str, object] | None:
    path = RESULTS / f"{section}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rss_mb(pid: int | None = None, children: bool = False) -> float:
    import psutil

    proc = psutil.Process(pid)
    procs = [proc, *(proc.children(recursive=True) if children else [])]
    return sum(p.memory_info().rss for p in procs) / 2**20
