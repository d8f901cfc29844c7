"""Retrieval quality on the labelled set (``bench/data/retrieval_set.json``): recall@1/5/10 and MRR per search mode,
through ``TiMem.search`` on a fresh SQLite store, and the contradiction recall of the pipeline's candidate search.

``python -m bench.quality`` prints the table; ``python -m bench.quality --tune`` also re-runs the study that chose
the fusion's calibration and weight (scores computed once per question, every choice ranked offline)."""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from .common import pin_threads, save
from .retrieval_set import load

MODES = ("vector", "keyword", "hybrid")
KS = (1, 5, 10)
CANDIDATE_K = 5  # the pipeline's similar_k


def recall_and_mrr(ranked: list[list[str]], relevant: list[list[str]]) -> dict[str, float]:
    """Recall@k = share of a question's answering memories in the top k, averaged; MRR of the first answer."""
    out: dict[str, float] = {}
    for k in KS:
        out[f"recall@{k}"] = statistics.fmean(
            len(set(r[:k]) & set(rel)) / len(rel) for r, rel in zip(ranked, relevant, strict=True))
    out["mrr"] = statistics.fmean(
        next((1.0 / (i + 1) for i, mid in enumerate(r) if mid in rel), 0.0) for r, rel in zip(ranked, relevant,
                                                                                              strict=True))
    return out


