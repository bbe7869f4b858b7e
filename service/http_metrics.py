"""Per-request Prometheus metrics and the /metrics exposition.

Under gunicorn every worker writes its samples to PROMETHEUS_MULTIPROC_DIR
(set by service.serve before prometheus_client is first imported); a scrape of
any worker then aggregates all of them. Outside gunicorn (tests, a plain
`flask run`) the default registry is exposed.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from service import api_metrics as metrics
from service.openapi import operation
from service.request_log import elapsed_seconds, route_template

blueprint = Blueprint("metrics", __name__)


def observe_request(response: Response) -> Response:
    """after_request: count and time the answer under its route template."""
    observe(route_template(), request.method, response.status_code, elapsed_seconds())
    return response


def observe(route: str, method: str, status: int, seconds: float) -> None:
    metrics.http_requests_total.labels(route, method, str(status)).inc()
    metrics.http_request_duration_seconds.labels(route).observe(seconds)


@blueprint.get("/metrics", provide_automatic_options=False)
@operation(
    summary="Prometheus exposition",
    tags=["operations"],
    responses={
        "200": {
            "description": "Metrics in the Prometheus text format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
    security=[],
)
def expose_metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # A fresh registry per scrape is how prometheus_client's multiprocess
        # collector is meant to be used: it reads every worker's files.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        payload = generate_latest(registry)
    else:
        payload = generate_latest(REGISTRY)
    return Response(payload, content_type=CONTENT_TYPE_LATEST)
