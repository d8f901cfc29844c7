"""TiMemory dashboard: router and sidebar (current user, what is in use, memory counts)."""

import streamlit as st

from dashboard import adapter

st.set_page_config(page_title="TiMemory", page_icon="🧠", layout="wide")

pages = [
    st.Page("pages/chat.py", title="Chat", icon="💬", default=True),
    st.Page("pages/memories.py", title="Memories", icon="🗂️"),
    st.Page("pages/embedding_map.py", title="Embedding map", icon="🗺️"),
    st.Page("pages/admin.py", title="Sessions & users", icon="👥"),
]
nav = st.navigation(pages)
adapter.mark_routed()


def create_user() -> None:
    """Runs before the next script run, so the user picker can be switched to the new user."""
    new_user = st.session_state.get("new_user_id", "").strip()
    if new_user and adapter.guarded(lambda: adapter.memory().store.ensure_user(new_user)) is None:
        adapter.after_write()
        st.session_state.pop("session_id", None)
        st.session_state.user_id = new_user


with st.sidebar:
    st.title("🧠 TiMemory")
    known = [u.id for u in adapter.guarded(adapter.users) or []]
    if "user_id" not in st.session_state:
        st.session_state.user_id = known[0] if known else "demo"
    options = sorted(set(known) | {st.session_state.user_id})
    st.selectbox("User", options, key="user_id")
    with st.popover("New user"):
        st.text_input("User id", max_chars=128, key="new_user_id")
        st.button("Create", key="create_user", on_click=create_user)
    summary = next((u for u in adapter.users() if u.id == st.session_state.user_id), None)
    c1, c2 = st.columns(2)
    c1.metric("Active", summary.memories_active if summary else 0)
    c2.metric("Outdated", summary.memories_outdated if summary else 0)
    st.divider()
    backends = adapter.info()
    st.caption(f"**Database** · {backends['database']}")
    st.caption(f"**LLM** · {backends['llm']}")
    st.caption(f"**Embedder** · {backends['embedder']}")

nav.run()
