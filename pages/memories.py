"""Memory browser: filter, search, edit inline (re-embeds, writes EDIT events), bulk actions, history, export."""

import streamlit as st

from dashboard import adapter, edits, moments, router, state, ui
from dashboard.views import search_table
from timemory import (
    MEMORY_STATUSES,
    MEMORY_TYPES,
    MemoryFilter,
    SearchMode,
    SearchScope,
    TiMemoryError,
)
from timemory.search import KEYWORD_WEIGHT

router.ensure_router()
user = ui.current_user()
PAGE_SIZE = 50

st.header("🗂️ Memories")

with st.container(border=True):
    c1, c2, c3 = st.columns([2, 2, 3])
    types = c1.multiselect("Type", MEMORY_TYPES, key=state.Q_TYPES, bind="query-params")
    statuses = c2.multiselect("Status", MEMORY_STATUSES, key=state.Q_STATUSES, bind="query-params")
    text = c3.text_input("Text contains", key=state.Q_TEXT, bind="query-params")
    c4, c5 = st.columns([3, 3])
    sessions = adapter.sessions(user)
    titles = {s.id: s.title for s in sessions}
    session_pick = c4.selectbox("Session", [None, *titles], key="f_session",
                                format_func=lambda i: "All sessions" if i is None else titles[i])
    span = c5.date_input("Created between", value=[], key="f_dates")

since, until = moments.created_between(span)

SEARCH_MODES: dict[SearchMode, str] = {"hybrid": "Meaning + words", "vector": "Meaning only", "keyword": "Words only"}
SCOPES: dict[SearchScope, str] = {"memories": "Memories", "episodes": "What was said", "all": "Both"}
c6, c7, c8 = st.columns([4, 2, 2])
query = c6.text_input("🔎 Search this user's memories", key=state.MEMORY_QUERY,
                      placeholder="e.g. Who is Kofi? · What is planned for March?")
mode: SearchMode = c7.radio("Rank by", list(SEARCH_MODES), format_func=SEARCH_MODES.get, key="f_search_mode",
                horizontal=True)
scope: SearchScope = c8.radio("Search in", list(SCOPES), format_func=SCOPES.get, key="f_search_scope",
                              horizontal=True, help="What was said: every stored message, found by its own words "
                              "and meaning and by the memories learnt from it.")
if query.strip():
    # what is true now, unless the status filter asks for outdated memories too
    searched = statuses or ["active"]
    hits = ui.guarded(lambda: adapter.search(query, user_id=user, limit=10, types=types or None,
                                             statuses=searched, mode=mode, scope=scope)) or []
    st.dataframe(search_table(hits).dropna(axis="columns", how="all"), hide_index=True,
                 width="stretch")  # no column of Nones
    st.caption(("Active memories only: pick statuses above to search outdated ones too. " if not statuses else "")
               + "meaning = cosine similarity of the memory to the query; words (BM25) = BM25 over the words they "
               f"share (stemmed, stop words left out); meaning + words = {1 - KEYWORD_WEIGHT:.2f} × meaning + "
               f"{KEYWORD_WEIGHT:.2f} × words ÷ best, the BM25 divided by the best BM25 among the user's memories "
               "— the weights were chosen on a labelled set (docs/benchmarks.md).")

where = MemoryFilter.of(types=types or None, statuses=statuses or None, text=text, session_id=session_pick,
                        since=since, until=until)
