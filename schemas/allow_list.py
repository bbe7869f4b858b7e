"""An allow-list entry as a regulator sends it (`POST /v1/allow-list`, or a
row of `simguard allow-list load`): one IMSI or one holder, the reason codes
it covers (all when none is named), an expiry and why. A holder is named by
its identity document, which the API or the command replaces by its
holder_ref before anything is stored, as for registrations."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from schemas import identifiers as ids
from schemas.case_record import REASON_CODES
from schemas.events import HolderSchema, UtcDateTime, utc_now

# An allowance is a judgement on a pattern known today: it lapses, at most a year on.
MAX_ALLOWANCE: Final = timedelta(days=366)


class AllowListEntrySchema(Schema):
    class Meta:
        unknown = RAISE

    imsi = ids.IMSI.field()
    holder = fields.Nested(HolderSchema)
    codes = fields.List(fields.String(validate=validate.OneOf(REASON_CODES)), load_default=list)
    expires_at = UtcDateTime(required=True)
    note = fields.String(required=True, validate=validate.Length(1, 500))

    def __init__(self, *, clock: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock if clock is not None else utc_now

    @validates_schema(skip_on_field_errors=False)
    def _names_one_sim_or_holder(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("imsi" in data) == ("holder" in data):
            raise ValidationError("Name either an imsi or a holder.", "imsi")

    @validates_schema(skip_on_field_errors=False)
    def _expires_within_a_year(self, data: dict[str, Any], **kwargs: Any) -> None:
        expires_at = data.get("expires_at")
        if expires_at is None:
            return
        now: datetime = self.clock()
        if expires_at <= now:
            raise ValidationError("The expiry is not in the future.", "expires_at")
        if expires_at - now > MAX_ALLOWANCE:
            raise ValidationError(
                f"An entry lasts at most {MAX_ALLOWANCE.days} days.", "expires_at"
            )

    @validates_schema(skip_on_field_errors=False)
    def _codes_once_each(self, data: dict[str, Any], **kwargs: Any) -> None:
        codes = data.get("codes") or []
        if len(codes) != len(set(codes)):
            raise ValidationError("Each code appears at most once.", "codes")
