"""When the loop's periodic tasks run: on their schedule, together when they
share one, and never again at once after a run that failed."""

from __future__ import annotations

import pytest

from workers.periodic import Every, PeriodicTasks


def test_a_schedule_is_due_from_its_first_moment() -> None:
    schedule = Every(5.0, first_due_at=60.0)

    assert not schedule.due(59.9)
    assert schedule.due(60.0)


def test_the_next_run_is_due_an_interval_after_the_last_one_not_on_a_grid() -> None:
    schedule = Every(5.0)
    schedule.restart(7.0)

    assert not schedule.due(11.9)
    assert schedule.due(12.0)


def test_tasks_that_share_a_schedule_run_together_in_order() -> None:
    ran: list[str] = []
    tasks = PeriodicTasks(Every(5.0), lambda: ran.append("gauges"), lambda: ran.append("lag"))

    for now in (0.0, 1.0, 4.9, 5.0):
        tasks.run_if_due(now)

    assert ran == ["gauges", "lag", "gauges", "lag"]


def test_tasks_that_are_not_due_do_not_run() -> None:
    ran: list[str] = []
    tasks = PeriodicTasks(Every(5.0, first_due_at=60.0), lambda: ran.append("housekeeping"))

    assert not tasks.run_if_due(59.0)
    assert ran == []


def test_a_run_that_raised_is_not_tried_again_before_the_interval() -> None:
    attempts: list[float] = []

    def failing() -> None:
        attempts.append(0.0)
        raise RuntimeError("fenced")

    tasks = PeriodicTasks(Every(5.0), failing)
    with pytest.raises(RuntimeError):
        tasks.run_if_due(0.0)

    assert not tasks.run_if_due(1.0)
    assert len(attempts) == 1
