"""The Lab: a replay started, stopped and resumed, then seen on the Timeline and compared."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from helpers import (
    only_one,
    pick_option,
    progress_text,
    query,
    settled,
    shot,
)

pytestmark = [pytest.mark.browser, pytest.mark.local_llm]


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


def test_lab_replay_stop_resume_timeline_and_compare(page, server: str, data: Path, tmp_path: Path) -> None:
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
    page.get_by_role("button", name="▶ Resume").click()
    deadline = time.monotonic() + 300
    while "done" not in progress_text(page):
        assert time.monotonic() < deadline, progress_text(page)
        page.wait_for_timeout(1000)
    messages = query(data, "SELECT count(*) FROM messages WHERE user_id = 'walk-1-walk-a'")[0][0]
    assert messages == 8  # every turn stored once: resuming skipped what was done
    page.get_by_text("Experiments").first.wait_for()
    settled(page)
    shot(page, tmp_path, "lab-walk-1")

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
    # misses are attributed at a k the page names (5 unless chosen), in the table and on the chart
    page.get_by_text("hit @5").first.wait_for(state="attached")
    page.get_by_text("Why questions were missed at k = 5, per category").first.wait_for(state="attached")
    shot(page, tmp_path, "lab-compare")

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
    shot(page, tmp_path, "timeline")
