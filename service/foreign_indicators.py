"""`GET /v1/foreign-indicators`: what partner regulators say about their own
SIMs seen here (early warning), the latest flagged indicator per subject.
Regulators' keys only: a partner's list is shared with the regulator, not
with the operators."""

from __future__ import annotations

from typing import Final

import orjson
from flask import Blueprint, Response, request
from marshmallow import Schema, fields

from service import openapi
from service.auth import require_regulator
from service.context import service_context
from service.problems import FieldError, InvalidEvents
from simguard.store import foreign_indicators as foreign_rows

blueprint = Blueprint("foreign_indicators", __name__)
MAX_LIMIT: Final = 1000
_PARAMETERS: Final = frozenset({"partner", "limit"})


class ForeignIndicatorSchema(Schema):
    partner = fields.String(required=True, metadata={"description": "ISO 3166-1 alpha-2."})
    subject_type = fields.String(required=True, metadata={"enum": ["imsi", "pseudonym"]})
    subject = fields.String(required=True)
    reasons = fields.List(fields.String(), required=True)
    risk = fields.Integer(required=True)
    since = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    case_version = fields.Integer(required=True)
    updated_at = fields.String(required=True, metadata={"format": "date-time"})
    received_at = fields.String(required=True, metadata={"format": "date-time"})


class ForeignIndicatorListSchema(Schema):
    indicators = fields.List(fields.Nested(ForeignIndicatorSchema), required=True)


_LISTED = ForeignIndicatorListSchema()


@blueprint.get("/v1/foreign-indicators", provide_automatic_options=False)
@openapi.operation(
    summary="Partners' flagged indicators about their own SIMs",
    operationId="list_foreign_indicators",
    tags=["early-warning"],
    parameters=[
        {
            "in": "query",
            "name": "partner",
            "required": False,
            "schema": {"type": "string", "pattern": "^[A-Z]{2}$"},
        },
        {
            "in": "query",
            "name": "limit",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        },
        openapi.CORRELATOR_PARAMETER,
    ],
    responses={
        "400": openapi.problem("Malformed request (a bad x-correlator)."),
        "200": openapi.success(
            "Flagged, by partner then most recent first.", ForeignIndicatorListSchema
        ),
        "401": openapi.UNAUTHENTICATED,
        "403": openapi.problem("Only a regulator's key reads partners' indicators."),
        "422": openapi.problem("A bad partner or limit."),
    },
)
def list_foreign_indicators() -> Response:
    context = service_context()
    require_regulator(
        context.authenticator,
        request.headers.get("Authorization"),
        "Partners' indicators are shared with the regulator, not with operators.",
    )
    problems = [
        FieldError(f"/{name}", "not a parameter of this route")
        for name in sorted(set(request.args) - _PARAMETERS)
    ]
    partner = request.args.get("partner")
    if partner is not None and not (len(partner) == 2 and partner.isascii() and partner.isupper()):
        problems.append(FieldError("/partner", "an ISO 3166-1 alpha-2 country, e.g. KH"))
    limit_text = request.args.get("limit", str(MAX_LIMIT))
    if not (limit_text.isascii() and limit_text.isdigit() and 1 <= int(limit_text) <= MAX_LIMIT):
        problems.append(FieldError("/limit", f"1 to {MAX_LIMIT}"))
    if problems:
        raise InvalidEvents("The query is not one this route takes.", problems)
    with context.store().reading() as tx:
        rows = foreign_rows.flagged(tx, partner, int(limit_text))
    indicators = [
        {**row, "reasons": [code for code in row["reasons"].split(",") if code]} for row in rows
    ]
    return Response(
        orjson.dumps(_LISTED.dump({"indicators": indicators})), mimetype="application/json"
    )
