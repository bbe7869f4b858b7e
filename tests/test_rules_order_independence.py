"""The behaviour rules give the same answer whatever order a SIM's events arrive in,
and their state stays bounded however many events a SIM has."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import factories
from tests.behaviour_events import (
    BORDER_CELLS,
    START,
    activation,
    at,
    observation,
    packaged_rules,
    replay,
)
from workers import behaviour_hooks
from workers.cases import risk_score
from workers.rules.travel import LATENESS_ALLOWANCE_US

# Small thresholds so that a few dozen generated events raise every rule often.
RULES = packaged_rules(
    border_dwell_min_observations=4, high_risk_roaming_min_days=2, sim_device_cycling_min_imeis=3
)
CELLS = [None, "TH-BKK-1", *sorted(BORDER_CELLS)]
# Handsets for SIM_DEVICE_CYCLING; None: the network did not report one.
IMEIS = [None, None, *(factories.imei(seed) for seed in range(1, 6))]
WEIGHTS = behaviour_hooks.weights(RULES)
WEEKS = [timedelta(days=1), timedelta(days=5), timedelta(days=40)]
TRAVEL_ALLOWANCE = timedelta(
    microseconds=LATENESS_ALLOWANCE_US, minutes=RULES.impossible_travel_max_minutes
)


def events_within(
    spans: list[timedelta], countries: list[str], imeis: list[str | None] | None = None
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Activations and observations of one SIM at random times within one of
    `spans`, in handsets drawn from `imeis` (none by default)."""
    return st.sampled_from(spans).flatmap(lambda span: _events(span, countries, imeis or [None]))


def _events(
    span: timedelta, countries: list[str], imeis: list[str | None]
) -> st.SearchStrategy[list[dict[str, Any]]]:
    # Events cluster around a few moments, as a SIM's do (a day at the border, a
    # trip), so that thresholds are reached and missed in the same example.
    return st.lists(st.integers(0, int(span.total_seconds())), min_size=1, max_size=4).flatmap(
        lambda anchors: _clustered(anchors, span, countries, imeis)
    )


