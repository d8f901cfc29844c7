"""What the browser tests do the way a person does (open a page from the sidebar, pick an option, edit a grid cell)
and how they check what a click really stored (the app's SQLite file). ``make screenshots`` (bench/screenshots.py)
drives the app with the same helpers."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
EVIL = '<img src=x onerror="window.__pwned=1">'  # in a session title and a memory: must show as text


def query(data: Path, sql: str, *args: object) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(data / "timemory.db") as db:
        return db.execute(sql, args).fetchall()


def shot(page, folder: Path, name: str) -> Path:
    """``folder/name.png`` of the window as it is. The tests pass a pytest tmp dir: they never write into the
    checkout (the README's pictures are made by ``make screenshots``, from the demo data)."""
    folder.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(800)  # charts and grids draw on a canvas a moment after the page settles
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def open_page(page, label: str, text: str) -> None:
    """Navigate as a person does: through the sidebar."""
    page.locator("[data-testid='stSidebarNav']").get_by_text(label, exact=True).click()
    page.get_by_text(text).first.wait_for()
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def only_one(page, locator):
    """The locator once the page has settled on one match (a rerun briefly shows stale copies of elements)."""
    deadline = time.monotonic() + 60
    while locator.count() != 1:
        assert time.monotonic() < deadline, f"{locator} matched {locator.count()} elements"
        page.wait_for_timeout(200)
    return locator


def edit_content_cell(page, text: str, row: int = 0, rows: int = 1) -> None:
    """The table is a canvas grid: once it shows ``rows`` rows, double-click the Content cell of ``row``, replace
    the text, Enter; then click "Save 1 edit". As a person would, the edit is made again when the page did not take
    it (a rerun that replaced the grid under the cursor drops it).

    Waiting for the grid's height matters: an edit begun while the grid still shows the unfiltered rows is
    dropped when the filtered data arrives."""
    grid = page.locator("[data-testid='stDataFrame']").first
    editor = page.locator("textarea.gdg-input")
    save = page.get_by_role("button", name="💾 Save 1 edit")
    seen = []
    for _ in range(4):
        settled(page)  # a double-click during a rerun lands on a grid that is about to be replaced
        box = _still_box(page, grid, max_height=35 * (rows + 1) + 10)  # header + rows
        page.mouse.dblclick(box["x"] + 150, box["y"] + 35 + 35 * row + 17)  # below the header, right of ✓
        opened = bool(editor.count()) or _appears(page, editor, 10_000)
        if opened:
            editor.fill(text)
            editor.press("Enter")
            if _appears(page, save, 30_000):
                only_one(page, save).click()
                return
        seen.append("the editor opened, no save button came" if opened else "no editor opened")
        page.keyboard.press("Escape")
    raise AssertionError(f"the edit of row {row} was not taken: {'; '.join(seen)}")


def _still_box(page, locator, max_height: float) -> dict:
    """The locator's box once it is at most ``max_height`` high and has not moved for 0.3 s (a message above it that
    appears or goes after a rerun moves the grid under the cursor)."""
    deadline = time.monotonic() + 60
    last = None
    while True:
        box = locator.bounding_box()
        if box is not None and box["height"] <= max_height and box == last:
            return box
        assert time.monotonic() < deadline, f"the grid did not settle at {max_height:.0f} px or less: {box}"
        last = box
        page.wait_for_timeout(300)


def _appears(page, locator, timeout_ms: int) -> bool:
    deadline = time.monotonic() + timeout_ms / 1000
    while locator.count() == 0:
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(200)
    return True


def pick_option(page, label: str, option: str) -> None:
    """Choose an option of a selectbox or multiselect the way a person does: open it, click the option."""
    page.get_by_label(label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    settled(page)


def user_shown(page, user: str) -> None:
    """The sidebar's user picker shows ``user``."""
    from playwright.sync_api import expect

    expect(page.locator("[data-testid='stSidebar'] input[aria-label='User']")).to_have_value(user, timeout=30_000)


def shown(page, text: str, timeout_ms: int = 60_000) -> None:
    """Wait for ``text``; on a timeout, fail with what the page said instead (its alerts and toasts)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_text(text).first.wait_for(timeout=timeout_ms)
    except PlaywrightTimeout:
        said = page.locator("[data-testid='stAlert'], [data-testid='stToast'], [data-testid='stCaptionContainer']")
        raise AssertionError(f"{text!r} never appeared; the page said: {said.all_inner_texts()}") from None


def settled(page) -> None:
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def memories_of(data: Path, user: str) -> dict[str, str]:
    return dict(query(data, "SELECT id, content FROM memories WHERE user_id = ?", user))


def progress_text(page) -> str:
    bars = page.locator("[data-testid='stProgress']")
    return bars.first.inner_text() if bars.count() else ""
