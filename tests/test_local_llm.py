"""End to end with no doubles: the real llama.cpp server as a managed child process, over HTTP via the OpenAI SDK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from timemory import Settings, TiMem
from timemory.providers import LocalLLMServer, free_port
from timemory.providers._local_llm import pid_alive
from timemory.wiring import build_llm

pytestmark = pytest.mark.local_llm


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("local-llm")


@pytest.fixture(scope="module")
def server(data_dir: Path):
    srv = LocalLLMServer(data_dir)
    srv.ensure_running()
    yield srv
    srv.stop()


def test_pipeline_over_http_stores_memory_with_provenance(server: LocalLLMServer, data_dir: Path, embedder) -> None:
    settings = Settings(_env_file=None, data_dir=data_dir, openai_api_key=None, openai_base_url=None)
    from timemory.wiring import build_store

    tm = TiMem(build_store(settings, embedder), embedder, build_llm(settings))
    messages = [
        {"id": "u1", "role": "user", "content": "Hi, my name is Ana. I work as a nurse and I love hiking in the Alps."},
        {"id": "a1", "role": "assistant", "content": "Nice to meet you, Ana! Hiking in the Alps sounds wonderful."},
        {"id": "u2", "role": "user", "content": "I also have a cat called Miso and I'm learning Spanish."},
        {"id": "a2", "role": "assistant", "content": "Miso is a lovely name. ¡Buena suerte con el español!"},
    ]
    result = tm.process_messages(messages, user_id="ana")
    assert result.status == "ok", result.errors
    assert 1 <= result.llm_calls <= 3 and result.embedding_calls >= 1
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.facts and all(f.content.strip() for f in result.facts)
    stored = tm.list_memories(user_id="ana")
    assert len(stored) >= 1
    # two exchanges in one run: each memory is linked to the user messages it came from (or, when none is close in
    # meaning, to the whole run, and says so)
    assert all((m.provenance == "turns" and set(m.source_message_ids) <= {"u1", "u2"})
               or (m.provenance == "session" and m.source_message_ids == ["u1", "a1", "u2", "a2"]) for m in stored)
    assert server.pid is not None and pid_alive(server.pid)


def test_streaming_chat_yields_tokens_and_saves_both(server: LocalLLMServer, data_dir: Path, embedder) -> None:
    settings = Settings(_env_file=None, data_dir=data_dir, openai_api_key=None, openai_base_url=None)
    from timemory.wiring import build_store

    llm = build_llm(settings)
    memory = TiMem(build_store(settings, embedder), embedder, llm)
    chat = memory.chat
    turn = chat.chat_with_memory_stream("Hello! Can you suggest a name for my new dog?", user_id="ben",
                                        session_id=None, process=False)
    tokens = list(turn)
    assert len(tokens) >= 2 and "".join(tokens).strip()
    msgs = memory.sessions.messages(turn.session_id, user_id="ben")
    assert [m.role for m in msgs] == ["user", "assistant"] and msgs[1].content == turn.reply


def test_second_start_reuses_the_running_server(server: LocalLLMServer, data_dir: Path) -> None:
    again = LocalLLMServer(data_dir)
    again.ensure_running()
    assert again.pid == server.pid and again.port == server.port and not again.owned
    again.stop()  # not its process: must leave it running
    assert pid_alive(server.pid or -1) and server.healthy()


def test_a_busy_server_is_shared_not_restarted(server: LocalLLMServer, data_dir: Path) -> None:
    """Two requests at once (a chat reply while the pipeline extracts): the second waits; nobody restarts it."""
    import threading

    settings = Settings(_env_file=None, data_dir=data_dir, openai_api_key=None, openai_base_url=None)
    llm = build_llm(settings)
    pid = server.pid
    replies: list[str] = []

    def ask(text: str) -> None:
        replies.append("".join(llm.stream([{"role": "user", "content": text}])))

    threads = [threading.Thread(target=ask, args=(f"Write two sentences about the number {n}.",)) for n in (3, 7)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert server.ensure_running() and server.pid == pid  # asked while both requests are in flight
    for t in threads:
        t.join(timeout=120)
    assert len(replies) == 2 and all(r.strip() for r in replies)
    assert server.pid == pid and "restarting" not in (data_dir / "llm-server.log").read_text(errors="replace")


def test_dead_server_is_restarted(server: LocalLLMServer) -> None:
    old = server.pid
    assert old is not None
    os.killpg(old, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server._alive() and time.monotonic() < deadline:  # until the killed process has exited
        time.sleep(0.1)
    server.ensure_running()
    assert server.pid != old and server.healthy()


def test_child_is_gone_after_the_owner_exits(tmp_path: Path) -> None:
    code = (
        "import json,sys; from pathlib import Path; from timemory.providers._local_llm import LocalLLMServer;"
        f"s=LocalLLMServer(Path({str(tmp_path)!r})); s.ensure_running(); print(json.dumps({{'pid': s.pid}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=True)
    pid = json.loads(out.stdout.strip().splitlines()[-1])["pid"]
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid)
    assert not (tmp_path / "llm-server.json").exists()


def test_api_chat_streams_tokens_from_the_real_model_before_the_reply_ends(server: LocalLLMServer,
                                                                           data_dir: Path) -> None:
    """`POST /v1/chat` on a real uvicorn process with the local model: tokens arrive one by one, the reply event
    at the last token, and the trace once the queued exchange has been learnt."""
    from datetime import datetime

    import httpx
    from test_api import Server

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env |= {"TIMEMORY_DATA_DIR": str(data_dir), "TIMEMORY_DATABASE_URL": f"sqlite:///{data_dir}/api.db",
            "HF_HUB_OFFLINE": "1"}  # the API process finds the model server above running and uses it
    api = Server(env, log=data_dir / "api.log")
    try:
        arrivals: list[tuple[str, float, str]] = []
        with httpx.stream("POST", f"{api.url}/v1/chat", params={"user_id": "sse"}, timeout=300,
                          json={"message": "I love hiking in the Alps with my dog."}) as r:
            assert r.status_code == 200
            kind = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[len("event: "):]
                elif line.startswith("data: "):
                    arrivals.append((kind, time.monotonic(), line[len("data: "):]))
                    if kind == "reply":
                        reply_wall = time.time()
        kinds = [k for k, _, _ in arrivals]
        assert kinds[0] == "session" and kinds.count("token") >= 3 and "reply" in kinds, kinds
        tokens = [t for k, t, _ in arrivals if k == "token"]
        reply_at = next(t for k, t, _ in arrivals if k == "reply")
        assert tokens[-1] - tokens[0] > 0.05 and reply_at >= tokens[-1]  # streamed, not sent at once at the end
        reply = json.loads(next(d for k, _, d in arrivals if k == "reply"))
        assert reply["content"] and "".join(json.loads(d) for k, _, d in arrivals if k == "token").strip()
        assert kinds[-1] in ("trace", "error") and kinds.index("reply") < len(kinds) - 1
        if kinds[-1] == "trace":  # the small model may fail the structured output; the trace then says why
            trace = json.loads(arrivals[-1][2])
            assert trace["source_message_ids"][1] == reply["message_id"]
            # the reply arrived at its last token, before the run that learnt from the exchange had ended
            learnt = datetime.fromisoformat(trace["created_at"]).timestamp()
            assert reply_wall < learnt, (reply_wall, learnt)
    finally:
        api.stop()


OLD = ["The user lives in Paris with two cats.", "The user works as a nurse at a children's hospital.",
       "The user is single.", "The user commutes by train.", "The user is vegetarian.", "The user plays the cello.",
       "The user runs 5 km every Sunday.", "The user is allergic to peanuts."]
NEW = ["The user moved to Berlin.", "The user is now a software developer.", "The user is engaged to Sam.",
       "The user cycles to work every day.", "The user eats fish again.", "The user plays the cello in a quartet.",
       "The user runs 10 km every Sunday.", "The user has a dog called Pico."]


def test_a_consolidation_of_three_facts_and_five_memories_never_fails(server: LocalLLMServer, data_dir: Path) -> None:
    """The bundled model with the schema of each request (llama.cpp's grammar): 20 different consolidations, each
    with exactly one decision per fact, ids among those shown, within the cap — none cut, none invalid."""
    import random
    from datetime import UTC, datetime

    from timemory import ExtractedFact, Memory
    from timemory.core import number_candidates
    from timemory.core._consolidation import consolidation_cap, plan_consolidation
    from timemory.providers import Usage

    settings = Settings(_env_file=None, data_dir=data_dir, openai_api_key=None, openai_base_url=None)
    llm = build_llm(settings)
    pick = random.Random(20)
    NOW = datetime(2026, 1, 1, tzinfo=UTC)
    for run in range(20):
        facts = [ExtractedFact(content=text, type="personal") for text in pick.sample(NEW, 3)]
        shown = [Memory(id=f"m{run}-{i}", user_id="u", content=text, type="personal", status="active",
                        created_at=NOW, updated_at=NOW) for i, text in enumerate(pick.sample(OLD, 5))]
        similar = [[(m, 0.5, "nearest") for m in shown] for _ in facts]
        short_ids, candidates = number_candidates(similar)
        usage = Usage()
        plan = plan_consolidation(llm, facts, candidates, short_ids, usage)
        from_model = [d for d in plan.decisions if not d.reason.startswith("no usable decision")]
        assert [d.fact for d in from_model] == [0, 1, 2], (run, plan.decisions)  # one each, in order
        # the schema leaves only what needs both decisions to judge: two facts changing the same memory
        refused = [d.rejected_because for d in from_model if not d.accepted]
        assert set(refused) <= {"this memory is already changed by another decision"}, (run, plan.decisions)
        assert all(d.memory_id is None or d.memory_id in {m.id for m in shown} for d in plan.decisions)
        assert usage.calls == 1 and usage.completion_tokens < consolidation_cap(3, 5), (run, usage)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
def test_sigterm_ends_serve_and_worker_with_the_model_server_they_started(tmp_path: Path, command: list[str]) -> None:
    """A service manager stops a process with SIGTERM: the bundled model's server it started must stop too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TIDB_", "TIMEMORY_"))}
    env.update(TIMEMORY_DATA_DIR=str(tmp_path), HF_HUB_OFFLINE="1", PYTHONPATH=str(Path(__file__).parents[1]))
    queue = ("from timemory import TiMem, Settings; TiMem.from_settings(Settings()).jobs.enqueue("
             "[{'role': 'user', 'content': 'I keep bees.'}], user_id='ana')")
    subprocess.run([sys.executable, "-c", queue], env=env, check=True, timeout=120)
    if command[0] == "serve":
        command = ["serve", "--port", str(free_port())]
    proc = subprocess.Popen([sys.executable, "-m", "timemory", *command], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state = tmp_path / "llm-server.json"
    deadline = time.monotonic() + 180
    while not state.exists() and time.monotonic() < deadline:  # the queued exchange starts the model
        assert proc.poll() is None
        time.sleep(0.2)
    pid = json.loads(state.read_text())["pid"]
    assert pid_alive(pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), f"the model server {pid} outlived `{' '.join(command[:1])}`"
