"""RSS of the running app with its local models loaded (Streamlit + local LLM server + embedder), after a chat turn."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from .common import ONE_THREAD, ROOT, rss_mb


def measure() -> dict[str, Any]:
    import psutil
    from playwright.sync_api import sync_playwright

    from timemory.providers import free_port

    data = tempfile.mkdtemp(prefix="bench-app-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TIDB_", "TIMEMORY_"))}
    env.update(ONE_THREAD, TIMEMORY_DATA_DIR=data, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "timemory", "-q", "seed-demo"], cwd=ROOT, env=env, check=True)
    port = free_port()
    app = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
                            "--server.address", "127.0.0.1", "--server.headless", "true"],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.set_default_timeout(300_000)
            page.goto(url)
            box = page.get_by_placeholder("Tell me something about yourself…")
            box.fill("I just signed up for a pottery class on Thursdays.")
            box.press("Enter")
            page.get_by_text("What the memory pipeline did").wait_for()
            browser.close()
        procs = [psutil.Process(app.pid), *psutil.Process(app.pid).children(recursive=True)]
        parts = {}
        for proc in procs:
            name = "local LLM server" if "llama_cpp.server" in " ".join(proc.cmdline()) else "Streamlit + embedder"
            parts[name] = parts.get(name, 0.0) + proc.memory_info().rss / 2**20
        return {"rss_mb": parts, "total_mb": sum(parts.values()), "self_check_mb": rss_mb(app.pid, children=True)}
    finally:
        app.terminate()
        app.wait(timeout=60)
        state = os.path.join(data, "llm-server.json")  # the app stops its server on exit; make sure of it
        if os.path.exists(state):
            subprocess.run([sys.executable, "-c", "import sys; from timemory.providers import LocalLLMServer; "
                            "LocalLLMServer(sys.argv[1]).stop()", data], cwd=ROOT, env=env, check=False)


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
