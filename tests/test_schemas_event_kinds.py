"""EVENT_KINDS: the input kinds, keyed as in URLs and topic names."""

from __future__ import annotations

import dataclasses

import pytest

from schemas import (
    EVENT_KINDS,
    ActivationSchema,
    NetworkEventSchema,
    RegistrationRequestSchema,
    RegistrationSchema,
    UsageSchema,
    UtcDateTime,
)
from schemas.events import MAX_FUTURE_SKEW, UtcDay


def test_kinds_are_the_three_input_topics_of_the_contract_and_usage() -> None:
    assert set(EVENT_KINDS) == {"activations", "registrations", "network_events", "usage"}
    assert [kind.name for kind in EVENT_KINDS.values()] == [
        "activation",
        "registration",
        "network_event",
        "usage",
    ]


def test_activations_and_network_events_use_one_schema_for_http_and_kafka() -> None:
    assert EVENT_KINDS["activations"].request_schema is ActivationSchema
    assert EVENT_KINDS["activations"].wire_schema is ActivationSchema
    assert EVENT_KINDS["network_events"].request_schema is NetworkEventSchema
    assert EVENT_KINDS["network_events"].wire_schema is NetworkEventSchema


def test_registrations_are_pseudonymised_between_http_and_kafka() -> None:
    assert EVENT_KINDS["registrations"].request_schema is RegistrationRequestSchema
    assert EVENT_KINDS["registrations"].wire_schema is RegistrationSchema


def test_usage_is_one_schema_for_http_and_kafka_with_a_day_for_its_time() -> None:
    usage = EVENT_KINDS["usage"]
    assert usage.request_schema is UsageSchema
    assert usage.wire_schema is UsageSchema
    assert usage.time_is_day
    assert isinstance(UsageSchema().fields[usage.time_field], UtcDay)
    assert UsageSchema().fields[usage.time_field].required


@pytest.mark.parametrize(
    "kind", sorted(k for k, kind in EVENT_KINDS.items() if not kind.time_is_day)
)
def test_time_field_is_a_required_time_limited_in_the_future(kind: str) -> None:
    event_kind = EVENT_KINDS[kind]
    for schema_class in (event_kind.request_schema, event_kind.wire_schema):
        field = schema_class().fields[event_kind.time_field]
        assert isinstance(field, UtcDateTime)
        assert field.required
        assert field.max_future == MAX_FUTURE_SKEW


def test_event_kind_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EVENT_KINDS["activations"].time_field = "observed_at"  # type: ignore[misc]
