"""The package as people install it: the wheel and sdist built from this checkout, installed into venvs outside it,
and the `timemory` command run from another directory.

- The core venv is a real, fresh install of the wheel (no extra), with the pinned versions as constraints: it has no
  streamlit, fastapi, torch or llama.cpp, and adds and searches against a scripted OpenAI-compatible server.
- The full venv installs the wheel with ``[local,dashboard,server]`` into a venv that also sees this checkout's
  installed dependencies (a ``.pth`` file), so pip resolves the extras' ranges against the pinned set without
  copying gigabytes again; TiMemory itself and its command come from the wheel.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from doubles import FakeOpenAIServer

from timemory._version import __version__
from timemory.providers import free_port

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("streamlit", "fastapi", "torch", "llama_cpp", "sentence_transformers", "uvicorn", "mcp")


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a person's shell: none of the checkout's paths or the test run's settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith(("TIMEMORY_", "OPENAI_", "TIDB_"))}
    env.update(extra)
    return env


def new_venv(where: Path) -> Path:
    run([sys.executable, "-m", "venv", str(where)], cwd=where.parent)
    return where / "bin"


def constraints(where: Path) -> Path:
    """requirements.txt as a constraints file (it is one already; the copy keeps pip from reading the checkout)."""
    path = where / "constraints.txt"
    path.write_text((ROOT / "requirements.txt").read_text())
    return path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    # The sdist first, then the wheel from the sdist: what a user building from the sdist gets.
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], cwd=out)
    return {"wheel": next(out.glob("timemory-*.whl")), "sdist": next(out.glob("timemory-*.tar.gz"))}


@pytest.fixture(scope="module")
def core(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("core")
    bin_dir = new_venv(home / "venv")
    run([str(bin_dir / "pip"), "install", "--quiet", str(dist["wheel"]), "-c", str(constraints(home))], cwd=home)
    return bin_dir


def test_the_wheel_carries_the_app_the_types_and_the_command(dist: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    for path in ("streamlit_app.py", ".streamlit/config.toml", "dashboard/adapter.py", "pages/chat.py"):
        assert f"timemory/_app/{path}" in names
    assert "timemory/py.typed" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "bench/"))]
    entry = zipfile.ZipFile(dist["wheel"]).read(f"timemory-{__version__}.dist-info/entry_points.txt").decode()
    assert "timemory = timemory.service._cli:main" in entry
    metadata = zipfile.ZipFile(dist["wheel"]).read(f"timemory-{__version__}.dist-info/METADATA").decode()
    for extra in ("local", "dashboard", "server", "mysql", "tidb", "bench", "all"):
        assert f"Provides-Extra: {extra}" in metadata


def test_the_core_install_has_no_heavy_parts_and_imports_alone(core: Path, tmp_path: Path) -> None:
    probe = ("import importlib.util, json, sys, time\n"
             "t = time.perf_counter()\nimport timemory\nseconds = time.perf_counter() - t\n"
             f"print(json.dumps({{'file': timemory.__file__, 'version': timemory.__version__, 'seconds': seconds,"
             f" 'installed': [m for m in {HEAVY!r} if importlib.util.find_spec(m)],"
             f" 'imported': [m for m in {HEAVY!r} if m in sys.modules]}}))")
    seen = json.loads(run([str(core / "python"), "-c", probe], cwd=tmp_path, env=clean_env()).stdout)
    assert seen["installed"] == [] and seen["imported"] == []
    assert seen["version"] == __version__
    assert not Path(seen["file"]).is_relative_to(ROOT)  # the installed copy, not the checkout
    assert run([str(core / "timemory"), "--version"], cwd=tmp_path, env=clean_env()).stdout.strip() == \
        f"timemory {__version__}"


def words_vector(text: str, dim: int = 64) -> list[float]:
    """A bag of words hashed into ``dim`` slots: texts sharing words point the same way."""
    v = np.zeros(dim, np.float32)
    for word in re.findall(r"[a-z]+", text.lower()):
        v[int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
    return (v / (np.linalg.norm(v) or 1.0)).tolist()


def embeddings_reply(body: dict[str, Any]) -> tuple[int, Any]:
    if "input" not in body:
        return 400, {"error": {"message": "only embeddings are scripted here"}}
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for i, text in enumerate(texts):
        vector: Any = words_vector(text)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(np.asarray(vector, np.float32).tobytes()).decode()
        data.append({"object": "embedding", "index": i, "embedding": vector})
    return 200, {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1,
                                                                                  "total_tokens": 1}}


def test_the_core_install_adds_and_searches_against_an_openai_compatible_server(core: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with FakeOpenAIServer(embeddings_reply) as server:
        env = clean_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="scripted", TIMEMORY_LLM_MODEL="scripted",
                        TIMEMORY_EMBEDDING_MODEL="scripted-words", XDG_DATA_HOME=str(tmp_path / "xdg"))
        timemory = str(core / "timemory")
        run([timemory, "add", "The user lives in Oslo.", "--user", "sam", "--type", "personal"], cwd=elsewhere,
            env=env)
        run([timemory, "add", "The user likes green tea.", "--user", "sam"], cwd=elsewhere, env=env)
        found = run([timemory, "search", "where does the user live", "--user", "sam"], cwd=elsewhere, env=env)
        listed = run([timemory, "list", "--user", "sam"], cwd=elsewhere, env=env)
    first = found.stdout.splitlines()[0]
    assert "Oslo" in first, found.stdout
    assert len(listed.stdout.splitlines()) == 2
    # Not run from a checkout: the data went to the per-user place, never to the working directory.
    assert (tmp_path / "xdg" / "timemory" / "timemory.db").is_file()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(("command", "extra"), [
    (["list"], "local"),  # nothing configured: the bundled models are the default
    (["dashboard"], "dashboard"),
    (["serve"], "server"),
    (["mcp", "--user", "sam"], "server"),
    (["list"], "mysql"),  # a MySQL URL without its driver
])
def test_a_missing_extra_is_a_clear_error_naming_it(core: Path, tmp_path: Path, command: list[str],
                                                    extra: str) -> None:
    env = clean_env(TIMEMORY_DATA_DIR=str(tmp_path / "data"))
    if extra != "local":
        env.update(OPENAI_BASE_URL="http://127.0.0.1:9/v1", TIMEMORY_EMBEDDING_MODEL="scripted-words")
    if extra == "mysql":
        # an embedder of known size, so nothing is asked of the (absent) server before the database connects
        env.update(TIMEMORY_DATABASE_URL="mysql+pymysql://root@127.0.0.1:3306/test",
                   TIMEMORY_EMBEDDING_MODEL="text-embedding-3-small")
    done = run([str(core / "timemory"), *command], cwd=tmp_path, env=env, check=False)
    assert done.returncode == 2
    assert f'pip install "timemory[{extra}]"' in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def full(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("full")
    bin_dir = new_venv(home / "venv")
    venv_site = Path(run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         cwd=home).stdout.strip())
    (venv_site / "checkout-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = f"{dist['wheel']}[local,dashboard,server]"
    run([str(bin_dir / "pip"), "install", "--quiet", wheel, "-c", str(constraints(home))], cwd=home)
    return bin_dir


def test_the_full_install_seeds_the_demo_and_starts_the_dashboard_from_anywhere(full: Path, tmp_path: Path) -> None:
    env = clean_env(TIMEMORY_DATA_DIR=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    timemory = str(full / "timemory")
    run([timemory, "-q", "seed-demo"], cwd=tmp_path, env=env)
    found = run([timemory, "search", "where does the user live", "--user", "maya"], cwd=tmp_path, env=env)
    assert "Lisbon" in found.stdout.splitlines()[0], found.stdout  # the bundled embedder, from the wheel's venv
    run([timemory, "add", "The user plays the cello.", "--user", "sam", "--type", "activity"], cwd=tmp_path, env=env)
    run([timemory, "add", "The user lives in Oslo.", "--user", "sam", "--type", "personal"], cwd=tmp_path, env=env)
    found = run([timemory, "search", "which instrument", "--user", "sam", "--mode", "vector"], cwd=tmp_path, env=env)
    assert "cello" in found.stdout.splitlines()[0], found.stdout
    port = free_port()
    app = subprocess.Popen([timemory, "dashboard", "--port", str(port)], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                    assert reply.read().decode().strip() == "ok"
                    break
            except OSError:
                assert app.poll() is None, app.stdout.read() if app.stdout else ""
                assert time.monotonic() < deadline, "the dashboard did not answer its health check in 90 s"
                time.sleep(0.5)
    finally:
        app.terminate()
        app.wait(timeout=30)
    # The installed app's script runs whole on the seeded data (the same files the command served).
    script = ("import sys, timemory\nfrom pathlib import Path\nfrom streamlit.testing.v1 import AppTest\n"
              "at = AppTest.from_file(str(Path(timemory.__file__).parent / '_app' / 'streamlit_app.py'),"
              " default_timeout=180)\nat.run()\n"
              "print('exceptions:', [e.value for e in at.exception])\nsys.exit(1 if at.exception else 0)\n")
    run([str(full / "python"), "-c", script], cwd=tmp_path, env=env)
