"""Every command that can start the bundled model stops it, however the command is stopped: SIGTERM (``kill``, a
scheduler), SIGINT (Ctrl-C), SIGHUP (a closed terminal), a second signal during the shutdown, a signal while the
model is still starting. Each case runs the real command on its own data directory and finds the model's server by
its process (its command line and the data directory in its environment), not by what the command says about it.

The cases run a few at a time (one fixture starts those selected), so that the whole file takes well under a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from timemory.providers import free_port

pytestmark = pytest.mark.local_llm

ROOT = Path(__file__).resolve().parents[1]
AT_ONCE = 3  # cases running together (each starts a command and a model server)
START_TIMEOUT = 150.0  # seconds for a command to bring the model up (the machine may be busy)
EXIT_TIMEOUT = 20.0  # seconds a signalled command has to exit, its model server with it
DRAIN_TIMEOUT = 150.0  # a worker asked once finishes its current job first
EXCHANGE = [{"role": "user", "content": "I keep bees on my roof in Lyon and I am learning the cello."},
            {"role": "assistant", "content": "Bees and a cello: a busy roof!"}]
LOCOMO = [{
    "sample_id": "c1",
    "conversation": {
        "speaker_a": "Ana", "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [{"speaker": "Ana", "dia_id": "D1:1", "text": "I work as a nurse and I love hiking."},
                      {"speaker": "Ben", "dia_id": "D1:2", "text": "Nice! I am a carpenter."}],
        "session_2_date_time": "10:00 am on 2 June, 2023",
        "session_2": [{"speaker": "Ana", "dia_id": "D2:1", "text": "Next week I start a new job as a teacher."},
                      {"speaker": "Ben", "dia_id": "D2:2", "text": "Good luck with it!"}],
    },
    "qa": [{"question": "What is Ana's job?", "answer": "teacher", "evidence": ["D2:1"], "category": 1}],
}]
REPLAY = ("replay", "{data}/locomo.json", "--format", "locomo", "--user-prefix", "t-", "--speaker", "a",
          "--experiment", "tiny")
MCP_CALLS = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
     "params": {"name": "process_exchange", "arguments": {"user_message": EXCHANGE[0]["content"]}}},
]


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    sig: signal.Signals
    when: str = "up"  # "up": the model answers; "starting": its process exists, it does not answer yet
    twice: bool = False  # a second signal while the command shuts down
    drains: bool = False  # a worker asked once: it stops after its current job

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("replay-SIGTERM", REPLAY, signal.SIGTERM),
    Case("replay-SIGINT", REPLAY, signal.SIGINT),
    Case("replay-SIGHUP", REPLAY, signal.SIGHUP),
    Case("ingest-SIGHUP-while-starting", ("ingest", "{data}/exchange.json", "--user", "ana"), signal.SIGHUP,
         when="starting"),
    Case("ingest-SIGTERM-twice", ("ingest", "{data}/exchange.json", "--user", "ana"), signal.SIGTERM, twice=True),
    Case("evaluate-SIGTERM", ("evaluate", "{data}/locomo.json", "--format", "locomo", "--user-prefix", "t-",
                              "--speaker", "a", "--answer"), signal.SIGTERM),
    Case("reflect-SIGINT", ("reflect", "--user", "maya"), signal.SIGINT),
    Case("mcp-SIGTERM", ("mcp", "--user", "ana"), signal.SIGTERM),
    Case("mcp-SIGHUP-while-starting", ("mcp", "--user", "ana"), signal.SIGHUP, when="starting"),
    Case("worker-SIGHUP", ("worker",), signal.SIGHUP, drains=True),
    Case("worker-SIGINT-twice", ("worker",), signal.SIGINT, twice=True),
    Case("serve-SIGHUP", ("serve", "--port", "{port}"), signal.SIGHUP),
]


@dataclass
class Outcome:
    returncode: int | None = None
    seconds: float = 0.0  # from the (first) signal to the command's exit
    left: list[int] = field(default_factory=list)  # model servers of the data dir alive once it exited
    stderr: str = ""
    resumed: str = ""  # replay: what running it again said


def env_for(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TIDB_", "TIMEMORY_"))}
    env.update(TIMEMORY_DATA_DIR=str(data), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    return env


def model_servers(data: Path) -> list[int]:
    """The live processes of the bundled model's server started for ``data`` (a zombie is not alive)."""
    mark = f"TIMEMORY_DATA_DIR={data}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"llama_cpp.server" not in (entry / "cmdline").read_bytes():
                continue
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def wait_until(predicate, timeout: float, proc: subprocess.Popen[str] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return predicate()


def run_case(case: Case, data: Path, template: Path) -> Outcome:
    data.mkdir(parents=True)
    for db in template.glob("timemory.db*"):
        shutil.copy(db, data / db.name)
    (data / "locomo.json").write_text(json.dumps(LOCOMO))
    (data / "exchange.json").write_text(json.dumps(EXCHANGE))
    args = [a.format(data=data, port=free_port()) for a in case.args]
    stderr = data / "stderr.txt"
    with open(stderr, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "timemory", "-q", *args], cwd=data, env=env_for(data),
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, text=True)
    outcome = Outcome()
    try:
        assert proc.stdin is not None
        if case.args[0] == "mcp":  # the client asks it to learn from an exchange, and keeps stdin open
            proc.stdin.write("".join(json.dumps(call) + "\n" for call in MCP_CALLS))
            proc.stdin.flush()
        up = (lambda: bool(model_servers(data))) if case.when == "starting" else (
            lambda: (data / "llm-server.json").exists() and bool(model_servers(data)))
        if not wait_until(up, START_TIMEOUT, proc):
            raise AssertionError(f"{case}: the model never came up (exit {proc.poll()}): {stderr.read_text()[-2000:]}")
        signalled = time.monotonic()
        proc.send_signal(case.sig)
        if case.twice:
            time.sleep(0.2)
            if proc.poll() is None:
                proc.send_signal(case.sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=DRAIN_TIMEOUT if case.drains else EXIT_TIMEOUT)
        outcome.seconds = time.monotonic() - signalled
        outcome.returncode = proc.poll()
        # an exited process's children may take a moment to be reaped; a live one stays
        wait_until(lambda: not model_servers(data), 3.0)
        outcome.left = model_servers(data)
        outcome.stderr = stderr.read_text()[-2000:]
        if case.name == "replay-SIGTERM" and outcome.returncode is not None:
            # it resumes: the exchange it stopped in runs again
            again = subprocess.run([sys.executable, "-m", "timemory", "-q", *args, "--limit", "1"], cwd=data,
                                   env=env_for(data), capture_output=True, text=True, timeout=300)
            outcome.resumed = again.stdout + again.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        for pid in model_servers(data):  # never leave one behind, whatever the test found
            os.kill(pid, signal.SIGKILL)
    return outcome


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> Iterator[dict[str, Future[Outcome]]]:
    """Run the selected cases, a few at a time, each on a copy of one database (the demo users, one queued job)."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec") and "case" in item.callspec.params]
    root = tmp_path_factory.mktemp("signals")
    template = root / "template"
    seed = ("from timemory import TiMem, Settings; from timemory.lab._demo import seed_demo; "
            "tm = TiMem.from_settings(Settings()); seed_demo(tm); "
            f"tm.jobs.enqueue({EXCHANGE!r}, user_id='ana')")
    subprocess.run([sys.executable, "-c", seed], env=env_for(template), cwd=ROOT, check=True, timeout=300,
                   capture_output=True)
    pool = ThreadPoolExecutor(max_workers=AT_ONCE)
    futures = {case.name: pool.submit(run_case, case, root / case.name, template) for case in selected}
    yield futures
    pool.shutdown(wait=True)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_signal_stops_the_command_and_the_model_server_it_started(
        case: Case, outcomes: dict[str, Future[Outcome]]) -> None:
    out = outcomes[case.name].result(timeout=600)
    limit = DRAIN_TIMEOUT if case.drains else EXIT_TIMEOUT
    assert out.returncode is not None, f"`{case.args[0]}` still ran {limit:.0f}s after {case.sig.name}: {out.stderr}"
    assert not out.left, f"the model server {out.left} outlived `{case.args[0]}` ({case.sig.name}): {out.stderr}"
    if case.args[0] in ("serve", "worker") and not case.twice:
        assert out.returncode in (0, 128 + signal.SIGTERM, 128 + case.sig), out.stderr  # a clean stop
    elif not case.twice:  # stopped as Ctrl-C stops it, with the status a shell gives a signal's stop
        assert out.returncode == 128 + case.sig, (out.returncode, out.stderr)
        assert "Traceback" not in out.stderr, out.stderr
    if case.args[0] == "replay":
        assert "stopped: run the same command again to resume" in out.stderr, out.stderr
    if case.name == "replay-SIGTERM":
        assert re.search(r"\b1 exchanges run, 0 already done, [01] failed, of 1\b", out.resumed), out.resumed
