"""Lab: replay a dataset in the background, watch it, stop and resume it; compare experiments side by side."""

import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import adapter, router, state
from timemory import Experiment, Settings, TiMemoryError
from timemory.lab import ATTRIBUTION_K, ATTRIBUTIONS, FORMATS, Granularity, attribute, configuration, load_dataset

router.ensure_router()
tm = adapter.memory()
SCOPES = {"memories": "memories (facts)", "all": "facts + what was said", "episodes": "what was said"}
jobs = adapter.replay_jobs()
folder = adapter.datasets_dir()

st.header("🧪 Lab")
st.caption("Replay a conversation dataset through the memory pipeline with its own dates, then score what memory "
           "kept: evidence recall@k and why each question was missed. Experiments run in the background; this page "
           "can be left and reopened.")

with st.expander("▶️ New replay", expanded=not adapter.experiments()):
    upload = st.file_uploader("Dataset file (JSON)", type=["json"], key="lab_upload")
    known = sorted(p.name for p in folder.glob("*.json")) if folder.exists() else []
    picked = st.selectbox("…or a file in data/datasets/", [None, *known], key="lab_file",
                          format_func=lambda n: "—" if n is None else n)
    c1, c2, c3 = st.columns(3)
    fmt = c1.selectbox("Format", FORMATS, index=1, key="lab_format")
    speaker = c2.selectbox("Speaker as the user (LoCoMo)", ["both", "a", "b"], key="lab_speaker")
    granularity = c3.radio("Run the pipeline per", ["exchange", "session"], horizontal=True, key="lab_granularity")
    c4, c5, c6 = st.columns(3)
    name = c4.text_input("Experiment name", max_chars=120, key="lab_name")
    limit = c5.number_input("Only the first N exchanges (0 = all)", 0, 1_000_000, 0, key="lab_limit")
    retry = c6.checkbox("Retry failed exchanges", key="lab_retry")
    summaries = c6.checkbox("Keep session summaries", key="lab_summaries",
                            help="Each session's rolling summary, updated as in a chat (every few turns, at a change "
                                 "of topic, at the session's end), dated with the session's date; searched with "
                                 "what was said.")
    reflect = c6.checkbox("Reflect after replay", key="lab_reflect",
                          help="Once replayed, review each user's memories for outdated ones and duplicates "
                               "(one LLM call per small group; shown as reflection runs on the Timeline).")
    scope = st.radio("Score questions by searching", list(SCOPES), format_func=SCOPES.get, horizontal=True,
                     key="lab_scope", help="Recall of every scope is recorded either way; this one is the "
                     "experiment's own recall and attribution. What was said: every replayed message, found by its "
                     "words and meaning and by the memories learnt from it.")
    with st.popover("Overrides for this run"):
        k = st.number_input("Similar memories per fact (k)", 1, 50, tm.similar_k, key="lab_k")
        threshold = st.slider("Similarity threshold", 0.0, 1.0, float(tm.similarity_threshold), 0.01,
                              key="lab_threshold")
    if st.button("Start replay", type="primary", key="lab_start"):
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip())[:60].strip("-")
        if not slug:
            st.error("Name the experiment (letters, digits, dots, dashes).")
        elif upload is None and picked is None:
            st.error("Upload a dataset file or pick one.")
        else:
            if upload is not None:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / Path(upload.name).name
                path.write_bytes(upload.getvalue())
            else:
                path = folder / str(picked)
            try:
                dataset = load_dataset(path, fmt, speaker=speaker)
                runner = tm.variant(similar_k=int(k), similarity_threshold=float(threshold))
                per: Granularity = "session" if granularity == "session" else "exchange"
                config = {**configuration(runner, granularity=per, base_url=Settings().openai_base_url, scope=scope),
                          "summaries": summaries}
                jobs.start(runner, dataset, experiment=slug, user_prefix=f"{slug}-", granularity=per,
                           limit=int(limit) or None, retry_failed=retry, reflect=reflect, config=config)
                adapter.experiments.clear()
                st.rerun()
            except TiMemoryError as exc:
                st.error(f"{exc} (code: {exc.code})")


