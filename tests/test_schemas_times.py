"""Event times: RFC 3339 with a zone in, aware UTC inside, "...Z" out, nothing far in the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from factories import (
    EVENT_TIME,
    error_paths,
    valid_activation,
    valid_network_event,
    valid_registration_request,
    valid_registration_wire,
)
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from schemas import EVENT_KINDS, ActivationSchema, UtcDateTime
from schemas.events import MAX_FUTURE_SKEW

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class _Stamped(Schema):
    at = UtcDateTime(required=True)


def _load(text: object) -> datetime:
    loaded: datetime = _Stamped().load({"at": text})["at"]
    return loaded


def _dump(moment: datetime) -> str:
    dumped: str = _Stamped().dump({"at": moment})["at"]
    return dumped


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-11-23T10:00:00Z", NOW, id="utc"),
        pytest.param("2026-11-23T17:00:00+07:00", NOW, id="bangkok offset"),
        pytest.param("2026-11-23T05:30:00-04:30", NOW, id="negative offset"),
        pytest.param("2026-11-23T10:00:00-00:00", NOW, id="unknown local offset"),
        pytest.param("2026-11-23t10:00:00z", NOW, id="lower-case t and z"),
        pytest.param(
            "2026-11-23T10:00:00.5Z", NOW.replace(microsecond=500000), id="tenth of a second"
        ),
        pytest.param(
            "2026-11-23T10:00:00.123456789Z",
            NOW.replace(microsecond=123456),
            id="nanoseconds truncated",
        ),
    ],
)
def test_rfc3339_time_loads_as_aware_utc(text: str, expected: datetime) -> None:
    loaded = _load(text)
    assert loaded == expected
    assert loaded.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2026-11-23T10:00:00", id="no zone"),
        pytest.param("2026-11-23 10:00:00Z", id="space separator"),
        pytest.param("2026-11-23", id="date only"),
        pytest.param("20261123T100000Z", id="basic iso form"),
        pytest.param("2026-02-30T10:00:00Z", id="30 february"),
        pytest.param("2026-11-23T24:00:00Z", id="hour 24"),
        pytest.param("2026-12-31T23:59:60Z", id="leap second"),
        pytest.param("2026-11-23T10:00:00+24:00", id="offset of a day"),
        pytest.param("2026-11-23T10:00:00+07:60", id="offset minute 60"),
        pytest.param("2026-11-23T10:00:00+0700", id="offset without colon"),
        pytest.param("0001-01-01T00:00:00+01:00", id="before year 1 in utc"),
        pytest.param("2026-11-23T10:00:00Z\n", id="trailing newline"),
        pytest.param(1795428000, id="epoch seconds"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_time_is_refused(text: object) -> None:
    with pytest.raises(ValidationError) as raised:
        _load(text)
    assert error_paths(raised.value) == {("at",)}


def test_time_without_zone_is_refused_with_a_hint_to_add_one() -> None:
    with pytest.raises(ValidationError) as raised:
        _load("2026-11-23T10:00:00")
    assert "time zone" in str(raised.value.messages)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(NOW, "2026-11-23T10:00:00Z", id="whole seconds"),
        pytest.param(NOW.replace(microsecond=1500), "2026-11-23T10:00:00.001500Z", id="micro"),
        pytest.param(datetime(987, 6, 5, tzinfo=UTC), "0987-06-05T00:00:00Z", id="year 987"),
        pytest.param(
            NOW.astimezone(timezone(timedelta(hours=7))), "2026-11-23T10:00:00Z", id="to utc"
        ),
    ],
)
def test_time_dumps_as_rfc3339_utc_with_z(moment: datetime, text: str) -> None:
    assert _dump(moment) == text


def test_naive_time_cannot_be_dumped() -> None:
    with pytest.raises(ValueError, match="naive"):
        _dump(datetime(2026, 11, 23, 10, 0))


@given(st.datetimes(timezones=st.timezones(), allow_imaginary=False))
def test_any_aware_time_survives_dump_and_load(moment: datetime) -> None:
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return  # not representable in UTC at all, so not a time anyone can send
    # Compared in UTC: Python never finds a time in a zone's repeated hour
    # equal to a time in another zone, even at the same instant.
    assert _load(_dump(moment)) == utc


# --- no more than MAX_FUTURE_SKEW ahead of the clock ---------------------------

BUILDERS = {
    "activations": valid_activation,
    "registrations": valid_registration_request,
    "network_events": valid_network_event,
}
WIRE_BUILDERS = {**BUILDERS, "registrations": valid_registration_wire}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


TIMESTAMP_KINDS = sorted(BUILDERS)


@pytest.mark.parametrize("kind", TIMESTAMP_KINDS)
def test_time_six_minutes_ahead_is_refused_on_the_time_field(kind: str) -> None:
    event_kind = EVENT_KINDS[kind]
    for schema_class, builder in [
        (event_kind.request_schema, BUILDERS[kind]),
        (event_kind.wire_schema, WIRE_BUILDERS[kind]),
    ]:
        event = builder(**{event_kind.time_field: _iso(NOW + timedelta(minutes=6))})
        with pytest.raises(ValidationError) as raised:
            schema_class(clock=lambda: NOW).load(event)
        assert error_paths(raised.value) == {(event_kind.time_field,)}


@pytest.mark.parametrize("kind", TIMESTAMP_KINDS)
def test_time_four_minutes_ahead_is_accepted(kind: str) -> None:
    event_kind = EVENT_KINDS[kind]
    event = BUILDERS[kind](**{event_kind.time_field: _iso(NOW + timedelta(minutes=4))})
    loaded = event_kind.request_schema(clock=lambda: NOW).load(event)
    assert loaded[event_kind.time_field] == NOW + timedelta(minutes=4)


def test_time_exactly_at_the_limit_is_accepted() -> None:
    event = valid_activation(activated_at=_iso(NOW + MAX_FUTURE_SKEW))
    ActivationSchema(clock=lambda: NOW).load(event)


def test_time_one_second_past_the_limit_is_refused() -> None:
    event = valid_activation(activated_at=_iso(NOW + MAX_FUTURE_SKEW + timedelta(seconds=1)))
    with pytest.raises(ValidationError):
        ActivationSchema(clock=lambda: NOW).load(event)


def test_future_is_judged_by_the_zone_adjusted_time() -> None:
    # 17:04 in Bangkok is 10:04 UTC: four minutes ahead, not seven hours.
    event = valid_activation(activated_at="2026-11-23T17:04:00+07:00")
    ActivationSchema(clock=lambda: NOW).load(event)


def test_old_backfilled_time_is_accepted() -> None:
    event = valid_activation(activated_at="2019-01-01T00:00:00Z")
    ActivationSchema(clock=lambda: NOW).load(event)


def test_future_is_measured_against_the_real_clock_by_default() -> None:
    now = datetime.now(UTC)
    ActivationSchema().load(valid_activation(activated_at=_iso(now + timedelta(minutes=4))))
    with pytest.raises(ValidationError):
        ActivationSchema().load(valid_activation(activated_at=_iso(now + timedelta(minutes=6))))


def test_factory_time_is_in_the_past() -> None:
    assert _load(EVENT_TIME) < datetime.now(UTC)
