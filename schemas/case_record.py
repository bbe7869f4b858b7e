"""The SIM case record: one per change of a SIM's case, on the regulator topic.

The topic is compacted by IMSI, so the latest record of a SIM is its current
state. `record_id` is derived from (imsi, version): a record sent twice is
recognisably the same record.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from schemas import identifiers as ids
from schemas.events import StrictInteger, UtcDateTime, UuidString
from schemas.reason_codes import ReasonCode

REASON_CODES: Final = tuple(code.value for code in ReasonCode)
CASE_STATUSES: Final = ("flagged", "cleared")
DECISION_ACTIONS: Final = ("confirm", "dismiss", "escalate")
# 2 adds `schema_version` and `decision`; a record without them is version 1.
SCHEMA_VERSION: Final = 2
MAX_RISK_SCORE: Final = 100

# uuid5(NAMESPACE_URL, "urn:simguard:case-record"). Never change it: every
# record_id ever published was derived from it, and regulators deduplicate on it.
RECORD_ID_NAMESPACE: Final = uuid.UUID("313620b9-1ccb-5807-a7e2-2cf0b60fe1e4")


def record_id_for(imsi: str, version: int) -> str:
    """The record id of version `version` of the case of SIM `imsi` (a UUIDv5 string)."""
    return str(uuid.uuid5(RECORD_ID_NAMESPACE, f"{imsi}:{version}"))


class ReasonSchema(Schema):
    """One active reason: why, since when, and the evidence the rule saw.

    `evidence` is free-form per rule and must be JSON-ready already (strings
    for times, ids and countries); it is passed through as is.
    """

    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=validate.OneOf(REASON_CODES))
    since = UtcDateTime(required=True)
    evidence = fields.Dict(keys=fields.String(), required=True)


class CaseDecisionMemberSchema(Schema):
    """The latest regulator decision taken on the case (README, "Contract additions")."""

    class Meta:
        unknown = RAISE

    decision_id = UuidString(required=True)
    action = fields.String(required=True, validate=validate.OneOf(DECISION_ACTIONS))
    # The version of the case the decision was taken on.
    case_version = StrictInteger(required=True, validate=validate.Range(min=1))
    reason = fields.String(required=True, allow_none=True)
    codes = fields.List(fields.String(validate=validate.OneOf(REASON_CODES)), required=True)
    expires_at = UtcDateTime(required=True, allow_none=True)
    decided_by = fields.String(required=True)
    decided_at = UtcDateTime(required=True)


class CaseRecordSchema(Schema):
    """A SIM's case after one change.

    `iccid` and `msisdn` are null when simguard has only seen the SIM in network
    observations. `first_flagged_at` survives clearing, so a cleared record
    still says when the SIM was first flagged; it is null only for a SIM that
    never was.
    """

    class Meta:
        unknown = RAISE

    record_id = UuidString(required=True)
    imsi = ids.IMSI.field(required=True)
    iccid = ids.ICCID.field(required=True, allow_none=True)
    msisdn = ids.MSISDN.field(required=True, allow_none=True)
    operator = ids.OPERATOR.field(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    version = StrictInteger(required=True, validate=validate.Range(min=1))
    risk_score = StrictInteger(required=True, validate=validate.Range(0, MAX_RISK_SCORE))
    reasons = fields.List(fields.Nested(ReasonSchema), required=True)
    first_flagged_at = UtcDateTime(required=True, allow_none=True)
    updated_at = UtcDateTime(required=True)
    rules_version = fields.String(required=True, validate=validate.Length(1, 64))
    schema_version = StrictInteger(validate=validate.Range(min=1), load_default=1)
    decision = fields.Nested(CaseDecisionMemberSchema, allow_none=True, load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def _record_id_matches_version(self, data: dict[str, Any], **kwargs: Any) -> None:
        if {"record_id", "imsi", "version"} <= data.keys() and data["record_id"] != record_id_for(
            data["imsi"], data["version"]
        ):
            raise ValidationError(
                "record_id is not the one derived from imsi and version.", "record_id"
            )

    @validates_schema(skip_on_field_errors=False)
    def _status_matches_reasons(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "status" not in data or "reasons" not in data:
            return
        if data["status"] == "flagged" and not data["reasons"]:
            raise ValidationError("A flagged case has at least one reason.", "reasons")
        if data["status"] == "cleared" and data["reasons"]:
            raise ValidationError("A cleared case has no active reason.", "reasons")

    @validates_schema(skip_on_field_errors=False)
    def _one_reason_per_code(self, data: dict[str, Any], **kwargs: Any) -> None:
        # With a bad reason elsewhere in the list, the loaded ones may lack a code.
        codes = [reason["code"] for reason in data.get("reasons", []) if "code" in reason]
        if len(codes) != len(set(codes)):
            raise ValidationError("Each reason code appears at most once.", "reasons")

    @validates_schema(skip_on_field_errors=False)
    def _flagged_case_has_first_flag_time(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("status") == "flagged" and data.get("first_flagged_at", ...) is None:
            raise ValidationError("A flagged case has a first_flagged_at.", "first_flagged_at")

    @validates_schema(skip_on_field_errors=False)
    def _cleared_case_scores_zero(self, data: dict[str, Any], **kwargs: Any) -> None:
        # The score is the sum of the active reasons' weights, and there are none.
        if data.get("status") == "cleared" and data.get("risk_score", 0) != 0:
            raise ValidationError("A cleared case has a risk_score of 0.", "risk_score")
