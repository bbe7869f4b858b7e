"""The OpenAPI document, built from the app itself.

Every view declares its operation with `@operation(...)`, naming the same
marshmallow schemas that validate its input and shape its output; the
document walks the app's URL map, so it lists exactly the routes the app
serves, and a route without a declared operation is a start-up error rather
than an undocumented endpoint. apispec's MarshmallowPlugin turns the schemas
into JSON Schema components.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from importlib import metadata
from typing import Any, Final, TypeVar

import orjson
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app
from marshmallow import Schema, fields

from service.context import service_context
from service.correlator import HEADER as CORRELATOR_HEADER
from service.correlator import PATTERN as CORRELATOR_PATTERN
from service.problems import PROBLEM_MEDIA_TYPE

OPENAPI_VERSION: Final = "3.1.0"
_OPERATION_ATTRIBUTE: Final = "_openapi_operation"
_AUTOMATIC_METHODS: Final = frozenset({"HEAD", "OPTIONS"})
_CONVERTER = re.compile(r"<(?:[a-z_]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")

View = TypeVar("View", bound=Callable[..., Any])

blueprint = Blueprint("openapi", __name__)


class FieldErrorSchema(Schema):
    pointer = fields.String(
        required=True,
        metadata={"description": "JSON pointer (RFC 6901) into the request body."},
    )
    message = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details, with simguard's `code` and `errors`."""

    type = fields.String(required=True, metadata={"format": "uri"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(
        required=True,
        metadata={
            "description": "Stable code: INVALID_ARGUMENT, PAYLOAD_TOO_LARGE, UNAUTHENTICATED, "
            "PERMISSION_DENIED, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL, ..."
        },
    )
    errors = fields.List(
        fields.Nested(FieldErrorSchema),
        required=True,
        metadata={"description": "The first 100 field errors, in body order."},
    )
    errors_omitted = fields.Integer(
        metadata={"description": "How many further field errors were found; absent when none."}
    )
    instance = fields.String(metadata={"description": "Names this occurrence (the correlator)."})


CORRELATOR_PARAMETER: Final[dict[str, Any]] = {
    "in": "header",
    "name": CORRELATOR_HEADER,
    "required": False,
    "description": "Correlation id (CAMARA); echoed, logged, generated when missing.",
    "schema": {"type": "string", "pattern": CORRELATOR_PATTERN, "maxLength": 256},
}
_CORRELATOR_RESPONSE_HEADER: Final[dict[str, Any]] = {
    "description": "The request's correlator, or the one generated for it.",
    "schema": {"type": "string"},
}
RETRY_AFTER_HEADER: Final[dict[str, Any]] = {
    "description": "Seconds to wait before resending the whole request.",
    "schema": {"type": "integer"},
}
_WWW_AUTHENTICATE_HEADER: Final[dict[str, Any]] = {
    "description": "Bearer challenge.",
    "schema": {"type": "string"},
}


def problem(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    """A documented problem response."""
    return {
        "description": description,
        "headers": {CORRELATOR_HEADER: _CORRELATOR_RESPONSE_HEADER, **headers},
        "content": {PROBLEM_MEDIA_TYPE: {"schema": ProblemSchema}},
    }


def success(description: str, schema: type[Schema]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {CORRELATOR_HEADER: _CORRELATOR_RESPONSE_HEADER},
        "content": {"application/json": {"schema": schema}},
    }


UNAUTHENTICATED: Final = problem(
    "Missing, unknown or revoked API key.", **{"WWW-Authenticate": _WWW_AUTHENTICATE_HEADER}
)
RATE_LIMITED: Final = problem(
    "The operator is over its events-per-second limit (api_rate_limit_per_second, counted "
    "in events); nothing was accepted. Resend after Retry-After.",
    **{"Retry-After": RETRY_AFTER_HEADER},
)
UNAVAILABLE: Final = problem(
    "Kafka did not acknowledge in time; resend after Retry-After.",
    **{"Retry-After": RETRY_AFTER_HEADER},
)


def operation(**doc: Any) -> Callable[[View], View]:
    """Attach the OpenAPI operation object of a view (one method per view)."""

    def attach(view: View) -> View:
        setattr(view, _OPERATION_ATTRIBUTE, doc)
        return view

    return attach


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="simguard",
        version=_version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={
            "description": "SIM registration verification: operators submit SIM activation, "
            "registration and network events; regulators query a SIM's status and case. "
            "Operators producing straight to the Kafka input topics instead log in with "
            "SASL_SSL (SCRAM-SHA-512) as a Kafka user whose ACLs allow writing those topics "
            "only, sign each record (header simguard-operator-signature, key from "
            "`simguard keys kafka-signing-key`) and key it by IMSI on its murmur2 partition; "
            "see the README's Contract additions.",
        },
        security=[{"bearerAuth": []}],
    )
    spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "An operator API key."},
    )
    spec.components.schema("Problem", schema=ProblemSchema)
    for path, operations in sorted(_operations(app).items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operations(app: Flask) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        doc = getattr(view, _OPERATION_ATTRIBUTE, None)
        if doc is None:
            raise RuntimeError(f"route {rule.rule} ({rule.endpoint}) declares no OpenAPI operation")
        methods = sorted(set(rule.methods or ()) - _AUTOMATIC_METHODS)
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        for method in methods:
            # apispec rewrites schemas in place; each operation gets its own copy.
            operation_doc = copy.deepcopy(doc)
            operation_doc.setdefault("operationId", f"{rule.endpoint.replace('.', '_')}")
            paths.setdefault(path, {})[method.lower()] = operation_doc
    return paths


def _version() -> str:
    try:
        return metadata.version("simguard")
    except metadata.PackageNotFoundError:
        return "0.0.0"


@blueprint.get("/openapi.json", provide_automatic_options=False)
@operation(
    summary="This OpenAPI document",
    tags=["operations"],
    security=[],
    responses={
        "200": {
            "description": "OpenAPI 3 document.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def openapi_document() -> Response:
    cache = service_context().spec_cache
    document = cache.get("openapi")
    if document is None:
        document = orjson.dumps(build_spec(current_app))
        cache["openapi"] = document
    return Response(document, mimetype="application/json")
