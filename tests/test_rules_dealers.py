"""BULK_ACTIVATION_BURST: the pure burst rule, and the shared store against real SQLite."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from simguard.store import Store, Tx, open_store
from tests.behaviour_events import activation, at, packaged_rules
from workers import behaviour_hooks, dealers
from workers.rules.dealers import (
    BULK_ACTIVATION_BURST,
    DealerActivation,
    burst_members,
    largest_burst,
)

RULES = packaged_rules()
DEALER = "D-0042"


def imsi(seed: int) -> str:
    return f"52003{seed:010d}"


def spread(count: int, over: timedelta, first_seed: int = 0) -> list[DealerActivation]:
    """`count` activations of distinct SIMs, the first at START and the last `over` later."""
    step = over / (count - 1)
    return [
        DealerActivation(at() + step * index, imsi(first_seed + index)) for index in range(count)
    ]


# --- the pure rule --------------------------------------------------------------------


def test_fifty_sims_within_59_minutes_are_a_burst() -> None:
    activations = spread(50, timedelta(minutes=59))
    assert burst_members(activations, at(), RULES) == activations


def test_forty_nine_sims_within_59_minutes_are_not_a_burst() -> None:
    assert burst_members(spread(49, timedelta(minutes=59)), at(), RULES) == []


def test_fifty_sims_spread_over_exactly_60_minutes_are_not_a_burst() -> None:
    activations = spread(50, timedelta(minutes=60))
    assert all(burst_members(activations, a.activated_at, RULES) == [] for a in activations)


def test_fifty_sims_spread_over_61_minutes_are_not_a_burst() -> None:
    activations = spread(50, timedelta(minutes=61))
    assert all(burst_members(activations, a.activated_at, RULES) == [] for a in activations)


def test_one_sim_activated_twice_counts_once() -> None:
    activations = [*spread(49, timedelta(minutes=30)), DealerActivation(at(minutes=40), imsi(0))]
    assert burst_members(activations, at(minutes=40), RULES) == []


def test_every_sim_of_overlapping_bursts_belongs_to_a_burst() -> None:
    activations = spread(100, timedelta(minutes=99))
    assert burst_members(activations, at(minutes=50), RULES) == activations


def test_sims_outside_every_window_of_fifty_are_not_members() -> None:
    burst = spread(50, timedelta(minutes=10))
    stray = DealerActivation(at(minutes=80), imsi(99))
    members = burst_members([*burst, stray], at(minutes=5), RULES)
    assert stray not in members
    assert members == burst


def test_largest_burst_is_the_evidence_window() -> None:
    activations = spread(60, timedelta(minutes=59))
    burst = largest_burst(activations, at(minutes=30), RULES)
    assert burst is not None
    assert (burst.sims, burst.start, burst.end) == (60, at(), at(minutes=59))
    assert burst.completed_at(50) == activations[49].activated_at


def test_behaviour_weights_include_bulk_activation_burst() -> None:
    assert behaviour_hooks.weights(RULES)[BULK_ACTIVATION_BURST] == 25


# --- the shared store -------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The real store: an SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/x.db"
    else:
        url = request.getfixturevalue("postgres_database")
    opened = open_store(url)
    yield opened
    opened.close()


def record(store: Store, event: dict[str, Any]) -> list[str]:
    tx: Tx
    with store.transaction() as tx:
        return dealers.record_activation(tx, event, RULES)


def dealer_events(
    count: int, over: timedelta, dealer_id: str = DEALER, first_seed: int = 0
) -> list[dict[str, Any]]:
    return [
        activation(a.activated_at, dealer_id=dealer_id, imsi=a.imsi)
        for a in spread(count, over, first_seed)
    ]


def test_store_returns_all_fifty_sims_once_the_fiftieth_arrives(store: Store) -> None:
    events = dealer_events(50, timedelta(minutes=59))
    returned = [record(store, event) for event in events]
    assert returned[:49] == [[]] * 49
    assert sorted(returned[49]) == sorted(event["imsi"] for event in events)


def test_store_returns_each_sim_of_a_burst_only_once(store: Store) -> None:
    for event in dealer_events(50, timedelta(minutes=59)):
        record(store, event)
    late = activation(at(minutes=30), dealer_id=DEALER, imsi=imsi(500))
    assert record(store, late) == [imsi(500)]
    assert record(store, late) == []


def test_store_finds_no_burst_in_forty_nine_activations(store: Store) -> None:
    assert all(record(store, e) == [] for e in dealer_events(49, timedelta(minutes=59)))


def test_store_finds_no_burst_over_exactly_60_minutes(store: Store) -> None:
    assert all(record(store, e) == [] for e in dealer_events(50, timedelta(minutes=60)))


def test_store_finds_the_same_burst_in_any_arrival_order(store: Store) -> None:
    events = [
        *dealer_events(50, timedelta(minutes=59)),
        *dealer_events(20, timedelta(minutes=200), first_seed=100),
    ]
    random.Random(7).shuffle(events)
    flagged = [member for event in events for member in record(store, event)]
    expected = burst_members(
        [DealerActivation(e["activated_at"], e["imsi"]) for e in events], at(minutes=30), RULES
    )
    assert sorted(flagged) == sorted(a.imsi for a in expected)
    assert len(flagged) == len(set(flagged))


def test_concurrent_workers_agree_on_a_burst_and_report_each_sim_once(store: Store) -> None:
    events = dealer_events(60, timedelta(minutes=30))
    random.Random(3).shuffle(events)
    with ThreadPoolExecutor(max_workers=4) as workers:
        returned = list(workers.map(lambda event: record(store, event), events))
    flagged = [member for members in returned for member in members]
    assert sorted(flagged) == sorted(event["imsi"] for event in events)


def test_activations_of_different_dealers_do_not_add_up(store: Store) -> None:
    events = [
        *dealer_events(25, timedelta(minutes=30), dealer_id="D-1"),
        *dealer_events(25, timedelta(minutes=30), dealer_id="D-2", first_seed=100),
    ]
    assert all(record(store, event) == [] for event in events)


def test_the_same_dealer_id_at_another_operator_is_another_dealer(store: Store) -> None:
    events = dealer_events(50, timedelta(minutes=30))
    for event in events[:25]:
        event["operator"] = "52001"
    assert all(record(store, event) == [] for event in events)


def test_activation_without_a_dealer_is_not_recorded(store: Store) -> None:
    assert record(store, activation(at())) == []
    with store.transaction() as tx:
        assert tx.fetchone("SELECT COUNT(*) FROM dealer_activations") == (0,)


def test_burst_reason_names_dealer_window_and_count(store: Store) -> None:
    for event in dealer_events(55, timedelta(minutes=54)):
        record(store, event)
    with store.transaction() as tx:
        reason = dealers.burst_reason(tx, imsi(3), RULES)
    assert reason is not None
    assert reason.code == BULK_ACTIVATION_BURST
    assert reason.since == at(minutes=49)
    assert reason.evidence == {
        "operator": "52003",
        "dealer_id": DEALER,
        "activations": 55,
        "window_start": "2026-03-02T00:00:00.000000Z",
        "window_end": "2026-03-02T00:54:00.000000Z",
        "window_minutes": 60,
    }


def test_burst_reason_since_is_never_before_the_sims_own_activation(store: Store) -> None:
    for event in dealer_events(55, timedelta(minutes=54)):
        record(store, event)
    with store.transaction() as tx:
        reason = dealers.burst_reason(tx, imsi(54), RULES)
    assert reason is not None
    assert reason.since == at(minutes=54)


def test_no_burst_reason_for_a_sim_outside_any_burst(store: Store) -> None:
    for event in dealer_events(49, timedelta(minutes=59)):
        record(store, event)
    with store.transaction() as tx:
        assert dealers.burst_reason(tx, imsi(3), RULES) is None
