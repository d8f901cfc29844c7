"""Every benchmark section still runs against the product as it is: tiny sizes, no timing judged, the report left
alone. A renamed widget, a moved module or a changed signature fails here instead of in the next `make bench`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("search", "quality", "changes", "topics", "scale", "pipeline", "app_memory", "dashboard", "lab", "service",
            "locomo", "statements")

pytestmark = [pytest.mark.local_llm, pytest.mark.browser]


def test_every_benchmark_section_runs_and_renders_on_tiny_sizes() -> None:
    report = ROOT / "docs" / "benchmarks.md"
    before = report.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TIDB_", "TIMEMORY_"))}
    env.update(MEM0_TELEMETRY="False", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("smoke: ")]
    assert ran == list(SECTIONS), proc.stdout[-3000:]
    assert report.read_bytes() == before  # nothing published from a smoke run
