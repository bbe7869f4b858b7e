"""The regulator's allow-list over HTTP: `POST /v1/allow-list` adds an entry
for an IMSI or a holder, `GET /v1/allow-list` lists those in force, `DELETE
/v1/allow-list/{entry_id}` removes one. Regulators' keys only.

A holder is sent by its identity document and stored as its holder_ref,
as registrations are. Adding or removing an entry sends each SIM it names a
recheck through the internal recheck topic, so the SIM's worker takes the
change into its case now rather than at the SIM's next event; the answer
comes once Kafka has acknowledged every recheck (503 otherwise: send again).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
from flask import Blueprint, Response, request
from marshmallow import Schema, fields

from schemas.allow_list import AllowListEntrySchema
from schemas.case_record import REASON_CODES
from service import openapi
from service.auth import require_regulator
from service.context import ServiceContext, service_context
from service.payload import load_object
from service.problems import NotFound
from service.publisher import OutgoingRecord
from simguard import allow_list
from simguard.api_keys import ApiKey
from simguard.store import allow_list as allow_rows
from simguard.timefmt import to_text

blueprint = Blueprint("allow_list", __name__)


class AllowListEntryViewSchema(Schema):
    entry_id = fields.String(required=True, metadata={"format": "uuid"})
    kind = fields.String(required=True, metadata={"enum": ["imsi", "holder"]})
    value = fields.String(
        required=True, metadata={"description": "The IMSI, or the holder's holder_ref."}
    )
    codes = fields.List(
        fields.String(metadata={"enum": list(REASON_CODES)}),
        required=True,
        metadata={"description": "The reason codes covered; empty: all."},
    )
    expires_at = fields.String(required=True, metadata={"format": "date-time"})
    note = fields.String(required=True)
    added_by = fields.String(required=True)
    added_at = fields.String(required=True, metadata={"format": "date-time"})


class AllowListAddedSchema(AllowListEntryViewSchema):
    rechecked = fields.Integer(
        required=True, metadata={"description": "SIMs sent a recheck: the IMSI, or the holder's."}
    )


class AllowListSchema(Schema):
    entries = fields.List(fields.Nested(AllowListEntryViewSchema), required=True)


_ADDED = AllowListAddedSchema()
_LISTED = AllowListSchema()


@blueprint.post("/v1/allow-list", provide_automatic_options=False)
@openapi.operation(
    summary="Add an IMSI or a holder to the allow-list until an expiry",
    operationId="add_allow_list_entry",
    tags=["allow-list"],
    parameters=[openapi.CORRELATOR_PARAMETER],
    requestBody={
        "required": True,
        "content": {"application/json": {"schema": AllowListEntrySchema}},
    },
    responses={
        "201": openapi.success("Stored, and its SIMs sent a recheck.", AllowListAddedSchema),
        "400": openapi.problem("The body is not a JSON object."),
        "401": openapi.UNAUTHENTICATED,
        "403": openapi.problem("Only a regulator's key keeps the allow-list."),
        "413": openapi.problem("The body exceeds the size limit."),
        "422": openapi.problem("A field fails validation (each one named)."),
        "503": openapi.UNAVAILABLE,
    },
)
def add_entry() -> Response:
    context = service_context()
    api_key = _regulator(context)
    loaded = load_object(
        request, context.settings.api_max_body_bytes, AllowListEntrySchema(), "entry"
    )
    now = datetime.now(UTC)
    (entry,), sims = allow_list.add_entries(
        context.store(), [loaded], context.settings.hmac_secret, api_key.key_id, now
    )
    _send_rechecks(context, sims, now)
    return Response(
        orjson.dumps(_ADDED.dump({**entry, "rechecked": len(sims)})),
        status=201,
        mimetype="application/json",
    )


@blueprint.get("/v1/allow-list", provide_automatic_options=False)
@openapi.operation(
    summary="The allow-list entries in force",
    operationId="list_allow_list",
    tags=["allow-list"],
    parameters=[openapi.CORRELATOR_PARAMETER],
    responses={
        "400": openapi.problem("Malformed request (a bad x-correlator)."),
        "200": openapi.success("Entries not removed nor expired, oldest first.", AllowListSchema),
        "401": openapi.UNAUTHENTICATED,
        "403": openapi.problem("Only a regulator's key reads the allow-list."),
    },
)
def list_entries() -> Response:
    context = service_context()
    _regulator(context)
    with context.store().reading() as tx:
        rows = allow_rows.listed(tx, to_text(datetime.now(UTC)))
    entries = [{**row, "codes": [c for c in row["codes"].split(",") if c]} for row in rows]
    return Response(orjson.dumps(_LISTED.dump({"entries": entries})), mimetype="application/json")


@blueprint.delete("/v1/allow-list/<entry_id>", provide_automatic_options=False)
@openapi.operation(
    summary="Remove an allow-list entry",
    operationId="remove_allow_list_entry",
    tags=["allow-list"],
    parameters=[
        {"in": "path", "name": "entry_id", "required": True, "schema": {"type": "string"}},
        openapi.CORRELATOR_PARAMETER,
    ],
    responses={
        "400": openapi.problem("Malformed request (a bad x-correlator)."),
        "204": {"description": "Removed, and its SIMs sent a recheck."},
        "401": openapi.UNAUTHENTICATED,
        "403": openapi.problem("Only a regulator's key keeps the allow-list."),
        "404": openapi.problem("No entry in force has this id."),
        "503": openapi.UNAVAILABLE,
    },
)
def remove_entry(entry_id: str) -> Response:
    context = service_context()
    _regulator(context)
    now = datetime.now(UTC)
    sims = allow_list.remove_entry(context.store(), entry_id, now)
    if sims is None:
        raise NotFound(f"No allow-list entry in force has the id {entry_id!r}.")
    _send_rechecks(context, sims, now)
    return Response(status=204)


def _regulator(context: ServiceContext) -> ApiKey:
    return require_regulator(
        context.authenticator,
        request.headers.get("Authorization"),
        "The allow-list is the regulator's: an operator's key may not use it.",
    )


def _send_rechecks(context: ServiceContext, sims: list[str], now: datetime) -> None:
    if not sims:
        return
    records = [OutgoingRecord(imsi.encode(), allow_list.recheck_value(imsi, now)) for imsi in sims]
    context.publisher.publish(
        context.settings.topic_rechecks,
        records,
        headers=[],
        timestamp_ms=time.time_ns() // 1_000_000,
    )
