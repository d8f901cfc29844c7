"""``make screenshots``: the README's pictures of the dashboard, ``docs/screenshots/<page>.png``, made from the demo.

One run seeds the demo data (``python -m timemory seed-demo``) into a scratch data folder, ``data/screenshots/`` in
the checkout's ignored ``data/`` (the sidebar names the database file, so the pictures show a project path), starts
the dashboard on it, opens every page in Chromium the way a person does (the first by its URL, the others through the
sidebar), waits for the page's own content and for the app to settle, and takes a picture of the window. The app it
started is stopped by its process id, whatever happened.

A page that shows an exception, an error box or a loading skeleton fails the run, and then no picture is replaced:
the new pictures are copied into ``docs/screenshots/`` only once every page has been taken.
Nothing here runs in the tests (``python -m bench.screenshots [--out DIR] [--keep]``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.helpers import CHROMIUM, open_page, settled, shot, shown, user_shown

from .common import ONE_THREAD, ROOT

OUT = ROOT / "docs" / "screenshots"
SCRATCH = Path("data") / "screenshots"  # relative to ROOT, where the app runs
USER = "maya"  # the demo user with the most history: a move, a new job, a diet that changed
SESSION = "Knee pain and the move"  # her latest demo chat, where three memories were outdated
VIEWPORT = {"width": 1400, "height": 1000}
TIMEOUT_MS = 120_000


def chat(page: Any, url: str) -> None:
    page.goto(f"{url}/?user={USER}")
    user_shown(page, USER)
    option = page.get_by_role("option", name=re.compile(f"^{re.escape(SESSION)}"))
    for _ in range(3):  # a click during a rerun opens a list that is about to be redrawn: open it again
        settled(page)
        page.get_by_label("Session", exact=True).first.click()
        try:
            option.click(timeout=10_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    else:
        raise RuntimeError(f"chat: the session picker never offered {SESSION!r}")
    settled(page)
    shown(page, "What the memory pipeline did")
    # the chat opens scrolled to its end (the last trace): scroll up to where the conversation starts, as a reader
    # would, keeping the session picker in view
    wheel_to(page, page.locator("[data-testid='stChatMessage']").first, top=175)


def wheel_to(page: Any, locator: Any, top: float) -> None:
    """Scroll the page with the mouse wheel until ``locator`` is ``top`` pixels below the window's top. A wheel, not
    a script: the app's main area sticks to its bottom unless a person scrolls it."""
    main = page.locator(".stMain").first.bounding_box()
    page.mouse.move(main["x"] + main["width"] / 2, main["y"] + min(main["height"], VIEWPORT["height"]) / 2)
    for _ in range(10):
        offset = locator.bounding_box()["y"] - top
        if abs(offset) < 10:
            page.mouse.move(main["x"] + main["width"] - 20, VIEWPORT["height"] / 2)  # the margin: nothing hovered
            return
        page.mouse.wheel(0, offset)
        page.wait_for_timeout(400)  # a smooth scroll takes a moment
    raise RuntimeError(f"could not scroll {locator} into place")


def memories(page: Any, url: str) -> None:
    open_page(page, "Memories", "memories match")
    page.locator("[data-testid='stDataFrame']").first.wait_for()


def embedding_map(page: Any, url: str) -> None:
    open_page(page, "Embedding map", "Colour by")
    page.locator(".js-plotly-plot").first.wait_for()


def timeline(page: Any, url: str) -> None:
    open_page(page, "Timeline", "As of")
    page.locator(".js-plotly-plot").first.wait_for()


def lab(page: Any, url: str) -> None:
    open_page(page, "Lab", "New replay")


def admin(page: Any, url: str) -> None:
    open_page(page, "Sessions & users", "Delete all data of")
    page.locator("[data-testid='stDataFrame']").first.wait_for()


# The README's pictures, by file name, in the order a visitor would go through the sidebar.
PAGES: dict[str, Callable[[Any, str], None]] = {
    "chat": chat, "memories": memories, "embedding_map": embedding_map, "timeline": timeline, "lab": lab,
    "admin": admin,
}


def ready(page: Any, name: str) -> None:
    """The page has drawn its content: no skeleton left, the app idle; and it shows no error."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while page.locator("[data-testid*='Skeleton']").count():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: the page never got past its loading skeleton")
        page.wait_for_timeout(200)
    settled(page)
    broken = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
    if broken.count():
        raise RuntimeError(f"{name}: the page shows an error: {broken.all_inner_texts()}")


def start_app(env: dict[str, str], data: Path) -> tuple[subprocess.Popen[bytes], str]:
    from timemory.providers import free_port

    port = free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=(data / "streamlit.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopping it stops whatever it started alongside
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if app.poll() is not None:
                raise RuntimeError(f"the dashboard exited at start-up; see {SCRATCH / 'streamlit.log'}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return app, url
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the dashboard did not start in 120 s; see {SCRATCH / 'streamlit.log'}")
    except BaseException:
        stop_app(app, data)
        raise


def stop_app(app: subprocess.Popen[bytes], data: Path) -> None:
    """Stop the app by its process id (its group: ``start_new_session``); then a local model server it may have
    started, which runs in a session of its own and is normally stopped by the app on its way out."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(app.pid, signal.SIGTERM)
    try:
        app.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(app.pid, signal.SIGKILL)
        app.wait(timeout=30)
    from timemory.providers import LocalLLMServer

    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # no server recorded: nothing to stop
        state = json.loads((data / "llm-server.json").read_text())
        if LocalLLMServer(data).healthy(int(state["port"])):  # still up and still ours: its port answers
            os.killpg(int(state["pid"]), signal.SIGTERM)


def take(url: str, folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            for name, visit in PAGES.items():
                started = time.monotonic()
                try:
                    visit(page, url)
                    ready(page, name)
                except Exception:
                    page.screenshot(path=str(folder.parent / f"failed-{name}.png"))  # what the page showed instead
                    raise
                shot(page, folder, name)
                print(f"  {name}.png  {time.monotonic() - started:.1f} s", flush=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the pictures go (default: docs/screenshots)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch data folder (its app log) afterwards")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        parser.error(f"Chromium is missing at {CHROMIUM}: `apt-get install chromium` (the CI script installs it)")

    began = time.monotonic()
    data = ROOT / SCRATCH
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    # the embedded defaults, whatever this shell has set: the pictures show what a fresh checkout shows
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TIDB_", "TIMEMORY_"))}
    env.update(ONE_THREAD, TIMEMORY_DATA_DIR=str(SCRATCH), PYTHONPATH=str(ROOT))
    print(f"seeding the demo into {SCRATCH}", flush=True)
    subprocess.run([sys.executable, "-m", "timemory", "-q", "seed-demo"], cwd=ROOT, env=env, check=True,
                   timeout=600)
    app, url = start_app(env, data)
    try:
        print(f"dashboard on {url} (pid {app.pid})", flush=True)
        take(url, data / "shots")
    except Exception:
        print(f"failed; the app's log (and a picture of the page that failed) are in {SCRATCH}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        stop_app(app, data)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in PAGES:
        shutil.copyfile(data / "shots" / f"{name}.png", args.out / f"{name}.png")
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    shown_out = args.out.resolve().relative_to(ROOT) if args.out.resolve().is_relative_to(ROOT) else args.out
    print(f"{len(PAGES)} pictures in {shown_out} in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