def _clustered(
    anchors: list[int], span: timedelta, countries: list[str], imeis: list[str | None]
) -> st.SearchStrategy[list[dict[str, Any]]]:
    total = int(span.total_seconds())
    spread = min(total // 2, 3 * 24 * 3600)
    seconds = st.builds(
        lambda anchor, offset: min(anchor + offset, total),
        st.sampled_from(anchors),
        st.integers(0, spread),
    )
    observations = st.builds(
        lambda offset, country, cell, imei: observation(
            at(seconds=offset), country, cell_id=cell if country == "TH" else None, imei=imei
        ),
        seconds,
        st.sampled_from(countries),
        st.sampled_from(CELLS),
        st.sampled_from(imeis),
    )
    activations = st.builds(
        lambda offset, country, imei: activation(at(seconds=offset), country=country, imei=imei),
        seconds,
        st.sampled_from([None, "TH", "KH"]),
        st.sampled_from(imeis),
    )
    return st.lists(st.one_of(observations, observations, activations), min_size=12, max_size=48)


# Mostly soon after the last event (reasons still holding), sometimes much later
# (reasons cleared by the clock), sometimes a little before (operators' clocks).
LATER_SECONDS = st.one_of(
    st.integers(-300, 6 * 3600), st.integers(-300, 6 * 3600), st.integers(0, 12 * 24 * 3600)
)


def latest(events: list[dict[str, Any]]) -> datetime:
    times: list[datetime] = [event.get("observed_at") or event["activated_at"] for event in events]
    return max(times)


def shifted(events: list[dict[str, Any]], by: timedelta) -> list[dict[str, Any]]:
    moved = []
    for event in events:
        field = "observed_at" if "observed_at" in event else "activated_at"
        moved.append({**event, field: event[field] + by})
    return moved


def outcome(events: list[dict[str, Any]], now: datetime) -> tuple[Any, ...]:
    state = replay(events, RULES)
    reasons = behaviour_hooks.active_reasons(state, now, RULES)
    return (
        {code: reason.to_json() for code, reason in reasons.items()},
        risk_score(reasons, WEIGHTS),
        behaviour_hooks.next_wakeup(state, now, RULES),
    )


# Mutually adjacent countries: weeks of history, never an impossible journey,
# so what is compared is roaming, activation and border dwell.
@settings(max_examples=50, deadline=None)
@given(
    events=events_within(WEEKS, ["TH", "TH", "KH", "LA"]),
    order=st.randoms(use_true_random=False),
    later=LATER_SECONDS,
)
def test_weeks_of_events_in_any_order_give_the_same_reasons(
    events: list[dict[str, Any]], order: random.Random, later: int
) -> None:
    now = latest(events) + timedelta(seconds=later)
    shuffled = list(events)
    order.shuffle(shuffled)
    assert outcome(shuffled, now) == outcome(events, now)


# Weeks of roaming and dwelling, then an hour of travel near and far at the end:
# every rule at once, still within what the travel rule compares exactly.
@settings(max_examples=50, deadline=None)
@given(
    history=events_within(WEEKS, ["TH", "TH", "KH", "LA"]),
    journey=events_within([timedelta(hours=1)], ["TH", "MY", "KH", "MM", "JP", "SG"]),
    order=st.randoms(use_true_random=False),
    later=LATER_SECONDS,
)
def test_any_order_of_all_events_gives_the_same_risk_relevant_codes(
    history: list[dict[str, Any]],
    journey: list[dict[str, Any]],
    order: random.Random,
    later: int,
) -> None:
    events = [*history, *shifted(journey, latest(history) - START)]
    now = latest(events) + timedelta(seconds=later)
    shuffled = list(events)
    order.shuffle(shuffled)
    in_order = behaviour_hooks.active_reasons(replay(events, RULES), now, RULES)
    reordered = behaviour_hooks.active_reasons(replay(shuffled, RULES), now, RULES)
    assert set(reordered) == set(in_order)
    assert risk_score(reordered, WEIGHTS) == risk_score(in_order, WEIGHTS)


# Within the lateness allowance of the travel rule (60 min + 60 min), with
# countries near and far and handsets changing: impossible journeys and
# device cycling are common.
@settings(max_examples=50, deadline=None)
@given(
    events=events_within(
        [TRAVEL_ALLOWANCE], ["TH", "TH", "MY", "KH", "MM", "LA", "VN", "JP", "SG"], IMEIS
    ),
    order=st.randoms(use_true_random=False),
    later=LATER_SECONDS,
)
def test_hours_of_travel_in_any_order_give_the_same_reasons(
    events: list[dict[str, Any]], order: random.Random, later: int
) -> None:
    now = latest(events) + timedelta(seconds=later)
    shuffled = list(events)
    order.shuffle(shuffled)
    assert outcome(shuffled, now) == outcome(events, now)


def test_state_stays_bounded_after_ten_thousand_observations_anywhere() -> None:
    chooser = random.Random(11)
    countries = ["TH", "TH", "TH", "KH", "MM", "LA", "MY", "JP"]
    cells = ["TH-BKK-1", "TH-CNX-2", *sorted(BORDER_CELLS)]
    events = []
    for index in range(10_000):
        country = chooser.choice(countries)
        cell = chooser.choice(cells) if country == "TH" else None
        events.append(observation(at(minutes=4 * index), country, cell_id=cell))
    events.insert(0, activation(at()))
    state = replay(events, packaged_rules())
    assert len(orjson.dumps(state)) < 4096


def test_state_of_an_ordinary_domestic_sim_stays_small() -> None:
    events = [activation(at())]
    events += [
        observation(at(minutes=61 * index), "TH", cell_id=f"TH-BKK-{index % 40}")
        for index in range(10_000)
    ]
    state = replay(events, packaged_rules())
    assert len(orjson.dumps(state)) < 256
