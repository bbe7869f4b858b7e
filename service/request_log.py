"""Structured logs: one JSON object per line, one line per request.

What a line may carry is fixed here: route template, method, status,
correlator, operator, accepted count, duration. Never the API key, a body, an
identity number or a holder_ref; a field only gets in by being named below.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from flask import Response, g, request

from simguard.logs import JsonFormatter

log = logging.getLogger("simguard.api")


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever sys.stderr is at the time of the record, so a
    replaced stderr (a test runner's capture, a daemoniser) is followed."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        del value


def configure_logging(level: str) -> None:
    """Give the `simguard` logger a JSON handler on stderr, once per process.

    Under gunicorn the logger already has one (service.gunicorn_conf's
    logconfig_dict, which also covers gunicorn's and other libraries' lines).
    Elsewhere it gets its own and still propagates, so an embedding
    application (or pytest) sees the records too.
    """
    logger = logging.getLogger("simguard")
    logger.setLevel(level.upper())
    if logger.handlers:
        return
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)


def start_timer() -> None:
    """before_request: the clock for the duration metric and the log line."""
    g.started = time.perf_counter()


def elapsed_seconds() -> float:
    started: float | None = g.get("started")
    return 0.0 if started is None else time.perf_counter() - started


def route_template() -> str:
    """The URL rule (`/v1/sims/<imsi>`), never the raw path: bounded labels."""
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def log_request(response: Response) -> Response:
    """after_request: the one line per request."""
    write_request_line(
        method=request.method,
        route=route_template(),
        status=response.status_code,
        correlator=g.get("correlator"),
        operator=g.get("operator"),
        seconds=elapsed_seconds(),
        accepted=g.get("accepted"),
    )
    return response


def write_request_line(
    *,
    method: str,
    route: str,
    status: int,
    correlator: str | None,
    operator: str | None,
    seconds: float,
    accepted: int | None,
) -> None:
    fields: dict[str, Any] = {
        "method": method,
        "route": route,
        "status": status,
        "correlator": correlator,
        "operator": operator,
        "duration_ms": round(seconds * 1000, 3),
    }
    if accepted is not None:
        fields["accepted"] = accepted
    log.info("request", extra={"fields": fields})
