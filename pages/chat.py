"""Chat that uses and grows memory, and shows what the pipeline did."""

import pandas as pd
import streamlit as st

from dashboard import adapter
from timemory import TiMemoryError
from timemory.schemas import PipelineResult

adapter.ensure_router()
user = adapter.current_user() or "demo"
service = adapter.chat()

st.header("💬 Chat")
sessions = adapter.guarded(lambda: adapter.sessions(user)) or []
ids = [s.id for s in sessions]
if st.session_state.get("session_id") not in ids:
    st.session_state.session_id = None

left, mid, right = st.columns([4, 1, 1], vertical_alignment="bottom")
labels = {s.id: f"{s.title} · {s.updated_at:%Y-%m-%d}" for s in sessions}
choice = left.selectbox("Session", [None, *ids], format_func=lambda i: "➕ New chat" if i is None else labels[i],
                        index=[None, *ids].index(st.session_state.session_id))
if choice != st.session_state.session_id:
    st.session_state.session_id = choice
    st.session_state.pop("last_turn", None)
    st.rerun()
session_id = st.session_state.session_id

if session_id:
    with mid.popover("Rename"):
        title = st.text_input("Title", value=next(s.title for s in sessions if s.id == session_id), max_chars=200)
        if st.button("Save title") and adapter.guarded(
            lambda: service.rename_session(user, session_id, title), "Renamed"
        ):
            adapter.after_write()
            st.rerun()

    def delete_chat(p: dict) -> None:
        service.delete_session(user, p["session"])
        st.session_state.session_id = None
        st.session_state.pop("last_turn", None)

    if right.button("Delete", key="delete_session"):
        adapter.ask("chat", session=session_id)
    adapter.confirmation("chat", "Delete this chat?",
                         "The chat and its messages are deleted. Memories learnt from it stay.", delete_chat)


def show_trace(trace: PipelineResult) -> None:
    cols = st.columns(5)
    cols[0].metric("Facts", len(trace.facts))
    cols[1].metric("Changes", len(trace.changes))
    cols[2].metric("LLM calls", trace.llm_calls)
    cols[3].metric("Tokens", trace.prompt_tokens + trace.completion_tokens)
    cols[4].metric("Seconds", f"{sum(trace.timings.values()):.2f}")
    if trace.errors:
        for err in trace.errors:
            st.warning(err)
    if trace.facts:
        st.markdown("**Facts extracted**")
        st.dataframe(pd.DataFrame([f.model_dump() for f in trace.facts]), hide_index=True, width="stretch")
    if trace.candidates:
        st.markdown("**Similar memories found**")
        st.dataframe(pd.DataFrame([c.model_dump(include={"fact", "short_id", "content", "status", "score"})
                                   for c in trace.candidates]), hide_index=True, width="stretch")
    if trace.decisions:
        st.markdown("**Decisions**")
        st.dataframe(pd.DataFrame([{"fact": d.fact, "action": d.action, "accepted": d.accepted,
                                    "reason": d.reason, "rejected because": d.rejected_because or ""}
                                   for d in trace.decisions]), hide_index=True, width="stretch")
    if trace.changes:
        st.markdown("**What changed**")
        for c in trace.changes:
            a, b = st.columns([5, 1])
            a.markdown(f"`{c.event}` {c.content or c.old_content or ''}")
            if b.button("Open", key=f"open-{trace.run_id}-{c.memory_id}-{c.event}"):
                st.session_state.focus_memory = c.memory_id
                st.switch_page("pages/memories.py")
    st.caption("Time per stage: " + ", ".join(f"{k} {v:.3f}s" for k, v in trace.timings.items()))


if session_id:
    for m in adapter.guarded(lambda: service.messages(user, session_id)) or []:
        with st.chat_message(m.role):
            st.markdown(m.content)

last = st.session_state.get("last_turn")
if last and last.get("session_id") == session_id:
    with st.expander(f"🧠 Memories used for the last answer ({len(last['used'])})"):
        for content, score in last["used"]:
            st.markdown(f"- {content} · score {score:.3f}")
    if last.get("trace") is not None:
        with st.expander("⚙️ What the memory pipeline did", expanded=True):
            show_trace(last["trace"])
if "small local model" in adapter.info().get("llm", ""):
    st.caption("Replies and facts come from a 135M-parameter local model: expect weak facts. "
               "Set OPENAI_API_KEY or OPENAI_BASE_URL for better ones.")

if prompt := st.chat_input("Tell me something about yourself…"):
    try:
        turn = service.chat_with_memory_stream(user, session_id, prompt, process=False)
    except TiMemoryError as exc:
        st.error(f"{exc} (code: {exc.code})")
        st.stop()
    with st.chat_message("user"):
        st.markdown(prompt)
    with st.chat_message("assistant"):
        try:
            st.write_stream(turn)
        except TiMemoryError as exc:
            st.error(str(exc))
            st.stop()
    trace = None
    with st.status("Updating memory…", expanded=False) as status:
        try:
            trace = service.process_turn(turn)
            status.update(label=f"Memory updated: {len(trace.changes)} change(s)", state="complete")
        except TiMemoryError as exc:
            status.update(label=f"Memory update failed: {exc}", state="error")
    adapter.after_write()
    st.session_state.session_id = turn.session_id
    st.session_state.last_turn = {"session_id": turn.session_id, "trace": trace,
                                  "used": [(h.memory.content, h.score) for h in turn.memories_used]}
    st.rerun()
