"""SIM_DEVICE_CYCLING, on the pure rule: one SIM in at least 5 distinct IMEIs
within 24 hours (the packaged rules)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from tests import factories
from tests.behaviour_events import (
    activation,
    at,
    observation,
    packaged_rules,
    reasons_after,
    replay,
)
from workers.rules.devices import SIM_DEVICE_CYCLING, seen_on_day, verified_in_person
from workers.rules.registration import CurrentRegistration
from workers.rules.sightings import to_micros, utc_day

RULES = packaged_rules()


def handsets(count: int, every_hours: float, start_hours: float = 0) -> list[dict[str, Any]]:
    """One observation in each of `count` handsets, `every_hours` apart."""
    return [
        observation(at(hours=start_hours + index * every_hours), "TH", imei=factories.imei(index))
        for index in range(count)
    ]


def cycling(events: list[dict[str, Any]], now: datetime | None = None) -> bool:
    return SIM_DEVICE_CYCLING in reasons_after(events, now or at(days=3), RULES)


def test_five_handsets_within_24_hours_is_device_cycling() -> None:
    assert cycling(handsets(5, every_hours=5))


def test_four_handsets_within_24_hours_are_not_flagged() -> None:
    assert not cycling(handsets(4, every_hours=1))


def test_five_handsets_spanning_exactly_24_hours_are_not_flagged() -> None:
    assert not cycling(handsets(5, every_hours=6))


def test_five_handsets_a_microsecond_under_24_hours_are_flagged() -> None:
    events = handsets(5, every_hours=6)
    events[-1]["observed_at"] = at(hours=24, seconds=-0.000001)
    assert cycling(events)


def test_one_handset_seen_many_times_is_one_device() -> None:
    imei = factories.imei(1)
    events = [observation(at(minutes=10 * index), "TH", imei=imei) for index in range(200)]
    assert not cycling(events)


def test_observations_without_an_imei_count_no_device() -> None:
    events = [*handsets(4, every_hours=1), observation(at(hours=5), "TH")]
    assert not cycling(events)


def test_the_activations_handset_counts_as_a_device() -> None:
    events = [activation(at(), imei=factories.imei(99)), *handsets(4, every_hours=1, start_hours=1)]
    assert cycling(events)


def test_the_same_imei_with_another_check_digit_is_the_same_device() -> None:
    first = factories.imei(7)
    other_check_digit = first[:14] + str((int(first[14]) + 1) % 10)
    events = [
        *handsets(3, every_hours=1),
        observation(at(hours=4), "TH", imei=first),
        observation(at(hours=5), "TH", imei=other_check_digit),
    ]
    assert not cycling(events)


def test_device_cycling_is_found_whichever_handset_arrives_first() -> None:
    assert cycling(list(reversed(handsets(5, every_hours=5))))


def test_device_cycling_evidence_counts_the_devices_and_names_none() -> None:
    events = handsets(6, every_hours=2)
    reason = reasons_after(events, at(days=1), RULES)[SIM_DEVICE_CYCLING]
    assert reason.since == at(hours=8)
    assert reason.evidence == {
        "devices": 5,
        "window_hours": 24,
        "first_seen_at": "2026-03-02T00:00:00.000000Z",
        "last_seen_at": "2026-03-02T08:00:00.000000Z",
    }
    assert not any(
        factories.imei(index) in orjson.dumps(reason.to_json()).decode() for index in range(6)
    )


def test_device_cycling_stays_once_its_handsets_are_forgotten() -> None:
    events = [
        *handsets(5, every_hours=1),
        *[observation(at(days=10 + day), "TH", imei=factories.imei(0)) for day in range(5)],
    ]
    assert cycling(events, now=at(days=20))


def test_the_threshold_comes_from_the_rules() -> None:
    rules = packaged_rules(sim_device_cycling_min_imeis=3, sim_device_cycling_window_hours=2)
    assert SIM_DEVICE_CYCLING in reasons_after(handsets(3, every_hours=0.5), at(days=1), rules)
    assert SIM_DEVICE_CYCLING not in reasons_after(handsets(3, every_hours=1), at(days=1), rules)


def test_a_sim_box_slot_cycling_through_thousands_of_handsets_keeps_bounded_state() -> None:
    events = [
        observation(at(minutes=15 * index), "TH", imei=factories.imei(index % 500))
        for index in range(5_000)
    ]
    state = replay(events, RULES)
    # About three days of buckets, at most two sightings per handset in each.
    assert len(state["v"]) <= 2 * 500 * 3
    assert cycling(events, now=at(days=60))


def registered(verification: str, status: str = "active") -> CurrentRegistration:
    at = "2026-03-01T00:00:00.000000Z"
    return CurrentRegistration("e1", "h" * 64, status, verification, at, at, "e1", None)


def test_a_sim_verified_in_person_or_by_biometrics_may_change_handsets() -> None:
    assert verified_in_person(registered("in_person"))
    assert verified_in_person(registered("biometric"))


def test_remote_ekyc_an_unverified_or_a_suspended_registration_does_not_cover_handset_changes() -> (
    None
):
    assert not verified_in_person(registered("ekyc"))
    assert not verified_in_person(registered("none"))
    assert not verified_in_person(registered("biometric", status="suspended"))
    assert not verified_in_person(None)


def test_a_handset_remembered_on_a_day_is_known_to_have_that_days_sighting() -> None:
    state = replay([observation(at(hours=3), "TH", imei=factories.imei(1))], RULES)
    day = utc_day(to_micros(at(hours=3)))
    assert seen_on_day(state, factories.imei(1), day)
    assert not seen_on_day(state, factories.imei(1), day + 1)
    assert not seen_on_day(state, factories.imei(2), day)
