"""Operator notices: what a flagged SIM's operator must do, and by when
(README, "Contract additions"). One topic per operator PLMN id,
`simguard.notices.v1.<PLMN id>`, compacted by IMSI: the latest record per key
is that SIM's notice now. `GET /v1/notices` serves the same records."""

from __future__ import annotations

from typing import Final

from marshmallow import RAISE, Schema, fields, validate

from schemas import identifiers as ids
from schemas.case_record import REASON_CODES
from schemas.events import StrictInteger, UtcDateTime, UuidString

NOTICE_ACTIONS: Final = ("suspend", "reverify")
NOTICE_STATUSES: Final = ("open", "overdue", "actioned", "withdrawn")
CLOSED_BY: Final = ("suspension", "reverification", "case_cleared")


class NoticeSchema(Schema):
    """One version of a SIM's notice. `notice_id` names the notice across its
    versions (derived from the IMSI and the case version that issued it);
    `notice_version` grows by one per change."""

    class Meta:
        unknown = RAISE

    notice_id = UuidString(required=True)
    imsi = ids.IMSI.field(required=True)
    operator = ids.OPERATOR.field(required=True)
    action = fields.String(required=True, validate=validate.OneOf(NOTICE_ACTIONS))
    reasons = fields.List(fields.String(validate=validate.OneOf(REASON_CODES)), required=True)
    case_version = StrictInteger(required=True, validate=validate.Range(min=1))
    issued_at = UtcDateTime(required=True)
    deadline = UtcDateTime(required=True)
    status = fields.String(required=True, validate=validate.OneOf(NOTICE_STATUSES))
    notice_version = StrictInteger(required=True, validate=validate.Range(min=1))
    updated_at = UtcDateTime(required=True)
    # When the action was done (the registration's time), for `actioned`.
    actioned_at = UtcDateTime(required=True, allow_none=True)
    closed_by = fields.String(required=True, allow_none=True, validate=validate.OneOf(CLOSED_BY))
    # Whether the action came by the deadline; null until actioned.
    on_time = fields.Boolean(required=True, allow_none=True)
