"""The browser tests' app: `streamlit run` on 127.0.0.1 over a seeded SQLite file, and Chromium driven by
Playwright. Each test file (one per page) gets an app of its own, so its first request and its data are its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import CHROMIUM, EVIL, ROOT

from timemory import TiMem
from timemory.providers import free_port
from timemory.store import Store


@pytest.fixture(scope="module")
def data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's data folder, a pytest tmp dir: a test run leaves nothing in the checkout. The tests read its SQLite
    file to check what a click really stored."""
    return tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_"))


@pytest.fixture(scope="module")
def server(data: Path, embedder):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `apt-get install chromium` (the CI script installs it)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TIDB_", "TIMEMORY_"))}
    env.update(TIMEMORY_DATA_DIR=str(data), PYTHONPATH=str(ROOT))  # the app runs in ROOT
    subprocess.run([sys.executable, "-m", "timemory", "-q", "seed-demo"], cwd=ROOT, env=env, check=True, timeout=300)
    seeded = TiMem(Store.from_url(f"sqlite:///{data}/timemory.db", embedding_model=embedder.name,
                                  embedding_dim=embedder.dim), embedder)
    seeded.sessions.create(user_id="aisha", title=f"Notes {EVIL}")
    seeded.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=(data / "streamlit.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
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
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(120_000)
        yield pg
        browser.close()
