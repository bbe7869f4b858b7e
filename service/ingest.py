"""POST /v1/activations, /v1/registrations, /v1/network-events, /v1/usage.

A request is one event or `{"events": [...]}`. It is answered 202 only after
Kafka acknowledged every record; any refusal (400, 401, 403, 413, 422, 429,
503) covers the whole request, and an operator may always resend: the workers
apply each event_id once. `accept` is the request's whole handling; it is
served by service.ingest_front ahead of Flask, and by the Flask view behind it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from flask import Blueprint, Response, g, request
from marshmallow import Schema, fields
from werkzeug.wrappers import Request

from schemas.attestation import HEADER as attestation_header
from schemas.attestation import sign as attestation_sign
from schemas.events import EVENT_KINDS, EventKind
from schemas.fast_events import FAST_SCHEMAS, FastEventLoader
from schemas.operator_scope import within_plmns
from service import api_metrics as metrics
from service import openapi
from service.context import ServiceContext, service_context
from service.payload import EventLoader, batch_schema, is_batch, read_json
from service.problems import Answer, FieldError, PermissionDenied, Problem
from service.pseudonymise import pseudonymise_registration
from service.publisher import OutgoingRecord
from service.rate_limit import RateLimiter
from service.wire import encode_wire
from simguard.api_keys import ApiKey
from simguard.settings import Settings

# URL path per kind (EVENT_KINDS keys are also the metric label values).
KIND_PATHS: Final[dict[str, str]] = {
    "activations": "/v1/activations",
    "registrations": "/v1/registrations",
    "network_events": "/v1/network-events",
    "usage": "/v1/usage",
}


class AcceptedSchema(Schema):
    accepted = fields.Integer(
        required=True,
        metadata={"description": "Events in the request, resends included."},
    )
    event_ids = fields.List(fields.String(), required=True)


@dataclass(frozen=True)
class IngestRoute:
    """One kind's endpoint: its schemas instantiated once, its topic."""

    kind_key: str
    kind: EventKind
    path: str
    topic: str
    loader: EventLoader
    to_wire: Callable[[dict[str, Any]], dict[str, Any]]
    # Shared by the kinds: an operator's limit covers all its events.
    rate_limiter: RateLimiter


@dataclass
class Exchange:
    """What an ingest request has established so far; its log line names
    them whatever the answer turns out to be."""

    correlator: str
    operator: str | None = None
    accepted: int | None = None


def ingest_routes(settings: Settings) -> dict[str, IngestRoute]:
    """Every kind's route, by URL path."""
    topics = settings.topics()
    rate_limiter = RateLimiter.from_settings(settings)
    routes: dict[str, IngestRoute] = {}
    for kind_key, path in KIND_PATHS.items():
        kind = EVENT_KINDS[kind_key]
        routes[path] = IngestRoute(
            kind_key=kind_key,
            kind=kind,
            path=path,
            topic=topics[kind_key],
            loader=EventLoader(
                fast=(
                    FastEventLoader(kind.request_schema)
                    if kind.request_schema in FAST_SCHEMAS
                    else None
                ),
                single_schema=kind.request_schema(),
                batch_schema=batch_schema(kind, settings.api_max_batch_events)(),
                max_events=settings.api_max_batch_events,
            ),
            to_wire=_wire_transform(kind_key, settings.hmac_secret),
            rate_limiter=rate_limiter,
        )
    return routes


def create_ingest_blueprint(routes: Mapping[str, IngestRoute], max_events: int) -> Blueprint:
    """The routes in Flask's URL map: documented, answered 405 for other
    methods, and served by Flask wherever service.ingest_front is not in front."""
    blueprint = Blueprint("ingest", __name__)
    for route in routes.values():
        view = operation_for(route, max_events)(_make_view(route))
        blueprint.add_url_rule(
            route.path,
            endpoint=f"submit_{route.kind_key}",
            view_func=view,
            methods=["POST"],
            provide_automatic_options=False,
        )
    return blueprint


