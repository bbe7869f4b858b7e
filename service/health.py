"""GET /healthz (the process answers) and GET /readyz (it can do its job).

Liveness touches nothing else: a broker outage must not make an orchestrator
restart every API process. Readiness asks Kafka for cluster metadata and
pings the store, each within a bound, and names what failed.
"""

from __future__ import annotations

import logging
from typing import Final

import orjson
from flask import Blueprint, Response
from kafka import KafkaProducer
from kafka.errors import KafkaError
from marshmallow import Schema, fields

from service import openapi
from service.context import service_context
from service.problems import FieldError, Unavailable
from simguard.kafka_clients import connection_config
from simguard.settings import Settings

# A readiness probe that hangs is worse than one that fails: bound each check.
KAFKA_PROBE_TIMEOUT_SECONDS: Final = 2.0

blueprint = Blueprint("health", __name__)
log = logging.getLogger("simguard.api")


class HealthSchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())


@blueprint.get("/healthz", provide_automatic_options=False)
@openapi.operation(
    summary="Liveness",
    operationId="healthz",
    tags=["operations"],
    security=[],
    responses={"200": openapi.success("The process answers.", HealthSchema)},
)
def healthz() -> Response:
    return Response(orjson.dumps({"status": "ok"}), mimetype="application/json")


@blueprint.get("/readyz", provide_automatic_options=False)
@openapi.operation(
    summary="Readiness: Kafka and the store reachable",
    operationId="readyz",
    tags=["operations"],
    security=[],
    responses={
        "200": openapi.success("Kafka metadata and the store answered.", HealthSchema),
        "503": openapi.problem(
            "Kafka or the store did not answer; `errors` names which.",
            **{"Retry-After": openapi.RETRY_AFTER_HEADER},
        ),
    },
)
def readyz() -> Response:
    context = service_context()
    failures: list[FieldError] = []
    try:
        probe_kafka(context.settings, KAFKA_PROBE_TIMEOUT_SECONDS)
    except KafkaError as error:
        failures.append(FieldError("/checks/kafka", f"Kafka unreachable: {type(error).__name__}"))
    try:
        context.store().ping()
    except Exception as error:  # any driver's error means "not ready", nothing more
        failures.append(FieldError("/checks/store", f"store unreachable: {type(error).__name__}"))
    if failures:
        names = ", ".join(f.pointer.rsplit("/", 1)[-1] for f in failures)
        raise Unavailable(
            f"Not ready: {names} unreachable.",
            context.settings.api_retry_after_seconds,
            failures,
        )
    body = {"status": "ready", "checks": {"kafka": "ok", "store": "ok"}}
    return Response(orjson.dumps(body), mimetype="application/json")


def probe_kafka(settings: Settings, timeout_seconds: float) -> None:
    """Fetch cluster metadata from the bootstrap servers, or raise KafkaError.

    A client's bootstrap is exactly that: connect, ask for metadata, insist
    that it lists brokers. A producer, because kafka-python 3.0's admin client
    leaves its I/O thread running when its bootstrap fails, which a probe
    repeated through an outage would pile up; a producer cleans up after
    itself. It sends nothing, so it needs no idempotence.
    """
    timeout_ms = int(timeout_seconds * 1000)
    probe = KafkaProducer(
        **connection_config(settings),
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
        enable_idempotence=False,
        acks=1,
        metrics_enabled=False,
        client_id="simguard-api-readiness",
    )
    probe.close(timeout=0)
