"""CaseRecordSchema: what the regulator reads on the flagged-SIMs topic."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from factories import OMIT, error_paths, imsi, valid_case_record
from marshmallow import ValidationError

from schemas import REASON_CODES, CaseRecordSchema, record_id_for

IMPOSSIBLE_TRAVEL = {
    "code": "IMPOSSIBLE_TRAVEL",
    "since": "2026-11-02T05:00:00Z",
    "evidence": {"from": "TH", "to": "VN", "minutes": 35},
}


def _reason(code: str) -> dict[str, Any]:
    return {"code": code, "since": "2026-11-02T03:15:00Z", "evidence": {}}


INVALID_FIELDS: list[tuple[str, dict[str, Any], tuple[str | int, ...]]] = [
    ("record_id not a uuid", {"record_id": "1"}, ("record_id",)),
    (
        "record_id of another version",
        {"record_id": record_id_for(imsi("52003", 1), 2)},
        ("record_id",),
    ),
    ("imsi of 14 digits", {"imsi": "52003000000001"}, ("imsi",)),
    ("iccid with wrong luhn digit", {"iccid": "89660300000000000011"}, ("iccid",)),
    ("msisdn not e.164", {"msisdn": "0812345678"}, ("msisdn",)),
    ("operator unknown", {"operator": "00000"}, ("operator",)),
    ("status unknown", {"status": "open"}, ("status",)),
    ("version 0", {"version": 0}, ("version",)),
    ("version as a string", {"version": "1"}, ("version",)),
    ("version as a float", {"version": 1.5}, ("version",)),
    ("version as a boolean", {"version": True}, ("version",)),
    ("risk_score above 100", {"risk_score": 101}, ("risk_score",)),
    ("risk_score negative", {"risk_score": -1}, ("risk_score",)),
    ("reason code unknown", {"reasons": [_reason("SUSPICIOUS")]}, ("reasons", 0, "code")),
    (
        "reason without since",
        {"reasons": [{"code": "UNREGISTERED", "evidence": {}}]},
        ("reasons", 0, "since"),
    ),
    (
        "second reason with bad evidence",
        {"reasons": [_reason("UNREGISTERED"), {**IMPOSSIBLE_TRAVEL, "evidence": []}]},
        ("reasons", 1, "evidence"),
    ),
    (
        "unknown field in reason",
        {"reasons": [{**_reason("UNREGISTERED"), "weight": 40}]},
        ("reasons", 0, "weight"),
    ),
    ("flagged without reasons", {"reasons": []}, ("reasons",)),
    (
        "same reason twice",
        {"reasons": [_reason("UNREGISTERED"), _reason("UNREGISTERED")]},
        ("reasons",),
    ),
    ("flagged without first_flagged_at", {"first_flagged_at": None}, ("first_flagged_at",)),
    ("updated_at without zone", {"updated_at": "2026-11-02T03:15:00"}, ("updated_at",)),
    ("rules_version empty", {"rules_version": ""}, ("rules_version",)),
    ("rules_version missing", {"rules_version": OMIT}, ("rules_version",)),
    ("unknown field", {"holder_ref": "ab" * 32}, ("holder_ref",)),
]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [pytest.param(overrides, path, id=name) for name, overrides, path in INVALID_FIELDS],
)
def test_invalid_field_is_reported_at_its_path_only(
    overrides: dict[str, Any], path: tuple[str | int, ...]
) -> None:
    with pytest.raises(ValidationError) as raised:
        CaseRecordSchema().load(valid_case_record(**overrides))
    assert error_paths(raised.value) == {path}


def test_cleared_case_with_reasons_is_refused() -> None:
    record = valid_case_record(status="cleared", risk_score=0)
    with pytest.raises(ValidationError) as raised:
        CaseRecordSchema().load(record)
    assert error_paths(raised.value) == {("reasons",)}


def test_cleared_case_with_a_risk_score_is_refused() -> None:
    record = valid_case_record(status="cleared", reasons=[], risk_score=40)
    with pytest.raises(ValidationError) as raised:
        CaseRecordSchema().load(record)
    assert error_paths(raised.value) == {("risk_score",)}


def test_cleared_case_keeps_its_first_flagged_at() -> None:
    record = valid_case_record(status="cleared", reasons=[], risk_score=0, version=2)
    loaded = CaseRecordSchema().load(record)
    assert loaded["first_flagged_at"] is not None


def test_never_flagged_case_may_have_no_first_flagged_at() -> None:
    record = valid_case_record(status="cleared", reasons=[], risk_score=0, first_flagged_at=None)
    assert CaseRecordSchema().load(record)["first_flagged_at"] is None


def test_sim_seen_only_on_the_network_has_null_iccid_and_msisdn() -> None:
    record = valid_case_record(iccid=None, msisdn=None, reasons=[IMPOSSIBLE_TRAVEL], risk_score=45)
    loaded = CaseRecordSchema().load(record)
    assert loaded["iccid"] is None
    assert loaded["msisdn"] is None


@pytest.mark.parametrize("field", ["iccid", "msisdn", "first_flagged_at"])
def test_nullable_fields_are_still_always_present(field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        CaseRecordSchema().load(valid_case_record(**{field: OMIT}))
    assert error_paths(raised.value) == {(field,)}


def test_several_reasons_are_accepted() -> None:
    record = valid_case_record(reasons=[_reason("UNREGISTERED"), IMPOSSIBLE_TRAVEL], risk_score=85)
    assert len(CaseRecordSchema().load(record)["reasons"]) == 2


def test_record_round_trips() -> None:
    record = valid_case_record(reasons=[_reason("UNREGISTERED"), IMPOSSIBLE_TRAVEL], risk_score=85)
    schema = CaseRecordSchema()
    loaded = schema.load(record)
    assert schema.load(schema.dump(loaded)) == loaded
    assert schema.dump(loaded) == record


def test_reason_codes_are_the_eight_of_the_contract_then_the_additions() -> None:
    assert REASON_CODES == (
        "UNREGISTERED",
        "IDENTITY_OVER_LIMIT",
        "REGISTRATION_REVOKED",
        "ACTIVATED_THEN_ABROAD",
        "HIGH_RISK_ROAMING",
        "BORDER_CELL_DWELL",
        "IMPOSSIBLE_TRAVEL",
        "BULK_ACTIVATION_BURST",
        "SIM_DEVICE_CYCLING",
        "DEVICE_MANY_SIMS",
        "HIGH_CALL_VOLUME",
        "STATIC_HIGH_VOLUME",
    )


@pytest.mark.parametrize("code", REASON_CODES)
def test_every_reason_code_is_accepted(code: str) -> None:
    CaseRecordSchema().load(valid_case_record(reasons=[_reason(code)]))


def test_record_id_is_the_same_for_the_same_imsi_and_version() -> None:
    assert record_id_for("520030000000001", 3) == record_id_for("520030000000001", 3)


def test_record_id_differs_per_version_and_per_imsi() -> None:
    ids = {
        record_id_for("520030000000001", 1),
        record_id_for("520030000000001", 2),
        record_id_for("520030000000002", 1),
    }
    assert len(ids) == 3


def test_record_id_is_a_version_5_uuid_string() -> None:
    record_id = record_id_for("520030000000001", 1)
    assert str(uuid.UUID(record_id)) == record_id
    assert uuid.UUID(record_id).version == 5


def test_record_id_never_changes_between_releases() -> None:
    # Regulators deduplicate on record_id: a new namespace would re-publish every case.
    assert record_id_for("520030000000001", 1) == "5a7dbcfa-3d0e-5e23-9a62-f64b569d8125"
