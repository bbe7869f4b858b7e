"""Registrations: the HTTP form with the identity document, and the pseudonymised wire form."""

from __future__ import annotations

from typing import Any

import pytest
from factories import (
    OMIT,
    error_paths,
    holder_ref,
    iccid,
    imsi,
    thai_national_id,
    valid_holder,
    valid_registration_request,
    valid_registration_wire,
)
from marshmallow import ValidationError
from stdnum.th import pin

from schemas import HolderSchema, RegistrationRequestSchema, RegistrationSchema

VALID_THAI_ID = thai_national_id(42)
WRONG_CHECK_DIGIT_THAI_ID = VALID_THAI_ID[:-1] + str((int(VALID_THAI_ID[-1]) + 1) % 10)
# Right check digit, but 0 is not a first digit that is issued.
THAI_ID_STARTING_WITH_0 = (
    "0" + VALID_THAI_ID[1:12] + pin.calc_check_digit("0" + VALID_THAI_ID[1:12])
)

SHARED_INVALID_FIELDS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("event_id not a uuid", {"event_id": "42"}, ("event_id",)),
    ("operator of 7 digits", {"operator": "5200312", "imsi": imsi("52003", 1)}, ("operator",)),
    ("imsi of 14 digits", {"imsi": "52003000000001"}, ("imsi",)),
    ("imsi of another operator", {"imsi": imsi("52005", 1)}, ("imsi",)),
    ("iccid with wrong luhn digit", {"iccid": iccid(3)[:-1] + "x"}, ("iccid",)),
    ("msisdn of myanmar", {"msisdn": "+959250123456"}, ("msisdn",)),
    ("verification unknown", {"verification": "video_call"}, ("verification",)),
    ("status unknown", {"status": "blocked"}, ("status",)),
    ("registered_at without zone", {"registered_at": "2026-11-02 03:00:00"}, ("registered_at",)),
    ("unknown field", {"imei": "353325091234561"}, ("imei",)),
]

REQUEST_INVALID_FIELDS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    *SHARED_INVALID_FIELDS,
    (
        "thai national id with wrong check digit",
        {"holder": valid_holder(id_number=WRONG_CHECK_DIGIT_THAI_ID)},
        ("holder", "id_number"),
    ),
    (
        "thai national id of 12 digits",
        {"holder": valid_holder(id_number=VALID_THAI_ID[:12])},
        ("holder", "id_number"),
    ),
    (
        "thai national id starting with 0",
        {"holder": valid_holder(id_number=THAI_ID_STARTING_WITH_0)},
        ("holder", "id_number"),
    ),
    ("unknown id_type", {"holder": valid_holder(id_type="driving_licence")}, ("holder", "id_type")),
    ("unknown nationality", {"holder": valid_holder(nationality="ZZ")}, ("holder", "nationality")),
    ("empty id_number", {"holder": valid_holder(id_number="")}, ("holder", "id_number")),
    (
        "id_number of only separators",
        {"holder": valid_holder(id_type="passport", id_number=" - -")},
        ("holder", "id_number"),
    ),
    (
        "id_number of 65 characters",
        {"holder": valid_holder(id_type="passport", id_number="A" * 65)},
        ("holder", "id_number"),
    ),
    ("holder without id_number", {"holder": valid_holder(id_number=OMIT)}, ("holder", "id_number")),
    ("unknown field in holder", {"holder": valid_holder(name="Somchai")}, ("holder", "name")),
    ("holder missing", {"holder": OMIT}, ("holder",)),
    ("holder_ref instead of holder", {"holder_ref": holder_ref(1)}, ("holder_ref",)),
]

