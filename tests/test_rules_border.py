"""BORDER_CELL_DWELL, on the pure rule."""

from __future__ import annotations

from datetime import datetime

import orjson

from tests.behaviour_events import (
    PLMN,
    activation,
    at,
    observation,
    packaged_rules,
    reasons_after,
    replay,
)
from workers import behaviour_hooks
from workers.rules.border import BORDER_CELL_DWELL

RULES = packaged_rules()
BORDER = "TH-SAKAEO-B1"
INLAND = "TH-BKK-7"


def _seen(count: int, cell: str, day: float = 0, start_minute: int = 0) -> list[dict[str, object]]:
    """`count` domestic observations on `cell`, five minutes apart, on `day`."""
    return [
        observation(at(days=day, minutes=start_minute + 5 * index), "TH", cell_id=cell)
        for index in range(count)
    ]


def _dwelling(now: datetime, *batches: list[dict[str, object]]) -> bool:
    events = [event for batch in batches for event in batch]
    return BORDER_CELL_DWELL in reasons_after(events, now, RULES)


def test_twenty_border_observations_in_the_window_are_flagged() -> None:
    assert _dwelling(at(days=1), _seen(20, BORDER))


def test_nineteen_border_observations_are_not_enough() -> None:
    assert not _dwelling(at(days=1), _seen(19, BORDER))


def test_twenty_one_border_observations_are_flagged() -> None:
    assert _dwelling(at(days=1), _seen(21, BORDER))


def test_eighty_percent_on_border_cells_is_flagged() -> None:
    assert _dwelling(at(days=1), _seen(80, BORDER), _seen(20, INLAND, start_minute=600))


def test_seventy_nine_percent_on_border_cells_is_not_flagged() -> None:
    assert not _dwelling(at(days=1), _seen(79, BORDER), _seen(21, INLAND, start_minute=600))


def test_eighty_one_percent_on_border_cells_is_flagged() -> None:
    assert _dwelling(at(days=1), _seen(81, BORDER), _seen(19, INLAND, start_minute=600))


def test_a_new_inland_observation_that_drops_the_share_clears_it() -> None:
    state = replay([*_seen(20, BORDER), *_seen(5, INLAND, start_minute=200)], RULES)
    assert BORDER_CELL_DWELL in behaviour_hooks.active_reasons(state, at(days=1), RULES)
    state = replay([observation(at(hours=20), "TH", cell_id=INLAND)], RULES, state)
    assert BORDER_CELL_DWELL not in behaviour_hooks.active_reasons(state, at(days=1), RULES)


def test_observations_within_the_last_seven_utc_days_still_count() -> None:
    state = replay(_seen(20, BORDER), RULES)
    assert BORDER_CELL_DWELL in behaviour_hooks.active_reasons(state, at(days=6, hours=23), RULES)


def test_observations_age_out_of_the_window_and_clear_it() -> None:
    state = replay(_seen(20, BORDER), RULES)
    assert BORDER_CELL_DWELL not in behaviour_hooks.active_reasons(state, at(days=7), RULES)


def test_worker_is_woken_when_dwell_ages_out() -> None:
    state = replay(_seen(20, BORDER), RULES)
    assert behaviour_hooks.next_wakeup(state, at(days=1), RULES) == at(days=7)


def test_inland_days_ageing_out_can_raise_it_and_the_worker_is_woken_for_that() -> None:
    state = replay([*_seen(10, INLAND), *_seen(20, BORDER, day=1)], RULES)
    assert BORDER_CELL_DWELL not in behaviour_hooks.active_reasons(state, at(days=2), RULES)
    assert behaviour_hooks.next_wakeup(state, at(days=2), RULES) == at(days=7)
    assert BORDER_CELL_DWELL in behaviour_hooks.active_reasons(state, at(days=7), RULES)


def test_a_sim_never_on_a_border_cell_is_never_woken() -> None:
    state = replay(_seen(200, INLAND), RULES)
    assert behaviour_hooks.next_wakeup(state, at(days=1), RULES) is None


def test_domestic_observations_without_a_cell_count_for_nothing() -> None:
    without_cell = [observation(at(hours=20, minutes=minute), "TH") for minute in range(30)]
    assert _dwelling(at(days=1), _seen(20, BORDER), without_cell)
    assert not _dwelling(at(days=1), _seen(19, BORDER), without_cell)


def test_observations_abroad_count_for_nothing() -> None:
    abroad = [
        observation(at(hours=20, minutes=minute), "MY", cell_id=INLAND) for minute in range(9)
    ]
    assert not _dwelling(at(days=1), _seen(19, BORDER), abroad)
    assert _dwelling(at(days=1), _seen(20, BORDER), abroad)


def test_dwell_evidence_counts_share_and_a_sample_of_cells() -> None:
    cells = sorted(["TH-SAKAEO-B1", "TH-SAKAEO-B2", "TH-TAK-B1", "TH-TAK-B2", "TH-NK-B1"])
    events = [
        observation(at(days=day, minutes=minute), "TH", cell_id=cells[(day + minute) % 5])
        for day in range(3)
        for minute in range(8)
    ]
    events += _seen(4, INLAND, day=2, start_minute=100)
    reason = reasons_after(events, at(days=3), RULES)[BORDER_CELL_DWELL]
    assert reason.evidence == {
        "observations": 28,
        "border_observations": 24,
        "share": 0.8571,
        "border_cells": cells,
        "window_start": "2026-02-27",
    }
    assert reason.since == at()


def test_state_of_a_sim_that_never_touches_a_border_cell_stays_small() -> None:
    events = [observation(at(minutes=7 * index), "TH", cell_id=INLAND) for index in range(10_000)]
    state = replay(events, RULES)
    assert len(orjson.dumps(state["b"])) < 60


def test_a_malaysian_border_crossing_is_not_flagged() -> None:
    events = [activation(at(days=-60))]
    events += [
        observation(at(hours=8, minutes=10 * index), "TH", cell_id="TH-SADAO-B1")
        for index in range(6)
    ]
    events += [observation(at(hours=9, minutes=10 * index), "MY") for index in range(30)]
    events += [observation(at(days=2, hours=hour), "TH", cell_id=INLAND) for hour in range(10)]
    assert reasons_after(events, at(days=3), RULES) == {}
    assert PLMN["MY"] == "50212"
