"""``python -m bench [--quick | --smoke]``: run the benchmarks and write docs/benchmarks.md (``--quick``: a 1-minute
subset that prints its figures and leaves the report alone; ``--smoke``: every section's code path on tiny sizes,
its report section rendered and nothing written, which ``make test`` runs so that a change in the product that
breaks a benchmark fails CI)."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from .common import REPORT, load, machine, pin_threads, save


def pipeline_section(p: dict[str, Any]) -> list[str]:
    def avg(rows: list[dict[str, Any]], key: str) -> str:
        return f"{statistics.fmean(r.get(key) or 0 for r in rows):.1f}"

    lm = p["local_model"]
    t, m = p["timemory"], p["mem0"]
    out = ["## 2. Pipeline cost per exchange", "",
           f"{len(t)} four-turn exchanges (user, assistant, user, assistant) from one user, processed in order, both "
           "systems pointed at the same local llama.cpp server (SmolLM2-135M-Instruct) through a counting proxy. "
           "Figures are means per exchange.", "",
           "| system | LLM calls | prompt tokens | completion tokens | embedding calls | seconds | memories after |",
           "|---|---:|---:|---:|---:|---:|---:|",
           f"| TiMemory `process_messages` | {avg(t, 'llm_calls')} | {avg(t, 'prompt_tokens')} | "
           f"{avg(t, 'completion_tokens')} | {avg(t, 'embedding_calls')} | {avg(t, 'seconds')} | {t[-1]['memories']} |",
           f"| mem0 `add(infer=True)` | {avg(m, 'llm_calls')} | {avg(m, 'prompt_tokens')} | "
           f"{avg(m, 'completion_tokens')} | {avg(m, 'embedding_calls')} | {avg(m, 'seconds')} | {m[-1]['memories']} |",
           ""]
    rejected = [r for r in m if r.get("rejected_calls")]
    if rejected:
        size = statistics.fmean(r["rejected_prompt_tokens"] / r["rejected_calls"] for r in rejected)
        out += [f"mem0's extraction request was refused by the server in {len(rejected)} of {len(m)} exchanges: "
                f"its prompt is {size:,.0f} tokens (the server counted them) and it asks for 2,000 completion tokens, "
                "more than SmolLM2's 8,192-token context, which the local server runs with. So mem0 cannot run "
                "its pipeline on this model at all; its token figure above counts only "
                "answered requests. TiMemory's two prompts together stay under 1,500 tokens.", ""]
    secs = sorted(r["seconds"] for r in t)
    out += ["**Local model** (llama.cpp, SmolLM2-135M-Instruct, portable build):", "",
            f"- cold start to first token (start the server process, load the model, first streamed token): "
            f"{lm['cold_start_to_first_token_s']:.1f} s",
            f"- generation: {lm['tokens_per_s']:.0f} tokens/s (median of 3 answers of up to 200 tokens)",
            f"- `process_messages` on a four-turn exchange: median {statistics.median(secs):.1f} s "
            f"(min {secs[0]:.1f}, max {secs[-1]:.1f})", ""]
    return out


def app_section(a: dict[str, Any]) -> list[str]:
    parts = ", ".join(f"{k} {v:.0f} MB" for k, v in a["rss_mb"].items())
    return ["## 3. Memory of the running app", "",
            f"`streamlit run` with the local defaults, after one chat turn (reply streamed, memory processed): "
            f"**{a['total_mb']:.0f} MB** RSS in total ({parts}). Goal ≤ 1,536 MB.", ""]


def dashboard_section(d: dict[str, Any]) -> list[str]:
    b = d["browser"]
    out = ["## 4. Dashboard, server side", "",
           "Streamlit's AppTest runs the real page scripts in-process; the times are one script run each.", "",
           f"Memory browser with {b['n']:,} memories for one user: first open {b['first_s']:.2f} s, rerun (cached "
           f"reads) {b['rerun_s']:.2f} s, a text filter {b['filter_s']:.2f} s, a semantic search "
           f"{b['search_s']:.2f} s.", "",
           f"Embedding map. The first UMAPs in a process compile numba code (for small maps and for the "
           f"nearest-neighbour descent used above 4,096 points): {d['umap_first_call_s']:.1f} s, paid once per server "
           "process — the page shows PCA meanwhile — and not included below:", "",
           "| points | PCA, first | PCA, cached | UMAP, first | UMAP, cached |", "|---:|---:|---:|---:|---:|"]
    for n, r in d["map"].items():
        out.append(f"| {int(n):,} | {r['pca_first_s']:.2f} s | {r['pca_cached_s']:.2f} s | "
                   f"{r['umap_first_s']:.2f} s | {r['umap_cached_s']:.2f} s |")
    return out + [""]


SCALING = """## 5. Where the embedded default stops, and what TiDB changes

