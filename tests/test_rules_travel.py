"""IMPOSSIBLE_TRAVEL, on the pure rule."""

from __future__ import annotations

from tests.behaviour_events import (
    INTERNATIONAL_PLMN,
    at,
    observation,
    packaged_rules,
    reasons_after,
    replay,
)
from workers import behaviour_hooks
from workers.rules.travel import IMPOSSIBLE_TRAVEL

RULES = packaged_rules()


def _travels(*events: dict[str, object]) -> bool:
    return IMPOSSIBLE_TRAVEL in reasons_after(events, at(days=1), RULES)


def test_bangkok_then_tokyo_59_minutes_later_is_impossible_travel() -> None:
    assert _travels(observation(at(hours=10), "TH"), observation(at(hours=10, minutes=59), "JP"))


def test_bangkok_then_tokyo_exactly_60_minutes_later_is_not_flagged() -> None:
    assert not _travels(observation(at(hours=10), "TH"), observation(at(hours=11), "JP"))


def test_bangkok_then_tokyo_61_minutes_later_is_not_flagged() -> None:
    assert not _travels(observation(at(hours=10), "TH"), observation(at(hours=11, minutes=1), "JP"))


def test_a_microsecond_under_60_minutes_is_flagged() -> None:
    assert _travels(
        observation(at(hours=10), "TH"),
        observation(at(hours=10, minutes=59, seconds=59.999999), "JP"),
    )


def test_impossible_travel_is_found_whichever_observation_arrives_first() -> None:
    assert _travels(observation(at(hours=10, minutes=30), "JP"), observation(at(hours=10), "TH"))


def test_two_high_risk_countries_without_a_common_border_are_impossible_travel() -> None:
    assert _travels(observation(at(hours=10), "KH"), observation(at(hours=10, minutes=20), "MM"))


def test_neighbouring_countries_minutes_apart_are_not_flagged() -> None:
    assert not _travels(
        observation(at(hours=10), "TH", cell_id="TH-SADAO-B1"),
        observation(at(hours=10, minutes=5), "MY"),
        observation(at(hours=10, minutes=40), "TH", cell_id="TH-SADAO-B1"),
    )


def test_the_same_country_minutes_apart_is_not_flagged() -> None:
    assert not _travels(observation(at(hours=10), "TH"), observation(at(hours=10, minutes=1), "TH"))


def test_an_international_network_has_no_country_and_is_ignored() -> None:
    assert not _travels(
        observation(at(hours=10), "TH"),
        observation(at(hours=10, minutes=30), "TH", plmn=INTERNATIONAL_PLMN),
    )


def test_impossible_travel_evidence_names_both_observations() -> None:
    events = [
        observation(at(hours=10), "TH", cell_id="TH-BKK-1"),
        observation(at(hours=10, minutes=45), "JP"),
    ]
    reason = reasons_after(events, at(days=1), RULES)[IMPOSSIBLE_TRAVEL]
    assert reason.since == at(hours=10, minutes=45)
    assert reason.evidence == {
        "first": {
            "country": "TH",
            "visited_plmn": "52003",
            "observed_at": "2026-03-02T10:00:00.000000Z",
            "cell_id": "TH-BKK-1",
        },
        "second": {
            "country": "JP",
            "visited_plmn": "44010",
            "observed_at": "2026-03-02T10:45:00.000000Z",
            "cell_id": None,
        },
        "minutes_apart": 45.0,
    }


def test_impossible_travel_never_clears_once_its_observations_are_forgotten() -> None:
    events = [observation(at(hours=10), "TH"), observation(at(hours=10, minutes=30), "JP")]
    events += [observation(at(days=3, hours=hour), "JP") for hour in range(24)]
    state = replay(events, RULES)
    reason = behaviour_hooks.active_reasons(state, at(days=30), RULES)[IMPOSSIBLE_TRAVEL]
    assert reason.evidence["minutes_apart"] == 30.0
    assert behaviour_hooks.next_wakeup(state, at(days=30), RULES) is None


def test_a_late_observation_pairs_with_the_earliest_observation_of_a_busy_hour() -> None:
    home = [observation(at(hours=10, minutes=minute), "TH") for minute in (0, 20, 40, 50)]
    late_abroad = observation(at(hours=9, minutes=30), "JP")
    assert _travels(*home, late_abroad)


def test_a_late_observation_inside_a_dense_stretch_at_home_is_still_found() -> None:
    home = [observation(at(hours=10, minutes=minute), "TH") for minute in range(0, 120, 10)]
    late_abroad = observation(at(hours=10, minutes=55), "JP")
    assert _travels(*home, late_abroad)


def test_an_observation_far_behind_the_latest_is_not_compared() -> None:
    events = [
        observation(at(hours=10), "TH"),
        observation(at(hours=14), "TH"),
        observation(at(hours=10, minutes=30), "JP"),
    ]
    assert not _travels(*events)


def test_a_flight_to_tokyo_is_not_flagged() -> None:
    events = [observation(at(hours=hour), "TH", cell_id="TH-BKK-1") for hour in range(9)]
    events += [observation(at(hours=15, minutes=10 * index), "JP") for index in range(30)]
    assert not _travels(*events)
