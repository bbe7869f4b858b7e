"""Every schema: load(dump(load(x))) == load(x), and dump gives back canonical input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from factories import (
    imei,
    valid_activation,
    valid_network_event,
    valid_registration_request,
    valid_registration_wire,
)
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import Schema

from schemas import (
    ActivationSchema,
    NetworkEventSchema,
    RegistrationRequestSchema,
    RegistrationSchema,
)

CASES: list[tuple[str, type[Schema], Callable[[], dict[str, Any]]]] = [
    ("minimal activation", ActivationSchema, valid_activation),
    (
        "full activation",
        ActivationSchema,
        lambda: valid_activation(
            channel="dealer",
            dealer_id="D-0042",
            location={"country": "KH", "cell_id": "45606-1201-88"},
            imei=imei(3),
        ),
    ),
    ("registration request", RegistrationRequestSchema, valid_registration_request),
    ("registration wire", RegistrationSchema, valid_registration_wire),
    ("network event", NetworkEventSchema, valid_network_event),
    (
        "network event with cell",
        NetworkEventSchema,
        lambda: valid_network_event(visited_plmn="45606", cell_id="45606-1201-88"),
    ),
]
PARAMS = [pytest.param(schema, build, id=name) for name, schema, build in CASES]


@pytest.mark.parametrize(("schema_class", "build"), PARAMS)
def test_load_of_dump_of_load_equals_load(
    schema_class: type[Schema], build: Callable[[], dict[str, Any]]
) -> None:
    schema = schema_class()
    loaded = schema.load(build())
    assert schema.load(schema.dump(loaded)) == loaded


@pytest.mark.parametrize(("schema_class", "build"), PARAMS)
def test_dump_of_canonical_input_gives_it_back(
    schema_class: type[Schema], build: Callable[[], dict[str, Any]]
) -> None:
    event = build()
    schema = schema_class()
    assert schema.dump(schema.load(event)) == event


@pytest.mark.parametrize(("schema_class", "build"), PARAMS)
def test_dump_is_json_ready(
    schema_class: type[Schema], build: Callable[[], dict[str, Any]]
) -> None:
    schema = schema_class()
    dumped = schema.dump(schema.load(build()))
    assert orjson.loads(orjson.dumps(dumped)) == dumped


def test_non_canonical_input_round_trips_to_the_same_load() -> None:
    event = valid_activation(
        event_id="A1B2C3D4-E5F6-4789-8ABC-DEF012345678",
        activated_at="2026-11-02T10:00:00.250+07:00",
    )
    schema = ActivationSchema()
    loaded = schema.load(event)
    dumped = schema.dump(loaded)
    assert dumped["event_id"] == "a1b2c3d4-e5f6-4789-8abc-def012345678"
    assert dumped["activated_at"] == "2026-11-02T03:00:00.250000Z"
    assert schema.load(dumped) == loaded


@given(
    id_number=st.text(alphabet="ab12 -", min_size=1, max_size=40).filter(
        lambda text: text.replace(" ", "").replace("-", "") != ""
    )
)
def test_holder_id_number_round_trips_normalised(id_number: str) -> None:
    schema = RegistrationRequestSchema()
    holder = {"id_type": "passport", "id_number": id_number, "nationality": "TH"}
    loaded = schema.load(valid_registration_request(holder=holder))
    assert schema.load(schema.dump(loaded)) == loaded
