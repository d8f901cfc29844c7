"""Running TiMemory as a service: the API server (uvicorn) and standalone queue workers."""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys
import threading

from timemory.errors import ConfigurationError
from timemory.facade import TiMem


def is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except (OSError, ValueError):
        return False


def exit_on_sigterm() -> None:
    """Make SIGTERM end this process the way Ctrl-C does, so its exit handlers run (one stops the bundled model's
    server, which runs in a session of its own). uvicorn shuts down on SIGTERM and then raises it again to the
    handler installed before it: without this one, that is the default, which ends the process on the spot."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def serve(host: str = "127.0.0.1", port: int = 8000, *, workers: int = 1, worker_threads: int = 1) -> None:
    """Serve the HTTP API. Without any API key the server only binds to loopback: create one with
    ``python -m timemory keys create``."""
    import uvicorn

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
        uvicorn.run("timemory.service.api.serving:app_from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="info")
    else:
        from timemory.service.api import create_app

        uvicorn.run(create_app(worker_threads=int(threads)), host=host, port=port, log_level="info")


def run_worker(*, lease_seconds: float = 60.0, poll_seconds: float = 0.5, once: bool = False) -> int:
    """Drain the job queue in this process until interrupted (or, with ``once``, until it is empty)."""
    worker = TiMem.from_settings().worker(lease_seconds=lease_seconds, poll_seconds=poll_seconds)
    if once:
        while worker.run_once():
            pass
        return worker.processed
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"worker {worker.id} is draining the queue (Ctrl-C stops it after the current job)", flush=True)
    worker.run_forever(stop)
    return worker.processed
