"""An early-warning indicator, as simguard publishes it for a partner and as a
partner's simguard publishes it for us (`<partner>.ew.indicators.v1.<home>`
once replicated): the same format both ways (workers/early_warning.py)."""

from __future__ import annotations

from typing import Any, Final

from marshmallow import RAISE, Schema, fields, validate

from schemas import identifiers as ids
from schemas.events import Clock, StrictInteger, UtcDateTime, utc_now

INDICATOR_STATUSES: Final = ("flagged", "withdrawn")
SUBJECT_TYPES: Final = ("imsi", "pseudonym")
# A partner's reason codes are its own rules'; only their shape is checked.
REASON_CODE_SHAPE: Final = "^[A-Z][A-Z0-9_]{0,63}$"


class IndicatorSchema(Schema):
    class Meta:
        unknown = RAISE

    schema_version = StrictInteger(required=True, validate=validate.Equal(1))
    subject_type = fields.String(required=True, validate=validate.OneOf(SUBJECT_TYPES))
    subject = fields.String(required=True, validate=validate.Regexp("^[0-9a-f]{15,64}$"))
    home_country = ids.COUNTRY.field(required=True)
    status = fields.String(required=True, validate=validate.OneOf(INDICATOR_STATUSES))
    reasons = fields.List(
        fields.String(validate=validate.Regexp(REASON_CODE_SHAPE)),
        required=True,
        validate=validate.Length(max=32),
    )
    risk = StrictInteger(required=True, validate=validate.Range(0, 100))
    since = UtcDateTime(required=True, allow_none=True)
    case_version = StrictInteger(required=True, validate=validate.Range(min=1))
    updated_at = UtcDateTime(required=True)

    def __init__(self, *, clock: Clock = utc_now, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