def loaded_engine(data: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A TiMem over a new SQLite file holding the set's memories with their ids, times and statuses."""
    from timemory import Memory, TiMem
    from timemory.providers import LocalEmbedder
    from timemory.store import Store

    embedder = LocalEmbedder()
    folder = tempfile.mkdtemp(prefix="bench-quality-")
    store = Store.from_url(f"sqlite:///{folder}/q.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    tm = TiMem(store, embedder)
    by_user: dict[str, list[dict[str, Any]]] = {}
    for m in data["memories"]:
        by_user.setdefault(m["user_id"], []).append(m)
    for user, rows in by_user.items():
        items = []
        for m in rows:
            when = datetime.fromisoformat(m["created_at"])
            items.append((Memory(id=m["id"], user_id=user, content=m["content"], type=m["type"], status=m["status"],
                                 created_at=when, updated_at=when), None))
        tm.import_memories(items, user_id=user)
    return tm


def by_mode(tm, data: dict[str, Any]) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    out: dict[str, dict[str, Any]] = {}
    queries = data["queries"]
    relevant = [q["relevant"] for q in queries]
    for mode in MODES:
        ranked = [[h.memory.id for h in tm.search(q["query"], user_id=q["user_id"], limit=max(KS), mode=mode,
                                                   statuses=q["statuses"])] for q in queries]
        kinds: dict[str, dict[str, float]] = {}
        for kind in sorted({q["kind"] for q in queries}):
            idx = [i for i, q in enumerate(queries) if q["kind"] == kind]
            kinds[kind] = recall_and_mrr([ranked[i] for i in idx], [relevant[i] for i in idx])
        contradictions = data["contradictions"]
        found = [[h.memory.id for h in tm.search(c["fact"], user_id=c["user_id"], limit=CANDIDATE_K, mode=mode,
                                                  statuses=["active", "outdated"])] for c in contradictions]
        out[mode] = {"all": recall_and_mrr(ranked, relevant), "kinds": kinds,
                     "contradiction_recall": statistics.fmean(
                         len(set(f) & set(c["contradicts"])) / len(c["contradicts"])
                         for f, c in zip(found, contradictions, strict=True))}
    return out


# ---------------------------------------------------------------------- the calibration study
Calibrate = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _z(x: np.ndarray, pool: np.ndarray) -> np.ndarray:
    sd = float(pool.std()) if len(pool) > 1 else 0.0
    return (x - float(pool.mean())) / (sd if sd > 1e-6 else 1.0)


def z_all(v: np.ndarray, k: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-scores over every allowed memory of the user."""
    return _z(v, v[allowed]), _z(k, k[allowed])


def z_pool(v: np.ndarray, k: np.ndarray, allowed: np.ndarray, c: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """z-scores over each signal's own top ``c`` (keyword: matching memories only)."""
    vv, kk = v[allowed], k[allowed]
    top_v = np.sort(vv)[-c:]
    matched = np.sort(kk[kk > 0])[-c:]
    return _z(v, top_v), (_z(k, matched) if len(matched) else np.zeros_like(k))


def bounded(v: np.ndarray, k: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine as it is; BM25 divided by the best score any memory got for this question (0..1)."""
    top = float(k[allowed].max()) if allowed.any() else 0.0
    return v, (k / top if top > 0 else np.zeros_like(k))


CALIBRATIONS: dict[str, Calibrate] = {"z over all memories": z_all, "z over each top 50": z_pool,
                                      "cosine + BM25 / best BM25": bounded}


def rrf(v: np.ndarray, k: np.ndarray, allowed: np.ndarray, c: int = 60) -> np.ndarray:
    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(-np.where(allowed, x, -np.inf), kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(1, len(x) + 1)
        return r
    kw = np.where(k > 0, 1.0 / (c + ranks(k)), 0.0)
    return 1.0 / (c + ranks(v)) + kw


def tune(tm, data: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Every calibration × weight on the even personas (tuning half), reported on the odd ones (held out)."""
    signals = []
    for q in data["queries"]:
        hits = tm.search(q["query"], user_id=q["user_id"], limit=10_000, mode="hybrid", statuses=q["statuses"])
        ids = [h.memory.id for h in hits]
        v = np.array([h.scores.vector for h in hits])
        k = np.array([h.scores.keyword for h in hits])
        signals.append((ids, v, k, q))

    def evaluate(score: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], half: int) -> dict[str, float]:
        ranked, relevant = [], []
        for ids, v, k, q in signals:
            if int(q["user_id"][-2:]) % 2 != half:
                continue
            s = score(v, k, np.ones(len(v), bool))
            order = np.argsort(-s, kind="stable")[:10]
            ranked.append([ids[i] for i in order])
            relevant.append(q["relevant"])
        return recall_and_mrr(ranked, relevant)

    weights = [round(w, 2) for w in np.arange(0.0, 1.0001, 0.05)]
    study: dict[str, Any] = {}
    def fused(w: float, cal: Calibrate) -> Callable[..., np.ndarray]:
        def score(v: np.ndarray, k: np.ndarray, a: np.ndarray) -> np.ndarray:
            zv, zk = cal(v, k, a)
            return (1 - w) * zv + w * zk
        return score

    for name, calibrate in CALIBRATIONS.items():
        tuning = {w: evaluate(fused(w, calibrate), 0)["mrr"] for w in weights}
        best = max(tuning, key=lambda w: (tuning[w], -abs(w - 0.5)))
        study[name] = {"keyword_weight": best, "tuning_mrr": tuning[best],
                       "held_out": evaluate(fused(best, calibrate), 1), "curve": tuning}
    study["reciprocal rank fusion (k=60)"] = {"keyword_weight": None, "tuning_mrr": evaluate(rrf, 0)["mrr"],
                                              "held_out": evaluate(rrf, 1)}
    only = fused(0.0, bounded)
    study["vector only"] = {"keyword_weight": None, "tuning_mrr": evaluate(only, 0)["mrr"],
                            "held_out": evaluate(only, 1)}
    return study


def measure(tune_weights: bool = True, personas: int | None = None) -> dict[str, Any]:
    """``personas`` keeps only the first few personas' memories, questions and contradictions."""
    pin_threads()
    data = load()
    if personas is not None:
        kept = sorted({m["user_id"] for m in data["memories"]})[:personas]
        data = {**data, **{part: [x for x in data[part] if x["user_id"] in kept]
                           for part in ("memories", "queries", "contradictions")}}
    tm = loaded_engine(data)
    result: dict[str, Any] = {"memories": len(data["memories"]), "queries": len(data["queries"]),
                              "users": len({m["user_id"] for m in data["memories"]}),
                              "contradictions": len(data["contradictions"]), "modes": by_mode(tm, data)}
    if tune_weights:
        result["tuning"] = tune(tm, data)
    tm.close()
    return result


def section(q: dict[str, Any]) -> list[str]:
    modes = q["modes"]
    kinds = sorted(next(iter(modes.values()))["kinds"])
    out = ["## 8. Search quality: hybrid, vector and keyword on a labelled set", "",
           f"Measured on {q['machine']['date']}: {q['machine']['machine']}. The labelled set "
           f"`bench/data/retrieval_set.json` (made by `bench/retrieval_set.py`): {q['memories']:,} memories of "
           f"{q['users']} personas (home, work, "
           "family, health, tastes, plans — some outdated by what replaced them — and a diary of dated activities "
           f"with the same people and places), {q['queries']} questions with the ids of the memories that answer "
           f"them, and {q['contradictions']} new facts with the memory each contradicts. Recall@k = share of a "
           "question's answering memories in the top k; MRR = mean reciprocal rank of the first one.", "",
           "| mode | recall@1 | recall@5 | recall@10 | MRR | contradiction found in the top 5 |",
           "|---|---:|---:|---:|---:|---:|"]
    for mode, r in modes.items():
        a = r["all"]
        out.append(f"| {mode} | {a['recall@1']:.3f} | {a['recall@5']:.3f} | {a['recall@10']:.3f} | {a['mrr']:.3f} | "
                   f"{r['contradiction_recall']:.3f} |")
    out += ["", "Recall@5 by kind of question:", "", "| mode | " + " | ".join(kinds) + " |",
            "|---|" + "---:|" * len(kinds)]
    for mode, r in modes.items():
        out.append(f"| {mode} | " + " | ".join(f"{r['kinds'][k]['recall@5']:.2f}" for k in kinds) + " |")
    if "tuning" in q:
        out += ["", "**How the fusion was chosen.** Each question's cosine and BM25 scores for every memory were "
                "computed once; every calibration × keyword weight (0 to 1 in steps of 0.05) was ranked on the even "
                "personas (tuning half) by MRR, and the best weight is reported on the odd ones (held out).", "",
                "| fusion | keyword weight | tuning MRR | held-out recall@1 | held-out recall@10 | held-out MRR |",
                "|---|---:|---:|---:|---:|---:|"]
        for name, t in q["tuning"].items():
            h = t["held_out"]
            w = "—" if t["keyword_weight"] is None else f"{t['keyword_weight']:.2f}"
            out.append(f"| {name} | {w} | {t['tuning_mrr']:.3f} | {h['recall@1']:.3f} | {h['recall@10']:.3f} | "
                       f"{h['mrr']:.3f} |")
        curve = q["tuning"].get("cosine + BM25 / best BM25", {}).get("curve")
        if curve:
            out += ["", "Tuning MRR of the chosen calibration by keyword weight: " + ", ".join(
                f"{float(w):.2f} → {v:.3f}" for w, v in curve.items() if round(float(w) * 20) % 2 == 0) + "."]
    return [*out, ""]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tune", action="store_true")
    args = parser.parse_args()
    result = measure(tune_weights=args.tune)
    save("quality", result)
    for mode, r in result["modes"].items():
        a = r["all"]
        print(f"{mode:>8}  R@1 {a['recall@1']:.3f}  R@5 {a['recall@5']:.3f}  R@10 {a['recall@10']:.3f}  "
              f"MRR {a['mrr']:.3f}  contradictions@{CANDIDATE_K} {r['contradiction_recall']:.3f}")
    for name, t in result.get("tuning", {}).items():
        h = t["held_out"]
        print(f"{name:>32}  w_keyword {t['keyword_weight']}  tuning MRR {t['tuning_mrr']:.3f}  held out: "
              f"R@1 {h['recall@1']:.3f} R@10 {h['recall@10']:.3f} MRR {h['mrr']:.3f}")


if __name__ == "__main__":
    main()
