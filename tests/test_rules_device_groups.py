"""DEVICE_MANY_SIMS in the real store (SQLite and PostgreSQL): one handset
seen with at least 8 distinct SIMs within 7 consecutive UTC days (the
packaged rules)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from simguard.store import Store, Tx
from tests import factories
from tests.behaviour_events import packaged_rules
from workers import device_groups
from workers.device_groups import DEVICE_MANY_SIMS

RULES = packaged_rules()
DAY_ONE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SIM_BOX = factories.imei(1)
OTHER_HANDSET = factories.imei(2)


@pytest.fixture
def store(store_on_each_backend: Store) -> Store:
    return store_on_each_backend


def sim(seed: int) -> str:
    return factories.imsi("52003", seed)


def seen(store: Store, seed: int, day: float, imei: str = SIM_BOX) -> list[str]:
    tx: Tx
    with store.transaction() as tx:
        return device_groups.record_sighting(
            tx, sim(seed), imei, DAY_ONE + timedelta(days=day), RULES
        )


def reason_of(store: Store, seed: int) -> device_groups.Reason | None:
    with store.transaction() as tx:
        return device_groups.group_reason(tx, sim(seed), RULES)


def test_the_eighth_sim_in_one_handset_within_seven_days_returns_all_eight(store: Store) -> None:
    for seed in range(1, 8):
        assert seen(store, seed, day=seed - 1) == []
    assert seen(store, 8, day=6) == sorted(sim(seed) for seed in range(1, 9))


def test_seven_sims_in_one_handset_are_no_group(store: Store) -> None:
    returned = [seen(store, seed, day=0) for seed in range(1, 8)]
    assert returned == [[]] * 7
    assert reason_of(store, 1) is None


def test_eight_sims_over_eight_days_are_no_group(store: Store) -> None:
    returned = [seen(store, seed, day=seed - 1) for seed in range(1, 9)]
    assert returned == [[]] * 8


def test_one_sim_seen_again_and_again_counts_once(store: Store) -> None:
    for _ in range(10):
        seen(store, 1, day=0)
    assert [seen(store, seed, day=0) for seed in range(2, 8)] == [[]] * 6


def test_sims_in_other_handsets_do_not_count(store: Store) -> None:
    for seed in range(1, 8):
        seen(store, seed, day=0)
    assert seen(store, 8, day=0, imei=OTHER_HANDSET) == []


def test_each_sim_of_a_group_is_returned_only_once(store: Store) -> None:
    for seed in range(1, 9):
        seen(store, seed, day=0)
    assert seen(store, 9, day=1) == [sim(9)]
    assert seen(store, 1, day=2) == []


def test_the_same_group_is_found_in_any_arrival_order(store: Store) -> None:
    order = list(range(1, 11))
    random.Random(3).shuffle(order)
    returned: set[str] = set()
    for seed in order:
        returned |= set(seen(store, seed, day=seed % 4))
    assert returned == {sim(seed) for seed in range(1, 11)}


def test_the_reason_counts_the_sims_and_names_no_handset(store: Store) -> None:
    for seed in range(1, 10):
        seen(store, seed, day=seed % 3)
    reason = reason_of(store, 4)
    assert reason is not None
    assert reason.code == DEVICE_MANY_SIMS
    assert reason.evidence == {
        "sims": 9,
        "first_day": "2026-03-02",
        "last_day": "2026-03-04",
        "window_days": 7,
    }
    # The eighth SIM arrived on the group's third day.
    assert reason.since == datetime(2026, 3, 4, tzinfo=UTC)
    assert SIM_BOX not in str(reason.to_json())
