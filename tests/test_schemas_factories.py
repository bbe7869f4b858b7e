"""The shared test factories build valid events, so other tests can trust them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from factories import (
    OMIT,
    iccid,
    imei,
    imsi,
    msisdn,
    thai_national_id,
    valid_activation,
    valid_case_record,
    valid_dead_letter,
    valid_network_event,
    valid_registration_request,
    valid_registration_wire,
)
from marshmallow import Schema

from schemas import (
    ActivationSchema,
    CaseRecordSchema,
    DeadLetterSchema,
    NetworkEventSchema,
    RegistrationRequestSchema,
    RegistrationSchema,
)
from schemas import identifiers as ids

EVENT_BUILDERS: list[tuple[Callable[..., dict[str, Any]], type[Schema]]] = [
    (valid_activation, ActivationSchema),
    (valid_registration_request, RegistrationRequestSchema),
    (valid_registration_wire, RegistrationSchema),
    (valid_network_event, NetworkEventSchema),
]
BUILDERS = [
    *EVENT_BUILDERS,
    (valid_case_record, CaseRecordSchema),
    (valid_dead_letter, DeadLetterSchema),
]


@pytest.mark.parametrize(("build", "schema_class"), BUILDERS)
def test_builder_output_loads(
    build: Callable[..., dict[str, Any]], schema_class: type[Schema]
) -> None:
    schema_class().load(build())


@pytest.mark.parametrize(("build", "schema_class"), EVENT_BUILDERS)
def test_each_event_gets_its_own_event_id(
    build: Callable[..., dict[str, Any]], schema_class: type[Schema]
) -> None:
    first, second = build(), build()
    assert first["event_id"] != second["event_id"]
    assert {**first, "event_id": ""} == {**second, "event_id": ""}


@pytest.mark.parametrize(("build", "schema_class"), EVENT_BUILDERS)
def test_overriding_the_operator_moves_the_default_imsi(
    build: Callable[..., dict[str, Any]], schema_class: type[Schema]
) -> None:
    event = build(operator="52005")
    assert event["imsi"].startswith("52005")
    schema_class().load(event)


def test_omit_leaves_a_field_out() -> None:
    assert "channel" not in valid_activation(channel=OMIT)


def test_case_record_id_follows_overridden_imsi_and_version() -> None:
    record = valid_case_record(imsi=imsi("52003", 9), version=4)
    CaseRecordSchema().load(record)


@pytest.mark.parametrize(
    ("make", "check"),
    [
        (thai_national_id, ids.is_valid_thai_national_id),
        (iccid, ids.is_valid_iccid),
        (imei, ids.is_valid_imei),
        (msisdn, lambda value: ids.is_valid_msisdn_for_country(value, "TH")),
        (lambda seed: imsi("52018", seed), ids.is_valid_imsi),
    ],
)
def test_seeded_identifiers_are_valid_and_distinct(
    make: Callable[[int], str], check: Callable[[str], bool]
) -> None:
    values = [make(seed) for seed in range(500)]
    assert all(check(value) for value in values)
    assert len(set(values)) == len(values)
    assert make(7) == make(7)
