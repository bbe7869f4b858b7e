"""The API's record values are exactly what each kind's wire schema dumps, and
what the workers' wire schemas load back."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from factories import (
    imei,
    thai_national_id,
    valid_activation,
    valid_holder,
    valid_network_event,
    valid_registration_request,
)

from schemas.events import EVENT_KINDS
from service.pseudonymise import pseudonymise_registration
from service.wire import encode_wire

SECRET = "wire-test-secret"

SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("activations", valid_activation()),
    (
        "activations",
        valid_activation(
            activated_at="2026-11-02T10:00:00.123456789+07:00",
            channel="dealer",
            dealer_id="D-0042",
            location={"country": "KH", "cell_id": "PP-17"},
            imei=imei(5),
        ),
    ),
    ("activations", valid_activation(activated_at="2026-11-02T03:00:00.000001Z")),
    ("registrations", valid_registration_request()),
    (
        "registrations",
        valid_registration_request(
            holder=valid_holder(id_number=f" {thai_national_id(9)[:5]}-{thai_national_id(9)[5:]} "),
            registered_at="2026-11-01T23:59:59.5-05:00",
            status="deregistered",
        ),
    ),
    ("network_events", valid_network_event()),
    ("network_events", valid_network_event(visited_plmn="45606", cell_id="KH-0001")),
]


def loaded_for_the_wire(kind: str, event: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = EVENT_KINDS[kind].request_schema().load(event)
    return pseudonymise_registration(loaded, SECRET) if kind == "registrations" else loaded


@pytest.mark.parametrize(("kind", "event"), SAMPLES)
def test_the_record_value_is_the_wire_schemas_dump(kind: str, event: dict[str, Any]) -> None:
    wire = loaded_for_the_wire(kind, event)

    assert orjson.loads(encode_wire(wire)) == EVENT_KINDS[kind].wire_schema().dump(wire)


@pytest.mark.parametrize(("kind", "event"), SAMPLES)
def test_the_record_value_loads_with_the_wire_schema(kind: str, event: dict[str, Any]) -> None:
    wire = loaded_for_the_wire(kind, event)

    reloaded = EVENT_KINDS[kind].wire_schema().load(orjson.loads(encode_wire(wire)))

    assert reloaded == wire
