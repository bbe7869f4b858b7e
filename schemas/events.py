"""Input events as they arrive over HTTP and as they sit on the input topics.

`load()` returns plain dicts: timestamps as timezone-aware UTC `datetime`s,
`event_id` as the canonical lower-case UUID string (JSON-ready, hashable, and
its string order is the UUID's byte order). `dump()` returns JSON-ready dicts
with timestamps as RFC 3339 UTC ending in "Z".

Every error is attached to the field it concerns, so a caller can turn
marshmallow's nested messages into JSON pointers (/events/3/location/country).
The key "_schema" stands for the object that holds it, e.g. {"location":
{"_schema": [...]}} when `location` is not a JSON object at all.
Messages never repeat the input value: some of it is personal data, and error
messages end up in logs and dead-letter records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from marshmallow import RAISE, Schema, fields, validate

from schemas import identifiers as ids
from schemas.contract import FieldContract, ObjectRule, loaded_as, object_rule

# Operators' clocks drift a little; beyond this an event time is a bug at the
# sender, and accepting it would hold rule windows open into the future.
MAX_FUTURE_SKEW: Final = timedelta(minutes=5)

CHANNELS: Final = ("retail", "dealer", "online", "kiosk")
VERIFICATIONS: Final = ("biometric", "in_person", "ekyc", "none")
REGISTRATION_STATUSES: Final = ("active", "suspended", "deregistered")
ID_TYPES: Final = ("national_id", "passport", "other")
ID_NUMBER_MAX_CHARS: Final = 64

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- wire fields, shared by every schema in this package -----------------------

_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]"
    r"(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


class UtcDateTime(fields.DateTime):
    """An RFC 3339 timestamp with a time zone.

    Loads to an aware `datetime` in UTC (digits beyond microseconds are
    truncated); dumps as "2026-11-23T10:00:00Z", with ".ffffff" only when the
    microseconds are not zero. With `max_future`, a time further than that
    ahead of the root schema's `clock` is refused.
    """

    default_error_messages = {
        "invalid": "Not an RFC 3339 timestamp (e.g. 2026-11-23T10:00:00Z).",
        "naive": "Timestamp has no time zone: add Z or an offset such as +07:00.",
        "future": "Timestamp is more than {minutes} minutes in the future.",
    }

    def __init__(self, *, max_future: timedelta | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_future = max_future

    def _serialize(
        self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any
    ) -> str | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            # A naive time on the way out is a bug in our code, not bad input.
            raise ValueError(f"{attr}: refusing to write a naive datetime")
        utc = value.astimezone(UTC).replace(tzinfo=None)
        # isoformat, not strftime: "%Y" drops the leading zeros of years before 1000.
        return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        moment = self._parse(value)
        if self.max_future is not None and moment - self._now() > self.max_future:
            raise self.make_error("future", minutes=int(self.max_future.total_seconds() // 60))
        return moment

    def _parse(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise self.make_error("naive")
            return value.astimezone(UTC)
        try:
            return parse_timestamp(value)
        except TimestampError as error:
            raise self.make_error(error.reason) from error

    def _now(self) -> datetime:
        clock = getattr(self.root, "clock", None)
        return clock() if callable(clock) else utc_now()


class TimestampError(ValueError):
    """Why a value is not a timestamp: "invalid" or "naive" (UtcDateTime's message keys)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_timestamp(value: Any) -> datetime:
    """An RFC 3339 string with a time zone as an aware UTC `datetime`.

    Digits beyond microseconds are truncated. Shared by `UtcDateTime` and the
    fast event loader (schemas/fast_events.py), so both load the same instant.
    """
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise TimestampError("invalid")
    if match["offset"] is None:
        raise TimestampError("naive")
    microseconds = int((match["fraction"] or "0")[:6].ljust(6, "0"))
    try:
        local = datetime.fromisoformat(f"{match['date']}T{match['time']}")
        offset = _utc_offset(match["offset"])
        return local.replace(microsecond=microseconds, tzinfo=offset).astimezone(UTC)
    except (ValueError, OverflowError) as error:
        # Month 13, second 60 (datetime has no leap seconds), offset +24:00,
        # or an offset that pushes year 1 or 9999 out of range.
        raise TimestampError("invalid") from error


def _utc_offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if minutes > 59:
        raise ValueError("offset minutes out of range")
    return timezone((-1 if text[0] == "-" else 1) * timedelta(hours=hours, minutes=minutes))


_UUID_FORM: Final = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")


def canonical_uuid(value: Any) -> str | None:
    """A UUID in 8-4-4-4-12 hex form as its canonical lower-case string; None otherwise.

    For that form, str(uuid.UUID(value)) is the value in lower case.
    """
    if isinstance(value, str) and _UUID_FORM.fullmatch(value) is not None:
        return value.lower()
    return None


class UuidString(fields.String):
    """A UUID in 8-4-4-4-12 hex form, loaded as the canonical lower-case string."""

    default_error_messages = {"invalid_uuid": "Not a UUID (8-4-4-4-12 hexadecimal digits)."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {"format": "uuid"})
        super().__init__(**kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        canonical = canonical_uuid(value)
        if canonical is None:
            raise self.make_error("invalid_uuid")
        return canonical


class StrictInteger(fields.Integer):
    """A JSON integer: not "1", not 1.5, and not true (a bool is an int in Python)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def event_time_field() -> UtcDateTime:
    return UtcDateTime(required=True, max_future=MAX_FUTURE_SKEW)


# --- event schemas -------------------------------------------------------------


IMSI_OF_OPERATOR: Final = ObjectRule(
    reads=("imsi", "operator"),
    field="imsi",
    holds=lambda data: bool(data["imsi"].startswith(data["operator"])),
    message="IMSI does not start with the operator's PLMN id.",
)


class EventSchema(Schema):
    """Fields and rules every input event shares.

    `clock` is what "the future" is measured against; tests and replays pass
    their own.
    """

    class Meta:
        # The contract names every field; anything else is a sender's mistake
        # that would otherwise be dropped without a word.
        unknown = RAISE

    event_id = UuidString(required=True)
    operator = ids.OPERATOR.field(required=True)
    imsi = ids.IMSI.field(required=True)

    def __init__(self, *, clock: Clock = utc_now, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock

    _imsi_belongs_to_operator = object_rule(IMSI_OF_OPERATOR)


class SubscriberEventSchema(EventSchema):
    """An event that names the SIM card and its phone number."""

    iccid = ids.ICCID.field(required=True)
    msisdn = ids.MSISDN.field(required=True)

    _msisdn_in_operator_country = object_rule(
        ObjectRule(
            reads=("msisdn", "operator"),
            field="msisdn",
            holds=lambda data: _msisdn_in_operator_country(data["msisdn"], data["operator"]),
            message=lambda data: (
                "MSISDN is not a number of the operator's country "
                f"({ids.plmn_country(data['operator'])})."
            ),
        )
    )


def _msisdn_in_operator_country(msisdn: str, operator: str) -> bool:
    country = ids.plmn_country(operator)
    return country is None or ids.is_valid_msisdn_for_country(msisdn, country)


class LocationSchema(Schema):
    class Meta:
        unknown = RAISE

    country = ids.COUNTRY.field(required=True)
    cell_id = fields.String(validate=validate.Length(1, 64))


class ActivationSchema(SubscriberEventSchema):
    activated_at = event_time_field()
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    dealer_id = fields.String(validate=validate.Length(1, 64))
    location = fields.Nested(LocationSchema)
    imei = ids.IMEI.field()


def has_id_characters(value: str) -> bool:
    normalised = ids.normalise_id_number(value)
    return normalised != "" and normalised.isprintable()


def _has_id_length(value: str) -> bool:
    return 1 <= len(value) <= ID_NUMBER_MAX_CHARS


ID_NUMBER = FieldContract(
    rules=(
        (_has_id_length, f"Identity number must be 1 to {ID_NUMBER_MAX_CHARS} characters."),
        (
            lambda value: _has_id_length(value) and has_id_characters(value),
            "Identity number needs printable characters besides spaces and hyphens.",
        ),
    ),
    documented={"minLength": 1, "maxLength": ID_NUMBER_MAX_CHARS},
)
HOLDER_REF = FieldContract(
    rules=(),
    pattern="^[0-9a-f]{64}$",
    shape_message="holder_ref must be 64 lower-case hex digits (HMAC-SHA256).",
)


def is_valid_holder_number(id_type: str | None, nationality: str | None, normalised: str) -> bool:
    """The check digit of a Thai national ID (other documents have none we know)."""
    return not (
        id_type == "national_id"
        and nationality == "TH"
        and not ids.is_valid_thai_national_id(normalised)
    )


def _with_normalised_id_number(data: dict[str, Any]) -> dict[str, Any]:
    data["id_number"] = ids.normalise_id_number(data["id_number"])
    return data


class HolderSchema(Schema):
    """The identity document of a registration, as sent over HTTP only.

    Loads `id_number` normalised (see `identifiers.normalise_id_number`): that
    is the form the API hashes into `holder_ref`, and then discards.
    """

    class Meta:
        unknown = RAISE

    id_type = fields.String(required=True, validate=validate.OneOf(ID_TYPES))
    id_number = ID_NUMBER.field(required=True)
    nationality = ids.COUNTRY.field(required=True)

    _thai_national_id_check_digit = object_rule(
        ObjectRule(
            reads=("id_number",),
            field="id_number",
            holds=lambda data: is_valid_holder_number(
                data.get("id_type"),
                data.get("nationality"),
                ids.normalise_id_number(data["id_number"]),
            ),
            message="Not a valid Thai national ID number (13 digits with a check digit).",
        )
    )
    _normalise_id_number = loaded_as(_with_normalised_id_number)


class RegistrationSchema(SubscriberEventSchema):
    """A registration as on Kafka: the holder is pseudonymised."""

    holder_ref = HOLDER_REF.field(required=True)
    holder_nationality = ids.COUNTRY.field(required=True)
    verification = fields.String(required=True, validate=validate.OneOf(VERIFICATIONS))
    registered_at = event_time_field()
    status = fields.String(required=True, validate=validate.OneOf(REGISTRATION_STATUSES))


class RegistrationRequestSchema(SubscriberEventSchema):
    """A registration as sent over HTTP, with the identity document in clear."""

    holder = fields.Nested(HolderSchema, required=True)
    verification = fields.String(required=True, validate=validate.OneOf(VERIFICATIONS))
    registered_at = event_time_field()
    status = fields.String(required=True, validate=validate.OneOf(REGISTRATION_STATUSES))


class NetworkEventSchema(EventSchema):
    observed_at = event_time_field()
    visited_plmn = ids.PLMN.field(required=True)
    cell_id = fields.String(validate=validate.Length(1, 64))
    # The handset the SIM was in (15 digits with a Luhn check digit), when known.
    imei = ids.IMEI.field()


# A SIM cannot place more calls in a day than this (one every two seconds);
# a larger counter is a fault in the operator's aggregation, not usage.
MAX_DAILY_CALLS: Final = 50_000
MAX_DAILY_CELLS: Final = 10_000
# Operators report each day after it; a day older than this is refused, so
# that the idempotency ledger (kept at least as long) always knows whether
# the day was reported before.
USAGE_MAX_AGE_DAYS: Final = 7


class UtcDay(fields.String):
    """A UTC calendar date, "2026-12-06", loaded as that canonical string.

    A day that has not yet begun on the root schema's `clock` (give or take
    MAX_FUTURE_SKEW) is refused: its counters cannot exist. So is a day that
    ended more than USAGE_MAX_AGE_DAYS before it.
    """

    default_error_messages = {
        "invalid_day": "Not a date in the form YYYY-MM-DD.",
        "future_day": "The day has not begun yet (UTC).",
        "old_day": f"The day ended more than {USAGE_MAX_AGE_DAYS} days ago.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {"format": "date"})
        super().__init__(**kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        begins = day_start(value)
        if begins is None:
            raise self.make_error("invalid_day")
        clock = getattr(self.root, "clock", None)
        now = clock() if callable(clock) else utc_now()
        if begins - now > MAX_FUTURE_SKEW:
            raise self.make_error("future_day")
        if now - (begins + timedelta(days=1)) > timedelta(days=USAGE_MAX_AGE_DAYS):
            raise self.make_error("old_day")
        return str(value)


_DAY_FORM: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def day_start(value: Any) -> datetime | None:
    """Midnight UTC at the start of a "YYYY-MM-DD" day; None for anything else."""
    if not isinstance(value, str) or _DAY_FORM.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None


class StrictNumber(fields.Float):
    """A JSON number (integer or fraction): not "0.5", not true, never NaN."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def _count(maximum: int) -> StrictInteger:
    return StrictInteger(required=True, validate=validate.Range(min=0, max=maximum))


class UsageSchema(EventSchema):
    """One SIM's usage on one UTC day, as its operator counted it.

    `top_cell_share` is the share of the day's outgoing calls placed through
    the busiest cell (0 to 1): near 1 for a device that never moves.
    """

    day = UtcDay(required=True)
    outgoing_calls = _count(MAX_DAILY_CALLS)
    distinct_called_numbers = _count(MAX_DAILY_CALLS)
    distinct_cells = _count(MAX_DAILY_CELLS)
    top_cell_share = StrictNumber(required=True, validate=validate.Range(min=0.0, max=1.0))

    _called_numbers_within_calls = object_rule(
        ObjectRule(
            reads=("distinct_called_numbers", "outgoing_calls"),
            field="distinct_called_numbers",
            holds=lambda data: data["distinct_called_numbers"] <= data["outgoing_calls"],
            message="More distinct called numbers than outgoing calls.",
        )
    )


@dataclass(frozen=True)
class EventKind:
    """One kind of input event: how it is validated over HTTP and on its topic."""

    name: str
    request_schema: type[EventSchema]
    wire_schema: type[EventSchema]
    time_field: str
    # The time field holds a UTC date (UtcDay), not a timestamp.
    time_is_day: bool = False

    def moment(self, event: Mapping[str, Any]) -> datetime:
        """The event's own time, loaded: for a day, its first instant."""
        value = event[self.time_field]
        if self.time_is_day:
            begins = day_start(value)
            if begins is None:
                raise ValueError(f"{self.time_field}: not a day")
            return begins
        if not isinstance(value, datetime):
            raise ValueError(f"{self.time_field}: not loaded")
        return value


# Keyed by the kind as it appears in URLs and topic names.
EVENT_KINDS: Final[dict[str, EventKind]] = {
    "activations": EventKind("activation", ActivationSchema, ActivationSchema, "activated_at"),
    "registrations": EventKind(
        "registration", RegistrationRequestSchema, RegistrationSchema, "registered_at"
    ),
    "network_events": EventKind(
        "network_event", NetworkEventSchema, NetworkEventSchema, "observed_at"
    ),
    "usage": EventKind("usage", UsageSchema, UsageSchema, "day", time_is_day=True),
}
