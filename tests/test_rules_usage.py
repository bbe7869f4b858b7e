"""HIGH_CALL_VOLUME and STATIC_HIGH_VOLUME, on the pure rules."""

from __future__ import annotations

import itertools

import orjson

from tests.behaviour_events import at, packaged_rules, reasons_after, replay, usage
from workers import behaviour_hooks
from workers.rules.usage import ABNORMAL_DAYS, HIGH_CALL_VOLUME, STATIC_HIGH_VOLUME

RULES = packaged_rules()
# Calls from one place, below the daily limit: a SIM box's day.
STATIC_DAY = {"calls": 30, "top_cell_share": 0.9}


# --- HIGH_CALL_VOLUME ------------------------------------------------------------------


def test_101_calls_in_a_day_is_high_call_volume() -> None:
    assert HIGH_CALL_VOLUME in reasons_after([usage(0, 101)], at(days=1), RULES)


def test_100_calls_in_a_day_is_within_the_limit() -> None:
    assert HIGH_CALL_VOLUME not in reasons_after([usage(0, 100)], at(days=1), RULES)


def test_high_call_volume_holds_until_seven_days_after_the_end_of_the_day() -> None:
    events = [usage(0, 150)]
    assert HIGH_CALL_VOLUME in reasons_after(events, at(days=8, seconds=-1), RULES)
    assert HIGH_CALL_VOLUME not in reasons_after(events, at(days=8), RULES)


def test_high_call_volume_wakes_the_worker_when_it_clears() -> None:
    state = replay([usage(0, 150), usage(3, 120)], RULES)
    assert behaviour_hooks.next_wakeup(state, at(days=4), RULES) == at(days=11)


def test_high_call_volume_names_the_run_of_days_and_dates_from_its_first() -> None:
    reason = reasons_after([usage(2, 130), usage(0, 101), usage(9, 102)], at(days=10), RULES)[
        HIGH_CALL_VOLUME
    ]
    assert reason.since == at(days=0)
    assert reason.evidence == {
        "days_over_limit": ["2026-03-02", "2026-03-04", "2026-03-11"],
        "max_outgoing_calls": 130,
        "limit": 100,
    }


def test_a_day_over_the_limit_after_a_quiet_week_starts_a_new_run() -> None:
    reason = reasons_after([usage(0, 101), usage(8, 101)], at(days=9), RULES)[HIGH_CALL_VOLUME]
    assert reason.since == at(days=8)


# --- STATIC_HIGH_VOLUME ----------------------------------------------------------------


def test_three_static_days_within_seven_is_static_high_volume() -> None:
    events = [usage(day, **STATIC_DAY) for day in (0, 3, 6)]
    assert STATIC_HIGH_VOLUME in reasons_after(events, at(days=7), RULES)


def test_three_static_days_spread_over_eight_days_are_not() -> None:
    events = [usage(day, **STATIC_DAY) for day in (0, 3, 7)]
    assert STATIC_HIGH_VOLUME not in reasons_after(events, at(days=8), RULES)


def test_two_static_days_are_not_static_high_volume() -> None:
    events = [usage(day, **STATIC_DAY) for day in (0, 1)]
    assert STATIC_HIGH_VOLUME not in reasons_after(events, at(days=2), RULES)


def test_29_calls_a_day_from_one_cell_is_not_static_high_volume() -> None:
    events = [usage(day, 29, top_cell_share=1.0) for day in (0, 1, 2)]
    assert reasons_after(events, at(days=3), RULES) == {}


def test_calls_spread_below_the_cell_share_are_not_static_high_volume() -> None:
    events = [usage(day, 80, top_cell_share=0.89) for day in (0, 1, 2)]
    assert STATIC_HIGH_VOLUME not in reasons_after(events, at(days=3), RULES)


def test_static_high_volume_dates_from_the_day_completing_the_pattern() -> None:
    events = [usage(day, 45, top_cell_share=0.97) for day in (4, 1, 2)]
    reason = reasons_after(events, at(days=5), RULES)[STATIC_HIGH_VOLUME]
    assert reason.since == at(days=4)
    assert reason.evidence == {
        "days": ["2026-03-03", "2026-03-04", "2026-03-06"],
        "min_outgoing_calls": 45,
        "min_top_cell_share": 0.97,
    }


def test_static_high_volume_clears_seven_days_after_its_last_static_day() -> None:
    events = [usage(day, **STATIC_DAY) for day in (0, 1, 2)]
    assert STATIC_HIGH_VOLUME in reasons_after(events, at(days=10, seconds=-1), RULES)
    assert STATIC_HIGH_VOLUME not in reasons_after(events, at(days=10), RULES)


def test_a_sim_box_day_over_the_limit_meets_both_rules() -> None:
    events = [usage(day, 240, top_cell_share=1.0) for day in (0, 1, 2)]
    assert set(reasons_after(events, at(days=3), RULES)) == {HIGH_CALL_VOLUME, STATIC_HIGH_VOLUME}


# --- the state -------------------------------------------------------------------------


def test_an_ordinary_day_leaves_the_state_as_it_was() -> None:
    assert replay([usage(0, 40, top_cell_share=0.5)], RULES) == {}


def test_abnormal_days_older_than_four_windows_before_the_latest_are_forgotten() -> None:
    state = replay([usage(day, 150) for day in range(0, 60, 2)], RULES)
    days = [entry[0] for entry in state[ABNORMAL_DAYS]]
    assert days[-1] - days[0] < 28
    assert len(days) == 14


def test_the_state_is_the_same_whatever_order_the_days_come_in() -> None:
    events = [usage(0, 150), usage(2, 35, 0.95), usage(5, 40, 0.99), usage(6, 101), usage(40, 120)]
    states = {
        orjson.dumps(replay(order, RULES), option=orjson.OPT_SORT_KEYS)
        for order in itertools.permutations(events)
    }
    assert len(states) == 1
