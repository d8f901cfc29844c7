"""Lab: replay a dataset in the background, watch it, stop and resume it; compare experiments side by side."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import adapter, lab_tables, router, state, ui
from dashboard.lab_jobs import ReplayRequest, Upload
from dashboard.lab_tables import (
    attribution_by_category,
    misses,
    recall,
    results,
    retrieved_lines,
    setup,
    why_missed,
)
from timemory import TiMemoryError
from timemory.lab import ATTRIBUTION_K, FORMATS

router.ensure_router()
SCOPES = {"memories": "memories (facts)", "all": "facts + what was said", "episodes": "what was said"}

st.header("🧪 Lab")
st.caption("Replay a conversation dataset through the memory pipeline with its own dates, then score what memory "
           "kept: evidence recall@k and why each question was missed. Experiments run in the background; this page "
           "can be left and reopened.")

with st.expander("▶️ New replay", expanded=not adapter.experiments()):
    upload = st.file_uploader("Dataset file (JSON)", type=["json"], key="lab_upload")
    known = adapter.known_datasets()
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
        k = st.number_input("Similar memories per fact (k)", 1, 50, adapter.similar_k(), key="lab_k")
        threshold = st.slider("Similarity threshold", 0.0, 1.0, float(adapter.similarity_threshold()), 0.01,
                              key="lab_threshold")
    if st.button("Start replay", type="primary", key="lab_start"):
        request = ReplayRequest(
            name=name, upload=Upload(upload.name, upload.getvalue()) if upload is not None else None, picked=picked,
            format=fmt, speaker=speaker, granularity=granularity, limit=int(limit), retry_failed=retry,
            summaries=summaries, reflect=reflect, scope=scope, similar_k=int(k), similarity_threshold=float(threshold))
        if problem := request.problem():
            st.error(problem)
        else:
            try:
                adapter.start_replay(request)
                st.rerun()
            except TiMemoryError as exc:
                st.error(f"{exc} (code: {exc.code})")


@st.fragment(run_every=1.0 if any(j.running for j in adapter.replays()) else None)
def progress() -> None:
    """Live progress of this server's replays (redrawn every second while one runs, and only then: a refresh
    would otherwise disturb the widgets a person is using above)."""
    running = adapter.replays()
    if not running:
        return
    st.subheader("Replays")
    for job in running:
        with st.container(border=True):
            total = max(job.total, 1)
            eta = f", about {job.eta_seconds / 60:.1f} min left" if job.eta_seconds else ""
            rate = "measuring the rate" if job.rate_per_min is None else f"{job.rate_per_min:.1f}/min"
            st.progress(job.done / total, text=f"**{job.experiment}** · {job.status} · {job.done} of {job.total} "
                        f"{job.unit} · {rate}{eta} · {ui.plural(job.failures, 'failure')}")
            if job.error:
                st.error(job.error)
            if job.running and st.button("⏹ Stop", key=f"stop-{job.experiment}"):
                adapter.stop_replay(job)
            if job.status in ("stopped", "failed") and st.button("▶ Resume", key=f"resume-{job.experiment}"):
                try:
                    adapter.resume_replay(job)
                except TiMemoryError as exc:
                    st.error(str(exc))
                else:
                    st.rerun(scope="app")  # the progress starts refreshing again
    if st.session_state.get("lab_was_running") and not any(j.running for j in running):
        st.session_state["lab_was_running"] = False
        adapter.replays_ended()
        st.rerun(scope="app")
    st.session_state["lab_was_running"] = any(j.running for j in running)


progress()

experiments = adapter.experiments()
if not experiments:
    st.info("No experiments yet: start a replay above.")
    st.stop()

live = {j.experiment: j for j in adapter.replays() if j.running}  # still running: their counts come from the job
scored = {e.name: lab_tables.evaluation(e) for e in experiments}  # each experiment's scores, read once
scored_ks = lab_tables.scored_ks(list(scored.values()))
k_at = st.select_slider("Count a question as found in the top k, for k =", scored_ks, key="lab_attribution_k",
                        value=ATTRIBUTION_K if ATTRIBUTION_K in scored_ks else scored_ks[-1],
                        help="Misses are attributed at this k: found (hit), found only through the evidence message "
                             "itself when nothing was learnt from it (extraction miss recovered), found only through "
                             "a memory linked to the whole session (session hit, not counted in recall), learnt but "
                             "ranked lower (retrieval miss), or never learnt (extraction miss).")

st.subheader("Experiments")
st.dataframe(pd.DataFrame([setup(e, live.get(e.name)) for e in experiments]), hide_index=True, width="stretch")
st.caption("Evidence recall@k in the scope each experiment was scored in, then the same questions searched in the "
           "memories only (facts only) and in the memories and every replayed message (facts + said: a message "
           "counts when it is an evidence turn). \"Others\" are the memories each question was searched among that "
           "were not learnt from its evidence: finding it among 3 says little.")
st.dataframe(pd.DataFrame([recall(e, scored[e.name]) for e in experiments]), hide_index=True, width="stretch")
st.caption(f"Why questions were missed at k = {k_at}, and questions about something that changed.")
st.dataframe(pd.DataFrame([misses(e, scored[e.name], k_at) for e in experiments]), hide_index=True, width="stretch")

st.subheader("Inspect and compare")
names = [e.name for e in experiments]
chosen = st.multiselect("Experiments to inspect (one) or compare (two or more)", names, default=names[-2:],
                        key="lab_compare")
picked_exps = [e for e in experiments if e.name in chosen]
if not picked_exps:
    st.caption("Pick one experiment to inspect, or two or more to compare.")
    st.stop()
table = pd.DataFrame([{**setup(e, live.get(e.name), full=True, scored=scored[e.name]),
                       **results(e, scored[e.name], k_at)} for e in picked_exps]).set_index("name").T
numeric = table.apply(pd.to_numeric, errors="coerce")
base = picked_exps[0].name
for e in picked_exps[1:]:
    table[f"{e.name} − {base}"] = (numeric[e.name] - numeric[base]).round(4)
st.dataframe(table.astype(str), width="stretch")

recall_fig = go.Figure()
picked_scores = [(e, r) for e in picked_exps if (r := scored[e.name]) is not None]  # those that were scored
for e, r in picked_scores:
    at_k = r.recall_at
    recall_fig.add_trace(go.Bar(x=[f"recall@{k}" for k in at_k], y=list(at_k.values()), name=e.name))
recall_fig.update_layout(barmode="group", height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         title="Evidence recall@k", yaxis={"range": [0, 1]})
st.plotly_chart(recall_fig, key="lab_recall")

scope_fig = go.Figure()
for e, r in picked_scores:
    for scope_name, label in (("memories", "facts only"), ("all", "facts + what was said")):
        at_k = r.recall_by_scope.get(scope_name, {})
        scope_fig.add_trace(go.Bar(x=[f"recall@{k}" for k in at_k], y=list(at_k.values()), name=f"{e.name}: {label}"))
if scope_fig.data:
    scope_fig.update_layout(barmode="group", height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                            title="The same replay: facts only against facts + what was said", yaxis={"range": [0, 1]})
    st.plotly_chart(scope_fig, key="lab_scope_compare")

attribution_fig = go.Figure()
for e, r in picked_scores:
    by_category = attribution_by_category(r.questions, k_at)
    for kind, colour in (("hit", "#2e7d32"), ("extraction_miss_recovered", "#66bb6a"), ("session_hit", "#90a4ae"),
                         ("retrieval_miss", "#f9a825"), ("extraction_miss", "#c62828")):
        attribution_fig.add_trace(go.Bar(
            x=[[e.name] * len(by_category), [f"cat {c}" for c in by_category]],
            y=[v.get(kind, 0) for v in by_category.values()],
            name=kind.replace("_", " "), marker_color=colour, legendgroup=kind, showlegend=e is picked_scores[0][0]))
attribution_fig.update_layout(barmode="stack", height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                              title=f"Why questions were missed at k = {k_at}, per category")
st.plotly_chart(attribution_fig, key="lab_attribution")

questions = {q.id: q for _, r in picked_scores for q in r.questions}
if questions:
    qid = st.selectbox("One question: what each experiment retrieved", list(questions), key=state.LAB_QUESTION,
                       format_func=lambda i: f"{questions[i].question} (category {questions[i].category})")
    st.caption(f"Answer: {questions[qid].answer} · evidence: {', '.join(questions[qid].evidence)}")
    cols = st.columns(len(picked_exps))
    for col, e in zip(cols, picked_exps, strict=True):
        own = scored[e.name]
        mine = next((q for q in own.questions if q.id == qid), None) if own is not None else None
        why = why_missed(mine, k_at)
        col.markdown(f"**{e.name}** · {why.replace('_', ' ') + f' at k = {k_at}' if why else 'not scored at this k'}")
        retrieved = mine.retrieved if mine is not None else []
        for line in retrieved_lines(retrieved, k_at):
            col.text(line)
        if any(hit.session_hit for hit in retrieved):
            col.caption("🟦 linked to the evidence's session only (the model cited no turn): not counted as found.")
        if retrieved:
            col.caption("Score: the search's own (meaning and shared words fused); its meaning part is a cosine, "
                        "which is below 0 for a text unrelated to the question, so a score can be negative.")
