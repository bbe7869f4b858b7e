"""gunicorn settings for the API (`simguard api` loads them; so can
`gunicorn -c python:service.gunicorn_conf service.wsgi:app`).

Override any of them with GUNICORN_CMD_ARGS, e.g. "--worker-connections 512".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# gevent, because a request mostly waits for Kafka's acknowledgement: one
# process keeps many requests in flight and its single producer batches their
# records together. Greenlets hand over without an OS thread switch and GIL
# hand-off per wait, which measured 490 -> 670 single-event requests/s
# (bench/RESULTS.md); the work between waits holds the GIL either way, so
# processes are what use more cores. The worker patches threading, sockets and
# selectors before the app is loaded, so kafka-python's I/O thread and
# psycopg's waits become cooperative too. HTTP is read by gevent's own server
# rather than gunicorn's parser, with gunicorn's bounds (service.http_worker).
worker_class = "service.http_worker.ApiWorker"
# Requests (and keep-alive connections) in flight per process: each may hold a
# body of up to the batch limit, so this bounds memory as well as concurrency.
worker_connections = 256
# Longer than the Kafka ack timeout, so a worker is never killed mid-request.
timeout = 30
# Time for in-flight requests to get their acks and answers on SIGTERM.
graceful_timeout = 20
keepalive = 5
# The app writes one structured line per request; gunicorn's own access log
# would only repeat it without the operator or the route template.
accesslog = None
errorlog = "-"
# See service.gunicorn_logger: no access line is formatted only to be dropped.
logger_class = "service.gunicorn_logger.NoAccessLog"
loglevel = "info"
# Every line the API process writes is one JSON object, so a log pipeline
# parses gunicorn's own lines and third-party warnings (kafka-python's
# reconnects) the same way as the request lines.
_JSON_TO_STDERR = ["json_stderr"]
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "simguard.logs.JsonFormatter"}},
    "handlers": {
        "json_stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "WARNING", "handlers": _JSON_TO_STDERR},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": _JSON_TO_STDERR, "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        # The app's level comes from settings.log_level (service.request_log).
        "simguard": {"level": "INFO", "handlers": _JSON_TO_STDERR, "propagate": False},
    },
}
# Workers import the app after the fork: the Kafka producer, the store and the
# Prometheus value files must belong to the worker, not the master.
preload_app = False
# gunicorn >= 25 opens a control socket at one per-user default path; two API
# instances on a host (a test run next to a demo, a benchmark) would contend
# for it. Signals (TERM, HUP, TTIN/TTOU) remain the way to manage the master.
control_socket_disable = True


def _multiprocess_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def on_starting(server: Any) -> None:
    """Empty the metrics directory: files of a previous run's workers would
    otherwise be added to this run's counters.

    Only prometheus_client's own files (*.db) are removed, so a directory set
    by mistake to somewhere shared loses nothing else.
    """
    directory = _multiprocess_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the aggregate."""
    if _multiprocess_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
