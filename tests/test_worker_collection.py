"""The worker's garbage collection: no automatic passes during a step, cycles
freed after it, every generation walked on a schedule."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from workers.collection import FULL_PASS_SECONDS, CollectorBetweenSteps


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[_Clock]:
    yield _Clock()
    gc.enable()


def test_no_automatic_pass_runs_once_started(clock: _Clock) -> None:
    collector = CollectorBetweenSteps(clock)
    collector.start()
    assert not gc.isenabled()
    collector.stop()
    assert gc.isenabled()


def test_a_cycle_left_by_a_step_is_freed_after_it(clock: _Clock) -> None:
    collector = CollectorBetweenSteps(clock)
    collector.start()
    gc.collect()
    left = _cycle()
    assert left() is not None
    collector.after_step()
    assert left() is None


def test_an_old_cycle_waits_for_the_full_pass(clock: _Clock) -> None:
    collector = CollectorBetweenSteps(clock)
    collector.start()
    left = _cycle()
    held = left()
    # Still in use, it is moved to the oldest generation by a young pass.
    gc.collect(1)
    del held
    collector.after_step()
    assert left() is not None
    clock.now += FULL_PASS_SECONDS
    collector.after_step()
    assert left() is None
