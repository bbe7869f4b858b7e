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
