"""Memory browser: filter, search, edit inline (re-embeds, writes EDIT events), bulk actions, history, export."""

from datetime import UTC, date, datetime, time

import pandas as pd
import streamlit as st

from dashboard import adapter
from timemory.ingest import memories_to_csv, memories_to_json
from timemory.schemas import MEMORY_STATUSES, MEMORY_TYPES

adapter.ensure_router()
user = adapter.current_user() or "demo"
tm = adapter.memory()
PAGE_SIZE = 50

st.header("🗂️ Memories")

with st.container(border=True):
    c1, c2, c3 = st.columns([2, 2, 3])
    types = c1.multiselect("Type", MEMORY_TYPES, key="f_types")
    statuses = c2.multiselect("Status", MEMORY_STATUSES, key="f_statuses")
    text = c3.text_input("Text contains", key="f_text")
    c4, c5 = st.columns([3, 3])
    sessions = adapter.sessions(user)
    session_pick = c4.selectbox("Session", [None, *[s.id for s in sessions]], key="f_session",
                                format_func=lambda i: "All sessions" if i is None
                                else next(s.title for s in sessions if s.id == i))
    span = c5.date_input("Created between", value=(), key="f_dates")

since = until = None
if isinstance(span, tuple) and len(span) == 2:
    since = datetime.combine(span[0], time.min, tzinfo=UTC)
    until = datetime.combine(span[1], time.max, tzinfo=UTC)
elif isinstance(span, date):
    since = datetime.combine(span, time.min, tzinfo=UTC)

query = st.text_input("🔎 Semantic search (vector similarity over this user's memories)", key="f_query")
if query.strip():
    hits = adapter.guarded(lambda: tm.search(query, user, limit=10, types=types or None,
                                             statuses=statuses or None)) or []
    st.dataframe(pd.DataFrame([{"score": round(h.score, 3), "content": h.memory.content, "type": h.memory.type,
                                "status": h.memory.status, "id": h.memory.id} for h in hits]),
                 hide_index=True, width="stretch")

filters = (tuple(types) or None, tuple(statuses) or None, text, session_pick, since, until)
total = adapter.memory_count(user, *filters)
pages = max(1, -(-total // PAGE_SIZE))
page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="f_page") if pages > 1 else 1
st.caption(f"{total} memories match")
rows = adapter.memories_page(user, *filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)

frame = pd.DataFrame([{
    "select": False, "content": m.content, "type": m.type, "status": m.status,
    "updated": m.updated_at.strftime("%Y-%m-%d %H:%M"), "superseded by": m.superseded_by or "", "id": m.id,
} for m in rows], columns=["select", "content", "type", "status", "updated", "superseded by", "id"])

edited = st.data_editor(
    frame, key="editor", hide_index=True, width="stretch", num_rows="fixed",
    disabled=["updated", "superseded by", "id"],
    column_config={
        "select": st.column_config.CheckboxColumn("✓", width="small"),
        "content": st.column_config.TextColumn("Content", width="large", max_chars=tm.max_content_chars),
        "type": st.column_config.SelectboxColumn("Type", options=list(MEMORY_TYPES), required=True),
        "status": st.column_config.SelectboxColumn("Status", options=list(MEMORY_STATUSES), required=True),
    },
)

changes = []
for before, after in zip(frame.to_dict("records"), edited.to_dict("records"), strict=True):
    diff = {k: after[k] for k in ("content", "type", "status") if after[k] != before[k]}
    if diff:
        changes.append((before["id"], diff))
selected = [r["id"] for r in edited.to_dict("records") if r["select"]]

b1, b2, b3, b4 = st.columns(4)
if b1.button(f"💾 Save {len(changes)} edit(s)", disabled=not changes, type="primary"):
    saved = 0
    for memory_id, diff in changes:
        if adapter.guarded(lambda m=memory_id, d=diff: tm.update_memory(m, user, **d)) is not None:
            saved += 1
    adapter.after_write()
    st.session_state.flash = f"Saved {saved} edit(s); edited text was re-embedded."
    st.rerun()


def bulk(p: dict) -> None:
    if p["name"] == "delete":
        tm.delete_memories(p["ids"], user)
    else:
        tm.set_status(p["ids"], user, "outdated" if p["name"] == "outdate" else "active")
    st.session_state.flash = f"{p['name'].capitalize()}d {len(p['ids'])} memories."


if b2.button("Outdate selected", disabled=not selected):
    adapter.ask("outdate", ids=selected)
if b3.button("Reactivate selected", disabled=not selected):
    adapter.ask("reactivate", ids=selected)
if b4.button("Delete selected", disabled=not selected):
    adapter.ask("delete", ids=selected)
n = len(st.session_state.get("confirm", {}).get("ids", []))
adapter.confirmation("outdate", "Outdate memories?", f"Mark {n} memories as outdated?", bulk, "Outdate")
adapter.confirmation("reactivate", "Reactivate memories?", f"Make {n} memories active again?", bulk, "Reactivate")
adapter.confirmation("delete", "Delete memories?",
                     f"Delete {n} memories? Their history events are kept.", bulk, "Delete")
if flash := st.session_state.pop("flash", None):
    st.success(flash)

e1, e2, e3 = st.columns([1, 1, 4])
e1.download_button("Export CSV", memories_to_csv(rows), f"memories-{user}.csv", "text/csv")
e2.download_button("Export JSON", memories_to_json(rows), f"memories-{user}.json", "application/json")

with st.expander("➕ Add a memory by hand"), st.form("add_memory", clear_on_submit=True):
    content = st.text_area("Content", max_chars=tm.max_content_chars)
    a1, a2 = st.columns(2)
    new_type = a1.selectbox("Type", MEMORY_TYPES)
    new_status = a2.selectbox("Status", MEMORY_STATUSES)
    if st.form_submit_button("Add") and adapter.guarded(
        lambda: tm.add(user, content, new_type, new_status), "Memory added"
    ):
        adapter.after_write()
        st.rerun()

st.subheader("History")
ids = [m.id for m in rows]
focus = st.session_state.get("focus_memory")
if focus and focus not in ids:
    ids = [focus, *ids]
if ids:
    labels = {m.id: m.content[:80] for m in rows}
    pick = st.selectbox("Memory", ids, index=ids.index(focus) if focus in ids else 0,
                        format_func=lambda i: labels.get(i, i), key="history_pick")
    events = adapter.guarded(lambda: tm.history(pick, user)) or []
    for e in events:
        line = f"**{e.event}** by {e.actor} · {e.created_at:%Y-%m-%d %H:%M}"
        if e.reason:
            line += f" — {e.reason}"
        st.markdown(line)
        if e.event in ("EDIT", "UPDATE") and e.old_content != e.new_content:
            st.text(f"  {e.old_content}\n→ {e.new_content}")
        elif e.event in ("ADD", "DELETE"):
            st.text(f"  {e.new_content or e.old_content}")
    chain = tm.supersession_chain(pick, user)
    if len(chain) > 1:
        st.markdown("**Superseded-by chain:** " + " → ".join(f"{m.content} ({m.status})" for m in chain))
else:
    st.info("No memories match these filters.")
