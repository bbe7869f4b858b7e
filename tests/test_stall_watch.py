"""When a consumer counts as stalled: records to read, no position moving."""

from __future__ import annotations

from workers.stall_watch import StallWatch


def test_records_to_read_and_no_position_moving_is_a_stall_after_the_limit() -> None:
    watch = StallWatch(stall_seconds=20)
    assert not watch.stalled({"p0": 5, "p1": 7}, {"p0": 100, "p1": 0}, now=0)
    assert not watch.stalled({"p0": 5, "p1": 7}, {"p0": 100, "p1": 0}, now=19)
    assert watch.stalled({"p0": 5, "p1": 7}, {"p0": 100, "p1": 0}, now=20)


def test_one_partition_moving_while_another_waits_its_turn_is_not_a_stall() -> None:
    watch = StallWatch(stall_seconds=20)
    for second in range(0, 60, 5):
        assert not watch.stalled({"p0": second, "p1": 7}, {"p0": 100, "p1": 100}, now=second)


def test_nothing_to_read_is_not_a_stall() -> None:
    watch = StallWatch(stall_seconds=20)
    for second in range(0, 60, 5):
        assert not watch.stalled({"p0": 5}, {"p0": 0}, now=second)


def test_the_limit_counts_from_when_records_appeared() -> None:
    watch = StallWatch(stall_seconds=20)
    watch.stalled({"p0": 5}, {"p0": 0}, now=0)
    assert not watch.stalled({"p0": 5}, {"p0": 3}, now=30)
    assert not watch.stalled({"p0": 5}, {"p0": 3}, now=45)
    assert watch.stalled({"p0": 5}, {"p0": 3}, now=50)


def test_reset_starts_afresh() -> None:
    watch = StallWatch(stall_seconds=20)
    watch.stalled({"p0": 5}, {"p0": 100}, now=0)
    watch.reset()
    assert not watch.stalled({"p0": 5}, {"p0": 100}, now=25)
    assert watch.stalled({"p0": 5}, {"p0": 100}, now=45)