@st.fragment(run_every=1.0 if any(j.running for j in jobs.all()) else None)
def progress() -> None:
    """Live progress of this server's replays (redrawn every second while one runs, and only then: a refresh
    would otherwise disturb the widgets a person is using above)."""
    running = jobs.all()
    if not running:
        return
    st.subheader("Replays")
    for job in running:
        with st.container(border=True):
            total = max(job.total, 1)
            eta = f", about {job.eta_seconds / 60:.1f} min left" if job.eta_seconds else ""
            rate = "measuring the rate" if job.rate_per_min is None else f"{job.rate_per_min:.1f}/min"
            st.progress(job.done / total, text=f"**{job.experiment}** · {job.status} · {job.done} of {job.total} "
                        f"{job.unit} · {rate}{eta} · {adapter.plural(job.failures, 'failure')}")
            if job.error:
                st.error(job.error)
            if job.running and st.button("⏹ Stop", key=f"stop-{job.experiment}"):
                job.stop()
            if job.status in ("stopped", "failed") and st.button("▶ Resume", key=f"resume-{job.experiment}"):
                try:
                    jobs.start(job.runner or tm, job.dataset, experiment=job.experiment, user_prefix=job.user_prefix,
                               granularity=job.granularity, limit=job.limit, retry_failed=job.retry_failed,
                               reflect=job.reflect, config=job.config or None)
                except TiMemoryError as exc:
                    st.error(str(exc))
                else:
                    st.rerun(scope="app")  # the progress starts refreshing again
    if st.session_state.get("lab_was_running") and not any(j.running for j in running):
        st.session_state["lab_was_running"] = False
        adapter.experiments.clear()
        adapter.after_user_write()
        st.rerun(scope="app")
    st.session_state["lab_was_running"] = any(j.running for j in running)


progress()

experiments = adapter.experiments()
if not experiments:
    st.info("No experiments yet: start a replay above.")
    st.stop()


def stale_columns(stale: dict | None) -> dict:
    """Questions about something that changed: latest statement found and stale memory returned, at the largest
    k, and a stale memory still active."""
    if not stale:
        return {}
    k = list(stale["latest_found_at"])[-1]
    return {f"update: latest @{k}": stale["latest_found_at"][k],
            f"update: stale returned @{k}": stale["stale_returned_at"][k],
            "update: stale active": stale["stale_active"]}


live = {j.experiment: j for j in jobs.all() if j.running}


def setup(e: Experiment, *, full: bool = False) -> dict:
    """What an experiment ran (``full``: with format, embedder and search mode, for the inspect view)."""
    c = e.counts or {}
    job = live.get(e.name)  # a replay still running: its counts are recorded when it ends
    more = {"format": e.dataset_format, "embedder": e.config.get("embedder"),
            "mode": e.config.get("search_mode"),
            "scored in": (e.metrics or {}).get("search_scope", e.config.get("search_scope"))} if full else {}
    return {"name": e.name, "status": e.status, "dataset": Path(e.dataset_path).name, **more,
            "model": e.config.get("llm_model"), "per": e.config.get("granularity"),
            "exchanges": job.done if job else c.get("exchanges"),
            "failed": job.failures if job else c.get("failed"), "LLM calls": c.get("llm_calls"),
            "tokens": (c.get("prompt_tokens") or 0) + (c.get("completion_tokens") or 0),
            "minutes": round(e.wall_seconds / 60, 1)}


def attribution_at(questions: list[dict], k: int) -> dict[str, int]:
    """Questions by why they were missed at ``k``, counted from the stored questions (nothing when the experiment
    did not score that k: an attribution at another k would be mislabelled)."""
    if not questions or str(k) not in questions[0].get("hit_at", {}) or "evidence_learnt" not in questions[0]:
        return {}
    kinds = [attribute(q, k) for q in questions]
    return {a: kinds.count(a) for a in ATTRIBUTIONS}


def recall(e: Experiment) -> dict:
    m = e.metrics or {}
    distractors = m.get("distractors", {})
    by_scope = m.get("recall_by_scope", {})
    return {"name": e.name, "questions": m.get("scored_questions"), "scored in": m.get("search_scope", "memories"),
            **{f"recall@{key}": v for key, v in m.get("recall_at", {}).items()},
            **{f"facts only @{key}": v for key, v in by_scope.get("memories", {}).items()},
            **{f"facts + said @{key}": v for key, v in by_scope.get("all", {}).items()},
            **{f"session hit@{key}": v for key, v in m.get("session_hit_at", {}).items() if v},
            "others (median)": distractors.get("median"), "others (fewest)": distractors.get("min")}


def misses(e: Experiment, k: int) -> dict:
    m = e.metrics or {}
    return {"name": e.name,
            **{f"{a.replace('_', ' ')} @{k}": n for a, n in attribution_at(m.get("questions", []), k).items()},
            **stale_columns(m.get("stale"))}


def results(e: Experiment, k: int) -> dict:
    return {**recall(e), **misses(e, k)}


scored_ks = sorted({int(key) for e in experiments for key in (e.metrics or {}).get("recall_at", {})}) or [
    ATTRIBUTION_K]
k_at = st.select_slider("Count a question as found in the top k, for k =", scored_ks, key="lab_attribution_k",
                        value=ATTRIBUTION_K if ATTRIBUTION_K in scored_ks else scored_ks[-1],
                        help="Misses are attributed at this k: found (hit), found only through the evidence message "
                             "itself when nothing was learnt from it (extraction miss recovered), found only through "
                             "a memory linked to the whole session (session hit, not counted in recall), learnt but "
                             "ranked lower (retrieval miss), or never learnt (extraction miss).")