total = adapter.memory_count(user, where)
pages = max(1, -(-total // PAGE_SIZE))
page = st.number_input(f"Page (of {pages})", 1, pages, 1, key=state.Q_PAGE, bind="query-params") if pages > 1 else 1
st.caption(f"{ui.plural(total, 'memory', 'memories')} {'matches' if total == 1 else 'match'}")
rows = adapter.memories_page(user, where, PAGE_SIZE, (page - 1) * PAGE_SIZE)
replacements = adapter.get_memories([m.superseded_by for m in rows if m.superseded_by], user_id=user)
frame = edits.grid_frame(rows, replacements)  # indexed by id, under a key naming the rows: see dashboard.edits
grid_key = edits.grid_key(rows)

lost = st.session_state.get("pending_edits")
if lost and lost["grid"] != grid_key and lost["saved"] is False:
    st.warning("The list changed before these edits were saved, so they were not applied; make them again: "
               + "; ".join(f"“{before}” → “{after}”" for before, after in lost["texts"]))

edited = st.data_editor(
    frame, key=grid_key, hide_index=True, width="stretch", num_rows="fixed",
    disabled=["updated", "superseded by", "id"],
    column_config={
        "select": st.column_config.CheckboxColumn("✓", width="small"),
        "content": st.column_config.TextColumn("Content", width="large", max_chars=adapter.max_content_chars()),
        "type": st.column_config.SelectboxColumn("Type", options=list(MEMORY_TYPES), required=True),
        "status": st.column_config.SelectboxColumn("Status", options=list(MEMORY_STATUSES), required=True),
    },
)

changes = edits.grid_edits(rows, edited)
st.session_state["pending_edits"] = {
    "grid": grid_key, "saved": False, "texts": edits.unsaved_texts(rows, changes)} if changes else None
selected = edits.ticked(edited)

b1, b2, b3, b4 = st.columns(4)
if b1.button(f"💾 Save {ui.plural(len(changes), 'edit')}", disabled=not changes, type="primary", key="save_edits"):
    try:
        saved = adapter.edit_memories(changes, user_id=user)
    except TiMemoryError as exc:  # refused whole: the grid shows the stored values again, with the reason
        st.session_state.pop(grid_key, None)
        st.session_state["pending_edits"] = None
        ui.refused(f"Nothing was saved: {exc} (code: {exc.code})")
        st.rerun()
    st.session_state["pending_edits"] = None
    ui.flash(f"Saved {ui.plural(len(saved), 'edit')}"
             + ("; edited text was re-embedded." if any(e.content is not None for e in changes) else "."))
    st.rerun()


def bulk(p: dict) -> None:
    if p["name"] == "delete":
        adapter.delete_memories(p["ids"], user_id=user)
    else:
        adapter.set_status(p["ids"], user_id=user, status="outdated" if p["name"] == "outdate" else "active")
    ui.flash(f"{p['name'].capitalize()}d {ui.plural(len(p['ids']), 'memory', 'memories')}.")


if b2.button("Outdate selected", disabled=not selected):
    ui.ask("outdate", ids=selected)
if b3.button("Reactivate selected", disabled=not selected):
    ui.ask("reactivate", ids=selected)
if b4.button("Delete selected", disabled=not selected):
    ui.ask("delete", ids=selected)
asked = ui.asked().get("ids", [])
n = ui.plural(len(asked), "memory", "memories")
reactivate_note = "".join(f"\n\n“{old}” was replaced by “{new}”, which is still active: both will be active."
                          for old, new in edits.still_replaced(asked, rows, replacements))
ui.confirmation("outdate", "Outdate memories?", f"Mark {n} as outdated?", bulk, "Outdate")
ui.confirmation("reactivate", "Reactivate memories?", f"Make {n} active again?{reactivate_note}", bulk, "Reactivate")
ui.confirmation("delete", "Delete memories?", f"Delete {n}? Their history events are kept.", bulk)

e1, e2, e3 = st.columns([1, 1, 3], vertical_alignment="center")
with_history = e3.checkbox("JSON with each memory's history", key="export_history")
e1.download_button(f"Export CSV ({total})", lambda: adapter.export_csv(user, where), f"memories-{user}.csv",
                   "text/csv", on_click="ignore")
e2.download_button(f"Export JSON ({total})", lambda: adapter.export_json(user, where, with_history=with_history),
                   f"memories-{user}.json", "application/json", on_click="ignore")



def add_by_hand() -> None:
    """Runs before the rerun the click starts. The typed text is cleared only once the memory is stored: a failed
    add (an empty text, a database that is down) keeps what the person wrote."""
    s = st.session_state
    try:
        adapter.add_memory(s.get("add_content", ""), user_id=user, type=s.get("add_type", "personal"),
                           status=s.get("add_status", "active"))
    except TiMemoryError as exc:
        s["add_error"] = f"{exc} (code: {exc.code})"
        return
    s["add_content"] = ""
    st.toast("Memory added")


with st.expander("➕ Add a memory by hand"), st.form("add_memory"):
    st.text_area("Content", max_chars=adapter.max_content_chars(), key="add_content")
    a1, a2 = st.columns(2)
    a1.selectbox("Type", MEMORY_TYPES, key="add_type")
    a2.selectbox("Status", MEMORY_STATUSES, key="add_status")
    st.form_submit_button("Add", on_click=add_by_hand)
    if error := st.session_state.pop("add_error", None):
        st.error(error)

st.subheader("History")
focus = st.session_state.get(state.FOCUS_MEMORY) or ui.from_url(state.Q_MEMORY)
labels = {m.id: m.content[:80] for m in rows}
ids = list(labels)
if focus and focus not in labels:
    found = adapter.get_memories([focus], user_id=user).get(focus)
    if found is not None:
        labels[focus] = found.content[:80]
        ids = [focus, *ids]
    else:
        st.warning(f"No memory '{focus}' for user '{user}'.")
if ids:
    pick = st.selectbox("Memory", ids, index=ids.index(focus) if focus in ids else 0,
                        format_func=lambda i: labels.get(i, i), key="history_pick")
    if focus and pick != focus:
        st.session_state.pop(state.FOCUS_MEMORY, None)
    events = ui.guarded(lambda: adapter.history(pick, user_id=user)) or []
    for e in events:
        line = f"**{e.event}** by {e.actor} · {e.created_at:%Y-%m-%d %H:%M}"
        if e.reason:
            line += f" — {e.reason}"
        st.markdown(line)
        if e.event in ("EDIT", "UPDATE") and e.old_content != e.new_content:
            st.text(f"  {e.old_content}\n→ {e.new_content}")
        elif e.event in ("ADD", "DELETE"):
            st.text(f"  {e.new_content or e.old_content}")
    chain = adapter.supersession_chain(pick, user_id=user)
    if len(chain) > 1:
        st.markdown("**Superseded-by chain:**")
        st.text(" → ".join(f"{m.content} ({m.status})" for m in chain))
else:
    st.info("No memories match these filters.")
