"""NetworkEventSchema: a SIM seen on a network, at home or abroad."""

from __future__ import annotations

from typing import Any

import pytest
from factories import OMIT, error_paths, imei, imsi, valid_network_event
from marshmallow import ValidationError

from schemas import NetworkEventSchema

WRONG_LUHN_IMEI = imei(7)[:-1] + str((int(imei(7)[-1]) + 1) % 10)
INVALID_FIELDS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("event_id not a uuid", {"event_id": "x"}, ("event_id",)),
    ("operator with letters", {"operator": "52OO3", "imsi": imsi("52003", 1)}, ("operator",)),
    ("imsi of 14 digits", {"imsi": "52003000000001"}, ("imsi",)),
    ("imsi of another operator", {"imsi": imsi("52004", 9)}, ("imsi",)),
    ("visited_plmn of 4 digits", {"visited_plmn": "4560"}, ("visited_plmn",)),
    ("visited_plmn of 7 digits", {"visited_plmn": "4560612"}, ("visited_plmn",)),
    ("visited_plmn with unknown mcc", {"visited_plmn": "00001"}, ("visited_plmn",)),
    ("visited_plmn missing", {"visited_plmn": OMIT}, ("visited_plmn",)),
    ("observed_at without zone", {"observed_at": "2026-11-02T03:00:00"}, ("observed_at",)),
    ("observed_at missing", {"observed_at": OMIT}, ("observed_at",)),
    ("empty cell_id", {"cell_id": ""}, ("cell_id",)),
    ("cell_id of 65 characters", {"cell_id": "c" * 65}, ("cell_id",)),
    ("msisdn is not part of it", {"msisdn": "+66812345678"}, ("msisdn",)),
    ("location is not part of it", {"location": {"country": "KH"}}, ("location",)),
    ("imei with wrong luhn digit", {"imei": WRONG_LUHN_IMEI}, ("imei",)),
    ("imei of 14 digits", {"imei": imei(7)[:14]}, ("imei",)),
    ("imeisv of 16 digits", {"imei": imei(7) + "1"}, ("imei",)),
    ("imei as a number", {"imei": int(imei(7))}, ("imei",)),
]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [pytest.param(overrides, path, id=name) for name, overrides, path in INVALID_FIELDS],
)
def test_invalid_field_is_reported_at_its_path_only(
    overrides: dict[str, Any], path: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as raised:
        NetworkEventSchema().load(valid_network_event(**overrides))
    assert error_paths(raised.value) == {path}


@pytest.mark.parametrize(
    "visited_plmn",
    [
        pytest.param("45606", id="cambodia"),
        pytest.param("41401", id="myanmar"),
        pytest.param("45701", id="laos"),
        pytest.param("50212", id="malaysia"),
        pytest.param("310260", id="united states, 3-digit mnc"),
        pytest.param("52099", id="thailand, mnc not in the table"),
        pytest.param("90101", id="international network of no country"),
    ],
)
def test_visited_networks_with_a_known_mcc_are_accepted(visited_plmn: str) -> None:
    loaded = NetworkEventSchema().load(valid_network_event(visited_plmn=visited_plmn))
    assert loaded["visited_plmn"] == visited_plmn


def test_cell_id_is_optional() -> None:
    assert "cell_id" not in NetworkEventSchema().load(valid_network_event())
    loaded = NetworkEventSchema().load(valid_network_event(cell_id="52003-0042-7"))
    assert loaded["cell_id"] == "52003-0042-7"


def test_imei_is_optional_and_kept_when_valid() -> None:
    assert "imei" not in NetworkEventSchema().load(valid_network_event())
    loaded = NetworkEventSchema().load(valid_network_event(imei=imei(7)))
    assert loaded["imei"] == imei(7)
