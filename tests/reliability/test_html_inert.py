"""HTML and JavaScript in memory content and session titles are shown as text on every page (AppTest).
The browser test checks the same in Chromium (tests/test_browser.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from doubles import ScriptedLLMDouble
from streamlit.testing.v1 import AppTest

from dashboard import adapter, state
from timemory import NewMessage, TiMem

ROOT = Path(__file__).resolve().parents[2]
EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
PAGES = ["pages/chat.py", "pages/memories.py", "pages/embedding_map.py", "pages/admin.py"]


@pytest.fixture
def tm(sqlite_store, embedder):
    memory = TiMem(sqlite_store, embedder, ScriptedLLMDouble())
    memory.add(f"The user wrote {EVIL} in a note.", user_id="mallory", type="personal")
    memory.add(f"The user likes {EVIL} a lot.", user_id="mallory", type="preference")
    session = sqlite_store.conversations.create_session("mallory", f"Title {EVIL}")
    sqlite_store.conversations.save_messages("mallory", session.id, [NewMessage(role="user", content=f"Hello {EVIL}")])
    adapter.override(memory=memory)
    yield memory
    adapter.override()


def every_element(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from every_element(child)


@pytest.mark.parametrize("page", PAGES)
def test_html_in_content_and_titles_is_never_rendered_as_html(tm: TiMem, page: str) -> None:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.session_state[state.USER] = "mallory"
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    shown = 0
    for element in every_element(at._tree):
        proto = getattr(element, "proto", None)
        body = str(proto) if proto is not None else ""
        if "onerror" in body:
            shown += 1
            assert not getattr(proto, "allow_html", False), f"{page}: HTML allowed in {type(element).__name__}"
            assert not getattr(proto, "unsafe_allow_javascript", False)
    assert shown, f"{page} did not show the hostile text at all"
