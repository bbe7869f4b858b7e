"""A SIM's stored state, as the worker reads it back."""

from __future__ import annotations

import orjson

from workers.rules.registration import CurrentRegistration
from workers.state import SimState

IMSI = "520030000000011"
HELD = {"UNREGISTERED": {"code": "UNREGISTERED", "since": "2026-11-02T03:00:00Z", "evidence": {}}}


def test_a_state_stored_under_the_former_name_of_held_reasons_keeps_its_reasons() -> None:
    stored = orjson.dumps({"imsi": IMSI, "shard": 1, "registration_reasons": HELD})

    assert SimState.from_row(IMSI, 1, stored).held_reasons == HELD


def test_a_state_round_trips_through_its_row() -> None:
    state = SimState(imsi=IMSI, shard=1, held_reasons=HELD, wake_at="x")

    assert SimState.from_row(IMSI, 1, state.to_json_bytes()) == state


def test_the_case_record_is_kept_in_its_own_column_not_in_the_state() -> None:
    case = {"record_id": "r", "status": "flagged", "version": 1}
    state = SimState(imsi=IMSI, shard=1, case=case)

    stored = state.to_json_bytes()

    assert "case" not in orjson.loads(stored)
    assert SimState.from_row(IMSI, 1, stored, orjson.dumps(case)) == state


def test_what_other_columns_hold_is_not_stored_in_the_state() -> None:
    at = "2026-11-02T03:00:00.000000Z"
    registration = CurrentRegistration("e", "h", "active", "ekyc", at, at, "e", None)
    state = SimState(imsi=IMSI, shard=0, operator="52003", registration=registration)

    assert orjson.loads(state.to_json_bytes()) == {"operator": "52003"}


def test_a_state_stored_with_copies_takes_them_from_their_columns() -> None:
    stale = {"record_id": "r", "version": 1}
    column = {"record_id": "r", "version": 2}
    stored = orjson.dumps(
        {"imsi": IMSI, "shard": 1, "case": stale, "registration": {"event_id": "old"}}
    )

    state = SimState.from_row(IMSI, 3, stored, orjson.dumps(column))

    assert (state.case, state.registration, state.shard) == (column, None, 3)