def _wire_transform(kind_key: str, secret: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if kind_key == "registrations":
        # Before anything is published or logged: the raw ID ends here.
        return lambda event: pseudonymise_registration(event, secret)
    return lambda event: event


def _make_view(route: IngestRoute) -> Callable[[], Response]:
    def submit() -> Response:
        exchange = Exchange(g.correlator)
        try:
            return accept(route, service_context(), request, exchange).to_response()
        finally:
            g.operator = exchange.operator
            g.accepted = exchange.accepted

    submit.__name__ = f"submit_{route.kind_key}"
    return submit


def accept(
    route: IngestRoute, context: ServiceContext, request: Request, exchange: Exchange
) -> Answer:
    """The 202 for a request whose every event Kafka acknowledged; a Problem
    (refusing the whole request) otherwise."""
    settings = context.settings
    events_in_request = 1
    try:
        api_key = context.authenticator.require(request.headers.get("Authorization"))
        exchange.operator = api_key.operator
        if api_key.is_regulator:
            raise PermissionDenied("A regulator's key reads SIMs; it does not send events.")
        body, body_bytes = read_json(request, settings.api_max_body_bytes)
        batch = is_batch(body, settings.api_max_batch_events)
        if batch:
            events_in_request = max(len(body["events"]), 1)
        route.rate_limiter.admit(api_key.operator, events_in_request, body_bytes)
        events = route.loader.load(body, batch)
        _check_operators(events, api_key, batch)
        records, event_ids = _records(route, events, settings.attestation_secret)
        context.publisher.publish(
            route.topic,
            records,
            headers=[("x-correlator", exchange.correlator.encode())],
            # The record's timestamp is the acceptance time: the workers read
            # it as "received" for the UNREGISTERED deadline.
            timestamp_ms=time.time_ns() // 1_000_000,
        )
    except Problem as problem:
        metrics.events_rejected_total.labels(route.kind_key, problem.reason).inc(events_in_request)
        raise
    for operator, count in Counter(event["operator"] for event in events).items():
        metrics.events_accepted_total.labels(route.kind_key, operator).inc(count)
    exchange.accepted = len(events)
    body_out = {"accepted": len(events), "event_ids": event_ids}
    return Answer(202, "application/json", orjson.dumps(body_out))


def _check_operators(events: list[dict[str, Any]], api_key: ApiKey, batch: bool) -> None:
    allowed = set(api_key.plmns)
    refused = [
        FieldError(
            f"/events/{index}/operator" if batch else "/operator",
            f"operator {event['operator']} is not one of this API key's PLMN ids",
        )
        for index, event in enumerate(events)
        if not within_plmns(event, allowed)
    ]
    if refused:
        raise PermissionDenied(
            f"This API key may send events for PLMN ids {', '.join(api_key.plmns)} only; "
            "nothing was accepted.",
            refused,
        )


def _records(
    route: IngestRoute, events: list[dict[str, Any]], secret: str
) -> tuple[list[OutgoingRecord], list[str]]:
    records: list[OutgoingRecord] = []
    event_ids: list[str] = []
    for event in events:
        wire = route.to_wire(event)
        value = encode_wire(wire)
        attestation = ((attestation_header, attestation_sign(secret, value)),)
        records.append(OutgoingRecord(wire["imsi"].encode(), value, attestation))
        event_ids.append(wire["event_id"])
    return records, event_ids


def operation_for(route: IngestRoute, max_events: int) -> Callable[[Any], Any]:
    single = route.kind.request_schema
    batch = batch_schema(route.kind, max_events)
    label = route.kind.name.replace("_", " ")
    return openapi.operation(
        summary=f"Submit {label} events",
        description=(
            f'One {label} event, or a batch `{{"events": [...]}}` of 1 to {max_events}. '
            "Answered 202 only after Kafka acknowledged every record; on 503 resend the "
            "whole request (processing is idempotent per event_id)."
        ),
        operationId=f"submit_{route.kind_key}",
        tags=["ingest"],
        parameters=[openapi.CORRELATOR_PARAMETER],
        requestBody={
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [single, batch]}}},
        },
        responses={
            "202": openapi.success("Every event acknowledged by Kafka.", AcceptedSchema),
            "400": openapi.problem("Not a JSON object of the right shape, or not JSON."),
            "401": openapi.UNAUTHENTICATED,
            "403": openapi.problem("An event's operator is not one of the key's PLMN ids."),
            "413": openapi.problem(f"More than {max_events} events, or the body is too large."),
            "422": openapi.problem("Events that fail validation; each bad field is named."),
            "429": openapi.RATE_LIMITED,
            "503": openapi.UNAVAILABLE,
        },
    )
