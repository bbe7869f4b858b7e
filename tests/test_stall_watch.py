"""Which partitions count as stalled: records to read, position standing still."""

from __future__ import annotations

from workers.stall_watch import StallWatch


def test_partition_with_lag_and_a_position_standing_still_is_stalled_after_the_limit() -> None:
    watch = StallWatch(stall_seconds=20)
    assert watch.stalled({"p0": 5}, {"p0": 100}, now=0) == []
    assert watch.stalled({"p0": 5}, {"p0": 100}, now=19) == []
    assert watch.stalled({"p0": 5}, {"p0": 100}, now=20) == ["p0"]


def test_partition_whose_position_moves_is_not_stalled() -> None:
    watch = StallWatch(stall_seconds=20)
    for second in range(0, 60, 5):
        assert watch.stalled({"p0": second}, {"p0": 100}, now=second) == []


def test_partition_without_records_to_read_is_not_stalled() -> None:
    watch = StallWatch(stall_seconds=20)
    for second in range(0, 60, 5):
        assert watch.stalled({"p0": 5}, {"p0": 0}, now=second) == []


def test_the_limit_counts_from_when_records_appeared() -> None:
    watch = StallWatch(stall_seconds=20)
    watch.stalled({"p0": 5}, {"p0": 0}, now=0)
    watch.stalled({"p0": 5}, {"p0": 3}, now=30)
    assert watch.stalled({"p0": 5}, {"p0": 3}, now=45) == []
    assert watch.stalled({"p0": 5}, {"p0": 3}, now=50) == ["p0"]


def test_reset_starts_every_partition_afresh() -> None:
    watch = StallWatch(stall_seconds=20)
    watch.stalled({"p0": 5}, {"p0": 100}, now=0)
    watch.reset()
    assert watch.stalled({"p0": 5}, {"p0": 100}, now=25) == []
