"""The worker benchmark's rate from its samples of committed offsets."""

from __future__ import annotations

import pytest

from bench.kafka_io import Progress


def test_the_rate_runs_from_the_first_commit_to_the_last_sample() -> None:
    progress = Progress(1000, samples=[(0.0, 0), (1.0, 100), (2.0, 300), (3.0, 500)])
    rate, records, seconds, steady = progress.steady_rate()
    assert (records, seconds, steady) == (400, 2.0, True)
    assert rate == pytest.approx(200.0)


def test_commits_before_every_worker_held_partitions_are_left_out() -> None:
    # One worker alone until 2.0 s (500 records), then both.
    samples = [(0.0, 0), (1.0, 300), (2.0, 500), (3.0, 900), (4.0, 1300)]
    progress = Progress(1300, samples=samples, all_in_at=2.0)
    rate, records, seconds, steady = progress.steady_rate()
    assert (records, seconds, steady) == (800, 2.0, True)
    assert rate == pytest.approx(400.0)


def test_a_group_that_came_together_too_late_to_measure_keeps_the_whole_watch() -> None:
    samples = [(0.0, 0), (1.0, 300), (2.0, 600)]
    progress = Progress(600, samples=samples, all_in_at=2.0)
    _, records, seconds, _ = progress.steady_rate()
    assert (records, seconds) == (300, 1.0)
