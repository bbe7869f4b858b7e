"""Regulators' decisions on a SIM's case: `POST /v1/cases/{imsi}/decisions`
and the SIM's audit trail, `GET /v1/cases/{imsi}/decisions`.

The API checks what it can against the store (the key is a regulator's, the
SIM is known, the case is at the version the decision names, a dismissal
names reasons the case holds) and publishes the decision to the internal
`simguard.case-decisions.v1` topic, keyed by IMSI and signed like every
record the API validated. The worker that owns the SIM applies it in the
same transaction as the SIM's events, so a decision and the case record it
makes are exactly-once like any other; it checks the version again, and a
case that moved on in between makes the decision `stale_case_version` in
the audit rather than applying it to evidence its author did not see.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from flask import Blueprint, Response, request
from marshmallow import Schema, fields

from schemas.attestation import HEADER as ATTESTATION_HEADER
from schemas.attestation import sign as attestation_sign
from schemas.case_decision import (
    ACTIONS,
    DISMISS,
    OUTCOMES,
    CaseDecisionSchema,
    DecisionRequestSchema,
)
from schemas.case_record import REASON_CODES
from schemas.identifiers import IMSI_PATTERN
from service import openapi
from service.auth import require_regulator
from service.context import ServiceContext, service_context
from service.payload import load_object
from service.problems import (
    Conflict,
    FieldError,
    NotFound,
)
from service.publisher import OutgoingRecord
from service.sims import check_imsi
from simguard.api_keys import ApiKey
from simguard.store import case_decisions, registrations, sims
from simguard.timefmt import utc_now

blueprint = Blueprint("cases", __name__)

_DECISION_WIRE = CaseDecisionSchema()
_IMSI_PARAMETER = {
    "in": "path",
    "name": "imsi",
    "required": True,
    "schema": {"type": "string", "pattern": IMSI_PATTERN},
}


class DecisionAcceptedSchema(Schema):
    decision_id = fields.String(required=True, metadata={"format": "uuid"})
    imsi = fields.String(required=True)
    case_version = fields.Integer(required=True)
    status = fields.String(
        required=True,
        metadata={
            "enum": ["accepted"],
            "description": "Published for the SIM's worker; its outcome is in the audit "
            "(GET /v1/cases/{imsi}/decisions, topic regulator.case-decisions.v1).",
        },
    )


class DecisionAuditEntrySchema(Schema):
    decision_id = fields.String(required=True, metadata={"format": "uuid"})
    imsi = fields.String(required=True)
    action = fields.String(required=True, metadata={"enum": list(ACTIONS)})
    case_version = fields.Integer(required=True)
    reason = fields.String(required=True, allow_none=True)
    codes = fields.List(fields.String(metadata={"enum": list(REASON_CODES)}), required=True)
    expires_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    decided_by = fields.String(required=True)
    decided_at = fields.String(required=True, metadata={"format": "date-time"})
    outcome = fields.String(required=True, metadata={"enum": list(OUTCOMES)})
    applied_at = fields.String(required=True, metadata={"format": "date-time"})
    resulting_version = fields.Integer(required=True, allow_none=True)


class DecisionAuditSchema(Schema):
    imsi = fields.String(required=True)
    decisions = fields.List(fields.Nested(DecisionAuditEntrySchema), required=True)


_ACCEPTED = DecisionAcceptedSchema()
_AUDIT = DecisionAuditSchema()


@blueprint.post("/v1/cases/<imsi>/decisions", provide_automatic_options=False)
@openapi.operation(
    summary="A regulator's decision on a SIM's case: confirm, dismiss or escalate",
    operationId="decide_case",
    tags=["cases"],
    parameters=[_IMSI_PARAMETER, openapi.CORRELATOR_PARAMETER],
    requestBody={
        "required": True,
        "content": {"application/json": {"schema": DecisionRequestSchema}},
    },
    responses={
        "202": openapi.success(
            "Published to the SIM's worker, which applies it unless the case has moved on.",
            DecisionAcceptedSchema,
        ),
        "400": openapi.problem("The body is not a JSON object."),
        "401": openapi.UNAUTHENTICATED,
        "403": openapi.problem("Only a regulator's key takes decisions."),
        "404": openapi.problem("simguard knows neither a registration nor a case for the SIM."),
        "409": openapi.problem(
            "The case is not at `case_version` (or has none), or a dismissal names "
            "reasons the case does not hold."
        ),
        "413": openapi.problem("The body exceeds the size limit."),
        "422": openapi.problem("A field fails validation (each one named)."),
        "503": openapi.UNAVAILABLE,
    },
)
def decide_case(imsi: str) -> Response:
    context = service_context()
    api_key = _regulator(context)
    check_imsi(imsi)
    wanted = load_object(
        request, context.settings.api_max_body_bytes, DecisionRequestSchema(), "decision"
    )
    with context.store().reading() as tx:
        case_record = sims.case_record_of(tx, imsi)
        registration = registrations.registration_of(tx, imsi, ("status",))
    if case_record is None and registration is None:
        raise NotFound(f"No registration or case is known for IMSI {imsi}.")
    case = orjson.loads(case_record) if case_record is not None else None
    codes = _codes_decided(case, wanted)
    decision = {
        "decision_id": wanted.get("decision_id") or str(uuid.uuid4()),
        "imsi": imsi,
        "action": wanted["action"],
        "case_version": wanted["case_version"],
        "reason": wanted.get("reason"),
        "codes": codes,
        "expires_at": wanted.get("expires_at"),
        "decided_by": api_key.key_id,
        "decided_at": utc_now(),
    }
    value = orjson.dumps(_DECISION_WIRE.dump(decision))
    secret = context.settings.attestation_secret
    context.publisher.publish(
        context.settings.topic_decisions,
        [
            OutgoingRecord(
                imsi.encode(), value, ((ATTESTATION_HEADER, attestation_sign(secret, value)),)
            )
        ],
        headers=[],
        timestamp_ms=time.time_ns() // 1_000_000,
    )
    accepted = {
        "decision_id": decision["decision_id"],
        "imsi": imsi,
        "case_version": decision["case_version"],
        "status": "accepted",
    }
    return Response(orjson.dumps(_ACCEPTED.dump(accepted)), status=202, mimetype="application/json")


@blueprint.get("/v1/cases/<imsi>/decisions", provide_automatic_options=False)
@openapi.operation(
    summary="Every decision taken on a SIM's case and what came of it, oldest first",
    operationId="case_decisions",
    tags=["cases"],
    parameters=[_IMSI_PARAMETER, openapi.CORRELATOR_PARAMETER],
    responses={
        "400": openapi.problem("Malformed request (a bad x-correlator)."),
        "200": openapi.success(
            "The SIM's decisions as the worker applied them.", DecisionAuditSchema
        ),
        "401": openapi.UNAUTHENTICATED,
        "403": openapi.problem("Only a regulator's key reads decisions."),
        "422": openapi.problem("Not an IMSI (15 digits)."),
    },
)
def list_decisions(imsi: str) -> Response:
    context = service_context()
    _regulator(context)
    check_imsi(imsi)
    with context.store().reading() as tx:
        rows = case_decisions.of_sim(tx, imsi)
    entries = [{**row, "codes": [c for c in row["codes"].split(",") if c]} for row in rows]
    return Response(
        orjson.dumps(_AUDIT.dump({"imsi": imsi, "decisions": entries})),
        mimetype="application/json",
    )


def _regulator(context: ServiceContext) -> ApiKey:
    return require_regulator(
        context.authenticator,
        request.headers.get("Authorization"),
        "Decisions on cases are the regulator's: an operator's key may not take or read them.",
    )


def _codes_decided(case: dict[str, Any] | None, wanted: dict[str, Any]) -> list[str]:
    """The reason codes the decision is about: for a dismissal, those named or
    every active one; 409 when the case is not the one the decision was taken on."""
    version = case["version"] if case else None
    if version != wanted["case_version"]:
        current = "has no case" if version is None else f"is at case version {version}"
        raise Conflict(
            f"The SIM {current}, not {wanted['case_version']}: read it again "
            "(GET /v1/sims/{imsi}) and decide on what it shows.",
            [FieldError("/case_version", "not the case's current version")],
        )
    assert case is not None
    if wanted["action"] != DISMISS:
        return []
    active = [r["code"] for r in case.get("reasons") or []]
    codes: list[str] = wanted.get("codes") or active
    missing = [code for code in codes if code not in active]
    if not codes or missing:
        raise Conflict(
            "Only reasons the case holds can be dismissed; it holds "
            f"{', '.join(active) or 'none (it is cleared)'}.",
            [
                FieldError(
                    "/codes", f"not active on the case: {', '.join(missing) or 'none active'}"
                )
            ],
        )
    return codes