Measured above: the embedded default ranks a user's memories in memory, so retrieval grows with the number of
memories **per user** (the other users' memories cost nothing) and holds about 2 KB of RAM per cached memory (the
vector and its share of the keyword index, §11). Below 50,000 memories a user is scanned exactly; from there an HNSW
graph picks candidates that are scored exactly (§1). What a process holds is bounded by `TIMEMORY_CACHE_MB`; §11
measures many users on one database, and [docs/scaling.md](scaling.md) turns these figures into an operator's guide:
when to move from SQLite to a server, and what TiDB and its HNSW index change (TiDB cannot run on this machine, so
its statements are measured on the SQLite build, as a cost shape).
"""


# Sections measured on their own (``--only NAME``) replace their part of the report and keep the rest.
HEADINGS = {"search": "## 1. Search latency", "lab": "## 6. The lab", "service": "## 7. The service",
            "quality": "## 8. Search quality", "changes": "## 9. Changes that reach consolidation",
            "topics": "## 10. Topic changes", "scale": "## 11. Many users",
            "locomo": "## 12. Retrieval on LoCoMo", "statements": "## 13. Learning from plain statements"}
SCALING_HEADING = "## 5. Where the embedded default stops"


def section_of(name: str) -> list[str] | None:
    """The report section of a benchmark measured on its own (``lab``, ``service``), from its saved results."""
    data = load(name)
    if data is None:
        return None
    from importlib import import_module

    return import_module(f"bench.{name}").section(data)  # type: ignore[no-any-return]


def write_section_only(name: str) -> None:
    """Replace (or add, before the scaling notes) one section of the existing report, keeping the others."""
    lines = section_of(name)
    if lines is None:
        return
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    head, found, tail = text.partition(HEADINGS[name])
    rest = tail[tail.find("\n## ") + 1:] if "\n## " in tail else ""
    if not found and (at := head.find(SCALING_HEADING)) != -1:
        head, rest = head[:at], head[at:]
    REPORT.write_text(head + "\n".join(lines) + "\n" + rest)
    print(f"updated the {name} section of {REPORT}")


def write_report() -> None:
    search, pipeline, app, dash = load("search"), load("pipeline"), load("app_memory"), load("dashboard")
    info = machine()
    lines = ["# Benchmarks", "",
             f"Measured on {info['date']}: {info['machine']}; Python {info['python']}; {info['threads']} for every "
             f"figure. Versions: {info['versions']}.", "",
             "Reproduce with `make bench` (about 7 minutes on 2 cores once the 100k-sentence corpus is embedded; the "
             "first run embeds and caches it, about 5 minutes more; it sets up `.venv` and the peers from "
             "`requirements-bench.txt`). `make bench-quick` runs a one-minute subset and only prints. Raw results are "
             "written to `data/bench/*.json`. Each figure is a median or percentile over repeated runs on a noisy "
             "2-core box; compare ratios measured side by side in one run rather than absolute numbers.", ""]
    if search:
        lines += section_of("search") or []
    if pipeline:
        lines += pipeline_section(pipeline)  # type: ignore[arg-type]
    if app:
        lines += app_section(app)  # type: ignore[arg-type]
    if dash:
        lines += dashboard_section(dash)  # type: ignore[arg-type]
    for name in ("lab", "service", "quality", "changes", "topics", "scale", "locomo", "statements"):
        lines += section_of(name) or []
    lines.append(SCALING)
    REPORT.write_text("\n".join(lines))
    print(f"wrote {REPORT}")


def smoke(only: set[str] | None = None) -> dict[str, list[str]]:
    """Every section on tiny sizes, each rendered as its report section (returned, not written). Nothing here is a
    figure to publish: the point is that each benchmark still runs against the product as it is now."""
    import tempfile
    from pathlib import Path

    from . import (
        app_memory,
        changes,
        dashboard,
        lab,
        locomo,
        pipeline,
        quality,
        scale,
        search,
        service,
        statements,
        topics,
    )

    info = {"machine": machine()}
    tiny = locomo.tiny_file(Path(tempfile.mkdtemp(prefix="bench-smoke-locomo-")))
    runs: dict[str, Callable[[], list[str]]] = {
        "search": lambda: search_section(info, search.measure([200], ["timemory", "faiss", "mem0"])),
        "quality": lambda: quality.section({**info, **quality.measure(tune_weights=False, personas=2)}),
        "changes": lambda: changes.section(changes.measure(pairs=3, distractors=30)),
        "topics": lambda: topics.section({**info, **topics.measure(windows=(3,))}),
        "scale": lambda: scale.section({**info, **scale.measure({"users": 40, "large": 0, "seed": 1}, operations=60,
                                                                sample=5)}),
        "pipeline": lambda: pipeline_section(pipeline.measure(exchanges=1, answers=1)),
        "app_memory": lambda: app_section(app_memory.measure()),
        "dashboard": lambda: dashboard_section(dashboard.measure(50, (10,), warm_umap=False)),
        "lab": lambda: lab.section({**info, **lab.measure(memories=60, events=120, sessions=1, questions=20,
                                                          repeat=1)}),
        "service": lambda: service.section({**info, **service.measure(memories=100, clients=(2,), per_client=3,
                                                                      rounds=1, flood_seconds=1)}),
        "locomo": lambda: locomo.section(locomo.measure(tiny, tuned_on=("conv-tiny",)))
        + locomo.section(locomo.measure(Path(tiny.parent / "absent.json"))),
        "statements": lambda: statements.section(statements.measure(statements=1)),
    }
    rendered = {}
    for name, run in runs.items():
        if only is None or name in only:
            started = time.perf_counter()
            rendered[name] = run()
            print(f"smoke: {name} ran and rendered {len(rendered[name])} report lines in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    return rendered


def search_section(info: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The search section as the report draws it, from rows measured now (and their one-line summaries)."""
    from . import search

    search.summary(rows)
    return search.section({**info, "rows": rows})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="a one-minute subset; prints, does not write the report")
    parser.add_argument("--smoke", action="store_true",
                        help="every section on tiny sizes, rendered and checked, nothing written (make test runs it)")
    parser.add_argument("--only", choices=["search", "pipeline", "app_memory", "dashboard", "lab", "service",
                                           "quality", "changes", "topics", "scale", "locomo", "statements", "report"],
                        action="append")
    parser.add_argument("--locomo", metavar="PATH",
                        help="the LoCoMo file for --only locomo (else TIMEMORY_LOCOMO); skipped when there is none")
    args = parser.parse_args()
    pin_threads()
    started = time.perf_counter()
    from . import dashboard, pipeline, search

    if args.smoke:
        smoke(set(args.only) if args.only else None)
        print(f"smoke run done in {time.perf_counter() - started:.0f} s")
        return
    if args.quick:
        rows = search.measure([1_000], ["timemory", "faiss", "mem0"])
        search.summary(rows)
        d = dashboard.measure(1_000, (1_000,))
        print(f"memory browser, 1,000 memories: first {d['browser']['first_s']:.2f} s, "
              f"rerun {d['browser']['rerun_s']:.2f} s; map 1,000 points: {d['map']['1000']}")
        print(f"quick benchmark done in {time.perf_counter() - started:.0f} s")
        return
    only = set(args.only or ["search", "pipeline", "app_memory", "dashboard", "lab", "service", "quality",
                             "changes", "topics", "scale", "locomo"])
    if "search" in only:
        rows = search.measure([1_000, 10_000, 100_000], ["timemory", "timemory-exact", "faiss", "mem0"])
        search.summary(rows)
        save("search", {"rows": rows})
    if "quality" in only:
        from . import quality

        save("quality", quality.measure(tune_weights=True))
    if "changes" in only:
        from . import changes

        save("changes", changes.measure(model=True))
    if "topics" in only:
        from . import topics

        save("topics", {**topics.measure(), "machine": machine()})
    if "scale" in only:
        from . import scale

        save("scale", scale.measure())
    if "pipeline" in only:
        save("pipeline", pipeline.measure())
    if "app_memory" in only:
        from . import app_memory

        print("  app memory: streamlit + local models after a chat turn", flush=True)
        save("app_memory", app_memory.measure())
    if "dashboard" in only:
        save("dashboard", dashboard.measure())
    if "lab" in only:
        from . import lab

        save("lab", lab.measure())
    if "service" in only:
        from . import service

        save("service", service.measure())
    if "locomo" in only:
        from . import locomo

        found = locomo.locomo_file(args.locomo)
        if found is None:
            print("  locomo: skipped, no LoCoMo file (pass --locomo PATH or set TIMEMORY_LOCOMO)")
        else:
            print(f"  locomo: {found.name}", flush=True)
            save("locomo", locomo.measure(found))
    if "statements" in only:
        from . import statements

        print("  statements: each plain statement through the configured model", flush=True)
        save("statements", statements.measure())
    if only and only <= set(HEADINGS):
        for name in sorted(only):
            write_section_only(name)
    else:
        write_report()
    print(f"benchmark done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
