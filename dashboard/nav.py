"""The app's pages, declared before anything heavy is imported: until a script run declares them, Streamlit shows the
raw file names of ``pages/`` in the sidebar (for as long as the first run spends importing the core)."""

from __future__ import annotations

from typing import Any

import streamlit as st

PAGES = [
    ("pages/chat.py", "Chat", "💬"),
    ("pages/memories.py", "Memories", "🗂️"),
    ("pages/embedding_map.py", "Embedding map", "🗺️"),
    ("pages/timeline.py", "Timeline", "🕰️"),
    ("pages/lab.py", "Lab", "🧪"),
    ("pages/admin.py", "Sessions & users", "👥"),
]


def navigation() -> Any:
    """Declare the app's pages (the first is the default) and return the page to run."""
    st.set_page_config(page_title="TiMemory", page_icon="🧠", layout="wide")
    return st.navigation([st.Page(path, title=title, icon=icon, default=i == 0)
                          for i, (path, title, icon) in enumerate(PAGES)])
