"""Dead-letter records: input that could not be processed, kept to be looked at.

The record's Kafka key is the source message's key; the value says where the
message came from, why it failed, and carries the message itself: as text when
it is UTF-8, else base64, so that a record is always valid JSON.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from schemas.contract import check
from schemas.events import StrictInteger, UtcDateTime

# The codes simguard itself writes. Others are accepted on load, so that an
# older reader does not choke on a code added later.
INVALID_EVENT: Final = "invalid_event"
UNPARSEABLE: Final = "unparseable"
EVENT_ID_CONFLICT: Final = "event_id_conflict"
# A record produced straight to Kafka that no operator signed, or that the
# operator it names did not sign (README, "Contract additions").
UNSIGNED_RECORD: Final = "unsigned_record"
BAD_OPERATOR_SIGNATURE: Final = "bad_operator_signature"
# On a partition its key (the IMSI) does not map to under Kafka's murmur2.
WRONG_PARTITION: Final = "wrong_partition"
INVALID_RECHECK: Final = "invalid_recheck"
# A record on `simguard.case-decisions.v1` that the API did not sign, or that
# is not a decision; and a decision id resent with other content.
INVALID_DECISION: Final = "invalid_decision"
DECISION_ID_CONFLICT: Final = "decision_id_conflict"
# A second usage report for a SIM and day whose counters differ from the first's.
USAGE_DAY_CONFLICT: Final = "usage_day_conflict"
# A partner's sighting of a SIM that is not ours, or on a network not the partner's.
NOT_THE_PARTNERS: Final = "not_the_partners"
ERROR_CODES: Final = (
    INVALID_EVENT,
    UNPARSEABLE,
    EVENT_ID_CONFLICT,
    UNSIGNED_RECORD,
    BAD_OPERATOR_SIGNATURE,
    WRONG_PARTITION,
    INVALID_RECHECK,
    INVALID_DECISION,
    DECISION_ID_CONFLICT,
    USAGE_DAY_CONFLICT,
    NOT_THE_PARTNERS,
)
ERROR_CODE_PATTERN: Final = "^[a-z][a-z0-9_]{0,63}$"
_ERROR_CODE = re.compile(ERROR_CODE_PATTERN)

# "withheld": the value was not a JSON object and might hold personal data;
# `value` is then "sha256:<hex> bytes:<length>" of what was sent.
WITHHELD: Final = "withheld"
VALUE_ENCODINGS: Final = ("utf-8", "base64", WITHHELD)


def dead_letter_value(raw: bytes) -> tuple[str, str]:
    """(value, value_encoding) for a source message's value.

    Pass b"" for a message without a value (a tombstone).
    """
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def original_value(value: str, value_encoding: str) -> bytes:
    """The source message's value back as bytes, e.g. to replay it."""
    if value_encoding == "base64":
        return base64.b64decode(value, validate=True)
    if value_encoding == "utf-8":
        return value.encode("utf-8")
    if value_encoding == WITHHELD:
        raise ValueError("the value was withheld (not a JSON object); replay the operator's copy")
    raise ValueError(f"unknown value_encoding {value_encoding!r}")


class DeadLetterSchema(Schema):
    class Meta:
        unknown = RAISE

    source_topic = fields.String(required=True, validate=validate.Length(1, 249))
    partition = StrictInteger(required=True, validate=validate.Range(min=0))
    offset = StrictInteger(required=True, validate=validate.Range(min=0))
    error = fields.String(
        required=True,
        validate=check(
            (
                lambda value: _ERROR_CODE.fullmatch(value) is not None,
                "error must be a snake_case code such as invalid_event.",
            )
        ),
        metadata={"pattern": ERROR_CODE_PATTERN, "examples": list(ERROR_CODES)},
    )
    # Says which field or what parse error; never carries the raw identity
    # numbers of a request (they are not on the input topics to begin with).
    detail = fields.String()
    failed_at = UtcDateTime(required=True)
    value = fields.String(required=True)
    value_encoding = fields.String(required=True, validate=validate.OneOf(VALUE_ENCODINGS))

    @validates_schema(skip_on_field_errors=False)
    def _value_is_base64_when_so_encoded(self, data: dict[str, object], **kwargs: object) -> None:
        if data.get("value_encoding") != "base64" or not isinstance(data.get("value"), str):
            return
        try:
            base64.b64decode(str(data["value"]), validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValidationError("value is not valid base64.", "value") from error