WIRE_INVALID_FIELDS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    *SHARED_INVALID_FIELDS,
    ("holder_ref in upper case", {"holder_ref": holder_ref(1).upper()}, ("holder_ref",)),
    ("holder_ref of 63 digits", {"holder_ref": holder_ref(1)[:63]}, ("holder_ref",)),
    ("holder_ref with a newline", {"holder_ref": holder_ref(1) + "\n"}, ("holder_ref",)),
    ("holder_nationality alpha-3", {"holder_nationality": "THA"}, ("holder_nationality",)),
    ("holder_nationality missing", {"holder_nationality": OMIT}, ("holder_nationality",)),
    ("identity document on the wire", {"holder": valid_holder()}, ("holder",)),
]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [pytest.param(overrides, path, id=name) for name, overrides, path in REQUEST_INVALID_FIELDS],
)
def test_invalid_request_field_is_reported_at_its_path_only(
    overrides: dict[str, Any], path: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as raised:
        RegistrationRequestSchema().load(valid_registration_request(**overrides))
    assert error_paths(raised.value) == {path}


@pytest.mark.parametrize(
    ("overrides", "path"),
    [pytest.param(overrides, path, id=name) for name, overrides, path in WIRE_INVALID_FIELDS],
)
def test_invalid_wire_field_is_reported_at_its_path_only(
    overrides: dict[str, Any], path: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as raised:
        RegistrationSchema().load(valid_registration_wire(**overrides))
    assert error_paths(raised.value) == {path}


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param({"id_type": "passport", "id_number": "AA1234567"}, id="thai passport"),
        pytest.param({"id_type": "passport", "id_number": "1234567890128"}, id="13-digit passport"),
        pytest.param({"id_type": "other", "id_number": WRONG_CHECK_DIGIT_THAI_ID}, id="other"),
    ],
)
def test_thai_check_digit_rule_leaves_other_documents_of_thais_alone(
    holder: dict[str, str],
) -> None:
    HolderSchema().load({**holder, "nationality": "TH"})


def test_thai_check_digit_rule_leaves_foreign_national_ids_alone() -> None:
    HolderSchema().load(
        {"id_type": "national_id", "id_number": WRONG_CHECK_DIGIT_THAI_ID, "nationality": "KH"}
    )


def test_formatted_thai_national_id_is_accepted_and_loaded_compact() -> None:
    formatted = pin.format(VALID_THAI_ID)
    loaded = HolderSchema().load(valid_holder(id_number=formatted))
    assert "-" in formatted
    assert loaded["id_number"] == VALID_THAI_ID


def test_passport_number_loads_normalised() -> None:
    loaded = HolderSchema().load(
        {"id_type": "passport", "id_number": " aa 123-4567 ", "nationality": "TH"}
    )
    assert loaded["id_number"] == "AA1234567"


def test_error_messages_never_repeat_the_identity_number() -> None:
    request = valid_registration_request(holder=valid_holder(id_number=WRONG_CHECK_DIGIT_THAI_ID))
    with pytest.raises(ValidationError) as raised:
        RegistrationRequestSchema().load(request)
    assert WRONG_CHECK_DIGIT_THAI_ID not in str(raised.value.messages)
    assert WRONG_CHECK_DIGIT_THAI_ID[:12] not in str(raised.value.messages)


def test_request_loads_with_the_holder_nested() -> None:
    loaded = RegistrationRequestSchema().load(valid_registration_request())
    assert loaded["holder"] == {
        "id_type": "national_id",
        "id_number": thai_national_id(1),
        "nationality": "TH",
    }
    assert "holder_ref" not in loaded


def test_wire_form_loads_with_holder_ref() -> None:
    loaded = RegistrationSchema().load(valid_registration_wire())
    assert loaded["holder_ref"] == holder_ref(1)
    assert loaded["holder_nationality"] == "TH"


@pytest.mark.parametrize("status", ["active", "suspended", "deregistered"])
def test_every_registration_status_is_accepted(status: str) -> None:
    assert RegistrationSchema().load(valid_registration_wire(status=status))["status"] == status


@pytest.mark.parametrize("verification", ["biometric", "in_person", "ekyc", "none"])
def test_every_verification_is_accepted(verification: str) -> None:
    loaded = RegistrationSchema().load(valid_registration_wire(verification=verification))
    assert loaded["verification"] == verification
