"""When the worker's loop treats its consumer group as rebalancing, and when
a rebalance has lasted too long."""

from __future__ import annotations

from kafka import TopicPartition

from workers.assignment_watch import AssignmentWatch

PARTITION = TopicPartition("sim.activations.v1", 0)


class _Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_a_new_consumer_is_rebalancing_until_its_first_assignment() -> None:
    watch = AssignmentWatch()
    assert watch.rebalancing
    watch.on_partitions_revoked(set())
    assert watch.rebalancing
    watch.on_partitions_assigned({PARTITION})
    assert not watch.rebalancing


def test_an_empty_assignment_also_ends_the_rebalance() -> None:
    watch = AssignmentWatch()
    watch.on_partitions_assigned(set())
    assert not watch.rebalancing
    assert watch.changed


def test_a_revocation_opens_a_rebalance_that_the_next_assignment_closes() -> None:
    watch = AssignmentWatch()
    watch.on_partitions_assigned({PARTITION})
    watch.changed = False
    watch.on_partitions_revoked({PARTITION})
    assert watch.rebalancing
    assert watch.changed
    watch.on_partitions_assigned({PARTITION})
    assert not watch.rebalancing


def test_a_replaced_consumer_rebalances_again() -> None:
    watch = AssignmentWatch()
    watch.on_partitions_assigned({PARTITION})
    watch.changed = False
    watch.restart()
    assert watch.rebalancing
    assert watch.changed


def test_a_rebalance_is_overdue_once_open_for_the_limit() -> None:
    clock = _Clock()
    watch = AssignmentWatch(clock)
    watch.on_partitions_assigned({PARTITION})
    clock.now += 100
    watch.on_partitions_revoked({PARTITION})
    clock.now += 59
    assert not watch.overdue(60)
    clock.now += 1
    assert watch.overdue(60)


def test_a_closed_rebalance_is_never_overdue() -> None:
    clock = _Clock()
    watch = AssignmentWatch(clock)
    watch.on_partitions_assigned({PARTITION})
    clock.now += 1000
    assert not watch.overdue(60)


def test_a_replaced_consumer_gets_the_whole_limit_again() -> None:
    clock = _Clock()
    watch = AssignmentWatch(clock)
    clock.now += 60
    assert watch.overdue(60)
    watch.restart()
    assert not watch.overdue(60)
    clock.now += 60
    assert watch.overdue(60)
