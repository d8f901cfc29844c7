"""A real browser: `streamlit run` on 127.0.0.1 and Chromium driven by Playwright. Saves a screenshot per page."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"

pytestmark = [pytest.mark.browser, pytest.mark.local_llm]
EVIL = '<img src=x onerror="window.__pwned=1">'  # in a session title and a memory: must show as text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The app's data folder: the tests read its SQLite file to check what a click really stored."""
    return Path(tmp_path_factory.mktemp("app"))


def query(data: Path, sql: str, *args: object) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(data / "timemory.db") as db:
        return db.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def server(data: Path):  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `apt-get install chromium` (the CI script installs it)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TIDB_", "TIMEMORY_"))}
    env.update(TIMEMORY_DATA_DIR=str(data), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "timemory", "-q", "seed-demo"], cwd=ROOT, env=env, check=True, timeout=300)
    subprocess.run([sys.executable, "-c", "import sys; from timemory import Settings; from timemory.wiring import "
                    "build_store; from timemory.providers.embeddings import LocalEmbedder; "
                    "build_store(Settings(), LocalEmbedder()).create_session('aisha', sys.argv[1])", f"Notes {EVIL}"],
                   cwd=ROOT, env=env, check=True, timeout=300)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.fail("streamlit did not start")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(server):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(120_000)
        yield pg
        browser.close()


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(800)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def open_page(page, label: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Navigate as a person does: through the sidebar."""
    page.locator("[data-testid='stSidebarNav']").get_by_text(label, exact=True).click()
    page.get_by_text(text).first.wait_for()
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def only_one(page, locator):  # type: ignore[no-untyped-def]
    """The locator once the page has settled on one match (a rerun briefly shows stale copies of elements)."""
    deadline = time.monotonic() + 60
    while locator.count() != 1:
        assert time.monotonic() < deadline, f"{locator} matched {locator.count()} elements"
        page.wait_for_timeout(200)
    return locator


def edit_content_cell(page, text: str, row: int = 0, rows: int = 1) -> None:  # type: ignore[no-untyped-def]
    """The table is a canvas grid: once it shows ``rows`` rows, double-click the Content cell of ``row``, replace
    the text, Enter.

    Waiting for the grid's height matters: an edit begun while the grid still shows the unfiltered rows is
    dropped when the filtered data arrives."""
    grid = page.locator("[data-testid='stDataFrame']").first
    deadline = time.monotonic() + 60
    while (box := grid.bounding_box()) is None or box["height"] > 35 * (rows + 1) + 10:  # header + rows
        assert time.monotonic() < deadline, f"the grid did not shrink to {rows} rows: {box}"
        page.wait_for_timeout(200)
    page.mouse.dblclick(box["x"] + 150, box["y"] + 35 + 35 * row + 17)  # below the header, right of the ✓ column
    editor = page.locator("textarea.gdg-input")
    editor.fill(text)
    editor.press("Enter")


def pick_option(page, label: str, option: str) -> None:  # type: ignore[no-untyped-def]
    """Choose an option of a selectbox or multiselect the way a person does: open it, click the option."""
    page.get_by_label(label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    settled(page)


def user_shown(page, user: str) -> None:  # type: ignore[no-untyped-def]
    """The sidebar's user picker shows ``user``."""
    from playwright.sync_api import expect

    expect(page.locator("[data-testid='stSidebar'] input[aria-label='User']")).to_have_value(user, timeout=30_000)


def shown(page, text: str, timeout_ms: int = 60_000) -> None:  # type: ignore[no-untyped-def]
    """Wait for ``text``; on a timeout, fail with what the page said instead (its alerts and toasts)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_text(text).first.wait_for(timeout=timeout_ms)
    except PlaywrightTimeout:
        said = page.locator("[data-testid='stAlert'], [data-testid='stToast'], [data-testid='stCaptionContainer']")
        raise AssertionError(f"{text!r} never appeared; the page said: {said.all_inner_texts()}") from None


def settled(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def test_every_page_filter_edit_and_chat(page, server: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    # the server's first request opens a page by its URL: the router (its sidebar) must still run it
    page.goto(f"{server}/memories")
    page.get_by_text("7 memories match").wait_for()
    assert page.locator("[data-testid='stSidebar']").get_by_role("heading", name="🧠 TiMemory").count() == 1
    assert page.locator("[data-testid='stSidebarNav']").get_by_text("Sessions & users").count() == 1

    # a filter narrows the table
    page.get_by_label("Text contains").fill("Plymouth")
    page.get_by_label("Text contains").press("Enter")
    page.get_by_text("1 memory matches").wait_for()

    # edit the memory in the grid, save, and find it by its new text (persisted and re-read)
    edit_content_cell(page, "The user studies kelp forests in Plymouth Sound.")
    only_one(page, page.get_by_role("button", name="💾 Save 1 edit")).click()
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
    shot(page, "memories")
    page.get_by_text("Words only", exact=True).click()
    settled(page)
    shown(page, "meaning = cosine similarity")

    # embedding map
    open_page(page, "Embedding map", "Colour by")
    page.locator(".js-plotly-plot").first.wait_for()
    shot(page, "embedding_map")

    # sessions & users
    open_page(page, "Sessions & users", "Delete all data of")
    # a hostile session title: present as text (in the sessions table), never as an element
    page.get_by_text(f"Notes {EVIL}").first.wait_for(state="attached")
    assert page.locator("img[src='x']").count() == 0 and page.evaluate("window.__pwned") is None
    shot(page, "admin")

    # chat with the real local model
    open_page(page, "Chat", "Session")
    page.get_by_placeholder("Tell me something about yourself…").fill("Hi! I just adopted a dog named Pico.")
    page.get_by_placeholder("Tell me something about yourself…").press("Enter")
    page.get_by_text("What the memory pipeline did").wait_for(timeout=240_000)
    assert page.get_by_text("Hi! I just adopted a dog named Pico.").count() >= 1
    shot(page, "chat")


def memories_of(data: Path, user: str) -> dict[str, str]:
    return dict(query(data, "SELECT id, content FROM memories WHERE user_id = ?", user))


def test_a_grid_edit_under_a_filter_changes_exactly_that_memory(page, server: str, data: Path) -> None:  # type: ignore[no-untyped-def]
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
    only_one(page, page.get_by_role("button", name="💾 Save 1 edit")).click()
    page.get_by_role("button", name="💾 Save 0 edits").wait_for()
    after = memories_of(data, "maya")
    assert {k for k in after if after[k] != before[k]} == {target}, "the edit landed on another memory"
    assert after[target] == "The user lived in Amsterdam for six years."
    assert page.get_by_role("button", name="💾 Save 0 edits").is_disabled()  # no stale edit is offered again
    page.wait_for_timeout(1500)
    assert memories_of(data, "maya") == after

    # clearing a cell is refused with the reason, and nothing is saved
    edit_content_cell(page, "", row=0, rows=len(outdated))
    only_one(page, page.get_by_role("button", name="💾 Save 1 edit")).click()
    page.get_by_text("cannot be blank").first.wait_for()
    assert memories_of(data, "maya") == after

    # a reload keeps the user and the filter (they are in the URL)
    assert "user=maya" in page.url and "status=outdated" in page.url
    page.reload()
    page.get_by_text(f"{len(outdated)} memories match").wait_for()
    user_shown(page, "maya")


def test_back_to_back_messages_are_both_answered_and_learnt_in_one_session(page, server: str, data: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/?user=maya")
    page.get_by_placeholder("Tell me something about yourself…").wait_for()
    sessions_before = query(data, "SELECT count(*) FROM sessions WHERE user_id = 'maya'")[0][0]
    box = page.get_by_placeholder("Tell me something about yourself…")
    box.fill("I just adopted a dog named Pico.")
    box.press("Enter")
    page.wait_for_timeout(300)  # the first reply is streaming when the second message is sent
    box = page.get_by_placeholder("Tell me something about yourself…")
    box.fill("I also started learning to play the violin.")
    box.press("Enter")

    deadline = time.monotonic() + 300
    while True:
        rows = query(data, "SELECT session_id, role FROM messages WHERE user_id = 'maya' AND session_id IN "
                           "(SELECT id FROM sessions WHERE user_id = 'maya' AND created_at = "
                           "(SELECT max(created_at) FROM sessions WHERE user_id = 'maya'))")
        runs = query(data, "SELECT count(*) FROM pipeline_runs WHERE user_id = 'maya' AND session_id = ?",
                     rows[0][0] if rows else "")[0][0]
        if [r for _, r in rows].count("assistant") == 2 and runs == 2:
            break
        assert time.monotonic() < deadline, f"messages {rows}, runs {runs}"
        page.wait_for_timeout(1000)
    assert [r for _, r in rows].count("user") == 2, rows  # both messages, in one session
    assert query(data, "SELECT count(*) FROM sessions WHERE user_id = 'maya'")[0][0] == sessions_before + 1
    session = rows[0][0]
    page.get_by_text("I also started learning to play the violin.").first.wait_for()
    deadline = time.monotonic() + 60
    while page.get_by_text("What the memory pipeline did").count() < 2:  # every reply opens its own trace
        assert time.monotonic() < deadline, "a reply has no trace"
        page.wait_for_timeout(500)
    assert f"session={session}" in page.url
    log = (data / "llm-server.log").read_text(errors="replace")
    assert "restarting" not in log

    # a reload keeps the user and the chat
    page.reload()
    page.get_by_text("I just adopted a dog named Pico.").first.wait_for()
    assert "user=maya" in page.url

    # "Open" on a change of the trace lands on that memory, for the same user
    openers = page.locator("[data-testid='stButton'] button:visible", has_text="Open")
    if openers.count():
        openers.first.click()
        page.get_by_text("🗂️ Memories").wait_for()
        settled(page)
        assert "user=maya" in page.url and "memory=" in page.url
        assert page.get_by_text("No memory").count() == 0
        user_shown(page, "maya")


LAB_DATASET = [{
    "sample_id": "walk",
    "conversation": {
        "speaker_a": "Ines", "speaker_b": "Tom",
        "session_1_date_time": "9:00 am on 3 March, 2023",
        "session_1": [
            {"speaker": "Ines", "dia_id": "D1:1", "text": "I work as a nurse in Porto."},
            {"speaker": "Tom", "dia_id": "D1:2", "text": "That sounds demanding!"},
            {"speaker": "Ines", "dia_id": "D1:3", "text": "I also play the cello in a small orchestra."},
            {"speaker": "Tom", "dia_id": "D1:4", "text": "Lovely, what do you play?"},
        ],
        "session_2_date_time": "6:30 pm on 20 April, 2023",
        "session_2": [
            {"speaker": "Ines", "dia_id": "D2:1", "text": "I moved to Lisbon and started a new job as a teacher."},
            {"speaker": "Tom", "dia_id": "D2:2", "text": "Big changes! How is Lisbon?"},
            {"speaker": "Ines", "dia_id": "D2:3", "text": "I adopted a dog called Bolo."},
            {"speaker": "Tom", "dia_id": "D2:4", "text": "Bolo is a great name."},
        ],
    },
    "qa": [{"question": "What is Ines's job now?", "answer": "teacher", "evidence": ["D2:1"], "category": 1},
           {"question": "Which instrument does Ines play?", "answer": "cello", "evidence": ["D1:3"], "category": 2}],
}]


def progress_text(page) -> str:  # type: ignore[no-untyped-def]
    bars = page.locator("[data-testid='stProgress']")
    return bars.first.inner_text() if bars.count() else ""


def test_lab_replay_stop_resume_timeline_and_compare(page, server: str, data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dataset = tmp_path / "walk-locomo.json"
    dataset.write_text(json.dumps(LAB_DATASET))
    page.goto(f"{server}/lab")
    page.get_by_text("New replay").first.wait_for()
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(dataset))
    pick_option(page, "Speaker as the user (LoCoMo)", "a")
    page.get_by_label("Experiment name").fill("walk-1")
    page.get_by_label("Experiment name").press("Enter")
    settled(page)
    only_one(page, page.get_by_role("button", name="Start replay")).click()

    # the progress bar moves; stop it part-way
    page.get_by_text("walk-1").first.wait_for()
    deadline = time.monotonic() + 240
    while " 0 of " in progress_text(page) or not progress_text(page):
        assert time.monotonic() < deadline, progress_text(page)
        page.wait_for_timeout(500)
    page.get_by_role("button", name="⏹ Stop").click()
    deadline = time.monotonic() + 240
    while "stopped" not in progress_text(page):
        assert time.monotonic() < deadline, progress_text(page)
        page.wait_for_timeout(500)
    done_when_stopped = query(data, "SELECT count(*) FROM pipeline_runs WHERE user_id = 'walk-1-walk-a'")[0][0]
    assert 1 <= done_when_stopped < 4

    # a reload keeps the replay (it runs in the server, not in the page); resume it to the end
    page.reload()
    page.get_by_role("button", name="⏵ Resume").click()
    deadline = time.monotonic() + 300
    while "done" not in progress_text(page):
        assert time.monotonic() < deadline, progress_text(page)
        page.wait_for_timeout(1000)
    messages = query(data, "SELECT count(*) FROM messages WHERE user_id = 'walk-1-walk-a'")[0][0]
    assert messages == 8  # every turn stored once: resuming skipped what was done
    page.get_by_text("Experiments").first.wait_for()
    settled(page)
    shot(page, "lab")

    # a second experiment on the same file (the pipeline once per session), then compare the two
    page.get_by_text("New replay").first.click()
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(dataset))
    settled(page)
    pick_option(page, "Speaker as the user (LoCoMo)", "a")
    page.get_by_text("session", exact=True).first.click()
    page.get_by_label("Experiment name").fill("walk-2")
    page.get_by_label("Experiment name").press("Enter")
    settled(page)
    only_one(page, page.get_by_role("button", name="Start replay")).click()
    deadline = time.monotonic() + 300
    while not query(data, "SELECT status FROM experiments WHERE name = 'walk-2' AND status LIKE 'done%'"):
        if time.monotonic() > deadline:
            page.screenshot(path=str(tmp_path / "walk-2.png"))
            raise AssertionError(f"walk-2: {query(data, 'SELECT status, counts FROM experiments')}")
        page.wait_for_timeout(1000)
    page.reload()
    page.get_by_text("walk-2 − walk-1").first.wait_for(state="attached")  # compare view (a grid header)
    page.locator(".js-plotly-plot").nth(1).wait_for()  # recall@k and attribution charts
    shot(page, "lab")

    # the timeline of the replayed user: moving the slider back shows fewer memories
    page.goto(f"{server}/timeline?user=walk-1-walk-a")
    caption = page.get_by_text(re.compile(r"^As of \d{4}-"))
    caption.first.wait_for()
    settled(page)
    before = caption.first.inner_text()
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("Home")
    deadline = time.monotonic() + 60
    while caption.first.inner_text() == before:
        assert time.monotonic() < deadline, before
        page.wait_for_timeout(300)
    assert "2023-03-03" in caption.first.inner_text()
    settled(page)
    shot(page, "timeline")
