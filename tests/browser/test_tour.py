"""Every page in turn, as a first-time visitor goes through them: filters, an edit, a chat message; a shot each, in
the test's tmp dir (for looking into a failure; the README's pictures are made by ``make screenshots``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import (
    EVIL,
    edit_content_cell,
    only_one,
    open_page,
    settled,
    shot,
    shown,
)

pytestmark = [pytest.mark.browser, pytest.mark.local_llm]


def test_every_page_filter_edit_and_chat(page, server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # the server's first request opens a page by its URL: the router (its sidebar) must still run it
    page.goto(f"{server}/memories?user=aisha")
    page.get_by_text("7 memories match").wait_for()
    assert page.locator("[data-testid='stSidebar']").get_by_role("heading", name="🧠 TiMemory").count() == 1
    assert page.locator("[data-testid='stSidebarNav']").get_by_text("Sessions & users").count() == 1

    # a filter narrows the table
    page.get_by_label("Text contains").fill("Plymouth")
    page.get_by_label("Text contains").press("Enter")
    page.get_by_text("1 memory matches").wait_for()

    # edit the memory in the grid, save, and find it by its new text (persisted and re-read)
    edit_content_cell(page, "The user studies kelp forests in Plymouth Sound.")
    page.get_by_role("button", name="💾 Save 0 edits").wait_for()  # saved, and the table re-read
    page.get_by_label("Text contains").fill("Plymouth Sound")
    page.get_by_label("Text contains").press("Enter")
    page.get_by_text("1 memory matches").wait_for()
    page.get_by_text("EDIT by user").first.wait_for()
    page.get_by_label("Text contains").fill("")
    page.get_by_label("Text contains").press("Enter")
    page.get_by_text("7 memories match").wait_for()

    # add a memory by hand and see it listed
    only_one(page, page.get_by_text("Add a memory by hand")).click()
    page.get_by_label("Content").fill(f"The user takes the ferry to Cawsand {EVIL} on Sundays.")
    only_one(page, page.get_by_role("button", name="Add", exact=True)).click()
    shown(page, "8 memories match")
    expect(page.get_by_label("Content")).to_have_value("", timeout=30_000)  # cleared once stored
    page.get_by_label("Text contains").fill("Cawsand")
    page.get_by_label("Text contains").press("Enter")
    # shown as text in the history (st.text), not as an image
    page.locator("[data-testid='stText']").filter(has_text=f"Cawsand {EVIL} on Sundays").first.wait_for()
    assert page.locator("img[src='x']").count() == 0 and page.evaluate("window.__pwned") is None

    # search ranks by meaning and words and says why; words only finds the new memory by its place name
    page.get_by_label("Search this user's memories").fill("ferry to Cawsand")
    page.get_by_label("Search this user's memories").press("Enter")
    shown(page, "meaning = cosine similarity")
    settled(page)
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    page.wait_for_timeout(1_000)  # the grids draw on a canvas after the page settles
    shot(page, tmp_path, "memories")
    page.get_by_text("Words only", exact=True).click()
    settled(page)
    shown(page, "meaning = cosine similarity")

    # embedding map
    open_page(page, "Embedding map", "Colour by")
    page.locator(".js-plotly-plot").first.wait_for()
    shot(page, tmp_path, "embedding_map")

    # sessions & users
    open_page(page, "Sessions & users", "Delete all data of")
    # a hostile session title: present as text (in the sessions table), never as an element
    page.get_by_text(f"Notes {EVIL}").first.wait_for(state="attached")
    assert page.locator("img[src='x']").count() == 0 and page.evaluate("window.__pwned") is None
    shot(page, tmp_path, "admin")

    # chat with the real local model
    open_page(page, "Chat", "Session")
    page.get_by_placeholder("Tell me something about yourself…").fill("Hi! I just adopted a dog named Pico.")
    page.get_by_placeholder("Tell me something about yourself…").press("Enter")
    page.get_by_text("What the memory pipeline did").wait_for(timeout=240_000)
    assert page.get_by_text("Hi! I just adopted a dog named Pico.").count() >= 1
    shot(page, tmp_path, "chat")
