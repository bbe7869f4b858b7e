"""`simguard worker`: the loop, its signals, and its /metrics and /healthz."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from types import FrameType
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from simguard.logs import configure_logging
from simguard.settings import Settings
from workers.faults import FaultSwitches
from workers.loop import WorkerLoop

log = logging.getLogger("simguard.worker")

# A step that has not come back for this long means the loop is stuck.
HEALTHY_STEP_SECONDS = 60.0


# Longest a connection may stay silent while sending its request or reading
# the answer: a client that stops half-way holds one thread for this long.
CONNECTION_TIMEOUT_SECONDS = 5.0


class _Steps(Protocol):
    last_step_at: float


class _QuietHandler(WSGIRequestHandler):
    # StreamRequestHandler sets this as the connection's socket timeout.
    timeout = CONNECTION_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A thread per connection, so that one slow or half-sent request cannot
    keep the liveness probe waiting behind it."""

    daemon_threads = True


def serve_metrics(host: str, port: int, loop: _Steps) -> WSGIServer:
    metrics_app = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            healthy = time.monotonic() - loop.last_step_at < HEALTHY_STEP_SECONDS
            start_response(
                "200 OK" if healthy else "503 Service Unavailable", [("Content-Type", "text/plain")]
            )
            return [b"ok\n" if healthy else b"stuck\n"]
        result: Iterable[bytes] = metrics_app(environ, start_response)
        return result

    server = make_server(
        host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def run_worker(settings: Settings, name: str | None = None) -> int:
    configure_logging(settings.log_level)
    worker_name = name or socket.gethostname()
    stop_requested = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        # Only a flag: the loop finishes its step (commit included), then closes.
        del frame
        log.info("signal %s: draining", signum)
        stop_requested.set()
        if loop is not None:
            loop.stopping = True

    # Installed before connecting, so a SIGTERM during start-up still drains.
    loop: WorkerLoop | None = None
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop = WorkerLoop(settings, worker_name, faults=FaultSwitches.from_environment())
    loop.stopping = stop_requested.is_set()
    server = serve_metrics(settings.worker_metrics_host, settings.worker_metrics_port, loop)
    try:
        loop.run()
    finally:
        server.shutdown()
    return 0