st.subheader("Experiments")
st.dataframe(pd.DataFrame([setup(e) for e in experiments]), hide_index=True, width="stretch")
st.caption("Evidence recall@k in the scope each experiment was scored in, then the same questions searched in the "
           "memories only (facts only) and in the memories and every replayed message (facts + said: a message "
           "counts when it is an evidence turn). \"Others\" are the memories each question was searched among that "
           "were not learnt from its evidence: finding it among 3 says little.")
st.dataframe(pd.DataFrame([recall(e) for e in experiments]), hide_index=True, width="stretch")
st.caption(f"Why questions were missed at k = {k_at}, and questions about something that changed.")
st.dataframe(pd.DataFrame([misses(e, k_at) for e in experiments]), hide_index=True, width="stretch")

st.subheader("Inspect and compare")
names = [e.name for e in experiments]
chosen = st.multiselect("Experiments to inspect (one) or compare (two or more)", names, default=names[-2:],
                        key="lab_compare")
picked_exps = [e for e in experiments if e.name in chosen]
if not picked_exps:
    st.caption("Pick one experiment to inspect, or two or more to compare.")
    st.stop()
table = pd.DataFrame([{**setup(e, full=True), **results(e, k_at)} for e in picked_exps]).set_index("name").T
numeric = table.apply(pd.to_numeric, errors="coerce")
base = picked_exps[0].name
for e in picked_exps[1:]:
    table[f"{e.name} − {base}"] = (numeric[e.name] - numeric[base]).round(4)
st.dataframe(table.astype(str), width="stretch")

recall_fig = go.Figure()
for e in picked_exps:
    at_k = (e.metrics or {}).get("recall_at", {})
    recall_fig.add_trace(go.Bar(x=[f"recall@{k}" for k in at_k], y=list(at_k.values()), name=e.name))
recall_fig.update_layout(barmode="group", height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         title="Evidence recall@k", yaxis={"range": [0, 1]})
st.plotly_chart(recall_fig, key="lab_recall")

scope_fig = go.Figure()
for e in picked_exps:
    by_scope = (e.metrics or {}).get("recall_by_scope", {})
    for scope_name, label in (("memories", "facts only"), ("all", "facts + what was said")):
        at_k = by_scope.get(scope_name, {})
        scope_fig.add_trace(go.Bar(x=[f"recall@{k}" for k in at_k], y=list(at_k.values()), name=f"{e.name}: {label}"))
if scope_fig.data:
    scope_fig.update_layout(barmode="group", height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                            title="The same replay: facts only against facts + what was said", yaxis={"range": [0, 1]})
    st.plotly_chart(scope_fig, key="lab_scope_compare")

attribution_fig = go.Figure()
for e in picked_exps:
    asked = (e.metrics or {}).get("questions", [])
    by_category = {c: attribution_at([q for q in asked if str(q["category"]) == c], k_at)
                   for c in sorted({str(q["category"]) for q in asked})}
    for kind, colour in (("hit", "#2e7d32"), ("extraction_miss_recovered", "#66bb6a"), ("session_hit", "#90a4ae"),
                         ("retrieval_miss", "#f9a825"), ("extraction_miss", "#c62828")):
        attribution_fig.add_trace(go.Bar(
            x=[[e.name] * len(by_category), [f"cat {c}" for c in by_category]],
            y=[v.get(kind, 0) for v in by_category.values()],
            name=kind.replace("_", " "), marker_color=colour, legendgroup=kind, showlegend=e is picked_exps[0]))
attribution_fig.update_layout(barmode="stack", height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                              title=f"Why questions were missed at k = {k_at}, per category")
st.plotly_chart(attribution_fig, key="lab_attribution")

questions = {q["id"]: q for e in picked_exps for q in (e.metrics or {}).get("questions", [])}
if questions:
    qid = st.selectbox("One question: what each experiment retrieved", list(questions), key=state.LAB_QUESTION,
                       format_func=lambda i: f"{questions[i]['question']} (category {questions[i]['category']})")
    st.caption(f"Answer: {questions[qid]['answer']} · evidence: {', '.join(questions[qid]['evidence'])}")
    cols = st.columns(len(picked_exps))
    for col, e in zip(cols, picked_exps, strict=True):
        mine = next((q for q in (e.metrics or {}).get("questions", []) if q["id"] == qid), None)
        why = attribute(mine, k_at) if mine and "evidence_learnt" in mine and str(k_at) in mine["hit_at"] else None
        col.markdown(f"**{e.name}** · {why.replace('_', ' ') + f' at k = {k_at}' if why else 'not scored at this k'}")
        for rank, r in enumerate((mine or {}).get("retrieved", []), 1):
            mark = "✅" if r["evidence_hit"] else "🟦" if r.get("session_hit") else "·"
            said = "💬 " if r.get("kind") == "episode" else ""
            col.text(f"{rank:>2}. {mark} {r['score']:.2f}  {said}{r['content']}")
        if mine and any(r.get("session_hit") for r in mine.get("retrieved", [])):
            col.caption("🟦 linked to the evidence's session only (the model cited no turn): not counted as found.")
