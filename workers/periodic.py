"""Work the loop does every N seconds, between batches rather than on a timer
thread of its own: a task then never runs beside a batch's transactions, and
a loop stuck in one step holds its tasks back too (its /healthz says so).

Pure: the caller passes the time (time.monotonic() in the loop), so the tests
need no clock of their own.
"""

from __future__ import annotations

from collections.abc import Callable


class Every:
    """A moment that comes round every `interval_seconds`."""

    def __init__(self, interval_seconds: float, first_due_at: float = 0.0) -> None:
        self.interval_seconds = interval_seconds
        self._due_at = first_due_at

    def due(self, now: float) -> bool:
        return now >= self._due_at

    def restart(self, now: float) -> None:
        """Due again `interval_seconds` after `now`: the interval runs from
        the last time the work was done, not from a fixed grid, so a slow run
        never has the next one due at once."""
        self._due_at = now + self.interval_seconds


class PeriodicTasks:
    """`tasks`, run one after another whenever `schedule` comes round.

    Tasks that share a schedule run together or not at all: the store's
    gauges and the consumer's lag are read at the same moments, and each
    time the stall watch looks, it looks after the same interval.
    """

    def __init__(self, schedule: Every, *tasks: Callable[[], None]) -> None:
        self.schedule = schedule
        self.tasks = tasks

    def run_if_due(self, now: float) -> bool:
        if not self.schedule.due(now):
            return False
        # Restarted before the tasks: one that raises, or replaces the
        # consumer, is not tried again at the very next batch.
        self.schedule.restart(now)
        for task in self.tasks:
            task()
        return True
