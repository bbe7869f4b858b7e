"""ACTIVATED_THEN_ABROAD and HIGH_RISK_ROAMING, on the pure rules."""

from __future__ import annotations

from datetime import timedelta

from tests.behaviour_events import (
    activation,
    at,
    observation,
    packaged_rules,
    reasons_after,
    replay,
)
from workers import behaviour_hooks
from workers.rules.roaming import ACTIVATED_THEN_ABROAD, HIGH_RISK_ROAMING

RULES = packaged_rules()


# --- ACTIVATED_THEN_ABROAD ------------------------------------------------------------


def test_first_high_risk_sighting_71h59_after_domestic_activation_is_flagged() -> None:
    events = [activation(at()), observation(at(hours=71, minutes=59), "KH")]
    assert ACTIVATED_THEN_ABROAD in reasons_after(events, at(days=4), RULES)


def test_first_high_risk_sighting_exactly_72h_after_activation_is_flagged() -> None:
    events = [activation(at()), observation(at(hours=72), "KH")]
    assert ACTIVATED_THEN_ABROAD in reasons_after(events, at(days=4), RULES)


def test_first_high_risk_sighting_72h01_after_activation_is_not_flagged() -> None:
    events = [activation(at()), observation(at(hours=72, minutes=1), "KH")]
    assert ACTIVATED_THEN_ABROAD not in reasons_after(events, at(days=4), RULES)


def test_activated_then_abroad_evidence_names_activation_and_first_sighting() -> None:
    events = [activation(at()), observation(at(hours=30), "MM"), observation(at(hours=40), "KH")]
    reason = reasons_after(events, at(days=4), RULES)[ACTIVATED_THEN_ABROAD]
    assert reason.since == at(hours=30)
    assert reason.evidence == {
        "activated_at": "2026-03-02T00:00:00.000000Z",
        "first_high_risk_at": "2026-03-03T06:00:00.000000Z",
        "country": "MM",
        "visited_plmn": "41401",
        "hours_after_activation": 30.0,
    }


def test_only_the_first_high_risk_sighting_counts_not_a_later_one_near_a_reactivation() -> None:
    events = [
        activation(at()),
        observation(at(days=5), "KH"),
        activation(at(days=10)),
        observation(at(days=10, hours=2), "KH"),
    ]
    assert ACTIVATED_THEN_ABROAD not in reasons_after(events, at(days=11), RULES)


def test_backfilled_earlier_sighting_before_activation_means_never_activated_then_abroad() -> None:
    events = [
        activation(at(days=1)),
        observation(at(days=1, hours=5), "KH"),
        observation(at(hours=3), "KH"),
    ]
    assert ACTIVATED_THEN_ABROAD not in reasons_after(events, at(days=2), RULES)


def test_activation_abroad_does_not_count() -> None:
    events = [activation(at(), country="KH"), observation(at(hours=2), "KH")]
    assert ACTIVATED_THEN_ABROAD not in reasons_after(events, at(days=1), RULES)


def test_activation_with_home_country_location_is_domestic() -> None:
    events = [activation(at(), country="TH"), observation(at(hours=2), "LA")]
    assert ACTIVATED_THEN_ABROAD in reasons_after(events, at(days=1), RULES)


def test_activated_then_abroad_never_clears_on_the_clock() -> None:
    state = replay([activation(at()), observation(at(hours=5), "KH")], RULES)
    later = at(days=400)
    assert ACTIVATED_THEN_ABROAD in behaviour_hooks.active_reasons(state, later, RULES)
    assert behaviour_hooks.next_wakeup(state, later, RULES) is None


def test_sighting_in_a_country_that_is_not_high_risk_does_not_count() -> None:
    events = [activation(at()), observation(at(hours=5), "MY"), observation(at(hours=9), "VN")]
    assert reasons_after(events, at(days=1), RULES) == {}


# --- HIGH_RISK_ROAMING -----------------------------------------------------------------


def test_high_risk_sightings_on_three_distinct_days_are_flagged() -> None:
    events = [observation(at(days=day, hours=12), "KH") for day in (0, 1, 2)]
    reason = reasons_after(events, at(days=3), RULES)[HIGH_RISK_ROAMING]
    assert reason.since == at(days=2, hours=12)


def test_high_risk_sightings_on_two_days_are_not_flagged_however_many() -> None:
    events = [observation(at(days=day, hours=hour), "KH") for day in (0, 1) for hour in range(24)]
    assert HIGH_RISK_ROAMING not in reasons_after(events, at(days=2), RULES)


def test_three_days_within_seven_consecutive_days_are_flagged() -> None:
    events = [observation(at(days=day, hours=12), "KH") for day in (0, 3, 6)]
    assert HIGH_RISK_ROAMING in reasons_after(events, at(days=6, hours=13), RULES)


def test_three_days_spread_over_eight_calendar_days_are_not_flagged() -> None:
    events = [observation(at(days=day, hours=12), "KH") for day in (0, 3, 7)]
    assert HIGH_RISK_ROAMING not in reasons_after(events, at(days=7, hours=13), RULES)


