"""Session-state keys shared by the router and the pages, and the ones mirrored in the URL's query parameters.

The current user and chat session are plain (non-widget) keys: Streamlit drops a widget's state when a run does
not draw that widget, so a widget key would lose the user on a page switch. Their widgets copy into these keys.
"""

from __future__ import annotations

USER = "current_user"  # the user every page shows; URL ?user=
CHAT_SESSION = "chat_session"  # the chat page's session; URL ?session=
FOCUS_MEMORY = "focus_memory"  # a memory another page asked the browser to open (Open / Edit buttons)
CONFIRM = "confirm"  # the open confirmation dialog: {"name", ...payload}
FLASH = "flash"  # a success message shown once after a rerun
ROUTED = "_routed"  # the router has run in this browser session

# Widget keys whose value the router writes before drawing the widget.
USER_PICKER = "user_picker"

# Widget keys that tests and benchmarks drive.
MEMORY_QUERY = "f_query"  # the memory browser's search box
MAP_METHOD = "map_method"  # the embedding map's projection (PCA or UMAP)
TIMELINE_AT = "timeline_at"  # the Timeline's moment
LAB_QUESTION = "lab_question"  # the question the Lab's compare view shows

# Query parameters: what a reload, a bookmark or a demo link keeps.
Q_USER = "user"
Q_SESSION = "session"
Q_TYPES = "type"
Q_STATUSES = "status"
Q_TEXT = "q"
Q_PAGE = "page"
Q_MEMORY = "memory"
Q_AT = "at"  # the Timeline's moment, ISO
