"""Server-side time to build dashboard pages (Streamlit AppTest runs the real page scripts in-process)."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from .common import ROOT, dashboard_engine, pin_threads, stopwatch
from .corpus import embedded, load_into


def _run(at) -> float:  # type: ignore[no-untyped-def]
    with stopwatch() as t:
        at.run()
    if at.exception:
        raise RuntimeError(str(at.exception))
    return t[0]


def _app(user: str, page: str):  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=900)
    at.session_state["user_id"] = user
    at.run()
    at.switch_page(page)
    return at


def measure(browser_size: int = 10_000, map_sizes: tuple[int, ...] = (1_000, 5_000, 20_000),
            warm_umap: bool = True) -> dict[str, Any]:
    pin_threads()
    from dashboard import adapter, state
    from timemory.lab import umap_2d
    from timemory.providers import LocalEmbedder
    from timemory.store import Store

    embedder = LocalEmbedder()
    texts, vectors = embedded(max(browser_size, *map_sizes), embedder)
    folder = tempfile.mkdtemp(prefix="bench-dashboard-")
    store = Store.from_url(f"sqlite:///{folder}/d.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    tm = dashboard_engine(store, embedder)
    adapter.override(memory=tm, info={"database": "SQLite", "llm": "none", "embedder": embedder.name})
    out: dict[str, Any] = {"browser": {}, "map": {}}
    try:
        print(f"  dashboard: memory browser with {browser_size:,} memories", flush=True)
        load_into(store, "browser", texts[:browser_size], vectors[:browser_size])
        at = _app("browser", "pages/memories.py")
        out["browser"] = {"n": browser_size, "first_s": _run(at), "rerun_s": _run(at)}
        at.text_input(key=state.Q_TEXT).set_value("Lisbon")
        out["browser"]["filter_s"] = _run(at)
        at.text_input(key=state.Q_TEXT).set_value("")
        at.text_input(key=state.MEMORY_QUERY).set_value("Where does the user live?")
        out["browser"]["search_s"] = _run(at)

        with stopwatch() as jit:  # the first UMAPs in a process compile numba code: exact neighbours for small
            if warm_umap:  # maps, nearest-neighbour descent above 4,096 points
                umap_2d(vectors[:200])
                umap_2d(vectors[:4_500])
        out["umap_first_call_s"] = jit[0]
        for n in map_sizes:
            print(f"  dashboard: embedding map with {n:,} points", flush=True)
            user = f"map-{n}"
            load_into(store, user, texts[:n], vectors[:n])
            at = _app(user, "pages/embedding_map.py")
            row = {"pca_first_s": _run(at), "pca_cached_s": _run(at)}
            at.radio(key=state.MAP_METHOD).set_value("UMAP")
            row["umap_first_s"] = _run(at)
            row["umap_cached_s"] = _run(at)
            out["map"][str(n)] = row
    finally:
        adapter.override()
    return out


if __name__ == "__main__":
    import json

    started = time.perf_counter()
    print(json.dumps(measure(10_000, (1_000, 5_000)), indent=2))
    print(f"{time.perf_counter() - started:.0f} s")
