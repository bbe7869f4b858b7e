"""ActivationSchema: what an operator may send when a SIM is activated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from factories import OMIT, error_paths, iccid, imei, imsi, valid_activation
from marshmallow import ValidationError
from stdnum import luhn

from schemas import ActivationSchema

VALID_ICCID = iccid(7)
VALID_IMEI = imei(7)
WRONG_LUHN_ICCID = VALID_ICCID[:-1] + str((int(VALID_ICCID[-1]) + 1) % 10)
WRONG_LUHN_IMEI = VALID_IMEI[:-1] + str((int(VALID_IMEI[-1]) + 1) % 10)


def _iccid_with_prefix(prefix: str) -> str:
    body = prefix + VALID_ICCID[len(prefix) : -1]
    check_digit: str = luhn.calc_check_digit(body)
    return body + check_digit


INVALID_FIELDS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("event_id not a uuid", {"event_id": "not-a-uuid"}, ("event_id",)),
    ("event_id a number", {"event_id": 12345}, ("event_id",)),
    ("operator too short", {"operator": "5200", "imsi": imsi("52003", 1)}, ("operator",)),
    ("operator with unknown mcc", {"operator": "00003", "imsi": imsi("52003", 1)}, ("operator",)),
    ("operator mcc of no country", {"operator": "99999"}, ("operator",)),
    ("imsi of 14 digits", {"imsi": "52003000000001"}, ("imsi",)),
    ("imsi of 16 digits", {"imsi": "5200300000000001"}, ("imsi",)),
    ("imsi with thai digits", {"imsi": "๕๒๐๐๓๐๐๐๐๐๐๐๐๐๑"}, ("imsi",)),
    ("imsi a number", {"imsi": 520030000000001}, ("imsi",)),
    ("imsi of another operator", {"imsi": imsi("52001", 1)}, ("imsi",)),
    ("imsi of a foreign operator", {"imsi": imsi("45606", 1)}, ("imsi",)),
    ("iccid with wrong luhn digit", {"iccid": WRONG_LUHN_ICCID}, ("iccid",)),
    ("iccid not starting 89", {"iccid": _iccid_with_prefix("88")}, ("iccid",)),
    ("iccid of 18 digits", {"iccid": VALID_ICCID[:18]}, ("iccid",)),
    ("iccid of 21 digits", {"iccid": VALID_ICCID + "0"}, ("iccid",)),
    ("msisdn of cambodia", {"msisdn": "+85512345678"}, ("msisdn",)),
    ("msisdn of the us", {"msisdn": "+14155552671"}, ("msisdn",)),
    ("msisdn in national form", {"msisdn": "0812345678"}, ("msisdn",)),
    ("msisdn with spaces", {"msisdn": "+66 81 234 5678"}, ("msisdn",)),
    ("msisdn with trunk zero", {"msisdn": "+660812345678"}, ("msisdn",)),
    ("msisdn too short", {"msisdn": "+66812345"}, ("msisdn",)),
    ("msisdn null", {"msisdn": None}, ("msisdn",)),
    ("activated_at without zone", {"activated_at": "2026-11-02T03:00:00"}, ("activated_at",)),
    ("activated_at a date", {"activated_at": "2026-11-02"}, ("activated_at",)),
    ("activated_at words", {"activated_at": "yesterday"}, ("activated_at",)),
    ("activated_at epoch seconds", {"activated_at": 1793588400}, ("activated_at",)),
    ("unknown channel", {"channel": "shop"}, ("channel",)),
    ("channel in upper case", {"channel": "Retail"}, ("channel",)),
    ("empty dealer_id", {"dealer_id": ""}, ("dealer_id",)),
    ("dealer_id of 65 characters", {"dealer_id": "D" * 65}, ("dealer_id",)),
    ("null dealer_id", {"dealer_id": None}, ("dealer_id",)),
    ("unknown location country", {"location": {"country": "XX"}}, ("location", "country")),
    ("lower-case location country", {"location": {"country": "kh"}}, ("location", "country")),
    ("alpha-3 location country", {"location": {"country": "KHM"}}, ("location", "country")),
    ("location without country", {"location": {"cell_id": "c1"}}, ("location", "country")),
    (
        "cell_id of 65 characters",
        {"location": {"country": "TH", "cell_id": "c" * 65}},
        ("location", "cell_id"),
    ),
    (
        "unknown field in location",
        {"location": {"country": "TH", "lac": "1"}},
        ("location", "lac"),
    ),
    # marshmallow names the object itself "_schema" when it is not an object at all
    ("location not an object", {"location": "TH"}, ("location", "_schema")),
    ("imei with wrong luhn digit", {"imei": WRONG_LUHN_IMEI}, ("imei",)),
    ("imei of 14 digits", {"imei": VALID_IMEI[:14]}, ("imei",)),
    ("imeisv of 16 digits", {"imei": VALID_IMEI + "1"}, ("imei",)),
    ("unknown field", {"note": "hello"}, ("note",)),
]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [pytest.param(overrides, path, id=name) for name, overrides, path in INVALID_FIELDS],
)
def test_invalid_field_is_reported_at_its_path_only(
    overrides: dict[str, Any], path: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as raised:
        ActivationSchema().load(valid_activation(**overrides))
    assert error_paths(raised.value) == {path}


REQUIRED = ["event_id", "operator", "imsi", "iccid", "msisdn", "activated_at", "channel"]


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_required_field_is_reported(field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        ActivationSchema().load(valid_activation(**{field: OMIT}))
    assert error_paths(raised.value) == {(field,)}


@pytest.mark.parametrize("operator", ["52001", "52003", "52004", "52005", "52018"])
def test_thai_operators_are_accepted(operator: str) -> None:
    loaded = ActivationSchema().load(valid_activation(operator=operator))
    assert loaded["operator"] == operator


def test_every_problem_of_an_event_is_reported_at_once() -> None:
    event = valid_activation(imsi=imsi("52001", 1), msisdn="+85512345678", channel="shop")
    with pytest.raises(ValidationError) as raised:
        ActivationSchema().load(event)
    assert error_paths(raised.value) == {("imsi",), ("msisdn",), ("channel",)}


def test_optional_fields_are_accepted() -> None:
    event = valid_activation(
        channel="dealer",
        dealer_id="D-0042",
        location={"country": "KH", "cell_id": "45606-1201-88"},
        imei=VALID_IMEI,
    )
    loaded = ActivationSchema().load(event)
    assert loaded["dealer_id"] == "D-0042"
    assert loaded["location"] == {"country": "KH", "cell_id": "45606-1201-88"}
    assert loaded["imei"] == VALID_IMEI


def test_optional_fields_may_be_left_out() -> None:
    loaded = ActivationSchema().load(valid_activation())
    assert not {"dealer_id", "location", "imei"} & loaded.keys()


def test_nineteen_digit_iccid_is_accepted() -> None:
    body = VALID_ICCID[:18]
    ActivationSchema().load(valid_activation(iccid=body + luhn.calc_check_digit(body)))


def test_activated_at_loads_as_aware_utc_datetime() -> None:
    loaded = ActivationSchema().load(valid_activation(activated_at="2026-11-02T10:00:00+07:00"))
    assert loaded["activated_at"] == datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    assert loaded["activated_at"].utcoffset() is not None


def test_event_id_loads_as_canonical_lower_case_string() -> None:
    event_id = "A1B2C3D4-E5F6-4789-8ABC-DEF012345678"
    loaded = ActivationSchema().load(valid_activation(event_id=event_id))
    assert loaded["event_id"] == event_id.lower()


def test_event_id_without_hyphens_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        ActivationSchema().load(valid_activation(event_id="a1b2c3d4e5f64789" + "8abcdef012345678"))
    assert error_paths(raised.value) == {("event_id",)}


def test_batch_errors_carry_the_index_of_the_event() -> None:
    events = [valid_activation(), valid_activation(location={"country": "XX"})]
    with pytest.raises(ValidationError) as raised:
        ActivationSchema(many=True).load(events)
    assert error_paths(raised.value) == {(1, "location", "country")}
