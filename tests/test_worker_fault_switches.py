"""Fault switches are given to the worker loop, not read by it: a loop built
without them has none, whatever its environment says."""

from __future__ import annotations

import pytest

from workers.faults import FaultSwitches


def test_switches_made_without_an_environment_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMGUARD_FAULT_KILL_AT", "after_store_commit")
    monkeypatch.setenv("SIMGUARD_FAULT_STALL_AFTER_BATCHES", "1")

    switches = FaultSwitches()

    assert switches.kill.point == ""
    assert switches.stall.remaining is None


def test_switches_read_from_an_environment_are_on() -> None:
    switches = FaultSwitches.from_environment(
        {"SIMGUARD_FAULT_KILL_AT": "before_kafka_commit", "SIMGUARD_FAULT_STALL_AFTER_BATCHES": "3"}
    )

    assert switches.kill.point == "before_kafka_commit"
    assert switches.stall.remaining == 3
