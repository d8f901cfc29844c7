"""Running TiMemory as a service: the API server (uvicorn) and standalone queue workers."""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys
import threading
from types import FrameType

from timemory._extras import require
from timemory._facade import TiMem
from timemory.errors import ConfigurationError

# What ends a command: Ctrl-C, `kill` or a scheduler's stop, a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_caught: list[int] = []


def is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except (OSError, ValueError):
        return False


def interrupt_on_signals() -> None:
    """Make SIGTERM and SIGHUP stop a command the way Ctrl-C does: a KeyboardInterrupt in the main thread, so a replay
    records that it stopped (and resumes when run again) and every ``finally`` and exit handler runs; one stops the
    bundled model's server, which runs in a session of its own. Each further signal interrupts again, so a second one
    cuts a slow shutdown short (the model's server is then killed instead of waited for)."""
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _caught.append(signum)
    raise KeyboardInterrupt


def stopped_by() -> int | None:
    """The first of the signals that interrupted this process, if one did."""
    return _caught[0] if _caught else None


def interrupted_status() -> int:
    """The exit status of a command a signal stopped: 128 + the first signal's number, as a shell reports it."""
    return 128 + (stopped_by() or signal.SIGINT)


def exit_on_sigterm() -> None:
    """Make SIGTERM end this process the way Ctrl-C does, so its exit handlers run (one stops the bundled model's
    server, which runs in a session of its own). uvicorn shuts down on SIGTERM and then raises it again to the
    handler installed before it: without this one, that is the default, which ends the process on the spot. uvicorn
    listens for SIGINT and SIGTERM only (a supervisor of several processes also for SIGHUP, which restarts them): a
    hang-up shuts a single server down as SIGTERM does."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        signal.signal(signal.SIGHUP, lambda signum, frame: signal.raise_signal(signal.SIGTERM))


def serve(host: str = "127.0.0.1", port: int = 8000, *, workers: int = 1, worker_threads: int = 1) -> None:
    """Serve the HTTP API. Without any API key the server only binds to loopback: create one with
    ``timemory keys create``."""
    for module in ("fastapi", "prometheus_client"):
        require(module, "server", "The HTTP API")
    uvicorn = require("uvicorn", "server", "The HTTP API")

    if not is_loopback(host) and not TiMem.from_settings().keys.any_active():
        raise ConfigurationError(f"Refusing to listen on {host} with no API key: anyone could read every memory. "
                                 "Create a key (python -m timemory keys create --admin) or bind to 127.0.0.1.")
    threads = str(max(0, worker_threads))
    exit_on_sigterm()
    if workers > 1:  # each process builds its own engine from the settings
        import os
        import tempfile

        os.environ["TIMEMORY_API_WORKER_THREADS"] = threads
        # every process writes its metrics here, so a scrape of any of them counts them all
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="timemory-metrics-"))
        uvicorn.run("timemory.service._api.serving:app_from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="info")
    else:
        from timemory.service._api import create_app

        uvicorn.run(create_app(worker_threads=int(threads)), host=host, port=port, log_level="info")


def run_worker(*, lease_seconds: float = 60.0, poll_seconds: float = 0.5, once: bool = False) -> int:
    """Drain the job queue in this process until interrupted (or, with ``once``, until it is empty)."""
    worker = TiMem.from_settings().worker(lease_seconds=lease_seconds, poll_seconds=poll_seconds)
    if once:
        while worker.run_once():
            pass
        return worker.processed
    stop = threading.Event()

    def finish(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # asked twice: stop now; the job's lease runs out and the queue gives it out again
            _interrupt(signum, frame)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, finish)
    print(f"worker {worker.id} is draining the queue (Ctrl-C stops it after the current job; twice, at once)",
          flush=True)
    worker.run_forever(stop)
    return worker.processed