def test_days_in_different_high_risk_countries_add_up() -> None:
    events = [
        observation(at(days=0, hours=12), "KH"),
        observation(at(days=1, hours=12), "LA"),
        observation(at(days=2, hours=12), "MM"),
    ]
    reason = reasons_after(events, at(days=3), RULES)[HIGH_RISK_ROAMING]
    assert reason.evidence == {
        "countries": ["KH", "LA", "MM"],
        "days": ["2026-03-02", "2026-03-03", "2026-03-04"],
        "last_seen_at": "2026-03-04T12:00:00.000000Z",
    }


def test_high_risk_roaming_holds_until_seven_days_after_the_last_sighting() -> None:
    state = replay([observation(at(days=day, hours=12), "KH") for day in (0, 1, 2)], RULES)
    last_seen = at(days=2, hours=12)
    just_before = last_seen + timedelta(days=7) - timedelta(seconds=1)
    assert HIGH_RISK_ROAMING in behaviour_hooks.active_reasons(state, just_before, RULES)


def test_high_risk_roaming_clears_seven_quiet_days_after_the_last_sighting() -> None:
    state = replay([observation(at(days=day, hours=12), "KH") for day in (0, 1, 2)], RULES)
    cleared = at(days=9, hours=12)
    assert HIGH_RISK_ROAMING not in behaviour_hooks.active_reasons(state, cleared, RULES)


def test_worker_is_woken_when_high_risk_roaming_clears() -> None:
    state = replay([observation(at(days=day, hours=12), "KH") for day in (0, 1, 2)], RULES)
    assert behaviour_hooks.next_wakeup(state, at(days=3), RULES) == at(days=9, hours=12)


def test_no_wakeup_once_high_risk_roaming_has_cleared() -> None:
    state = replay([observation(at(days=day, hours=12), "KH") for day in (0, 1, 2)], RULES)
    assert behaviour_hooks.next_wakeup(state, at(days=10), RULES) is None


def test_pattern_stays_flagged_while_sightings_continue_less_than_seven_days_apart() -> None:
    days = (0, 1, 2, 8, 14, 20)
    events = [observation(at(days=day, hours=12), "KH") for day in days]
    assert HIGH_RISK_ROAMING in reasons_after(events, at(days=21), RULES)


def test_a_continuing_pattern_is_remembered_for_four_weeks_of_sightings() -> None:
    days = (0, 1, 2, 8, 14, 20, 26)
    events = [observation(at(days=day, hours=12), "KH") for day in days]
    assert HIGH_RISK_ROAMING in reasons_after(events, at(days=27), RULES)


def test_a_pattern_not_seen_again_within_four_weeks_is_forgotten_even_if_sightings_go_on() -> None:
    days = (0, 1, 2, 8, 14, 20, 26, 32)
    events = [observation(at(days=day, hours=12), "KH") for day in days]
    assert HIGH_RISK_ROAMING not in reasons_after(events, at(days=33), RULES)


def test_one_sighting_after_a_cleared_pattern_raises_nothing() -> None:
    events = [observation(at(days=day, hours=12), "KH") for day in (0, 1, 2, 20)]
    assert HIGH_RISK_ROAMING not in reasons_after(events, at(days=20, hours=13), RULES)


def test_old_backfilled_pattern_is_not_raised() -> None:
    events = [observation(at(days=day, hours=12), "KH") for day in (0, 1, 2)]
    assert HIGH_RISK_ROAMING not in reasons_after(events, at(days=30), RULES)


# --- ordinary travellers ---------------------------------------------------------------


def _week_abroad(country: str) -> list[dict[str, object]]:
    """Activated at home, a 7-hour flight, a week of hourly sightings, home again."""
    events = [activation(at()), observation(at(days=2, hours=8), "TH", cell_id="TH-BKK-1")]
    events += [observation(at(days=2, hours=15 + hour), country) for hour in range(7 * 24)]
    events.append(observation(at(days=9, hours=23), "TH", cell_id="TH-BKK-1"))
    return events


def test_a_week_in_japan_is_not_flagged() -> None:
    assert reasons_after(_week_abroad("JP"), at(days=10), RULES) == {}


def test_a_week_in_singapore_is_not_flagged() -> None:
    assert reasons_after(_week_abroad("SG"), at(days=10), RULES) == {}


def test_a_week_in_the_united_states_is_not_flagged() -> None:
    assert reasons_after(_week_abroad("US"), at(days=10), RULES) == {}


def test_a_day_trip_to_cambodia_weeks_after_activation_is_not_flagged() -> None:
    events = [activation(at()), observation(at(days=20, hours=9), "TH", cell_id="TH-SAKAEO-B1")]
    events += [observation(at(days=20, hours=10 + hour), "KH") for hour in range(8)]
    events.append(observation(at(days=20, hours=19), "TH", cell_id="TH-SAKAEO-B1"))
    assert reasons_after(events, at(days=21), RULES) == {}
