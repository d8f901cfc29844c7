"""The memory browser: a grid edit under a filter changes exactly the memory edited."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import (
    edit_content_cell,
    memories_of,
    pick_option,
    query,
    user_shown,
)

pytestmark = [pytest.mark.browser, pytest.mark.local_llm]


def test_a_grid_edit_under_a_filter_changes_exactly_that_memory(page, server: str, data: Path) -> None:
    page.goto(f"{server}/memories")
    page.get_by_text("memories match").first.wait_for()
    pick_option(page, "User", "maya")  # not the first user
    pick_option(page, "Status", "outdated")
    outdated = query(data, "SELECT id FROM memories WHERE user_id = 'maya' AND status = 'outdated' "
                           "ORDER BY updated_at DESC, id")
    page.get_by_text(f"{len(outdated)} memories match").wait_for()
    target = outdated[1][0]  # the second row: saving moves it to the top, under another row's position
    before = memories_of(data, "maya")

    edit_content_cell(page, "The user lived in Amsterdam for six years.", row=1, rows=len(outdated))
    page.get_by_role("button", name="💾 Save 0 edits").wait_for()
    after = memories_of(data, "maya")
    assert {k for k in after if after[k] != before[k]} == {target}, "the edit landed on another memory"
    assert after[target] == "The user lived in Amsterdam for six years."
    assert page.get_by_role("button", name="💾 Save 0 edits").is_disabled()  # no stale edit is offered again
    page.wait_for_timeout(1500)
    assert memories_of(data, "maya") == after

    # clearing a cell is refused with the reason, and nothing is saved
    edit_content_cell(page, "", row=0, rows=len(outdated))
    page.get_by_text("cannot be blank").first.wait_for()
    assert memories_of(data, "maya") == after

    # a reload keeps the user and the filter (they are in the URL)
    assert "user=maya" in page.url and "status=outdated" in page.url
    page.reload()
    page.get_by_text(f"{len(outdated)} memories match").wait_for()
    user_shown(page, "maya")
