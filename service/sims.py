"""GET /v1/sims/{imsi}: a SIM's registration status and current case.

The answer carries no personal data: of the registration only its status,
verification level, operator and time (no holder_ref, no MSISDN, no ICCID),
and of the case record everything but the subscriber identifiers. The view
schemas below are allowlists: a field the store gains later stays private
until it is named here. That holds for each reason's evidence too: an
operator's key sees the members OPERATOR_EVIDENCE names for the code, which
leave out the holder's reference and how many SIMs the holder has with all
operators. A regulator's key reads any SIM, with the evidence in full (as the
regulator topic carries it).
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
from flask import Blueprint, Response, g, request
from marshmallow import Schema, fields

from schemas.case_record import CASE_STATUSES, REASON_CODES
from schemas.events import REGISTRATION_STATUSES, VERIFICATIONS
from schemas.identifiers import IMSI_PATTERN
from schemas.reason_codes import ReasonCode
from service import openapi
from service.context import service_context
from service.problems import FieldError, InvalidEvents, NotFound, PermissionDenied
from simguard.store import registrations, sims

blueprint = Blueprint("sims", __name__)

_IMSI = re.compile(IMSI_PATTERN)
# What an operator may read of each reason's evidence; a code missing here
# (one added later) shows none until it is named.
OPERATOR_EVIDENCE: Final[dict[str, frozenset[str]]] = {
    ReasonCode.UNREGISTERED.value: frozenset(
        {"activation_event_id", "activated_at", "deadline", "registration"}
    ),
    ReasonCode.IDENTITY_OVER_LIMIT.value: frozenset({"limit", "registered_to_holder_since"}),
    ReasonCode.REGISTRATION_REVOKED.value: frozenset({"status", "revoked_at", "used_at", "use"}),
    ReasonCode.ACTIVATED_THEN_ABROAD.value: frozenset(
        {"activated_at", "first_high_risk_at", "country", "visited_plmn", "hours_after_activation"}
    ),
    ReasonCode.HIGH_RISK_ROAMING.value: frozenset({"countries", "days", "last_seen_at"}),
    ReasonCode.BORDER_CELL_DWELL.value: frozenset(
        {"observations", "border_observations", "share", "border_cells", "window_start"}
    ),
    ReasonCode.IMPOSSIBLE_TRAVEL.value: frozenset({"first", "second", "minutes_apart"}),
    ReasonCode.BULK_ACTIVATION_BURST.value: frozenset(
        {"operator", "dealer_id", "activations", "window_start", "window_end", "window_minutes"}
    ),
}
_REGISTRATION_COLUMNS = ("status", "verification", "operator", "registered_at")


class RegistrationStatusSchema(Schema):
    status = fields.String(required=True, metadata={"enum": list(REGISTRATION_STATUSES)})
    verification = fields.String(required=True, metadata={"enum": list(VERIFICATIONS)})
    operator = fields.String(required=True)
    registered_at = fields.String(required=True, metadata={"format": "date-time"})


class CaseReasonSchema(Schema):
    code = fields.String(required=True, metadata={"enum": list(REASON_CODES)})
    since = fields.String(required=True, metadata={"format": "date-time"})
    evidence = fields.Dict(
        keys=fields.String(),
        required=True,
        metadata={
            "description": "For an operator's key, the members allowed for the code (never "
            "the holder's reference or counts across operators); in full for a regulator's key."
        },
    )


class CaseSchema(Schema):
    record_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(CASE_STATUSES)})
    version = fields.Integer(required=True)
    risk_score = fields.Integer(required=True)
    reasons = fields.List(fields.Nested(CaseReasonSchema), required=True)
    first_flagged_at = fields.String(
        required=True, allow_none=True, metadata={"format": "date-time"}
    )
    updated_at = fields.String(required=True, metadata={"format": "date-time"})
    rules_version = fields.String(required=True)
    schema_version = fields.Integer(
        metadata={"description": "2 for records carrying `decision`; absent: 1."}
    )
    decision = fields.Dict(
        keys=fields.String(),
        allow_none=True,
        metadata={
            "description": "The latest regulator decision on the case (README, Contract "
            "additions); shown to a regulator's key only, null for an operator's."
        },
    )


class SimStatusSchema(Schema):
    imsi = fields.String(required=True)
    registration = fields.Nested(
        RegistrationStatusSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The current registration; null when none is known."},
    )
    case = fields.Nested(
        CaseSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The last case record published; null if never flagged."},
    )


_SIM_STATUS = SimStatusSchema()


@blueprint.get("/v1/sims/<imsi>", provide_automatic_options=False)
@openapi.operation(
    summary="A SIM's registration status and current case",
    operationId="get_sim",
    tags=["sims"],
    parameters=[
        {
            "in": "path",
            "name": "imsi",
            "required": True,
            "schema": {"type": "string", "pattern": IMSI_PATTERN},
        },
        openapi.CORRELATOR_PARAMETER,
    ],
    responses={
        "200": openapi.success("What simguard knows of the SIM.", SimStatusSchema),
        "400": openapi.problem("Malformed request (a bad x-correlator)."),
        "401": openapi.UNAUTHENTICATED,
        "403": openapi.problem(
            "The IMSI belongs to another operator's PLMN (regulators' keys read any SIM)."
        ),
        "404": openapi.problem("simguard knows neither a registration nor a case for it."),
        "422": openapi.problem("Not an IMSI (15 digits)."),
    },
)
def get_sim(imsi: str) -> Response:
    context = service_context()
    api_key = context.authenticator.require(request.headers.get("Authorization"))
    g.operator = api_key.operator
    check_imsi(imsi)
    if not api_key.is_regulator and not any(imsi.startswith(plmn) for plmn in api_key.plmns):
        raise PermissionDenied(
            "This API key may read SIMs of its own PLMN ids only.",
            [FieldError("/imsi", "IMSI outside this API key's PLMN ids")],
        )
    with context.store().reading() as tx:
        registration = registrations.registration_of(tx, imsi, _REGISTRATION_COLUMNS)
        case_record = sims.case_record_of(tx, imsi)
    case = orjson.loads(case_record) if case_record is not None else None
    if case is not None and not api_key.is_regulator:
        case = _operators_view(case)
    if registration is None and case is None:
        raise NotFound(f"No registration or case is known for IMSI {imsi}.")
    body: dict[str, Any] = {
        "imsi": imsi,
        "registration": registration,
        "case": case,
    }
    return Response(orjson.dumps(_SIM_STATUS.dump(body)), mimetype="application/json")


def check_imsi(imsi: str) -> None:
    """422 for a path segment that is not an IMSI."""
    if _IMSI.fullmatch(imsi) is None:
        raise InvalidEvents(
            "The IMSI must be 15 digits.", [FieldError("/imsi", "IMSI must be 15 digits")]
        )


def _operators_view(case: dict[str, Any]) -> dict[str, Any]:
    reasons = [
        {
            **reason,
            "evidence": {
                name: value
                for name, value in (reason.get("evidence") or {}).items()
                if name in OPERATOR_EVIDENCE.get(str(reason.get("code")), frozenset())
            },
        }
        for reason in case.get("reasons") or []
        if isinstance(reason, dict)
    ]
    # The decision (its reason may name why a subscriber is left alone) is the regulator's.
    return {**case, "reasons": reasons, "decision": None}
