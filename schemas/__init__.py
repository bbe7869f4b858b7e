"""Wire contracts shared by the HTTP API and the workers (marshmallow 4).

Loading gives plain dicts of Python values (aware UTC datetimes, UUIDs as
canonical strings); dumping gives JSON-ready dicts with "...Z" timestamps.
"""

from schemas.case_record import REASON_CODES, CaseRecordSchema, ReasonSchema, record_id_for
from schemas.dead_letter import DeadLetterSchema, dead_letter_value, original_value
from schemas.events import (
    EVENT_KINDS,
    MAX_FUTURE_SKEW,
    ActivationSchema,
    EventKind,
    EventSchema,
    HolderSchema,
    LocationSchema,
    NetworkEventSchema,
    RegistrationRequestSchema,
    RegistrationSchema,
    UsageSchema,
    UtcDateTime,
    UuidString,
)

__all__ = [
    "EVENT_KINDS",
    "MAX_FUTURE_SKEW",
    "REASON_CODES",
    "ActivationSchema",
    "CaseRecordSchema",
    "DeadLetterSchema",
    "EventKind",
    "EventSchema",
    "HolderSchema",
    "LocationSchema",
    "NetworkEventSchema",
    "ReasonSchema",
    "RegistrationRequestSchema",
    "RegistrationSchema",
    "UsageSchema",
    "UtcDateTime",
    "UuidString",
    "dead_letter_value",
    "original_value",
    "record_id_for",
]
