"""A SIM's stored state, as the worker reads it back."""

from __future__ import annotations

import orjson

from workers.state import SimState

HELD = {"UNREGISTERED": {"code": "UNREGISTERED", "since": "2026-11-02T03:00:00Z", "evidence": {}}}


def test_a_state_stored_under_the_former_name_of_held_reasons_keeps_its_reasons() -> None:
    stored = orjson.dumps({"imsi": "520030000000011", "shard": 1, "registration_reasons": HELD})

    assert SimState.from_json_bytes(stored).held_reasons == HELD


def test_a_state_round_trips_through_its_json() -> None:
    state = SimState(imsi="520030000000011", shard=1, held_reasons=HELD, wake_at="x")

    assert SimState.from_json_bytes(state.to_json_bytes()) == state


def test_the_case_record_is_kept_in_its_own_column_not_in_the_state() -> None:
    case = {"record_id": "r", "status": "flagged", "version": 1}
    state = SimState(imsi="520030000000011", shard=1, case=case)

    stored = state.to_json_bytes()

    assert "case" not in orjson.loads(stored)
    assert SimState.from_json_bytes(stored, orjson.dumps(case)) == state


def test_fields_at_their_empty_defaults_are_not_stored() -> None:
    state = SimState(imsi="520030000000011", shard=0, operator="52003")

    assert orjson.loads(state.to_json_bytes()) == {
        "imsi": "520030000000011",
        "shard": 0,
        "operator": "52003",
    }


def test_a_state_stored_with_a_copy_of_its_case_takes_the_case_from_its_column() -> None:
    stale = {"record_id": "r", "version": 1}
    column = {"record_id": "r", "version": 2}
    stored = orjson.dumps({"imsi": "520030000000011", "shard": 1, "case": stale})

    assert SimState.from_json_bytes(stored, orjson.dumps(column)).case == column
